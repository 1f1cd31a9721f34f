//! Fidelity of what lands in real carbon-cache's whisper files (Debian graphite-carbon 1.1.7,
//! retention `1s:1h`), sent by the exporter over plaintext TCP and pickle, with labels folded
//! into paths and as Graphite 1.1 tags:
//!
//! - continuity: a gauge set once has a point in every slot a flush stamped, and a counter
//!   incremented once has its increment in its first slot and 0 in every later one; with
//!   `with_gauge_resend(false)` / `with_counter_zeros(false)` the same flushes leave gaps;
//! - a hostile corpus of series that sanitise to one path (`tests/fidelity_support/corpus.rs`)
//!   lands as exactly one whisper file per path, holding the exact sum (counters), the
//!   largest value (gauges) or the summary of every member's samples (histograms), and a
//!   series of another kind that carbon would store in the same file is not sent at all.
//!
//! What carbon loses on its own (points it read but had not written when stopped with
//! SIGTERM, see `/work/shared/notes/receivers.md` section 7) never enters these tests: carbon
//! is only stopped when the test is over, after everything was read back.
#![allow(
    clippy::float_cmp,
    reason = "every compared value is a small integer or exact binary fraction, written and parsed exactly"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]
#![allow(
    clippy::print_stderr,
    reason = "the stored-vs-recorded figures are printed for the report"
)]

#[path = "support/carbon.rs"]
mod carbon;
#[path = "fidelity_support/corpus.rs"]
mod corpus;
#[path = "fidelity_support/whisper.rs"]
mod whisper;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carbon::{Carbon, require_carbon, unix_now, wait_for_room_in_slot};
use corpus::{Kind, Render, Set};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterStats, GraphiteTags};

const WAIT: Duration = Duration::from_secs(20);

/// The histogram statistics each summary sends with `with_percentiles([0.5])`.
const SUMMARY: [&str; 6] = [".count", ".sum", ".min", ".max", ".mean", ".p50"];

/// Points of `series` straight from its whisper file (empty while it does not exist).
fn stored(carbon: &Carbon, series: &str) -> Vec<(u64, f64)> {
    whisper::points(&carbon.wsp_path(series)).unwrap_or_default()
}

/// Milliseconds past the current wall-clock second, and the second.
fn wall() -> (u64, u32) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    (now.as_secs(), now.subsec_millis())
}

