//! Pure entry points into the encoders, for `cargo fuzz` and the property tests. Not part of
//! the public API: compiled only with the `fuzzing` feature (and in this crate's own tests),
//! hidden from the docs, and free to change in any release.
//!
//! Each function runs one flush's encoding the way the flusher does it, minus the aggregation
//! and the I/O: every series is rendered once for its kind (`Encoder::render_series`) and its
//! value goes through `encode::encode_series` into one payload writer, the very step the
//! flusher runs (a name with nothing usable left is counted as unnamed there), and the writer
//! is finished. A set's raw members first go through what the flusher does to them: a set
//! cell (empty members refused and counted invalid, the others sanitised) and the flusher's
//! `distinct_members`; a set left with no member is not encoded, as in the flusher. Graphite
//! points take the direct client's path instead. What comes back is every payload, the tally of
//! what was written and what was dropped, and for each series which lines it produced, so a
//! checker can tie every line to the series that was recorded.
//!
//! Nothing here does I/O, reads a clock or panics on any input.

use metrics::{Key, Label};

pub use crate::encode::{Cardinality, CounterMode, GraphiteTags, HistogramKind, LabelHandling};
pub use metrics::Unit;

mod types;
pub use types::{
    Common, DogStatsdOptions, Encoded, Framing, GraphiteOptions, Payload, PickleEncoded, Series,
    SeriesOutcome, StatsdOptions, Tally, Value,
};

use crate::aggregate::{SetCell, distinct_members};
use crate::encode::{
    self, DogStatsdEncoder, EncodeTally, Encoder, GraphiteEncoder, HistogramRules, PayloadWriter,
    PickleWire, Rendered, SampleUnit, SeriesKind, SeriesValue, SlotCarry, StatsdEncoder,
    encode_series,
};

/// Carbon's pickle frame limit we write to (the same as the exporter's).
pub const MAX_PICKLE_FRAME: usize = encode::MAX_PICKLE_FRAME;

/// Largest plaintext payload turned into one pickle frame (the same as the exporter's).
pub const MAX_PICKLE_PAYLOAD: usize = 512 * 1024;

/// Encodes `series` as plain StatsD.
pub fn statsd(options: &StatsdOptions, series: &[Series]) -> Encoded {
    let c = &options.common;
    let encoder = Encoder::Statsd(
        StatsdEncoder::new(
            c.prefix.as_deref(),
            options.labels,
            labels(&c.global_labels),
            rules(options.histogram, &options.histogram_by_prefix),
        )
        .with_type_prefixes(options.type_prefixes),
    );
    run(c, series, &encoder)
}

/// Encodes `series` as DogStatsD.
pub fn dogstatsd(options: &DogStatsdOptions, series: &[Series]) -> Encoded {
    let c = &options.common;
    let encoder = Encoder::DogStatsd(
        DogStatsdEncoder::new(
            c.prefix.as_deref(),
            labels(&c.global_labels),
            rules(options.histogram, &options.histogram_by_prefix),
            options.container.as_deref(),
            options.timestamps,
        )
        .with_origin_fields(options.external.as_deref(), options.cardinality),
    );
    run(c, series, &encoder)
}

/// Encodes `series` as Graphite plaintext.
pub fn graphite(options: &GraphiteOptions, series: &[Series]) -> Encoded {
    let c = &options.common;
    let encoder = Encoder::Graphite(GraphiteEncoder::new(
        c.prefix.as_deref(),
        labels(&c.global_labels),
        options.tags,
        options.counters,
        options.align_secs,
        &options.percentiles,
        options.tag_hash_filenames,
    ));
    run(c, series, &encoder)
}

/// Encodes `series` as Graphite plaintext with stream framing (the payload limit capped at
/// [`MAX_PICKLE_PAYLOAD`], as the builder caps it), then turns each payload into pickle
/// frames of at most [`MAX_PICKLE_FRAME`] bytes, as the flusher does for `graphite_pickle`.
pub fn graphite_pickle(options: &GraphiteOptions, series: &[Series]) -> PickleEncoded {
    let mut options = options.clone();
    options.common.framing = Framing::Stream;
    options.common.max_payload_len = options.common.max_payload_len.min(MAX_PICKLE_PAYLOAD);
    let plaintext = graphite(&options, series);
    let mut wire = PickleWire::new(MAX_PICKLE_FRAME);
    let frames = plaintext
        .payloads
        .iter()
        .map(|p| wire.encode(&p.bytes).to_vec())
        .collect();
    PickleEncoded { plaintext, frames }
}

