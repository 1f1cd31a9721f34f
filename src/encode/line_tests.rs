//! Exact bytes of the public line encoder, in both dialects, and what it refuses.

use super::*;

use MetricType::{Counter, Distribution, Gauge, Histogram, Set, Timer};
use MetricValue::{Float, GaugeDelta, Integer, Text};

fn line(dialect: Dialect, l: MetricLine<'_>) -> Result<String, EncodeError> {
    let mut out = b"kept".to_vec();
    let result = l.encode(dialect, &mut out);
    if result.is_err() {
        assert_eq!(out, b"kept", "an error leaves the buffer as it was");
    }
    result.map(|()| String::from_utf8(out[4..].to_vec()).unwrap())
}

#[test]
#[allow(clippy::too_many_lines, reason = "one table")]
fn every_type_has_exact_bytes_in_both_dialects() {
    let table: &[(MetricLine<'_>, &str, &str)] = &[
        (
            MetricLine::new("jobs", Integer(-3), Counter),
            "jobs:-3|c\n",
            "jobs:-3|c\n",
        ),
        (
            MetricLine::new("jobs", Float(1.5), Counter),
            "jobs:1.5|c\n",
            "jobs:1.5|c\n",
        ),
        (
            MetricLine::new("q", Float(12.0), Gauge),
            "q:12|g\n",
            "q:12|g\n",
        ),
        // Plain StatsD: a negative gauge is the Etsy pair; DogStatsD gauges are absolute.
        (
            MetricLine::new("q", Float(-5.0), Gauge),
            "q:0|g\nq:-5|g\n",
            "q:-5|g\n",
        ),
        (
            MetricLine::new("q", Integer(-2), Gauge),
            "q:0|g\nq:-2|g\n",
            "q:-2|g\n",
        ),
        (
            MetricLine::new("q", Float(-0.0), Gauge),
            "q:0|g\n",
            "q:0|g\n",
        ),
        (
            MetricLine::new("db", Float(12.5), Timer),
            "db:12.5|ms\n",
            "db:12.5|ms\n",
        ),
        (
            MetricLine::new("size", Float(512.0), Histogram),
            "size:512|h\n",
            "size:512|h\n",
        ),
        (
            MetricLine::new("u", Text("alice"), Set),
            "u:alice|s\n",
            "u:alice|s\n",
        ),
        (
            MetricLine::new("u", Integer(42), Set),
            "u:42|s\n",
            "u:42|s\n",
        ),
        // Text numbers go as written.
        (
            MetricLine::new("x", Text("1e3"), Counter),
            "x:1e3|c\n",
            "x:1e3|c\n",
        ),
        (
            MetricLine::new("x", Text("+3"), Gauge),
            "x:+3|g\n",
            "x:+3|g\n",
        ),
        (
            MetricLine::new("x", Float(1.0), Counter).sample_rate(0.1),
            "x:1|c|@0.1\n",
            "x:1|c|@0.1\n",
        ),
        (
            MetricLine::new("x", Float(1.0), Timer).sample_rate(2.0 / 300_000.0),
            "x:1|ms|@0.000006667\n",
            "x:1|ms|@0.000006667\n",
        ),
        (
            MetricLine::new("x", Integer(1), Counter).sample_rate(1.0),
            "x:1|c\n",
            "x:1|c\n",
        ),
        (
            MetricLine::new("x", Integer(1), Counter).tags(&[
                ("route", "/a"),
                ("ü", "日本"),
                ("bare", ""),
            ]),
            "x:1|c|#route:/a,ü:日本,bare\n",
            "x:1|c|#route:/a,ü:日本,bare\n",
        ),
        (
            MetricLine::new("q", Float(-1.0), Gauge)
                .sample_rate(0.5)
                .tags(&[("k", "v")]),
            "q:0|g|@0.5|#k:v\nq:-1|g|@0.5|#k:v\n",
            "q:-1|g|@0.5|#k:v\n",
        ),
    ];
    for (l, statsd, dogstatsd) in table {
        assert_eq!(line(Dialect::Statsd, *l).as_deref(), Ok(*statsd), "{l:?}");
        assert_eq!(
            line(Dialect::DogStatsd, *l).as_deref(),
            Ok(*dogstatsd),
            "{l:?}"
        );
    }
}

#[test]
fn gauge_deltas_are_always_signed_and_plain_statsd_only() {
    for (v, want) in [
        (3.0, "q:+3|g\n"),
        (-5.0, "q:-5|g\n"),
        (0.0, "q:+0|g\n"),
        (-0.0, "q:+0|g\n"),
    ] {
        let l = MetricLine::new("q", GaugeDelta(v), Gauge);
        assert_eq!(line(Dialect::Statsd, l).as_deref(), Ok(want));
        assert!(matches!(
            line(Dialect::DogStatsd, l),
            Err(EncodeError::Unsupported { .. })
        ));
    }
    let nan = MetricLine::new("q", GaugeDelta(f64::NAN), Gauge);
    assert_eq!(line(Dialect::Statsd, nan), Err(EncodeError::InvalidValue));
    let on_counter = MetricLine::new("q", GaugeDelta(1.0), Counter);
    assert!(matches!(
        line(Dialect::Statsd, on_counter),
        Err(EncodeError::Unsupported { .. })
    ));
}

#[test]
fn dogstatsd_fields_go_in_one_order_and_only_where_the_agent_reads_them() {
    let full = MetricLine::new("x", Integer(2), Counter)
        .sample_rate(0.5)
        .tags(&[("env", "prod")])
        .container_id("abc")
        .external_data("it-false,cn-app,pu-1234")
        .cardinality(Cardinality::Orchestrator)
        .timestamp(1_700_000_000);
    assert_eq!(
        line(Dialect::DogStatsd, full).as_deref(),
        Ok("x:2|c|@0.5|#env:prod|c:abc|e:it-false,cn-app,pu-1234|card:orchestrator|T1700000000\n")
    );
    let d = MetricLine::new("lat", Float(0.25), Distribution);
    assert_eq!(line(Dialect::DogStatsd, d).as_deref(), Ok("lat:0.25|d\n"));
    for refused in [
        d,
        MetricLine::new("x", Integer(1), Counter).timestamp(1),
        MetricLine::new("x", Integer(1), Counter).container_id("abc"),
        MetricLine::new("x", Integer(1), Counter).external_data("it-false"),
        MetricLine::new("x", Integer(1), Counter).cardinality(Cardinality::High),
    ] {
        assert!(
            matches!(
                line(Dialect::Statsd, refused),
                Err(EncodeError::Unsupported { .. })
            ),
            "{refused:?}"
        );
    }
    for kind in [Timer, Histogram, Distribution, Set] {
        let l = MetricLine::new("x", Integer(1), kind).timestamp(1);
        assert!(matches!(
            line(Dialect::DogStatsd, l),
            Err(EncodeError::Unsupported { .. })
        ));
    }
    let zero = MetricLine::new("x", Integer(1), Gauge).timestamp(0);
    assert_eq!(
        line(Dialect::DogStatsd, zero),
        Err(EncodeError::InvalidTimestamp)
    );
    for bad in ["", "a|b", "a\nb"] {
        let l = MetricLine::new("x", Integer(1), Gauge).external_data(bad);
        assert_eq!(
            line(Dialect::DogStatsd, l),
            Err(EncodeError::InvalidField),
            "{bad:?}"
        );
    }
}

#[test]
#[allow(clippy::too_many_lines, reason = "one table")]
fn what_would_break_a_line_is_refused() {
    let refused: &[(MetricLine<'_>, EncodeError)] = &[
        (
            MetricLine::new("", Integer(1), Counter),
            EncodeError::InvalidName,
        ),
        (
            MetricLine::new("a:b", Integer(1), Counter),
            EncodeError::InvalidName,
        ),
        (
            MetricLine::new("a|b", Integer(1), Counter),
            EncodeError::InvalidName,
        ),
        (
            MetricLine::new("a\nb", Integer(1), Counter),
            EncodeError::InvalidName,
        ),
        (
            MetricLine::new("x", Float(f64::NAN), Gauge),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Float(f64::INFINITY), Counter),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Float(f64::NEG_INFINITY), Histogram),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Float(-1.0), Timer),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Text("a|b"), Set),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Text("a:b"), Set),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Text(""), Set),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Text("a\n"), Set),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Text("abc"), Counter),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Text("nan"), Gauge),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Text("inf"), Gauge),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Text("-1"), Timer),
            EncodeError::InvalidValue,
        ),
        (
            MetricLine::new("x", Integer(1), Counter).tags(&[("", "v")]),
            EncodeError::InvalidTag,
        ),
        (
            MetricLine::new("x", Integer(1), Counter).tags(&[("a:b", "v")]),
            EncodeError::InvalidTag,
        ),
        (
            MetricLine::new("x", Integer(1), Counter).tags(&[("k", "a,b")]),
            EncodeError::InvalidTag,
        ),
        (
            MetricLine::new("x", Integer(1), Counter).tags(&[("k", "a|b")]),
            EncodeError::InvalidTag,
        ),
        (
            MetricLine::new("x", Integer(1), Counter).tags(&[("k", "\n")]),
            EncodeError::InvalidTag,
        ),
        (
            MetricLine::new("x", Integer(1), Counter).sample_rate(0.0),
            EncodeError::InvalidSampleRate,
        ),
        (
            MetricLine::new("x", Integer(1), Counter).sample_rate(-0.5),
            EncodeError::InvalidSampleRate,
        ),
        (
            MetricLine::new("x", Integer(1), Counter).sample_rate(1.5),
            EncodeError::InvalidSampleRate,
        ),
        (
            MetricLine::new("x", Integer(1), Counter).sample_rate(f64::NAN),
            EncodeError::InvalidSampleRate,
        ),
    ];
    for (l, want) in refused {
        assert_eq!(line(Dialect::Statsd, *l), Err(*want), "{l:?}");
        assert_eq!(line(Dialect::DogStatsd, *l), Err(*want), "{l:?}");
    }
    // The Agent takes a line starting with `_e{` for an event.
    let event_like = MetricLine::new("_e{1", Integer(1), Counter);
    assert_eq!(
        line(Dialect::DogStatsd, event_like),
        Err(EncodeError::InvalidName)
    );
    assert_eq!(
        line(Dialect::Statsd, event_like).as_deref(),
        Ok("_e{1:1|c\n")
    );
}

