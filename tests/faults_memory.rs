//! Memory under a series-cardinality storm and a long outage, measured as this process's RSS
//! (`VmRSS` in `/proc/self/status`). A test binary of its own, so no other test shares the
//! process, and its tests take a lock so they never run at the same time.
//!
//! Stated bounds (debug build; a release build needs less):
//! - a storm of 200,000 new labelled series costs at most 1 KiB of RSS per series (about
//!   500 B measured);
//! - an outage of 150 flush intervals while those series and 50 histograms keep being
//!   updated adds at most 16 MiB: counters sum in place, and each interval's histogram
//!   samples wait in the backlog, which is bounded (8 MiB by default);
//! - with the default cap on live series (100,000), a storm of 1,000,000 series of one metric
//!   allowed to fill it stays within 256 MiB; the rest go to its overflow series.
#![cfg(target_os = "linux")]
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed setup must fail the test loudly"
)]

#[path = "support/faulty.rs"]
mod faulty;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;

use faulty::{StreamReceiver, counter_total, parse_all, rss_bytes};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterHandle, ExporterRecorder};

const MAX: Duration = Duration::from_secs(30);
const MIB: u64 = 1024 * 1024;

/// One test at a time: RSS is per process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

async fn until(pred: impl FnMut() -> bool) -> bool {
    faulty::until(MAX, pred).await
}

/// Registers `n` new counters `storm.requests` with distinct labels and adds 1 to each;
/// returns the first `keep` handles.
fn storm(recorder: &ExporterRecorder, n: usize, keep: usize) -> Vec<metrics::Counter> {
    metrics::with_local_recorder(recorder, || {
        let mut kept = Vec::with_capacity(keep);
        for i in 0..n {
            let c =
                metrics::counter!("storm.requests", "route" => format!("/r/{i}"), "code" => "200");
            c.increment(1);
            if i < keep {
                kept.push(c);
            }
        }
        kept
    })
}

