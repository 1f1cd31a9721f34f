//! Histogram units through `describe_histogram!`, end to end over UDP: every time unit
//! becomes milliseconds for `|ms` timers, and a unit that is not a time is sent as recorded.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed setup must fail the test loudly"
)]

#[path = "support/loopback.rs"]
mod loopback;

use std::time::Duration;

use loopback::UdpReceiver;
use metrics::Unit;
use metrics_exporter_statsd_graphite::{ExporterBuilder, HistogramKind};

#[test]
fn every_described_time_unit_becomes_milliseconds_and_other_units_are_sent_as_recorded() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600))
        // A histogram of sizes is better sent as `|h`; the unit rule is the same either way.
        .with_histogram_kind_for("payload", HistogramKind::Histogram)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::describe_histogram!("t.s", Unit::Seconds, "");
        metrics::describe_histogram!("t.ms", Unit::Milliseconds, "");
        metrics::describe_histogram!("t.us", Unit::Microseconds, "");
        metrics::describe_histogram!("t.ns", Unit::Nanoseconds, "");
        metrics::describe_histogram!("payload.size", Unit::Bytes, "");
        metrics::describe_histogram!("queue.depth", Unit::Count, "");
        metrics::histogram!("t.s").record(Duration::from_micros(12_500));
        metrics::histogram!("t.ms").record(7.25);
        metrics::histogram!("t.us").record(1_500.0);
        metrics::histogram!("t.ns").record(2_500_000.0);
        metrics::histogram!("payload.size").record(1_500.0);
        metrics::histogram!("queue.depth").record(3.0);
    });
    guard.handle().flush().unwrap();
    let mut lines = rx.drain(Duration::from_millis(300), Duration::from_secs(10));
    lines.sort();
    assert_eq!(
        lines,
        [
            "payload.size:1500|h",
            "queue.depth:3|ms",
            "t.ms:7.25|ms",
            "t.ns:2.5|ms",
            "t.s:12.5|ms",
            "t.us:1.5|ms",
        ]
    );
    guard.shutdown().unwrap();
}
