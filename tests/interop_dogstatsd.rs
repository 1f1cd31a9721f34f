//! DogStatsD into the real Etsy statsd, which parses `|#` tags into Graphite-style tagged keys
//! (`name;k=v`): over UDP, over a Unix datagram socket (a socat bridge, as statsd has no
//! unixgram listener), and across a receiver restart behind that socket; and the whole chain
//! our exporter → statsd → its graphite backend → carbon-cache, read back from the whisper
//! files of the tagged series. Plain StatsD over statsd's Unix stream socket (newline
//! framed). Etsy statsd knows neither `|d` nor packed values, so these use counters, gauges
//! and one timer sample per flush.
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
#![allow(
    clippy::duplicate_mod,
    reason = "carbon.rs and receivers.rs each load process.rs; it holds no state, only helpers"
)]

#[path = "support/carbon.rs"]
mod carbon;
#[path = "support/receivers.rs"]
mod receivers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use carbon::{Carbon, require_carbon, unix_now};
use metrics_exporter_statsd_graphite::{
    ExporterBuilder, ExporterGuard, ExporterRecorder, HistogramKind,
};
use receivers::{EtsyStatsd, require_etsy_statsd};

const WAIT: Duration = Duration::from_secs(15);

fn dogstatsd(endpoint: String) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = ExporterBuilder::dogstatsd(endpoint)
        .with_prefix("dd")
        .with_global_labels([("env", "test")])
        .with_histogram_kind(HistogramKind::Timer)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .expect("builds");
    (recorder, exporter.start().expect("starts"))
}

fn tagged_metrics_arrive(statsd: &EtsyStatsd, endpoint: String) {
    let (recorder, guard) = dogstatsd(endpoint);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("hits", "route" => "a").increment(3);
        metrics::counter!("hits", "route" => "a", "env" => "canary").increment(4);
        metrics::gauge!("level").set(42.5);
        metrics::histogram!("latency").record(Duration::from_micros(12_500));
    });
    guard.handle().flush().expect("flush");
    let stats = guard.shutdown().expect("shutdown");
    let done = statsd.wait_until(WAIT, |s| {
        s.counter_total("dd.hits;env=test;route=a") == 3.0
            && s.counter_total("dd.hits;env=canary;route=a") == 4.0
            && s.gauge("dd.level;env=test") == Some(42.5)
            && s.timer_values("dd.latency;env=test") == vec![12.5]
    });
    assert!(done, "statsd did not store what we sent:\n{}", statsd.log());
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
    assert_eq!(stats.lines_sent, 4);
}

#[test]
fn etsy_statsd_reads_our_dogstatsd_tags_over_udp() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().expect("statsd starts");
    tagged_metrics_arrive(&statsd, format!("udp://{}", statsd.udp_addr()));
}

#[test]
fn etsy_statsd_reads_our_dogstatsd_tags_over_a_unix_datagram_socket() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().expect("statsd starts");
    tagged_metrics_arrive(
        &statsd,
        format!("unixgram://{}", statsd.unix_datagram_path().display()),
    );
}

#[test]
fn etsy_statsd_reads_plain_statsd_over_its_unix_stream_socket() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().expect("statsd starts");
    let (recorder, exporter) =
        ExporterBuilder::statsd(format!("unix://{}", statsd.unix_stream_path().display()))
            .with_flush_interval(Duration::from_secs(3600))
            .build()
            .expect("builds");
    let guard = exporter.start().expect("starts");
    metrics::with_local_recorder(&recorder, || {
        for i in 0..200 {
            metrics::counter!("stream", "i" => i.to_string()).increment(i + 1);
        }
    });
    guard.handle().flush().expect("flush");
    guard.shutdown().expect("shutdown");
    let done = statsd.wait_until(WAIT, |s| {
        (0..200).all(|i| s.counter_total(&format!("stream.{i}")) == f64::from(i + 1))
    });
    assert!(
        done,
        "statsd did not store all 200 counters:\n{}",
        statsd.log()
    );
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
}

#[test]
fn sending_resumes_after_the_receiver_behind_a_unix_socket_restarts() {
    if !require_etsy_statsd() {
        return;
    }
    let mut statsd = EtsyStatsd::start().expect("statsd starts");
    let (recorder, guard) = dogstatsd(format!(
        "unixgram://{}",
        statsd.unix_datagram_path().display()
    ));
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));
    counter.increment(5);
    handle.flush().expect("flush");
    assert!(
        statsd.wait_until(WAIT, |s| s.counter_total("dd.jobs;env=test") == 5.0),
        "{}",
        statsd.log()
    );

    statsd.restart().expect("statsd restarts");
    counter.increment(7);
    let start = Instant::now();
    // The socket was removed and recreated: keep flushing until the new process has it all.
    while statsd.counter_total("dd.jobs;env=test") < 12.0 && start.elapsed() < WAIT {
        handle.flush().expect("flush");
        statsd.wait_until(Duration::from_millis(300), |s| {
            s.counter_total("dd.jobs;env=test") >= 12.0
        });
    }
    let stats = guard.shutdown().expect("shutdown");
    assert_eq!(
        statsd.counter_total("dd.jobs;env=test"),
        12.0,
        "{}",
        statsd.log()
    );
    // Every flush that found the socket gone kept the aggregate rather than dropping it.
    // (Flushes racing the restart itself are covered deterministically, with the failure
    // counted, in tests/unix_dogstatsd.rs: a datagram the kernel already queued to a dying
    // receiver is lost in a way no sender can see.)
    assert_eq!(stats.lines_dropped_send, 0, "{stats:?}");
    assert_eq!(stats.lines_dropped_shutdown, 0, "{stats:?}");
}

