//! Captures against real sockets: the same operations recorded once through `build_capture`
//! (or a client capture) and once through a real exporter (or client) sending to a loopback
//! receiver give byte-for-byte the same payloads, for StatsD, DogStatsD, Graphite plaintext
//! and Graphite pickle. Plus gauge continuity, payload splitting, and builds for hosts that do
//! not resolve.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test: anything unexpected must fail loudly"
)]

#[path = "support/loopback.rs"]
mod loopback;

use std::time::{Duration, UNIX_EPOCH};

use loopback::{TcpReceiver, UdpReceiver};
use metrics_exporter_statsd_graphite::{
    BuildError, CallOpts, ExporterBuilder, Flushed, HistogramKind, SetHandle,
};

const MAX: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(200);
/// Long: the real exporters here flush on demand, and Graphite timestamps are aligned down to
/// the interval, so the capture (flushed a moment later) stamps the same time.
const INTERVAL: Duration = Duration::from_secs(3600);

/// The operations both sides record; `set` registers a set on that side.
fn record(set: &dyn Fn(&'static str) -> SetHandle) {
    metrics::counter!("requests", "route" => "/a", "method" => "GET").increment(2);
    metrics::counter!("requests", "route" => "/a", "method" => "GET").increment(3);
    metrics::counter!("errors").increment(1);
    metrics::gauge!("in_flight").set(4.0);
    metrics::gauge!("temperature").set(-5.0);
    metrics::gauge!("queue").increment(2.5);
    for v in [0.5, 1.25, 3.0, 8.0] {
        metrics::histogram!("latency", "db" => "main").record(v);
    }
    set("users").insert("alice");
}

/// Records [`record`] through a capture of `builder` and flushes once.
fn captured(builder: ExporterBuilder) -> Flushed {
    let (recorder, mut capture) = builder.build_capture().unwrap();
    metrics::with_local_recorder(&recorder, || record(&|name| capture.set(name)));
    capture.flush()
}

/// Records [`record`] through a real exporter of `builder`, flushes once on demand and runs
/// `wait` while the exporter still runs.
fn sent<T>(builder: ExporterBuilder, wait: impl FnOnce() -> T) -> T {
    let (recorder, exporter) = builder.build().unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    metrics::with_local_recorder(&recorder, || record(&|name| handle.set(name)));
    handle.flush().unwrap();
    let out = wait();
    drop(guard);
    out
}

/// What a UDP receiver got from a real exporter, datagram by datagram, once `lines` arrived.
fn datagrams(rx: &mut UdpReceiver, builder: ExporterBuilder, lines: usize) -> Vec<Vec<u8>> {
    sent(builder, || {
        rx.wait_for(MAX, |l| l.len() >= lines);
        rx.drain(QUIET, MAX);
        rx.datagrams.clone()
    })
}

/// What a TCP receiver got from a real exporter, once `len` bytes arrived.
fn stream_bytes(rx: &TcpReceiver, builder: ExporterBuilder, len: usize) -> Vec<u8> {
    sent(builder, || {
        let start = std::time::Instant::now();
        while rx.raw().len() < len && start.elapsed() < MAX {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(QUIET);
        rx.raw()
    })
}

#[test]
fn a_statsd_capture_holds_exactly_the_datagrams_a_udp_receiver_gets() {
    let mut rx = UdpReceiver::new();
    let builder = ExporterBuilder::statsd(rx.endpoint())
        .with_prefix("app")
        .with_flush_interval(INTERVAL);
    let capture = captured(builder.clone().with_remote_address("statsd.invalid:8125"));
    assert!(
        capture
            .lines()
            .contains(&"app.requests.GET.a:5|c".to_owned())
    );
    // The Etsy negative gauge pair, in one payload.
    assert!(
        capture
            .lines()
            .windows(2)
            .any(|w| w == ["app.temperature:0|g", "app.temperature:-5|g"])
    );
    let got = datagrams(&mut rx, builder, capture.lines().len());
    assert_eq!(got, capture.payloads());
}

#[test]
fn a_dogstatsd_capture_holds_exactly_the_datagrams_a_udp_receiver_gets() {
    let mut rx = UdpReceiver::new();
    let builder = ExporterBuilder::dogstatsd(rx.endpoint())
        .with_global_labels([("env", "test")])
        .with_histogram_kind(HistogramKind::Distribution)
        .with_flush_interval(INTERVAL);
    let capture = captured(builder.clone());
    assert!(
        capture
            .lines()
            .contains(&"latency:0.5:1.25:3:8|d|#db:main,env:test".to_owned()),
        "{:?}",
        capture.lines()
    );
    let got = datagrams(&mut rx, builder, capture.lines().len());
    assert_eq!(got, capture.payloads());
}

#[test]
fn a_graphite_capture_holds_exactly_the_bytes_a_tcp_receiver_gets() {
    let rx = TcpReceiver::new();
    let builder = ExporterBuilder::graphite(rx.endpoint())
        .with_prefix("app")
        .with_flush_interval(INTERVAL);
    let capture = captured(builder.clone());
    let expected = capture.payloads().concat();
    assert!(expected.ends_with(b"\n"), "stream lines keep their newline");
    let got = stream_bytes(&rx, builder, expected.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(capture.lines(), rx.lines());
}

#[test]
fn a_graphite_pickle_capture_holds_exactly_the_frames_a_tcp_receiver_gets() {
    let rx = TcpReceiver::new();
    let builder = ExporterBuilder::graphite_pickle(rx.endpoint()).with_flush_interval(INTERVAL);
    let capture = captured(builder.clone());
    let expected = capture.payloads().concat();
    let got = stream_bytes(&rx, builder, expected.len());
    assert_eq!(got, expected);
    // The frames decode to the lines the plaintext protocol sends for the same operations.
    let plaintext =
        captured(ExporterBuilder::graphite("graphite.invalid:2003").with_flush_interval(INTERVAL));
    assert_eq!(capture.lines(), plaintext.lines());
    assert!(!capture.lines().is_empty());
}

#[test]
fn a_gauge_is_captured_again_at_every_flush_until_it_changes() {
    let (recorder, mut capture) = ExporterBuilder::graphite("graphite.invalid:2003")
        .with_flush_interval(Duration::from_secs(10))
        .build_capture()
        .unwrap();
    let queue = metrics::with_local_recorder(&recorder, || metrics::gauge!("queue"));
    queue.set(7.0);
    let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(capture.flush_at(at).lines(), ["queue 7 1700000000"]);
    assert_eq!(
        capture.flush_at(at + Duration::from_secs(10)).lines(),
        ["queue 7 1700000010"]
    );
    queue.set(9.0);
    assert_eq!(
        capture.flush_at(at + Duration::from_secs(20)).lines(),
        ["queue 9 1700000020"]
    );
}

#[test]
fn with_gauge_resend_off_an_unchanged_gauge_is_captured_once() {
    let (recorder, mut capture) = ExporterBuilder::statsd("statsd.invalid:8125")
        .with_gauge_resend(false)
        .build_capture()
        .unwrap();
    metrics::with_local_recorder(&recorder, || metrics::gauge!("queue").set(7.0));
    assert_eq!(capture.flush().lines(), ["queue:7|g"]);
    assert!(capture.flush().is_empty());
}

#[test]
fn the_real_exporter_resends_a_gauge_on_each_tick_as_the_capture_does() {
    let mut rx = UdpReceiver::new();
    let builder = ExporterBuilder::statsd(rx.endpoint());
    let (recorder, mut capture) = builder.clone().build_capture().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::gauge!("queue").set(7.0));
    let captured: Vec<Vec<u8>> = [capture.flush(), capture.flush()]
        .iter()
        .flat_map(|f| f.payloads().to_vec())
        .collect();
    let (recorder, exporter) = builder
        .with_flush_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || metrics::gauge!("queue").set(7.0));
    let guard = exporter.start().unwrap();
    rx.wait_for(MAX, |l| l.len() >= 2);
    drop(guard);
    assert_eq!(rx.datagrams[..2], captured);
}

#[test]
fn a_capture_splits_payloads_at_the_size_limit_as_the_socket_does() {
    let mut rx = UdpReceiver::new();
    let builder = ExporterBuilder::statsd(rx.endpoint())
        .with_maximum_payload_length(600)
        .with_flush_interval(INTERVAL);
    let ops = || {
        for i in 0..100 {
            metrics::counter!(format!("jobs.kind_{i:03}")).increment(i + 1);
        }
    };
    let (recorder, mut capture) = builder.clone().build_capture().unwrap();
    metrics::with_local_recorder(&recorder, ops);
    let flushed = capture.flush();
    assert!(
        flushed.payloads().len() > 1,
        "100 lines do not fit in 600 bytes"
    );
    assert!(flushed.payloads().iter().all(|p| p.len() <= 600));
    assert_eq!(flushed.lines().len(), 100);
    assert_eq!(
        capture.stats().payloads_sent,
        flushed.payloads().len() as u64
    );
    let (recorder, exporter) = builder.build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, ops);
    guard.handle().flush().unwrap();
    rx.wait_for(MAX, |l| l.len() >= 100);
    rx.drain(QUIET, MAX);
    drop(guard);
    assert_eq!(rx.datagrams, flushed.payloads());
}

