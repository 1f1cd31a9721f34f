//! Fault injection on datagram transports over real sockets: a UDP receiver that goes away
//! and comes back, and a DogStatsD Unix datagram socket removed and recreated under constant
//! load. Each checks the exact totals received against those recorded, and the statistics.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed setup must fail the test loudly"
)]

#[path = "support/dogstatsd_parser.rs"]
mod dogstatsd_parser;
#[path = "support/faulty.rs"]
mod faulty;

use std::time::Duration;

use dogstatsd_parser::{MetricType, parse_datagram};
use faulty::{DatagramReceiver, Load, counter_total, parse_all};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterHandle, ExporterStats};

/// Upper bound of every wait: generous, since CI machines are small and busy.
const MAX: Duration = Duration::from_secs(20);

async fn until(pred: impl FnMut() -> bool) -> bool {
    faulty::until(MAX, pred).await
}

/// Flushes and waits until the receiver has `lines` lines in all.
async fn flush_and_wait(handle: &ExporterHandle, rx: &DatagramReceiver, lines: usize) {
    handle.flush_async().await.unwrap();
    assert!(
        until(|| rx.lines().len() >= lines).await,
        "{:?}",
        rx.lines()
    );
}

/// A UDP receiver that is gone for two flushes. Returns the final statistics and the total
/// received (of 36 recorded: 5 and 13 while it was there, 7 and 11 while it was not).
async fn udp_gap() -> (ExporterStats, u64, usize) {
    let rx = DatagramReceiver::udp();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let jobs = metrics::with_local_recorder(&recorder, || metrics::counter!("gap.jobs"));
    jobs.increment(5);
    flush_and_wait(&handle, &rx, 1).await;

    rx.close();
    for n in [7, 11] {
        jobs.increment(n);
        handle.flush_async().await.unwrap();
        // Time for the ICMP port unreachable to come back (on loopback it is immediate).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rx.reopen();
    jobs.increment(13);
    flush_and_wait(&handle, &rx, 2).await;
    let stats = guard.shutdown_async().await.unwrap();
    let lines = parse_all(&rx.lines());
    (stats, counter_total(&lines, "gap.jobs"), lines.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sending_resumes_exactly_after_a_receiver_gap() {
    let (stats, received, lines) = udp_gap().await;
    assert_eq!(received, 5 + 13, "{stats:?}");
    assert_eq!(lines, 2);
    assert_eq!(
        stats.lines_sent + stats.lines_dropped_send,
        4,
        "every line is counted once: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_refused_during_a_receiver_gap_are_counted() {
    let (stats, _, lines) = udp_gap().await;
    // Two datagrams went nowhere; the socket said so twice (ECONNREFUSED on the next send).
    assert!(
        stats.send_errors >= 2,
        "the errors the socket reported are counted, as the crate docs promise: {stats:?}"
    );
    // The kernel took them, so they are in `lines_sent`; the refusal makes them "possibly
    // lost", and exactly those are missing at the receiver.
    assert_eq!(
        stats.lines_possibly_lost, 2,
        "the refused datagrams are counted as lost: {stats:?}"
    );
    assert_eq!(
        stats.lines_sent - stats.lines_possibly_lost,
        lines as u64,
        "{stats:?}"
    );
}

/// Sum of the DogStatsD counts of `name` in the datagrams, parsing every line strictly.
fn dogstatsd_total(datagrams: &[Vec<u8>], name: &str) -> (u64, usize) {
    let mut total = 0.0;
    let mut lines = 0;
    for d in datagrams {
        for m in parse_datagram(d).unwrap() {
            lines += 1;
            if m.name == name {
                assert_eq!(m.kind, MetricType::Count);
                total += m.values.iter().sum::<f64>();
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
async fn a_unix_datagram_socket_removed_and_recreated_five_times_under_load_loses_nothing_uncounted()
 {
    let rx = DatagramReceiver::unixgram("dsd.sock");
    let (recorder, exporter) = ExporterBuilder::dogstatsd(rx.endpoint())
        .with_flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let jobs = metrics::with_local_recorder(&recorder, || metrics::counter!("dsd.jobs"));
    let load = Load::start(jobs);
    for cycle in 0..5 {
        // Data flows to this incarnation of the socket...
        let seen = rx.datagrams().len();
        assert!(until(|| rx.datagrams().len() > seen).await, "cycle {cycle}");
        // ...then the Agent stops: the socket file goes away, what was queued is read.
        let errors = handle.stats().send_errors;
        rx.close();
        assert!(!faulty::exists(&rx.path()));
        // The exporter notices the missing socket before it comes back.
        assert!(until(|| handle.stats().send_errors > errors).await);
        rx.reopen();
    }
    let seen = rx.datagrams().len();
    assert!(until(|| rx.datagrams().len() > seen).await, "data resumes");
    let increments = load.stop();
    let stats = guard.shutdown_async().await.unwrap();
    assert!(
        until(|| dogstatsd_total(&rx.datagrams(), "dsd.jobs").1 as u64 >= stats.lines_sent).await
    );
    let (received, lines) = dogstatsd_total(&rx.datagrams(), "dsd.jobs");
    assert_eq!(
        lines as u64, stats.lines_sent,
        "every line counted as sent arrived: {stats:?}"
    );
    // While the socket is missing the aggregate is kept; a datagram that raced the removal is
    // dropped and counted. Either way nothing is lost uncounted.
    if stats.lines_dropped_send == 0 {
        assert_eq!(received, increments, "{stats:?}");
    } else {
        assert!(received < increments, "{stats:?}");
    }
    assert_eq!(stats.lines_dropped_shutdown, 0, "{stats:?}");
}
