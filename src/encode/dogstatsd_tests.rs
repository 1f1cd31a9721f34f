use metrics::Key;

use super::*;
use crate::encode::test_util::{datagrams, labels};
use crate::encode::{
    EncodeTally, Framing, HistogramKind, HistogramRules, PayloadWriter, Rendered, SampleUnit,
};

fn rules(kind: HistogramKind) -> HistogramRules {
    HistogramRules {
        default: kind,
        by_prefix: vec![("timing.".into(), HistogramKind::Timer)],
    }
}

fn encoder(globals: &[(&str, &str)]) -> DogStatsdEncoder {
    DogStatsdEncoder::new(
        Some("app"),
        labels(globals),
        rules(HistogramKind::Distribution),
        None,
        false,
    )
}

fn render(e: &DogStatsdEncoder, name: &str, l: &[(&str, &str)]) -> Rendered {
    let mut r = Rendered::default();
    e.render(&Key::from_parts(name.to_string(), labels(l)), &mut r);
    r
}

const CX: FlushContext = FlushContext::at(1_700_000_000);

fn one_line(f: impl FnOnce(&mut PayloadWriter, &mut EncodeTally)) -> String {
    let (mut d, _) = datagrams(8192, f);
    assert_eq!(d.len(), 1);
    d.remove(0)
}

/// (metric name, its labels, the expected line)
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn lines_carry_tags_in_key_order_with_metric_labels_overriding_globals() {
    let e = encoder(&[("env", "prod"), ("region", "eu")]);
    let table: &[Case<'_>] = &[
        ("requests", &[], "app.requests:1|c|#env:prod,region:eu"),
        (
            "requests",
            &[("route", "/a")],
            "app.requests:1|c|#env:prod,region:eu,route:/a",
        ),
        (
            "requests",
            &[("env", "staging")],
            "app.requests:1|c|#env:staging,region:eu",
        ),
        (
            "requests",
            &[("canary", "")],
            "app.requests:1|c|#canary,env:prod,region:eu",
        ),
        (
            "requests",
            &[("b", "1"), ("a", "2")],
            "app.requests:1|c|#a:2,b:1,env:prod,region:eu",
        ),
        (
            "requests",
            &[("k", "1"), ("k", "2")],
            "app.requests:1|c|#env:prod,k:2,region:eu",
        ),
        (
            "requests",
            &[("a b", "1"), ("a_b", "2")],
            "app.requests:1|c|#a_b:2,env:prod,region:eu",
        ),
        (
            "http-server.requests",
            &[],
            "app.http_server.requests:1|c|#env:prod,region:eu",
        ),
    ];
    for (name, l, want) in table {
        let r = render(&e, name, l);
        assert_eq!(
            one_line(|w, t| e.counter(&r, 1, &CX, w, t)),
            *want,
            "{name} {l:?}"
        );
    }
}

#[test]
fn a_metric_label_wins_over_a_global_label_that_collides_only_after_sanitising() {
    let e = encoder(&[("team|x", "global")]);
    let r = render(&e, "c", &[("team_x", "metric")]);
    assert_eq!(
        one_line(|w, t| e.counter(&r, 1, &CX, w, t)),
        "app.c:1|c|#team_x:metric"
    );
}

#[test]
fn hostile_label_text_can_never_split_the_datagram_or_add_a_tag() {
    let e = encoder(&[]);
    let r = render(
        &e,
        "x",
        &[("k|#,:", "v|#,\n\r\ty:"), ("url", "http://h:80/p")],
    );
    assert_eq!(
        one_line(|w, t| e.counter(&r, 1, &CX, w, t)),
        "app.x:1|c|#k____:v______y_,url:http://h:80/p"
    );
    let r = render(&e, "a:b|c#d\ne", &[]);
    assert_eq!(
        one_line(|w, t| e.counter(&r, 1, &CX, w, t)),
        "app.a_b_c_d_e:1|c"
    );
}

#[test]
fn gauges_are_absolute_with_no_etsy_preamble() {
    let e = encoder(&[]);
    let r = render(&e, "temp", &[]);
    assert_eq!(
        one_line(|w, t| e.gauge(&r, -5.0, &CX, w, t)),
        "app.temp:-5|g"
    );
    assert_eq!(
        one_line(|w, t| e.gauge(&r, 0.25, &CX, w, t)),
        "app.temp:0.25|g"
    );
}

