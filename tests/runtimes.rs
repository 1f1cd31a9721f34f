//! Where the flusher runs: on the caller's tokio runtime (both flavours) or its own thread,
//! (tokio's paused clock for the interval logic is in `src/flush/tests.rs`).

#[path = "support/loopback.rs"]
mod loopback;

use std::time::Duration;

use loopback::UdpReceiver;
use metrics_exporter_statsd_graphite::ExporterBuilder;

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
    assert_eq!(rx.wait_for(MAX, |l| l.len() == 2), vec!["mt:1|c", "mt:2|c"]);
}

#[tokio::test(flavor = "current_thread")]
async fn inside_a_current_thread_runtime_both_blocking_and_async_calls_work() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint()).build().unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    metrics::with_local_recorder(&recorder, || metrics::counter!("ct").increment(1));
    handle.flush().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("ct").increment(2));
    handle.flush_async().await.unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("ct").increment(3));
    // Dropped inside the runtime: the flusher has its own thread, so the drop waits for it.
    drop(guard);
    let lines = tokio::task::spawn_blocking(move || rx.wait_for(MAX, |l| l.len() == 3))
        .await
        .unwrap();
    assert_eq!(lines, vec!["ct:1|c", "ct:2|c", "ct:3|c"]);
}

#[test]
fn a_guard_made_in_a_current_thread_runtime_and_dropped_after_it_still_flushes_the_tail() {
    let mut rx = UdpReceiver::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (recorder, guard) = runtime.block_on(async {
        let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint()).build().unwrap();
        (recorder, exporter.start().unwrap())
    });
    drop(runtime);
    metrics::with_local_recorder(&recorder, || metrics::counter!("tail").increment(5));
    let start = std::time::Instant::now();
    drop(guard);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        start.elapsed()
    );
    assert_eq!(rx.wait_for(MAX, |l| !l.is_empty()), vec!["tail:5|c"]);
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
    assert_eq!(rx.wait_for(MAX, |l| !l.is_empty()), vec!["thread:1|c"]);
}

#[test]
fn a_multi_thread_runtime_whose_flusher_outlived_its_guard_still_shuts_down_at_once() {
    let mut rx = UdpReceiver::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (recorder, handle) = runtime.block_on(async {
        let (recorder, exporter) = ExporterBuilder::statsd(rx.endpoint()).build().unwrap();
        let guard = exporter.start().unwrap();
        let handle = guard.handle();
        metrics::with_local_recorder(&recorder, || metrics::counter!("task").increment(1));
        drop(guard);
        (recorder, handle)
    });
    assert_eq!(rx.wait_for(MAX, |l| !l.is_empty()), vec!["task:1|c"]);
    // The flusher is still a task on the runtime (the recorder and a handle are alive), and
    // the runtime's shutdown ends it without waiting.
    let start = std::time::Instant::now();
    drop(runtime);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "runtime shutdown took {:?}",
        start.elapsed()
    );
    assert_eq!(
        handle.flush(),
        Err(metrics_exporter_statsd_graphite::FlushError::NotRunning)
    );
    drop(recorder);
}
