//! One series' encode step: its interval value through the protocol's encoder into a
//! payload writer. The flusher (`Flusher::walk_on`) and the fuzz entry points
//! (`crate::fuzzing`) both call [`encode_series`], so the fuzzers run exactly what ships;
//! both render series with [`Encoder::render_series`], the kind coming from
//! [`SeriesValue::kind`].
//!
//! What to send (a counter delta or its running total, whether a zero delta is sent at all)
//! is the caller's policy; this step only encodes what it is given. Pure: no I/O, no clock.

#[cfg(any(test, feature = "fuzzing"))]
use super::SeriesKind;
use super::{EncodeTally, Encoder, FlushContext, PayloadWriter, Rendered, SampleUnit, SlotCarry};

/// One series' value for one flush, as the aggregate hands it over.
#[derive(Debug)]
pub(crate) enum SeriesValue<'a> {
    /// A counter's delta, or its running total for Graphite's total mode.
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// The samples a histogram kept this interval (reordered freely), how many were
    /// recorded (at least `samples.len()`), and their unit.
    Histogram {
        samples: &'a mut [f64],
        recorded: u64,
        unit: SampleUnit,
    },
    /// A set's distinct members this interval, sanitised, deduped and sorted.
    Set(&'a [String]),
}

impl SeriesValue<'_> {
    /// The kind of series this value belongs to, which some names depend on. The flusher
    /// knows each series' kind from the aggregate, so only the fuzz entry points need this.
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn kind(&self) -> SeriesKind {
        match self {
            Self::Counter(_) => SeriesKind::Counter,
            Self::Gauge(_) => SeriesKind::Gauge,
            Self::Histogram { .. } => SeriesKind::Histogram,
            Self::Set(_) => SeriesKind::Set,
        }
    }
}

/// Encodes `value` for the series rendered as `s` into `w`, tallying into `t`. A series whose
/// name has nothing usable left writes nothing; what is returned is how many values were
/// dropped for that reason (0 for a sendable series), for the caller's `unnamed` count.
#[inline]
pub(crate) fn encode_series(
    encoder: &Encoder,
    s: &Rendered,
    value: SeriesValue<'_>,
    carry: &mut SlotCarry,
    cx: &FlushContext,
    w: &mut PayloadWriter,
    t: &mut EncodeTally,
) -> u64 {
    if !s.sendable() {
        return match value {
            SeriesValue::Counter(_) | SeriesValue::Gauge(_) => 1,
            SeriesValue::Histogram { samples, .. } => samples.len() as u64,
            SeriesValue::Set(members) => members.len() as u64,
        };
    }
    match value {
        SeriesValue::Counter(v) => encoder.counter(s, v, carry, cx, w, t),
        SeriesValue::Gauge(v) => encoder.gauge(s, v, cx, w, t),
        SeriesValue::Histogram {
            samples,
            recorded,
            unit,
        } => encoder.histogram(s, samples, recorded, unit, carry, cx, w, t),
        SeriesValue::Set(members) => encoder.set(s, members, cx, w, t),
    }
    0
}
