//! End to end over real TCP on loopback: newline-framed batches, and a receiver that goes away
//! and comes back.

#[path = "support/loopback.rs"]
mod loopback;

use std::time::{Duration, Instant};

use loopback::{TcpReceiver, counter_sum, require_ipv6_loopback};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterHandle};

const MAX: Duration = Duration::from_secs(10);

fn builder(rx: &TcpReceiver) -> ExporterBuilder {
    ExporterBuilder::statsd(rx.endpoint()).with_flush_interval(Duration::from_secs(3600))
}

/// Flushes until `pred` holds on what the receiver got (reconnects wait out a backoff).
fn flush_until(
    handle: &ExporterHandle,
    rx: &TcpReceiver,
    pred: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let start = Instant::now();
    loop {
        assert_eq!(handle.flush(), Ok(()));
        let lines = rx.wait_for(Duration::from_millis(50), &pred);
        if pred(&lines) || start.elapsed() > MAX {
            return lines;
        }
    }
}

#[test]
fn tcp_lines_are_newline_terminated_and_batched_on_one_connection() {
    let rx = TcpReceiver::new();
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..1_000 {
            metrics::counter!("tcp", "i" => i.to_string()).increment(1);
        }
        metrics::gauge!("level").set(-2.5);
    });
    guard.handle().flush().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() == 1_002);
    assert_eq!(lines.len(), 1_002);
    assert!(rx.text().ends_with('\n'));
    assert!(lines.iter().any(|l| l == "tcp.999:1|c"));
    let level: Vec<&String> = lines.iter().filter(|l| l.starts_with("level:")).collect();
    assert_eq!(level, ["level:0|g", "level:-2.5|g"]);
    let stats = guard.shutdown().unwrap();
    assert_eq!(*rx.accepted.lock().unwrap(), 1);
    assert_eq!(stats.connects, 1);
    assert_eq!(stats.lines_sent, 1_002);
}

#[test]
fn a_receiver_that_restarts_gets_every_increment_once_it_is_back() {
    let mut rx = TcpReceiver::new();
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));

    counter.increment(5);
    let lines = flush_until(&handle, &rx, |l| counter_sum(l, "jobs") == 5);
    assert_eq!(counter_sum(&lines, "jobs"), 5);

    // The receiver goes away (graceful close); increments keep coming.
    rx.stop();
    for _ in 0..3 {
        counter.increment(7);
        handle.flush().unwrap();
    }
    assert_eq!(counter_sum(&rx.lines(), "jobs"), 5);

    rx.restart();
    let lines = flush_until(&handle, &rx, |l| counter_sum(l, "jobs") >= 26);
    let stats = guard.shutdown().unwrap();
    assert_eq!(
        counter_sum(&lines, "jobs"),
        26,
        "nothing lost or doubled: {lines:?}"
    );
    assert!(stats.connects >= 2);
    assert!(stats.send_errors >= 1);
    assert_eq!(stats.lines_dropped_send, 0);
}

#[test]
fn a_destination_that_never_answers_does_not_hang_shutdown() {
    // Port 1 (tcpmux) is privileged and unused: it refuses connections, and unlike a freed
    // ephemeral port no parallel test can take it meanwhile.
    let (recorder, exporter) = ExporterBuilder::statsd("tcp://127.0.0.1:1")
        .with_shutdown_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    metrics::with_local_recorder(&recorder, || metrics::counter!("lost").increment(1));
    let start = Instant::now();
    assert_eq!(
        guard.shutdown(),
        Err(metrics_exporter_statsd_graphite::FlushError::Dropped { lines: 1 }),
        "the loss is reported, not hidden behind Ok"
    );
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        start.elapsed()
    );
    let stats = handle.stats();
    assert_eq!(stats.lines_dropped_shutdown, 1);
    assert_eq!(stats.lines_sent, 0);
}

#[test]
fn re_resolving_on_a_timer_keeps_a_healthy_connection() {
    let rx = TcpReceiver::new();
    // "localhost" may resolve to ::1 and 127.0.0.1; the receiver listens on 127.0.0.1 only.
    let endpoint = format!("tcp://localhost:{}", rx.addr().port());
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        .with_resolve_interval(Duration::from_millis(1))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("dns"));
    for _ in 0..5 {
        counter.increment(1);
        guard.handle().flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let lines = rx.wait_for(MAX, |l| counter_sum(l, "dns") == 5);
    assert_eq!(counter_sum(&lines, "dns"), 5);
    let stats = guard.shutdown().unwrap();
    assert_eq!(
        *rx.accepted.lock().unwrap(),
        1,
        "no reconnect while the address is unchanged"
    );
    assert_eq!(stats.connects, 1);
}

#[test]
fn ipv6_loopback_destinations_work_over_tcp() {
    let Some(listener) = require_ipv6_loopback(std::net::TcpListener::bind("[::1]:0")) else {
        return;
    };
    let rx = TcpReceiver::on(listener);
    assert!(
        rx.endpoint().starts_with("tcp://[::1]:"),
        "{}",
        rx.endpoint()
    );
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("v6").increment(3);
        metrics::gauge!("level").set(2.5);
    });
    guard.handle().flush().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() >= 2);
    assert_eq!(lines, ["v6:3|c", "level:2.5|g"]);
    let stats = guard.shutdown().unwrap();
    assert_eq!(*rx.accepted.lock().unwrap(), 1);
    assert_eq!((stats.connects, stats.lines_sent), (1, 2));
}