#[test]
fn histogram_samples_are_packed_into_multi_value_lines() {
    let e = encoder(&[("env", "prod")]);
    let r = render(&e, "latency", &[]);
    let line = one_line(|w, t| e.histogram(&r, &[1.5, 2.0, 3.25], 1.0, SampleUnit::Seconds, w, t));
    assert_eq!(line, "app.latency:1.5:2:3.25|d|#env:prod");
    let line =
        one_line(|w, t| e.histogram(&r, &[1.0, f64::NAN, 2.0], 0.25, SampleUnit::Seconds, w, t));
    assert_eq!(line, "app.latency:1:2|d|@0.25|#env:prod");
}

#[test]
fn histogram_kinds_apply_per_metric_prefix_and_timers_convert_to_milliseconds() {
    let e = encoder(&[]);
    let timing = render(&e, "timing.db", &[]);
    assert_eq!(
        one_line(|w, t| e.histogram(&timing, &[0.0125, 0.001], 1.0, SampleUnit::Seconds, w, t)),
        "app.timing.db:12.5:1|ms"
    );
    let e = DogStatsdEncoder::new(None, vec![], rules(HistogramKind::Histogram), None, false);
    let size = render(&e, "size", &[]);
    assert_eq!(
        one_line(|w, t| e.histogram(&size, &[512.0], 1.0, SampleUnit::Seconds, w, t)),
        "size:512|h"
    );
}

#[test]
fn container_ids_and_timestamps_are_appended_when_enabled() {
    let e = DogStatsdEncoder::new(
        None,
        labels(&[("a", "b")]),
        rules(HistogramKind::Distribution),
        Some("abc123|x"),
        true,
    );
    let r = render(&e, "c", &[]);
    assert_eq!(
        one_line(|w, t| e.counter(&r, 2, &CX, w, t)),
        "c:2|c|#a:b|c:abc123_x|T1700000000"
    );
    assert_eq!(
        one_line(|w, t| e.gauge(&r, 1.0, &CX, w, t)),
        "c:1|g|#a:b|c:abc123_x|T1700000000"
    );
    // Timestamps are for counters and gauges only.
    assert_eq!(
        one_line(|w, t| e.histogram(&r, &[1.0], 1.0, SampleUnit::Seconds, w, t)),
        "c:1|d|#a:b|c:abc123_x"
    );
}

#[test]
fn external_data_and_cardinality_follow_the_container_id_in_every_line_kind() {
    let e = DogStatsdEncoder::new(
        None,
        labels(&[("a", "b")]),
        rules(HistogramKind::Distribution),
        Some("abc"),
        true,
    )
    .with_origin_fields(
        Some("it-false,cn-app,pu-12|3\n\u{7}"),
        Some(Cardinality::High),
    );
    let r = render(&e, "c", &[]);
    // `|` and control characters are removed from the external data, as datadog-go does.
    let tail = "|#a:b|c:abc|e:it-false,cn-app,pu-123|card:high";
    assert_eq!(
        one_line(|w, t| e.counter(&r, 2, &CX, w, t)),
        format!("c:2|c{tail}|T1700000000")
    );
    assert_eq!(
        one_line(|w, t| e.gauge(&r, -1.5, &CX, w, t)),
        format!("c:-1.5|g{tail}|T1700000000")
    );
    assert_eq!(
        one_line(|w, t| e.histogram(&r, &[1.0, 2.0], 0.5, SampleUnit::Seconds, w, t)),
        format!("c:1:2|d|@0.5{tail}")
    );
}

#[test]
fn each_origin_field_is_sent_alone_and_an_empty_external_value_not_at_all() {
    let base = || DogStatsdEncoder::new(None, vec![], rules(HistogramKind::Histogram), None, false);
    let cases = [
        (
            base().with_origin_fields(Some("it-true"), None),
            "x:1|c|e:it-true",
        ),
        (
            base().with_origin_fields(None, Some(Cardinality::None)),
            "x:1|c|card:none",
        ),
        (
            base().with_origin_fields(None, Some(Cardinality::Low)),
            "x:1|c|card:low",
        ),
        (base().with_origin_fields(Some("|"), None), "x:1|c"),
        (base().with_origin_fields(None, None), "x:1|c"),
    ];
    for (e, want) in cases {
        let r = render(&e, "x", &[]);
        assert_eq!(one_line(|w, t| e.counter(&r, 1, &CX, w, t)), want);
    }
}

