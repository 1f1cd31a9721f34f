//! Encoders: metric values to wire bytes, pure functions over caller-owned buffers.
//!
//! Nothing in this module does I/O, reads a clock or spawns anything; the flusher passes in
//! the values, names and buffers. Names are rendered once per series (when the flusher first
//! sees it) and reused as bytes on every flush, so a warm flush only formats numbers.

mod buffer;
mod number;
pub(crate) mod sanitize;
mod statsd;

pub(crate) use buffer::{Framing, PayloadWriter};
pub use statsd::{HistogramKind, LabelHandling};
pub(crate) use statsd::{SampleUnit, StatsdEncoder};

/// What one flush's encoding did, line by line. Every point handed to an encoder ends up in
/// exactly one of these fields.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EncodeTally {
    /// Lines committed to a payload.
    pub(crate) lines: u64,
    /// Values that cannot be sent (NaN, infinities, negative timers): dropped.
    pub(crate) invalid_values: u64,
    /// Lines longer than the payload limit on their own: dropped.
    pub(crate) too_long: u64,
}

/// The encoder for the configured protocol. An enum, not a trait object: the set of
/// protocols is closed and known at build time.
#[derive(Debug)]
pub(crate) enum Encoder {
    /// Plain (Etsy) StatsD.
    Statsd(StatsdEncoder),
}

impl Encoder {
    /// Renders the series name for `key` into `out` (cleared first). Returns `false` when
    /// nothing usable is left after sanitising, in which case the series is never sent.
    pub(crate) fn render_name(&self, key: &metrics::Key, out: &mut Vec<u8>) -> bool {
        match self {
            Self::Statsd(e) => e.render_name(key, out),
        }
    }

    /// Whether `line` must travel with the line before it, `prev` (see
    /// `statsd::continues_chunk`). Used when stream lines are re-sent or dropped.
    pub(crate) fn continues_chunk(&self, prev: &[u8], line: &[u8]) -> bool {
        match self {
            Self::Statsd(_) => statsd::continues_chunk(prev, line),
        }
    }

    /// Encodes one counter delta.
    pub(crate) fn counter(
        &self,
        name: &[u8],
        delta: u64,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        match self {
            Self::Statsd(e) => e.counter(name, delta, w, t),
        }
    }

    /// Encodes one gauge value.
    pub(crate) fn gauge(
        &self,
        name: &[u8],
        value: f64,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        match self {
            Self::Statsd(e) => e.gauge(name, value, w, t),
        }
    }

    /// Encodes the samples one histogram kept this interval; `rate` is the fraction of the
    /// recorded samples that were kept (1.0 when none were sampled out).
    pub(crate) fn histogram(
        &self,
        name: &[u8],
        samples: &[f64],
        rate: f64,
        unit: SampleUnit,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        match self {
            Self::Statsd(e) => e.histogram(name, samples, rate, unit, w, t),
        }
    }
}
