//! Property tests through every encoder with hostile input: names, label keys and values from
//! all of Unicode, control characters, every protocol's separators, empty strings and strings
//! up to 10 kB; values NaN, ±inf, subnormals, huge, -0.0; counters, gauges, Graphite points and
//! histograms; sets of hostile, empty and repeated members; DogStatsD origin fields; any
//! payload limit and framing.
//!
//! Each case runs one flush's encoding through `crate::fuzzing` (the same entry points the
//! cargo-fuzz targets in `fuzz/` use) and hands the result to `encoder_oracle`, which checks it
//! against the spec parsers in `tests/support/` and a model of the documented naming rules: no
//! panic, no payload over its limit, every line exactly one metric of the intended name, type
//! and tags (nothing injected), and every value sent or counted as dropped exactly once.
//!
//! Cases per property: `PROPTEST_CASES`, or 192 by default (about 9 s of CPU for the four in a
//! debug build: 5 s of wall time on the idle 2-core machine). Raise it for a longer search,
//! the stable-toolchain fallback should `cargo fuzz` be unavailable:
//! `PROPTEST_CASES=20000 cargo test --release --lib encode::fuzz_tests`.

use proptest::prelude::*;
use proptest::sample::select;

use crate::fuzzing::{
    self, Cardinality, Common, CounterMode, DogStatsdOptions, Framing, GraphiteOptions,
    GraphiteTags, HistogramKind, Series, StatsdOptions, Unit, Value,
};

// Also loaded by `dogstatsd_tests.rs`; a second copy keeps both test modules self-contained.
#[allow(
    clippy::duplicate_mod,
    reason = "test support shared by two test modules"
)]
#[path = "../../tests/support/dogstatsd_parser.rs"]
mod dogstatsd_parser;
#[path = "../../tests/support/encoder_oracle.rs"]
mod encoder_oracle;
#[path = "../../tests/support/graphite_parser.rs"]
mod graphite_parser;
#[path = "../../tests/support/pickle_parser.rs"]
mod pickle_parser;
#[path = "../../tests/support/statsd_parser.rs"]
mod statsd_parser;

use crate::fuzzing::HOSTILE_CHARS;

/// Texts that mean something to some protocol on their own.
const SPECIAL: &[&str] = &[
    "", "name", "name_", "~", "~x", ".", "..", ":", "a:", "::", "#", "|", ",", "\n", "@", "=", ";",
    "c:x", "T1", "@0.5", "#k:v", "a;k=v", "a b 1", "-", "_",
];

fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![3 => select(HOSTILE_CHARS), 1 => any::<char>()]
}

/// Hostile text: mostly short, sometimes empty, special or up to 10 kB.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9_.]{1,12}",
        4 => proptest::collection::vec(hostile_char(), 0..16).prop_map(String::from_iter),
        2 => any::<String>(),
        1 => select(SPECIAL).prop_map(String::from),
        1 => (proptest::collection::vec(hostile_char(), 1..8), 1..=10_000usize).prop_map(
            |(piece, len)| {
                let piece = String::from_iter(piece);
                let mut long = piece.repeat(len / piece.len() + 1);
                let mut cut = len.min(long.len());
                while !long.is_char_boundary(cut) {
                    cut -= 1;
                }
                long.truncate(cut);
                long
            }
        ),
    ]
}

fn labels(max: usize) -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((text(), text()), 0..max)
}

/// Floats of every class: NaN, infinities, zeros of both signs, subnormals, huge, ordinary.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => any::<f64>(),
        2 => select(&[
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            5e-324,
            -5e-324,
            f64::MIN_POSITIVE / 3.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::MIN,
            1e300,
            -1e300,
            9_007_199_254_740_992.0,
            9_007_199_254_740_994.0,
            1e-7,
            0.1,
            12.5,
        ][..]),
        2 => -1e6..1e6f64,
        1 => 0.0..1e-3f64,
    ]
}

