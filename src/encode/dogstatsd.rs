//! DogStatsD lines:
//! `name:value[:value...]|type[|@rate][|#tags][|c:container][|e:external][|card:level][|T<secs>]`.
//!
//! Rules, each pinned by the exact-bytes table in the tests:
//! - gauges are absolute (`-5|g` means -5: DogStatsD has no deltas), so no Etsy preamble;
//! - labels become tags `key:value`, or the bare tag `key` for an empty value; global labels
//!   merge with a metric's, a metric label overriding a global one with the same key, and a key
//!   is never sent twice (after sanitising, the later label wins); tags are ordered by key;
//! - histogram samples are packed into multi-value lines (protocol v1.1), each as long as the
//!   space left in the payload allows, never past the limit; `|@rate` when sampled;
//! - `|d` distributions by default, `|h` or `|ms` per configuration (per metric by prefix);
//!   `|ms` values are milliseconds, `|d` and `|h` values are sent as recorded;
//! - optional, off by default: a container id `|c:<id>`, external data `|e:<data>`, tag
//!   cardinality `|card:<level>` and Unix timestamps `|T<secs>` on counters and gauges
//!   (`statsd_exporter` drops lines with fields it does not know); in that order, the order
//!   [`MetricLine`](super::MetricLine) writes them in too.

use metrics::{Key, Label};

use super::cardinality::Cardinality;
use super::number::{is_sendable, write_f64, write_u64};
use super::sanitize::{push_dd_path, push_tag_key, push_tag_value};
use super::shared::{render_prefix_with, sample_value, sorted_unique, write_dogstatsd_tags};
use super::{
    EncodeTally, FlushContext, HistogramKind, HistogramRules, PayloadWriter, Rendered, SampleUnit,
    commit, sanitized_tags, write_type_and_rate,
};

/// Room a packed line should have for at least one more value before we pack into the
/// current payload rather than start a fresh one.
const MIN_PACKING_ROOM: usize = 32;

/// Encoder for DogStatsD. Built once from the checked configuration.
#[derive(Debug, Clone)]
pub(crate) struct DogStatsdEncoder {
    prefix: Vec<u8>,
    global_labels: Vec<Label>,
    histograms: HistogramRules,
    /// `|c:<id>` (sanitised), appended to every line's tail.
    container: Option<String>,
    /// `|e:<data>` (sanitised), after the container id.
    external: Option<String>,
    /// `|card:<level>` on every line, unless a client call asks for another.
    cardinality: Option<Cardinality>,
    timestamps: bool,
}

