use metrics::{Key, Label};
use proptest::prelude::*;

use super::*;
use crate::encode::test_util::{datagrams, labels};
use crate::encode::{EncodeTally, Framing, HistogramKind, HistogramRules, PayloadWriter, Rendered};

fn encoder(prefix: Option<&str>, globals: &[(&str, &str)]) -> StatsdEncoder {
    let globals = globals
        .iter()
        .map(|(k, v)| Label::new(k.to_string(), v.to_string()))
        .collect();
    StatsdEncoder::new(
        prefix,
        LabelHandling::FoldIntoName,
        globals,
        rules(HistogramKind::Timer),
    )
}

fn key(name: &str, pairs: &[(&str, &str)]) -> Key {
    Key::from_parts(name.to_string(), labels(pairs))
}

fn rules(kind: HistogramKind) -> HistogramRules {
    HistogramRules {
        default: kind,
        by_prefix: Vec::new(),
    }
}

fn name(e: &StatsdEncoder, k: &Key) -> Rendered {
    let mut out = Rendered::default();
    e.render(k, &mut out);
    assert!(out.sendable());
    out
}

fn renders(e: &StatsdEncoder, k: &Key) -> bool {
    let mut out = Rendered::default();
    e.render(k, &mut out);
    out.sendable()
}

/// A series with a given wire name (timer histograms, no tail).
fn raw(name: &[u8]) -> Rendered {
    Rendered::of(name, b"")
}

type Case<'a> = Box<dyn Fn(&mut PayloadWriter, &mut EncodeTally) + 'a>;

#[test]
fn counter_gauge_and_timer_lines_match_the_etsy_format_exactly() {
    let e = encoder(None, &[]);
    let n = name(&e, &key("requests", &[]));
    let table: Vec<(&str, Case<'_>, &str)> = vec![
        (
            "counter",
            Box::new(|w, t| e.counter(&n, 3, w, t)),
            "requests:3|c",
        ),
        (
            "big counter",
            Box::new(|w, t| e.counter(&n, u64::MAX, w, t)),
            "requests:18446744073709551615|c",
        ),
        (
            "gauge",
            Box::new(|w, t| e.gauge(&n, 42.0, w, t)),
            "requests:42|g",
        ),
        (
            "fractional gauge",
            Box::new(|w, t| e.gauge(&n, 0.25, w, t)),
            "requests:0.25|g",
        ),
        (
            "negative gauge",
            Box::new(|w, t| e.gauge(&n, -5.0, w, t)),
            "requests:0|g\nrequests:-5|g",
        ),
        (
            "negative zero gauge",
            Box::new(|w, t| e.gauge(&n, -0.0, w, t)),
            "requests:0|g",
        ),
        (
            "tiny gauge",
            Box::new(|w, t| e.gauge(&n, 1e-7, w, t)),
            "requests:1e-7|g",
        ),
        (
            "huge gauge",
            Box::new(|w, t| e.gauge(&n, 1.5e300, w, t)),
            "requests:1.5e300|g",
        ),
        (
            "timer from seconds",
            Box::new(|w, t| e.histogram(&n, &[0.0125], 1.0, SampleUnit::Seconds, w, t)),
            "requests:12.5|ms",
        ),
        (
            "timer from nanoseconds",
            Box::new(|w, t| e.histogram(&n, &[1500.0], 1.0, SampleUnit::Nanoseconds, w, t)),
            "requests:0.0015|ms",
        ),
        (
            "timer from microseconds",
            Box::new(|w, t| e.histogram(&n, &[250.0], 1.0, SampleUnit::Microseconds, w, t)),
            "requests:0.25|ms",
        ),
        (
            "sampled timer",
            Box::new(|w, t| e.histogram(&n, &[0.001, 0.002], 0.25, SampleUnit::Seconds, w, t)),
            "requests:1|ms|@0.25\nrequests:2|ms|@0.25",
        ),
        (
            "tiny sample rate in fixed notation",
            Box::new(|w, t| e.histogram(&n, &[0.001], 2.0 / 300_000.0, SampleUnit::Seconds, w, t)),
            "requests:1|ms|@0.000006667",
        ),
    ];
    for (what, f, want) in table {
        let (got, _) = datagrams(1432, f);
        assert_eq!(got, vec![want.to_string()], "{what}");
    }
}

