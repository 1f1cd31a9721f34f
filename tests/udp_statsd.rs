//! End to end over real UDP sockets on loopback: recorder -> flusher -> exact lines received.

#[path = "support/loopback.rs"]
mod loopback;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use loopback::{UdpReceiver, counter_sum, require_ipv6_loopback};
use metrics::Unit;
use metrics_exporter_statsd_graphite::{ExporterBuilder, FlushError, HistogramKind};

const QUIET: Duration = Duration::from_millis(300);
const MAX: Duration = Duration::from_secs(10);

fn builder(rx: &UdpReceiver) -> ExporterBuilder {
    // A long interval: these tests flush explicitly, so ticks never interfere.
    ExporterBuilder::statsd(rx.endpoint()).with_flush_interval(Duration::from_secs(3600))
}

#[test]
fn every_metric_type_arrives_as_exact_statsd_lines() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx)
        .with_prefix("app")
        .with_global_labels([("region", "eu")])
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("requests", "route" => "/a", "method" => "GET").increment(2);
        metrics::counter!("requests", "route" => "/a", "method" => "GET").increment(3);
        metrics::counter!("bytes_total").absolute(100);
        metrics::counter!("bytes_total").absolute(160);
        metrics::gauge!("in_flight").set(4.0);
        metrics::gauge!("temperature").set(-5.0);
        metrics::gauge!("queue").increment(3.0);
        metrics::gauge!("queue").decrement(1.0);
        metrics::histogram!("latency").record(Duration::from_micros(12_500));
        metrics::describe_histogram!("render", Unit::Milliseconds, "render time");
        metrics::histogram!("render").record(7.25);
    });
    guard.handle().flush().unwrap();
    let mut lines = rx.wait_for(MAX, |l| l.len() == 8);
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "app.eu.bytes_total:160|c",
            "app.eu.in_flight:4|g",
            "app.eu.latency:12.5|ms",
            "app.eu.queue:2|g",
            "app.eu.render:7.25|ms",
            "app.eu.requests.GET.a:5|c",
            "app.eu.temperature:-5|g",
            "app.eu.temperature:0|g",
        ]
    );
    // The negative gauge's reset comes first, in the same datagram.
    assert!(rx.datagrams.iter().any(|d| {
        String::from_utf8_lossy(d).contains("app.eu.temperature:0|g\napp.eu.temperature:-5|g")
    }));
    let stats = guard.shutdown().unwrap();
    assert_eq!(stats.lines_sent, 8);
    assert_eq!(stats.values_dropped_invalid, 0);
}

#[test]
fn counters_from_several_threads_arrive_exactly_across_many_flushes() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (recorder, stop, started) =
                (recorder.clone(), Arc::clone(&stop), Arc::clone(&started));
            std::thread::spawn(move || {
                metrics::with_local_recorder(&recorder, || {
                    let shared = metrics::counter!("shared");
                    let own = metrics::counter!("own", "thread" => t.to_string());
                    let mut n = 0u64;
                    started.fetch_add(1, Ordering::SeqCst);
                    // Keep going until the main thread has flushed many times meanwhile.
                    while !stop.load(Ordering::Relaxed) || n < 1_000 {
                        shared.increment(1);
                        own.increment(2);
                        n += 1;
                    }
                    n
                })
            })
        })
        .collect();
    // Flush until several flushes have carried data while the threads were incrementing, so
    // the flushes certainly interleave with the increments (however the threads are scheduled).
    while started.load(Ordering::SeqCst) < 4 {
        std::thread::yield_now();
    }
    let deadline = std::time::Instant::now() + MAX;
    while handle.stats().payloads_sent < 5 && std::time::Instant::now() < deadline {
        handle.flush().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let counts: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    guard.shutdown().unwrap();
    let total: u64 = counts.iter().sum();
    // Wait for every series: the last flush may carry only an `own` line (a thread's final
    // `own` increment can miss the flush that took its `shared` one).
    let lines = rx.wait_for(MAX, |l| {
        counter_sum(l, "shared") >= total
            && counts
                .iter()
                .enumerate()
                .all(|(t, n)| counter_sum(l, &format!("own.{t}")) >= 2 * n)
    });
    assert_eq!(counter_sum(&lines, "shared"), total);
    for (t, n) in counts.iter().enumerate() {
        assert_eq!(counter_sum(&lines, &format!("own.{t}")), 2 * n);
    }
    assert!(
        lines.iter().filter(|l| l.starts_with("shared:")).count() > 1,
        "the flushes interleaved with the increments"
    );
}

