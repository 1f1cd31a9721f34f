//! The global path, from a plain synchronous `main`-like context: `install()` sets the global
//! recorder and starts a flusher thread; the guard's `shutdown()` delivers the tail. One test
//! per file: a process has one global recorder.

#[path = "support/loopback.rs"]
mod loopback;

use std::time::Duration;

use loopback::{UdpReceiver, counter_sum};
use metrics_exporter_statsd_graphite::{BuildError, ExporterBuilder};

#[test]
fn install_routes_every_macro_to_the_exporter_and_shutdown_sends_the_tail() {
    let mut rx = UdpReceiver::new();
    let guard = ExporterBuilder::statsd(rx.endpoint())
        .with_prefix("myapp")
        .with_flush_interval(Duration::from_secs(3600))
        .with_global_labels([("region", "eu")])
        .install()
        .unwrap();

    // From another thread too: the recorder is global.
    std::thread::spawn(|| metrics::counter!("requests", "route" => "/a").increment(1))
        .join()
        .unwrap();
    metrics::counter!("requests", "route" => "/a").increment(1);
    metrics::gauge!("in_flight").set(3.0);

    let again = ExporterBuilder::statsd(rx.endpoint()).install();
    assert!(
        matches!(again, Err(BuildError::RecorderAlreadyInstalled)),
        "{again:?}"
    );

    let stats = guard.shutdown().unwrap();
    let lines = rx.wait_for(Duration::from_secs(10), |l| l.len() == 2);
    assert_eq!(counter_sum(&lines, "myapp.eu.requests.a"), 2, "{lines:?}");
    assert!(
        lines.contains(&"myapp.eu.in_flight:3|g".to_string()),
        "{lines:?}"
    );
    assert_eq!(stats.lines_sent, 2);
}
