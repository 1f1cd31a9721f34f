//! Graphite plaintext lines: `path value timestamp\n`.
//!
//! Rules, each pinned by the exact-bytes table in the tests:
//! - names are sanitised to dot-separated segments of `[A-Za-z0-9_-]` (see `sanitize`): no
//!   whitespace (carbon splits lines on it), no `;` (starts tags), no `/` (makes directories),
//!   no empty segments or `..`, nothing graphite-web's query grammar treats specially;
//! - labels are Graphite 1.1 tags `name;k=v;k2=v2`, ordered by key (carbon sorts them too), or
//!   folded into the path as `name.k.v` or `name.v`. Tag keys keep `[A-Za-z0-9_.:-]`, values
//!   any printable ASCII but `;` (and not a leading `~`); other characters become `_`. A tag
//!   with an empty value is left out (carbon rejects it), and a label called `name` is sent as
//!   `name_` (carbon reserves the `name` tag for the metric name);
//! - counters are the delta of the interval (or a running total, by configuration), gauges
//!   their value;
//! - histograms are summarised per interval, since carbon cannot aggregate:
//!   `.count .sum .min .max .mean` and configurable percentiles (`.p50 .p90 .p99 .p999` by
//!   default); with tags the suffix goes on the name part (`name.p99;k=v`). Up to the
//!   per-interval sample cap the summary is exact. Beyond it, `count` is still exact and the
//!   rest comes from a uniform random sample of cap samples (`sum` = mean × count): a reported
//!   percentile's true rank is then within ±2·sqrt(q(1−q)/cap) of q with 95% probability
//!   (±0.6% for p99 and ±3.1% for p50 at the default cap of 1024);
//! - every point carries the flush time, aligned down to the flush interval by default, so
//!   points from many hosts land in the same carbon slot;
//! - names carbon could not store as files are shortened once, when the series is rendered
//!   (`shorten`; the rules are in the crate docs' "Long names");
//! - NaN and infinities are never written; a line longer than carbon's 16384-byte limit
//!   (which would make carbon drop the connection) is dropped and counted.

use metrics::{Key, Label};

use super::number::{Digits, LineValue, is_sendable};
use super::sanitize::push_path;
use super::shared::{fold_globals, fold_own_labels, render_prefix, sorted_unique};
use super::shorten::{NAME_LIMIT, TaggedBound, fit_tagged, shorten_path};
use super::summary::{SlotCarry, Summary, nearest_rank, percentile_suffix, summarize};
use super::{EncodeTally, FlushContext, PayloadWriter, Rendered, commit, sanitized_tags};

/// Carbon's `LineOnlyReceiver.MAX_LENGTH`: a longer line makes carbon drop the connection.
const MAX_LINE: usize = 16_384;

/// The summary statistics every histogram sends, as path suffixes (percentiles follow).
const SUMMARY_STATS: [&[u8]; 5] = [b".count", b".sum", b".min", b".max", b".mean"];

/// How labels appear in Graphite paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GraphiteTags {
    /// Graphite 1.1 tagged series: `name;key=value;key2=value2`.
    #[default]
    Tagged,
    /// Folded into the path as key and value segments: `name.key.value` (a label whose key
    /// or value is empty is left out); global labels go before the name
    /// (`myapp.region.eu.requests.route.home`, crate docs, "Names: what is sanitised, and how").
    FoldKeyValues,
    /// Folded into the path as value segments only: `name.value`; global labels go before
    /// the name (`myapp.eu.requests.home`).
    FoldValues,
}

/// How counters are reported to Graphite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CounterMode {
    /// The increase during the interval, sent when non-zero.
    #[default]
    Delta,
    /// The running total since the exporter started, sent every interval once the counter
    /// exists (what `nonNegativeDerivative` expects).
    Total,
}

/// Encoder for Graphite plaintext. Built once from the checked configuration.
#[derive(Debug, Clone)]
pub(crate) struct GraphiteEncoder {
    prefix: Vec<u8>,
    global_labels: Vec<Label>,
    tags: GraphiteTags,
    counters: CounterMode,
    /// Seconds to align timestamps to (0: no alignment).
    align_secs: u64,
    /// (quantile, suffix such as `.p99`).
    percentiles: Vec<(f64, String)>,
    /// How carbon names a tagged series' file, which bounds a tagged name's length.
    tagged_bound: TaggedBound,
    /// Stored bytes kept free in every name for the longest histogram summary suffix, so a
    /// series shortens the same way whatever its kind.
    suffix_reserve: usize,
}

