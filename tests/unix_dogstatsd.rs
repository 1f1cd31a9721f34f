//! DogStatsD over Unix sockets on real sockets in a temp dir: datagram and length-prefixed
//! stream framing checked byte for byte with the spec parser; a socket that is missing at
//! start and appears later; a receiver that restarts (its socket removed and recreated); and a
//! full datagram queue that drops and counts instead of blocking.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup must fail the test loudly"
)]
#![allow(clippy::float_cmp, reason = "every compared value is a small integer")]

#[path = "support/dogstatsd_parser.rs"]
mod dogstatsd_parser;

use std::io::Read;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::Path;
use std::time::{Duration, Instant};

use dogstatsd_parser::{Metric, parse_datagram, split_length_prefixed};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterGuard, ExporterRecorder};

const MAX: Duration = Duration::from_secs(10);

fn exporter(endpoint: String) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = ExporterBuilder::dogstatsd(endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        .with_global_labels([("env", "test")])
        .build()
        .unwrap();
    (recorder, exporter.start().unwrap())
}

/// Receives datagrams on `socket` until `pred` holds on the parsed metrics (or `MAX`).
fn receive_until(
    socket: &UnixDatagram,
    pred: impl Fn(&[Metric]) -> bool,
) -> (Vec<Vec<u8>>, Vec<Metric>) {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let (mut raw, mut metrics) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let mut buf = vec![0u8; 65_536];
    while !pred(&metrics) && start.elapsed() < MAX {
        if let Ok(n) = socket.recv(&mut buf) {
            raw.push(buf[..n].to_vec());
            metrics.extend(parse_datagram(&buf[..n]).unwrap());
        }
    }
    (raw, metrics)
}

fn count_of(metrics: &[Metric], name: &str) -> f64 {
    metrics
        .iter()
        .filter(|m| m.name == name)
        .map(|m| m.values.iter().sum::<f64>())
        .sum()
}

#[test]
fn unix_datagrams_carry_exact_dogstatsd_lines_within_8192_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsd.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let (recorder, guard) = exporter(format!("unixgram://{}", path.display()));
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("requests", "route" => "/a", "code" => "").increment(3);
        metrics::gauge!("temperature").set(-5.0);
        for i in 0..3000 {
            metrics::histogram!("latency").record(f64::from(i % 7) * 0.5);
        }
    });
    guard.handle().flush().unwrap();
    let (raw, metrics) = receive_until(&socket, |m| {
        m.iter()
            .filter(|m| m.name == "latency")
            .map(|m| m.values.len())
            .sum::<usize>()
            == 1024
    });
    let stats = guard.shutdown().unwrap();
    assert!(
        raw.iter().all(|d| d.len() <= 8192),
        "datagrams over the Agent's 8192-byte buffer"
    );
    let text: Vec<String> = raw
        .iter()
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .collect();
    assert!(
        text[0].starts_with(
            "requests:3|c|#code,env:test,route:/a\ntemperature:-5|g|#env:test\nlatency:"
        ),
        "{}",
        text[0]
    );
    let latency: Vec<&Metric> = metrics.iter().filter(|m| m.name == "latency").collect();
    assert!(
        latency.len() < 10,
        "1024 samples packed into a few lines, not {}",
        latency.len()
    );
    let rate = latency[0].rate.unwrap();
    assert!((rate - 1024.0 / 3000.0).abs() < 1e-6, "rate {rate}");
    assert_eq!(stats.samples_sampled_out, 3000 - 1024);
    assert_eq!(stats.lines_dropped_send, 0);
}

