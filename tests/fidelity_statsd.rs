//! Fidelity of what plain StatsD from the exporter becomes in real receivers' storage: Etsy
//! statsd 0.9.0 (UDP) with its graphite backend flushing into a real carbon-cache, read back
//! from the whisper files, and collectd 5.12's statsd plugin, read back from its CSV files.
//! The collision corpus of `tests/fidelity_support/corpus.rs` (labels folded into names, as
//! plain StatsD does by default) must arrive as one series per wire name with the exact sum
//! (counters), the largest value (gauges) and every sample (timers), and neither receiver may
//! reject a line.
//!
//! What the receivers lose or change on their own is kept out of the figures: Etsy drops its
//! current interval on SIGTERM and carbon the points it had not written (both are stopped only
//! after everything was read back); Etsy's key sanitiser (whitespace to `_`, `/` to `-`,
//! anything but `[A-Za-z0-9_.;=-]` dropped) never sees a character it would change, since our
//! names are `[A-Za-z0-9_-]` segments already; collectd truncates names over 128 characters
//! (ours are short) and keeps timers at 1 ms resolution (our samples are whole milliseconds).
//!
//! How the harness runs Etsy matters for continuity: `deleteIdleStats: true`, which in statsd
//! 0.9.0 also turns on `deleteGauges` and `deleteCounters` (`stats.js`, lines 201-206). With
//! Etsy's defaults (`deleteGauges: false`) Etsy re-sends a gauge to carbon at every flush by
//! itself, and our re-send would change nothing there; under this harness's config it is our
//! re-send that keeps the gauge in carbon, and the test below shows it both ways.
// The real-receiver harness (tests/support/receivers.rs) talks over Unix sockets.
#![cfg(unix)]
#![allow(
    clippy::float_cmp,
    reason = "every compared value is a small integer, written and parsed exactly"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]
#![allow(
    clippy::duplicate_mod,
    reason = "carbon.rs and receivers.rs each load process.rs; it holds no state, only helpers"
)]
#![allow(
    clippy::print_stderr,
    reason = "the stored-vs-recorded figures are printed for the report"
)]

#[path = "support/carbon.rs"]
mod carbon;
#[path = "fidelity_support/corpus.rs"]
mod corpus;
#[path = "support/receivers.rs"]
mod receivers;
#[path = "fidelity_support/whisper.rs"]
mod whisper;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use carbon::{Carbon, require_carbon};
use corpus::{Kind, Render, Set};
use metrics_exporter_statsd_graphite::{
    ExporterBuilder, ExporterGuard, ExporterRecorder, ExporterStats, LabelHandling,
};
use receivers::{Collectd, ETSY_TIMER_STATS, EtsyStatsd, require_collectd, require_etsy_statsd};

const WAIT: Duration = Duration::from_secs(20);

/// A plain StatsD exporter to `endpoint` that flushes only when told (the first tick is an
/// hour away), histograms taken as milliseconds so samples go out as they were recorded.
fn exporter(endpoint: String) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        .with_default_histogram_unit(metrics::Unit::Milliseconds)
        .build()
        .expect("builds");
    (recorder, exporter.start().expect("starts"))
}

/// Records the corpus as counters, gauges and timers, and a counter, a gauge and a timer of
/// one name (plain StatsD servers keep the kinds apart: no collision), flushes once and shuts
/// down (the final flush sends nothing new: re-sends come with ticks only).
fn send_corpus(endpoint: String, set: Set) -> ExporterStats {
    let (recorder, guard) = exporter(endpoint);
    metrics::with_local_recorder(&recorder, || {
        for kind in Kind::ALL {
            corpus::record(kind, set);
        }
        metrics::counter!("p.same").increment(5);
        metrics::gauge!("p.same").set(9.0);
        metrics::histogram!("p.same").record(7.0);
    });
    guard.handle().flush().expect("flush");
    guard.shutdown().expect("shutdown")
}

/// Checks the exporter's own account of the corpus: every merge counted, nothing dropped.
fn check_stats(stats: &ExporterStats, set: Set) {
    assert_eq!(
        stats.series_merged,
        3 * corpus::merges(Render::Folded, set),
        "{stats:?}"
    );
    assert_eq!(stats.values_dropped_collision, 0, "{stats:?}");
    assert_eq!(
        stats.lines_dropped_send + stats.lines_dropped_too_long + stats.values_dropped_invalid,
        0,
        "{stats:?}"
    );
}