/// The flusher's loop over series (`Flusher::walk_on`), with per-series bookkeeping.
fn run(common: &Common, series: &[Series], encoder: &Encoder) -> Encoded {
    let framing = match common.framing {
        Framing::Datagram => encode::Framing::Datagram,
        Framing::Stream => encode::Framing::Stream,
        Framing::LengthPrefixed => encode::Framing::LengthPrefixed,
    };
    let cx = encoder.context(common.unix_secs);
    let mut w = PayloadWriter::new(common.max_payload_len, framing);
    let mut t = EncodeTally::default();
    let mut unnamed = 0;
    let mut rendered = Rendered::default();
    let mut scratch = Vec::new();
    let mut members = Vec::new();
    let mut outcomes = Vec::with_capacity(series.len());
    for s in series {
        let key = Key::from_parts(s.name.clone(), labels(&s.labels));
        let before = t;
        let mut carry = SlotCarry::default();
        let own_unnamed = match (&s.value, encoder) {
            // The direct client's path (`GraphiteClient`), not the flusher's.
            (Value::Point { value, timestamp }, Encoder::Graphite(g)) => {
                encoder.render(&key, &mut rendered);
                if rendered.sendable() {
                    g.point(&rendered, *value, *timestamp, &mut w, &mut t);
                    0
                } else {
                    1
                }
            }
            // The flusher's path: the same render and encode step as `Flusher::walk_on`.
            (value, _) => {
                let value = match value {
                    Value::Counter(v) => SeriesValue::Counter(*v),
                    Value::Gauge(v) | Value::Point { value: v, .. } => SeriesValue::Gauge(*v),
                    Value::Histogram {
                        samples,
                        recorded,
                        unit,
                    } => {
                        scratch.clear();
                        scratch.extend_from_slice(samples);
                        SeriesValue::Histogram {
                            samples: &mut scratch,
                            recorded: (*recorded).max(samples.len() as u64),
                            unit: SampleUnit::from_unit(*unit),
                        }
                    }
                    Value::Set(raw) => {
                        let empty = set_members(raw, &mut members);
                        t.invalid_values += empty;
                        if members.is_empty() {
                            // The flusher encodes nothing for a set without a member.
                            encoder.render_series(SeriesKind::Set, &key, &mut rendered);
                            outcomes.push(outcome(&rendered, &before, &t, 0));
                            continue;
                        }
                        SeriesValue::Set(&members)
                    }
                };
                encoder.render_series(value.kind(), &key, &mut rendered);
                encode_series(encoder, &rendered, value, &mut carry, &cx, &mut w, &mut t)
            }
        };
        unnamed += own_unnamed;
        outcomes.push(outcome(&rendered, &before, &t, own_unnamed));
    }
    w.finish();
    let payloads = (0..w.len())
        .filter_map(|i| w.payload(i))
        .map(|(bytes, lines)| Payload {
            bytes: bytes.to_vec(),
            lines,
        })
        .collect();
    Encoded {
        payloads,
        series: outcomes,
        tally: Tally {
            lines: t.lines,
            values: t.values,
            invalid_values: t.invalid_values,
            too_long: t.too_long,
            unnamed,
        },
    }
}

/// One series' share of the tally, `before` being the tally before it.
fn outcome(r: &Rendered, before: &EncodeTally, t: &EncodeTally, unnamed: u64) -> SeriesOutcome {
    SeriesOutcome {
        sendable: r.sendable(),
        lines: before.lines..t.lines,
        tally: Tally {
            lines: t.lines - before.lines,
            values: t.values - before.values,
            invalid_values: t.invalid_values - before.invalid_values,
            too_long: t.too_long - before.too_long,
            unnamed,
        },
    }
}

/// A set's raw members through what the flusher runs on them: a set cell (which refuses
/// empty members and sanitises the others) drained into `out`, then the flusher's exact
/// dedup. Returns how many members were refused as empty. The cell is big enough that its
/// cap never refuses one, and keeps members of any length: the flusher's cells refuse one
/// longer than the payload limit at insert (`SetCell::with_max_member_len`, unit-tested in
/// `aggregate::set`), which only moves that refusal earlier than the encoder's too-long drop
/// this path checks.
fn set_members(raw: &[String], out: &mut Vec<String>) -> u64 {
    out.clear();
    let cell = SetCell::new(raw.len());
    for member in raw {
        cell.insert(member);
    }
    let drained = cell.drain_into(out);
    distinct_members(out);
    drained.empty
}

fn labels(pairs: &[(String, String)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(k, v)| Label::new(k.clone(), v.clone()))
        .collect()
}

fn rules(default: HistogramKind, by_prefix: &[(String, HistogramKind)]) -> HistogramRules {
    HistogramRules {
        default,
        by_prefix: by_prefix.to_vec(),
    }
}

/// Every plain StatsD label handling: folded (values, or keys and values), dropped, and the
/// five tag styles. The property tests and the fuzz target pick among all of them.
pub const LABEL_STYLES: [LabelHandling; 8] = [
    LabelHandling::FoldIntoName,
    LabelHandling::FoldKeyValues,
    LabelHandling::Drop,
    LabelHandling::DogStatsd,
    LabelHandling::InfluxDb,
    LabelHandling::Librato,
    LabelHandling::SignalFx,
    LabelHandling::Graphite,
];

/// Characters that break naive encoders: every protocol's separators, whitespace, control
/// characters, and non-ASCII up to the last code point. Shared by the property tests and the
/// cargo-fuzz targets, which draw text from it.
pub const HOSTILE_CHARS: &[char] = &[
    'a',
    'Z',
    '0',
    '_',
    '-',
    '.',
    ':',
    '|',
    '@',
    '#',
    ',',
    ';',
    '=',
    '!',
    '^',
    '~',
    ' ',
    '\n',
    '\r',
    '\t',
    '/',
    '\\',
    '(',
    ')',
    '[',
    ']',
    '{',
    '}',
    '*',
    '?',
    '\'',
    '"',
    '+',
    '%',
    '&',
    '$',
    '\0',
    '\u{1}',
    '\u{1b}',
    '\u{1f}',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{e9}',
    '\u{2028}',
    '\u{feff}',
    '\u{65e5}',
    '\u{1f600}',
    '\u{10ffff}',
];