#[test]
fn unix_datagrams_default_to_the_agents_8192_byte_buffer_not_the_udp_or_stream_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("default.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    // No payload length set: the default decides how the lines are cut.
    let (recorder, guard) = exporter(format!("unixgram://{}", path.display()));
    metrics::with_local_recorder(&recorder, || {
        for i in 0..600 {
            metrics::counter!("default.payload.size", "i" => i.to_string()).increment(1);
        }
    });
    guard.handle().flush().unwrap();
    let (raw, metrics) = receive_until(&socket, |m| m.len() == 600);
    let stats = guard.shutdown().unwrap();
    let sizes: Vec<usize> = raw.iter().map(Vec::len).collect();
    assert!(
        sizes.iter().all(|n| *n <= 8192),
        "a datagram over the Agent's 8192-byte buffer: {sizes:?}"
    );
    assert!(
        sizes.iter().any(|n| *n > 1432),
        "cut at the UDP size instead of the Agent's buffer: {sizes:?}"
    );
    let total: usize = sizes.iter().sum();
    assert!(
        total > 2 * 8192,
        "{total} bytes must need several datagrams"
    );
    // Full datagrams: each but the last is within one line of the limit.
    let longest_line = metrics_line_max(&raw);
    assert!(
        sizes[..sizes.len() - 1]
            .iter()
            .all(|n| *n > 8192 - longest_line - 1),
        "{sizes:?}"
    );
    assert_eq!(metrics.len(), 600);
    assert_eq!(count_of(&metrics, "default.payload.size"), 600.0);
    assert_eq!(stats.lines_sent, 600);
    assert_eq!(stats.payloads_sent, raw.len() as u64);
}

/// The longest line in any of `datagrams`.
fn metrics_line_max(datagrams: &[Vec<u8>]) -> usize {
    datagrams
        .iter()
        .flat_map(|d| d.split(|b| *b == b'\n'))
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

#[test]
fn a_unix_stream_carries_length_prefixed_frames_the_agent_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsd.stream");
    let listener = UnixListener::bind(&path).unwrap();
    let (recorder, guard) = exporter(format!("unix://{}", path.display()));
    metrics::with_local_recorder(&recorder, || {
        for i in 0..500 {
            metrics::counter!("hits", "i" => i.to_string()).increment(1);
        }
    });
    guard.handle().flush().unwrap();
    let stats = guard.shutdown().unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).unwrap();
    let frames = split_length_prefixed(&bytes).unwrap();
    assert!(frames.len() > 1, "500 lines need several 8192-byte frames");
    assert!(
        frames
            .iter()
            .all(|f| f.len() <= 8192 && !f.ends_with(b"\n"))
    );
    let metrics: Vec<Metric> = frames
        .iter()
        .flat_map(|f| parse_datagram(f).unwrap())
        .collect();
    assert_eq!(metrics.len(), 500);
    assert_eq!(count_of(&metrics, "hits"), 500.0);
    assert_eq!(stats.lines_sent, 500);
}

#[test]
fn a_socket_that_appears_later_gets_everything_recorded_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.sock");
    let (recorder, guard) = exporter(format!("unixgram://{}", path.display()));
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("waiting"));
    for _ in 0..3 {
        counter.increment(2);
        handle.flush().unwrap();
    }
    assert!(
        handle.stats().send_errors >= 1,
        "the missing socket is reported"
    );
    assert_eq!(
        handle.stats().lines_dropped_send,
        0,
        "nothing drained into drops while it is missing"
    );
    let socket = UnixDatagram::bind(&path).unwrap();
    let (_, metrics) = flush_until(&handle, &socket, |m| count_of(m, "waiting") >= 6.0);
    assert_eq!(count_of(&metrics, "waiting"), 6.0);
    drop(guard);
}

/// Flushes until `pred` holds on what arrived (the reconnect backoff may need a few tries).
fn flush_until(
    handle: &metrics_exporter_statsd_graphite::ExporterHandle,
    socket: &UnixDatagram,
    pred: impl Fn(&[Metric]) -> bool,
) -> (Vec<Vec<u8>>, Vec<Metric>) {
    let start = Instant::now();
    let (mut raw, mut metrics) = (Vec::new(), Vec::new());
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = vec![0u8; 65_536];
    while !pred(&metrics) && start.elapsed() < MAX {
        handle.flush().unwrap();
        while let Ok(n) = socket.recv(&mut buf) {
            raw.push(buf[..n].to_vec());
            metrics.extend(parse_datagram(&buf[..n]).unwrap());
        }
    }
    (raw, metrics)
}