impl DogStatsdEncoder {
    pub(crate) fn new(
        prefix: Option<&str>,
        global_labels: Vec<Label>,
        histograms: HistogramRules,
        container: Option<&str>,
        timestamps: bool,
    ) -> Self {
        // `build` refuses an empty id; an empty field would only be noise on every line.
        let container = container.filter(|id| !id.is_empty()).map(|id| {
            id.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_.:-,".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        });
        Self {
            prefix: render_prefix_with(prefix, push_dd_path),
            global_labels: sorted_unique(global_labels),
            histograms,
            container,
            external: None,
            cardinality: None,
            timestamps,
        }
    }

    /// Adds external data `|e:` (sanitised as the official clients do: printable characters
    /// other than `|`; `build` refuses one with nothing left) and a default `|card:`.
    pub(crate) fn with_origin_fields(
        mut self,
        external: Option<&str>,
        cardinality: Option<Cardinality>,
    ) -> Self {
        self.external = external.map(sanitize_external).filter(|e| !e.is_empty());
        self.cardinality = cardinality;
        self
    }

    /// The sanitised prefix (no trailing dot), the global labels, and the default
    /// cardinality, for the direct client.
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    pub(crate) fn global_labels(&self) -> &[Label] {
        &self.global_labels
    }

    pub(crate) fn cardinality(&self) -> Option<Cardinality> {
        self.cardinality
    }

    pub(crate) fn render(&self, key: &Key, out: &mut Rendered) {
        self.render_with(key, self.cardinality, out);
    }

    /// As [`render`](Self::render), with `cardinality` instead of the configured one.
    pub(crate) fn render_with(
        &self,
        key: &Key,
        cardinality: Option<Cardinality>,
        out: &mut Rendered,
    ) {
        out.histogram = self.histograms.kind_for(key.name());
        out.clear();
        out.name_buf().extend_from_slice(&self.prefix);
        // DogStatsD names are never shortened: the Agent has no file-name limits.
        out.shortened = false;
        if !push_dd_path(out.name_buf(), key.name()) {
            out.clear();
            return;
        }
        // The Agent reads any line starting with `_sc` as a service check (`_e{`, an event's
        // opening, cannot survive sanitising): such a name loses its first `_`.
        if out.name().starts_with(b"_sc") {
            out.name_buf().remove(0);
        }
        let tags = sanitized_tags(&self.global_labels, key, push_tag_key, push_tag_value);
        write_dogstatsd_tags(out.tail_buf(), &tags);
        if let Some(id) = &self.container {
            out.tail_buf().extend_from_slice(b"|c:");
            out.tail_buf().extend_from_slice(id.as_bytes());
        }
        if let Some(data) = &self.external {
            out.tail_buf().extend_from_slice(b"|e:");
            out.tail_buf().extend_from_slice(data.as_bytes());
        }
        if let Some(card) = cardinality {
            out.tail_buf().extend_from_slice(b"|card:");
            out.tail_buf().extend_from_slice(card.as_str().as_bytes());
        }
    }

    fn end_line(&self, s: &Rendered, cx: &FlushContext, buf: &mut Vec<u8>) {
        buf.extend_from_slice(s.tail());
        if self.timestamps {
            buf.extend_from_slice(b"|T");
            cx.stamp.write(buf, cx.unix_secs);
        }
        buf.push(b'\n');
    }

    pub(crate) fn counter(
        &self,
        s: &Rendered,
        delta: u64,
        cx: &FlushContext,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        let buf = w.line_buf();
        buf.extend_from_slice(s.name());
        buf.push(b':');
        write_u64(buf, delta);
        buf.extend_from_slice(b"|c");
        self.end_line(s, cx, buf);
        commit(w, 1, 1, t);
    }

    pub(crate) fn gauge(
        &self,
        s: &Rendered,
        value: f64,
        cx: &FlushContext,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        if !is_sendable(value) {
            t.invalid_values += 1;
            return;
        }
        let buf = w.line_buf();
        buf.extend_from_slice(s.name());
        buf.push(b':');
        write_f64(buf, value);
        buf.extend_from_slice(b"|g");
        self.end_line(s, cx, buf);
        commit(w, 1, 1, t);
    }

    /// Packs the samples into as few lines as the payload limit allows.
    #[allow(clippy::unused_self, reason = "one shape for every encoder")]
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
        // Everything after the values: type, rate, tail, newline. Measured by writing the
        // type and rate into the (reused) line buffer once, so nothing is allocated.
        let write_trailer = |buf: &mut Vec<u8>| {
            write_type_and_rate(buf, s.histogram, rate);
        };
        let trailer_len = {
            let buf = w.line_buf();
            let mark = buf.len();
            write_trailer(buf);
            let n = buf.len() - mark;
            buf.truncate(mark);
            n
        };
        let fixed = s.name().len() + 1 + trailer_len + s.tail().len() + 1;
        let mut invalid = 0;
        let mut values = samples.iter().filter_map(|&raw| {
            let v = sample_value(raw, unit, timer);
            invalid += u64::from(v.is_none());
            v
        });
        let mut next = values.next();
        while let Some(first) = next {
            let budget = if w.remaining() >= fixed + MIN_PACKING_ROOM {
                w.remaining()
            } else {
                w.fresh_capacity()
            };
            let buf = w.line_buf();
            let start = buf.len();
            buf.extend_from_slice(s.name());
            buf.push(b':');
            write_f64(buf, first);
            let mut packed = 1u64;
            next = values.next();
            while let Some(v) = next {
                let before = buf.len();
                buf.push(b':');
                write_f64(buf, v);
                if buf.len() - start + (fixed - s.name().len() - 1) > budget {
                    buf.truncate(before);
                    break;
                }
                packed += 1;
                next = values.next();
            }
            write_trailer(buf);
            buf.extend_from_slice(s.tail());
            buf.push(b'\n');
            commit(w, 1, packed, t);
        }
        drop(values);
        t.invalid_values += invalid;
    }
}

/// External data as the official clients clean `DD_EXTERNAL_ENV` (datadog-go's
/// `sanitizeExternalEnv`): printable characters only, and no `|`, which would end the field.
pub(crate) fn sanitize_external(text: &str) -> String {
    text.chars()
        .filter(|&c| c != '|' && !c.is_control() && (c == ' ' || !c.is_whitespace()))
        .collect()
}

#[cfg(test)]
#[path = "dogstatsd_tests.rs"]
mod tests;
