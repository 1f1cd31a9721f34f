//! Encoders: metric values to wire bytes, pure functions over caller-owned buffers.
//!
//! Nothing in this module does I/O, reads a clock or spawns anything; the flusher passes in
//! the values, the time ([`FlushContext`]) and the buffers. Each series' constant parts (name,
//! tags) are rendered once, when the flusher first sees it ([`Rendered`]), and reused as bytes
//! on every flush, so a warm flush only formats numbers.

mod buffer;
mod cardinality;
mod dogstatsd;
mod event;
mod graphite;
mod graphite_message;
mod line;
mod number;
mod pickle;
mod rendered;
pub(crate) mod sanitize;
pub(crate) mod segment;
mod series;
mod set;
mod shared;
mod shorten;
mod statsd;
mod summary;

pub(crate) use buffer::{Framing, PayloadWriter, Point};
pub use cardinality::Cardinality;
pub(crate) use dogstatsd::{DogStatsdEncoder, sanitize_external};
pub use event::{AlertType, Event, EventPriority, ServiceCheck, ServiceCheckStatus};
pub(crate) use graphite::GraphiteEncoder;
pub use graphite::{CounterMode, GraphiteTags};
pub use graphite_message::GraphitePoints;
pub(crate) use graphite_message::path_key;
pub use line::{Dialect, MetricLine, MetricType, MetricValue};
pub(crate) use line::{Parts, check_name};
pub(crate) use number::{Digits, wire_rate, write_f64};
pub(crate) use pickle::{MAX_PICKLE_FRAME, PickleWire};
pub(crate) use rendered::Rendered;
pub(crate) use series::{SeriesValue, encode_series};
pub(crate) use shared::SampleUnit;
pub use statsd::LabelHandling;
pub(crate) use statsd::{StatsdEncoder, continues_chunk as statsd_continues_chunk};
pub(crate) use summary::{SlotCarry, percentile_suffix};

use metrics::Key;

/// Which type histograms are sent as; the kind decides the unit on the wire
/// ([histogram units](crate#histogram-units)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HistogramKind {
    /// `|ms` timers, in milliseconds (converted from the histogram's time unit).
    #[default]
    Timer,
    /// `|h` histograms, values sent as recorded.
    Histogram,
    /// `|d` distributions (DogStatsD only), values sent as recorded; aggregated server-side
    /// across hosts, so percentiles are global.
    Distribution,
}

impl HistogramKind {
    fn suffix(self) -> &'static [u8] {
        match self {
            Self::Timer => b"|ms",
            Self::Histogram => b"|h",
            Self::Distribution => b"|d",
        }
    }
}

/// The histogram kind for each metric: a default plus per-name-prefix overrides (the
/// longest matching prefix wins).
#[derive(Debug, Clone, Default)]
pub(crate) struct HistogramRules {
    pub(crate) default: HistogramKind,
    pub(crate) by_prefix: Vec<(String, HistogramKind)>,
}

impl HistogramRules {
    pub(crate) fn kind_for(&self, name: &str) -> HistogramKind {
        self.by_prefix
            .iter()
            .filter(|(prefix, _)| name.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.default, |(_, kind)| *kind)
    }

    /// Every kind these rules can produce.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = HistogramKind> + '_ {
        std::iter::once(self.default).chain(self.by_prefix.iter().map(|(_, k)| *k))
    }
}

/// The tags of a series: `global` labels, then the metric's own, each key and value
/// sanitised by `key` and `value`; labels whose key is empty after sanitising are left out,
/// and when two keys are equal (as given, or once sanitised) the later wins, so a metric label
/// always beats a global one. Sorted by key, then value.
pub(crate) fn sanitized_tags(
    global: &[metrics::Label],
    metric: &Key,
    key: fn(&mut Vec<u8>, &str),
    value: fn(&mut Vec<u8>, &str),
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut tags: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for label in global.iter().chain(metric.labels()) {
        let (mut k, mut v) = (Vec::new(), Vec::new());
        key(&mut k, label.key());
        value(&mut v, label.value());
        if k.is_empty() {
            continue;
        }
        match tags.iter_mut().find(|(existing, _)| *existing == k) {
            Some(slot) => slot.1 = v,
            None => tags.push((k, v)),
        }
    }
    tags.sort();
    tags
}