#[test]
fn packed_lines_fill_payloads_exactly_to_the_limit_and_never_past_it() {
    let e = DogStatsdEncoder::new(
        None,
        vec![],
        rules(HistogramKind::Distribution),
        None,
        false,
    );
    let r = render(&e, "h", &[]);
    // "h:" + 30 values "1:1:...:1" + "|d" = 2 + 59 + 2 = 63 bytes in one 64-byte datagram,
    // then the rest in the next.
    let samples = vec![1.0; 40];
    let (got, t) = datagrams(64, |w, t| {
        e.histogram(&r, &samples, 1.0, SampleUnit::Seconds, w, t);
    });
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|d| d.len() <= 64), "{got:?}");
    assert_eq!(got[0], format!("h:{}|d", vec!["1"; 30].join(":")));
    assert_eq!(got[1], format!("h:{}|d", ["1"; 10].join(":")));
    assert_eq!(
        t,
        EncodeTally {
            lines: 2,
            values: 40,
            invalid_values: 0,
            too_long: 0
        }
    );
}

#[test]
fn a_packed_line_uses_the_space_left_in_the_current_payload() {
    let e = DogStatsdEncoder::new(
        None,
        vec![],
        rules(HistogramKind::Distribution),
        None,
        false,
    );
    let c = render(&e, "c", &[]);
    let h = render(&e, "h", &[]);
    let (got, _) = datagrams(64, |w, t| {
        e.counter(&c, 1, &CX, w, t); // "c:1|c" + newline: 6 bytes
        e.histogram(&h, &[1.0; 40], 1.0, SampleUnit::Seconds, w, t);
    });
    assert!(got.iter().all(|d| d.len() <= 64), "{got:?}");
    // 6 bytes of counter, then "h:1:...:1|d" lines have odd lengths: 63 is the fullest
    // possible first datagram.
    assert_eq!(
        got[0].len(),
        63,
        "the first datagram is filled as far as the values allow: {got:?}"
    );
}

#[test]
fn a_line_too_long_for_any_payload_is_dropped_and_counted_per_value() {
    let e = DogStatsdEncoder::new(
        None,
        vec![],
        rules(HistogramKind::Distribution),
        None,
        false,
    );
    let r = render(&e, &"n".repeat(100), &[]);
    let (got, t) = datagrams(64, |w, t| {
        e.histogram(&r, &[1.0, 2.0], 1.0, SampleUnit::Seconds, w, t);
        e.counter(&r, 1, &CX, w, t);
    });
    assert!(got.is_empty());
    assert_eq!(t.too_long, 2 + 1);
}

#[path = "../../tests/support/dogstatsd_parser.rs"]
mod dogstatsd_parser;

#[test]
fn the_spec_parser_used_below_passes_its_own_checks() {
    dogstatsd_parser::self_check();
}

#[derive(Debug, Clone)]
enum Point {
    Counter(u64),
    Gauge(f64),
    Histogram(Vec<f64>, f64),
}

fn value() -> impl proptest::strategy::Strategy<Value = f64> {
    use proptest::prelude::*;
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::NEG_INFINITY),
        -1e6..1e6f64,
        0.0..1e-3f64
    ]
}

fn point() -> impl proptest::strategy::Strategy<Value = Point> {
    use proptest::prelude::*;
    prop_oneof![
        any::<u64>().prop_map(Point::Counter),
        value().prop_map(Point::Gauge),
        (
            proptest::collection::vec(value(), 0..50),
            prop_oneof![1e-12..1e-5f64, 0.01..=1.0f64]
        )
            .prop_map(|(v, r)| Point::Histogram(v, r)),
    ]
}

/// Text with every protocol separator, control characters, Unicode and empties likely.
fn hostile() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        any::<String>(),
        "[a-z|#,:@ \\n\\r\\t.\u{0}\u{7f}\u{e9}\u{1F600}]{0,12}",
        Just(String::new())
    ]
}

