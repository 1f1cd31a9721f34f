//! The direct `StatsdClient` against a fake receiver on loopback UDP: the exact lines of every
//! call kind in both dialects, batching into few full datagrams, client-side sampling, and
//! the statistics that account for every call.

#[path = "support/loopback.rs"]
mod loopback;

use std::time::Duration;

use loopback::UdpReceiver;
use metrics_exporter_statsd_graphite::{
    AlertType, CallOpts, Cardinality, EncodeError, Event, ExporterBuilder, LabelHandling,
    MetricType, ServiceCheck, ServiceCheckStatus, StatsdClient,
};

const MAX: Duration = Duration::from_secs(10);
const NONE: CallOpts<'static> = CallOpts::new();

fn statsd(rx: &UdpReceiver) -> ExporterBuilder {
    ExporterBuilder::statsd(rx.endpoint())
}

fn dogstatsd(rx: &UdpReceiver) -> ExporterBuilder {
    ExporterBuilder::dogstatsd(rx.endpoint())
}

/// Flushes and returns every line the receiver got, once it has `n`.
async fn flushed(client: &mut StatsdClient, rx: &mut UdpReceiver, n: usize) -> Vec<String> {
    assert_eq!(client.flush().await, Ok(()));
    rx.wait_for(MAX, |lines| lines.len() >= n)
}

type Call = fn(&mut StatsdClient) -> bool;

#[tokio::test]
async fn every_plain_statsd_call_has_exact_bytes() {
    let mut rx = UdpReceiver::new();
    let mut client = statsd(&rx)
        .with_prefix("app")
        .with_label_handling(LabelHandling::DogStatsd)
        .with_maximum_payload_length(8192)
        .build_statsd_client()
        .unwrap();
    let table: &[(Call, &[&str])] = &[
        (|c| c.count("jobs", -3, NONE), &["app.jobs:-3|c"]),
        (|c| c.incr("jobs", NONE), &["app.jobs:1|c"]),
        (|c| c.decr("jobs", NONE), &["app.jobs:-1|c"]),
        (|c| c.gauge("queue", 12.0, NONE), &["app.queue:12|g"]),
        (
            |c| c.gauge("queue", -5.0, NONE),
            &["app.queue:0|g", "app.queue:-5|g"],
        ),
        (|c| c.gauge_delta("queue", 3.0, NONE), &["app.queue:+3|g"]),
        (|c| c.gauge_delta("queue", -5.0, NONE), &["app.queue:-5|g"]),
        (
            |c| c.timing("db", Duration::from_micros(12_500), NONE),
            &["app.db:12.5|ms"],
        ),
        (|c| c.timing_ms("db", 0.25, NONE), &["app.db:0.25|ms"]),
        (|c| c.histogram("size", 512.0, NONE), &["app.size:512|h"]),
        (|c| c.set("users", "alice", NONE), &["app.users:alice|s"]),
        // A member that would break the line is cleaned.
        (
            |c| c.set("users", "a|b:c#d@e,f g\n", NONE),
            &["app.users:a_b_c#d@e,f g_|s"],
        ),
        // Etsy-bound tags: the recorder's rules (`/` to `-`, non-ASCII to `_`).
        (
            |c| c.incr("req", NONE.tags(&[("route", "/a"), ("ü", "日本")])),
            &["app.req:1|c|#_:__,route:-a"],
        ),
        (|c| c.incr("hits", NONE.sample_rate(1.0)), &["app.hits:1|c"]),
        (
            |c| {
                c.raw("legacy,host=a", "1.5", MetricType::Counter, NONE)
                    .is_ok()
            },
            &["app.legacy,host=a:1.5|c"],
        ),
        // Cardinality has no field in plain StatsD: ignored, the line is sent.
        (
            |c| c.incr("c", NONE.cardinality(Cardinality::High)),
            &["app.c:1|c"],
        ),
    ];
    let mut want = Vec::new();
    for (call, lines) in table {
        assert!(call(&mut client), "{lines:?}");
        want.extend(lines.iter().map(|l| (*l).to_owned()));
    }
    assert_eq!(flushed(&mut client, &mut rx, want.len()).await, want);
}