/// The corpus outputs per kind, plus the `p.same` series: `(name, value, sorted samples,
/// whether the output is a merge of several series)`.
fn outputs(set: Set, kind: Kind) -> Vec<(String, f64, Vec<f64>, bool)> {
    let mut all: Vec<_> = corpus::expected(kind, Render::Folded, set)
        .into_iter()
        .map(|e| (e.name, e.value, e.samples, e.merged_from > 1 && !e.one_key))
        .collect();
    let same = match kind {
        Kind::Counter => 5.0,
        Kind::Gauge => 9.0,
        Kind::Histogram => 0.0,
    };
    all.push(("p.same".to_owned(), same, vec![7.0], false));
    all
}

/// Whisper points.
type Points = [(u64, f64)];

/// A check of what a receiver stored for one statistic.
type Check<T> = Box<dyn Fn(&T) -> bool>;

fn sum(points: &[(u64, f64)]) -> f64 {
    points.iter().map(|p| p.1).sum()
}

/// Whether the series is one of Etsy's own (`statsd.statsd.*`, `statsd.counters.statsd.*`...).
fn etsy_own(series: &str) -> bool {
    [
        "statsd.",
        "counters.statsd.",
        "gauges.statsd.",
        "timers.statsd.",
    ]
    .iter()
    .any(|p| {
        series
            .strip_prefix("statsd.")
            .is_some_and(|s| s.starts_with(p))
    })
}

#[allow(
    clippy::too_many_lines,
    reason = "one pass over every kind, then the figures and the verdict"
)]
#[test]
fn colliding_plain_statsd_series_reach_carbon_through_etsy_statsd_as_one_exact_series_each() {
    if !require_carbon() || !require_etsy_statsd() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let statsd = EtsyStatsd::start_with_graphite(carbon.line_addr()).expect("statsd starts");
    let stats = send_corpus(format!("udp://{}", statsd.udp_addr()), Set::Full);
    let stored = |s: &str| whisper::points(&carbon.wsp_path(s)).unwrap_or_default();

    // (kind, whether a merge, series, check of its whisper points) for every output.
    let mut checks: Vec<(Kind, bool, String, Check<Points>)> = Vec::new();
    for (name, value, _, merged) in outputs(Set::Full, Kind::Counter) {
        for stat in ["count", "rate"] {
            // Flush interval 1 s: the rate is the count; summed over Etsy's flushes.
            checks.push((
                Kind::Counter,
                merged,
                format!("statsd.counters.{name}.{stat}"),
                Box::new(move |p| sum(p) == value),
            ));
        }
    }
    for (name, value, _, merged) in outputs(Set::Full, Kind::Gauge) {
        checks.push((
            Kind::Gauge,
            merged,
            format!("statsd.gauges.{name}"),
            Box::new(move |p| !p.is_empty() && p.iter().all(|(_, v)| *v == value)),
        ));
    }
    for (name, _, samples, merged) in outputs(Set::Full, Kind::Histogram) {
        #[allow(clippy::cast_precision_loss, reason = "a sample count")]
        let count = samples.len() as f64;
        let total: f64 = samples.iter().sum();
        let (min, max) = (samples[0], samples[samples.len() - 1]);
        let timer = |stat: &str| format!("statsd.timers.{name}.{stat}");
        checks.push((
            Kind::Histogram,
            merged,
            timer("count"),
            Box::new(move |p| sum(p) == count),
        ));
        checks.push((
            Kind::Histogram,
            merged,
            timer("sum"),
            Box::new(move |p| sum(p) == total),
        ));
        checks.push((
            Kind::Histogram,
            merged,
            timer("lower"),
            Box::new(move |p| p.iter().map(|x| x.1).fold(f64::INFINITY, f64::min) == min),
        ));
        checks.push((
            Kind::Histogram,
            merged,
            timer("upper"),
            Box::new(move |p| p.iter().map(|x| x.1).fold(f64::NEG_INFINITY, f64::max) == max),
        ));
    }
    let deadline = Instant::now() + WAIT;
    while checks.iter().any(|(_, _, s, check)| !check(&stored(s))) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // One more Etsy flush and carbon write: anything late would show now.
    std::thread::sleep(Duration::from_millis(2500));

    let wrong: Vec<String> = checks
        .iter()
        .filter(|(_, _, s, check)| !check(&stored(s)))
        .map(|(_, _, s, _)| format!("{s}: {:?}", stored(s)))
        .collect();
    for kind in Kind::ALL {
        let mine: Vec<_> = checks.iter().filter(|c| c.0 == kind && c.1).collect();
        let exact = mine.iter().filter(|(_, _, s, c)| c(&stored(s))).count();
        eprintln!(
            "FIGURES Etsy->carbon: {kind:?}: {} colliding-path statistics: {exact} of {} stored exactly",
            mine.len(),
            mine.len()
        );
    }
    // Every series carbon holds is Etsy's own, or one of the outputs (a timer: any of its 14
    // statistics); every output is there.
    let mut known: BTreeMap<String, Kind> = BTreeMap::new();
    for kind in Kind::ALL {
        for (name, ..) in outputs(Set::Full, kind) {
            match kind {
                Kind::Counter => {
                    for stat in ["count", "rate"] {
                        known.insert(format!("statsd.counters.{name}.{stat}"), kind);
                    }
                }
                Kind::Gauge => {
                    known.insert(format!("statsd.gauges.{name}"), kind);
                }
                Kind::Histogram => {
                    for stat in ETSY_TIMER_STATS {
                        known.insert(format!("statsd.timers.{name}.{stat}"), kind);
                    }
                }
            }
        }
    }
    let files: BTreeSet<String> = carbon
        .series()
        .into_iter()
        .filter(|s| !etsy_own(s))
        .collect();
    let unexpected: Vec<&String> = files.iter().filter(|s| !known.contains_key(*s)).collect();
    eprintln!(
        "FIGURES Etsy->carbon: {} whisper files of ours, {} unexpected, {} statistics wrong; Etsy bad lines {}, carbon errors {}; series_merged {}",
        files.len(),
        unexpected.len(),
        wrong.len(),
        statsd.bad_lines().len(),
        carbon.log_errors().len(),
        stats.series_merged
    );
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "exact values in carbon:\n{}",
        statsd.log()
    );
    assert_eq!(unexpected, Vec::<&String>::new(), "no other series");
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
    assert_eq!(carbon.log_errors(), Vec::<String>::new());
    check_stats(&stats, Set::Full);
}

