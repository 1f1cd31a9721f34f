//! A cardinality storm against the real Etsy statsd: 2,000,000 distinct label values on one
//! metric (the storm of issue 12), interleaved with 500 steady series of ten other metrics, over several flushes,
//! with small limits (2,000 series in all, 200 per metric). Read back from what statsd
//! flushed: every steady series is exact, the storm's own series plus its overflow series sum
//! to exactly what was recorded (counters and histogram samples alike), and the exporter's
//! live series stay within the bound.
//!
//! Why Etsy statsd over TCP rather than carbon: all ~900 series are read back from one log
//! (carbon needs a `whisper-fetch` process per series, about a minute here for this many),
//! TCP loses nothing in a datagram queue, and plain StatsD folds labels into the name, so the
//! overflow label's folded form (`name.overflow`) is what gets checked on the wire.
#![cfg(target_os = "linux")]
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed setup must fail the test loudly"
)]
#![allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    reason = "statsd's totals are sums of whole numbers far below 2^53, exact in f64"
)]

#[path = "support/faulty.rs"]
mod faulty;
#[path = "support/receivers.rs"]
mod receivers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterRecorder, ExporterStats};
use receivers::{EtsyStatsd, StatsdFlush, require_etsy_statsd};

const MAX_SERIES: usize = 2_000;
const PER_METRIC: usize = 200;
/// Overflow series the exporter allows besides `MAX_SERIES`: 1% of it.
const MAX_OVERFLOW: usize = MAX_SERIES / 100;
const STORM: usize = 2_000_000;
const ROUNDS: usize = 5;
const STEADY: usize = 500;
const STEADY_NAMES: [&str; 10] = [
    "steady.m0",
    "steady.m1",
    "steady.m2",
    "steady.m3",
    "steady.m4",
    "steady.m5",
    "steady.m6",
    "steady.m7",
    "steady.m8",
    "steady.m9",
];
/// A steady update every this many storm registrations: two per steady series per round.
const STEADY_EVERY: usize = STORM / ROUNDS / (2 * STEADY);
/// A new storm histogram series every this many storm registrations: 2,000 in all, 400 per
/// round (under the 1,024 samples a histogram keeps per interval, so none is sampled).
const LATENCY_EVERY: usize = STORM / 2_000;
const WAIT: Duration = Duration::from_secs(20);

/// The steady series `j`'s name on the wire, and how much each update adds to it.
fn steady(j: usize) -> (String, u64) {
    (
        format!("fid.{}.s{j}", STEADY_NAMES[j % STEADY_NAMES.len()]),
        (j % 7) as u64 + 1,
    )
}

/// What statsd stored, summed over all its flushes: counters, and timer sample counts.
fn totals(flushes: &[StatsdFlush]) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let (mut counters, mut timers) = (BTreeMap::new(), BTreeMap::new());
    for f in flushes {
        for (k, v) in &f.counters {
            *counters.entry(k.clone()).or_insert(0.0) += v;
        }
        for (k, v) in &f.timer_counts {
            *timers.entry(k.clone()).or_insert(0.0) += v;
        }
    }
    (counters, timers)
}