#[tokio::test]
async fn every_dogstatsd_call_has_exact_bytes_with_the_fields_in_order() {
    let mut rx = UdpReceiver::new();
    let mut client = dogstatsd(&rx)
        .with_global_labels([("env", "prod")])
        .with_container_id("abc")
        .with_external_data("it-false,cn-app")
        .with_cardinality(Cardinality::Low)
        .with_maximum_payload_length(8192)
        .build_statsd_client()
        .unwrap();
    let tail = "|#env:prod|c:abc|e:it-false,cn-app|card:low";
    let table: &[(Call, &str)] = &[
        (|c| c.count("jobs", -3, NONE), "jobs:-3|c{tail}"),
        (|c| c.gauge("queue", -5.0, NONE), "queue:-5|g{tail}"),
        (|c| c.timing_ms("db", 12.5, NONE), "db:12.5|ms{tail}"),
        (|c| c.histogram("size", 512.0, NONE), "size:512|h{tail}"),
        (|c| c.distribution("lat", 0.012, NONE), "lat:0.012|d{tail}"),
        (|c| c.set("users", "alice", NONE), "users:alice|s{tail}"),
        (
            |c| c.gauge("g", 1.0, NONE.timestamp(1_700_000_000)),
            "g:1|g{tail}|T1700000000",
        ),
        (
            |c| c.incr("c", NONE.cardinality(Cardinality::Orchestrator)),
            "c:1|c|#env:prod|c:abc|e:it-false,cn-app|card:orchestrator",
        ),
        (
            |c| c.incr("req", NONE.tags(&[("route", "/a b"), ("ü", "日本")])),
            "req:1|c|#env:prod,route:/a_b,ü:日本|c:abc|e:it-false,cn-app|card:low",
        ),
        (
            |c| {
                c.event(&Event::new("Deploy", "ok").with_alert_type(AlertType::Success))
                    .is_ok()
            },
            "_e{6,2}:Deploy|ok|t:success|#env:prod",
        ),
        (
            |c| {
                c.service_check(&ServiceCheck::new("db", ServiceCheckStatus::Ok))
                    .is_ok()
            },
            "_sc|db|0|#env:prod",
        ),
    ];
    let mut want = Vec::new();
    for (call, line) in table {
        assert!(call(&mut client), "{line}");
        want.push(line.replace("{tail}", tail));
    }
    assert_eq!(flushed(&mut client, &mut rx, want.len()).await, want);
}

#[tokio::test]
async fn calls_a_dialect_cannot_carry_are_refused_and_counted() {
    let rx = UdpReceiver::new();
    let mut plain = statsd(&rx).build_statsd_client().unwrap();
    assert!(
        !plain.distribution("x", 1.0, NONE),
        "Etsy reads |d as a counter"
    );
    assert!(!plain.gauge("x", 1.0, NONE.timestamp(1_700_000_000)));
    assert!(matches!(
        plain.event(&Event::new("t", "x")),
        Err(EncodeError::Unsupported { .. })
    ));
    assert!(
        plain
            .service_check(&ServiceCheck::new("c", ServiceCheckStatus::Ok))
            .is_err()
    );
    assert_eq!(plain.stats().values_dropped_invalid, 4);

    let mut dog = dogstatsd(&rx).build_statsd_client().unwrap();
    assert!(
        !dog.gauge_delta("x", 1.0, NONE),
        "the Agent has no gauge deltas"
    );
    assert!(
        !dog.timing_ms("x", 1.0, NONE.timestamp(1)),
        "|T is for counters and gauges"
    );
    assert_eq!(dog.stats().values_dropped_invalid, 2);
}

#[tokio::test]
async fn bad_input_is_dropped_and_counted_never_sent() {
    let mut rx = UdpReceiver::new();
    let mut client = dogstatsd(&rx).build_statsd_client().unwrap();
    let refused: &[Call] = &[
        |c| c.gauge("x", f64::NAN, NONE),
        |c| c.histogram("x", f64::INFINITY, NONE),
        |c| c.timing_ms("x", -1.0, NONE),
        |c| c.count("x", 1, NONE.sample_rate(0.0)),
        |c| c.count("x", 1, NONE.sample_rate(1.5)),
        |c| c.count("x", 1, NONE.sample_rate(f64::NAN)),
        |c| c.set("x", "", NONE),
        |c| c.raw("a|b", "1", MetricType::Counter, NONE).is_ok(),
        |c| c.raw("x", "1|c", MetricType::Counter, NONE).is_ok(),
        |c| c.raw("x", "abc", MetricType::Gauge, NONE).is_ok(),
    ];
    for call in refused {
        assert!(!call(&mut client));
    }
    assert!(!client.incr("", NONE));
    assert!(!client.incr("...", NONE));
    let stats = client.stats();
    assert_eq!(stats.values_dropped_invalid, refused.len() as u64);
    assert_eq!(stats.values_dropped_unnamed, 2);
    assert!(client.incr("ok", NONE));
    assert_eq!(flushed(&mut client, &mut rx, 1).await, ["ok:1|c"]);
}

