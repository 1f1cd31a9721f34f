//! Where the flusher runs: on the caller's tokio runtime (both flavours) or its own thread,
//! and tokio's paused clock for the interval logic.

#[path = "support/loopback.rs"]
mod loopback;

use std::time::Duration;

use loopback::UdpReceiver;
use metrics_exporter_statsd_graphite::{ExporterBuilder, FlushError};

const QUIET: Duration = Duration::from_millis(300);
const MAX: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_a_multi_thread_runtime_blocking_flush_and_shutdown_work() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint()).build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("mt").increment(1));
    guard.handle().flush().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("mt").increment(2));
    guard.shutdown().unwrap();
    assert_eq!(rx.drain(QUIET, MAX), vec!["mt:1|c", "mt:2|c"]);
}

#[tokio::test(flavor = "current_thread")]
async fn inside_a_current_thread_runtime_blocking_is_refused_and_async_works() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint()).build().unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    metrics::with_local_recorder(&recorder, || metrics::counter!("ct").increment(1));
    assert_eq!(handle.flush(), Err(FlushError::WouldBlockRuntime));
    handle.flush_async().await.unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("ct").increment(2));
    guard.shutdown_async().await.unwrap();
    let lines = tokio::task::spawn_blocking(move || rx.drain(QUIET, MAX))
        .await
        .unwrap();
    assert_eq!(lines, vec!["ct:1|c", "ct:2|c"]);
}

#[tokio::test(start_paused = true)]
async fn ticks_happen_exactly_at_each_interval_on_the_paused_clock() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("udp://{}", socket.local_addr().unwrap());
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint)
        .with_flush_interval(Duration::from_secs(10))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let guard = exporter.start().unwrap();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("paused"));
    counter.increment(1);
    let mut buf = [0u8; 64];
    // Nothing before the first interval ends...
    assert!(
        tokio::time::timeout(Duration::from_millis(9_999), socket.recv(&mut buf))
            .await
            .is_err()
    );
    // ...then the tick, at exactly 10 s.
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"paused:1|c");
    assert_eq!(start.elapsed(), Duration::from_secs(10));
    counter.increment(4);
    let n = socket.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"paused:4|c");
    assert_eq!(start.elapsed(), Duration::from_secs(20));
    guard.shutdown_async().await.unwrap();
}

#[test]
fn without_a_runtime_the_flusher_runs_on_a_named_thread() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint()).build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("thread").increment(1));
    guard.handle().flush().unwrap();
    let threads = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .collect::<Vec<_>>();
    assert!(
        threads.iter().any(|c| c.trim() == "metrics-exporte"),
        "{threads:?}"
    );
    guard.shutdown().unwrap();
    assert_eq!(rx.drain(QUIET, MAX), vec!["thread:1|c"]);
}
