//! Fault injection on stream transports (TCP and Unix stream sockets) over real loopback
//! sockets: a destination that is down at start, graceful restarts under constant load, an
//! abrupt reset, a stalled reader, shutdown while the destination is down or hangs, and a
//! DogStatsD Unix stream socket removed and recreated under load.
//!
//! Every scenario checks the exact totals received against the exact totals recorded, and the
//! exporter's statistics. The receiver is `support/faulty.rs`; waits poll with a deadline and
//! no assertion is about timing.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed setup must fail the test loudly"
)]
#![allow(clippy::float_cmp, reason = "compared values are small integers")]

#[path = "support/dogstatsd_parser.rs"]
mod dogstatsd_parser;
#[path = "support/faulty.rs"]
mod faulty;

use std::future::Future;
use std::time::Duration;

use faulty::{BlackHole, End, Load, StreamReceiver, counter_total, last_gauge, parse_all};
use metrics_exporter_statsd_graphite::{
    ExporterBuilder, ExporterGuard, ExporterHandle, ExporterStats, FlushError,
};

/// Upper bound of every wait: generous, since CI machines are small and busy.
const MAX: Duration = Duration::from_secs(20);

async fn until(pred: impl FnMut() -> bool) -> bool {
    faulty::until(MAX, pred).await
}

/// Flushes, then polls `pred` for a moment; again until it holds or `MAX` passes (a reconnect
/// may have to wait out a backoff).
async fn flush_until(handle: &ExporterHandle, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + MAX;
    loop {
        // Ok or not, the flusher keeps going; what matters is what arrives.
        let _ = handle.flush_async().await;
        for _ in 0..10 {
            if pred() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
    }
}

/// Starts `builder` with a one-hour flush interval, so only the test's explicit flushes (and
/// the final one) send: the exporter, its guard and a handle.
fn started_on_demand(
    builder: ExporterBuilder,
) -> (
    metrics_exporter_statsd_graphite::ExporterRecorder,
    ExporterGuard,
    ExporterHandle,
) {
    let (recorder, exporter) = builder
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    (recorder, guard, handle)
}

/// Runs `f` and returns its result; a name for "this part must finish" in the tests below.
async fn finishes<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(MAX, f)
        .await
        .unwrap_or_else(|_| panic!("did not finish within {MAX:?}"))
}

/// Shuts down and returns the final statistics once `settled` holds on them.
///
/// The flusher cuts its final flush at the deadline and answers `Ok`. Only when its synchronous
/// part (collecting and encoding) overruns the deadline plus the guard's grace, as on a busy
/// machine, does the guard give up first with `Err(Timeout)` (as documented) while the flusher
/// finishes and counts in the background; then we wait for the counts to settle.
async fn shut_down(
    guard: ExporterGuard,
    settled: impl Fn(&ExporterStats) -> bool,
) -> ExporterStats {
    let handle = guard.handle();
    match finishes(guard.shutdown_async()).await {
        Ok(stats) => stats,
        Err(FlushError::Timeout) => {
            assert!(
                until(|| settled(&handle.stats())).await,
                "{:?}",
                handle.stats()
            );
            handle.stats()
        }
        Err(e) => panic!("shutdown failed: {e}"),
    }
}

/// Every complete line received, parsed (panics on a line that is not valid StatsD).
fn received(rx: &StreamReceiver) -> Vec<faulty::StatsdLine> {
    parse_all(&rx.lines())
}

