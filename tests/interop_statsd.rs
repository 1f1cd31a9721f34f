//! Interop with real receivers we did not write, started on free loopback ports: Etsy's
//! statsd (npm) over UDP and TCP, and collectd's strict statsd plugin. What they *store* must
//! equal what we recorded, and neither may log a bad line.
// The real-receiver harness (tests/support/receivers.rs) talks over Unix sockets.
#![cfg(unix)]
#![allow(
    clippy::float_cmp,
    reason = "every compared value is a small integer or exact binary fraction"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]

#[path = "support/receivers.rs"]
mod receivers;

use std::net::SocketAddr;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterGuard, ExporterRecorder};
use receivers::{Collectd, EtsyStatsd, require_collectd, require_etsy_statsd};

const WAIT: Duration = Duration::from_secs(15);

fn exporter(endpoint: String) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_prefix("interop")
        .with_flush_interval(Duration::from_secs(3600))
        .with_histogram_max_samples(10)
        .build()
        .expect("builds");
    (recorder, exporter.start().expect("starts"))
}

struct Handles {
    hits: Counter,
    level: Gauge,
    latency: Histogram,
    sampled: Histogram,
}

fn handles(recorder: &ExporterRecorder) -> Handles {
    metrics::with_local_recorder(recorder, || Handles {
        hits: metrics::counter!("hits", "route" => "/a"),
        level: metrics::gauge!("level"),
        latency: metrics::histogram!("latency"),
        sampled: metrics::histogram!("sampled"),
    })
}

/// Two flushes exercising every rule: counters summed across flushes, a gauge going from
/// 5 to -5 (only right if the Etsy `0|g` preamble is sent), Durations as fractional
/// milliseconds, and 40 samples kept as 10 with `|@0.25`.
fn record_and_flush(guard: &ExporterGuard, h: &Handles) {
    h.hits.increment(3);
    h.level.set(5.0);
    h.latency.record(Duration::from_micros(12_500));
    guard.handle().flush().expect("first flush");
    h.hits.increment(4);
    h.level.set(-5.0);
    h.latency.record(Duration::from_micros(1_250));
    for _ in 0..40 {
        h.sampled.record(Duration::from_millis(2));
    }
    guard.handle().flush().expect("second flush");
}

fn check_etsy(statsd: &EtsyStatsd, endpoint: String) {
    let (recorder, guard) = exporter(endpoint);
    let h = handles(&recorder);
    h.level.set(5.0);
    guard.handle().flush().expect("flush");
    // The gauge must exist at 5 on the server before -5 arrives, or the test proves nothing.
    assert!(
        statsd.wait_until(WAIT, |s| s.gauge("interop.level") == Some(5.0)),
        "{}",
        statsd.log()
    );
    record_and_flush(&guard, &h);
    let stats = guard.shutdown().expect("shutdown");
    let done = statsd.wait_until(WAIT, |s| {
        s.counter_total("interop.hits.a") == 7.0
            && s.gauge("interop.level") == Some(-5.0)
            && s.timer_count_total("interop.sampled") == 40.0
    });
    assert!(done, "statsd did not store what we sent:\n{}", statsd.log());
    let mut latency = statsd.timer_values("interop.latency");
    latency.sort_by(f64::total_cmp);
    assert_eq!(latency, vec![1.25, 12.5]);
    assert_eq!(statsd.timer_values("interop.sampled"), vec![2.0; 10]);
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
    assert_eq!(
        stats.lines_dropped_send + stats.lines_dropped_too_long + stats.values_dropped_invalid,
        0
    );
}

#[test]
fn etsy_statsd_stores_exactly_what_we_send_over_udp() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().expect("statsd starts");
    let endpoint = format!("udp://{}", statsd.udp_addr());
    check_etsy(&statsd, endpoint);
}

#[test]
fn etsy_statsd_stores_exactly_what_we_send_over_tcp() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().expect("statsd starts");
    let endpoint = format!("tcp://{}", statsd.tcp_addr());
    check_etsy(&statsd, endpoint);
}

#[test]
fn collectd_parses_every_plain_statsd_line_we_send() {
    if !require_collectd() {
        return;
    }
    let collectd = Collectd::start().expect("collectd starts");
    let addr: SocketAddr = collectd.udp_addr();
    let (recorder, guard) = exporter(format!("udp://{addr}"));
    let h = handles(&recorder);
    h.hits.increment(3);
    h.level.set(5.0);
    h.latency.record(Duration::from_millis(20));
    guard.handle().flush().expect("flush");
    assert!(
        collectd.wait_until(WAIT, |c| c.gauge_values("interop.level").last()
            == Some(&5.0)),
        "{}",
        collectd.log()
    );
    h.hits.increment(4);
    h.level.set(-5.0);
    guard.handle().flush().expect("flush");
    guard.shutdown().expect("shutdown");
    let done = collectd.wait_until(WAIT, |c| {
        c.counter_values("interop.hits.a").last() == Some(&7.0)
            && c.gauge_values("interop.level").last() == Some(&-5.0)
    });
    assert!(
        done,
        "collectd did not store what we sent:\n{}",
        collectd.log()
    );
    assert!(
        collectd
            .timer_values("interop.latency", "average")
            .contains(&0.02),
        "{}",
        collectd.log()
    );
    assert_eq!(
        collectd.parse_errors(),
        Vec::<String>::new(),
        "{}",
        collectd.log()
    );
}