/// Polls the wall clock until it is in the middle (400..600 ms) of a second after `after`;
/// returns that second. A flush then stamps that second whatever the flush ticker does at
/// the second boundaries around it.
fn wait_for_mid_second_after(after: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (secs, millis) = wall();
        if secs > after && (400..600).contains(&millis) {
            return secs;
        }
        assert!(Instant::now() < deadline, "the clock does not move");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls until `read` gives the same value twice `settle` apart (carbon's writer drains
/// about once a second), at most `WAIT`; returns the last value.
fn settled<T: PartialEq>(settle: Duration, mut read: impl FnMut() -> T) -> T {
    let deadline = Instant::now() + WAIT;
    let mut last = read();
    loop {
        std::thread::sleep(settle);
        let now = read();
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// A gauge set once and a counter incremented once, flushed every second by the aligned 1 s
/// ticker, which re-sends the gauge and the counter's zero into each second's slot. An
/// explicit flush in the middle of each of 5 seconds marks the seconds checked (it sends
/// only what changed, so it adds no point of its own). Returns, per exporter (`on` with the
/// defaults, `off` with re-send and zeros turned off, both running at the same time into
/// one carbon), the gauge's and the counter's stored points, the seconds explicitly flushed
/// and the exporters' statistics.
struct Continuity {
    slots: Vec<u64>,
    on: (Points, Points, ExporterStats),
    off: (Points, Points, ExporterStats),
}

/// Stored `(timestamp, value)` points.
type Points = Vec<(u64, f64)>;

/// A corpus output: its kind, what it must hold, and its `(series, value)` whisper points.
type Output = (Kind, corpus::Expected, Vec<(String, f64)>);

fn run_continuity(carbon: &Carbon) -> Continuity {
    let endpoint = format!("tcp://{}", carbon.line_addr());
    let start = |prefix: &str, continuity: bool| {
        let (recorder, exporter) = ExporterBuilder::graphite(endpoint.clone())
            .with_prefix(prefix)
            .with_flush_interval(Duration::from_secs(1))
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
    let mut slots = Vec::new();
    let mut last = 0;
    while slots.len() < 5 {
        let second = wait_for_mid_second_after(last);
        on.handle().flush().expect("flush");
        off.handle().flush().expect("flush");
        last = unix_now();
        // Both flushes finished within the second they started in: that slot is covered.
        if last == second {
            slots.push(second);
        }
    }
    let on_stats = on.shutdown().expect("shutdown");
    let off_stats = off.shutdown().expect("shutdown");
    let read = |p: &str| {
        settled(Duration::from_millis(1500), || {
            (
                stored(carbon, &format!("{p}.pool.size")),
                stored(carbon, &format!("{p}.jobs")),
            )
        })
    };
    let (on_gauge, on_counter) = read("on");
    let (off_gauge, off_counter) = read("off");
    Continuity {
        slots,
        on: (on_gauge, on_counter, on_stats),
        off: (off_gauge, off_counter, off_stats),
    }
}

#[test]
fn a_gauge_set_once_and_a_counter_counted_once_fill_every_flushed_carbon_slot_and_the_switches_leave_gaps()
 {
    if !require_carbon() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let run = run_continuity(&carbon);
    let context = format!(
        "explicitly flushed seconds {:?}\non: gauge {:?} counter {:?}\noff: gauge {:?} counter {:?}\n{}",
        run.slots,
        run.on.0,
        run.on.1,
        run.off.0,
        run.off.1,
        carbon.log()
    );
    let (gauge, counter, stats) = &run.on;
    // Every slot from the first point to the last holds the gauge (no None in between), and
    // that range covers every second explicitly flushed.
    let first = gauge.first().map(|p| p.0).expect("the gauge was stored");
    let last = gauge.last().map(|p| p.0).expect("the gauge was stored");
    let want: Vec<(u64, f64)> = (first..=last).map(|ts| (ts, 42.5)).collect();
    assert_eq!(*gauge, want, "the gauge has no gap: {context}");
    assert!(
        run.slots.iter().all(|s| (first..=last).contains(s)),
        "every flushed second holds the gauge: {context}"
    );
    // The counter: its increment in the first slot, 0 in every later one, same slots.
    let want: Vec<(u64, f64)> = (first..=last)
        .map(|ts| (ts, if ts == first { 3.0 } else { 0.0 }))
        .collect();
    assert_eq!(*counter, want, "3, then a 0 per slot: {context}");
    assert!(stats.flushes >= 6, "{stats:?}");

    // The same flushes without re-send and zeros: one point each, gaps after it.
    let (gauge, counter, stats) = &run.off;
    assert!(stats.flushes >= 6, "{stats:?}");
    assert_eq!(gauge.len(), 1, "a gauge without re-send: {context}");
    assert_eq!(gauge[0].1, 42.5);
    assert_eq!(
        *counter,
        vec![(gauge[0].0, 3.0)],
        "a counter without zeros: {context}"
    );
    assert_eq!(carbon.log_errors(), Vec::<String>::new());
    eprintln!(
        "FIGURES continuity (carbon, plaintext): {} slots flushed explicitly; on: gauge {} of {} slots from its first, counter {} points (3 then {} zeros); off: gauge 1 point, counter 1 point, over {} flushes",
        run.slots.len(),
        run.on.0.len(),
        last - first + 1,
        run.on.1.len(),
        run.on.1.len().saturating_sub(1),
        stats.flushes
    );
}

/// The whisper path of a histogram statistic: the suffix goes on the name, tags after it.
fn summary_series(name: &str, suffix: &str, tail: &str) -> String {
    format!("{name}{suffix}{tail}")
}

/// The nearest-rank median, by its textbook definition (the ⌈n/2⌉-th smallest sample),
/// not by the exporter's formula, so a slip there shows.
fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len().div_ceil(2) - 1]
}

/// `(series, value)` of a histogram summary over `samples` (sorted).
fn summary_points(name: &str, tail: &str, samples: &[f64]) -> Vec<(String, f64)> {
    #[allow(clippy::cast_precision_loss, reason = "a sample count")]
    let count = samples.len() as f64;
    let sum: f64 = samples.iter().sum();
    let values = [
        count,
        sum,
        samples[0],
        samples[samples.len() - 1],
        sum / count,
        median(samples),
    ];
    SUMMARY
        .iter()
        .zip(values)
        .map(|(suffix, v)| (summary_series(name, suffix, tail), v))
        .collect()
}

/// Series of another kind that carbon would store in the same file as a series recorded
/// before them, recorded after the corpus. Returns what carbon must hold for them and how
/// many values `values_dropped_collision` must count.
fn record_cross_kind(render: Render) -> (Vec<(String, f64)>, u64) {
    // A counter and a gauge with one path: the first seen (the counter) owns it.
    metrics::counter!("x.cg").increment(5);
    metrics::gauge!("x.cg").set(9.0);
    // The same after sanitising, the gauge first.
    metrics::gauge!("x.gc q").set(4.0);
    metrics::counter!("x.gc_q").increment(6);
    // A histogram `x.hc` owns `x.hc.count`; a counter of that name is not sent.
    for v in [1.0, 2.0, 3.0] {
        metrics::histogram!("x.hc").record(v);
    }
    metrics::counter!("x.hc.count").increment(7);
    // A counter `x.ch.count` first: the histogram `x.ch` is not sent (none of its stats).
    metrics::counter!("x.ch.count").increment(8);
    for v in [4.0, 5.0] {
        metrics::histogram!("x.ch").record(v);
    }
    // A gauge `x.gh.max` first: the histogram `x.gh` is not sent.
    metrics::gauge!("x.gh.max").set(11.0);
    metrics::histogram!("x.gh").record(1.0);
    // Labels: a counter and a gauge of one tagged (or folded) series.
    metrics::counter!("x.tc", "k" => "v").increment(12);
    metrics::gauge!("x.tc", "k" => "v").set(13.0);
    let tc = match render {
        Render::Folded => "x.tc.v",
        Render::Tagged => "x.tc;k=v",
    };
    let mut want = vec![
        ("x.cg".to_owned(), 5.0),
        ("x.gc_q".to_owned(), 4.0),
        ("x.ch.count".to_owned(), 8.0),
        ("x.gh.max".to_owned(), 11.0),
        (tc.to_owned(), 12.0),
    ];
    want.extend(summary_points("x.hc", "", &[1.0, 2.0, 3.0]));
    // One value each for the gauge, counter, counter, gauge; two samples, one sample.
    (want, 1 + 1 + 1 + 2 + 1 + 1)
}

/// Every series carbon must hold after the corpus and the cross-kind series `cross`, with
/// its value; and per kind, the corpus outputs.
fn wanted_points(
    render: Render,
    cross: Vec<(String, f64)>,
) -> (BTreeMap<String, f64>, Vec<Output>) {
    let mut want: BTreeMap<String, f64> = cross.into_iter().collect();
    let mut outputs: Vec<Output> = Vec::new();
    for kind in Kind::ALL {
        for e in corpus::expected(kind, render, Set::Full) {
            let points = match kind {
                Kind::Counter | Kind::Gauge => vec![(format!("{}{}", e.name, e.tail), e.value)],
                Kind::Histogram => summary_points(&e.name, &e.tail, &e.samples),
            };
            want.extend(points.iter().cloned());
            outputs.push((kind, e, points));
        }
    }
    (want, outputs)
}

/// Sends the corpus as counters, gauges and histograms, plus the cross-kind series, in one
/// flush stamped with one aligned minute, and checks every whisper file carbon created.
fn the_collision_corpus_lands_exactly(
    label: &str,
    protocol: fn(String) -> ExporterBuilder,
    endpoint: impl FnOnce(&Carbon) -> String,
    render: Render,
) {
    const SLOT: u64 = 60;
    let carbon = Carbon::start().expect("carbon starts");
    let tags = match render {
        Render::Folded => GraphiteTags::FoldValues,
        Render::Tagged => GraphiteTags::Tagged,
    };
    let (recorder, exporter) = protocol(endpoint(&carbon))
        .with_graphite_tags(tags)
        .with_percentiles([0.5])
        .with_flush_interval(Duration::from_secs(SLOT))
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    // The flush, and the final flush at shutdown (which sends nothing new), both stamp
    // this minute, and no tick falls in between.
    wait_for_room_in_slot(SLOT, 15);
    let before = unix_now();
    let (cross, collided) = metrics::with_local_recorder(&recorder, || {
        for kind in Kind::ALL {
            corpus::record(kind, Set::Full);
        }
        record_cross_kind(render)
    });
    guard.handle().flush().expect("flush");
    let stats = guard.shutdown().expect("shutdown");
    let after = unix_now();
    let aligned = before - before % SLOT;
    assert!(
        after < aligned + SLOT,
        "recording and flushing took from {before} to {after}, across a minute boundary"
    );

    let (want, outputs) = wanted_points(render, cross);
    // Carbon writes a second or so after receiving: wait until every file has its point.
    let deadline = Instant::now() + WAIT;
    while want.keys().any(|s| stored(&carbon, s).is_empty()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1500));

    let files: BTreeSet<String> = carbon.series().into_iter().collect();
    let wanted: BTreeSet<String> = want.keys().cloned().collect();
    let missing: Vec<&String> = wanted.difference(&files).collect();
    let unexpected: Vec<&String> = files.difference(&wanted).collect();
    let mut wrong = Vec::new();
    for (series, value) in &want {
        let points = stored(&carbon, series);
        if points != [(aligned, *value)] {
            wrong.push(format!(
                "{series}: stored {points:?}, want [({aligned}, {value})]"
            ));
        }
    }
    print_figures(label, &carbon, &outputs, aligned);
    eprintln!(
        "FIGURES carbon {label}: {} whisper files expected, {} created, {} missing, {} unexpected, {} with a wrong point; series_merged {} values_dropped_collision {}",
        wanted.len(),
        files.len(),
        missing.len(),
        unexpected.len(),
        wrong.len(),
        stats.series_merged,
        stats.values_dropped_collision
    );
    assert_eq!(
        (missing, unexpected),
        (Vec::<&String>::new(), Vec::<&String>::new()),
        "one whisper file per expected path and no other:\n{}",
        carbon.log()
    );
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "one point per path, the exact value"
    );
    // whisper-fetch agrees with the direct reader (on a counter, a gauge and a histogram stat).
    for (kind, e, points) in outputs.iter().filter(|(_, e, _)| e.merged_from > 2) {
        let (series, _) = &points[0];
        assert_eq!(
            carbon.points(series),
            stored(&carbon, series),
            "{kind:?} {series} ({})",
            e.class
        );
    }
    assert_eq!(carbon.log_errors(), Vec::<String>::new());
    assert_eq!(
        stats.series_merged,
        3 * corpus::merges(render, Set::Full),
        "{stats:?}"
    );
    assert_eq!(stats.values_dropped_collision, collided, "{stats:?}");
    assert_eq!(
        stats.lines_dropped_send + stats.lines_dropped_too_long + stats.values_dropped_invalid,
        0,
        "{stats:?}"
    );
}

/// Prints, per kind, how many colliding paths stored exactly what was recorded.
fn print_figures(label: &str, carbon: &Carbon, outputs: &[Output], aligned: u64) {
    for kind in Kind::ALL {
        let colliding: Vec<_> = outputs
            .iter()
            .filter(|(k, e, _)| *k == kind && e.merged_from > 1 && !e.one_key)
            .collect();
        let series: usize = colliding.iter().map(|(_, e, _)| e.merged_from).sum();
        let exact = colliding
            .iter()
            .filter(|(_, _, points)| {
                points
                    .iter()
                    .all(|(s, v)| stored(carbon, s) == [(aligned, *v)])
            })
            .count();
        let what = match kind {
            Kind::Counter => "the exact sum",
            Kind::Gauge => "the largest value",
            Kind::Histogram => "the merged summary (count, sum, min, max, mean, p50)",
        };
        eprintln!(
            "FIGURES carbon {label}: {:?}: {} colliding paths ({series} series): {exact} of {} stored {what}",
            kind,
            colliding.len(),
            colliding.len()
        );
    }
}

#[test]
fn colliding_series_folded_into_paths_land_in_carbon_as_one_exact_point_per_path_over_plaintext() {
    if !require_carbon() {
        return;
    }
    the_collision_corpus_lands_exactly(
        "plaintext folded",
        ExporterBuilder::graphite,
        |c| format!("tcp://{}", c.line_addr()),
        Render::Folded,
    );
}

#[test]
fn colliding_series_folded_into_paths_land_in_carbon_as_one_exact_point_per_path_over_pickle() {
    if !require_carbon() {
        return;
    }
    the_collision_corpus_lands_exactly(
        "pickle folded",
        ExporterBuilder::graphite_pickle,
        |c| c.pickle_addr().to_string(),
        Render::Folded,
    );
}

#[test]
fn colliding_tagged_series_land_in_carbon_as_one_exact_point_per_tagged_path_over_plaintext() {
    if !require_carbon() {
        return;
    }
    the_collision_corpus_lands_exactly(
        "plaintext tagged",
        ExporterBuilder::graphite,
        |c| format!("tcp://{}", c.line_addr()),
        Render::Tagged,
    );
}

#[test]
fn colliding_tagged_series_land_in_carbon_as_one_exact_point_per_tagged_path_over_pickle() {
    if !require_carbon() {
        return;
    }
    the_collision_corpus_lands_exactly(
        "pickle tagged",
        ExporterBuilder::graphite_pickle,
        |c| c.pickle_addr().to_string(),
        Render::Tagged,
    );
}