/// A destination that is down when the exporter starts, for a couple of seconds' worth of
/// flushes, while a thread records continuously: once it is up, every increment of the outage
/// arrives exactly once and the gauge arrives with the last value set.
async fn outage_at_start(rx: StreamReceiver) {
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let (jobs, level) = metrics::with_local_recorder(&recorder, || {
        (
            metrics::counter!("outage.jobs"),
            metrics::gauge!("outage.level"),
        )
    });
    let load = Load::start(jobs);
    // The outage lasts 30 flush intervals (about 1.5 s); the gauge moves all along.
    let mut last = 0.0;
    assert!(
        until(|| {
            last += 1.0;
            level.set(last);
            handle.stats().flushes >= 30
        })
        .await
    );
    let during = handle.stats();
    assert_eq!(rx.accepted(), 0);
    assert_eq!(during.lines_sent, 0, "{during:?}");
    assert!(
        during.send_errors >= 1,
        "the outage is reported: {during:?}"
    );
    assert_eq!(
        during.lines_dropped_send, 0,
        "nothing drained into drops: {during:?}"
    );

    rx.reopen();
    // Keep recording until data flows, so the recovery happens under load.
    assert!(until(|| counter_total(&received(&rx), "outage.jobs") > 0).await);
    let increments = load.stop();
    assert!(
        flush_until(&handle, || counter_total(&received(&rx), "outage.jobs")
            >= increments)
        .await
    );
    let stats = finishes(guard.shutdown_async()).await.unwrap();
    // The final flush re-sends the gauge: wait until the receiver has read it too.
    assert!(until(|| received(&rx).len() as u64 >= stats.lines_sent).await);
    let lines = received(&rx);
    assert_eq!(
        counter_total(&lines, "outage.jobs"),
        increments,
        "{stats:?}"
    );
    let gauges: Vec<f64> = lines
        .iter()
        .filter(|l| l.name == "outage.level")
        .map(|l| l.value)
        .collect();
    assert_eq!(
        gauges.first(),
        Some(&last),
        "the first gauge after the outage is the last value set during it"
    );
    assert_eq!(last_gauge(&lines, "outage.level"), Some(last));
    assert_eq!(stats.lines_sent, lines.len() as u64, "{stats:?}");
    assert_eq!(
        stats.lines_dropped_send + stats.lines_dropped_shutdown,
        0,
        "{stats:?}"
    );
    assert_eq!(stats.connects, 1, "{stats:?}");
    assert_eq!(rx.accepted(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_destination_down_at_start_gets_every_increment_of_the_outage_once_up() {
    outage_at_start(StreamReceiver::tcp_down()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_stream_destination_down_at_start_gets_every_increment_of_the_outage_once_up() {
    // Plain StatsD over `unix://` is newline-framed, as Etsy statsd reads it.
    outage_at_start(StreamReceiver::unix_down("statsd.sock")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_graceful_restarts_under_constant_load_lose_and_duplicate_nothing() {
    let rx = StreamReceiver::tcp();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let jobs = metrics::with_local_recorder(&recorder, || metrics::counter!("restarts.jobs"));
    let load = Load::start(jobs);
    for restart in 0..10 {
        // Connected, and data flowing on this connection: no connect is in flight when the
        // listener closes (one would be reset by the kernel with whatever it carried).
        assert!(
            until(|| rx
                .connections()
                .get(restart)
                .is_some_and(|c| !c.complete_lines().is_empty()))
            .await,
            "connection {restart} carries data"
        );
        let errors = handle.stats().send_errors;
        rx.close_gracefully();
        // The exporter saw the FIN and found the port closed before we come back.
        assert!(until(|| handle.stats().send_errors > errors).await);
        rx.reopen();
    }
    assert!(
        until(|| rx
            .connections()
            .get(10)
            .is_some_and(|c| !c.bytes.is_empty()))
        .await
    );
    let increments = load.stop();
    assert!(
        flush_until(&handle, || counter_total(&received(&rx), "restarts.jobs")
            >= increments)
        .await
    );
    let stats = finishes(guard.shutdown_async()).await.unwrap();
    // Every line is whole and valid (`received` parses them all), none is doubled.
    let lines = received(&rx);
    assert_eq!(
        counter_total(&lines, "restarts.jobs"),
        increments,
        "{stats:?}"
    );
    let connections = rx.connections();
    assert_eq!(connections.len(), 11);
    for (i, c) in connections.iter().enumerate() {
        assert!(c.partial_tail().is_empty(), "connection {i} ends mid-line");
        if i < 10 {
            assert_eq!(c.end, Some(End::Graceful), "connection {i}: {c:?}");
        }
    }
    assert_eq!(stats.lines_sent, lines.len() as u64, "{stats:?}");
    assert_eq!(
        stats.lines_dropped_send + stats.lines_dropped_shutdown,
        0,
        "{stats:?}"
    );
    assert_eq!(stats.connects, 11, "{stats:?}");
}

/// A receiver that dies abruptly (RST) with one flush in its kernel buffer, unread. Returns
/// the final statistics and the (recorded, received, lost) counter totals.
async fn reset_with_one_flush_unread() -> (ExporterStats, u64, u64, u64) {
    let rx = StreamReceiver::tcp();
    let (recorder, guard, handle) = started_on_demand(ExporterBuilder::statsd(rx.endpoint()));
    let jobs = metrics::with_local_recorder(&recorder, || metrics::counter!("reset.jobs"));
    jobs.increment(5);
    assert!(flush_until(&handle, || counter_total(&received(&rx), "reset.jobs") == 5).await);

    // The receiver stops reading; one flush goes into its kernel buffer; then it dies.
    rx.stall();
    jobs.increment(7);
    handle.flush_async().await.unwrap();
    assert_eq!(handle.stats().lines_sent, 2, "the kernel took the line");
    assert_eq!(rx.reset(), 1);
    rx.reopen();

    jobs.increment(11);
    assert!(
        flush_until(&handle, || counter_total(&received(&rx), "reset.jobs")
            >= 16)
        .await
    );
    let stats = finishes(guard.shutdown_async()).await.unwrap();
    let connections = rx.connections();
    assert_eq!(connections.len(), 2);
    assert_eq!(connections[0].end, Some(End::Reset));
    let got = counter_total(&received(&rx), "reset.jobs");
    (stats, 23, got, 23 - got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_loses_at_most_what_the_dead_receiver_had_not_read_and_then_recovers() {
    let (stats, increments, got, lost) = reset_with_one_flush_unread().await;
    assert_eq!(increments, 23);
    assert_eq!(
        got, 16,
        "everything but the unread flush arrived, once: {stats:?}"
    );
    assert_eq!(lost, 7);
    assert_eq!(stats.connects, 2, "reconnected after the reset: {stats:?}");
    assert!(stats.send_errors <= 1, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_lost_to_a_reset_are_counted_as_possibly_lost() {
    let (stats, _, _, lost) = reset_with_one_flush_unread().await;
    assert_eq!(lost, 7, "one line, `reset.jobs:7|c`, was lost");
    assert_eq!(
        stats.lines_possibly_lost, 1,
        "the line the kernel took before the RST shows as possibly lost: {stats:?}"
    );
}

/// Long storm lines fill kernel buffers quickly: a stalled loopback connection takes about
/// 3 MB before writes block. The padding is 8 components of 250 bytes: within what carbon
/// can store (251 per component, 2048 per name), so the exporter sends it unshortened.
const STORM_SERIES: usize = 4_000;
const STORM_PAD: usize = 8 * 251 - 1;

fn storm_name(i: usize) -> String {
    format!("storm.{}.s{i:04}", vec!["x".repeat(250); 8].join("."))
}

/// `storm.xxxx….s0000:1|c\n`
const STORM_LINE_LEN: usize = "storm.".len() + STORM_PAD + ".s0000".len() + ":1|c\n".len();

/// Registers the storm series and adds 1 to each: 8 MB of lines at the next flush.
fn storm(recorder: &metrics_exporter_statsd_graphite::ExporterRecorder) {
    metrics::with_local_recorder(recorder, || {
        for i in 0..STORM_SERIES {
            metrics::counter!(storm_name(i)).increment(1);
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(
    clippy::too_many_lines,
    reason = "one scenario, stall to recovery, checked at every stage"
)]
async fn a_stalled_reader_never_blocks_recording_bounds_the_backlog_and_recovers() {
    const BACKLOG: usize = 256 * 1024;
    let rx = StreamReceiver::tcp_with_receive_buffer(4096);
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600))
        // The write outlasts the flush call's wait (shutdown timeout + 250 ms).
        .with_write_timeout(Duration::from_secs(3))
        .with_shutdown_timeout(Duration::from_millis(200))
        .with_max_backlog_bytes(BACKLOG)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    // First series, so its line leads the first payload (never among the oldest dropped).
    let live = metrics::with_local_recorder(&recorder, || metrics::counter!("stall.live"));
    let load = Load::start(live);
    storm(&recorder);
    assert!(until(|| load.iterations() > 0).await);

    rx.stall();
    assert_eq!(
        handle.flush_async().await,
        Err(FlushError::Timeout),
        "the flush call gives up while the flusher is stuck in its write"
    );
    let before = load.iterations();
    assert!(until(|| load.iterations() >= before + 5_000).await);
    let stats = handle.stats();
    assert_eq!(
        stats.send_errors, 0,
        "the recording thread advanced while the flusher was still stuck: {stats:?}"
    );

    // The write times out: what the kernel did not take goes to the bounded backlog, whose
    // oldest lines are dropped and counted (the last count the flush makes).
    assert!(
        until(|| handle.stats().lines_dropped_send > 0).await,
        "{:?}",
        handle.stats()
    );
    let stats = handle.stats();
    assert_eq!(stats.send_errors, 1, "{stats:?}");
    let produced = STORM_SERIES as u64 + 1;
    let dropped = stats.lines_dropped_send;
    let backlog = produced - stats.lines_sent - dropped;
    let backlog_bytes = usize::try_from(backlog).unwrap() * STORM_LINE_LEN;
    assert!(
        backlog_bytes <= BACKLOG && backlog_bytes + STORM_LINE_LEN > BACKLOG,
        "the backlog is full to its bound, not past it: {backlog} lines, {stats:?}"
    );

    // The abandoned connection was closed with a reset, so the kernel discarded at once what
    // it still held for it (the issue: orphaned sockets holding megabytes each); those lines
    // were counted as possibly lost when the write failed.
    let lost = stats.lines_possibly_lost;
    assert!(
        lost > 0,
        "what the kernel held is counted as possibly lost: {stats:?}"
    );
    // The reader wakes up: everything not counted as dropped or possibly lost arrives, once.
    rx.resume();
    let increments = load.stop();
    let storm_names = |lines: &[faulty::StatsdLine]| {
        let mut names: Vec<String> = lines
            .iter()
            .filter(|l| l.name.starts_with("storm."))
            .map(|l| l.name.clone())
            .collect();
        names.sort_unstable();
        names.dedup();
        names.len()
    };
    assert!(
        flush_until(&handle, || {
            let lines = received(&rx);
            let stats = handle.stats();
            storm_names(&lines) + usize::try_from(dropped + lost).unwrap() >= STORM_SERIES
                && lines.len() as u64 + lost >= stats.lines_sent
                && counter_total(&lines, "stall.live") > 0
        })
        .await,
        "received {} lines ({} storm), {:?}",
        received(&rx).len(),
        storm_names(&received(&rx)),
        handle.stats()
    );
    let stats = finishes(guard.shutdown_async()).await.unwrap();
    let lines = received(&rx);
    assert_eq!(
        stats.lines_possibly_lost, lost,
        "nothing else is in doubt: {stats:?}"
    );
    // Possibly lost, not surely: Linux may still hand the receiver a few lines it had
    // queued when the reset came.
    let received_lines = lines.len() as u64;
    assert!(
        received_lines <= stats.lines_sent && stats.lines_sent <= received_lines + lost,
        "every line counted as sent arrived, but for some counted as possibly lost: \
         {received_lines} received, {stats:?}"
    );
    let live = counter_total(&lines, "stall.live");
    assert!(
        live <= increments,
        "nothing is invented: {live} > {increments}"
    );
    assert!(
        lines
            .iter()
            .filter(|l| l.name.starts_with("storm."))
            .all(|l| l.value == 1.0)
    );
    let storm_lines = lines
        .iter()
        .filter(|l| l.name.starts_with("storm."))
        .count();
    let storm = storm_names(&lines);
    assert_eq!(storm_lines, storm, "no storm line twice: {stats:?}");
    // Every storm line is received, dropped (counted) or among the possibly lost.
    let (dropped_n, lost_n) = (
        usize::try_from(dropped).unwrap(),
        usize::try_from(lost).unwrap(),
    );
    assert!(
        storm + dropped_n <= STORM_SERIES && STORM_SERIES <= storm + dropped_n + lost_n,
        "{storm} storm lines received, {stats:?}"
    );
    assert_eq!(
        stats.lines_dropped_send, dropped,
        "no drop after the reader resumed"
    );
    let connections = rx.connections();
    assert_eq!(
        connections[0].end,
        Some(End::Failed),
        "the receiver saw the abandoned connection reset"
    );
    for (i, c) in connections.iter().enumerate().skip(1) {
        assert!(
            c.partial_tail().is_empty(),
            "only the abandoned connection is cut: {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_connects_hang_returns_after_its_timeout_with_every_line_counted() {
    // Never reachable, and not refused either: connects hang (a host that went silent).
    let hole = BlackHole::tcp();
    let (recorder, exporter) = ExporterBuilder::statsd(format!("tcp://{}", hole.addr()))
        .with_flush_interval(Duration::from_millis(50))
        .with_connect_timeout(Duration::from_secs(30))
        .with_shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..10 {
            metrics::counter!(format!("hole.c{i}")).increment(1);
        }
        metrics::gauge!("hole.level").set(3.0);
    });
    // The guard returns well before the 30 s connect timeout: the shutdown timeout cuts it.
    let stats = shut_down(guard, |s| s.lines_dropped_shutdown == 11).await;
    assert_eq!(stats.lines_sent, 0, "{stats:?}");
    assert_eq!(
        stats.lines_dropped_shutdown, 11,
        "every series is counted: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_the_reader_is_stalled_returns_after_its_timeout_with_every_line_counted() {
    let rx = StreamReceiver::tcp_with_receive_buffer(4096);
    let (recorder, guard, handle) = started_on_demand(
        ExporterBuilder::statsd(rx.endpoint())
            .with_write_timeout(Duration::from_secs(30))
            .with_shutdown_timeout(Duration::from_millis(500)),
    );
    // A first storm goes through, so the final flush has only encoding left to do.
    storm(&recorder);
    assert!(
        flush_until(&handle, || rx.bytes_received()
            == STORM_SERIES * STORM_LINE_LEN)
        .await
    );
    rx.stall();
    storm(&recorder);
    // The final flush's write blocks; the shutdown timeout, not the 30 s write timeout, ends it.
    let produced = 2 * STORM_SERIES as u64;
    let stats = shut_down(guard, |s| {
        s.lines_sent + s.lines_dropped_shutdown == produced
    })
    .await;
    assert!(stats.lines_dropped_shutdown > 0, "{stats:?}");
    assert_eq!(
        stats.lines_sent + stats.lines_dropped_shutdown,
        produced,
        "every line is either sent or counted as dropped: {stats:?}"
    );
    // What the kernel took still arrives once the reader wakes up.
    rx.resume();
    let sent = usize::try_from(stats.lines_sent).unwrap();
    assert!(until(|| rx.connections()[0].end.is_some()).await);
    let lines = received(&rx);
    assert!(
        lines.len() >= sent,
        "every line counted as sent arrived: {stats:?}"
    );
    assert!(lines.len() <= 2 * STORM_SERIES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dogstatsd_unix_stream_socket_removed_and_recreated_five_times_under_load_loses_nothing()
{
    let rx = StreamReceiver::unix("dsd.stream");
    let (recorder, exporter) = ExporterBuilder::dogstatsd(rx.endpoint())
        .with_flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let jobs = metrics::with_local_recorder(&recorder, || metrics::counter!("dsd.jobs"));
    let load = Load::start(jobs);
    let path = rx.path();
    for cycle in 0..5 {
        assert!(
            until(|| rx
                .connections()
                .get(cycle)
                .is_some_and(|c| !c.complete_frames().is_empty()))
            .await,
            "connection {cycle} carries frames"
        );
        // The Agent stops: its socket file goes away and its connection closes gracefully.
        let errors = handle.stats().send_errors;
        rx.close_gracefully();
        assert!(!faulty::exists(&path));
        // The exporter finds the socket missing before it is recreated.
        assert!(until(|| handle.stats().send_errors > errors).await);
        rx.reopen();
    }
    assert!(until(|| rx.connections().get(5).is_some_and(|c| !c.bytes.is_empty())).await);
    let increments = load.stop();
    let total = |rx: &StreamReceiver| dsd_total(rx).0;
    assert!(flush_until(&handle, || total(&rx) >= increments).await);
    let stats = finishes(guard.shutdown_async()).await.unwrap();
    let (received, lines) = dsd_total(&rx);
    assert_eq!(received, increments, "{stats:?}");
    assert_eq!(stats.lines_sent, lines, "{stats:?}");
    assert_eq!(
        stats.lines_dropped_send + stats.lines_dropped_shutdown,
        0,
        "{stats:?}"
    );
    let connections = rx.connections();
    assert_eq!(connections.len(), 6);
    for (i, c) in connections.iter().enumerate() {
        let framed: usize = c.complete_frames().iter().map(|f| 4 + f.len()).sum();
        assert_eq!(framed, c.bytes.len(), "connection {i} ends mid-frame");
        if i < 5 {
            assert_eq!(c.end, Some(End::Graceful), "connection {i}");
        }
    }
}

/// The DogStatsD count of `dsd.jobs` and the number of lines, over every complete frame of
/// every connection, each line parsed strictly.
fn dsd_total(rx: &StreamReceiver) -> (u64, u64) {
    let (mut total, mut lines) = (0.0, 0);
    for c in rx.connections() {
        for frame in c.complete_frames() {
            for m in dogstatsd_parser::parse_datagram(&frame).unwrap() {
                lines += 1;
                if m.name == "dsd.jobs" {
                    total += m.values.iter().sum::<f64>();
                }
            }
        }
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a sum of whole counts, far below 2^53"
    )]
    (total as u64, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_created_during_an_outage_are_counted_in_the_stats() {
    let rx = StreamReceiver::tcp_down();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..100 {
            metrics::counter!(format!("new.c{i}")).increment(1);
        }
    });
    let flushes = handle.stats().flushes;
    assert!(until(|| handle.stats().flushes >= flushes + 5).await);
    let stats = handle.stats();
    assert_eq!(stats.lines_sent, 0, "still down: {stats:?}");
    // A storm during an outage is exactly when an operator needs to see it.
    assert_eq!(stats.series, 100, "{stats:?}");
    drop(rx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_final_flush_cut_by_the_shutdown_timeout_is_reported_as_a_timeout() {
    let hole = BlackHole::tcp();
    let (recorder, exporter) = ExporterBuilder::statsd(format!("tcp://{}", hole.addr()))
        .with_connect_timeout(Duration::from_secs(30))
        .with_shutdown_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("cut").increment(1));
    // "FlushError::Timeout if the final flush did not finish in time (what it could not send
    // is counted in lines_dropped_shutdown)": here it could not even connect in time.
    let result = finishes(guard.shutdown_async()).await;
    assert_eq!(
        result.map(|s| s.lines_dropped_shutdown),
        Err(FlushError::Timeout)
    );
}

/// Self-telemetry through an outage: no report while the destination is down, then reports
/// that add up, over the whole run, to exactly the final statistics, with the report lines
/// themselves in none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_reports_an_outage_once_it_is_over_and_adds_up_to_the_final_stats() {
    let rx = StreamReceiver::tcp_down();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_millis(50))
        .with_telemetry_prefix("tel")
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let jobs = metrics::with_local_recorder(&recorder, || metrics::counter!("app.jobs"));
    jobs.increment(5);
    assert!(until(|| handle.stats().flushes >= 10).await);
    let during = handle.stats();
    assert!(during.send_errors >= 1, "{during:?}");
    assert_eq!(during.telemetry_lines_sent, 0, "no report while down");

    rx.reopen();
    assert!(
        flush_until(&handle, || received(&rx)
            .iter()
            .any(|l| l.name == "tel.connects"))
        .await
    );
    jobs.increment(2);
    let stats = shut_down(guard, |_| true).await;
    // Everything the kernel took arrives (the receiver reads in the background).
    let total = stats.lines_sent + stats.telemetry_lines_sent;
    assert!(
        until(|| received(&rx).len() as u64 >= total).await,
        "{stats:?}"
    );

    let lines = received(&rx);
    let (own, user): (Vec<_>, Vec<_>) = lines.iter().partition(|l| l.name.starts_with("tel."));
    let reported = |name: &str| counter_total(&lines, name);
    assert_eq!(counter_total(&lines, "app.jobs"), 7);
    assert_eq!(stats.lines_sent, user.len() as u64, "{stats:?}");
    assert_eq!(stats.telemetry_lines_sent, own.len() as u64, "{stats:?}");
    assert_eq!(reported("tel.lines_sent"), stats.lines_sent, "{stats:?}");
    assert_eq!(reported("tel.bytes_sent"), stats.bytes_sent, "{stats:?}");
    assert_eq!(
        reported("tel.payloads_sent"),
        stats.payloads_sent,
        "{stats:?}"
    );
    assert_eq!(reported("tel.send_errors"), stats.send_errors, "{stats:?}");
    assert_eq!(reported("tel.connects"), 1);
    assert_eq!(reported("tel.flushes"), stats.flushes, "{stats:?}");
    assert_eq!(last_gauge(&lines, "tel.series"), Some(1.0));
}

/// Registers `n` histogram series with long names and records one sample in each: about
/// `n` × 4 KB of backlog while the destination is down.
fn histogram_storm(recorder: &metrics_exporter_statsd_graphite::ExporterRecorder, n: usize) {
    metrics::with_local_recorder(recorder, || {
        for i in 0..n {
            metrics::histogram!(storm_name(i)).record(1.0);
        }
    });
}

/// The histogram lines named `name` that arrived, as received.
fn lines_named<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| l.split(':').next() == Some(name))
        .map(String::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interval_whose_backlog_send_fails_still_keeps_its_own_histogram_line() {
    let rx = StreamReceiver::tcp_with_receive_buffer(4096);
    rx.refuse();
    let (recorder, guard, handle) = started_on_demand(
        ExporterBuilder::dogstatsd(rx.endpoint())
            .with_write_timeout(Duration::from_millis(300))
            .with_max_backlog_bytes(32 << 20),
    );
    // Interval 1, destination down: 8 MB of histogram lines wait in the backlog. The marker
    // is registered last, so its line is the backlog's last: never in the part a reset
    // connection takes with it.
    histogram_storm(&recorder, STORM_SERIES);
    let marker = metrics::with_local_recorder(&recorder, || metrics::histogram!("marker"));
    marker.record(1.0);
    let _ = handle.flush_async().await;
    assert_eq!(handle.stats().lines_sent, 0);
    // Interval 2: the destination accepts the connection but does not read, so sending the
    // backlog fails after the connection check succeeded.
    rx.reopen();
    rx.stall();
    marker.record(2.0);
    assert!(
        flush_until(&handle, || handle.stats().connects > 0
            && handle.stats().send_errors >= 2)
        .await,
        "{:?}",
        handle.stats()
    );
    // Interval 3: the reader is back.
    rx.resume();
    marker.record(3.0);
    assert!(
        flush_until(&handle, || lines_named(&rx.lines(), "marker").len() >= 3).await,
        "{:?} {:?}",
        lines_named(&rx.lines(), "marker"),
        handle.stats()
    );
    let lines = rx.lines();
    assert_eq!(
        lines_named(&lines, "marker"),
        ["marker:1|d", "marker:2|d", "marker:3|d"],
        "each interval keeps its own samples, in order"
    );
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_connection_is_reset_so_the_kernel_frees_what_it_held_at_once() {
    // A receiver that accepts and never reads: every flush connects, fills what the kernel
    // lets one connection hold, times out and gives the connection up.
    let rx = StreamReceiver::tcp_with_receive_buffer(4096);
    rx.stall();
    let (recorder, guard, handle) = started_on_demand(
        ExporterBuilder::statsd(rx.endpoint()).with_write_timeout(Duration::from_millis(200)),
    );
    let mut per_connection = Vec::new();
    for attempt in 1..=3 {
        let before = handle.stats().bytes_sent;
        storm(&recorder);
        assert!(
            flush_until(&handle, || handle.stats().send_errors >= attempt).await,
            "{:?}",
            handle.stats()
        );
        per_connection.push(handle.stats().bytes_sent - before);
    }
    // What one connection took is bounded by our send buffer (Linux doubles the 256 KiB we
    // ask for) plus the receiver's small receive buffer; autotuned, it would take megabytes.
    for bytes in &per_connection {
        assert!(
            *bytes <= 640 * 1024,
            "one connection held {bytes} bytes: {per_connection:?}"
        );
    }
    // The receiver reads again: each abandoned connection turns out to have been reset (its
    // unread bytes discarded by the kernel), not closed with a FIN after a drain.
    rx.resume();
    let abandoned = usize::try_from(handle.stats().send_errors).unwrap();
    assert!(
        rx.wait_until(MAX, |conns| conns
            .iter()
            .take(abandoned)
            .all(|c| c.end.is_some())),
        "{:?}",
        rx.connections().iter().map(|c| c.end).collect::<Vec<_>>()
    );
    for (i, c) in rx.connections().iter().take(abandoned).enumerate() {
        assert_eq!(c.end, Some(End::Failed), "connection {i} was reset");
    }
    let stats = handle.stats();
    assert!(stats.lines_possibly_lost > 0, "{stats:?}");
    drop(guard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_flush_tries_at_once_instead_of_waiting_out_the_reconnect_backoff() {
    let rx = StreamReceiver::tcp_down();
    let (recorder, guard, handle) = started_on_demand(
        ExporterBuilder::statsd(rx.endpoint())
            .with_reconnect_delay(Duration::from_secs(3600))
            .with_max_reconnect_delay(Duration::from_secs(3600)),
    );
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("last.words"));
    counter.increment(5);
    let _ = handle.flush_async().await;
    assert_eq!(handle.stats().send_errors, 1, "{:?}", handle.stats());
    // The receiver is back, but the next attempt is half an hour away at least.
    rx.reopen();
    counter.increment(2);
    let _ = handle.flush_async().await;
    assert_eq!(
        (handle.stats().connects, handle.stats().lines_sent),
        (0, 0),
        "a regular flush respects the backoff: {:?}",
        handle.stats()
    );
    let stats = finishes(guard.shutdown_async()).await.unwrap();
    assert_eq!(
        (stats.connects, stats.lines_dropped_shutdown),
        (1, 0),
        "{stats:?}"
    );
    assert!(until(|| counter_total(&received(&rx), "last.words") == 7).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_seen_only_at_shutdown_still_counts_the_last_flush_as_possibly_lost() {
    let rx = StreamReceiver::tcp();
    let (recorder, guard, handle) = started_on_demand(ExporterBuilder::statsd(rx.endpoint()));
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("a").increment(1);
        metrics::counter!("b").increment(1);
    });
    // The receiver takes the connection but not the lines, then dies like kill -9.
    rx.stall();
    handle.flush_async().await.unwrap();
    assert!(rx.wait_until(MAX, |c| c.len() == 1));
    assert_eq!(rx.reset(), 1);
    // Nothing new is recorded: the final flush has nothing to send, only the verdict to learn.
    let stats = finishes(guard.shutdown_async()).await;
    let stats = stats.unwrap_or_else(|_| handle.stats());
    assert_eq!(stats.lines_sent, 2, "{stats:?}");
    assert_eq!(
        stats.lines_possibly_lost, 2,
        "the reset is seen by the final flush's connection check: {stats:?}"
    );
}