impl GraphiteEncoder {
    pub(crate) fn new(
        prefix: Option<&str>,
        global_labels: Vec<Label>,
        tags: GraphiteTags,
        counters: CounterMode,
        align_secs: u64,
        percentiles: &[f64],
        tag_hash_filenames: bool,
    ) -> Self {
        let percentiles: Vec<(f64, String)> = percentiles
            .iter()
            .map(|&q| (q, percentile_suffix(q)))
            .collect();
        let tagged_bound = if tag_hash_filenames {
            TaggedBound::Hashed
        } else {
            TaggedBound::Readable
        };
        // Every suffix is one `.` and a short leaf: stored as `_DOT_` in readable file names.
        let suffix_reserve = SUMMARY_STATS
            .into_iter()
            .chain(percentiles.iter().map(|(_, s)| s.as_bytes()))
            .map(|s| s.len() + 4)
            .max()
            .unwrap_or(0);
        Self {
            prefix: render_prefix(prefix),
            global_labels: sorted_unique(global_labels),
            tags,
            counters,
            align_secs,
            percentiles,
            tagged_bound,
            suffix_reserve,
        }
    }

    pub(crate) fn aligned(&self) -> bool {
        self.align_secs > 0
    }

    pub(crate) fn counter_mode(&self) -> CounterMode {
        self.counters
    }

    /// The suffixes a histogram's summary adds to its name, each a path of its own at carbon.
    pub(crate) fn summary_suffixes(&self) -> impl Iterator<Item = &[u8]> {
        SUMMARY_STATS
            .into_iter()
            .chain(self.percentiles.iter().map(|(_, s)| s.as_bytes()))
    }

    /// Renders the series' name and tags, shortened where carbon could not store them (see
    /// `shorten`); `out.shortened` says whether they were. A tagged name too long for carbon
    /// even shortened leaves the name empty (never sent, counted as unnamed).
    pub(crate) fn render(&self, key: &Key, out: &mut Rendered) {
        out.clear();
        out.shortened = false;
        out.name_buf().extend_from_slice(&self.prefix);
        let fold_keys = self.tags == GraphiteTags::FoldKeyValues;
        if self.tags != GraphiteTags::Tagged {
            fold_globals(out.name_buf(), &self.global_labels, key, fold_keys);
        }
        if !push_path(out.name_buf(), key.name()) {
            out.clear();
            return;
        }
        if self.tags == GraphiteTags::Tagged {
            // Keys are compared once sanitised, so two labels that clean up alike (`a b` and
            // `a_b`, `name` and `name_`) become one tag, the later winning: carbon would keep
            // only one of two equal keys anyway.
            let mut tags = sanitized_tags(&self.global_labels, key, push_tag_key, push_tag_value);
            tags.retain(|(_, v)| !v.is_empty());
            if !tags.is_empty() {
                self.render_tagged(&mut tags, out);
                return;
            }
        } else {
            fold_own_labels(out.name_buf(), &self.global_labels, key, fold_keys);
        }
        out.shortened = shorten_path(out.name_buf(), NAME_LIMIT - self.suffix_reserve);
    }

    /// Shortens a tagged name to carbon's bound and writes its tags into `out.tail`.
    fn render_tagged(&self, tags: &mut [(Vec<u8>, Vec<u8>)], out: &mut Rendered) {
        let bound = self.tagged_bound;
        let Some(shortened) = fit_tagged(bound, self.suffix_reserve, out.name_buf(), tags) else {
            out.clear();
            return;
        };
        out.shortened = shortened;
        for (k, v) in tags.iter() {
            out.tail_buf().push(b';');
            out.tail_buf().extend_from_slice(k);
            out.tail_buf().push(b'=');
            out.tail_buf().extend_from_slice(v);
        }
    }

    /// The timestamp of this flush's lines: the context's, worked out once per flush by
    /// [`Encoder::context`](super::Encoder::context) (so not a division per line), or from
    /// its time when it has none.
    fn timestamp(&self, cx: &FlushContext) -> u64 {
        cx.stamp
            .cached()
            .unwrap_or_else(|| self.stamp_secs(cx.unix_secs))
    }

    /// The timestamp of lines flushed at `unix_secs`: the slot start when aligned.
    pub(crate) fn stamp_secs(&self, unix_secs: u64) -> u64 {
        match self.align_secs {
            0 => unix_secs,
            a => unix_secs - unix_secs % a,
        }
    }

