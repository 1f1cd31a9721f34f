//! The real Etsy statsd restarted mid-run while a thread records continuously: over TCP and
//! over its Unix stream socket, what statsd stored across both processes must equal what was
//! recorded, exactly. (`interop_dogstatsd.rs` already covers a restart behind the Unix
//! datagram socket, `interop_graphite.rs` a carbon restart; the UDP gap is checked on
//! loopback in `faults_datagram.rs`.)
//!
//! The restart happens between flushes: statsd has read everything when it stops, so a
//! graceful restart must lose nothing. (A flush racing the process's death can lose what the
//! kernel had accepted; see `faults_stream.rs` for the reset case.)
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed setup must fail the test loudly"
)]
#![allow(
    clippy::float_cmp,
    reason = "statsd's totals are sums of whole numbers, exact in f64"
)]

#[path = "support/faulty.rs"]
mod faulty;
#[path = "support/receivers.rs"]
mod receivers;

use std::time::{Duration, Instant};

use faulty::Load;
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterHandle};
use receivers::{EtsyStatsd, require_etsy_statsd};

const WAIT: Duration = Duration::from_secs(20);

/// Flushes, then gives statsd a flush interval and a half to store it; again until `pred`
/// holds or `WAIT` passes. Returns whether it held.
fn flush_until(
    handle: &ExporterHandle,
    statsd: &EtsyStatsd,
    pred: impl Fn(&EtsyStatsd) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        handle.flush().unwrap();
        if statsd.wait_until(Duration::from_millis(1500), &pred) {
            return true;
        }
    }
    false
}

/// Starts statsd, sends to `endpoint(&statsd)` under constant load, restarts statsd, and
/// checks the total it stored across both processes.
fn restart_mid_run(endpoint: impl Fn(&EtsyStatsd) -> String) {
    let mut statsd = EtsyStatsd::start().unwrap();
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint(&statsd))
        .with_prefix("restart")
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let jobs = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));
    let load = Load::start(jobs);

    assert!(
        flush_until(&handle, &statsd, |s| s.counter_total("restart.jobs") > 0.0),
        "{}",
        statsd.log()
    );
    let old_pid = statsd.pid();
    // statsd stops (SIGTERM) and starts again on the same port and path; recording goes on.
    statsd.restart().unwrap();
    assert_ne!(statsd.pid(), old_pid);
    handle.flush().unwrap();

    let increments = load.stop();
    #[allow(clippy::cast_precision_loss, reason = "far below 2^53: exact")]
    let expected = increments as f64;
    flush_until(&handle, &statsd, |s| {
        s.counter_total("restart.jobs") >= expected
    });
    let stats = guard.shutdown().unwrap();
    assert_eq!(
        statsd.counter_total("restart.jobs"),
        expected,
        "{stats:?}\n{}",
        statsd.log()
    );
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
    assert_eq!(
        stats.connects, 2,
        "one connection to each process: {stats:?}"
    );
    assert_eq!(
        stats.lines_dropped_send + stats.lines_dropped_shutdown,
        0,
        "{stats:?}"
    );
}

#[test]
fn etsy_statsd_restarted_mid_run_gets_every_tcp_increment_exactly_once() {
    if !require_etsy_statsd() {
        return;
    }
    restart_mid_run(|s| format!("tcp://{}", s.tcp_addr()));
}

#[test]
fn etsy_statsd_restarted_mid_run_gets_every_unix_stream_increment_exactly_once() {
    if !require_etsy_statsd() {
        return;
    }
    restart_mid_run(|s| format!("unix://{}", s.unix_stream_path().display()));
}
