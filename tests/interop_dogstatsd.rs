//! DogStatsD into the real Etsy statsd, which parses `|#` tags into Graphite-style tagged keys
//! (`name;k=v`): over UDP, over a Unix datagram socket (a socat bridge, as statsd has no
//! unixgram listener), and across a receiver restart behind that socket. Plain StatsD over
//! statsd's Unix stream socket (newline framed). Etsy statsd knows neither `|d` nor packed
//! values, so these use counters, gauges and one timer sample per flush.
#![allow(
    clippy::float_cmp,
    reason = "every compared value is a small integer or exact binary fraction"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]

#[path = "support/receivers.rs"]
mod receivers;

use std::time::{Duration, Instant};

use metrics_exporter_statsd_graphite::{
    ExporterBuilder, ExporterGuard, ExporterRecorder, HistogramKind,
};
use receivers::{EtsyStatsd, require_etsy_statsd};

const WAIT: Duration = Duration::from_secs(15);

fn dogstatsd(endpoint: String) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = ExporterBuilder::dogstatsd(endpoint)
        .with_prefix("dd")
        .with_global_labels([("env", "test")])
        .with_histogram_kind(HistogramKind::Timer)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .expect("builds");
    (recorder, exporter.start().expect("starts"))
}

fn tagged_metrics_arrive(statsd: &EtsyStatsd, endpoint: String) {
    let (recorder, guard) = dogstatsd(endpoint);
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("hits", "route" => "a").increment(3);
        metrics::counter!("hits", "route" => "a", "env" => "canary").increment(4);
        metrics::gauge!("level").set(42.5);
        metrics::histogram!("latency").record(Duration::from_micros(12_500));
    });
    guard.handle().flush().expect("flush");
    let stats = guard.shutdown().expect("shutdown");
    let done = statsd.wait_until(WAIT, |s| {
        s.counter_total("dd.hits;env=test;route=a") == 3.0
            && s.counter_total("dd.hits;env=canary;route=a") == 4.0
            && s.gauge("dd.level;env=test") == Some(42.5)
            && s.timer_values("dd.latency;env=test") == vec![12.5]
    });
    assert!(done, "statsd did not store what we sent:\n{}", statsd.log());
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
    assert_eq!(stats.lines_sent, 4);
}

#[test]
fn etsy_statsd_reads_our_dogstatsd_tags_over_udp() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().expect("statsd starts");
    tagged_metrics_arrive(&statsd, format!("udp://{}", statsd.udp_addr()));
}

#[test]
fn etsy_statsd_reads_our_dogstatsd_tags_over_a_unix_datagram_socket() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().expect("statsd starts");
    tagged_metrics_arrive(
        &statsd,
        format!("unixgram://{}", statsd.unix_datagram_path().display()),
    );
}

#[test]
fn etsy_statsd_reads_plain_statsd_over_its_unix_stream_socket() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().expect("statsd starts");
    let (recorder, exporter) =
        ExporterBuilder::statsd(format!("unix://{}", statsd.unix_stream_path().display()))
            .with_flush_interval(Duration::from_secs(3600))
            .build()
            .expect("builds");
    let guard = exporter.start().expect("starts");
    metrics::with_local_recorder(&recorder, || {
        for i in 0..200 {
            metrics::counter!("stream", "i" => i.to_string()).increment(i + 1);
        }
    });
    guard.handle().flush().expect("flush");
    guard.shutdown().expect("shutdown");
    let done = statsd.wait_until(WAIT, |s| {
        (0..200).all(|i| s.counter_total(&format!("stream.{i}")) == f64::from(i + 1))
    });
    assert!(
        done,
        "statsd did not store all 200 counters:\n{}",
        statsd.log()
    );
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
}

#[test]
fn sending_resumes_after_the_receiver_behind_a_unix_socket_restarts() {
    if !require_etsy_statsd() {
        return;
    }
    let mut statsd = EtsyStatsd::start().expect("statsd starts");
    let (recorder, guard) = dogstatsd(format!(
        "unixgram://{}",
        statsd.unix_datagram_path().display()
    ));
    let handle = guard.handle();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));
    counter.increment(5);
    handle.flush().expect("flush");
    assert!(
        statsd.wait_until(WAIT, |s| s.counter_total("dd.jobs;env=test") == 5.0),
        "{}",
        statsd.log()
    );

    statsd.restart().expect("statsd restarts");
    counter.increment(7);
    let start = Instant::now();
    // The socket was removed and recreated: keep flushing until the new process has it all.
    while statsd.counter_total("dd.jobs;env=test") < 12.0 && start.elapsed() < WAIT {
        handle.flush().expect("flush");
        statsd.wait_until(Duration::from_millis(300), |s| {
            s.counter_total("dd.jobs;env=test") >= 12.0
        });
    }
    let stats = guard.shutdown().expect("shutdown");
    assert_eq!(
        statsd.counter_total("dd.jobs;env=test"),
        12.0,
        "{}",
        statsd.log()
    );
    // Every flush that found the socket gone kept the aggregate rather than dropping it.
    // (Flushes racing the restart itself are covered deterministically, with the failure
    // counted, in tests/unix_dogstatsd.rs: a datagram the kernel already queued to a dying
    // receiver is lost in a way no sender can see.)
    assert_eq!(stats.lines_dropped_send, 0, "{stats:?}");
    assert_eq!(stats.lines_dropped_shutdown, 0, "{stats:?}");
}