/// The chain the DogStatsD issue names: Etsy statsd parses our `|#` tags and its graphite
/// backend hands them to carbon as Graphite 1.1 tags, so carbon stores tagged series under
/// `_tagged/`. Exact: every series of ours that carbon created (tagged or not) is listed with
/// its one point, all from the same statsd flush.
#[test]
fn carbon_stores_our_dogstatsd_tags_as_tagged_series_via_etsy_statsds_graphite_backend() {
    // Both checked (and both reported missing) before skipping; under CI a missing one panics.
    let have_statsd = require_etsy_statsd();
    let have_carbon = require_carbon();
    if !(have_statsd && have_carbon) {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let statsd = EtsyStatsd::start_with_graphite(carbon.line_addr()).expect("statsd starts");

    // Etsy statsd counts `|d` (the DogStatsD default for histograms) as a counter: timers.
    let (recorder, exporter) = ExporterBuilder::dogstatsd(format!("udp://{}", statsd.udp_addr()))
        .with_global_labels([("env", "prod")])
        .with_histogram_kind(HistogramKind::Timer)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    metrics::with_local_recorder(&recorder, || {
        let requests = metrics::counter!("requests", "route" => "/a");
        requests.increment(3);
        requests.increment(4);
        metrics::gauge!("queue.depth").set(42.5);
        metrics::histogram!("latency", "route" => "/a").record(Duration::from_micros(12_500));
    });
    let sent_after = unix_now();
    // One flush, one datagram: statsd reads all three lines in the same flush interval.
    guard.handle().flush().expect("flush");
    let stats = guard.shutdown().expect("shutdown");
    assert_eq!(stats.lines_sent, 3, "{stats:?}");

    // What statsd received, exactly (tags sorted by key, `/a` as recorded).
    let mut want_lines = vec![
        "latency:12.5|ms|#env:prod,route:/a",
        "queue.depth:42.5|g|#env:prod",
        "requests:7|c|#env:prod,route:/a",
    ];
    let mut lines = statsd.wait_for(WAIT, |l| l.len() >= want_lines.len());
    lines.sort();
    want_lines.sort_unstable();
    assert_eq!(lines, want_lines, "{}", statsd.log());
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());

    // What carbon stored.
    let want = carbon_series_we_expect();
    let deadline = Instant::now() + WAIT;
    let mut got: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    for series in want.keys() {
        let left = deadline.saturating_duration_since(Instant::now());
        let points = carbon.wait_for_points(series, left, |p| !p.is_empty());
        got.insert(series.clone(), points);
    }
    let flushed_at = got
        .values()
        .find_map(|p| p.first())
        .map(|&(ts, _)| ts)
        .unwrap_or_default();
    let want_points: BTreeMap<String, Vec<(u64, f64)>> = want
        .iter()
        .map(|(series, &value)| (series.clone(), vec![(flushed_at, value)]))
        .collect();
    assert_eq!(
        got,
        want_points,
        "carbon series: {:#?}\n--- carbon ---\n{}\n--- statsd ---\n{}",
        carbon.series(),
        carbon.log(),
        statsd.log()
    );
    // statsd stamps a flush with `Math.round` of the time: up to half a second ahead.
    assert!(
        (sent_after..=unix_now() + 1).contains(&flushed_at),
        "statsd flushed at {flushed_at}, we sent at {sent_after}"
    );
    // Nothing else of ours: no untagged copy, no series with another tag set. (statsd's own
    // series are untagged and named after it.)
    let ours: Vec<String> = carbon
        .series()
        .into_iter()
        .filter(|s| {
            ![
                "statsd.statsd.",
                "statsd.counters.statsd.",
                "statsd.gauges.statsd.",
            ]
            .iter()
            .any(|own| s.starts_with(own))
        })
        .collect();
    assert_eq!(ours, want.keys().cloned().collect::<Vec<_>>());
    assert_eq!(carbon.log_errors(), Vec::<String>::new());
}

/// Every series of ours that the test's metrics make statsd's graphite backend send (see
/// `receivers::GRAPHITE_PREFIX`) for one flush, with its value. statsd's key sanitiser runs
/// over the tags too: `route:/a` is stored as `route=-a`.
fn carbon_series_we_expect() -> BTreeMap<String, f64> {
    let counter = |stat: &str| format!("statsd.counters.requests.{stat};env=prod;route=-a");
    let timer = |stat: &str| format!("statsd.timers.latency.{stat};env=prod;route=-a");
    let mut want: BTreeMap<String, f64> = BTreeMap::new();
    want.insert(counter("count"), 7.0);
    // The per-second rate over statsd's 1 s flush interval.
    want.insert(counter("rate"), 7.0);
    want.insert("statsd.gauges.queue.depth;env=prod".to_owned(), 42.5);
    // One 12.5 ms sample: every statistic is that sample (or its square, or 1 for counts).
    for (stat, value) in [
        ("count", 1.0),
        ("count_ps", 1.0),
        ("lower", 12.5),
        ("upper", 12.5),
        ("mean", 12.5),
        ("median", 12.5),
        ("std", 0.0),
        ("sum", 12.5),
        ("sum_squares", 156.25),
        ("count_90", 1.0),
        ("mean_90", 12.5),
        ("upper_90", 12.5),
        ("sum_90", 12.5),
        ("sum_squares_90", 156.25),
    ] {
        want.insert(timer(stat), value);
    }
    want
}