/// Explicit flushes from many threads at once may share a flush (`ExporterHandle::flush`);
/// every one returns, and what each thread recorded before its call is sent without a
/// shutdown.
#[test]
fn flushes_asked_for_from_many_threads_at_once_all_return_and_carry_every_line() {
    const ROUNDS: u64 = 100;
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (recorder, handle) = (recorder.clone(), guard.handle());
            std::thread::spawn(move || {
                let own = metrics::with_local_recorder(
                    &recorder,
                    || metrics::counter!("asked", "thread" => t.to_string()),
                );
                for _ in 0..ROUNDS {
                    own.increment(1);
                    handle.flush().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let all_sent = |l: &[String]| (0..8).all(|t| counter_sum(l, &format!("asked.{t}")) == ROUNDS);
    let lines = rx.wait_for(MAX, all_sent);
    assert!(all_sent(&lines), "{} lines", lines.len());
    drop(guard);
}

/// Re-sent gauges come with the timer's ticks only (`src/flush/fidelity_tests.rs`).
#[test]
fn flushes_on_demand_send_nothing_for_series_that_did_not_change() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("c").increment(1);
        metrics::gauge!("g").set(1.0);
        metrics::histogram!("h").record(0.001);
    });
    guard.handle().flush().unwrap();
    assert_eq!(rx.wait_for(MAX, |l| l.len() == 3).len(), 3);
    guard.handle().flush().unwrap();
    let stats = guard.shutdown().unwrap();
    assert_eq!(
        rx.drain(QUIET, MAX).len(),
        3,
        "the second and final flushes send nothing new"
    );
    assert_eq!(stats.lines_sent, 3);
}

#[test]
fn a_counter_whose_interval_sum_overflows_is_sent_as_u64_max_and_counted() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("big").increment(u64::MAX);
        metrics::counter!("big").increment(2); // wrapped, this was sent as `big:1|c`
        metrics::counter!("exact").increment(u64::MAX);
    });
    guard.handle().flush().unwrap();
    let mut lines = rx.wait_for(MAX, |l| l.len() == 2);
    lines.sort();
    assert_eq!(
        lines,
        ["big:18446744073709551615|c", "exact:18446744073709551615|c"]
    );
    assert_eq!(guard.handle().stats().counter_overflows, 1);
    // The next interval starts afresh.
    metrics::with_local_recorder(&recorder, || metrics::counter!("big").increment(3));
    guard.handle().flush().unwrap();
    assert_eq!(rx.wait_for(MAX, |l| l.len() == 3)[2], "big:3|c");
    assert_eq!(guard.shutdown().unwrap().counter_overflows, 1);
}

#[test]
fn many_series_are_packed_into_full_datagrams_never_over_the_limit() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx)
        .with_maximum_payload_length(512)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..2_000 {
            metrics::counter!("series", "id" => i.to_string()).increment(i + 1);
        }
    });
    guard.handle().flush().unwrap();
    let stats = guard.shutdown().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() == 2_000);
    assert_eq!(lines.len(), 2_000);
    assert!(rx.datagrams.iter().all(|d| d.len() <= 512));
    let total: usize = rx.datagrams.iter().map(Vec::len).sum();
    let fill = f64::from(u32::try_from(total).unwrap())
        / (f64::from(u32::try_from(rx.datagrams.len()).unwrap()) * 512.0);
    assert!(
        fill > 0.9,
        "datagrams are {:.0}% full on average",
        fill * 100.0
    );
    assert_eq!(stats.payloads_sent, rx.datagrams.len() as u64);
    assert_eq!(stats.lines_sent, 2_000);
}

#[test]
fn histograms_beyond_the_cap_are_sampled_with_a_rate_that_restores_the_count() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx)
        .with_histogram_max_samples(100)
        .with_histogram_kind(HistogramKind::Histogram)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..400 {
            metrics::histogram!("size").record(f64::from(i));
        }
    });
    guard.handle().flush().unwrap();
    let stats = guard.shutdown().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() == 100);
    assert_eq!(lines.len(), 100);
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with("size:") && l.ends_with("|h|@0.25")),
        "{lines:?}"
    );
    assert_eq!(stats.samples_sampled_out, 300);
}

#[test]
fn nan_and_infinite_values_are_counted_and_never_sent() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::gauge!("g").set(f64::NAN);
        metrics::histogram!("h").record(f64::INFINITY);
        metrics::histogram!("h").record(0.002);
    });
    guard.handle().flush().unwrap();
    let stats = guard.shutdown().unwrap();
    assert_eq!(rx.wait_for(MAX, |l| !l.is_empty()), vec!["h:2|ms"]);
    assert_eq!(stats.values_dropped_invalid, 2);
}

#[test]
fn the_flusher_sends_on_its_own_at_each_interval() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx)
        .with_flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("ticks"));
    counter.increment(1);
    let lines = rx.wait_for(MAX, |l| counter_sum(l, "ticks") == 1);
    assert_eq!(counter_sum(&lines, "ticks"), 1);
    counter.increment(2);
    let lines = rx.wait_for(MAX, |l| counter_sum(l, "ticks") == 3);
    assert_eq!(counter_sum(&lines, "ticks"), 3);
    drop(guard);
}

#[test]
fn dropping_the_guard_flushes_what_was_recorded_after_the_last_tick() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("tail").increment(9));
    drop(guard);
    assert_eq!(rx.wait_for(MAX, |l| !l.is_empty()), vec!["tail:9|c"]);
}