/// Per-flush inputs that are not metric values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FlushContext {
    /// Wall-clock time of the flush, in Unix seconds.
    pub(crate) unix_secs: u64,
    /// The timestamp the encoder puts on this flush's lines, formatted once (see
    /// [`Encoder::context`]).
    pub(crate) stamp: Digits,
}

impl FlushContext {
    /// A flush at `unix_secs` with no text cached (every timestamp is formatted): for tests.
    /// The flusher's comes from [`Encoder::context`].
    #[cfg(test)]
    pub(crate) const fn at(unix_secs: u64) -> Self {
        Self {
            unix_secs,
            stamp: Digits::NONE,
        }
    }
}

/// What one flush's encoding did. Every value handed to an encoder ends up in exactly one of
/// `values`, `invalid_values` or `too_long`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EncodeTally {
    /// Lines committed to a payload.
    pub(crate) lines: u64,
    /// Values in those lines (a packed DogStatsD line carries several).
    pub(crate) values: u64,
    /// Values that cannot be sent (NaN, infinities, negative timers): dropped.
    pub(crate) invalid_values: u64,
    /// Values whose line is longer than the payload limit on its own: dropped.
    pub(crate) too_long: u64,
}

/// Appends a histogram line's type and, when samples were sampled out, its `|@rate`.
fn write_type_and_rate(buf: &mut Vec<u8>, kind: HistogramKind, rate: f64) {
    buf.extend_from_slice(kind.suffix());
    if rate < 1.0 {
        buf.extend_from_slice(b"|@");
        number::write_rate(buf, rate);
    }
}

/// The chunk rule of protocols whose chunks are single lines.
pub(crate) fn never_continues(_prev: &[u8], _line: &[u8]) -> bool {
    false
}

/// Commits the pending chunk of `lines` lines carrying `values` values, tallying the outcome.
#[inline]
fn commit(w: &mut PayloadWriter, lines: u32, values: u64, t: &mut EncodeTally) {
    match w.commit(lines) {
        Ok(()) => {
            t.lines += u64::from(lines);
            t.values += values;
        }
        Err(_) => t.too_long += values,
    }
}

/// The encoder for the configured protocol. An enum, not a trait object: the set of
/// protocols is closed and known at build time.
#[derive(Debug)]
pub(crate) enum Encoder {
    /// Plain (Etsy) StatsD.
    Statsd(StatsdEncoder),
    /// DogStatsD.
    DogStatsd(DogStatsdEncoder),
    /// Graphite plaintext.
    Graphite(GraphiteEncoder),
}

/// The kind of a series, for encoders whose names depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeriesKind {
    Counter,
    Gauge,
    Histogram,
    Set,
}

impl Encoder {
    /// Renders the constant parts of the series for `key` into `out` (overwritten).
    pub(crate) fn render(&self, key: &Key, out: &mut Rendered) {
        match self {
            Self::Statsd(e) => e.render(key, out),
            Self::DogStatsd(e) => e.render(key, out),
            Self::Graphite(e) => e.render(key, out),
        }
    }

    /// As [`render`](Self::render), for a series of a known kind (plain StatsD can put the
    /// kind in the name: `counters.`, `gauges.`, `timers.`).
    pub(crate) fn render_series(&self, kind: SeriesKind, key: &Key, out: &mut Rendered) {
        match self {
            Self::Statsd(e) => e.render_as(Some(kind), key, out),
            Self::DogStatsd(_) | Self::Graphite(_) => self.render(key, out),
        }
    }

