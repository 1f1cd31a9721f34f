//! Graphite plaintext into the real carbon-cache (Debian graphite-carbon + whisper), started by
//! the tests with a private config: every point read back with whisper-fetch must carry the
//! exact value and an interval-aligned timestamp, and carbon must log no invalid input. Also
//! through carbon-c-relay, and across a graceful carbon restart.
#![allow(
    clippy::float_cmp,
    reason = "every compared value is exactly representable"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]

#[path = "support/carbon.rs"]
mod carbon;

use std::time::{Duration, Instant};

use carbon::{
    Carbon, CarbonRelay, require_carbon, require_carbon_relay, unix_now, wait_for_room_in_slot,
};
use metrics_exporter_statsd_graphite::{
    CounterMode, ExporterBuilder, ExporterGuard, ExporterRecorder,
};

const WAIT: Duration = Duration::from_secs(15);
const INTERVAL: u64 = 10;

/// A protocol constructor of the builder.
type Protocol = fn(String) -> ExporterBuilder;

fn exporter(endpoint: String, counters: CounterMode) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = builder(ExporterBuilder::graphite, endpoint, counters, INTERVAL)
        .build()
        .expect("builds");
    (recorder, exporter.start().expect("starts"))
}

fn builder(
    protocol: Protocol,
    endpoint: String,
    counters: CounterMode,
    interval: u64,
) -> ExporterBuilder {
    protocol(endpoint)
        .with_prefix("it")
        .with_counter_mode(counters)
        .with_flush_interval(Duration::from_secs(interval))
}

/// Polls the wall clock until its second is past `second`, so the next flush (with unaligned
/// timestamps) is stamped with a second of its own and fills a carbon slot of its own.
fn wait_for_second_after(second: u64) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while unix_now() <= second {
        assert!(Instant::now() < deadline, "the clock does not move");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The single point of `series`, once carbon has written it.
fn point(carbon: &Carbon, series: &str) -> (u64, f64) {
    let points = carbon.wait_for_points(series, WAIT, |p| !p.is_empty());
    assert_eq!(points.len(), 1, "{series}: {points:?}\n{}", carbon.log());
    points[0]
}

/// Flush interval of the every-kind tests: one minute. Their flush happens at least 15 s
/// before a minute boundary (see [`wait_for_room_in_slot`]), so exactly one aligned timestamp
/// is possible: the minute the wall clock was in just before recording. An aligned tick
/// fires only on a boundary, and the wait also lets the boundary's own tick pass
/// ([`carbon::TICK_SETTLE`]), so none falls between recording and shutdown; one that did would stamp
/// the same minute, but add re-sent lines to `lines_sent`.
const SLOT: u64 = 60;

/// Records a counter (plain and tagged), a gauge, and two histograms (plain and tagged),
/// flushes once, and reads every series back from carbon: the exact value, at exactly the
/// aligned timestamp the exporter stamped, and nothing in any other slot.
fn every_kind_of_metric_is_stored_exactly(
    protocol: Protocol,
    endpoint: impl FnOnce(&Carbon) -> String,
) {
    let carbon = Carbon::start().expect("carbon starts");
    let (recorder, exporter) = builder(protocol, endpoint(&carbon), CounterMode::Delta, SLOT)
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    // Room for recording, the flush and the shutdown's final flush in one slot, even on a
    // loaded 2-core CI machine (a 3 s margin once let the shutdown cross the boundary).
    wait_for_room_in_slot(SLOT, 15);
    let before = unix_now();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("requests").increment(7);
        metrics::counter!("requests", "route" => "/a", "method" => "GET").increment(3);
        metrics::gauge!("temperature").set(-2.5);
        for v in 1..=100 {
            metrics::histogram!("latency").record(f64::from(v));
        }
        // 1000 samples (under the 1024 kept per interval, so the summary is exact), with a
        // different value for every statistic, so no two suffixes can be swapped unseen.
        for v in 1..=1000 {
            metrics::histogram!("latency", "route" => "/a").record(f64::from(v));
        }
    });
    guard.handle().flush().expect("flush");
    let stats = guard.shutdown().expect("shutdown");
    let after = unix_now();
    let aligned = before - before % SLOT;
    assert!(
        after < aligned + SLOT,
        "recording, flushing and shutting down took from {before} to {after}, across a minute boundary"
    );
    for (series, value) in [
        ("it.requests", 7.0),
        ("it.requests;method=GET;route=/a", 3.0),
        ("it.temperature", -2.5),
        ("it.latency.count", 100.0),
        ("it.latency.sum", 5050.0),
        ("it.latency.min", 1.0),
        ("it.latency.max", 100.0),
        ("it.latency.mean", 50.5),
        ("it.latency.p50", 50.0),
        ("it.latency.p90", 90.0),
        ("it.latency.p99", 99.0),
        ("it.latency.p999", 100.0),
        // Tagged: the suffix goes on the name, the tags after it.
        ("it.latency.count;route=/a", 1000.0),
        ("it.latency.sum;route=/a", 500_500.0),
        ("it.latency.min;route=/a", 1.0),
        ("it.latency.max;route=/a", 1000.0),
        ("it.latency.mean;route=/a", 500.5),
        ("it.latency.p50;route=/a", 500.0),
        ("it.latency.p90;route=/a", 900.0),
        ("it.latency.p99;route=/a", 990.0),
        ("it.latency.p999;route=/a", 999.0),
    ] {
        assert_eq!(
            point(&carbon, series),
            (aligned, value),
            "{series}: flushed in {before}..={after}"
        );
    }
    // Each of those 21 series was read back above; carbon made no other whisper file.
    // (Counted, not listed: with readable tagged file names, the `/` in `route=/a` makes
    // carbon nest a directory, which `series()` cannot map back to the name.)
    let stored = carbon.series();
    assert_eq!(stored.len(), 21, "{stored:?}");
    assert_eq!(carbon.log_errors(), Vec::<String>::new());
    assert_eq!(
        stats.lines_sent,
        2 + 1 + 9 + 9,
        "two counters, a gauge, two nine-line summaries"
    );
}