#[test]
fn histograms_can_be_sent_as_h_without_unit_conversion() {
    let e = StatsdEncoder::new(
        None,
        LabelHandling::FoldIntoName,
        vec![],
        rules(HistogramKind::Histogram),
    );
    let n = name(&e, &key("size", &[]));
    let (got, _) = datagrams(1432, |w, t| {
        e.histogram(&n, &[512.0, -1.5], 1.0, SampleUnit::Seconds, w, t);
    });
    assert_eq!(got, vec!["size:512|h\nsize:-1.5|h".to_string()]);
}

#[test]
fn names_are_sanitised_with_global_labels_after_the_prefix_and_the_rest_after_the_name() {
    let e = encoder(Some("my app."), &[("region", "eu"), ("az", "b")]);
    let table: &[(Key, &str)] = &[
        (key("requests", &[]), "my_app.b.eu.requests"),
        (
            key("requests", &[("route", "/a"), ("method", "GET")]),
            "my_app.b.eu.requests.GET.a",
        ),
        (key("requests", &[("region", "us")]), "my_app.b.us.requests"),
        (key("a:b|c@d#e,f\ng", &[]), "my_app.b.eu.a_b_c_d_e_f_g"),
        (key("x", &[("v", "1.2.3")]), "my_app.b.eu.x.1_2_3"),
        (key("x", &[("empty", "")]), "my_app.b.eu.x"),
        (key("h\u{e9}llo w\u{f6}rld", &[]), "my_app.b.eu.h_llo_w_rld"),
    ];
    for (k, want) in table {
        assert_eq!(
            String::from_utf8(name(&e, k).name().to_vec()).unwrap(),
            *want,
            "{k}"
        );
    }
}

#[test]
fn labels_are_ignored_when_configured_to_drop() {
    let e = StatsdEncoder::new(
        None,
        LabelHandling::Drop,
        vec![Label::new("g", "1")],
        rules(HistogramKind::Timer),
    );
    assert_eq!(name(&e, &key("x", &[("a", "b")])).name(), b"x");
}

#[test]
fn a_name_with_nothing_usable_left_is_refused() {
    let e = encoder(Some("p"), &[]);
    assert!(!renders(&e, &key("...", &[])));
    assert!(!renders(&e, &key("", &[])));
}

#[test]
fn nan_infinite_and_negative_timer_values_are_counted_not_sent() {
    let e = encoder(None, &[]);
    let n = name(&e, &key("t", &[]));
    let (got, t) = datagrams(1432, |w, t| {
        e.gauge(&n, f64::NAN, w, t);
        e.gauge(&n, f64::INFINITY, w, t);
        e.histogram(
            &n,
            &[f64::NEG_INFINITY, -0.001, 0.002],
            1.0,
            SampleUnit::Seconds,
            w,
            t,
        );
    });
    assert_eq!(got, vec!["t:2|ms".to_string()]);
    assert_eq!(
        t,
        EncodeTally {
            lines: 1,
            values: 1,
            invalid_values: 4,
            too_long: 0
        }
    );
}

#[test]
fn a_line_exactly_at_the_limit_is_sent_and_one_over_is_dropped() {
    let e = encoder(None, &[]);
    // "abcdef:1|c" is 10 bytes.
    let (got, t) = datagrams(10, |w, t| {
        e.counter(&raw(b"abcdef"), 1, w, t);
        e.counter(&raw(b"abcdefg"), 1, w, t);
    });
    assert_eq!(got, vec!["abcdef:1|c".to_string()]);
    assert_eq!(
        t,
        EncodeTally {
            lines: 1,
            values: 1,
            invalid_values: 0,
            too_long: 1
        }
    );
}

#[test]
fn the_negative_gauge_pair_moves_whole_to_the_next_payload() {
    let e = encoder(None, &[]);
    // "g:1|c" (5) + "\n" + "g:0|g\ng:-5|g" (12) = 18 > 15, so the pair starts a new payload.
    let (got, _) = datagrams(15, |w, t| {
        e.counter(&raw(b"g"), 1, w, t);
        e.gauge(&raw(b"g"), -5.0, w, t);
    });
    assert_eq!(got, vec!["g:1|c".to_string(), "g:0|g\ng:-5|g".to_string()]);
}