#[test]
fn an_agent_restart_that_recreates_the_socket_loses_nothing_it_could_keep() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restart.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let (recorder, guard) = exporter(format!("unixgram://{}", path.display()));
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));
    counter.increment(5);
    let (_, before) = flush_until(&handle, &socket, |m| count_of(m, "jobs") >= 5.0);
    // The Agent stops: its socket file goes away.
    drop(socket);
    std::fs::remove_file(&path).unwrap();
    counter.increment(7);
    handle.flush().unwrap();
    // ...and comes back at the same path.
    let socket = UnixDatagram::bind(&path).unwrap();
    let (_, after) = flush_until(&handle, &socket, |m| count_of(m, "jobs") >= 7.0);
    assert_eq!(count_of(&before, "jobs") + count_of(&after, "jobs"), 12.0);
    drop(guard);
}

#[test]
fn a_full_datagram_queue_never_blocks_and_loses_nothing_once_the_receiver_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.sock");
    // Bound but not read: the kernel queue fills up.
    let socket = UnixDatagram::bind(&path).unwrap();
    let (recorder, exporter) = ExporterBuilder::dogstatsd(format!("unixgram://{}", path.display()))
        .with_flush_interval(Duration::from_secs(3600))
        .with_maximum_payload_length(4096)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let name = "filler.with.a.rather.long.name.to.fill.datagrams";
    let counters: Vec<metrics::Counter> = metrics::with_local_recorder(&recorder, || {
        (0..400)
            .map(|i| metrics::counter!(name, "i" => i.to_string()))
            .collect()
    });
    let start = Instant::now();
    for _ in 0..40 {
        for c in &counters {
            c.increment(1);
        }
        handle.flush().unwrap();
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "flushes must not wait for the receiver: {:?}",
        start.elapsed()
    );
    let full = handle.stats();
    assert!(full.send_errors > 0, "the full queue was seen: {full:?}");
    assert!(full.lines_sent < 40 * 400, "the queue did fill: {full:?}");
    assert_eq!(
        (full.lines_dropped_send, full.payloads_dropped),
        (0, 0),
        "what the queue cannot take waits (the backlog, the aggregate): {full:?}"
    );
    // The receiver reads again: every increment arrives, exactly once.
    let (_, metrics) = flush_until(&handle, &socket, |m| count_of(m, name) >= 40.0 * 400.0);
    assert_eq!(count_of(&metrics, name), 40.0 * 400.0);
    let stats = handle.stats();
    assert_eq!(stats.lines_dropped_send, 0, "{stats:?}");
    drop(guard);
}

#[test]
fn a_missing_socket_path_is_not_a_build_error() {
    // The Agent may start after the app: building against a path that does not exist yet works.
    assert!(
        ExporterBuilder::dogstatsd(format!(
            "unixgram://{}",
            Path::new("/nonexistent/dsd.sock").display()
        ))
        .build()
        .is_ok()
    );
}

#[test]
fn a_unix_stream_receiver_that_restarts_gets_the_aggregate_on_the_new_connection() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stream-restart.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (recorder, guard) = exporter(format!("unix://{}", path.display()));
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));
    counter.increment(5);
    handle.flush().unwrap();
    let (conn, _) = listener.accept().unwrap();
    // The receiver goes away: connection closed, socket file removed.
    drop(conn);
    drop(listener);
    std::fs::remove_file(&path).unwrap();
    counter.increment(7);
    handle.flush().unwrap();
    assert!(
        handle.stats().send_errors >= 1,
        "the closed peer was noticed"
    );
    // ...and comes back at the same path.
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let start = Instant::now();
    let mut conn = loop {
        handle.flush().unwrap();
        if let Ok((conn, _)) = listener.accept() {
            break conn;
        }
        assert!(start.elapsed() < MAX, "no reconnect");
        std::thread::sleep(Duration::from_millis(20));
    };
    handle.flush().unwrap();
    let stats = guard.shutdown().unwrap();
    conn.set_nonblocking(false).unwrap();
    let mut bytes = Vec::new();
    conn.read_to_end(&mut bytes).unwrap();
    let metrics: Vec<Metric> = split_length_prefixed(&bytes)
        .unwrap()
        .iter()
        .flat_map(|f| parse_datagram(f).unwrap())
        .collect();
    assert_eq!(count_of(&metrics, "jobs"), 7.0, "{metrics:?}");
    assert_eq!(stats.lines_dropped_send, 0);
}

