//! Plain (Etsy) StatsD lines: `name:value|type[|@rate]`.
//!
//! Rules, each pinned by the exact-bytes table in the tests:
//! - counters: `name:<delta>|c`, the delta an unsigned integer;
//! - gauges: `name:<value>|g`. A leading sign means "add" to an Etsy server, so a negative
//!   value is sent as the pair `name:0|g` + `name:-5|g` in one chunk (same payload, in order),
//!   which leaves the gauge at -5 on the server;
//! - histograms: one line per kept sample, `|ms` (timer, values in milliseconds) or `|h`, with
//!   `|@rate` when samples were sampled out so the server scales the count back;
//! - labels are folded into the name as extra segments (`name.value1.value2`, ordered by
//!   label key) or dropped; prefix segments come first;
//! - NaN and infinities are never written; neither are negative timer values (Etsy rejects
//!   them as bad lines). Both are counted as invalid values.

use metrics::{Key, Label, Unit};

use super::number::{is_sendable, write_f64, write_u64};
use super::sanitize::{push_path, push_segment};
use super::{
    EncodeTally, HistogramKind, HistogramRules, PayloadWriter, Rendered, commit,
    write_type_and_rate,
};

/// What to do with labels in plain StatsD, which has no tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LabelHandling {
    /// Append each label value as a name segment, ordered by label key: `name.value1.value2`.
    #[default]
    FoldIntoName,
    /// Ignore labels. Each label combination stays its own series and sends its own line
    /// under the bare name, so on the server counters and timers add up, while for gauges the
    /// last line of a flush wins.
    Drop,
}

/// The unit a histogram's samples were recorded in, as far as conversion to milliseconds
/// needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SampleUnit {
    Seconds,
    Milliseconds,
    Microseconds,
    Nanoseconds,
    /// Not a time: values are sent as recorded.
    Other,
}

impl SampleUnit {
    pub(crate) fn from_unit(unit: Unit) -> Self {
        match unit {
            Unit::Seconds => Self::Seconds,
            Unit::Milliseconds => Self::Milliseconds,
            Unit::Microseconds => Self::Microseconds,
            Unit::Nanoseconds => Self::Nanoseconds,
            _ => Self::Other,
        }
    }

    /// Converts `v` to milliseconds. Seconds and microseconds are rounded to whole
    /// nanoseconds first (the resolution of `Duration`), so `Duration::from_micros(12_500)`
    /// recorded as 0.0125 s becomes exactly `12.5`, never `12.500000000000002`, and nothing
    /// is truncated to whole milliseconds.
    pub(crate) fn to_millis(self, v: f64) -> f64 {
        match self {
            Self::Seconds => (v * 1e9).round() / 1e6,
            Self::Milliseconds | Self::Other => v,
            Self::Microseconds => (v * 1e3).round() / 1e6,
            Self::Nanoseconds => v / 1e6,
        }
    }
}

/// Encoder for plain StatsD. Built once from the checked configuration.
#[derive(Debug, Clone)]
pub(crate) struct StatsdEncoder {
    /// Sanitised prefix segments (may be empty).
    prefix: Vec<u8>,
    labels: LabelHandling,
    /// Global labels, sorted by key, with unique keys.
    global_labels: Vec<Label>,
    histograms: HistogramRules,
}

impl StatsdEncoder {
    pub(crate) fn new(
        prefix: Option<&str>,
        labels: LabelHandling,
        global_labels: Vec<Label>,
        histograms: HistogramRules,
    ) -> Self {
        let prefix = render_prefix(prefix);
        let global_labels = sorted_unique(global_labels);
        Self {
            prefix,
            labels,
            global_labels,
            histograms,
        }
    }

    pub(crate) fn render(&self, key: &Key, out: &mut Rendered) {
        out.tail.clear();
        out.histogram = self.histograms.kind_for(key.name());
        let name = &mut out.name;
        name.clear();
        name.extend_from_slice(&self.prefix);
        if !push_path(name, key.name()) {
            name.clear();
            return;
        }
        if self.labels == LabelHandling::FoldIntoName {
            let mut labels: Vec<&Label> = key.labels().collect();
            labels.sort_by(|a, b| a.key().cmp(b.key()));
            for_each_merged(&self.global_labels, &labels, |l| {
                push_segment(name, l.value());
            });
        }
    }