/// A strict parser for one plain StatsD line, written from the Etsy grammar
/// `name:value|type[|@rate]`. Returns (name, value, type, rate).
fn parse_line(line: &str) -> Result<(&str, f64, &str, Option<f64>), String> {
    let (name, rest) = line.split_once(':').ok_or("no ':'")?;
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return Err(format!("bad name {name:?}"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(format!("unsafe name {name:?}"));
    }
    let mut fields = rest.split('|');
    let value: f64 = fields
        .next()
        .ok_or("no value")?
        .parse()
        .map_err(|e| format!("value: {e}"))?;
    let kind = fields.next().ok_or("no type")?;
    if !["c", "g", "ms", "h"].contains(&kind) {
        return Err(format!("bad type {kind}"));
    }
    let rate = match fields.next() {
        None => None,
        Some(r) => {
            // Etsy's grammar: `@` then digits and dots only (`/^@([\d\.]+)/`).
            let digits = r.strip_prefix('@').ok_or("bad rate")?;
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(format!("rate not in Etsy's grammar: {r}"));
            }
            let rate: f64 = digits.parse().map_err(|e| format!("rate: {e}"))?;
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(format!("rate out of range: {r}"));
            }
            Some(rate)
        }
    };
    if fields.next().is_some() {
        return Err("extra field".into());
    }
    Ok((name, value, kind, rate))
}

#[derive(Debug, Clone)]
enum Point {
    Counter(u64),
    Gauge(f64),
    Timer(Vec<f64>, f64),
}

fn value_strategy() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        -1e6..1e6f64
    ]
}

fn point_strategy() -> impl Strategy<Value = Point> {
    prop_oneof![
        any::<u64>().prop_map(Point::Counter),
        value_strategy().prop_map(Point::Gauge),
        (
            proptest::collection::vec(value_strategy(), 0..5),
            prop_oneof![1e-12..1e-5f64, 0.01..=1.0f64]
        )
            .prop_map(|(v, r)| Point::Timer(v, r)),
    ]
}

proptest! {
    #[test]
    fn no_payload_exceeds_the_limit_every_line_parses_and_points_are_conserved(
        points in proptest::collection::vec((any::<String>(), proptest::collection::vec((any::<String>(), any::<String>()), 0..3), point_strategy()), 1..40),
        max in 8usize..300,
    ) {
        let e = encoder(Some("pfx"), &[("g", "v")]);
        let mut w = PayloadWriter::new(max, Framing::Datagram);
        let mut t = EncodeTally::default();
        let mut values_in = 0u64;
        let mut n = Rendered::default();
        for (raw_name, labels, point) in &points {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            e.render(&key(raw_name, &labels), &mut n);
            if !n.sendable() {
                continue;
            }
            match point {
                Point::Counter(d) => { values_in += 1; e.counter(&n, *d, &mut w, &mut t) }
                Point::Gauge(v) => { values_in += 1; e.gauge(&n, *v, &mut w, &mut t) }
                Point::Timer(vs, r) => {
                    values_in += vs.len() as u64;
                    e.histogram(&n, vs, *r, SampleUnit::Seconds, &mut w, &mut t);
                }
            }
        }
        w.finish();
        let mut lines_out = 0u64;
        for i in 0..w.len() {
            let (p, n_lines) = w.payload(i).unwrap();
            prop_assert!(p.len() <= max, "payload {} > {}", p.len(), max);
            let text = std::str::from_utf8(p).unwrap();
            let lines: Vec<&str> = text.split('\n').collect();
            prop_assert_eq!(lines.len() as u64, u64::from(n_lines));
            for line in lines {
                let parsed = parse_line(line);
                prop_assert!(parsed.is_ok(), "{:?}: {:?}", line, parsed);
            }
            lines_out += u64::from(n_lines);
        }
        prop_assert_eq!(lines_out, t.lines);
        prop_assert_eq!(values_in, t.values + t.too_long + t.invalid_values);
    }
}

#[test]
fn the_negative_gauge_pair_is_recognised_as_one_chunk() {
    assert!(continues_chunk(b"temp.eu:0|g", b"temp.eu:-5|g"));
    assert!(continues_chunk(b"a:0|g", b"a:-0.25|g"));
    assert!(!continues_chunk(b"a:0|g", b"b:-5|g"));
    assert!(!continues_chunk(b"a:0|g", b"a:5|g"));
    assert!(!continues_chunk(b"a:1|c", b"a:-5|g"));
    assert!(!continues_chunk(b"ab:0|g", b"a:-5|g"));
}