#[test]
fn carbon_stores_every_kind_of_metric_sent_over_tcp() {
    if !require_carbon() {
        return;
    }
    every_kind_of_metric_is_stored_exactly(ExporterBuilder::graphite, |c| {
        format!("tcp://{}", c.line_addr())
    });
}

#[test]
fn carbon_stores_every_kind_of_metric_sent_over_udp() {
    if !require_carbon() {
        return;
    }
    every_kind_of_metric_is_stored_exactly(ExporterBuilder::graphite, |c| {
        format!("udp://{}", c.line_addr())
    });
}

#[test]
fn carbon_stores_every_kind_of_metric_sent_as_pickle() {
    if !require_carbon() {
        return;
    }
    every_kind_of_metric_is_stored_exactly(ExporterBuilder::graphite_pickle, |c| {
        c.pickle_addr().to_string()
    });
}

#[test]
fn values_arrive_intact_through_carbon_c_relay() {
    if !require_carbon() || !require_carbon_relay() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let relay = CarbonRelay::start(carbon.line_addr()).expect("relay starts");
    let (recorder, guard) = exporter(relay.addr().to_string(), CounterMode::Delta);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("relayed", "dc" => "eu").increment(11);
        metrics::gauge!("relayed.level").set(0.125);
    });
    guard.handle().flush().expect("flush");
    guard.shutdown().expect("shutdown");
    let captured = relay.wait_for_captured(WAIT, |l| l.len() >= 2);
    assert!(
        captured
            .iter()
            .any(|l| l.starts_with("it.relayed;dc=eu 11 ")),
        "{captured:?}"
    );
    assert_eq!(point(&carbon, "it.relayed;dc=eu").1, 11.0);
    assert_eq!(point(&carbon, "it.relayed.level").1, 0.125);
    assert_eq!(carbon.log_errors(), Vec::<String>::new());
}

#[test]
fn a_graceful_carbon_restart_loses_no_counter_increment() {
    if !require_carbon() {
        return;
    }
    let mut carbon = Carbon::start().expect("carbon starts");
    // Running totals: whatever slot the points land in, the last stored value is the total.
    let (recorder, guard) = exporter(format!("tcp://{}", carbon.line_addr()), CounterMode::Total);
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));
    counter.increment(5);
    handle.flush().expect("flush");
    carbon.wait_for_points("it.jobs", WAIT, |p| p.iter().any(|(_, v)| *v == 5.0));

    carbon.restart().expect("carbon restarts");
    counter.increment(7);
    let start = Instant::now();
    let mut last = 0.0;
    while last != 12.0 && start.elapsed() < WAIT {
        handle.flush().expect("flush");
        let points = carbon.wait_for_points("it.jobs", Duration::from_millis(1500), |p| {
            p.iter().any(|(_, v)| *v == 12.0)
        });
        last = points.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    }
    let stats = guard.shutdown().expect("shutdown");
    assert_eq!(
        last,
        12.0,
        "the total after the restart: {stats:?}\n{}",
        carbon.log()
    );
    assert!(stats.connects >= 2, "{stats:?}");
    assert_eq!(stats.lines_dropped_send, 0);
    assert_eq!(carbon.log_errors(), Vec::<String>::new());
}

