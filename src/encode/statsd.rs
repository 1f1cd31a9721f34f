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
//!   label key), dropped, or written in one of the tag styles of [`LabelHandling`]
//!   (DogStatsD `|#k:v` after the type; InfluxDB, Librato, SignalFx or Graphite tags embedded
//!   in the name); prefix segments come first;
//! - NaN and infinities are never written; neither are negative timer values (Etsy rejects
//!   them as bad lines). Both are counted as invalid values.

use metrics::{Key, Label};

use super::number::{is_sendable, write_f64, write_u64};
use super::sanitize::{
    push_embedded_tag, push_etsy_tag_key, push_etsy_tag_value, push_path, push_segment,
};
use super::shared::{
    SampleUnit, fold_globals, fold_own_labels, render_prefix, sample_value, sorted_unique,
    write_dogstatsd_tags,
};
use super::shorten::{NAME_LIMIT, TaggedBound, fit_tagged, shorten_path};
use super::{
    EncodeTally, HistogramKind, HistogramRules, PayloadWriter, Rendered, SeriesKind, commit,
    sanitized_tags, write_type_and_rate,
};

/// What to do with labels in plain StatsD, which has no tags of its own: fold them into the
/// name, drop them, or write them in one of the tag extensions that StatsD servers understand
/// (`statsd_exporter`, Telegraf, gostatsd, Metricbeat...). In every style tags are ordered by
/// key, global labels come first and a metric label overrides a global one with the same key.
///
/// | style | line |
/// |---|---|
/// | `FoldIntoName` (default) | `requests.GET.200:1\|c` (values, ordered by key) |
/// | `FoldKeyValues` | `requests.method.GET.status.200:1\|c` |
/// | `Drop` | `requests:1\|c` |
/// | `DogStatsd` | `requests:1\|c\|#method:GET,status:200` |
/// | `InfluxDb` (Telegraf) | `requests,method=GET,status=200:1\|c` |
/// | `Librato` (Sysdig) | `requests#method=GET,status=200:1\|c` |
/// | `SignalFx` | `requests[method=GET,status=200]:1\|c` |
/// | `Graphite` (1.1 tags) | `requests;method=GET;status=200:1\|c` |
///
/// Sanitising: `DogStatsd` tags are written for Etsy statsd, whose Graphite backend turns
/// them into carbon tags (`stats.counters.name.count;k=v`), so they pass Etsy's key sanitiser
/// (`stats.js`, `sanitizeKeyName`: whitespace to `_`, `/` to `-`, anything but
/// `[A-Za-z0-9_.;=-]` dropped; only the first `;` and `:` of a tag replaced) and carbon's tag
/// rules (`TaggedSeries.validateTagAndValue`) unchanged, and carbon stores each series under
/// the tags we sent: in keys and values ASCII letters, digits, `_`, `-` and `.` stay, `/`
/// becomes `-` (as Etsy would make it), a value keeps `=` too, and everything else (`;` `:`
/// `,` `#` `|` `~` `!` `^`, whitespace, controls, each non-ASCII character) becomes `_`. A key
/// `name` is sent as `name_` (carbon replaces a `name` tag with the metric name). A label
/// with an empty value is left out (the bare tag would become `;key`, which carbon rejects
/// with the whole line), and so is one with an empty key. A tagged name is bounded as
/// carbon's `TAG_HASH_FILENAMES` needs (set it with
/// [`with_graphite_tag_hash_filenames`](crate::ExporterBuilder::with_graphite_tag_hash_filenames);
/// rules in the crate docs' "Long names"), keeping 64 stored bytes free for what Etsy adds
/// (`stats.timers.` and `.sum_squares_90`: 40 in a readable file name). The Agent's rules
/// for `ExporterBuilder::dogstatsd` are unchanged. In the four
/// name-embedded styles, keys and values keep letters and digits of any script, `_`, `-`, `.`
/// and `/`; every other character (all the styles' separators `,` `=` `#` `[` `]` `;` `:`
/// `|` `@`, whitespace, control characters) becomes `_`. A label whose key or value is empty
/// is left out there, as `statsd_exporter` rejects empty tag values. Etsy semantics (the
/// negative-gauge pair, `|@rate`) apply in every style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LabelHandling {
    /// Append each label value as a name segment, ordered by label key: `name.value1.value2`.
    /// Global labels go before the name, right after the prefix (`myapp.eu.requests.home`);
    /// the whole rule is in the crate docs, "Names: what is sanitised, and how".
    #[default]
    FoldIntoName,
    /// Append each label's key and value as two name segments, ordered by key:
    /// `name.key1.value1.key2.value2`, the hierarchical form of Micrometer's Etsy flavor and of
    /// Graphite paths. A label whose key or value is empty is left out. Global labels go
    /// before the name, as in `FoldIntoName`: `myapp.region.eu.requests.route.home`.
    FoldKeyValues,
    /// Ignore labels. Each label combination stays its own series and sends its own line
    /// under the bare name, so on the server counters and timers add up, while for gauges the
    /// last line of a flush wins.
    Drop,
    /// DogStatsD tags after the type: `name:1|c|#k:v,k2:v2`.
    DogStatsd,
    /// InfluxDB tags after the name, as Telegraf reads them: `name,k=v,k2=v2:1|c`.
    InfluxDb,
    /// Librato tags after the name: `name#k=v,k2=v2:1|c`.
    Librato,
    /// SignalFx dimensions in brackets: `name[k=v,k2=v2]:1|c`.
    SignalFx,
    /// Graphite 1.1 tags: `name;k=v;k2=v2:1|c`.
    Graphite,
}

