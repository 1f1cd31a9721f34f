//! metrics-exporter-prometheus pushing to a push gateway alongside our StatsD exporter,
//! through one metrics-util fanout (what aioprometheus and `prometheus_client` users who push
//! do today), against Debian's real `prometheus-pushgateway`: the values are read back from
//! the gateway's own page and compared with the StatsD lines that arrived.
//!
//! The push gateway needs metrics-exporter-prometheus's `push-gateway-no-tls-provider`
//! feature and a process-wide rustls `CryptoProvider`, even for an `http://` gateway (its
//! connector is built with TLS roots either way); the cost in build time is in CHANGELOG.md.
#![allow(
    clippy::float_cmp,
    reason = "every compared value is exactly representable"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]

#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/pushgateway.rs"]
mod pushgateway;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use loopback::UdpReceiver;
use metrics::Unit;
use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_exporter_statsd_graphite::ExporterBuilder;
use metrics_util::layers::FanoutBuilder;
use pushgateway::{Pushgateway, require_pushgateway};

const MAX: Duration = Duration::from_secs(15);

/// The value of the one sample whose series starts with `name{` and holds every label of
/// `labels` (`key="value"`), waiting up to [`MAX`] for the gateway to hold `want`.
fn wait_for_sample(gateway: &Pushgateway, name: &str, labels: &[&str], want: f64) -> f64 {
    let deadline = Instant::now() + MAX;
    loop {
        let samples = gateway.samples().expect("the gateway serves /metrics");
        let found = find(&samples, name, labels);
        if found == Some(want) || Instant::now() >= deadline {
            return found.unwrap_or_else(|| {
                panic!(
                    "no {name}{labels:?} at the gateway:\n{samples:#?}\n{}",
                    gateway.log()
                )
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn find(samples: &BTreeMap<String, f64>, name: &str, labels: &[&str]) -> Option<f64> {
    let mut matching = samples.iter().filter(|(series, _)| {
        series
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('{'))
            .is_some_and(|rest| labels.iter().all(|l| rest.contains(l)))
    });
    let (_, value) = matching.next()?;
    assert!(
        matching.next().is_none(),
        "{name}{labels:?} matches more than one series"
    );
    Some(*value)
}

/// The sum of the StatsD counter deltas `name:<n>|c`.
fn counter_sum(lines: &[String], name: &str) -> f64 {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.strip_suffix("|c"))
        .map(|v| v.parse::<f64>().expect("a number"))
        .sum()
}

#[test]
fn the_push_gateway_stores_what_statsd_receives_through_one_fanout() {
    if !require_pushgateway() {
        return;
    }
    let gateway = Pushgateway::start().expect("the push gateway starts");
    // Once per process; an error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    let (to_prometheus, push) = rt.block_on(async {
        PrometheusBuilder::new()
            .with_push_gateway(
                gateway.job_url("app"),
                Duration::from_millis(100),
                None,
                None,
                false,
            )
            .unwrap()
            .build()
            .unwrap()
    });
    rt.spawn(push);
    let mut rx = UdpReceiver::new();
    let (to_statsd, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600)) // flushed explicitly below
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let fanout = FanoutBuilder::default()
        .add_recorder(to_statsd)
        .add_recorder(to_prometheus)
        .build();

    metrics::with_local_recorder(&fanout, || {
        metrics::describe_histogram!("latency", Unit::Seconds, "time to serve a request");
        metrics::counter!("requests", "route" => "/a").increment(3);
        metrics::gauge!("in_flight").set(2.0);
        metrics::histogram!("latency").record(Duration::from_micros(12_500));
        metrics::histogram!("latency").record(Duration::from_millis(250));
    });
    guard.handle().flush().unwrap();
    let first = rx.wait_for(MAX, |l| l.len() == 4);
    let job = r#"job="app""#;
    let route = r#"route="/a""#;
    assert_eq!(counter_sum(&first, "requests.a"), 3.0, "{first:?}");
    assert_eq!(
        wait_for_sample(&gateway, "requests", &[job, route], 3.0),
        3.0
    );
    assert!(first.contains(&"in_flight:2|g".to_owned()), "{first:?}");
    assert_eq!(wait_for_sample(&gateway, "in_flight", &[job], 2.0), 2.0);
    for line in ["latency:12.5|ms", "latency:250|ms"] {
        assert!(first.contains(&line.to_owned()), "{line} in {first:?}");
    }
    // Prometheus keeps seconds, StatsD timers carry milliseconds: the same two samples.
    assert_eq!(wait_for_sample(&gateway, "latency_count", &[job], 2.0), 2.0);
    assert_eq!(
        wait_for_sample(&gateway, "latency_sum", &[job], 0.2625),
        0.2625
    );

    // Later pushes replace the group: the gateway holds the running total, StatsD got deltas.
    metrics::with_local_recorder(&fanout, || {
        metrics::counter!("requests", "route" => "/a").increment(2);
        metrics::gauge!("in_flight").set(7.0);
    });
    guard.handle().flush().unwrap();
    let all = rx.wait_for(MAX, |l| l.len() == 6);
    assert_eq!(counter_sum(&all, "requests.a"), 5.0, "{all:?}");
    assert_eq!(
        wait_for_sample(&gateway, "requests", &[job, route], 5.0),
        5.0
    );
    assert_eq!(wait_for_sample(&gateway, "in_flight", &[job], 7.0), 7.0);
    let stats = guard.shutdown().unwrap();
    assert_eq!(stats.lines_sent, 6, "{stats:?}");
    assert!(
        !gateway.log().contains("level=error"),
        "the gateway logged an error:\n{}",
        gateway.log()
    );
}