    /// The receiver's namespace for a series of `kind` (histograms sent as `histogram`):
    /// series that render to the same name and tags are stored in one place at the receiver
    /// when their classes are equal (merged if of the same kind, see `flush::identity`).
    /// - Etsy statsd and collectd keep each type apart (`stats.counters.x`, `stats.gauges.x`,
    ///   `stats.timers.x`, `stats.sets.x`; collectd's `derive-x`, `gauge-x`, `latency-x`,
    ///   `objects-x`), except that Etsy takes `|h` and `|d` for counters: histograms sent so
    ///   share the counters' class.
    /// - The Datadog Agent keys a context by name and tags whatever the type (sets
    ///   included), except that distributions go to a pipeline of their own.
    /// - Carbon keeps one value per path and slot: a counter, a gauge and a set's count of
    ///   one path share it, while a histogram's values go to `name.count`, `name.p99`... (see
    ///   [`summary_suffixes`](Self::summary_suffixes)).
    pub(crate) fn name_class(&self, kind: SeriesKind, histogram: HistogramKind) -> u8 {
        match (self, kind) {
            (Self::Statsd(_), SeriesKind::Counter)
            | (Self::DogStatsd(_), SeriesKind::Counter | SeriesKind::Gauge | SeriesKind::Set) => 0,
            (Self::Statsd(_), SeriesKind::Set) => 3,
            (Self::Statsd(_), SeriesKind::Gauge) => 1,
            (Self::Statsd(_), SeriesKind::Histogram) => match histogram {
                HistogramKind::Timer => 2,
                HistogramKind::Histogram | HistogramKind::Distribution => 0,
            },
            (Self::DogStatsd(_), SeriesKind::Histogram) => {
                u8::from(histogram == HistogramKind::Distribution)
            }
            (Self::Graphite(_), kind) => u8::from(kind == SeriesKind::Histogram),
        }
    }

    /// The suffixes the receiver adds to a summarised histogram's name, each stored under a
    /// name of its own (so a counter named `x.count` and a histogram named `x` would share
    /// one): carbon stores our Graphite summaries, and the Datadog Agent turns each `|h` or
    /// `|ms` histogram into `x.count`, `x.avg`, `x.max`, `x.median` and `x.95percentile`
    /// (its default `histogram_aggregates` and `histogram_percentiles`). Etsy statsd keeps
    /// timers under `stats.timers.`: none for plain StatsD.
    pub(crate) fn summary_suffixes(&self) -> impl Iterator<Item = &[u8]> {
        const AGENT: [&[u8]; 5] = [b".count", b".avg", b".max", b".median", b".95percentile"];
        let (graphite, agent) = match self {
            Self::Graphite(e) => (Some(e.summary_suffixes()), None),
            Self::DogStatsd(_) => (None, Some(AGENT.into_iter())),
            Self::Statsd(_) => (None, None),
        };
        graphite
            .into_iter()
            .flatten()
            .chain(agent.into_iter().flatten())
    }

    /// Whether a histogram sent as `kind` is summarised under the names
    /// [`summary_suffixes`](Self::summary_suffixes) gives: always for Graphite; for
    /// DogStatsD unless it is a distribution (the Agent keeps those as sketches).
    pub(crate) fn summarizes(&self, kind: HistogramKind) -> bool {
        match self {
            Self::Graphite(_) => true,
            Self::DogStatsd(_) => kind != HistogramKind::Distribution,
            Self::Statsd(_) => false,
        }
    }

    /// Which line must travel with the line before it (the Etsy negative-gauge pair, see
    /// `statsd::continues_chunk`); used when stream lines are re-sent or dropped.
    pub(crate) fn chunk_rule(&self) -> fn(&[u8], &[u8]) -> bool {
        match self {
            Self::Statsd(_) => statsd::continues_chunk,
            Self::DogStatsd(_) | Self::Graphite(_) => never_continues,
        }
    }

