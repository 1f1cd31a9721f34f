//! Our recorder under the `metrics-util` layers users compose in front of it: `PrefixLayer`,
//! `FilterLayer`, `RouterBuilder` and `FanoutBuilder`. Real metrics go through each layer into
//! real exporters sending to loopback receivers, and we assert the exact lines received.
//!
//! What these pin down for users:
//! - a `PrefixLayer` segment goes *after* our own `with_prefix` (the layer renames the key
//!   before our recorder sees it; our prefix is applied when encoding);
//! - a `FilterLayer` pattern matches anywhere in the name, and a filtered metric never reaches
//!   the exporter (no series, no line);
//! - a router matches raw name prefixes (`db` also matches `dbx`; route on `db.`), per metric
//!   kind, and sees the name as renamed by any layer outside it;
//! - a fanout delivers each update to every exporter, each in its own protocol.
#![allow(
    clippy::unwrap_used,
    reason = "the helpers set up exporters and parse lines: a failure must fail the test loudly"
)]

#[path = "support/loopback.rs"]
mod loopback;

use std::time::Duration;

use loopback::{TcpReceiver, UdpReceiver};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterGuard, ExporterRecorder};
use metrics_util::MetricKindMask;
use metrics_util::layers::{FanoutBuilder, FilterLayer, Layer, PrefixLayer, RouterBuilder};

const MAX: Duration = Duration::from_secs(10);
/// Long enough that no tick fires during a test: every test flushes explicitly.
const NO_TICKS: Duration = Duration::from_secs(3600);

fn statsd(rx: &UdpReceiver) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(NO_TICKS)
        .build()
        .unwrap();
    (recorder, exporter.start().unwrap())
}

fn graphite(rx: &TcpReceiver) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = ExporterBuilder::graphite(rx.endpoint())
        .with_flush_interval(NO_TICKS)
        .with_percentiles([0.5])
        .build()
        .unwrap();
    (recorder, exporter.start().unwrap())
}

/// Graphite lines without their timestamp, sorted, after checking that every line carries the
/// same one.
fn graphite_lines(lines: &[String]) -> Vec<String> {
    let stamps: Vec<&str> = lines
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().1)
        .collect();
    assert!(stamps.iter().all(|t| *t == stamps[0]), "{lines:?}");
    let mut without: Vec<String> = lines
        .iter()
        .map(|l| l.rsplit_once(' ').unwrap().0.to_owned())
        .collect();
    without.sort();
    without
}

fn sorted(mut lines: Vec<String>) -> Vec<String> {
    lines.sort();
    lines
}

#[test]
fn a_prefix_layer_segment_comes_after_the_exporters_own_prefix() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(NO_TICKS)
        .with_prefix("app")
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let layered = PrefixLayer::new("svc").layer(recorder);
    metrics::with_local_recorder(&layered, || {
        metrics::counter!("requests", "route" => "/a").increment(3);
        metrics::gauge!("in_flight").set(2.0);
        metrics::histogram!("latency").record(0.012_5);
    });
    guard.handle().flush().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() == 3);
    assert_eq!(
        sorted(lines),
        [
            "app.svc.in_flight:2|g",
            "app.svc.latency:12.5|ms",
            "app.svc.requests.a:3|c",
        ]
    );
    assert_eq!(guard.shutdown().unwrap().lines_sent, 3);
}

#[test]
fn a_filter_layer_drops_every_name_containing_a_pattern_before_the_exporter_sees_it() {
    let mut rx = UdpReceiver::new();
    let (recorder, guard) = statsd(&rx);
    let layered = FilterLayer::from_patterns(["noisy"]).layer(recorder);
    metrics::with_local_recorder(&layered, || {
        metrics::counter!("requests").increment(1);
        metrics::counter!("noisy_debug_events").increment(1_000);
        // The pattern matches anywhere in the name, not only at the start.
        metrics::gauge!("cache.noisy_ratio").set(0.5);
        metrics::histogram!("latency", "noisy" => "label").record(0.002);
    });
    guard.handle().flush().unwrap();
    // Labels are not matched: only names are.
    let lines = rx.wait_for(MAX, |l| l.len() == 2);
    assert_eq!(sorted(lines), ["latency.label:2|ms", "requests:1|c"]);
    let stats = guard.shutdown().unwrap();
    // The filtered metrics got no-op handles: they never became series of ours.
    assert_eq!(stats.series, 2);
    assert_eq!(stats.lines_sent, 2);
}