#[tokio::test]
async fn many_calls_are_packed_into_few_datagrams_each_within_the_limit() {
    const CALLS: usize = 500;
    const LIMIT: usize = 512;
    let mut rx = UdpReceiver::new();
    let mut client = dogstatsd(&rx)
        .with_maximum_payload_length(LIMIT)
        .build_statsd_client()
        .unwrap();
    let mut want = Vec::new();
    let mut bytes = 0;
    for i in 0..CALLS {
        let name = format!("series.{i}");
        assert!(client.count(&name, 1, NONE));
        want.push(format!("series.{i}:1|c"));
        bytes += want[i].len() + 1;
    }
    let got = flushed(&mut client, &mut rx, CALLS).await;
    assert_eq!(got, want);
    let datagrams = &rx.datagrams;
    assert!(datagrams.iter().all(|d| d.len() <= LIMIT));
    // Full payloads: no more datagrams than one more than the bytes need.
    assert!(
        datagrams.len() <= bytes / LIMIT + 1,
        "{} datagrams",
        datagrams.len()
    );
    let stats = client.stats();
    assert_eq!(stats.lines_sent, CALLS as u64);
    assert_eq!(stats.payloads_sent, datagrams.len() as u64);
}

#[tokio::test]
async fn sampled_calls_are_kept_at_their_rate_and_carry_it() {
    const CALLS: u64 = 10_000;
    const RATE: f64 = 0.25;
    let mut rx = UdpReceiver::new();
    let mut client = statsd(&rx).build_statsd_client().unwrap();
    for _ in 0..CALLS {
        assert!(
            client.incr("hits", NONE.sample_rate(RATE)),
            "sampled out is not a drop"
        );
    }
    client.flush().await.unwrap();
    let stats = client.stats();
    let kept = stats.lines_sent;
    assert_eq!(kept + stats.samples_sampled_out, CALLS);
    // Binomial(10 000, 0.25): mean 2500, sigma 43.3; 6 sigma is 260.
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let (mean, sigma) = (
        CALLS as f64 * RATE,
        (CALLS as f64 * RATE * (1.0 - RATE)).sqrt(),
    );
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let off = (kept as f64 - mean).abs();
    assert!(off <= 6.0 * sigma, "kept {kept} of {CALLS}");
    let lines = rx.wait_for(MAX, |l| l.len() as u64 >= kept);
    assert_eq!(lines.len() as u64, kept);
    assert!(
        lines.iter().all(|l| l == "hits:1|c|@0.25"),
        "{:?}",
        &lines[..3]
    );
}

/// Whether `kept` of `calls` is within 6 sigma of Binomial(calls, rate).
fn within_six_sigma(kept: u64, calls: u64, rate: f64) -> bool {
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let (kept, calls) = (kept as f64, calls as f64);
    (kept - calls * rate).abs() <= 6.0 * (calls * rate * (1.0 - rate)).sqrt()
}

#[tokio::test]
async fn sampled_gauges_and_sets_are_kept_at_their_rate_too() {
    const CALLS: u64 = 4_000;
    let mut rx = UdpReceiver::new();
    let mut client = statsd(&rx).build_statsd_client().unwrap();
    for i in 0..CALLS {
        assert!(client.gauge("g", 1.0, NONE.sample_rate(0.5)));
        assert!(client.set("s", &i.to_string(), NONE.sample_rate(0.5)));
    }
    client.flush().await.unwrap();
    let stats = client.stats();
    assert_eq!(stats.lines_sent + stats.samples_sampled_out, 2 * CALLS);
    let lines = rx.wait_for(MAX, |l| l.len() as u64 >= stats.lines_sent);
    let gauges = lines.iter().filter(|l| *l == "g:1|g|@0.5").count() as u64;
    let sets = lines
        .iter()
        .filter(|l| l.starts_with("s:") && l.ends_with("|s|@0.5"))
        .count() as u64;
    assert_eq!(
        gauges + sets,
        stats.lines_sent,
        "every kept line carries its rate"
    );
    assert!(within_six_sigma(gauges, CALLS, 0.5), "gauges kept {gauges}");
    assert!(within_six_sigma(sets, CALLS, 0.5), "sets kept {sets}");
}

