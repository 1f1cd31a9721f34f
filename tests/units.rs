//! Histogram units, end to end over loopback sockets. The rule (crate docs, "Histogram
//! units"): a value is sent in the unit it was recorded in, except on a `|ms` line, which
//! carries milliseconds. Checked for every protocol and wire type with a `Duration` of
//! 250 ms (recorded by `metrics` as 0.25 seconds), and through `describe_histogram!`: every
//! time unit becomes milliseconds for `|ms` timers, and a unit that is not a time is sent as
//! recorded.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed setup must fail the test loudly"
)]
#![allow(
    clippy::float_cmp,
    reason = "every compared value is exactly representable"
)]

#[path = "support/graphite_parser.rs"]
mod graphite_parser;
#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/pickle_parser.rs"]
mod pickle_parser;

use std::time::{Duration, Instant};

use loopback::{TcpReceiver, UdpReceiver};
use metrics::Unit;
use metrics_exporter_statsd_graphite::{ExporterBuilder, HistogramKind};

const MAX: Duration = Duration::from_secs(10);

/// A quarter of a second, as `metrics` records a `Duration`: `0.25` (seconds).
const QUARTER: Duration = Duration::from_millis(250);

/// The lines `builder` sends for one undescribed histogram `lat` that recorded [`QUARTER`].
fn statsd_lines_for_a_quarter_second(builder: ExporterBuilder) -> Vec<String> {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder
        .with_remote_address(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::histogram!("lat").record(QUARTER));
    guard.shutdown().unwrap();
    rx.wait_for(MAX, |l| !l.is_empty())
}

#[test]
fn statsd_ms_lines_carry_milliseconds_and_h_lines_the_recorded_seconds() {
    let statsd = || ExporterBuilder::statsd("udp://127.0.0.1:9");
    assert_eq!(statsd_lines_for_a_quarter_second(statsd()), ["lat:250|ms"]);
    assert_eq!(
        statsd_lines_for_a_quarter_second(statsd().with_histogram_kind(HistogramKind::Histogram)),
        ["lat:0.25|h"]
    );
}

#[test]
fn dogstatsd_d_and_h_lines_carry_the_recorded_seconds_and_ms_lines_milliseconds() {
    let dogstatsd = || ExporterBuilder::dogstatsd("udp://127.0.0.1:9");
    assert_eq!(
        statsd_lines_for_a_quarter_second(dogstatsd()),
        ["lat:0.25|d"]
    );
    assert_eq!(
        statsd_lines_for_a_quarter_second(
            dogstatsd().with_histogram_kind(HistogramKind::Histogram)
        ),
        ["lat:0.25|h"]
    );
    assert_eq!(
        statsd_lines_for_a_quarter_second(dogstatsd().with_histogram_kind(HistogramKind::Timer)),
        ["lat:250|ms"]
    );
}

/// Records [`QUARTER`] into `lat` (described as seconds when `described`) and returns
/// Graphite's `(path, value)` points for it, from the plaintext lines or the pickle frames.
fn graphite_points_for_a_quarter_second(pickle: bool, described: bool) -> Vec<(String, f64)> {
    let rx = TcpReceiver::new();
    let builder = if pickle {
        ExporterBuilder::graphite_pickle(rx.endpoint())
    } else {
        ExporterBuilder::graphite(rx.endpoint())
    };
    let (recorder, exporter) = builder
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        if described {
            metrics::describe_histogram!("lat", Unit::Seconds, "");
        }
        metrics::histogram!("lat").record(QUARTER);
    });
    guard.shutdown().unwrap();
    let start = Instant::now();
    let mut points = loop {
        let raw = rx.raw();
        let points: Vec<(String, f64)> = if pickle {
            pickle_parser::split_frames(&raw)
                .map(|frames| {
                    frames
                        .iter()
                        .flat_map(|f| pickle_parser::parse_frame(f).unwrap())
                        .map(|p| (p.path, p.value))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            rx.lines()
                .iter()
                .map(|l| {
                    let mut fields = l.split(' ');
                    let path = fields.next().unwrap().to_owned();
                    (path, fields.next().unwrap().parse().unwrap())
                })
                .collect()
        };
        if points.len() >= 9 || start.elapsed() > MAX {
            break points;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    points.sort_by(|a, b| a.0.cmp(&b.0));
    points
}

#[test]
fn graphite_summaries_carry_the_recorded_seconds_in_plaintext_and_pickle() {
    let expected: Vec<(String, f64)> = [
        ("lat.count", 1.0),
        ("lat.max", 0.25),
        ("lat.mean", 0.25),
        ("lat.min", 0.25),
        ("lat.p50", 0.25),
        ("lat.p90", 0.25),
        ("lat.p99", 0.25),
        ("lat.p999", 0.25),
        ("lat.sum", 0.25),
    ]
    .into_iter()
    .map(|(p, v)| (p.to_owned(), v))
    .collect();
    for pickle in [false, true] {
        for described in [false, true] {
            assert_eq!(
                graphite_points_for_a_quarter_second(pickle, described),
                expected,
                "pickle: {pickle}, described as seconds: {described}"
            );
        }
    }
}

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