fn value() -> impl Strategy<Value = Value> {
    let counter = prop_oneof![any::<u64>(), Just(0), Just(u64::MAX), 0..1000u64];
    let unit = select(
        &[
            Unit::Seconds,
            Unit::Milliseconds,
            Unit::Microseconds,
            Unit::Nanoseconds,
            Unit::Count,
            Unit::Bytes,
        ][..],
    );
    let extra = prop_oneof![4 => Just(0), 2 => 0..100u64, 1 => Just(u64::MAX)];
    prop_oneof![
        2 => counter.prop_map(Value::Counter),
        2 => float().prop_map(Value::Gauge),
        1 => (float(), any::<u64>()).prop_map(|(value, timestamp)| Value::Point { value, timestamp }),
        3 => (proptest::collection::vec(float(), 0..40), extra, unit).prop_map(
            |(samples, extra, unit)| Value::Histogram {
                recorded: (samples.len() as u64).saturating_add(extra),
                samples,
                unit,
            }
        ),
        // Members as inserted: hostile, empty, repeated, some that sanitise alike.
        2 => proptest::collection::vec(
            prop_oneof![3 => text(), 1 => select(&["a", "a:", "a|", "a\n", "", "b"][..]).prop_map(String::from)],
            0..12,
        )
        .prop_map(Value::Set),
    ]
}

fn series() -> impl Strategy<Value = Vec<Series>> {
    proptest::collection::vec(
        (text(), labels(4), value()).prop_map(|(name, labels, value)| Series {
            name,
            labels,
            value,
        }),
        1..16,
    )
}

fn common(framings: &'static [Framing]) -> impl Strategy<Value = Common> {
    (
        proptest::option::of(text()),
        labels(3),
        prop_oneof![
            2 => 64..300usize,
            2 => 300..2000usize,
            1 => select(&[64, 1432, 8192, 65_507, 1 << 20][..]),
        ],
        select(framings),
        prop_oneof![1..=u64::from(u32::MAX), Just(u64::MAX)],
    )
        .prop_map(
            |(prefix, global_labels, max_payload_len, framing, unix_secs)| Common {
                prefix,
                global_labels,
                max_payload_len,
                framing,
                unix_secs,
            },
        )
}

/// Per-name-prefix histogram kinds, one rule per prefix (the builder keeps the last).
fn histogram_rules(
    kinds: &'static [HistogramKind],
) -> impl Strategy<Value = Vec<(String, HistogramKind)>> {
    proptest::collection::vec(
        (
            select(&["", "a", "ab", "h", "x.", "\u{e9}"][..]),
            select(kinds),
        ),
        0..3,
    )
    .prop_map(|mut rules| {
        rules.dedup_by(|a, b| a.0 == b.0);
        let mut seen = Vec::new();
        rules.retain(|(p, _)| {
            let new = !seen.contains(p);
            seen.push(*p);
            new
        });
        rules.into_iter().map(|(p, k)| (p.to_owned(), k)).collect()
    })
}

/// UDP, TCP and Unix streams; length-prefixed frames are DogStatsD over a Unix stream only.
const LINE_FRAMINGS: &[Framing] = &[Framing::Datagram, Framing::Stream];
const DD_FRAMINGS: &[Framing] = &[Framing::Datagram, Framing::Stream, Framing::LengthPrefixed];
const STATSD_KINDS: &[HistogramKind] = &[HistogramKind::Timer, HistogramKind::Histogram];
const DD_KINDS: &[HistogramKind] = &[
    HistogramKind::Timer,
    HistogramKind::Histogram,
    HistogramKind::Distribution,
];

/// Quantiles whose suffixes are all distinct (the builder refuses colliding ones), ascending
/// (the builder sorts them).
const QUANTILES: &[f64] = &[0.001, 0.05, 0.123, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0];

fn statsd_options() -> impl Strategy<Value = StatsdOptions> {
    (
        common(LINE_FRAMINGS),
        select(&fuzzing::LABEL_STYLES[..]),
        select(STATSD_KINDS),
        histogram_rules(STATSD_KINDS),
        any::<bool>(),
    )
        .prop_map(
            |(common, labels, histogram, histogram_by_prefix, type_prefixes)| StatsdOptions {
                common,
                labels,
                histogram,
                histogram_by_prefix,
                type_prefixes,
            },
        )
}

fn dogstatsd_options() -> impl Strategy<Value = DogStatsdOptions> {
    (
        common(DD_FRAMINGS),
        select(DD_KINDS),
        histogram_rules(DD_KINDS),
        proptest::option::of(text()),
        any::<bool>(),
        proptest::option::of(text()),
        proptest::option::of(select(
            &[
                Cardinality::None,
                Cardinality::Low,
                Cardinality::Orchestrator,
                Cardinality::High,
            ][..],
        )),
    )
        .prop_map(
            |(
                common,
                histogram,
                histogram_by_prefix,
                container,
                timestamps,
                external,
                cardinality,
            )| {
                DogStatsdOptions {
                    common,
                    histogram,
                    histogram_by_prefix,
                    container,
                    timestamps,
                    external,
                    cardinality,
                }
            },
        )
}