/// Delta counters across two graceful carbon stops, one slot per flush, so a lost flush
/// cannot hide behind a later one (running totals, as in the test above, resend it).
///
/// Timestamps are unaligned and every flush waits for a wall-clock second of its own, so
/// each flush that sends fills its own 1-second carbon slot (the harness keeps `1s:1h`)
/// with that flush's delta alone; the stored points are then exactly the increments, flush by
/// flush, and they sum to all that was recorded. Increments are powers of two, so a point
/// that carries two of them says which.
///
/// Before each stop the test waits until carbon has stored what was sent: plaintext has no
/// acknowledgement, so bytes carbon never read before its SIGTERM (still in its socket
/// buffer) are lost without the exporter being able to know; that window is carbon's, and
/// not what this test is about. What it checks is the exporter's side: the first flush
/// after a restart must notice that carbon closed the old connection and reconnect rather
/// than write into it, and a flush while carbon is down must keep the delta for the next.
#[test]
fn delta_counters_across_graceful_carbon_restarts_store_every_increment_exactly_once() {
    if !require_carbon() {
        return;
    }
    let mut carbon = Carbon::start().expect("carbon starts");
    // Unaligned, the first tick is an hour away: only the explicit flushes send.
    let (recorder, exporter) = builder(
        ExporterBuilder::graphite,
        format!("tcp://{}", carbon.line_addr()),
        CounterMode::Delta,
        3600,
    )
    .with_aligned_timestamps(false)
    .build()
    .expect("builds");
    let guard = exporter.start().expect("starts");
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));
    // (value the flush must store, or None while carbon is down; the flush's window)
    let mut flushes: Vec<(Option<f64>, (u64, u64))> = Vec::new();
    let mut last = 0;
    let mut flush = |increment: u64, stores: Option<f64>| {
        wait_for_second_after(last);
        let before = unix_now();
        counter.increment(increment);
        handle.flush().expect("flush");
        last = unix_now();
        flushes.push((stores, (before, last)));
    };
    let stored_so_far = |carbon: &Carbon, total: f64| {
        carbon.wait_for_points("it.jobs", WAIT, |p| {
            p.iter().map(|(_, v)| v).sum::<f64>() >= total
        })
    };

    flush(1, Some(1.0));
    flush(2, Some(2.0));
    stored_so_far(&carbon, 3.0);
    // Restart with no flush in between: the exporter still holds the connection carbon
    // closed; the next flush must see that and reconnect.
    carbon.restart().expect("carbon restarts");
    flush(4, Some(4.0));
    flush(8, Some(8.0));
    stored_so_far(&carbon, 15.0);
    // Stop, flush while carbon is down (nothing can be sent: the delta stays), start again.
    carbon.stop();
    flush(16, None);
    carbon.start_again().expect("carbon starts again");
    flush(32, Some(48.0));
    flush(64, Some(64.0));
    let points = stored_so_far(&carbon, 127.0);
    let stats = guard.shutdown().expect("shutdown");

    let context = format!(
        "points {points:?}, flushes {flushes:?}\n{stats:?}\n{}",
        carbon.log()
    );
    assert_eq!(
        points.iter().map(|(_, v)| v).sum::<f64>(),
        127.0,
        "every increment once: {context}"
    );
    let expected: Vec<(Option<f64>, (u64, u64))> = flushes
        .iter()
        .filter(|(v, _)| v.is_some())
        .copied()
        .collect();
    assert_eq!(
        points.len(),
        expected.len(),
        "one point per sending flush: {context}"
    );
    for ((ts, value), (stores, (before, after))) in points.iter().zip(&expected) {
        assert_eq!(Some(*value), *stores, "{context}");
        assert!(
            (*before..=*after).contains(ts),
            "{value} stamped {ts}, flushed in {before}..={after}: {context}"
        );
    }
    assert_eq!(stats.lines_sent, 6, "{context}");
    assert_eq!(stats.lines_dropped_send, 0, "{context}");
    assert_eq!(
        stats.connects, 3,
        "one connection per carbon process: {context}"
    );
    assert_eq!(carbon.log_errors(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pickle_backfill_through_the_direct_client_lands_at_its_timestamps() {
    if !require_carbon() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let mut client = ExporterBuilder::graphite_pickle(carbon.pickle_addr().to_string())
        .build_client()
        .expect("client");
    let now = unix_now();
    let points = [(now - 180, 1.0), (now - 120, 2.5), (now - 60, -4.0)];
    for (ts, value) in points {
        assert!(client.send_at("backfill.series;kind=test", value, ts));
    }
    client.flush().await.expect("flush");
    let stats = client.close().await.expect("close");
    assert_eq!(stats.lines_sent, 3);
    let stored = tokio::task::spawn_blocking(move || {
        let got = carbon.wait_for_points("backfill.series;kind=test", WAIT, |p| p.len() == 3);
        (got, carbon.log_errors())
    })
    .await
    .expect("reader");
    assert_eq!(stored.0, points.to_vec());
    assert_eq!(stored.1, Vec::<String>::new());
}

#[test]
fn delta_counters_survive_an_explicit_flush_and_shutdown_in_the_same_slot() {
    if !require_carbon() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let (recorder, guard) = exporter(format!("tcp://{}", carbon.line_addr()), CounterMode::Delta);
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("reqs"));
    counter.increment(100);
    guard.handle().flush().expect("flush");
    counter.increment(40);
    guard.shutdown().expect("shutdown");
    // Same slot: the second write says 140 and carbon keeps it. Across a slot boundary: 100
    // and 40 in two slots. Either way nothing is overwritten away.
    let points = carbon.wait_for_points("it.reqs", WAIT, |p| {
        p.iter().map(|(_, v)| v).sum::<f64>() >= 140.0
    });
    assert_eq!(
        points.iter().map(|(_, v)| v).sum::<f64>(),
        140.0,
        "{points:?}\n{}",
        carbon.log()
    );
}