#[tokio::test]
async fn a_rate_rounding_to_one_keeps_every_call_and_one_rounding_to_zero_is_refused() {
    // 0.3333333333 goes on the wire as 0.333333333: the draw uses the written rate.
    let mut rx = UdpReceiver::new();
    let mut client = statsd(&rx).build_statsd_client().unwrap();
    assert!(client.incr("a", NONE.sample_rate(1.0 - 1e-12)));
    assert!(
        !client.incr("b", NONE.sample_rate(1e-12)),
        "rounds to 0: refused"
    );
    let lines = flushed(&mut client, &mut rx, 1).await;
    assert_eq!(
        lines,
        ["a:1|c"],
        "rounds to 1: always kept, no rate written"
    );
    assert_eq!(client.stats().values_dropped_invalid, 1);
}

#[tokio::test]
async fn events_and_service_checks_are_refused_and_counted_when_the_backlog_is_full() {
    let rx = UdpReceiver::new();
    let mut client = dogstatsd(&rx)
        .with_max_backlog_bytes(64)
        .build_statsd_client()
        .unwrap();
    let mut queued = 0;
    let mut full = 0;
    for _ in 0..10 {
        match client.event(&Event::new("deploy", "done")) {
            Ok(()) => queued += 1,
            Err(EncodeError::QueueFull) => full += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(queued >= 1 && full >= 1, "{queued} queued, {full} refused");
    assert_eq!(
        client.service_check(&ServiceCheck::new("db", ServiceCheckStatus::Ok)),
        Err(EncodeError::QueueFull)
    );
    assert_eq!(client.stats().lines_dropped_send, full + 1);
    let stats = client.close().await.unwrap();
    assert_eq!(stats.lines_sent, queued);
}

#[tokio::test]
async fn an_events_own_tag_beats_a_global_label_with_the_same_key() {
    let mut rx = UdpReceiver::new();
    let mut client = dogstatsd(&rx)
        .with_global_labels([("env", "prod"), ("team", "a")])
        .build_statsd_client()
        .unwrap();
    client
        .event(&Event::new("t", "x").with_tag("env", "staging"))
        .unwrap();
    client
        .service_check(&ServiceCheck::new("db", ServiceCheckStatus::Ok).with_tag("env", "staging"))
        .unwrap();
    let lines = flushed(&mut client, &mut rx, 2).await;
    assert_eq!(
        lines,
        [
            "_e{1,1}:t|x|#env:staging,team:a",
            "_sc|db|0|#env:staging,team:a"
        ]
    );
}

#[tokio::test]
async fn every_call_is_queued_sampled_out_or_counted_as_dropped() {
    let mut rx = UdpReceiver::new();
    let mut client = statsd(&rx)
        .with_maximum_payload_length(64)
        .build_statsd_client()
        .unwrap();
    let long = "x".repeat(100);
    let mut calls = 0u64;
    let mut call = |ok: bool| {
        calls += 1;
        ok
    };
    for i in 0..300i32 {
        call(client.count("c", i64::from(i), NONE.sample_rate(0.5)));
        call(client.gauge("g", f64::from(i), NONE));
        call(client.gauge("g", f64::NAN, NONE));
        call(client.set(&long, "m", NONE));
        call(client.distribution("d", 1.0, NONE));
    }
    let stats = client.close().await.unwrap();
    let dropped = stats.values_dropped_invalid
        + stats.values_dropped_unnamed
        + stats.lines_dropped_too_long
        + stats.lines_dropped_send;
    assert_eq!(
        stats.lines_sent + stats.samples_sampled_out + dropped,
        calls
    );
    assert_eq!(stats.lines_dropped_too_long, 300);
    assert_eq!(stats.values_dropped_invalid, 600);
    let lines = rx.wait_for(MAX, |l| l.len() as u64 >= stats.lines_sent);
    assert_eq!(lines.len() as u64, stats.lines_sent);
}

#[tokio::test]
async fn a_full_backlog_drops_new_calls_and_counts_them() {
    let rx = UdpReceiver::new();
    let mut client = statsd(&rx)
        .with_max_backlog_bytes(100)
        .build_statsd_client()
        .unwrap();
    let results: Vec<bool> = (0..20).map(|i| client.count("name", i, NONE)).collect();
    let queued = results.iter().filter(|ok| **ok).count() as u64;
    assert!(
        queued < 20 && queued >= 100 / "name:19|c\n".len() as u64,
        "{results:?}"
    );
    assert_eq!(client.stats().lines_dropped_send, 20 - queued);
    let stats = client.close().await.unwrap();
    assert_eq!(stats.lines_sent, queued);
}

#[tokio::test]
async fn an_event_longer_than_a_payload_is_dropped_and_counted() {
    let rx = UdpReceiver::new();
    let mut client = dogstatsd(&rx)
        .with_maximum_payload_length(128)
        .build_statsd_client()
        .unwrap();
    let text = "t".repeat(200);
    assert_eq!(
        client.event(&Event::new("big", text)),
        Err(EncodeError::TooLong)
    );
    assert_eq!(
        client.event(&Event::new("", "x")),
        Err(EncodeError::EmptyTitle)
    );
    let stats = client.stats();
    assert_eq!(
        (stats.lines_dropped_too_long, stats.values_dropped_invalid),
        (1, 1)
    );
}

#[test]
fn the_statsd_client_is_refused_for_graphite_naming_the_setting() {
    for b in [
        ExporterBuilder::graphite("127.0.0.1:2003"),
        ExporterBuilder::graphite_pickle("127.0.0.1:2004"),
    ] {
        let e = b.build_statsd_client().unwrap_err();
        assert!(e.to_string().contains("build_statsd_client"), "{e}");
    }
}

#[tokio::test]
async fn type_prefixes_follow_the_calls_type_and_fold_labels_as_the_recorder_does() {
    let mut rx = UdpReceiver::new();
    let mut client = statsd(&rx)
        .with_prefix("app")
        .with_type_prefixes(true)
        .with_global_labels([("region", "eu")])
        .build_statsd_client()
        .unwrap();
    let route = NONE.tags(&[("route", "/a")]);
    assert!(client.incr("req", route));
    assert!(client.gauge("q", 1.0, NONE));
    assert!(client.timing_ms("db", 1.5, NONE));
    assert!(client.histogram("size", 2.0, NONE));
    assert!(client.set("users", "bob", NONE));
    let want = [
        "app.eu.counters.req.a:1|c",
        "app.eu.gauges.q:1|g",
        "app.eu.timers.db:1.5|ms",
        "app.eu.histograms.size:2|h",
        "app.eu.sets.users:bob|s",
    ];
    assert_eq!(flushed(&mut client, &mut rx, want.len()).await, want);
}

/// Counts the warnings logged on the current thread.
#[derive(Default)]
struct Warnings(std::sync::Mutex<Vec<String>>);

struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, _field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, "{value:?} ");
    }
}