#[test]
fn a_name_the_agent_would_read_as_a_service_check_is_refused_for_dogstatsd_only() {
    // The Agent's message-type check is a `_sc` prefix, not `_sc|`.
    for name in ["_sc", "_scale", "_sc|x"] {
        let l = MetricLine::new(name, Integer(1), Counter);
        assert_eq!(
            line(Dialect::DogStatsd, l),
            Err(EncodeError::InvalidName),
            "{name}"
        );
    }
    let l = MetricLine::new("_scale", Integer(1), Counter);
    assert_eq!(line(Dialect::Statsd, l).as_deref(), Ok("_scale:1|c\n"));
    let l = MetricLine::new("x._sc", Integer(1), Counter);
    assert_eq!(line(Dialect::DogStatsd, l).as_deref(), Ok("x._sc:1|c\n"));
}

#[test]
fn a_timestamp_past_i64_max_is_refused_as_the_agent_cannot_read_it() {
    let max = u64::try_from(i64::MAX).unwrap();
    let at = |ts| MetricLine::new("g", Float(1.0), Gauge).timestamp(ts);
    assert_eq!(
        line(Dialect::DogStatsd, at(max)).as_deref(),
        Ok("g:1|g|T9223372036854775807\n")
    );
    assert_eq!(
        line(Dialect::DogStatsd, at(max + 1)),
        Err(EncodeError::InvalidTimestamp)
    );
    assert_eq!(
        line(Dialect::DogStatsd, at(u64::MAX)),
        Err(EncodeError::InvalidTimestamp)
    );
}