#[test]
fn a_router_sends_db_metrics_to_graphite_and_the_rest_to_statsd() {
    let mut udp = UdpReceiver::new();
    let tcp = TcpReceiver::new();
    let (to_statsd, statsd_guard) = statsd(&udp);
    let (to_graphite, graphite_guard) = graphite(&tcp);
    let mut router = RouterBuilder::from_recorder(to_statsd);
    // A route is a raw prefix of the name: "db" would also take "dbx.*", so we route "db.".
    router.add_route(MetricKindMask::ALL, "db.", to_graphite);
    let router = router.build();
    metrics::with_local_recorder(&router, || {
        metrics::counter!("db.queries", "table" => "users").increment(4);
        metrics::gauge!("db.pool.idle").set(7.0);
        metrics::histogram!("db.query_time").record(3.0);
        metrics::histogram!("db.query_time").record(5.0);
        metrics::counter!("http.requests").increment(2);
        metrics::counter!("dbx.not_a_db_metric").increment(1);
    });
    statsd_guard.handle().flush().unwrap();
    graphite_guard.handle().flush().unwrap();

    let statsd_lines = udp.wait_for(MAX, |l| l.len() == 2);
    assert_eq!(
        sorted(statsd_lines),
        ["dbx.not_a_db_metric:1|c", "http.requests:2|c"]
    );
    let lines = tcp.wait_for(MAX, |l| l.len() == 8);
    assert_eq!(
        graphite_lines(&lines),
        [
            "db.pool.idle 7",
            "db.queries;table=users 4",
            "db.query_time.count 2",
            "db.query_time.max 5",
            "db.query_time.mean 4",
            "db.query_time.min 3",
            "db.query_time.p50 3",
            "db.query_time.sum 8",
        ]
    );
    assert_eq!(statsd_guard.shutdown().unwrap().lines_sent, 2);
    assert_eq!(graphite_guard.shutdown().unwrap().lines_sent, 8);
}

#[test]
fn a_route_is_a_raw_name_prefix_so_db_without_a_dot_also_takes_dbx() {
    let mut default_rx = UdpReceiver::new();
    let mut routed_rx = UdpReceiver::new();
    let (default, default_guard) = statsd(&default_rx);
    let (db_recorder, routed_guard) = statsd(&routed_rx);
    let mut router = RouterBuilder::from_recorder(default);
    router.add_route(MetricKindMask::ALL, "db", db_recorder);
    let router = router.build();
    metrics::with_local_recorder(&router, || {
        metrics::counter!("db.queries").increment(1);
        metrics::counter!("dbx.events").increment(1);
        metrics::counter!("http.requests").increment(1);
    });
    default_guard.handle().flush().unwrap();
    routed_guard.handle().flush().unwrap();
    assert_eq!(
        sorted(routed_rx.wait_for(MAX, |l| l.len() == 2)),
        ["db.queries:1|c", "dbx.events:1|c"]
    );
    assert_eq!(
        default_rx.wait_for(MAX, |l| !l.is_empty()),
        ["http.requests:1|c"]
    );
    assert_eq!(routed_guard.shutdown().unwrap().lines_sent, 2);
    assert_eq!(default_guard.shutdown().unwrap().lines_sent, 1);
}

#[test]
fn a_router_can_send_one_kind_of_a_name_elsewhere_and_keep_the_others() {
    let mut udp = UdpReceiver::new();
    let tcp = TcpReceiver::new();
    let (to_statsd, statsd_guard) = statsd(&udp);
    let (to_graphite, graphite_guard) = graphite(&tcp);
    let mut router = RouterBuilder::from_recorder(to_statsd);
    router.add_route(MetricKindMask::HISTOGRAM, "http.", to_graphite);
    let router = router.build();
    metrics::with_local_recorder(&router, || {
        metrics::counter!("http.requests").increment(1);
        metrics::histogram!("http.latency").record(2.0);
        metrics::histogram!("jobs.duration").record(0.25);
    });
    statsd_guard.handle().flush().unwrap();
    graphite_guard.handle().flush().unwrap();

    let statsd_lines = udp.wait_for(MAX, |l| l.len() == 2);
    assert_eq!(
        sorted(statsd_lines),
        ["http.requests:1|c", "jobs.duration:250|ms"]
    );
    let lines = tcp.wait_for(MAX, |l| l.len() == 6);
    assert_eq!(
        graphite_lines(&lines),
        [
            "http.latency.count 1",
            "http.latency.max 2",
            "http.latency.mean 2",
            "http.latency.min 2",
            "http.latency.p50 2",
            "http.latency.sum 2",
        ]
    );
    statsd_guard.shutdown().unwrap();
    graphite_guard.shutdown().unwrap();
}

