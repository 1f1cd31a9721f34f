//! Structured fuzz input for the encoders (built with `arbitrary` from libFuzzer's bytes) and
//! the checks each fuzz target runs on the output: the same spec parsers and model of the
//! naming rules as the property tests in `src/encode/fuzz_tests.rs`, included from
//! `tests/support/`, so a crash here is a broken wire-format property, not only a panic.

use arbitrary::Arbitrary;
pub use metrics_exporter_statsd_graphite::fuzzing;
use metrics_exporter_statsd_graphite::fuzzing::{
    Cardinality, Common, CounterMode, DogStatsdOptions, Framing, GraphiteOptions, GraphiteTags,
    HistogramKind, Series, StatsdOptions, Unit, Value,
};

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

use fuzzing::HOSTILE_CHARS as HOSTILE;

mod events;
mod lines;
mod points;
pub use events::{EventInput, events};
pub use lines::{LineInput, lines};
pub use points::{PointsInput, graphite_points};

/// Floats of every class that bit patterns alone reach rarely.
const SPECIAL_FLOATS: &[f64] = &[
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    1e300,
    -1e300,
    9_007_199_254_740_992.0,
    1e-7,
    0.5,
    12.5,
];

/// Text: raw UTF-8, a string of hostile characters, or one repeated up to 10 kB.
#[derive(Debug, Arbitrary)]
pub enum Text {
    Raw(String),
    Hostile(Vec<u8>),
    Long(Vec<u8>, u16),
}

impl Text {
    pub(crate) fn get(&self) -> String {
        let hostile = |picks: &[u8]| -> String {
            picks
                .iter()
                .map(|&i| HOSTILE[usize::from(i) % HOSTILE.len()])
                .collect()
        };
        match self {
            Self::Raw(s) => s.clone(),
            Self::Hostile(picks) => hostile(picks),
            Self::Long(picks, len) => {
                let piece = hostile(picks);
                let len = usize::from(*len) % 10_001;
                piece.chars().cycle().take(len).collect()
            }
        }
    }
}

/// Any `f64`, by bit pattern or from the special table.
#[derive(Debug, Arbitrary)]
pub enum Float {
    Bits(u64),
    Special(u8),
    Small(i32),
}

impl Float {
    pub(crate) fn get(&self) -> f64 {
        match self {
            Self::Bits(b) => f64::from_bits(*b),
            Self::Special(i) => SPECIAL_FLOATS[usize::from(*i) % SPECIAL_FLOATS.len()],
            Self::Small(i) => f64::from(*i) / 1000.0,
        }
    }
}

#[derive(Debug, Arbitrary)]
pub enum ArbValue {
    Counter(u64),
    Gauge(Float),
    Point(Float, u64),
    Histogram(Vec<Float>, u8, u8),
    /// Raw members: any text, or one of a few short ones (so members repeat, and some
    /// sanitise alike or are empty).
    Set(Vec<Member>),
}

#[derive(Debug, Arbitrary)]
pub enum Member {
    Text(Text),
    Short(u8),
}

/// Members that repeat, are empty, or sanitise to the same `a_`.
const SHORT_MEMBERS: &[&str] = &["a", "a:", "a|", "a\n", "", "b", "\u{e9}"];

impl Member {
    fn get(&self) -> String {
        match self {
            Self::Text(t) => t.get(),
            Self::Short(i) => SHORT_MEMBERS[usize::from(*i) % SHORT_MEMBERS.len()].to_owned(),
        }
    }
}

#[derive(Debug, Arbitrary)]
pub struct ArbSeries {
    name: Text,
    labels: Vec<(Text, Text)>,
    value: ArbValue,
}

const UNITS: &[Unit] = &[
    Unit::Seconds,
    Unit::Milliseconds,
    Unit::Microseconds,
    Unit::Nanoseconds,
    Unit::Count,
    Unit::Bytes,
];

