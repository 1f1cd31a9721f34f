//! The inputs and outputs of the fuzzing entry points: plain data, built by the fuzz targets
//! and the property tests, read back by their checkers.

use std::ops::Range;

use super::{Cardinality, CounterMode, GraphiteTags, HistogramKind, LabelHandling, Unit};

/// One series' interval data, as the aggregate hands it to the flusher.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A counter's delta (or running total for Graphite's total mode).
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// The samples a histogram kept this interval; `recorded` is how many were recorded
    /// (raised to `samples.len()` when lower, as the aggregate guarantees), `unit` the unit
    /// the histogram was described with.
    Histogram {
        /// Kept samples, in any order.
        samples: Vec<f64>,
        /// How many samples were recorded.
        recorded: u64,
        /// The histogram's unit (time units convert to milliseconds for timers).
        unit: Unit,
    },
    /// An explicit Graphite point (the direct client): a value with its own timestamp. The
    /// StatsD dialects have no such thing and encode it as a gauge of `value`.
    Point {
        /// The value.
        value: f64,
        /// Unix seconds.
        timestamp: u64,
    },
    /// A set's members as the user inserted them this interval (raw: unsanitised, possibly
    /// empty or repeated). The entry points clean them as the flusher does (an empty member
    /// refused and counted invalid, the others sanitised, sorted and deduped exactly) before
    /// encoding; a set left with no member writes nothing.
    Set(Vec<String>),
}

/// One series: a metric name, its labels in the order given, and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The metric name as recorded.
    pub name: String,
    /// `(key, value)` labels as recorded; keys may repeat.
    pub labels: Vec<(String, String)>,
    /// The interval's value.
    pub value: Value,
}

/// How payloads are framed (see the transports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// UDP and Unix datagrams: lines separated by `\n`, none after the last.
    Datagram,
    /// TCP and Unix streams: every line ends with `\n`.
    Stream,
    /// DogStatsD over a Unix stream: like `Stream` in the payload, counted as `Datagram`.
    LengthPrefixed,
}

/// Settings every protocol has.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    /// The name prefix, if any.
    pub prefix: Option<String>,
    /// Global labels, in the order given (the last given wins for a repeated key).
    pub global_labels: Vec<(String, String)>,
    /// Largest payload in bytes (the builder accepts 64 and up).
    pub max_payload_len: usize,
    /// How payloads are framed.
    pub framing: Framing,
    /// The flush time, Unix seconds.
    pub unix_secs: u64,
}

/// Plain StatsD settings.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsdOptions {
    /// Shared settings.
    pub common: Common,
    /// Fold label values into the name, or drop labels.
    pub labels: LabelHandling,
    /// The default histogram kind (the builder refuses `Distribution` for plain StatsD).
    pub histogram: HistogramKind,
    /// Per-name-prefix histogram kinds; the longest matching prefix wins.
    pub histogram_by_prefix: Vec<(String, HistogramKind)>,
    /// Whether each series' kind goes in its name after the prefix (`counters.`, `gauges.`,
    /// `timers.`, `histograms.`), as `with_type_prefixes` sets it.
    pub type_prefixes: bool,
}

/// DogStatsD settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DogStatsdOptions {
    /// Shared settings.
    pub common: Common,
    /// The default histogram kind.
    pub histogram: HistogramKind,
    /// Per-name-prefix histogram kinds; the longest matching prefix wins.
    pub histogram_by_prefix: Vec<(String, HistogramKind)>,
    /// The container id sent as `|c:`, if any.
    pub container: Option<String>,
    /// Whether counters and gauges carry `|T<unix_secs>`.
    pub timestamps: bool,
    /// External data sent as `|e:` (sanitised; nothing left means no field), if any.
    pub external: Option<String>,
    /// Tag cardinality sent as `|card:`, if any.
    pub cardinality: Option<Cardinality>,
}

/// Graphite settings (plaintext and pickle).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphiteOptions {
    /// Shared settings.
    pub common: Common,
    /// How labels appear in paths.
    pub tags: GraphiteTags,
    /// Counter deltas or running totals.
    pub counters: CounterMode,
    /// Seconds timestamps are aligned down to (0: none).
    pub align_secs: u64,
    /// Quantiles in `(0, 1]` reported per histogram; the builder rejects others, and
    /// quantiles whose suffixes collide.
    pub percentiles: Vec<f64>,
    /// Whether carbon names tagged files after a hash (`TAG_HASH_FILENAMES`), which decides
    /// how far tagged names are shortened.
    pub tag_hash_filenames: bool,
}

/// What one flush's encoding did, in total or for one series.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Lines committed to a payload.
    pub lines: u64,
    /// Values in those lines.
    pub values: u64,
    /// Values dropped as unsendable (NaN, infinities, negative timers, an overflowing sum).
    pub invalid_values: u64,
    /// Values dropped because their line is longer than the limit.
    pub too_long: u64,
    /// Values dropped because the series' name has nothing usable left.
    pub unnamed: u64,
}

/// One payload: its bytes as the transport sends them and its line count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Lines in it.
    pub lines: u32,
}

/// What one series produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesOutcome {
    /// Whether its name had anything usable left.
    pub sendable: bool,
    /// Its lines, as indices into the concatenated lines of all payloads, in order.
    pub lines: Range<u64>,
    /// Its share of the tally.
    pub tally: Tally,
}

/// Everything one flush's encoding produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The payloads, in sending order.
    pub payloads: Vec<Payload>,
    /// One outcome per input series, in input order.
    pub series: Vec<SeriesOutcome>,
    /// The totals.
    pub tally: Tally,
}

/// Graphite pickle output: the plaintext the flusher encodes first, and the frames it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickleEncoded {
    /// The plaintext payloads and tallies (stream framing).
    pub plaintext: Encoded,
    /// For each plaintext payload, its frames as sent (4-byte big-endian length, pickle).
    pub frames: Vec<Vec<u8>>,
}