#[test]
fn a_sample_rate_is_written_rounded_to_nine_places_and_one_that_rounds_to_zero_is_refused() {
    let at = |rate| MetricLine::new("x", Integer(1), Counter).sample_rate(rate);
    assert_eq!(
        line(Dialect::Statsd, at(1.4e-9)).as_deref(),
        Ok("x:1|c|@0.000000001\n")
    );
    assert_eq!(
        line(Dialect::Statsd, at(0.6e-9)).as_deref(),
        Ok("x:1|c|@0.000000001\n")
    );
    assert_eq!(
        line(Dialect::Statsd, at(1e-12)),
        Err(EncodeError::InvalidSampleRate)
    );
    assert_eq!(
        line(Dialect::Statsd, at(0.4e-9)),
        Err(EncodeError::InvalidSampleRate)
    );
    // Just under 1 rounds to 1: every call is kept, and no rate is written.
    assert_eq!(
        line(Dialect::Statsd, at(1.0 - 1e-12)).as_deref(),
        Ok("x:1|c\n")
    );
}

#[test]
fn a_tag_value_ending_in_a_colon_is_refused() {
    let l = MetricLine::new("x", Integer(1), Counter).tags(&[("k", "v:")]);
    assert_eq!(line(Dialect::DogStatsd, l), Err(EncodeError::InvalidTag));
    let l = MetricLine::new("x", Integer(1), Counter).tags(&[("k", "a:b")]);
    assert_eq!(line(Dialect::DogStatsd, l).as_deref(), Ok("x:1|c|#k:a:b\n"));
}