impl ArbSeries {
    fn get(&self) -> Series {
        let value = match &self.value {
            ArbValue::Counter(v) => Value::Counter(*v),
            ArbValue::Gauge(v) => Value::Gauge(v.get()),
            ArbValue::Point(value, timestamp) => Value::Point {
                value: value.get(),
                timestamp: *timestamp,
            },
            ArbValue::Histogram(samples, extra, unit) => {
                let samples: Vec<f64> = samples.iter().take(256).map(Float::get).collect();
                // Mostly all kept; sometimes sampled (a rate), rarely by a huge factor.
                let kept = samples.len() as u64;
                let recorded = match *extra {
                    255 => u64::MAX,
                    e @ 128.. => kept + u64::from(e - 128),
                    _ => kept,
                };
                Value::Histogram {
                    samples,
                    recorded,
                    unit: UNITS[usize::from(*unit) % UNITS.len()],
                }
            }
            ArbValue::Set(members) => {
                Value::Set(members.iter().take(64).map(Member::get).collect())
            }
        };
        Series {
            name: self.name.get(),
            labels: pairs(&self.labels, 6),
            value,
        }
    }
}

fn pairs(list: &[(Text, Text)], max: usize) -> Vec<(String, String)> {
    list.iter()
        .take(max)
        .map(|(k, v)| (k.get(), v.get()))
        .collect()
}

#[derive(Debug, Arbitrary)]
pub struct ArbCommon {
    prefix: Option<Text>,
    globals: Vec<(Text, Text)>,
    max_payload_len: u32,
    framing: u8,
    unix_secs: u64,
}

impl ArbCommon {
    fn get(&self, framings: &[Framing]) -> Common {
        let max_payload_len = match self.max_payload_len % 8 {
            0 => 64,
            1 => 1432,
            2 => 8192,
            3 => 65_507,
            _ => 64 + (self.max_payload_len / 8 % 4000) as usize,
        };
        Common {
            prefix: self.prefix.as_ref().map(Text::get),
            global_labels: pairs(&self.globals, 4),
            max_payload_len,
            framing: framings[usize::from(self.framing) % framings.len()],
            // The flusher's clock is never at 0 (DogStatsD refuses `|T0`).
            unix_secs: self.unix_secs.max(1),
        }
    }
}

fn kind(i: u8, kinds: &[HistogramKind]) -> HistogramKind {
    kinds[usize::from(i) % kinds.len()]
}