impl tracing::Subscriber for &'static Warnings {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            if let Ok(mut logged) = self.0.lock() {
                logged.push(text);
            }
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_refused_kind_of_call_is_logged_once_per_client_and_counted_every_time() {
    let warnings: &'static Warnings = Box::leak(Box::default());
    let rx = UdpReceiver::new();
    tracing::subscriber::with_default(warnings, || {
        let mut client = dogstatsd(&rx).build_statsd_client().unwrap();
        for _ in 0..5 {
            assert!(!client.gauge_delta("q", 1.0, NONE));
        }
        assert_eq!(client.stats().values_dropped_invalid, 5);
        let mut plain = statsd(&rx).build_statsd_client().unwrap();
        for _ in 0..3 {
            assert!(!plain.distribution("d", 1.0, NONE));
        }
    });
    let logged = warnings.0.lock().unwrap().clone();
    assert_eq!(logged.len(), 2, "{logged:?}");
    assert!(logged[0].contains("gauge deltas"), "{logged:?}");
    assert!(logged[1].contains("distributions"), "{logged:?}");
}

#[tokio::test]
async fn a_disabled_client_checks_and_counts_every_call_and_sends_nothing() {
    let mut rx = UdpReceiver::new();
    let mut off = statsd(&rx).build_disabled_statsd_client().unwrap();
    assert!(off.incr("jobs", NONE));
    assert!(off.set("users", "alice", NONE));
    assert!(
        !off.timing_ms("db", f64::NAN, NONE),
        "refused as by the real client"
    );
    assert_eq!(off.flush().await, Ok(()));
    let stats = off.close().await.unwrap();
    assert_eq!((stats.lines_sent, stats.values_dropped_invalid), (0, 1));
    // A sentinel from a real client: it is all the receiver ever got.
    let mut on = statsd(&rx).build_statsd_client().unwrap();
    assert!(on.incr("sentinel", NONE));
    assert_eq!(flushed(&mut on, &mut rx, 1).await, ["sentinel:1|c"]);
}