fn graphite_options() -> impl Strategy<Value = GraphiteOptions> {
    (
        common(LINE_FRAMINGS),
        select(
            &[
                GraphiteTags::Tagged,
                GraphiteTags::FoldKeyValues,
                GraphiteTags::FoldValues,
            ][..],
        ),
        select(&[CounterMode::Delta, CounterMode::Total][..]),
        prop_oneof![Just(0), 1..=3600u64],
        proptest::sample::subsequence(QUANTILES, 0..=5),
        any::<bool>(),
    )
        .prop_map(
            |(common, tags, counters, align_secs, percentiles, tag_hash_filenames)| {
                GraphiteOptions {
                    common,
                    tags,
                    counters,
                    align_secs,
                    percentiles,
                    tag_hash_filenames,
                }
            },
        )
}

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(192);
    ProptestConfig {
        cases,
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    }
}

fn plain_common(framing: Framing) -> Common {
    Common {
        prefix: None,
        global_labels: Vec::new(),
        max_payload_len: 1432,
        framing,
        unix_secs: 1_700_000_000,
    }
}

fn counter(name: &str, labels: &[(&str, &str)]) -> Series {
    Series {
        name: name.to_owned(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        value: Value::Counter(1),
    }
}

#[test]
fn a_graphite_tag_key_is_never_sent_twice_even_when_two_label_keys_sanitise_alike() {
    let options = GraphiteOptions {
        common: plain_common(Framing::Stream),
        tags: GraphiteTags::Tagged,
        counters: CounterMode::Delta,
        align_secs: 0,
        percentiles: Vec::new(),
        tag_hash_filenames: true,
    };
    for labels in [
        &[("a b", "1"), ("a_b", "2")][..],
        &[("|", "A"), (",", "B")],
        &[("name", "x"), ("name_", "y")],
    ] {
        let series = [counter("m", labels)];
        let out = fuzzing::graphite(&options, &series);
        let text = String::from_utf8_lossy(&out.payloads[0].bytes).into_owned();
        assert_eq!(
            encoder_oracle::check_graphite(&options, &series, &out).map(drop),
            Ok(()),
            "{labels:?} sent as {text:?}"
        );
    }
}

#[test]
fn an_empty_container_id_never_writes_an_empty_field() {
    let options = DogStatsdOptions {
        common: plain_common(Framing::Datagram),
        histogram: HistogramKind::Distribution,
        histogram_by_prefix: Vec::new(),
        container: Some(String::new()),
        timestamps: false,
        external: None,
        cardinality: None,
    };
    let series = [counter("m", &[])];
    let out = fuzzing::dogstatsd(&options, &series);
    let text = String::from_utf8_lossy(&out.payloads[0].bytes).into_owned();
    assert_eq!(
        encoder_oracle::check_dogstatsd(&options, &series, &out),
        Ok(()),
        "sent as {text:?}"
    );
}

#[test]
fn the_spec_parsers_pass_their_own_checks() {
    statsd_parser::self_check();
    dogstatsd_parser::self_check();
    graphite_parser::self_check();
    pickle_parser::self_check();
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_statsd_line_is_one_metric_of_its_series_and_every_value_is_sent_or_counted(
        options in statsd_options(),
        series in series(),
    ) {
        let out = fuzzing::statsd(&options, &series);
        let checked = encoder_oracle::check_statsd(&options, &series, &out);
        prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
    }

    #[test]
    fn every_dogstatsd_line_is_one_metric_of_its_series_and_every_value_is_sent_or_counted(
        options in dogstatsd_options(),
        series in series(),
    ) {
        let out = fuzzing::dogstatsd(&options, &series);
        let checked = encoder_oracle::check_dogstatsd(&options, &series, &out);
        prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
    }

    #[test]
    fn every_graphite_line_is_one_point_of_its_series_and_every_value_is_sent_or_counted(
        options in graphite_options(),
        series in series(),
    ) {
        let out = fuzzing::graphite(&options, &series);
        let checked = encoder_oracle::check_graphite(&options, &series, &out);
        prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
    }

    #[test]
    fn every_pickle_frame_holds_exactly_its_payloads_points_as_str_int_float_tuples(
        options in graphite_options(),
        series in series(),
    ) {
        let out = fuzzing::graphite_pickle(&options, &series);
        let checked = encoder_oracle::check_pickle(&options, &series, &out);
        prop_assert!(checked.is_ok(), "{}", checked.unwrap_err());
    }
}
