//! The guard's lifecycle over a real loopback TCP connection, whose end shows when the
//! flusher stops: dropping the guard flushes but keeps the exporter running; the exporter
//! stops once the recorder, the guard and every handle are gone, or on `shutdown`.
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

use faulty::{End, StreamReceiver, counter_total, parse_all};
use metrics_exporter_statsd_graphite::{ExporterBuilder, FlushError};

const MAX: Duration = Duration::from_secs(20);

fn total(rx: &StreamReceiver, name: &str) -> u64 {
    counter_total(&parse_all(&rx.lines()), name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_guard_flushes_and_the_exporter_runs_until_the_recorder_and_handles_are_gone() {
    let rx = StreamReceiver::tcp();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("kept.going"));
    counter.increment(3);
    // The drop's flush delivers: no tick comes within the test.
    drop(guard);
    assert!(faulty::until(MAX, || total(&rx, "kept.going") == 3).await);
    // The exporter is still running: a handle flushes, over the same connection.
    counter.increment(4);
    handle.flush_async().await.unwrap();
    assert!(faulty::until(MAX, || total(&rx, "kept.going") == 7).await);
    assert_eq!(rx.accepted(), 1);
    assert_eq!(
        rx.open_connections(),
        1,
        "the flusher still holds its connection"
    );
    // Nothing can record or flush any more: the flusher makes its last flush and stops,
    // closing its connection.
    drop(handle);
    drop(recorder);
    assert!(
        rx.wait_until(MAX, |c| c.len() == 1 && c[0].end == Some(End::SenderClosed)),
        "{:?}",
        rx.connections().iter().map(|c| c.end).collect::<Vec<_>>()
    );
    drop(counter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_guard_tries_at_once_instead_of_waiting_out_the_reconnect_backoff() {
    let rx = StreamReceiver::tcp_down();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600))
        .with_reconnect_delay(Duration::from_secs(3600))
        .with_max_reconnect_delay(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("last.words"));
    counter.increment(5);
    let _ = handle.flush_async().await;
    assert_eq!(handle.stats().send_errors, 1, "{:?}", handle.stats());
    rx.reopen();
    counter.increment(2);
    let _ = handle.flush_async().await;
    assert_eq!(
        handle.stats().connects,
        0,
        "a regular flush respects the backoff"
    );
    drop(guard);
    assert!(faulty::until(MAX, || total(&rx, "last.words") == 7).await);
    let stats = handle.stats();
    assert_eq!(
        (stats.connects, stats.lines_dropped_shutdown),
        (1, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_nothing_more_is_sent_and_a_flush_reports_not_running() {
    let rx = StreamReceiver::tcp();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_millis(20))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("stopped"));
    counter.increment(1);
    // Bounded: a flusher that went on after shutdown would never let it return.
    tokio::time::timeout(MAX, guard.shutdown_async())
        .await
        .unwrap_or_else(|_| panic!("shutdown did not return within {MAX:?}"))
        .unwrap();
    assert!(faulty::until(MAX, || total(&rx, "stopped") == 1).await);
    assert!(
        rx.wait_until(MAX, |c| c.len() == 1 && c[0].end == Some(End::SenderClosed)),
        "the flusher stopped and closed its connection"
    );
    counter.increment(2);
    assert_eq!(handle.flush_async().await, Err(FlushError::NotRunning));
    assert_eq!(handle.flush(), Err(FlushError::NotRunning));
    // Many flush intervals later, nothing more arrived.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((rx.accepted(), total(&rx, "stopped")), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_stops_an_exporter_whose_guard_was_dropped_after_its_final_flush() {
    let rx = StreamReceiver::tcp();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let handle = exporter.start().unwrap().handle(); // the guard is dropped at once
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("by.handle"));
    counter.increment(6);
    let stats = tokio::time::timeout(MAX, handle.shutdown_async())
        .await
        .unwrap_or_else(|_| panic!("shutdown did not return within {MAX:?}"))
        .unwrap();
    assert_eq!(
        stats.lines_sent, 1,
        "the final flush sent the counter: {stats:?}"
    );
    assert!(faulty::until(MAX, || total(&rx, "by.handle") == 6).await);
    assert!(
        rx.wait_until(MAX, |c| c.len() == 1 && c[0].end == Some(End::SenderClosed)),
        "the flusher stopped and closed its connection while the recorder still exists"
    );
    assert_eq!(handle.flush_async().await, Err(FlushError::NotRunning));
    assert_eq!(handle.shutdown(), Err(FlushError::NotRunning));
    drop(recorder);
}