    #[allow(
        clippy::unused_self,
        reason = "one shape for every encoder; other dialects use their settings here"
    )]
    pub(crate) fn counter(
        &self,
        s: &Rendered,
        delta: u64,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        let buf = w.line_buf();
        buf.extend_from_slice(&s.name);
        buf.push(b':');
        write_u64(buf, delta);
        buf.extend_from_slice(b"|c\n");
        commit(w, 1, 1, t);
    }

    #[allow(
        clippy::unused_self,
        reason = "one shape for every encoder; other dialects use their settings here"
    )]
    pub(crate) fn gauge(
        &self,
        s: &Rendered,
        value: f64,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        if !is_sendable(value) {
            t.invalid_values += 1;
            return;
        }
        let buf = w.line_buf();
        let mut lines = 1;
        if value < 0.0 {
            // Etsy reads a signed value as a delta; reset to 0 first, in the same chunk.
            buf.extend_from_slice(&s.name);
            buf.extend_from_slice(b":0|g\n");
            lines = 2;
        }
        buf.extend_from_slice(&s.name);
        buf.push(b':');
        write_f64(buf, value);
        buf.extend_from_slice(b"|g\n");
        commit(w, lines, 1, t);
    }

    #[allow(
        clippy::unused_self,
        reason = "one shape for every encoder; other dialects use their settings here"
    )]
    pub(crate) fn histogram(
        &self,
        s: &Rendered,
        samples: &[f64],
        rate: f64,
        unit: SampleUnit,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        let timer = s.histogram == HistogramKind::Timer;
        for &raw in samples {
            let Some(v) = sample_value(raw, unit, timer) else {
                t.invalid_values += 1;
                continue;
            };
            let buf = w.line_buf();
            buf.extend_from_slice(&s.name);
            buf.push(b':');
            write_f64(buf, v);
            write_type_and_rate(buf, s.histogram, rate);
            buf.push(b'\n');
            commit(w, 1, 1, t);
        }
    }
}

/// A sample as it goes on the wire: converted to milliseconds for timers, `None` when it
/// cannot be sent (NaN, infinite, or a negative timer, which Etsy statsd rejects).
pub(crate) fn sample_value(raw: f64, unit: SampleUnit, timer: bool) -> Option<f64> {
    let v = if timer { unit.to_millis(raw) } else { raw };
    (is_sendable(v) && !(timer && v < 0.0)).then_some(v)
}

/// Renders a prefix as sanitised path segments.
pub(crate) fn render_prefix(prefix: Option<&str>) -> Vec<u8> {
    render_prefix_with(prefix, push_path)
}

/// Renders a prefix with the given path sanitiser.
pub(crate) fn render_prefix_with(
    prefix: Option<&str>,
    push: fn(&mut Vec<u8>, &str) -> bool,
) -> Vec<u8> {
    let mut rendered = Vec::new();
    if let Some(p) = prefix {
        push(&mut rendered, p);
    }
    rendered
}

/// Sorts labels by key and keeps one per key: the last given wins, as with repeated setter
/// calls.
pub(crate) fn sorted_unique(mut labels: Vec<Label>) -> Vec<Label> {
    labels.reverse();
    labels.sort_by(|a, b| a.key().cmp(b.key()));
    labels.dedup_by(|a, b| a.key() == b.key());
    labels
}

/// Whether `line` is the second half of a chunk that starts with `prev` (both without their
/// newline): the Etsy negative-gauge pair `name:0|g` + `name:-5|g`. Re-sending or dropping
/// must treat the two as one, or the server applies `-5` as a delta.
pub(crate) fn continues_chunk(prev: &[u8], line: &[u8]) -> bool {
    let Some(name) = prev.strip_suffix(b":0|g") else {
        return false;
    };
    line.strip_prefix(name)
        .is_some_and(|rest| rest.starts_with(b":-") && rest.ends_with(b"|g"))
}

/// Calls `f` for each label of the union of two key-sorted lists; for a key in both, only the
/// metric's label is used (a metric label overrides a global one).
pub(crate) fn for_each_merged<'a>(
    global: &'a [Label],
    metric: &[&'a Label],
    mut f: impl FnMut(&'a Label),
) {
    let (mut g, mut m) = (0, 0);
    while g < global.len() || m < metric.len() {
        match (global.get(g), metric.get(m)) {
            (Some(gl), Some(ml)) if gl.key() == ml.key() => {
                f(ml);
                g += 1;
                m += 1;
            }
            (Some(gl), Some(ml)) if gl.key() < ml.key() => {
                f(gl);
                g += 1;
            }
            (_, Some(ml)) => {
                f(ml);
                m += 1;
            }
            (Some(gl), None) => {
                f(gl);
                g += 1;
            }
            (None, None) => break,
        }
    }
}

#[cfg(test)]
#[path = "statsd_tests.rs"]
mod tests;