    /// Writes `name[suffix][;tags] value ts\n` as one line, and records its point with the
    /// writer (see [`PayloadWriter::point`]). `stamp` holds `ts`'s text when it is the
    /// flush's (see [`Digits`]).
    #[allow(
        clippy::too_many_arguments,
        reason = "the line's parts, each needed once"
    )]
    #[allow(
        clippy::inline_always,
        reason = "measured: inlined into each caller, the constant `value` variant folds away \
                  (callgrind, a plaintext line: 309 instructions against 346 when not inlined)"
    )]
    #[inline(always)]
    fn line(
        s: &Rendered,
        suffix: &[u8],
        value: LineValue,
        ts: u64,
        stamp: &Digits,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        let buf = w.line_buf();
        let start = buf.len();
        if suffix.is_empty() {
            buf.extend_from_slice(s.name_and_tail());
        } else {
            buf.extend_from_slice(s.name());
            buf.extend_from_slice(suffix);
            buf.extend_from_slice(s.tail());
        }
        let path_end = buf.len();
        buf.push(b' ');
        value.write(buf);
        buf.push(b' ');
        stamp.write(buf, ts);
        buf.push(b'\n');
        if buf.len() - start > MAX_LINE {
            w.rollback();
            t.too_long += 1;
            return;
        }
        w.point(start..path_end, ts, value.as_read());
        commit(w, 1, 1, t);
    }

    /// One explicit point (the direct client): value and timestamp as given.
    #[allow(clippy::unused_self, reason = "one shape for every encoder method")]
    pub(crate) fn point(
        &self,
        s: &Rendered,
        value: f64,
        timestamp: u64,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        if !is_sendable(value) {
            t.invalid_values += 1;
            return;
        }
        Self::line(
            s,
            b"",
            LineValue::Real(value),
            timestamp,
            &Digits::default(),
            w,
            t,
        );
    }

    /// A counter's value: in delta mode, merged with what this slot already got.
    pub(crate) fn counter(
        &self,
        s: &Rendered,
        value: u64,
        carry: &mut SlotCarry,
        cx: &FlushContext,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        let ts = self.timestamp(cx);
        let value = match self.counters {
            CounterMode::Total => value,
            CounterMode::Delta => {
                let merged = if carry.slot == ts {
                    carry.count.saturating_add(value)
                } else {
                    value
                };
                carry.slot = ts;
                carry.count = merged;
                merged
            }
        };
        Self::line(s, b"", LineValue::Count(value), ts, &cx.stamp, w, t);
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
        let ts = self.timestamp(cx);
        Self::line(s, b"", LineValue::Real(value), ts, &cx.stamp, w, t);
    }

    /// Summarises one interval's samples (sorted in place) into count, sum, min, max, mean
    /// and percentiles. `recorded` is how many samples were recorded; more than `samples`
    /// holds when the reservoir sampled. Everything merges with what this slot already got
    /// (see [`SlotCarry`]): percentiles are over all of the slot's samples.
    #[allow(
        clippy::too_many_arguments,
        reason = "the encoder shape plus the slot carry"
    )]
    pub(crate) fn histogram(
        &self,
        s: &Rendered,
        samples: &mut [f64],
        recorded: u64,
        carry: &mut SlotCarry,
        cx: &FlushContext,
        w: &mut PayloadWriter,
        t: &mut EncodeTally,
    ) {
        let ts = self.timestamp(cx);
        let keep_samples = !self.percentiles.is_empty();
        let Some(Summary {
            count,
            sum,
            min,
            max,
        }) = summarize(samples, recorded, ts, keep_samples, carry, t)
        else {
            return;
        };
        let [count_suffix, rest @ ..] = SUMMARY_STATS;
        Self::line(
            s,
            count_suffix,
            LineValue::Count(count),
            ts,
            &cx.stamp,
            w,
            t,
        );
        #[allow(
            clippy::cast_precision_loss,
            reason = "summary statistics need no more than f64 precision"
        )]
        let mean = sum / count as f64;
        for (suffix, value) in rest.into_iter().zip([sum, min, max, mean]) {
            // A sum of huge samples can overflow to infinity: never sent, counted.
            if is_sendable(value) {
                Self::line(s, suffix, LineValue::Real(value), ts, &cx.stamp, w, t);
            } else {
                t.invalid_values += 1;
            }
        }
        let slot_samples = carry.slot_samples();
        for (q, suffix) in self.percentiles.iter().filter(|_| !slot_samples.is_empty()) {
            let value = nearest_rank(slot_samples, *q);
            let value = LineValue::Real(value);
            Self::line(s, suffix.as_bytes(), value, ts, &cx.stamp, w, t);
        }
    }
}

/// Appends a tag key with Graphite's rules (see the module docs). Carbon overwrites a tag
/// called `name` with the metric name, so ours becomes `name_`.
fn push_tag_key(out: &mut Vec<u8>, key: &str) {
    let key = if key == "name" { "name_" } else { key };
    for c in key.chars() {
        let keep = c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-');
        out.push(if keep { ascii(c) } else { b'_' });
    }
}

/// Appends a tag value with Graphite's rules (see the module docs).
fn push_tag_value(out: &mut Vec<u8>, value: &str) {
    for (i, c) in value.chars().enumerate() {
        let keep = c.is_ascii_graphic() && c != ';' && !(i == 0 && c == '~');
        out.push(if keep { ascii(c) } else { b'_' });
    }
}

/// The byte of a character already checked to be ASCII.
#[allow(
    clippy::cast_possible_truncation,
    reason = "only called for ASCII characters"
)]
fn ascii(c: char) -> u8 {
    c as u8
}

#[cfg(test)]
#[path = "graphite_tests.rs"]
mod tests;
