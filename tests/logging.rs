//! What the exporter logs while its destination is down and when it is back: one warning
//! when it goes away (for a missing Unix socket, naming the path and what to do), one info
//! line when it is reachable again, and nothing per packet or per retry.
//!
//! A hand-written `tracing` subscriber is installed as the global default, so the flusher's
//! events are captured whichever thread it runs on (without a runtime it runs on its own). A
//! global default is set once per process: this binary has a single test.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup must fail the test loudly"
)]

#[path = "support/log_capture.rs"]
mod log_capture;
#[path = "support/loopback.rs"]
mod loopback;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use log_capture::{Capture, Captured, shown};
use loopback::{TcpReceiver, counter_sum};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterHandle, ExporterStats};
use tracing::Level;

const MAX: Duration = Duration::from_secs(10);

/// Flushes (with a short pause between polls) until `done` holds on the stats, or `MAX`.
fn flush_until(handle: &ExporterHandle, done: impl Fn(&ExporterStats) -> bool) -> ExporterStats {
    let start = Instant::now();
    loop {
        handle.flush().unwrap();
        let stats = handle.stats();
        if done(&stats) || start.elapsed() > MAX {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The outage: 20 flushes, each after `record`, then more until the reconnect backoff has let
/// several retries fail too (so a warning per failed attempt, not only per flush, would
/// show). Checks nothing was sent or dropped; returns the one event shown, a warning.
fn outage(handle: &ExporterHandle, capture: &Capture, record: impl Fn()) -> Captured {
    for _ in 0..20 {
        record();
        handle.flush().unwrap();
    }
    let down = flush_until(handle, |s| s.send_errors >= 3);
    assert!(down.send_errors >= 3, "{down:?}");
    assert_eq!(
        (
            down.lines_sent,
            down.lines_dropped_send,
            down.payloads_dropped
        ),
        (0, 0, 0),
        "nothing is sent, and nothing dropped, while the destination is down: {down:?}"
    );
    let events = capture.take();
    let shown_down = shown(&events);
    assert_eq!(shown_down.len(), 1, "one line for the outage: {events:#?}");
    assert_eq!(shown_down[0].level, Level::WARN);
    shown_down[0].clone()
}

/// After the recovery and many packets: exactly one line was shown, at INFO, and nothing at
/// all was logged per packet.
fn assert_one_recovery_line(capture: &Capture, stats: &ExporterStats) {
    assert!(
        stats.payloads_sent >= 30,
        "enough packets that a line per packet would show: {stats:?}"
    );
    let events = capture.take();
    let shown_up = shown(&events);
    assert_eq!(shown_up.len(), 1, "one line for the recovery: {events:#?}");
    assert_eq!(shown_up[0].level, Level::INFO);
    assert!(
        shown_up[0]
            .text
            .starts_with("message=metrics destination reachable again; "),
        "{:?}",
        shown_up[0]
    );
    assert!(
        events.len() <= 2,
        "no per-packet lines at any level: {events:#?}"
    );
}

#[test]
fn a_destination_that_is_down_then_up_logs_one_warning_and_one_info_line_never_one_per_packet() {
    let capture = Capture::default();
    tracing::subscriber::set_global_default(capture.clone()).unwrap();
    a_missing_unix_socket_is_reported_once_by_path_with_the_fix(&capture);
    a_tcp_receiver_that_is_down_then_up_is_logged_once_each_way(&capture);
    series_of_another_kind_with_one_name_are_logged_once_at_warn_then_at_debug(&capture);
}

fn series_of_another_kind_with_one_name_are_logged_once_at_warn_then_at_debug(capture: &Capture) {
    let rx = TcpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::graphite(rx.endpoint()).build().unwrap();
    let guard = exporter.start().unwrap();
    capture.take();
    metrics::with_local_recorder(&recorder, || {
        for name in ["p", "q", "r"] {
            metrics::counter!(name).increment(1);
            metrics::gauge!(name).set(2.0);
        }
    });
    let stats = flush_until(&guard.handle(), |s| s.values_dropped_collision == 3);
    assert_eq!(stats.values_dropped_collision, 3, "{stats:?}");
    let events = capture.take();
    let clashes: Vec<&Captured> = events
        .iter()
        .filter(|e| {
            e.text
                .contains("another kind of series has the same wire name")
        })
        .collect();
    let levels: Vec<Level> = clashes.iter().map(|e| e.level).collect();
    assert_eq!(
        levels,
        [Level::WARN, Level::DEBUG, Level::DEBUG],
        "{clashes:#?}"
    );
    assert!(
        clashes[0].text.contains("values_dropped_collision"),
        "{:?}",
        clashes[0]
    );
    drop(guard);
}

fn a_missing_unix_socket_is_reported_once_by_path_with_the_fix(capture: &Capture) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.sock");
    let (recorder, exporter) = ExporterBuilder::dogstatsd(format!("unixgram://{}", path.display()))
        .with_flush_interval(Duration::from_secs(3600))
        // Small datagrams: several per flush once the socket is there.
        .with_maximum_payload_length(64)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let counters: Vec<metrics::Counter> = metrics::with_local_recorder(&recorder, || {
        (0..4)
            .map(|i| metrics::counter!("waiting", "i" => i.to_string()))
            .collect()
    });
    let increment = || counters.iter().for_each(|c| c.increment(1));

    let warning = outage(&handle, capture, increment);
    // The path, why, and what to do about it.
    let path_text = path.display().to_string();
    assert!(
        warning.text.contains(&format!(
            "message=cannot send metrics to the Unix socket {path_text}: no receiver is listening there; \
             start the Agent (or the receiver) with its socket at this path, or fix the path; \
             keeping them and retrying with backoff; "
        )) && warning
            .text
            .contains(&format!("endpoint=unixgram://{path_text}; "))
            && warning.text.contains("error=No such file or directory"),
        "{warning:?}"
    );

    // The Agent starts: its socket appears. A datagram sent to a Unix socket is in its queue
    // when the send returns, so once a flush has returned, a non-blocking read finds all it
    // sent.
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut received = Vec::new();
    let drain = |received: &mut Vec<String>| {
        let mut buf = [0u8; 256];
        while let Ok(n) = socket.recv(&mut buf) {
            received.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
    };
    let start = Instant::now();
    while received.is_empty() && start.elapsed() < MAX {
        handle.flush().unwrap();
        drain(&mut received);
        if received.is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // Then many more packets, each flush's drained before the next (the kernel queues only a
    // few datagrams per Unix socket).
    for _ in 0..30 {
        increment();
        handle.flush().unwrap();
        drain(&mut received);
    }
    let stats = guard.shutdown().unwrap();
    drain(&mut received);
    for i in 0..4 {
        let sum: u64 = received
            .iter()
            .flat_map(|d| d.split('\n'))
            .filter_map(|l| {
                l.strip_suffix(&format!("|c|#i:{i}"))?
                    .strip_prefix("waiting:")?
                    .parse::<u64>()
                    .ok()
            })
            .sum();
        assert_eq!(sum, 20 + 30, "series {i}: every increment arrives once");
    }
    assert_eq!(stats.lines_dropped_send, 0);
    assert_one_recovery_line(capture, &stats);
}

fn a_tcp_receiver_that_is_down_then_up_is_logged_once_each_way(capture: &Capture) {
    let mut rx = TcpReceiver::new();
    // Down before the exporter starts; restarted on the same port below.
    rx.stop();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));

    let warning = outage(&handle, capture, || counter.increment(1)).text;
    assert!(
        warning.contains("message=cannot send metrics; keeping them and retrying with backoff; ")
            && warning.contains(&format!("endpoint={}; ", rx.endpoint()))
            && warning.contains("error=Connection refused"),
        "{warning}"
    );

    rx.restart();
    let up = flush_until(&handle, |s| s.connects == 1 && s.lines_sent > 0);
    assert_eq!(up.connects, 1, "{up:?}");
    for _ in 0..30 {
        counter.increment(1);
        handle.flush().unwrap();
    }
    let stats = guard.shutdown().unwrap();
    let lines = rx.wait_for(MAX, |l| counter_sum(l, "jobs") >= 50);
    assert_eq!(
        counter_sum(&lines, "jobs"),
        50,
        "every increment arrives once"
    );
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert_one_recovery_line(capture, &stats);
}