/// Waits until everything counted as sent has arrived.
async fn delivered(handle: &ExporterHandle, rx: &StreamReceiver, lines: u64) -> bool {
    until(|| {
        let stats = handle.stats();
        stats.lines_sent >= lines && u64::try_from(rx.bytes_received()).unwrap() == stats.bytes_sent
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cardinality_storm_and_a_long_outage_stay_within_the_stated_memory_bound() {
    const SERIES: usize = 200_000;
    const HISTOGRAMS: usize = 50;
    let _one = ONE_AT_A_TIME.lock().await;
    let rx = StreamReceiver::tcp_down();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_millis(10))
        .with_max_series(SERIES + HISTOGRAMS)
        // One metric's series are what is measured here, so its own limit is the total.
        .with_max_series_per_metric(SERIES)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();

    let before = rss_bytes();
    let kept = storm(&recorder, SERIES, 1_000);
    let histograms: Vec<metrics::Histogram> = metrics::with_local_recorder(&recorder, || {
        (0..HISTOGRAMS)
            .map(|i| metrics::histogram!("storm.latency", "shard" => i.to_string()))
            .collect()
    });
    // Measure once the flusher has taken in every new series (its own list grows then), so
    // the outage below is measured alone.
    assert!(until(|| handle.stats().series >= (SERIES + HISTOGRAMS) as u64).await);
    let after_storm = rss_bytes();
    let per_series = (after_storm.saturating_sub(before)) / SERIES as u64;
    assert!(
        per_series <= 1024,
        "{per_series} B of RSS per series ({} MiB for {SERIES})",
        (after_storm - before) / MIB
    );

    // The outage goes on for 150 flush intervals while a thread keeps updating.
    let stop = Arc::new(AtomicBool::new(false));
    let updater = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut increments, mut samples) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                for c in &kept {
                    c.increment(1);
                }
                increments += kept.len() as u64;
                for (i, h) in histograms.iter().enumerate() {
                    h.record(f64::from(u32::try_from(i).unwrap()) / 1000.0);
                }
                samples += HISTOGRAMS as u64;
                std::thread::sleep(Duration::from_millis(1));
            }
            (increments, samples)
        })
    };
    let flushes = handle.stats().flushes;
    assert!(until(|| handle.stats().flushes >= flushes + 150).await);
    stop.store(true, Ordering::Relaxed);
    let (increments, samples) = updater.join().unwrap();
    let after_outage = rss_bytes();
    let during = handle.stats();
    assert_eq!(
        during.lines_sent + during.lines_dropped_send,
        0,
        "{during:?}"
    );
    assert!(
        after_outage.saturating_sub(after_storm) <= 16 * MIB,
        "the outage grew RSS by {} MiB over {} flushes",
        (after_outage - after_storm) / MIB,
        during.flushes - flushes
    );

    // Back up: the whole outage arrives, exactly: every increment, and every histogram
    // sample either as a line or counted as sampled out.
    rx.reopen();
    let expected = SERIES as u64 + increments;
    let arrived = |received: &[faulty::StatsdLine],
                   stats: &metrics_exporter_statsd_graphite::ExporterStats| {
        let total: u64 = received
            .iter()
            .filter(|l| l.name.starts_with("storm.requests."))
            .map(|l| counter_total(std::slice::from_ref(l), &l.name))
            .sum();
        let samples_seen = received
            .iter()
            .filter(|l| l.name.starts_with("storm.latency."))
            .count() as u64
            + stats.samples_sampled_out;
        (total, samples_seen)
    };
    assert!(
        until(|| arrived(&parse_all(&rx.lines()), &handle.stats()) == (expected, samples)).await,
        "{:?}",
        handle.stats()
    );
    let stats = guard.shutdown_async().await.unwrap();
    let received = parse_all(&rx.lines());
    assert_eq!(arrived(&received, &stats), (expected, samples), "{stats:?}");
    assert_eq!(stats.lines_sent, received.len() as u64, "{stats:?}");
    assert_eq!(stats.lines_dropped_send, 0, "{stats:?}");
    assert_eq!(stats.series, (SERIES + HISTOGRAMS) as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cardinality_storm_is_capped_and_the_series_beyond_the_cap_are_counted() {
    // A million distinct series: ten times the default cap. Without a cap they cost about
    // 500 MB here, with no end to it.
    const SERIES: usize = 1_000_000;
    let _one = ONE_AT_A_TIME.lock().await;
    let rx = StreamReceiver::tcp();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        // The total cap is what is tested, so one metric may fill it.
        .with_max_series_per_metric(100_000)
        .with_flush_interval(Duration::from_secs(3600))
        // Encoding a million new series takes a while in a debug build.
        .with_shutdown_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let before = rss_bytes();
    let kept = storm(&recorder, SERIES, 1);
    let growth = rss_bytes().saturating_sub(before);
    handle.flush_async().await.unwrap();
    let stats = handle.stats();
    assert!(
        growth <= 256 * MIB,
        "a storm of {SERIES} series grew RSS by {} MiB: {stats:?}",
        growth / MIB
    );
    assert!(stats.series < SERIES as u64, "no cap: {stats:?}");
    // The series past the cap went to the metric's one overflow series.
    assert_eq!(stats.series_dropped, 0, "{stats:?}");
    assert_eq!(
        stats.series_overflowed,
        SERIES as u64 - (stats.series - 1),
        "the series beyond the cap are counted: {stats:?}"
    );
    // The series from before the storm hit the cap keeps working.
    kept[0].increment(41);
    let flushed = handle.stats().lines_sent;
    handle.flush_async().await.unwrap();
    assert!(delivered(&handle, &rx, flushed + 1).await);
    let received = parse_all(&rx.lines());
    assert_eq!(counter_total(&received, "storm.requests.200.r_0"), 42);
    assert_eq!(
        counter_total(&received, "storm.requests.overflow"),
        stats.series_overflowed,
        "each redirected series' increment arrives in the overflow counter"
    );
    drop(guard);
}