fn rules(list: &[(Text, u8)], kinds: &[HistogramKind]) -> Vec<(String, HistogramKind)> {
    let mut out: Vec<(String, HistogramKind)> = Vec::new();
    for (prefix, k) in list.iter().take(3) {
        let prefix: String = prefix.get().chars().take(3).collect();
        if out.iter().all(|(p, _)| *p != prefix) {
            out.push((prefix, kind(*k, kinds)));
        }
    }
    out
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
/// Quantiles whose suffixes are all distinct (the builder refuses colliding ones), ascending.
const QUANTILES: &[f64] = &[0.001, 0.05, 0.123, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0];

fn series(list: &[ArbSeries]) -> Vec<Series> {
    list.iter().take(32).map(ArbSeries::get).collect()
}

/// Plain StatsD fuzz input.
#[derive(Debug, Arbitrary)]
pub struct StatsdInput {
    common: ArbCommon,
    /// Picks the label handling, among all seven styles.
    labels: u8,
    histogram: u8,
    rules: Vec<(Text, u8)>,
    /// `counters.`, `gauges.`, `timers.` or `histograms.` after the prefix.
    type_prefixes: bool,
    series: Vec<ArbSeries>,
}

/// DogStatsD fuzz input.
#[derive(Debug, Arbitrary)]
pub struct DogStatsdInput {
    common: ArbCommon,
    histogram: u8,
    rules: Vec<(Text, u8)>,
    container: Option<Text>,
    timestamps: bool,
    external: Option<Text>,
    /// `|card:`: none, or one of the four levels.
    cardinality: u8,
    series: Vec<ArbSeries>,
}

const CARDINALITIES: &[Option<Cardinality>] = &[
    None,
    Some(Cardinality::None),
    Some(Cardinality::Low),
    Some(Cardinality::Orchestrator),
    Some(Cardinality::High),
];

/// Graphite (plaintext or pickle) fuzz input.
#[derive(Debug, Arbitrary)]
pub struct GraphiteInput {
    common: ArbCommon,
    tags: u8,
    total: bool,
    align_secs: u16,
    percentiles: u16,
    tag_hash_filenames: bool,
    series: Vec<ArbSeries>,
}

impl GraphiteInput {
    fn get(&self) -> (GraphiteOptions, Vec<Series>) {
        let tags = [
            GraphiteTags::Tagged,
            GraphiteTags::FoldKeyValues,
            GraphiteTags::FoldValues,
        ][usize::from(self.tags) % 3];
        let options = GraphiteOptions {
            common: self.common.get(LINE_FRAMINGS),
            tags,
            counters: if self.total {
                CounterMode::Total
            } else {
                CounterMode::Delta
            },
            align_secs: u64::from(self.align_secs),
            percentiles: QUANTILES
                .iter()
                .enumerate()
                .filter(|(i, _)| self.percentiles & (1 << i) != 0)
                .map(|(_, q)| *q)
                .collect(),
            tag_hash_filenames: self.tag_hash_filenames,
        };
        (options, series(&self.series))
    }
}

/// Encodes as plain StatsD and checks the output.
///
/// # Panics
/// On a broken property: that is the crash libFuzzer reports.
pub fn statsd(input: &StatsdInput) {
    let options = StatsdOptions {
        common: input.common.get(LINE_FRAMINGS),
        labels: fuzzing::LABEL_STYLES[usize::from(input.labels) % fuzzing::LABEL_STYLES.len()],
        histogram: kind(input.histogram, STATSD_KINDS),
        histogram_by_prefix: rules(&input.rules, STATSD_KINDS),
        type_prefixes: input.type_prefixes,
    };
    let series = series(&input.series);
    let out = fuzzing::statsd(&options, &series);
    if let Err(e) = encoder_oracle::check_statsd(&options, &series, &out) {
        panic!("{e}\noptions: {options:?}\nseries: {series:?}");
    }
}

/// Encodes as DogStatsD and checks the output.
///
/// # Panics
/// On a broken property: that is the crash libFuzzer reports.
pub fn dogstatsd(input: &DogStatsdInput) {
    let options = DogStatsdOptions {
        common: input.common.get(DD_FRAMINGS),
        histogram: kind(input.histogram, DD_KINDS),
        histogram_by_prefix: rules(&input.rules, DD_KINDS),
        container: input.container.as_ref().map(Text::get),
        timestamps: input.timestamps,
        external: input.external.as_ref().map(Text::get),
        cardinality: CARDINALITIES[usize::from(input.cardinality) % CARDINALITIES.len()],
    };
    let series = series(&input.series);
    let out = fuzzing::dogstatsd(&options, &series);
    if let Err(e) = encoder_oracle::check_dogstatsd(&options, &series, &out) {
        panic!("{e}\noptions: {options:?}\nseries: {series:?}");
    }
}

/// Encodes as Graphite plaintext and checks the output.
///
/// # Panics
/// On a broken property: that is the crash libFuzzer reports.
pub fn graphite(input: &GraphiteInput) {
    let (options, series) = input.get();
    let out = fuzzing::graphite(&options, &series);
    if let Err(e) = encoder_oracle::check_graphite(&options, &series, &out) {
        panic!("{e}\noptions: {options:?}\nseries: {series:?}");
    }
}

/// Encodes as Graphite pickle and checks the frames.
///
/// # Panics
/// On a broken property: that is the crash libFuzzer reports.
pub fn graphite_pickle(input: &GraphiteInput) {
    let (options, series) = input.get();
    let out = fuzzing::graphite_pickle(&options, &series);
    if let Err(e) = encoder_oracle::check_pickle(&options, &series, &out) {
        panic!("{e}\noptions: {options:?}\nseries: {series:?}");
    }
}