#[test]
fn a_handle_reports_not_running_after_shutdown() {
    let rx = UdpReceiver::new();
    let (_recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    guard.shutdown().unwrap();
    assert_eq!(handle.flush(), Err(FlushError::NotRunning));
}

#[test]
fn ipv6_loopback_destinations_work() {
    let Some(socket) = require_ipv6_loopback(std::net::UdpSocket::bind("[::1]:0")) else {
        return;
    };
    socket.set_read_timeout(Some(MAX)).unwrap();
    let endpoint = format!("udp://{}", socket.local_addr().unwrap());
    let (recorder, exporter) = ExporterBuilder::statsd(endpoint).build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("v6").increment(1));
    guard.handle().flush().unwrap();
    let mut buf = [0u8; 100];
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"v6:1|c");
}

#[test]
fn dogstatsd_sends_histograms_as_h_or_as_d_distributions_as_asked() {
    let cases = [
        (Some(false), "size:512:2.5|h|#env:test"),
        (Some(true), "size:512:2.5|d|#env:test"),
        (None, "size:512:2.5|d|#env:test"),
    ];
    for (distributions, want) in cases {
        let mut rx = UdpReceiver::new();
        let mut builder = ExporterBuilder::dogstatsd(rx.endpoint())
            .with_flush_interval(Duration::from_secs(3600))
            .with_global_labels([("env", "test")]);
        if let Some(distributions) = distributions {
            builder = builder.send_histograms_as_distributions(distributions);
        }
        let (recorder, exporter) = builder.build().unwrap();
        let guard = exporter.start().unwrap();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!("size").record(512.0);
            metrics::histogram!("size").record(2.5);
        });
        guard.handle().flush().unwrap();
        let lines = rx.wait_for(MAX, |l| !l.is_empty());
        assert_eq!(
            lines,
            [want],
            "send_histograms_as_distributions({distributions:?})"
        );
        guard.shutdown().unwrap();
    }
}

/// A user's layer with a bug: it panics on one metric name.
#[derive(Debug)]
struct PanickyLayer<R>(R);

impl<R: metrics::Recorder> metrics::Recorder for PanickyLayer<R> {
    fn describe_counter(&self, k: metrics::KeyName, u: Option<Unit>, d: metrics::SharedString) {
        self.0.describe_counter(k, u, d);
    }
    fn describe_gauge(&self, k: metrics::KeyName, u: Option<Unit>, d: metrics::SharedString) {
        self.0.describe_gauge(k, u, d);
    }
    fn describe_histogram(&self, k: metrics::KeyName, u: Option<Unit>, d: metrics::SharedString) {
        self.0.describe_histogram(k, u, d);
    }
    fn register_counter(&self, key: &metrics::Key, m: &metrics::Metadata<'_>) -> metrics::Counter {
        assert_ne!(key.name(), "boom", "the layer's bug");
        self.0.register_counter(key, m)
    }
    fn register_gauge(&self, key: &metrics::Key, m: &metrics::Metadata<'_>) -> metrics::Gauge {
        self.0.register_gauge(key, m)
    }
    fn register_histogram(
        &self,
        key: &metrics::Key,
        m: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        self.0.register_histogram(key, m)
    }
}

#[test]
fn a_panic_in_a_users_layer_stops_neither_recording_nor_the_flusher() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    let layered = PanickyLayer(recorder);
    metrics::with_local_recorder(&layered, || {
        metrics::counter!("before").increment(1);
        // Threads die in the layer, one of them while others record.
        let boom = std::thread::scope(|s| {
            let t = s.spawn(|| {
                metrics::with_local_recorder(&layered, || metrics::counter!("boom").increment(1));
            });
            metrics::counter!("during").increment(1);
            t.join()
        });
        assert!(boom.is_err(), "the layer panicked");
        metrics::counter!("after").increment(1);
    });
    guard.handle().flush().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() >= 3);
    assert_eq!(lines, ["before:1|c", "during:1|c", "after:1|c"]);
    // And the flusher keeps going.
    metrics::with_local_recorder(&layered, || metrics::counter!("later").increment(2));
    guard.shutdown().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() >= 4);
    assert_eq!(lines[3], "later:2|c");
}

#[test]
fn type_prefixes_put_each_kind_after_the_prefix_as_sprockets_statsd_does() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = builder(&rx)
        .with_prefix("app")
        .with_type_prefixes(true)
        .with_histogram_kind_for("size", HistogramKind::Histogram)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("requests", "route" => "/a").increment(2);
        metrics::gauge!("queue").set(3.0);
        metrics::histogram!("latency").record(Duration::from_millis(7));
        metrics::histogram!("size").record(512.0);
    });
    guard.shutdown().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() >= 4);
    assert_eq!(
        lines,
        [
            "app.counters.requests.a:2|c",
            "app.gauges.queue:3|g",
            "app.timers.latency:7|ms",
            "app.histograms.size:512|h",
        ]
    );
    assert!(
        ExporterBuilder::dogstatsd("127.0.0.1:8125")
            .with_type_prefixes(true)
            .build()
            .err()
            .unwrap()
            .to_string()
            .starts_with("invalid setting with_type_prefixes:")
    );
}