#[test]
fn a_router_under_a_prefix_layer_matches_the_prefixed_name() {
    let mut udp = UdpReceiver::new();
    let tcp = TcpReceiver::new();
    let (to_statsd, statsd_guard) = statsd(&udp);
    let (to_graphite, graphite_guard) = graphite(&tcp);
    let mut router = RouterBuilder::from_recorder(to_statsd);
    // The prefix layer renames the key before the router looks at it.
    router.add_route(MetricKindMask::ALL, "svc.db.", to_graphite);
    let stack = PrefixLayer::new("svc").layer(router.build());
    metrics::with_local_recorder(&stack, || {
        metrics::gauge!("db.pool.idle").set(3.0);
        metrics::gauge!("http.in_flight").set(1.0);
    });
    statsd_guard.handle().flush().unwrap();
    graphite_guard.handle().flush().unwrap();
    assert_eq!(
        udp.wait_for(MAX, |l| !l.is_empty()),
        ["svc.http.in_flight:1|g"]
    );
    assert_eq!(
        graphite_lines(&tcp.wait_for(MAX, |l| !l.is_empty())),
        ["svc.db.pool.idle 3"]
    );
    assert_eq!(statsd_guard.shutdown().unwrap().lines_sent, 1);
    assert_eq!(graphite_guard.shutdown().unwrap().lines_sent, 1);
}

#[test]
fn a_fanout_delivers_every_update_to_each_exporter_in_its_own_protocol() {
    let mut plain = UdpReceiver::new();
    let mut dog = UdpReceiver::new();
    let (to_statsd, statsd_guard) = statsd(&plain);
    let (to_dogstatsd, dogstatsd_exporter) = ExporterBuilder::dogstatsd(dog.endpoint())
        .with_flush_interval(NO_TICKS)
        .build()
        .unwrap();
    let dogstatsd_guard = dogstatsd_exporter.start().unwrap();
    let fanout = FanoutBuilder::default()
        .add_recorder(to_statsd)
        .add_recorder(to_dogstatsd)
        .build();
    metrics::with_local_recorder(&fanout, || {
        let requests = metrics::counter!("requests", "route" => "/a");
        requests.increment(2);
        requests.increment(3);
        metrics::gauge!("in_flight").set(4.0);
        metrics::gauge!("in_flight").decrement(1.0);
        metrics::histogram!("latency").record(0.5);
    });
    statsd_guard.handle().flush().unwrap();
    dogstatsd_guard.handle().flush().unwrap();

    assert_eq!(
        sorted(plain.wait_for(MAX, |l| l.len() == 3)),
        ["in_flight:3|g", "latency:500|ms", "requests.a:5|c"]
    );
    assert_eq!(
        sorted(dog.wait_for(MAX, |l| l.len() == 3)),
        ["in_flight:3|g", "latency:0.5|d", "requests:5|c|#route:/a"]
    );
    statsd_guard.shutdown().unwrap();
    dogstatsd_guard.shutdown().unwrap();
}

#[test]
fn filter_prefix_and_router_compose_into_one_stack_as_in_the_layers_example() {
    let mut udp = UdpReceiver::new();
    let tcp = TcpReceiver::new();
    let (to_statsd, statsd_guard) = statsd(&udp);
    let (to_graphite, graphite_guard) = graphite(&tcp);
    let mut router = RouterBuilder::from_recorder(to_statsd);
    router.add_route(MetricKindMask::ALL, "svc.db.", to_graphite);
    // Outermost first: filter on the user's names, then prefix, then route the prefixed name.
    let stack =
        FilterLayer::from_patterns(["debug"]).layer(PrefixLayer::new("svc").layer(router.build()));
    metrics::with_local_recorder(&stack, || {
        metrics::counter!("http.requests", "status" => "200").increment(5);
        metrics::counter!("http.debug_probes").increment(100);
        metrics::counter!("db.queries").increment(2);
        metrics::gauge!("db.debug_slots").set(9.0);
    });
    statsd_guard.handle().flush().unwrap();
    graphite_guard.handle().flush().unwrap();
    assert_eq!(
        udp.wait_for(MAX, |l| !l.is_empty()),
        ["svc.http.requests.200:5|c"]
    );
    assert_eq!(
        graphite_lines(&tcp.wait_for(MAX, |l| !l.is_empty())),
        ["svc.db.queries 2"]
    );
    assert_eq!(statsd_guard.shutdown().unwrap().series, 1);
    assert_eq!(graphite_guard.shutdown().unwrap().series, 1);
}