/// Complete length-prefixed frames at the start of `bytes`; a frame cut short at the end is
/// discarded, as the Agent does.
fn complete_frames(bytes: &[u8]) -> Vec<Metric> {
    let mut metrics = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        if rest.len() < 4 + len {
            break;
        }
        metrics.extend(parse_datagram(&rest[4..4 + len]).unwrap());
        rest = &rest[4 + len..];
    }
    metrics
}

#[test]
fn a_frame_cut_by_a_stalled_reader_is_resent_whole_and_never_counted_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stall.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (recorder, exporter) = ExporterBuilder::dogstatsd(format!("unix://{}", path.display()))
        .with_flush_interval(Duration::from_secs(3600))
        .with_maximum_payload_length(60_000)
        .with_write_timeout(Duration::from_millis(200))
        // 20 000 series of one metric, to fill the kernel buffer: past the default limit.
        .with_max_series_per_metric(20_000)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let series = 20_000;
    metrics::with_local_recorder(&recorder, || {
        for i in 0..series {
            metrics::counter!("stall.a.fairly.long.metric.name.to.fill.buffers", "i" => i.to_string()).increment(1);
        }
    });
    // Nobody reads: the kernel buffer fills, a write times out mid-frame, the connection drops.
    handle.flush().unwrap();
    let (mut first, _) = listener.accept().unwrap();
    let mut bytes = Vec::new();
    first.read_to_end(&mut bytes).unwrap();
    let mut received = complete_frames(&bytes);
    assert!(
        received.len() < series,
        "the stall must cut the flush short"
    );
    // A reader for the reconnection, which gets the rest from the backlog.
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        conn.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let start = Instant::now();
    while handle.stats().lines_sent < series as u64 && start.elapsed() < MAX {
        handle.flush().unwrap();
    }
    let stats = guard.shutdown().unwrap();
    received.extend(complete_frames(&reader.join().unwrap()));
    assert_eq!(
        received.len() as u64,
        stats.lines_sent,
        "every line counted as sent arrived in a whole frame"
    );
    assert_eq!(received.len(), series, "{stats:?}");
}

#[test]
fn unix_scheme_on_a_datagram_socket_switches_to_datagrams() {
    // What the Datadog admission controller injects: DD_DOGSTATSD_URL=unix://<datagram socket>.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsd.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let (recorder, guard) = exporter(format!("unix://{}", path.display()));
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("auto"));
    counter.increment(3);
    let (raw, metrics) = flush_until(&guard.handle(), &socket, |m| count_of(m, "auto") >= 3.0);
    assert_eq!(count_of(&metrics, "auto"), 3.0);
    assert!(
        raw.iter().all(|d| !d.ends_with(b"\n")),
        "datagrams, not stream frames"
    );
    drop(guard);
}

#[test]
fn a_dead_receivers_leftover_socket_file_keeps_the_aggregate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    // Bound then closed without unlinking: the file stays, nobody listens (ECONNREFUSED).
    drop(UnixDatagram::bind(&path).unwrap());
    let (recorder, guard) = exporter(format!("unixgram://{}", path.display()));
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("kept"));
    for _ in 0..3 {
        counter.increment(4);
        handle.flush().unwrap();
    }
    let stats = handle.stats();
    assert!(stats.send_errors >= 1, "{stats:?}");
    assert_eq!(
        stats.lines_dropped_send, 0,
        "nothing drained into drops: {stats:?}"
    );
    std::fs::remove_file(&path).unwrap();
    let socket = UnixDatagram::bind(&path).unwrap();
    let (_, metrics) = flush_until(&handle, &socket, |m| count_of(m, "kept") >= 12.0);
    assert_eq!(count_of(&metrics, "kept"), 12.0);
    drop(guard);
}