proptest::proptest! {
    #[test]
    fn every_line_satisfies_the_spec_parser_and_values_are_conserved(
        points in proptest::collection::vec(
            (hostile(), proptest::collection::vec((hostile(), hostile()), 0..4), point(), 0..3usize),
            1..30,
        ),
        globals in proptest::collection::vec((hostile(), hostile()), 0..3),
        max in 64usize..600,
        timestamps in proptest::bool::ANY,
    ) {
        let global_refs: Vec<(&str, &str)> = globals.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let kinds = [HistogramKind::Distribution, HistogramKind::Histogram, HistogramKind::Timer];
        let mut w = PayloadWriter::new(max, Framing::Datagram);
        let mut t = EncodeTally::default();
        let mut values_in = 0u64;
        for (name, l, point, kind) in &points {
            let e = DogStatsdEncoder::new(Some("p"), labels(&global_refs), rules(kinds[*kind]), Some("ci-1"), timestamps);
            let refs: Vec<(&str, &str)> = l.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let r = render(&e, name, &refs);
            if !r.sendable() {
                continue;
            }
            match point {
                Point::Counter(d) => { values_in += 1; e.counter(&r, *d, &CX, &mut w, &mut t) }
                Point::Gauge(v) => { values_in += 1; e.gauge(&r, *v, &CX, &mut w, &mut t) }
                Point::Histogram(vs, rate) => {
                    values_in += vs.len() as u64;
                    e.histogram(&r, vs, *rate, SampleUnit::Seconds, &mut w, &mut t);
                }
            }
        }
        w.finish();
        let mut values_out = 0u64;
        for i in 0..w.len() {
            let (payload, lines) = w.payload(i).unwrap();
            proptest::prop_assert!(payload.len() <= max, "payload of {} bytes > {}", payload.len(), max);
            let parsed = dogstatsd_parser::parse_datagram(payload);
            proptest::prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, String::from_utf8_lossy(payload));
            let metrics = parsed.unwrap();
            proptest::prop_assert_eq!(metrics.len() as u64, u64::from(lines));
            values_out += metrics.iter().map(|m| m.values.len() as u64).sum::<u64>();
        }
        proptest::prop_assert_eq!(values_out, t.values);
        proptest::prop_assert_eq!(values_in, t.values + t.too_long + t.invalid_values);
    }
}

#[test]
fn a_name_the_agent_would_read_as_a_service_check_loses_its_first_underscore() {
    let bare = DogStatsdEncoder::new(
        None,
        Vec::new(),
        rules(HistogramKind::Distribution),
        None,
        false,
    );
    // The Agent reads any line starting with `_sc` as a service check.
    assert_eq!(render(&bare, "_scale", &[]).name(), b"scale");
    assert_eq!(render(&bare, "_sc", &[]).name(), b"sc");
    // Only the start of the line matters: elsewhere `_sc` stays.
    assert_eq!(render(&bare, "__scale", &[]).name(), b"__scale");
    assert_eq!(render(&bare, "x._scale", &[]).name(), b"x._scale");
    let prefixed = DogStatsdEncoder::new(
        Some("_sc"),
        Vec::new(),
        rules(HistogramKind::Distribution),
        None,
        false,
    );
    assert_eq!(render(&prefixed, "jobs", &[]).name(), b"sc.jobs");
}

#[test]
fn the_origin_fields_count_in_the_payload_limit() {
    let e = DogStatsdEncoder::new(
        None,
        Vec::new(),
        rules(HistogramKind::Distribution),
        Some("ci-0123456789abcdef"),
        false,
    )
    .with_origin_fields(
        Some("it-false,cn-app,pu-1234"),
        Some(Cardinality::Orchestrator),
    );
    let s = render(&e, "requests", &[("route", "/a")]);
    let want =
        "requests:1|c|#route:/a|c:ci-0123456789abcdef|e:it-false,cn-app,pu-1234|card:orchestrator";
    // Room for exactly two lines per datagram (with the newline between them), not three.
    let limit = 2 * want.len() + 1;
    let (d, t) = datagrams(limit, |w, t| {
        for _ in 0..7 {
            e.counter(&s, 1, &CX, w, t);
        }
    });
    assert_eq!(t.lines, 7);
    assert_eq!(d.len(), 4, "{d:?}");
    assert!(d.iter().all(|p| p.len() <= limit));
    assert!(d.iter().flat_map(|p| p.split('\n')).all(|l| l == want));
    // One byte less and a datagram holds one line.
    let (d, _) = datagrams(limit - 1, |w, t| e.counter(&s, 1, &CX, w, t));
    assert_eq!(d, [want]);
    let (d, t) = datagrams(want.len() - 1, |w, t| e.counter(&s, 1, &CX, w, t));
    assert!(d.is_empty());
    assert_eq!(
        t.too_long, 1,
        "a line the fields make too long is dropped and tallied"
    );
}