#[test]
fn cardinality_levels_parse_in_any_case_and_nothing_else() {
    assert_eq!(Cardinality::parse("LOW"), Some(Cardinality::Low));
    assert_eq!(
        Cardinality::parse("orchestrator"),
        Some(Cardinality::Orchestrator)
    );
    assert_eq!(Cardinality::parse("None"), Some(Cardinality::None));
    assert_eq!(Cardinality::parse("High"), Some(Cardinality::High));
    assert_eq!(Cardinality::parse("medium"), None);
    assert_eq!(Cardinality::parse(""), None);
}

mod property {
    use proptest::prelude::*;

    use super::*;

    /// Text from characters that split StatsD lines and fields, and some that do not.
    fn text() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop::sample::select(vec![
                'a', 'Z', '0', '.', '_', '-', ':', '|', ',', '#', '@', '\n', ' ', 'é', '日',
                '\u{0}', '{', 'e', '+',
            ]),
            0..8,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    const KINDS: [(MetricType, &str); 6] = [
        (Counter, "c"),
        (Gauge, "g"),
        (Timer, "ms"),
        (Histogram, "h"),
        (Distribution, "d"),
        (Set, "s"),
    ];

    proptest! {
        /// The fuzz target `statsd_lines` checks more fields for longer; this is its core,
        /// run with the unit tests.
        #[test]
        fn any_line_written_reads_back_as_one_metric_of_its_type_or_is_refused(
            name in text(),
            member in text(),
            number in prop_oneof![any::<f64>(), Just(-1.0), Just(0.5)],
            pick in 0..4u8,
            kind in 0..6usize,
            tags in proptest::collection::vec((text(), text()), 0..3),
            dogstatsd in any::<bool>(),
        ) {
            let dialect = if dogstatsd { Dialect::DogStatsd } else { Dialect::Statsd };
            let value = match pick {
                0 => Float(number),
                1 => GaugeDelta(number),
                #[allow(clippy::cast_possible_truncation, reason = "any integer will do")]
                2 => Integer(number as i64),
                _ => Text(&member),
            };
            let (kind, symbol) = KINDS[kind];
            let tags: Vec<(&str, &str)> = tags.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let mut out = Vec::new();
            if MetricLine::new(&name, value, kind).tags(&tags).encode(dialect, &mut out).is_err() {
                prop_assert!(out.is_empty());
                return Ok(());
            }
            let text = String::from_utf8(out).unwrap();
            let lines: Vec<&str> = text.strip_suffix('\n').unwrap().split('\n').collect();
            prop_assert!(lines.len() == 1 || (lines.len() == 2 && kind == Gauge && !dogstatsd));
            for line in lines {
                let (got_name, rest) = line.split_once(':').unwrap();
                prop_assert_eq!(got_name, name.as_str());
                let fields: Vec<&str> = rest.split('|').collect();
                prop_assert!(!fields[0].is_empty() && !fields[0].contains(':'));
                prop_assert_eq!(fields[1], symbol);
                let tag_fields = fields[2..].iter().filter(|f| f.starts_with('#')).count();
                prop_assert_eq!(tag_fields, usize::from(!tags.is_empty()));
                prop_assert_eq!(fields.len(), 2 + tag_fields);
            }
        }
    }
}