fn styled(style: LabelHandling) -> StatsdEncoder {
    StatsdEncoder::new(
        Some("app"),
        style,
        vec![Label::new("region", "eu"), Label::new("status", "global")],
        rules(HistogramKind::Timer),
    )
}

/// One counter, one negative gauge and one sampled timer of a series in `style`.
fn lines_in(style: LabelHandling, k: &Key) -> String {
    let e = styled(style);
    let n = name(&e, k);
    let (got, t) = datagrams(1432, |w, t| {
        e.counter(&n, 3, w, t);
        e.gauge(&n, -2.0, w, t);
        e.histogram(&n, &[0.25], 0.5, SampleUnit::Seconds, w, t);
    });
    assert_eq!(t.invalid_values + t.too_long, 0);
    got.join("\n")
}

#[test]
fn every_tag_style_writes_the_exact_lines_its_servers_parse() {
    let k = key("requests", &[("status", "200"), ("method", "GET")]);
    let table = [
        (
            LabelHandling::FoldIntoName,
            "app.eu.200.requests.GET:3|c\napp.eu.200.requests.GET:0|g\napp.eu.200.requests.GET:-2|g\napp.eu.200.requests.GET:250|ms|@0.5",
        ),
        (
            LabelHandling::FoldKeyValues,
            "app.region.eu.status.200.requests.method.GET:3|c\napp.region.eu.status.200.requests.method.GET:0|g\napp.region.eu.status.200.requests.method.GET:-2|g\napp.region.eu.status.200.requests.method.GET:250|ms|@0.5",
        ),
        (
            LabelHandling::Drop,
            "app.requests:3|c\napp.requests:0|g\napp.requests:-2|g\napp.requests:250|ms|@0.5",
        ),
        (
            LabelHandling::DogStatsd,
            "app.requests:3|c|#method:GET,region:eu,status:200\napp.requests:0|g|#method:GET,region:eu,status:200\napp.requests:-2|g|#method:GET,region:eu,status:200\napp.requests:250|ms|@0.5|#method:GET,region:eu,status:200",
        ),
        (
            LabelHandling::InfluxDb,
            "app.requests,method=GET,region=eu,status=200:3|c\napp.requests,method=GET,region=eu,status=200:0|g\napp.requests,method=GET,region=eu,status=200:-2|g\napp.requests,method=GET,region=eu,status=200:250|ms|@0.5",
        ),
        (
            LabelHandling::Librato,
            "app.requests#method=GET,region=eu,status=200:3|c\napp.requests#method=GET,region=eu,status=200:0|g\napp.requests#method=GET,region=eu,status=200:-2|g\napp.requests#method=GET,region=eu,status=200:250|ms|@0.5",
        ),
        (
            LabelHandling::SignalFx,
            "app.requests[method=GET,region=eu,status=200]:3|c\napp.requests[method=GET,region=eu,status=200]:0|g\napp.requests[method=GET,region=eu,status=200]:-2|g\napp.requests[method=GET,region=eu,status=200]:250|ms|@0.5",
        ),
        (
            LabelHandling::Graphite,
            "app.requests;method=GET;region=eu;status=200:3|c\napp.requests;method=GET;region=eu;status=200:0|g\napp.requests;method=GET;region=eu;status=200:-2|g\napp.requests;method=GET;region=eu;status=200:250|ms|@0.5",
        ),
    ];
    for (style, want) in table {
        assert_eq!(lines_in(style, &k), want, "{style:?}");
    }
}

#[test]
fn embedded_tags_cannot_break_out_of_their_style_and_empty_values_are_left_out() {
    let hostile = key(
        "q",
        &[
            ("k,=#[];:|@ \n", "v,=#[];:|@ \tend"),
            ("empty", ""),
            ("ünï/co-de.x", "ok"),
        ],
    );
    let e = StatsdEncoder::new(
        None,
        LabelHandling::InfluxDb,
        vec![],
        rules(HistogramKind::Timer),
    );
    let n = name(&e, &hostile);
    assert_eq!(
        String::from_utf8(n.name().to_vec()).unwrap(),
        "q,k___________=v___________end,ünï/co-de.x=ok"
    );
    for style in [
        LabelHandling::Librato,
        LabelHandling::SignalFx,
        LabelHandling::Graphite,
    ] {
        let line = lines_in(style, &hostile);
        for l in line.lines() {
            assert_eq!(l.matches(':').count(), 1, "{style:?}: {l}");
            assert_eq!(
                l.matches('|').count(),
                if l.contains("|ms") { 2 } else { 1 },
                "{l}"
            );
        }
    }
    // Without any usable tag the name stays bare (no dangling `[` or `;`).
    let bare = key("q", &[("", "x"), ("y", "")]);
    assert_eq!(
        lines_in(LabelHandling::SignalFx, &bare).lines().next(),
        Some("app.q[region=eu,status=global]:3|c")
    );
    let e = StatsdEncoder::new(
        None,
        LabelHandling::SignalFx,
        vec![],
        rules(HistogramKind::Timer),
    );
    assert_eq!(name(&e, &bare).name(), b"q");
}