/// The outage of the defect report: the socket is missing while histograms are recorded and
/// flushed over several backoff periods, then appears. Every datagram must parse, carry each
/// sample exactly once, and nothing may be counted as dropped.
fn histograms_survive_a_unix_datagram_outage(
    builder: ExporterBuilder,
    path: &Path,
    expected_lines: usize,
) -> Vec<String> {
    let (recorder, exporter) = builder
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let latency = metrics::with_local_recorder(&recorder, || metrics::histogram!("lat"));
    latency.record(1.0);
    latency.record(2.0);
    handle.flush().unwrap();
    latency.record(3.0);
    // Past the first reconnect backoff (at most 100 ms), so this flush tries again and fails.
    std::thread::sleep(Duration::from_millis(300));
    handle.flush().unwrap();
    latency.record(4.0);
    handle.flush().unwrap();
    let stats = handle.stats();
    assert_eq!(
        (stats.lines_sent, stats.lines_dropped_send),
        (0, 0),
        "{stats:?}"
    );
    let socket = UnixDatagram::bind(path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 65_536];
    let start = Instant::now();
    while lines.len() < expected_lines && start.elapsed() < MAX {
        handle.flush().unwrap();
        while let Ok(n) = socket.recv(&mut buf) {
            let datagram = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(
                !datagram.ends_with('\n'),
                "a datagram carries no final newline: {datagram:?}"
            );
            lines.extend(datagram.split('\n').map(str::to_owned));
        }
    }
    let stats = handle.stats();
    assert_eq!(stats.lines_dropped_send, 0, "{stats:?}");
    assert_eq!(stats.lines_sent, expected_lines as u64, "{stats:?}");
    drop(guard);
    lines
}

#[test]
fn a_unix_datagram_outage_keeps_each_intervals_histogram_line_whole_for_dogstatsd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsd.sock");
    let builder = ExporterBuilder::dogstatsd(format!("unixgram://{}", path.display()));
    // One line per interval: the samples of an interval are packed.
    let lines = histograms_survive_a_unix_datagram_outage(builder, &path, 3);
    // Each line parses on its own with the spec parser, and the samples are exactly those recorded.
    let mut samples: Vec<f64> = lines
        .iter()
        .flat_map(|l| parse_datagram(l.as_bytes()).unwrap())
        .inspect(|m| assert_eq!(m.name, "lat"))
        .flat_map(|m| m.values)
        .collect();
    samples.sort_by(f64::total_cmp);
    assert_eq!(samples, [1.0, 2.0, 3.0, 4.0], "{lines:?}");
    assert_eq!(lines, ["lat:1:2|d", "lat:3|d", "lat:4|d"]);
}

#[test]
fn a_unix_datagram_outage_keeps_each_intervals_histogram_line_whole_for_plain_statsd() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statsd.sock");
    let builder = ExporterBuilder::statsd(format!("unixgram://{}", path.display()));
    // One line per sample.
    let lines = histograms_survive_a_unix_datagram_outage(builder, &path, 4);
    let mut samples: Vec<f64> = Vec::new();
    for line in &lines {
        // Etsy: one name, then `:value|ms` per sample, each in a line of its own or packed.
        let (name, rest) = line.split_once(':').unwrap();
        assert_eq!(name, "lat", "{line:?}");
        for part in rest.split(':') {
            let value = part
                .strip_suffix("|ms")
                .unwrap_or_else(|| panic!("malformed: {line:?}"));
            samples.push(value.parse().unwrap());
        }
    }
    samples.sort_by(f64::total_cmp);
    // Seconds recorded without a unit: StatsD timers are milliseconds.
    assert_eq!(samples, [1000.0, 2000.0, 3000.0, 4000.0], "{lines:?}");
}