#[allow(
    clippy::too_many_lines,
    reason = "one pass over every kind, then the figures and the verdict"
)]
#[test]
fn colliding_plain_statsd_series_are_stored_by_collectd_as_one_exact_series_each() {
    if !require_collectd() {
        return;
    }
    let collectd = Collectd::start().expect("collectd starts");
    let stats = send_corpus(format!("udp://{}", collectd.udp_addr()), Set::Short);
    // collectd writes every interval (1 s): counters as running totals, gauges as values,
    // timers as seconds per interval (`nan` when idle, left out) and a count per interval.
    let ms = |v: f64| (v * 1000.0).round();
    let mut checks: Vec<(Kind, bool, String, Check<Collectd>)> = Vec::new();
    for (name, value, _, merged) in outputs(Set::Short, Kind::Counter) {
        let n = name.clone();
        checks.push((
            Kind::Counter,
            merged,
            format!("derive-{name}"),
            Box::new(move |c| {
                let v = c.counter_values(&n);
                !v.is_empty() && v.iter().all(|x| *x == value)
            }),
        ));
    }
    for (name, value, _, merged) in outputs(Set::Short, Kind::Gauge) {
        let n = name.clone();
        checks.push((
            Kind::Gauge,
            merged,
            format!("gauge-{name}"),
            Box::new(move |c| {
                let v = c.gauge_values(&n);
                !v.is_empty() && v.iter().all(|x| *x == value)
            }),
        ));
    }
    for (name, _, samples, merged) in outputs(Set::Short, Kind::Histogram) {
        #[allow(clippy::cast_precision_loss, reason = "a sample count")]
        let count = samples.len() as f64;
        let total: f64 = samples.iter().sum();
        let (min, max) = (samples[0], samples[samples.len() - 1]);
        let n = name.clone();
        checks.push((
            Kind::Histogram,
            merged,
            format!("gauge-{name}-count"),
            Box::new(move |c| c.timer_count_values(&n).iter().sum::<f64>() == count),
        ));
        for (stat, want) in [("sum", total), ("lower", min), ("upper", max)] {
            let n = name.clone();
            checks.push((
                Kind::Histogram,
                merged,
                format!("latency-{name}-{stat}"),
                Box::new(move |c| {
                    let v = c.timer_values(&n, stat);
                    let got = match stat {
                        "sum" => v.iter().map(|x| ms(*x)).sum(),
                        "lower" => v.iter().map(|x| ms(*x)).fold(f64::INFINITY, f64::min),
                        _ => v.iter().map(|x| ms(*x)).fold(f64::NEG_INFINITY, f64::max),
                    };
                    got == want
                }),
            ));
        }
    }
    let deadline = Instant::now() + WAIT;
    while checks.iter().any(|c| !(c.3)(&collectd)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // A few more intervals: a late or second value would show now.
    std::thread::sleep(Duration::from_millis(2500));
    let wrong: Vec<&String> = checks
        .iter()
        .filter(|c| !(c.3)(&collectd))
        .map(|c| &c.2)
        .collect();
    for kind in Kind::ALL {
        let mine: Vec<_> = checks.iter().filter(|c| c.0 == kind && c.1).collect();
        let exact = mine.iter().filter(|c| (c.3)(&collectd)).count();
        eprintln!(
            "FIGURES collectd: {kind:?}: {} colliding-path statistics: {exact} of {} stored exactly",
            mine.len(),
            mine.len()
        );
    }
    // Every series collectd wrote belongs to an output.
    let mut names: BTreeSet<String> = BTreeSet::new();
    for kind in Kind::ALL {
        names.extend(outputs(Set::Short, kind).into_iter().map(|o| o.0));
    }
    let series = collectd.series();
    let unexpected: Vec<&String> = series
        .iter()
        .filter(|s| {
            !names.iter().any(|n| {
                s.split_once('-')
                    .is_some_and(|(_, rest)| rest == n || rest.starts_with(&format!("{n}-")))
            })
        })
        .collect();
    eprintln!(
        "FIGURES collectd: {} CSV series, {} unexpected, {} statistics wrong, {} unparsed lines; series_merged {}",
        series.len(),
        unexpected.len(),
        wrong.len(),
        collectd.unparsed_lines().len(),
        stats.series_merged
    );
    assert_eq!(wrong, Vec::<&String>::new(), "{}", collectd.log());
    assert_eq!(unexpected, Vec::<&String>::new(), "{series:?}");
    assert_eq!(collectd.unparsed_lines(), Vec::<String>::new());
    assert_eq!(collectd.parse_errors(), Vec::<String>::new());
    check_stats(&stats, Set::Short);
}

/// Stored points of the gauge `{prefix}.pool.size` and of the counter `{prefix}.jobs` after
/// Etsy's graphite backend flushed them to carbon.
type Continuity = (Vec<(u64, f64)>, Vec<(u64, f64)>);

#[test]
fn through_etsy_statsd_that_deletes_idle_stats_a_gauge_set_once_stays_in_carbon_only_because_we_resend_it()
 {
    if !require_carbon() || !require_etsy_statsd() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let statsd = EtsyStatsd::start_with_graphite(carbon.line_addr()).expect("statsd starts");
    let endpoint = format!("udp://{}", statsd.udp_addr());
    // Four of our flushes per Etsy flush, so every Etsy interval gets at least one.
    let start = |prefix: &str, continuity: bool| {
        let (recorder, exporter) = ExporterBuilder::statsd(endpoint.clone())
            .with_prefix(prefix)
            .with_flush_interval(Duration::from_millis(250))
            .with_gauge_resend(continuity)
            .with_counter_zeros(continuity)
            .build()
            .expect("builds");
        let guard = exporter.start().expect("starts");
        metrics::with_local_recorder(&recorder, || {
            metrics::gauge!("pool.size").set(42.5);
            metrics::counter!("jobs").increment(3);
        });
        guard
    };
    let on = start("on", true);
    let off = start("off", false);
    let read = |p: &str| -> Continuity {
        (
            whisper::points(&carbon.wsp_path(&format!("statsd.gauges.{p}.pool.size")))
                .unwrap_or_default(),
            whisper::points(&carbon.wsp_path(&format!("statsd.counters.{p}.jobs.count")))
                .unwrap_or_default(),
        )
    };
    let deadline = Instant::now() + WAIT;
    while read("on").0.len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let on_stats = on.shutdown().expect("shutdown");
    let off_stats = off.shutdown().expect("shutdown");
    std::thread::sleep(Duration::from_millis(2500));
    let (on_gauge, on_counter) = read("on");
    let (off_gauge, off_counter) = read("off");
    let context = format!(
        "on: gauge {on_gauge:?} counter {on_counter:?}\noff: gauge {off_gauge:?} counter {off_counter:?}\n{on_stats:?}\n{off_stats:?}"
    );
    // Re-sent: a point at every Etsy flush (Etsy stamps its flushes with rounded seconds,
    // which skip one now and then: no contiguity is asserted), all 42.5.
    assert!(on_gauge.len() >= 5, "{context}");
    assert!(on_gauge.iter().all(|p| p.1 == 42.5), "{context}");
    // Zeros on: 3 at the first Etsy flush, 0 at every later one, as many as the gauge.
    assert_eq!(on_counter.first().map(|p| p.1), Some(3.0), "{context}");
    assert!(on_counter[1..].iter().all(|p| p.1 == 0.0), "{context}");
    assert!(on_counter.len() + 1 >= on_gauge.len(), "{context}");
    // Not re-sent: Etsy deletes the idle gauge and counter after one flush.
    assert!(off_stats.flushes >= 10, "{context}");
    assert_eq!(
        off_gauge.iter().map(|p| p.1).collect::<Vec<_>>(),
        [42.5],
        "{context}"
    );
    assert_eq!(
        off_counter.iter().map(|p| p.1).collect::<Vec<_>>(),
        [3.0],
        "{context}"
    );
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
    assert_eq!(carbon.log_errors(), Vec::<String>::new());
    eprintln!(
        "FIGURES continuity (Etsy->carbon, deleteIdleStats): on: gauge {} points, counter {} points (3 then zeros); off: gauge {} point, counter {} point over {} flushes",
        on_gauge.len(),
        on_counter.len(),
        off_gauge.len(),
        off_counter.len(),
        off_stats.flushes
    );
}

#[test]
fn an_empty_dogstatsd_label_value_reaches_carbon_through_etsy_statsd_as_no_tag_at_all() {
    if !require_carbon() || !require_etsy_statsd() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let statsd = EtsyStatsd::start_with_graphite(carbon.line_addr()).expect("statsd starts");
    let (recorder, exporter) = ExporterBuilder::statsd(format!("udp://{}", statsd.udp_addr()))
        .with_label_handling(LabelHandling::DogStatsd)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("et.x", "route" => "").increment(3);
        metrics::counter!("et.y", "route" => "a").increment(4);
    });
    guard.handle().flush().expect("flush");
    guard.shutdown().expect("shutdown");
    let stored = |s: &str| whisper::points(&carbon.wsp_path(s)).unwrap_or_default();
    let deadline = Instant::now() + WAIT;
    while (sum(&stored("statsd.counters.et.x.count")) != 3.0
        || sum(&stored("statsd.counters.et.y.count;route=a")) != 4.0)
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));
    let received = statsd.received_lines();
    let bare: Vec<String> = carbon
        .series()
        .into_iter()
        .filter(|s| s.split(';').skip(1).any(|tag| !tag.contains('=')))
        .collect();
    assert_eq!(bare, Vec::<String>::new(), "no bare tag in carbon");
    assert_eq!(
        carbon.log_errors(),
        Vec::<String>::new(),
        "carbon rejects nothing; Etsy received {received:?}"
    );
    assert_eq!(
        sum(&stored("statsd.counters.et.x.count")),
        3.0,
        "{received:?}"
    );
    assert_eq!(sum(&stored("statsd.counters.et.y.count;route=a")), 4.0);
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
}