#[test]
fn a_capture_builds_for_a_host_that_does_not_resolve() {
    let builders = [
        ExporterBuilder::statsd("name.invalid:8125"),
        ExporterBuilder::dogstatsd("name.invalid:8125"),
        ExporterBuilder::graphite("name.invalid:2003"),
        ExporterBuilder::graphite_pickle("name.invalid:2004"),
    ];
    for builder in builders {
        let (recorder, mut capture) = builder.build_capture().unwrap();
        metrics::with_local_recorder(&recorder, || metrics::counter!("c").increment(1));
        assert_eq!(capture.flush().lines().len(), 1);
        assert_eq!(capture.stats().send_errors, 0);
    }
}

#[test]
fn a_capture_refuses_the_settings_build_refuses() {
    let invalid = ExporterBuilder::statsd("name.invalid:8125").with_flush_interval(Duration::ZERO);
    assert!(matches!(
        invalid.build_capture(),
        Err(BuildError::ZeroFlushInterval)
    ));
    let pickle_over_udp = ExporterBuilder::graphite_pickle("udp://name.invalid:2004");
    assert!(pickle_over_udp.build_capture().is_err());
}

#[tokio::test]
async fn a_statsd_client_capture_holds_exactly_what_the_client_sends() {
    let mut rx = UdpReceiver::new();
    let builder = ExporterBuilder::dogstatsd(rx.endpoint()).with_maximum_payload_length(64);
    let (mut fake, capture) = builder
        .clone()
        .with_remote_address("dsd.invalid:8125")
        .build_statsd_client_capture()
        .unwrap();
    let mut real = builder.build_statsd_client().unwrap();
    for client in [&mut fake, &mut real] {
        client.count("jobs", 2, CallOpts::default().tags(&[("queue", "high")]));
        client.gauge("depth", 7.5, CallOpts::default());
        client.set("users", "alice", CallOpts::default());
        client.timing_ms("db", 12.5, CallOpts::default());
        client.count(
            "a.longer.name.for.the.second.payload",
            1,
            CallOpts::default(),
        );
        client.flush().await.unwrap();
    }
    let flushed = capture.take();
    assert_eq!(
        flushed.lines(),
        [
            "jobs:2|c|#queue:high",
            "depth:7.5|g",
            "users:alice|s",
            "db:12.5|ms",
            "a.longer.name.for.the.second.payload:1|c"
        ]
    );
    assert!(flushed.payloads().len() > 1, "64-byte payloads");
    rx.wait_for(MAX, |l| l.len() >= 5);
    rx.drain(QUIET, MAX);
    assert_eq!(rx.datagrams, flushed.payloads());
    assert!(capture.take().is_empty(), "taken once");
}