#[test]
fn the_negative_gauge_pair_with_dogstatsd_style_tags_is_one_chunk() {
    assert!(continues_chunk(b"a:0|g|#k:v", b"a:-5|g|#k:v"));
    assert!(!continues_chunk(b"a:0|g|#k:v", b"a:-5|g|#k:w"));
    assert!(!continues_chunk(b"a:0|g|#k:v", b"a:-5|c|#k:v"));
    assert!(continues_chunk(b"a;k=v:0|g", b"a;k=v:-5|g"));
    assert!(!continues_chunk(b"a;k=v:0|g", b"a;k=w:-5|g"));
}

/// The counter line of `k` in plain StatsD's DogStatsD style, no prefix or globals.
fn etsy_line(e: &StatsdEncoder, k: &Key) -> String {
    let n = name(e, k);
    let (got, _) = datagrams(1432, |w, t| e.counter(&n, 1, w, t));
    got.join("\n")
}

#[test]
fn dogstatsd_style_tags_keep_only_what_etsy_and_carbon_pass_unchanged() {
    let e = StatsdEncoder::new(
        None,
        LabelHandling::DogStatsd,
        vec![],
        rules(HistogramKind::Timer),
    );
    let table: &[(&[(&str, &str)], &str)] = &[
        (&[("k", "a;b;c")], "x:1|c|#k:a_b_c"),
        (&[("k=x", "v=w")], "x:1|c|#k_x:v=w"),
        (
            &[("k", "~lead"), ("m", "in~side")],
            "x:1|c|#k:_lead,m:in_side",
        ),
        (&[("a/b", "/api/v1")], "x:1|c|#a-b:-api-v1"),
        (&[("a.b", "x.y")], "x:1|c|#a.b:x.y"),
        (&[("a:b", "c:d:")], "x:1|c|#a_b:c_d_"),
        (&[("k,#|", "a,b#c|d")], "x:1|c|#k___:a_b_c_d"),
        (&[("my key", "a b\tc\n")], "x:1|c|#my_key:a_b_c_"),
        (&[("r\u{e9}gion", "\u{1F600}")], "x:1|c|#r_gion:_"),
        (&[("k", "!^@$%")], "x:1|c|#k:_____"),
        (&[("name", "n")], "x:1|c|#name_:n"),
        (&[("", "v"), ("e", ""), ("k", "w")], "x:1|c|#k:w"),
        (&[("a b", "1"), ("a_b", "2")], "x:1|c|#a_b:2"),
    ];
    for (pairs, want) in table {
        assert_eq!(etsy_line(&e, &key("x", pairs)), *want, "{pairs:?}");
    }
}

#[test]
fn dogstatsd_style_tagged_names_fit_a_readable_carbon_file_name_with_room_for_etsy() {
    let long = "v".repeat(300);
    let k = key("x", &[("k", &long)]);
    let hashed = StatsdEncoder::new(
        None,
        LabelHandling::DogStatsd,
        vec![],
        rules(HistogramKind::Timer),
    );
    let n = name(&hashed, &k);
    assert!(
        !n.shortened,
        "carbon's default hashed file names hold 300 bytes"
    );
    let readable = hashed.clone().with_tag_hash_filenames(false);
    let n = name(&readable, &k);
    assert!(n.shortened);
    // `x;k=<value>` within 251 - 64 stored bytes: the value cut to 182 with its hash.
    let tail = String::from_utf8(n.tail().to_vec()).unwrap();
    let value = tail.strip_prefix("|#k:").unwrap();
    assert_eq!(1 + 2 + 1 + value.len(), 251 - 64, "{tail}");
    let hash = format!("-{:016x}", crate::encode::shorten::fnv1a64(long.as_bytes()));
    assert!(
        value.ends_with(&hash) && value.starts_with("vvv"),
        "{value}"
    );
}