    /// Whether flush ticks should start on wall-clock multiples of the interval (Graphite with
    /// aligned timestamps: one tick per carbon slot).
    pub(crate) fn aligns_ticks(&self) -> bool {
        matches!(self, Self::Graphite(e) if e.aligned())
    }

    /// The context of a flush at `unix_secs`, with the timestamp this encoder's lines carry
    /// formatted once: Graphite's (aligned to its slot unless configured otherwise), or the
    /// flush's own time (DogStatsD's `|T`).
    pub(crate) fn context(&self, unix_secs: u64) -> FlushContext {
        let stamp = match self {
            Self::Graphite(e) => e.stamp_secs(unix_secs),
            Self::Statsd(_) | Self::DogStatsd(_) => unix_secs,
        };
        FlushContext {
            unix_secs,
            stamp: Digits::of(stamp),
        }
    }

    /// How counters are reported: deltas everywhere, or running totals for Graphite by
    /// configuration.
    pub(crate) fn counter_mode(&self) -> CounterMode {
        match self {
            Self::Graphite(e) => e.counter_mode(),
            Self::Statsd(_) | Self::DogStatsd(_) => CounterMode::Delta,
        }
    }

    /// Encodes one counter value (a delta, or a running total for Graphite's total mode).
    #[inline]
    pub(crate) fn counter(
        &self,
        s: &Rendered,
        delta: u64,
        carry: &mut SlotCarry,
        cx: &FlushContext,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        match self {
            Self::Statsd(e) => e.counter(s, delta, w, t),
            Self::DogStatsd(e) => e.counter(s, delta, cx, w, t),
            Self::Graphite(e) => e.counter(s, delta, carry, cx, w, t),
        }
    }

    /// Encodes one gauge value.
    #[inline(never)]
    pub(crate) fn gauge(
        &self,
        s: &Rendered,
        value: f64,
        cx: &FlushContext,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        match self {
            Self::Statsd(e) => e.gauge(s, value, w, t),
            Self::DogStatsd(e) => e.gauge(s, value, cx, w, t),
            Self::Graphite(e) => e.gauge(s, value, cx, w, t),
        }
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "a dispatch to the encoders, forwarding what each needs"
    )]
    /// Encodes the samples one histogram kept this interval (reordered freely); `recorded`
    /// is how many were recorded, more than `samples` holds when the reservoir sampled.
    /// Out of line, like [`gauge`](Self::gauge): inlined, the histogram encoders grew the
    /// frame of `encode_series`, and every counter line paid for its prologue (20
    /// instructions a Graphite line, callgrind).
    #[inline(never)]
    pub(crate) fn histogram(
        &self,
        s: &Rendered,
        samples: &mut [f64],
        recorded: u64,
        unit: SampleUnit,
        carry: &mut SlotCarry,
        cx: &FlushContext,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        #[allow(
            clippy::cast_precision_loss,
            reason = "a sampling rate needs no more than f64 precision"
        )]
        let rate = if (samples.len() as u64) < recorded {
            samples.len() as f64 / recorded as f64
        } else {
            1.0
        };
        match self {
            Self::Statsd(e) => e.histogram(s, samples, rate, unit, w, t),
            Self::DogStatsd(e) => e.histogram(s, samples, rate, unit, w, t),
            Self::Graphite(e) => e.histogram(s, samples, recorded, carry, cx, w, t),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util;

#[cfg(test)]
mod fuzz_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_matching_prefix_picks_the_histogram_kind() {
        let rules = HistogramRules {
            default: HistogramKind::Distribution,
            by_prefix: vec![
                ("http.".into(), HistogramKind::Timer),
                ("http.size".into(), HistogramKind::Histogram),
            ],
        };
        assert_eq!(rules.kind_for("db.latency"), HistogramKind::Distribution);
        assert_eq!(rules.kind_for("http.latency"), HistogramKind::Timer);
        assert_eq!(rules.kind_for("http.size_bytes"), HistogramKind::Histogram);
    }
}