impl LabelHandling {
    /// For the name-embedded styles: what opens the tags, separates them, and closes them.
    fn embedding(self) -> Option<(&'static [u8], &'static [u8], &'static [u8])> {
        match self {
            Self::InfluxDb => Some((b",", b",", b"")),
            Self::Librato => Some((b"#", b",", b"")),
            Self::SignalFx => Some((b"[", b",", b"]")),
            Self::Graphite => Some((b";", b";", b"")),
            Self::FoldIntoName | Self::FoldKeyValues | Self::Drop | Self::DogStatsd => None,
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
    /// Whether a series' kind goes in its name, after the prefix (`counters.`, `gauges.`,
    /// `timers.`, `histograms.`), as sprockets-statsd and Etsy's Graphite backend lay it out.
    type_prefixes: bool,
    /// How carbon names tagged files, which bounds `DogStatsd`-style tagged names.
    tagged_bound: TaggedBound,
}

/// Stored bytes a `DogStatsd`-style tagged name keeps free for Etsy's namespace and stat
/// (`stats.timers.` and `.sum_squares_90` take 40 in a readable file name).
const ETSY_RESERVE: usize = 64;

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
            type_prefixes: false,
            tagged_bound: TaggedBound::Hashed,
        }
    }

    /// Whether carbon behind Etsy names tagged files after a hash (`true`, the default) or
    /// after the name, which then must fit a file name.
    pub(crate) fn with_tag_hash_filenames(mut self, hashed: bool) -> Self {
        self.tagged_bound = if hashed {
            TaggedBound::Hashed
        } else {
            TaggedBound::Readable
        };
        self
    }

    /// Puts each series' kind in its name, after the prefix: `app.counters.requests`.
    pub(crate) fn with_type_prefixes(mut self, on: bool) -> Self {
        self.type_prefixes = on;
        self
    }

    pub(crate) fn render(&self, key: &Key, out: &mut Rendered) {
        self.render_as(None, key, out);
    }

    /// The sanitised prefix segments (no trailing dot), for the direct client's raw lines.
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Renders the name (shortened as carbon needs it, since Etsy statsd's Graphite backend
    /// stores it as a carbon path) and the tags.
    pub(crate) fn render_as(&self, kind: Option<SeriesKind>, key: &Key, out: &mut Rendered) {
        self.render_typed(kind, self.histograms.kind_for(key.name()), key, out);
    }

    /// As [`render_as`](Self::render_as), for a histogram sent as `histogram` whatever the
    /// configured rules say (the direct client's `timing` and `histogram` calls).
    pub(crate) fn render_typed(
        &self,
        kind: Option<SeriesKind>,
        histogram: HistogramKind,
        key: &Key,
        out: &mut Rendered,
    ) {
        out.clear();
        out.shortened = false;
        out.histogram = histogram;
        let name = out.name_buf();
        name.extend_from_slice(&self.prefix);
        let fold = match self.labels {
            LabelHandling::FoldIntoName => Some(false),
            LabelHandling::FoldKeyValues => Some(true),
            _ => None,
        };
        if let Some(with_keys) = fold {
            fold_globals(name, &self.global_labels, key, with_keys);
        }
        if let Some(kind) = kind.filter(|_| self.type_prefixes) {
            push_segment(
                name,
                match (kind, histogram) {
                    (SeriesKind::Counter, _) => "counters",
                    (SeriesKind::Gauge, _) => "gauges",
                    (SeriesKind::Histogram, HistogramKind::Timer) => "timers",
                    (SeriesKind::Histogram, _) => "histograms",
                    (SeriesKind::Set, _) => "sets",
                },
            );
        }
        if !push_path(name, key.name()) {
            name.clear();
            return;
        }
        if let Some(with_keys) = fold {
            fold_own_labels(name, &self.global_labels, key, with_keys);
        }
        if self.labels == LabelHandling::DogStatsd {
            // Etsy makes these carbon tags (rules on `LabelHandling::DogStatsd`). An empty
            // value would be the bare tag `route`, which Etsy turns into `;route`, and carbon
            // rejects the whole line for it: left out (`x{route=""}` is sent exactly like `x`).
            let mut tags = sanitized_tags(
                &self.global_labels,
                key,
                push_etsy_tag_key,
                push_etsy_tag_value,
            );
            tags.retain(|(_, v)| !v.is_empty());
            if !tags.is_empty() {
                // A tagged name is one carbon file name, not directories: bounded as a whole.
                let bound = self.tagged_bound;
                let fitted = fit_tagged(bound, ETSY_RESERVE, name, &mut tags);
                let Some(shortened) = fitted else {
                    out.clear();
                    return;
                };
                out.shortened = shortened;
                write_dogstatsd_tags(out.tail_buf(), &tags);
                return;
            }
        }
        // Folded labels are path components too; the tags of the other styles are for
        // servers other than Etsy.
        out.shortened = shorten_path(name, NAME_LIMIT);
        let name = out.name_buf();
        match self.labels {
            LabelHandling::FoldIntoName
            | LabelHandling::FoldKeyValues
            | LabelHandling::Drop
            | LabelHandling::DogStatsd => {}
            style => {
                let Some((open, separator, close)) = style.embedding() else {
                    return;
                };
                let mut tags = sanitized_tags(
                    &self.global_labels,
                    key,
                    push_embedded_tag,
                    push_embedded_tag,
                );
                tags.retain(|(_, v)| !v.is_empty());
                for (i, (k, v)) in tags.iter().enumerate() {
                    name.extend_from_slice(if i == 0 { open } else { separator });
                    name.extend_from_slice(k);
                    name.push(b'=');
                    name.extend_from_slice(v);
                }
                if !tags.is_empty() {
                    name.extend_from_slice(close);
                }
            }
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
        buf.extend_from_slice(s.name());
        buf.push(b':');
        write_u64(buf, delta);
        buf.extend_from_slice(b"|c");
        buf.extend_from_slice(s.tail());
        buf.push(b'\n');
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
            buf.extend_from_slice(s.name());
            buf.extend_from_slice(b":0|g");
            buf.extend_from_slice(s.tail());
            buf.push(b'\n');
            lines = 2;
        }
        buf.extend_from_slice(s.name());
        buf.push(b':');
        write_f64(buf, value);
        buf.extend_from_slice(b"|g");
        buf.extend_from_slice(s.tail());
        buf.push(b'\n');
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
            buf.extend_from_slice(s.name());
            buf.push(b':');
            write_f64(buf, v);
            write_type_and_rate(buf, s.histogram, rate);
            buf.extend_from_slice(s.tail());
            buf.push(b'\n');
            commit(w, 1, 1, t);
        }
    }
}

/// Whether `line` is the second half of a chunk that starts with `prev` (both without their
/// newline): the Etsy negative-gauge pair `name:0|g` + `name:-5|g` (each possibly followed by
/// the same DogStatsD-style tags). Re-sending or dropping must treat the two as one, or the
/// server applies `-5` as a delta. Names (tags embedded in them included) never hold a `:`.
pub(crate) fn continues_chunk(prev: &[u8], line: &[u8]) -> bool {
    let colon = |l: &[u8]| l.iter().position(|&b| b == b':');
    let (Some(p), Some(l)) = (colon(prev), colon(line)) else {
        return false;
    };
    let Some(tail) = prev[p + 1..].strip_prefix(b"0|g") else {
        return false;
    };
    prev[..p] == line[..l]
        && line[l + 1..].starts_with(b"-")
        && line[l + 1..]
            .strip_suffix(tail)
            .is_some_and(|value| value.ends_with(b"|g"))
}

#[cfg(test)]
#[path = "statsd_tests.rs"]
mod tests;