fn sum_under(map: &BTreeMap<String, f64>, prefix: &str) -> f64 {
    map.iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

/// What the test recorded: each steady series' total, and the storm histogram's samples.
struct Recorded {
    steady: Vec<u64>,
    updates: usize,
    latency_samples: usize,
}

/// Round `round` of the storm: a fifth of its registrations, with the steady updates and the
/// storm histogram's new series interleaved.
fn record_round(recorder: &ExporterRecorder, round: usize, rec: &mut Recorded) {
    metrics::with_local_recorder(recorder, || {
        for i in round * STORM / ROUNDS..(round + 1) * STORM / ROUNDS {
            metrics::counter!("storm.requests", "user" => format!("u{i}")).increment(1);
            if i % STEADY_EVERY == 0 {
                // Registered anew each time, as `counter!` in a request handler is.
                let j = rec.updates % STEADY;
                rec.updates += 1;
                let name = STEADY_NAMES[j % STEADY_NAMES.len()];
                let by = steady(j).1;
                metrics::counter!(name, "shard" => format!("s{j}")).increment(by);
                rec.steady[j] += by;
            }
            if i % LATENCY_EVERY == 0 {
                let user = format!("u{}", i / LATENCY_EVERY);
                metrics::histogram!("storm.latency", "user" => user)
                    .record(f64::from(u32::try_from(i % 7).unwrap()) / 1000.0);
                rec.latency_samples += 1;
            }
        }
    });
}

/// Waits until statsd has flushed everything recorded (a round's lines can straddle its
/// flushes) or `WAIT` passes; returns its counter and timer-count totals either way.
fn read_back(
    statsd: &EtsyStatsd,
    rec: &Recorded,
) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (counters, timers) = totals(&statsd.flushes());
        let done = sum_under(&counters, "fid.storm.requests.") >= STORM as f64
            && sum_under(&timers, "fid.storm.latency.") >= rec.latency_samples as f64
            && (0..STEADY).all(|j| counters.get(&steady(j).0) == Some(&(rec.steady[j] as f64)));
        if done || Instant::now() > deadline {
            return (counters, timers);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_storm_on_one_metric_leaves_every_steady_series_exact_and_its_own_total_exact() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().unwrap();
    let (recorder, exporter) = ExporterBuilder::statsd(format!("tcp://{}", statsd.tcp_addr()))
        .with_prefix("fid")
        .with_flush_interval(Duration::from_secs(3600))
        .with_max_series(MAX_SERIES)
        .with_max_series_per_metric(PER_METRIC)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let started = Instant::now();
    let rss_before = faulty::rss_bytes();
    let mut rec = Recorded {
        steady: vec![0; STEADY],
        updates: 0,
        latency_samples: 0,
    };
    let mut peak_series = 0;
    for round in 0..ROUNDS {
        record_round(&recorder, round, &mut rec);
        handle.flush().unwrap();
        let stats = handle.stats();
        peak_series = peak_series.max(stats.series);
        assert!(
            stats.series <= (MAX_SERIES + MAX_OVERFLOW) as u64,
            "round {round}: {stats:?}"
        );
    }
    let rss_growth = faulty::rss_bytes().saturating_sub(rss_before);
    let (counters, timers) = read_back(&statsd, &rec);
    let stats: ExporterStats = guard.shutdown().unwrap();

    for (j, want) in rec.steady.iter().enumerate() {
        let name = steady(j).0;
        assert_eq!(
            counters.get(&name),
            Some(&(*want as f64)),
            "{name}: {stats:?}"
        );
    }
    // The storm: its own series and its overflow series, exactly what was recorded.
    let storm_series = counters
        .keys()
        .filter(|k| k.starts_with("fid.storm.requests."))
        .count();
    assert_eq!(storm_series, PER_METRIC + 1, "{stats:?}");
    let overflow = counters.get("fid.storm.requests.overflow").copied();
    assert_eq!(overflow, Some((STORM - PER_METRIC) as f64), "{stats:?}");
    assert_eq!(sum_under(&counters, "fid.storm.requests."), STORM as f64);
    let samples = rec.latency_samples;
    let latency_overflow = timers.get("fid.storm.latency.overflow").copied();
    assert_eq!(
        latency_overflow,
        Some((samples - PER_METRIC) as f64),
        "{stats:?}"
    );
    assert_eq!(sum_under(&timers, "fid.storm.latency."), samples as f64);
    assert!(statsd.bad_lines().is_empty(), "{:?}", statsd.bad_lines());

    let redirected = (STORM - PER_METRIC) + (samples - PER_METRIC);
    assert_eq!(stats.series_overflowed, redirected as u64, "{stats:?}");
    assert_eq!(stats.series_dropped, 0, "{stats:?}");
    // Every steady series and both metrics' own series and overflow series: no more.
    assert_eq!(
        peak_series,
        (STEADY + 2 * PER_METRIC + 2) as u64,
        "{stats:?}"
    );
    // The storm costs its capped series and transient keys only (about 1 MiB measured).
    assert!(rss_growth <= 8 * 1024 * 1024, "RSS grew by {rss_growth} B");
    eprintln!(
        "storm {STORM} + {samples} histogram series, {STEADY} steady series exact, \
         overflow counter {overflow:?}, overflow histogram {latency_overflow:?} samples, \
         peak series {peak_series}, RSS growth {} KiB, {:?}",
        rss_growth / 1024,
        started.elapsed()
    );
}