#[tokio::test]
async fn a_graphite_client_capture_holds_exactly_the_pickle_frames_the_client_sends() {
    let rx = TcpReceiver::new();
    let builder = ExporterBuilder::graphite_pickle(rx.endpoint());
    let (mut fake, capture) = builder.clone().build_client_capture().unwrap();
    let mut real = builder.build_client().unwrap();
    for client in [&mut fake, &mut real] {
        client.send_at("jobs.imported", 1250.0, 1_700_000_000);
        client.send_many_at([("jobs.failed", 3.0), ("jobs.ratio", 0.125)], 1_700_000_060);
        client.flush().await.unwrap();
    }
    let flushed = capture.take();
    assert_eq!(
        flushed.lines(),
        [
            "jobs.imported 1250 1700000000",
            "jobs.failed 3 1700000060",
            "jobs.ratio 0.125 1700000060"
        ]
    );
    let expected = flushed.payloads().concat();
    let start = std::time::Instant::now();
    while rx.raw().len() < expected.len() && start.elapsed() < MAX {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(rx.raw(), expected);
}

#[test]
fn client_captures_refuse_the_other_protocols() {
    assert!(
        ExporterBuilder::graphite("name.invalid:2003")
            .build_statsd_client_capture()
            .is_err()
    );
    assert!(
        ExporterBuilder::statsd("name.invalid:8125")
            .build_client_capture()
            .is_err()
    );
}
