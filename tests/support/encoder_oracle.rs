//! Checks one flush's encoding (from the crate's hidden `fuzzing` module) against the spec
//! parsers and a reference model of the documented naming rules (crate docs, "Names: what is
//! sanitised, and how", the DogStatsD and Graphite sections, `encode/sanitize.rs` docs). Used
//! by the property tests in `src/encode/fuzz_tests.rs` and by the cargo-fuzz targets.
//!
//! For every protocol it checks that:
//! - every payload is within its limit and framed as its transport expects;
//! - every line parses in the protocol's spec parser as exactly one metric, and the payload's
//!   line count is the writer's;
//! - each series' lines (the driver says which lines each series produced) carry exactly the
//!   expected name, type, tags, container and timestamp, so nothing is injected, and values
//!   that are the recorded ones, in order;
//! - every value recorded is either in a line or counted as dropped (invalid, too long or
//!   unnamed), exactly once; a set's values are its distinct sanitised members, plus the
//!   empty members it refuses;
//! - sets (crate docs, "Aggregation semantics", and `encode/set.rs`): StatsD and DogStatsD
//!   send one `name:member|s` line per distinct member, in sorted order, with the series'
//!   tags and container (DogStatsD: and origin fields) but never `|@` or `|T`; Graphite
//!   sends one point, the number of distinct members; a dropped line is one that is longer
//!   than the payload limit on its own;
//! - DogStatsD origin fields (`encode/dogstatsd.rs` docs): every line carries the `|c:`,
//!   `|e:` and `|card:` configured, each once, the optional fields in the documented order
//!   `|@`, `|#`, `|c:`, `|e:`, `|card:`, `|T`.
//!
//! The includer must make `fuzzing` (the crate's module) and the parsers `statsd_parser`,
//! `dogstatsd_parser`, `graphite_parser` and `pickle_parser` visible as `super::...`.
#![allow(dead_code, reason = "each includer uses a different subset")]
#![allow(clippy::float_cmp, reason = "values must come back exactly")]

use super::fuzzing::{
    Cardinality, Common, DogStatsdOptions, Encoded, Framing, GraphiteOptions, GraphiteTags,
    HistogramKind, LabelHandling, PickleEncoded, Series, SeriesOutcome, StatsdOptions, Tally, Unit,
    Value,
};
use super::{dogstatsd_parser, graphite_parser, pickle_parser, statsd_parser};

/// A failed check: what was wrong.
pub(crate) type Check = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

// ---------------------------------------------------------------------------------------
// The reference model of the documented rules.

/// StatsD and Graphite path characters: `[A-Za-z0-9_-]`.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// DogStatsD name characters: `[A-Za-z0-9_]`.
fn is_dd_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// One segment: every character failing `keep` (a `.` included) becomes one `_`.
fn one_segment(text: &str, keep: fn(char) -> bool) -> String {
    text.chars()
        .map(|c| if keep(c) { c } else { '_' })
        .collect()
}

/// A folded label's one segment: as [`one_segment`], less the replaced characters at either
/// end; text made only of replaced characters is `_`, empty text nothing.
fn label_segment(text: &str) -> String {
    let trimmed = text.trim_matches(|c: char| !is_path_char(c));
    if trimmed.is_empty() && !text.is_empty() {
        return "_".to_owned();
    }
    one_segment(trimmed, is_path_char)
}

/// The folded label segments, in path order: the globals' (one per key, by key, each taking a
/// metric label's value for its key, the last such label given), and the metric's own labels
/// (by key, one per key, the last given), the first group right after the prefix, the second
/// after the name. With `with_keys`, a label is `key.value`, or nothing when either is empty.
fn folded_labels(
    globals: &[(String, String)],
    labels: &[(String, String)],
    with_keys: bool,
) -> (Vec<String>, Vec<String>) {
    let fold = |k: &str, v: &str, out: &mut Vec<String>| {
        if with_keys {
            if !k.is_empty() && !v.is_empty() {
                out.push(label_segment(k));
                out.push(label_segment(v));
            }
        } else if !v.is_empty() {
            out.push(label_segment(v));
        }
    };
    let mut globals = unique_globals(globals);
    globals.sort_by(|a, b| a.0.cmp(&b.0));
    let mut before = Vec::new();
    for (k, v) in &globals {
        let v = labels
            .iter()
            .rev()
            .find(|(own, _)| own == k)
            .map_or(v, |(_, v)| v);
        fold(k, v, &mut before);
    }
    let mut own: Vec<(String, String)> = Vec::new();
    for (k, v) in labels {
        if globals.iter().any(|(g, _)| g == k) {
            continue;
        }
        match own.iter_mut().find(|(existing, _)| existing == k) {
            Some(slot) => slot.1.clone_from(v),
            None => own.push((k.clone(), v.clone())),
        }
    }
    own.sort_by(|a, b| a.0.cmp(&b.0));
    let mut after = Vec::new();
    for (k, v) in &own {
        fold(k, v, &mut after);
    }
    (before, after)
}

/// Dot-separated segments, empty ones removed.
fn segments(text: &str, keep: fn(char) -> bool) -> Vec<String> {
    text.split('.')
        .filter(|s| !s.is_empty())
        .map(|s| one_segment(s, keep))
        .collect()
}

/// The prefix and name segments, or `None` when the name has nothing left (never sent).
fn base_name(common: &Common, name: &str, keep: fn(char) -> bool) -> Option<Vec<String>> {
    let own = segments(name, keep);
    if own.is_empty() {
        return None;
    }
    let mut all = common
        .prefix
        .as_deref()
        .map(|p| segments(p, keep))
        .unwrap_or_default();
    all.extend(own);
    Some(all)
}

/// Global labels with one per key, the last given winning (as repeated setter calls).
fn unique_globals(globals: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in globals {
        match out.iter_mut().find(|(existing, _)| existing == k) {
            Some(slot) => slot.1.clone_from(v),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// The kind segment `with_type_prefixes` puts after the prefix: counters, gauges (Graphite
/// points are gauges in StatsD), and timers or histograms by the series' histogram kind.
fn statsd_type_segment(o: &StatsdOptions, s: &Series) -> &'static str {
    match &s.value {
        Value::Counter(_) => "counters",
        Value::Gauge(_) | Value::Point { .. } => "gauges",
        Value::Set(_) => "sets",
        Value::Histogram { .. } => match kind_for(o.histogram, &o.histogram_by_prefix, &s.name) {
            HistogramKind::Timer => "timers",
            _ => "histograms",
        },
    }
}

fn statsd_name(o: &StatsdOptions, s: &Series) -> Option<String> {
    let mut segs = base_name(&o.common, &s.name, is_path_char)?;
    let prefix_len = o
        .common
        .prefix
        .as_deref()
        .map_or(0, |p| segments(p, is_path_char).len());
    if o.type_prefixes {
        segs.insert(prefix_len, statsd_type_segment(o, s).to_owned());
    }
    let fold = match o.labels {
        LabelHandling::FoldIntoName => Some(false),
        LabelHandling::FoldKeyValues => Some(true),
        LabelHandling::DogStatsd => {
            let tags = etsy_tags(o, s);
            if !tags.is_empty() {
                return shortened_tagged(false, ETSY_RESERVE, segs.join("."), tags).map(|t| t.0);
            }
            None
        }
        _ => None,
    };
    if let Some(with_keys) = fold {
        let (before, after) = folded_labels(&o.common.global_labels, &s.labels, with_keys);
        segs.splice(prefix_len..prefix_len, before);
        segs.extend(after);
    }
    Some(shortened_path(&segs.join("."), NAME_LIMIT))
}

/// Stored bytes a plain StatsD DogStatsD-style tagged name keeps free for what Etsy adds.
const ETSY_RESERVE: usize = 64;

/// Plain StatsD's DogStatsD-style tags, as Etsy must forward them to carbon unchanged: ASCII
/// letters, digits, `_`, `-` and `.` stay, `/` becomes `-`, a value keeps `=` too, anything
/// else becomes `_`; `name` is sent as `name_`; empty values are left out.
fn etsy_tags(o: &StatsdOptions, s: &Series) -> Vec<(String, String)> {
    fn clean(t: &str, equals: bool) -> String {
        t.chars()
            .map(|c| match c {
                '/' => '-',
                '=' if equals => '=',
                c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') => c,
                _ => '_',
            })
            .collect()
    }
    fn key(k: &str) -> String {
        clean(if k == "name" { "name_" } else { k }, false)
    }
    fn value(v: &str) -> String {
        clean(v, true)
    }
    statsd_style_tags(o, s, key, value, true)
}

/// The tags of a plain StatsD DogStatsD-style series after shortening (as its name).
fn etsy_tags_shortened(o: &StatsdOptions, s: &Series) -> Vec<(String, String)> {
    let tags = etsy_tags(o, s);
    let Some(mut segs) = base_name(&o.common, &s.name, is_path_char) else {
        return tags;
    };
    if o.type_prefixes {
        let prefix_len = o
            .common
            .prefix
            .as_deref()
            .map_or(0, |p| segments(p, is_path_char).len());
        segs.insert(prefix_len, statsd_type_segment(o, s).to_owned());
    }
    shortened_tagged(false, ETSY_RESERVE, segs.join("."), tags.clone()).map_or(tags, |t| t.1)
}

/// A tag key or value embedded in a plain StatsD name (InfluxDB, Librato, SignalFx and
/// Graphite styles): letters and digits of any script, `_`, `-`, `.` and `/` stay; every other
/// character becomes `_`.
fn embedded_tag(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What opens, separates and closes the tags of a name-embedded style.
fn embedding(style: LabelHandling) -> Option<(char, char, Option<char>)> {
    match style {
        LabelHandling::InfluxDb => Some((',', ',', None)),
        LabelHandling::Librato => Some(('#', ',', None)),
        LabelHandling::SignalFx => Some(('[', ',', Some(']'))),
        LabelHandling::Graphite => Some((';', ';', None)),
        _ => None,
    }
}

/// The tags plain StatsD writes for `s` in a tag style: the global labels (one per key, the
/// last given winning, ordered by key) then the metric's, each sanitised by `key` and `value`;
/// labels with an empty key are left out; of two equal sanitised keys the later wins; ordered
/// by key; with `drop_empty`, tags with an empty value are left out.
fn statsd_style_tags(
    o: &StatsdOptions,
    s: &Series,
    key: fn(&str) -> String,
    value: fn(&str) -> String,
    drop_empty: bool,
) -> Vec<(String, String)> {
    let mut globals = unique_globals(&o.common.global_labels);
    globals.sort_by(|a, b| a.0.cmp(&b.0));
    let mut tags: Vec<(String, String)> = Vec::new();
    for (k, v) in globals.iter().chain(&s.labels) {
        let (k, v) = (key(k), value(v));
        if k.is_empty() {
            continue;
        }
        match tags.iter_mut().find(|(existing, _)| *existing == k) {
            Some(slot) => slot.1 = v,
            None => tags.push((k, v)),
        }
    }
    tags.sort();
    if drop_empty {
        tags.retain(|(_, v)| !v.is_empty());
    }
    tags
}

/// A tag as parsed from a line: a key and, unless it is a bare DogStatsD tag, a value.
type Tag = (String, Option<String>);

/// Splits a plain StatsD line written in tag style `style` into the line without its tags (for
/// the strict Etsy parser) and its tags, refusing any tag text that is not well formed: an
/// empty tag, a missing or second `=`, a character the style does not allow.
fn split_statsd_tags(style: LabelHandling, line: &str) -> Result<(String, Vec<Tag>), String> {
    if style == LabelHandling::DogStatsd {
        let Some((bare, text)) = line.split_once("|#") else {
            return Ok((line.to_owned(), Vec::new()));
        };
        let mut tags = Vec::new();
        for tag in text.split(',') {
            ensure!(!tag.is_empty(), "empty tag in {line:?}");
            ensure!(
                !tag.contains(['|', '#']) && !tag.chars().any(char::is_whitespace),
                "tag {tag:?} in {line:?} holds a separator"
            );
            tags.push(match tag.split_once(':') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (tag.to_owned(), None),
            });
        }
        return Ok((bare.to_owned(), tags));
    }
    let Some((open, separator, close)) = embedding(style) else {
        return Ok((line.to_owned(), Vec::new()));
    };
    let Some(colon) = line.find(':') else {
        return Err(format!("no ':' in {line:?}"));
    };
    let (head, rest) = line.split_at(colon);
    let Some((name, text)) = head.split_once(open) else {
        return Ok((line.to_owned(), Vec::new()));
    };
    let text = match close {
        Some(c) => text
            .strip_suffix(c)
            .ok_or_else(|| format!("tags not closed by {c:?} in {line:?}"))?,
        None => text,
    };
    let allowed = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
    };
    let mut tags = Vec::new();
    for tag in text.split(separator) {
        let Some((k, v)) = tag.split_once('=') else {
            return Err(format!("tag {tag:?} without '=' in {line:?}"));
        };
        ensure!(
            allowed(k) && allowed(v),
            "tag {tag:?} in {line:?} is empty or holds a character its style does not allow"
        );
        tags.push((k.to_owned(), Some(v.to_owned())));
    }
    Ok((format!("{name}{rest}"), tags))
}

/// Checks the tags of one of `s`'s plain StatsD lines against the style's rules.
fn check_statsd_tags(o: &StatsdOptions, s: &Series, got: &[Tag]) -> Check {
    let want: Vec<Tag> = match o.labels {
        // An empty value is left out (Etsy would make carbon reject the bare tag).
        LabelHandling::DogStatsd => etsy_tags_shortened(o, s)
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect(),
        style if embedding(style).is_some() => {
            statsd_style_tags(o, s, embedded_tag, embedded_tag, true)
                .into_iter()
                .map(|(k, v)| (k, Some(v)))
                .collect()
        }
        _ => Vec::new(),
    };
    ensure!(got == want, "tags {got:?}, expected {want:?}");
    Ok(())
}

fn dd_name(o: &DogStatsdOptions, s: &Series) -> Option<String> {
    base_name(&o.common, &s.name, is_dd_char).map(|segs| segs.join("."))
}

/// A DogStatsD tag key: `|`, `,`, `#`, `:`, whitespace and control characters become `_`.
fn dd_tag_key(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_control() || c.is_whitespace() || matches!(c, '|' | ',' | '#' | ':') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A DogStatsD tag value: as a key, but `:` stays, except a last one, which becomes `_`.
fn dd_tag_value(v: &str) -> String {
    let mut out: String = v
        .chars()
        .map(|c| {
            if c.is_control() || c.is_whitespace() || matches!(c, '|' | ',' | '#') {
                '_'
            } else {
                c
            }
        })
        .collect();
    if out.ends_with(':') {
        out.pop();
        out.push('_');
    }
    out
}

/// Checks a line's DogStatsD tags: unique keys in key order, exactly one per sanitised key among
/// all labels, each from a label with that sanitised key, a metric's label beating a global's
/// and, among a metric's labels, the last given winning; an empty value is a bare tag.
fn check_dd_tags(o: &DogStatsdOptions, s: &Series, tags: &[(String, Option<String>)]) -> Check {
    let globals = unique_globals(&o.common.global_labels);
    let sanitised = |list: &[(String, String)]| -> Vec<(String, String)> {
        list.iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (dd_tag_key(k), dd_tag_value(v)))
            .collect()
    };
    let (globals, own) = (sanitised(&globals), sanitised(&s.labels));
    let mut keys: Vec<&String> = globals.iter().chain(&own).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let got: Vec<&String> = tags.iter().map(|(k, _)| k).collect();
    ensure!(got == keys, "tag keys {got:?}, expected {keys:?}");
    for (key, value) in tags {
        let value = value.clone().unwrap_or_default();
        let from_own: Vec<&String> = own
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        let ok = match from_own.last() {
            Some(last) => **last == value,
            None => globals.iter().any(|(k, v)| k == key && *v == value),
        };
        ensure!(
            ok,
            "tag {key:?}={value:?} is not the winning label's (own {from_own:?})"
        );
    }
    Ok(())
}

fn graphite_base(o: &GraphiteOptions, s: &Series) -> Option<(String, Vec<(String, String)>)> {
    let mut segs = base_name(&o.common, &s.name, is_path_char)?;
    let mut tags = Vec::new();
    if o.tags == GraphiteTags::Tagged {
        // Globals (ordered by key, one per key: the last given), then the metric's labels,
        // each key sanitised; for keys equal once sanitised the later label wins; then empty
        // values are left out.
        let mut globals = o.common.global_labels.clone();
        globals.reverse();
        globals.sort_by(|a, b| a.0.cmp(&b.0));
        globals.dedup_by(|a, b| a.0 == b.0);
        for (k, v) in globals.iter().chain(&s.labels) {
            if k.is_empty() {
                continue;
            }
            let k = if k == "name" { "name_" } else { k.as_str() };
            let key: String = k
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let value: String = v
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if c.is_ascii_graphic() && c != ';' && !(i == 0 && c == '~') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            match tags
                .iter_mut()
                .find(|(existing, _): &&mut (String, String)| *existing == key)
            {
                Some(slot) => slot.1 = value,
                None => tags.push((key, value)),
            }
        }
        tags.retain(|(_, v): &(String, String)| !v.is_empty());
        tags.sort();
        let name = segs.join(".");
        if tags.is_empty() {
            return Some((shortened_path(&name, NAME_LIMIT - suffix_reserve(o)), tags));
        }
        return shortened_tagged(!o.tag_hash_filenames, suffix_reserve(o), name, tags);
    }
    let prefix_len = o
        .common
        .prefix
        .as_deref()
        .map_or(0, |p| segments(p, is_path_char).len());
    let with_keys = o.tags == GraphiteTags::FoldKeyValues;
    let (before, after) = folded_labels(&o.common.global_labels, &s.labels, with_keys);
    segs.splice(prefix_len..prefix_len, before);
    segs.extend(after);
    tags.sort();
    Some((
        shortened_path(&segs.join("."), NAME_LIMIT - suffix_reserve(o)),
        tags,
    ))
}

// ---------------------------------------------------------------------------------------
// Long names, as the crate docs' "Long names" section states the rules.

/// Longest component carbon can store (255 less `.wsp`).
const COMPONENT_LIMIT: usize = 251;
/// Longest whole name.
const NAME_LIMIT: usize = 2048;
/// Longest readable tagged file name, less `.wsp`.
const TAGGED_FILE_LIMIT: usize = 251;

/// `<text cut to keep bytes, at a character boundary>-<FNV-1a 64 of all of text, 16 hex>`.
fn cut_with_hash(text: &str, keep: usize) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut keep = keep.min(text.len());
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}-{hash:016x}", &text[..keep])
}

/// Each component over the limit cut, then the whole path to `total` bytes, the component
/// the hash joins staying within the limit.
fn shortened_path(path: &str, total: usize) -> String {
    let path: Vec<String> = path
        .split('.')
        .map(|c| {
            if c.len() > COMPONENT_LIMIT {
                cut_with_hash(c, COMPONENT_LIMIT - 17)
            } else {
                c.to_owned()
            }
        })
        .collect();
    let path = path.join(".");
    if path.len() <= total {
        return path;
    }
    let mut keep = total - 17;
    while !path.is_char_boundary(keep) {
        keep -= 1;
    }
    let start = path[..keep].rfind('.').map_or(0, |d| d + 1);
    cut_with_hash(&path, keep.min(start + COMPONENT_LIMIT - 17))
}

/// Stored bytes kept for the longest summary suffix, written as `_DOT_<leaf>`.
fn suffix_reserve(o: &GraphiteOptions) -> usize {
    [".count", ".sum", ".min", ".max", ".mean"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(o.percentiles.iter().map(|q| percentile_suffix(*q)))
        .map(|s| s.len() + 4)
        .max()
        .unwrap_or(0)
}

/// A tagged name within its bound: readable file names count each `.` as `_DOT_`; the
/// longest value is cut first, just enough (to no less than 18 bytes stored), then the other
/// values, then the keys, then the name; `None` when even that does not fit.
fn shortened_tagged(
    readable: bool,
    reserve: usize,
    mut name: String,
    mut tags: Vec<(String, String)>,
) -> Option<(String, Vec<(String, String)>)> {
    let cost = |t: &str| {
        t.len()
            + if readable {
                4 * t.matches('.').count()
            } else {
                0
            }
    };
    let limit = if readable {
        TAGGED_FILE_LIMIT
    } else {
        NAME_LIMIT
    } - reserve;
    let total = |name: &str, tags: &[(String, String)]| {
        cost(name)
            + tags
                .iter()
                .map(|(k, v)| 2 + cost(k) + cost(v))
                .sum::<usize>()
    };
    // Shortens `text` to a stored length of at most `target`.
    let shorten = |text: &str, target: usize| {
        let mut keep = 0;
        let mut used = 0;
        for c in text.chars() {
            used += cost(c.encode_utf8(&mut [0; 4]));
            if used > target - 17 {
                break;
            }
            keep += c.len_utf8();
        }
        cut_with_hash(text, keep)
    };
    while total(&name, &tags) > limit {
        let excess = total(&name, &tags) - limit;
        let pick = |values: bool, tags: &[(String, String)]| {
            let mut best: Option<(usize, usize)> = None;
            for (i, (k, v)) in tags.iter().enumerate() {
                let c = cost(if values { v } else { k });
                if c > 18 && best.is_none_or(|(_, b)| c > b) {
                    best = Some((i, c));
                }
            }
            best
        };
        if let Some((i, c)) = pick(true, &tags) {
            tags[i].1 = shorten(&tags[i].1, c.saturating_sub(excess).max(18));
        } else if let Some((i, c)) = pick(false, &tags) {
            tags[i].0 = shorten(&tags[i].0, c.saturating_sub(excess).max(18));
        } else if cost(&name) > 18 {
            name = shorten(&name, cost(&name).saturating_sub(excess).max(18));
        } else {
            return None;
        }
    }
    tags.sort();
    Some((name, tags))
}

/// The histogram kind for `name`: the longest matching prefix wins.
fn kind_for(
    default: HistogramKind,
    by_prefix: &[(String, HistogramKind)],
    name: &str,
) -> HistogramKind {
    by_prefix
        .iter()
        .filter(|(p, _)| name.starts_with(p.as_str()))
        .max_by_key(|(p, _)| p.len())
        .map_or(default, |(_, k)| *k)
}

/// A sample as a timer sends it: milliseconds, seconds and microseconds first rounded to whole
/// nanoseconds (the resolution of `Duration`); other units as recorded.
fn to_millis(v: f64, unit: Unit) -> f64 {
    match unit {
        Unit::Seconds => (v * 1e9).round() / 1e6,
        Unit::Microseconds => (v * 1e3).round() / 1e6,
        Unit::Nanoseconds => v / 1e6,
        _ => v,
    }
}

/// The samples a StatsD dialect sends, in order, and how many are invalid.
fn sendable_samples(samples: &[f64], unit: Unit, timer: bool) -> (Vec<f64>, u64) {
    let mut out = Vec::new();
    let mut invalid = 0;
    for &raw in samples {
        let v = if timer { to_millis(raw, unit) } else { raw };
        if v.is_finite() && !(timer && v < 0.0) {
            out.push(v);
        } else {
            invalid += 1;
        }
    }
    (out, invalid)
}

/// The `|@rate` a histogram's lines must carry, if any.
#[allow(clippy::cast_precision_loss, reason = "a rate")]
fn expected_rate(kept: usize, recorded: u64) -> Option<f64> {
    let recorded = recorded.max(kept as u64);
    ((kept as u64) < recorded).then(|| (kept as f64 / recorded as f64).clamp(1e-9, 1.0))
}

fn check_rate(got: Option<f64>, want: Option<f64>) -> Check {
    match (got, want) {
        (None, None) => Ok(()),
        (Some(g), Some(w)) if (g - w).abs() <= 1e-9 => Ok(()),
        _ => Err(format!("rate {got:?}, expected {want:?}")),
    }
}

/// Whether `got` is `want` with some values left out, in order.
fn is_subsequence(got: &[f64], want: &[f64]) -> bool {
    let mut want = want.iter();
    got.iter().all(|g| want.any(|w| w == g))
}

/// How many values a series hands the encoder (a set: its distinct members, and the empty
/// ones it refuses).
fn inputs(s: &Series) -> u64 {
    match &s.value {
        Value::Histogram { samples, .. } => samples.len() as u64,
        Value::Set(raw) => {
            let (members, empty) = set_members(raw);
            members.len() as u64 + empty
        }
        _ => 1,
    }
}

/// Values counted unnamed when the series' name has nothing left: all but a set's empty
/// members, which are refused (invalid) whatever the name.
fn unnamed_inputs(s: &Series) -> u64 {
    match &s.value {
        Value::Set(raw) => set_members(raw).0.len() as u64,
        _ => inputs(s),
    }
}

/// A set member as it goes on the wire: control characters, `|` and `:` become `_`.
fn sanitised_member(member: &str) -> String {
    member
        .chars()
        .map(|c| {
            if c.is_control() || c == '|' || c == ':' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A set's raw members as sent: the non-empty ones sanitised, distinct, sorted; and how many
/// were empty (refused).
fn set_members(raw: &[String]) -> (Vec<String>, u64) {
    let mut members: Vec<String> = raw
        .iter()
        .filter(|m| !m.is_empty())
        .map(|m| sanitised_member(m))
        .collect();
    members.sort();
    members.dedup();
    let empty = raw.iter().filter(|m| m.is_empty()).count() as u64;
    (members, empty)
}

/// Whether a line of `len` bytes (without its newline) is longer than the payload limit on
/// its own.
fn too_long_alone(common: &Common, len: usize) -> bool {
    match common.framing {
        Framing::Stream => len + 1 > common.max_payload_len,
        Framing::Datagram | Framing::LengthPrefixed => len > common.max_payload_len,
    }
}

/// Checks a set's StatsD or DogStatsD lines: `got` are the members sent, in order, with their
/// lines as written (`raw`); every distinct member is sent or its line, otherwise the same as a
/// sent one, is too long; the empty members are counted invalid.
fn check_set_lines(
    common: &Common,
    raw_members: &[String],
    got: &[&str],
    raw: &[&str],
    t: Tally,
) -> Check {
    let (want, empty) = set_members(raw_members);
    ensure!(
        t.invalid_values == empty,
        "set: {} invalid counted, {empty} empty members",
        t.invalid_values
    );
    ensure!(
        got.len() as u64 == t.values && t.lines == t.values,
        "set: {} lines, tally {t:?}",
        got.len()
    );
    ensure!(
        t.values + t.too_long == want.len() as u64,
        "set: {} sent + {} too long != {} distinct members {want:?}",
        t.values,
        t.too_long,
        want.len()
    );
    let mut rest = want.iter();
    for g in got {
        ensure!(
            rest.any(|w| w == g),
            "set: members sent {got:?} are not the distinct members {want:?} in order"
        );
    }
    if let (Some(line), Some(member)) = (raw.first(), got.first()) {
        let others = line.len() - member.len();
        for w in &want {
            let sent = got.contains(&w.as_str());
            ensure!(
                sent != too_long_alone(common, others + w.len()),
                "set: member {w:?} (a line of {} bytes) sent {sent} with a limit of {}",
                others + w.len(),
                common.max_payload_len
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Checks shared by every protocol.

/// Payload limits and framing; returns each payload's body with the framing's final newline
/// removed.
fn check_payloads(common: &Common, out: &Encoded) -> Check {
    for (i, p) in out.payloads.iter().enumerate() {
        ensure!(!p.bytes.is_empty() && p.lines > 0, "payload {i} is empty");
        let sent = match common.framing {
            Framing::Datagram => {
                ensure!(
                    !p.bytes.ends_with(b"\n"),
                    "datagram {i} ends with a newline"
                );
                p.bytes.len()
            }
            Framing::Stream => {
                ensure!(
                    p.bytes.ends_with(b"\n"),
                    "stream payload {i} does not end with a newline"
                );
                p.bytes.len()
            }
            Framing::LengthPrefixed => {
                ensure!(
                    p.bytes.ends_with(b"\n"),
                    "frame {i} does not end with a newline"
                );
                p.bytes.len() - 1
            }
        };
        ensure!(
            sent <= common.max_payload_len,
            "payload {i} sends {sent} bytes, over the limit of {}",
            common.max_payload_len
        );
    }
    Ok(())
}

/// The tally adds up, series by series and in total; series' lines tile the output in order.
fn check_tally(series: &[Series], out: &Encoded, total_lines: u64) -> Check {
    ensure!(out.series.len() == series.len(), "one outcome per series");
    ensure!(
        out.tally.lines == total_lines,
        "tally says {} lines, payloads hold {total_lines}",
        out.tally.lines
    );
    let payload_lines: u64 = out.payloads.iter().map(|p| u64::from(p.lines)).sum();
    ensure!(
        payload_lines == total_lines,
        "payload line counts {payload_lines} != {total_lines} lines"
    );
    let mut next = 0;
    let mut sum = Tally::default();
    for o in &out.series {
        ensure!(
            o.lines.start == next,
            "series lines are not contiguous: {:?} after {next}",
            o.lines
        );
        next = o.lines.end;
        sum.lines += o.tally.lines;
        sum.values += o.tally.values;
        sum.invalid_values += o.tally.invalid_values;
        sum.too_long += o.tally.too_long;
        sum.unnamed += o.tally.unnamed;
    }
    ensure!(
        next == total_lines,
        "series lines end at {next}, not {total_lines}"
    );
    ensure!(
        sum == out.tally,
        "per-series tallies {sum:?} != total {:?}",
        out.tally
    );
    Ok(())
}

/// A series whose name has nothing left: no lines, every value counted as unnamed.
fn check_unnamed(s: &Series, o: &SeriesOutcome, expected_sendable: bool) -> Check {
    ensure!(
        o.sendable == expected_sendable,
        "name {:?}: sendable {}, expected {expected_sendable}",
        s.name,
        o.sendable
    );
    if !expected_sendable {
        let t = o.tally;
        ensure!(
            t.lines == 0 && t.values == 0,
            "unnamed series {:?} sent lines",
            s.name
        );
        ensure!(
            t.unnamed == unnamed_inputs(s),
            "unnamed series {:?}: {} of {} counted",
            s.name,
            t.unnamed,
            unnamed_inputs(s)
        );
    }
    Ok(())
}

/// The lines the driver says `oc`'s series produced.
fn own_lines<'a, T>(lines: &'a [T], oc: &SeriesOutcome) -> Result<&'a [T], String> {
    let index = |i: u64| usize::try_from(i).unwrap_or(usize::MAX);
    lines
        .get(index(oc.lines.start)..index(oc.lines.end))
        .ok_or_else(|| format!("lines {:?} of {}", oc.lines, lines.len()))
}

/// For the StatsD dialects every value is sent or counted exactly once.
fn check_conserved(s: &Series, o: &SeriesOutcome) -> Check {
    let t = o.tally;
    ensure!(
        t.values + t.invalid_values + t.too_long + t.unnamed == inputs(s),
        "series {:?}: {} values in, tally {t:?}",
        s.name,
        inputs(s)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Plain StatsD.

/// Checks a plain StatsD encoding of `series`.
pub(crate) fn check_statsd(o: &StatsdOptions, series: &[Series], out: &Encoded) -> Check {
    check_payloads(&o.common, out)?;
    let stream = o.common.framing != Framing::Datagram;
    let mut lines = Vec::new();
    let mut line_tags = Vec::new();
    let mut raw_lines = Vec::new();
    for p in &out.payloads {
        // Take each line's tags off, so the strict Etsy parser sees the bare lines.
        let text = std::str::from_utf8(&p.bytes).map_err(|e| format!("not UTF-8: {e}"))?;
        let body = if stream {
            text.strip_suffix('\n').unwrap_or(text)
        } else {
            text
        };
        let mut bare = String::new();
        for (i, line) in body.split('\n').enumerate() {
            let (untagged, tags) = split_statsd_tags(o.labels, line)?;
            raw_lines.push(line.to_owned());
            if i > 0 {
                bare.push('\n');
            }
            bare.push_str(&untagged);
            line_tags.push(tags);
        }
        if stream {
            bare.push('\n');
        }
        let parsed = statsd_parser::parse_payload(bare.as_bytes(), stream)?;
        ensure!(
            parsed.len() == p.lines as usize,
            "payload holds {} lines, writer says {}",
            parsed.len(),
            p.lines
        );
        lines.extend(parsed);
    }
    check_tally(series, out, lines.len() as u64)?;
    for (s, oc) in series.iter().zip(&out.series) {
        let name = statsd_name(o, s);
        check_unnamed(s, oc, name.is_some())?;
        check_conserved(s, oc)?;
        let Some(name) = name else { continue };
        let own = own_lines(&lines, oc)?;
        for l in own {
            ensure!(l.name == name, "line name {:?}, expected {name:?}", l.name);
        }
        for tags in own_lines(&line_tags, oc)? {
            check_statsd_tags(o, s, tags).map_err(|e| format!("series {:?}: {e}", s.name))?;
        }
        let raw = own_lines(&raw_lines, oc)?;
        check_statsd_values(o, s, oc, own, raw).map_err(|e| format!("series {:?}: {e}", s.name))?;
    }
    Ok(())
}

fn check_statsd_values(
    o: &StatsdOptions,
    s: &Series,
    oc: &SeriesOutcome,
    own: &[statsd_parser::Line],
    raw: &[String],
) -> Check {
    use statsd_parser::Kind;
    let t = oc.tally;
    match &s.value {
        Value::Set(members) => {
            for l in own {
                ensure!(l.kind == Kind::Set && l.rate.is_none(), "set line {l:?}");
            }
            let got: Vec<&str> = own.iter().map(|l| l.value_text.as_str()).collect();
            let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
            check_set_lines(&o.common, members, &got, &raw, t)?;
        }
        Value::Counter(d) => {
            let want = d.to_string();
            ensure!(
                own.len() as u64 + t.too_long == 1,
                "counter: {} lines, {} too long",
                own.len(),
                t.too_long
            );
            for l in own {
                ensure!(
                    l.kind == Kind::Counter && l.value_text == want && l.rate.is_none(),
                    "counter line {l:?}, expected {want}"
                );
            }
        }
        Value::Gauge(v) | Value::Point { value: v, .. } => {
            if !v.is_finite() {
                ensure!(
                    own.is_empty() && t.invalid_values == 1,
                    "unsendable gauge {v}: {own:?} {t:?}"
                );
                return Ok(());
            }
            ensure!(t.too_long + t.values == 1, "gauge {v}: {t:?}");
            let want_lines = if t.too_long == 1 {
                0
            } else if *v < 0.0 {
                2
            } else {
                1
            };
            ensure!(
                own.len() == want_lines,
                "gauge {v}: {} lines, expected {want_lines}",
                own.len()
            );
            if let Some(last) = own.last() {
                ensure!(
                    last.kind == Kind::Gauge && last.value == *v && last.rate.is_none(),
                    "gauge line {last:?}, expected {v}"
                );
                ensure!(
                    *v < 0.0 || !last.value_text.starts_with('-'),
                    "non-negative gauge {v} written as {:?}",
                    last.value_text
                );
            }
        }
        Value::Histogram {
            samples,
            recorded,
            unit,
        } => {
            let kind = kind_for(o.histogram, &o.histogram_by_prefix, &s.name);
            let timer = kind == HistogramKind::Timer;
            let want_kind = if timer { Kind::Timer } else { Kind::Histogram };
            let (want, invalid) = sendable_samples(samples, *unit, timer);
            ensure!(
                t.invalid_values == invalid,
                "{} invalid counted, {invalid} expected",
                t.invalid_values
            );
            ensure!(
                own.len() as u64 + t.too_long == want.len() as u64,
                "{} lines + {} too long != {} samples",
                own.len(),
                t.too_long,
                want.len()
            );
            let rate = expected_rate(samples.len(), *recorded);
            for l in own {
                ensure!(
                    l.kind == want_kind,
                    "type {:?}, expected {want_kind:?}",
                    l.kind
                );
                check_rate(l.rate, rate)?;
            }
            let got: Vec<f64> = own.iter().map(|l| l.value).collect();
            ensure!(
                is_subsequence(&got, &want),
                "values {got:?} are not the samples {want:?} in order"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// DogStatsD.

/// Checks a DogStatsD encoding of `series`.
pub(crate) fn check_dogstatsd(o: &DogStatsdOptions, series: &[Series], out: &Encoded) -> Check {
    check_payloads(&o.common, out)?;
    let mut lines = Vec::new();
    let mut raw_lines = Vec::new();
    for p in &out.payloads {
        let body = match o.common.framing {
            Framing::Datagram => &p.bytes[..],
            // The transport drops the final newline of a length-prefixed frame or keeps it on a
            // plain stream; either way the lines are the same.
            Framing::Stream | Framing::LengthPrefixed => &p.bytes[..p.bytes.len() - 1],
        };
        let parsed = dogstatsd_parser::parse_datagram(body).map_err(|e| e.to_string())?;
        let text = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
        raw_lines.extend(text.split('\n').map(str::to_owned));
        ensure!(
            parsed.len() == p.lines as usize,
            "payload holds {} lines, writer says {}",
            parsed.len(),
            p.lines
        );
        lines.extend(parsed);
    }
    check_tally(series, out, lines.len() as u64)?;
    let container = o
        .container
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|id| {
            id.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_.:-,".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        });
    let external = o
        .external
        .as_deref()
        .map(dd_external)
        .filter(|e| !e.is_empty());
    let cardinality = o.cardinality.map(|c| {
        match c {
            Cardinality::None => "none",
            Cardinality::Low => "low",
            Cardinality::Orchestrator => "orchestrator",
            _ => "high",
        }
        .to_owned()
    });
    ensure!(
        raw_lines.len() == lines.len(),
        "{} raw lines, {} parsed",
        raw_lines.len(),
        lines.len()
    );
    for (s, oc) in series.iter().zip(&out.series) {
        let name = dd_name(o, s);
        check_unnamed(s, oc, name.is_some())?;
        check_conserved(s, oc)?;
        let Some(name) = name else { continue };
        let own = own_lines(&lines, oc)?;
        for (l, raw) in own.iter().zip(own_lines(&raw_lines, oc)?) {
            ensure!(l.name == name, "line name {:?}, expected {name:?}", l.name);
            check_dd_tags(o, s, &l.tags).map_err(|e| format!("series {:?}: {e}", s.name))?;
            ensure!(
                l.container == container,
                "container {:?}, expected {container:?}",
                l.container
            );
            ensure!(
                l.external == external && l.cardinality == cardinality,
                "origin fields e:{:?} card:{:?}, expected e:{external:?} card:{cardinality:?} in {raw:?}",
                l.external,
                l.cardinality
            );
            check_dd_field_order(raw)?;
        }
        let raw: Vec<&str> = own_lines(&raw_lines, oc)?
            .iter()
            .map(String::as_str)
            .collect();
        check_dd_values(o, s, oc, own, &raw).map_err(|e| format!("series {:?}: {e}", s.name))?;
    }
    Ok(())
}

/// External data as the official clients clean it: printable characters (a space
/// included, other whitespace not) other than `|`.
fn dd_external(text: &str) -> String {
    text.chars()
        .filter(|&c| c != '|' && !c.is_control() && (c == ' ' || !c.is_whitespace()))
        .collect()
}

/// The optional fields after a DogStatsD line's type, in the documented order.
const DD_FIELD_ORDER: [&str; 6] = ["@", "#", "c:", "e:", "card:", "T"];

/// A line's optional fields come in the documented order, each at most once.
fn check_dd_field_order(raw: &str) -> Check {
    let mut next = 0;
    for field in raw.split('|').skip(2) {
        let Some(rank) = DD_FIELD_ORDER.iter().position(|p| field.starts_with(p)) else {
            return Err(format!("unknown field {field:?} in {raw:?}"));
        };
        // No field starts with two of the prefixes (`card:x` does not start with `c:`).
        ensure!(
            rank >= next,
            "field {field:?} out of the order {DD_FIELD_ORDER:?} in {raw:?}"
        );
        next = rank + 1;
    }
    Ok(())
}

/// A DogStatsD set's lines: members only (no value, `|@` or `|T`), as [`check_set_lines`].
fn check_dd_set(
    common: &Common,
    members: &[String],
    own: &[dogstatsd_parser::Metric],
    raw: &[&str],
    t: Tally,
) -> Check {
    for l in own {
        ensure!(
            l.kind == dogstatsd_parser::MetricType::Set
                && l.values.is_empty()
                && l.rate.is_none()
                && l.timestamp.is_none(),
            "set line {l:?}"
        );
    }
    let got: Vec<&str> = own.iter().filter_map(|l| l.member.as_deref()).collect();
    check_set_lines(common, members, &got, raw, t)
}

#[allow(clippy::cast_precision_loss, reason = "the parser reads values as f64")]
fn check_dd_values(
    o: &DogStatsdOptions,
    s: &Series,
    oc: &SeriesOutcome,
    own: &[dogstatsd_parser::Metric],
    raw: &[&str],
) -> Check {
    use dogstatsd_parser::MetricType;
    let t = oc.tally;
    let stamp = o.timestamps.then_some(o.common.unix_secs);
    match &s.value {
        Value::Set(members) => check_dd_set(&o.common, members, own, raw, t)?,
        Value::Counter(d) => {
            ensure!(
                own.len() as u64 + t.too_long == 1,
                "counter: {} lines, {t:?}",
                own.len()
            );
            for l in own {
                ensure!(
                    l.kind == MetricType::Count && l.values == [*d as f64] && l.rate.is_none(),
                    "counter line {l:?}, expected {d}"
                );
                ensure!(
                    l.timestamp == stamp,
                    "timestamp {:?}, expected {stamp:?}",
                    l.timestamp
                );
            }
        }
        Value::Gauge(v) | Value::Point { value: v, .. } => {
            if !v.is_finite() {
                ensure!(
                    own.is_empty() && t.invalid_values == 1,
                    "unsendable gauge {v}: {t:?}"
                );
                return Ok(());
            }
            ensure!(
                own.len() as u64 + t.too_long == 1,
                "gauge: {} lines, {t:?}",
                own.len()
            );
            for l in own {
                ensure!(
                    l.kind == MetricType::Gauge && l.values == [*v] && l.rate.is_none(),
                    "gauge line {l:?}, expected {v}"
                );
                ensure!(
                    l.timestamp == stamp,
                    "timestamp {:?}, expected {stamp:?}",
                    l.timestamp
                );
            }
        }
        Value::Histogram {
            samples,
            recorded,
            unit,
        } => {
            let kind = kind_for(o.histogram, &o.histogram_by_prefix, &s.name);
            let timer = kind == HistogramKind::Timer;
            let want_kind = match kind {
                HistogramKind::Timer => MetricType::Timer,
                HistogramKind::Distribution => MetricType::Distribution,
                _ => MetricType::Histogram,
            };
            let (want, invalid) = sendable_samples(samples, *unit, timer);
            ensure!(
                t.invalid_values == invalid,
                "{} invalid counted, {invalid} expected",
                t.invalid_values
            );
            let got: Vec<f64> = own.iter().flat_map(|l| l.values.iter().copied()).collect();
            ensure!(
                got.len() as u64 == t.values,
                "{} values in lines, tally says {}",
                got.len(),
                t.values
            );
            ensure!(
                t.values + t.too_long == want.len() as u64,
                "{} sent + {} too long != {} samples",
                t.values,
                t.too_long,
                want.len()
            );
            let rate = expected_rate(samples.len(), *recorded);
            for l in own {
                ensure!(
                    l.kind == want_kind,
                    "type {:?}, expected {want_kind:?}",
                    l.kind
                );
                check_rate(l.rate, rate)?;
            }
            ensure!(
                is_subsequence(&got, &want),
                "values {got:?} are not the samples {want:?} in order"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Graphite.

/// What one expected Graphite line must carry.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    /// Exactly this text (a counter: an integer).
    Text(String),
    /// This value, up to float rounding.
    Value(f64),
    /// A sum or mean that overflows, or nearly: either sent with any value or counted invalid.
    Overflowing,
}

/// The lines one Graphite series must produce: `(name suffix, what it carries)`.
type Expected = Vec<(String, Want)>;

/// Nearest-rank percentile: the smallest sample with at least a fraction `q` of the samples at
/// or below it; `q` is decided exactly from its shortest decimal form.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    // q = num / 10^scale exactly, from q's shortest round-trip decimal form.
    let text = format!("{q}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let num: u128 = format!("{int}{frac}").parse().unwrap_or(0);
    let den = 10u128.pow(u32::try_from(frac.len()).unwrap_or(0));
    let n = sorted.len() as u128;
    // smallest k >= 1 with k / n >= num / den, i.e. k = ceil(num * n / den).
    let k = (num * n).div_ceil(den).clamp(1, n);
    sorted[usize::try_from(k).unwrap_or(1) - 1]
}

/// The suffix for quantile `q`: `q` × 100 in decimal without the point (`.p50`, `.p999`).
fn percentile_suffix(q: f64) -> String {
    let text = format!("{q}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let digits = format!("{int}{frac:0<2}");
    let (whole, rest) = digits.split_at(int.len() + 2);
    let whole = whole.trim_start_matches('0');
    format!(".p{}{rest}", if whole.is_empty() { "0" } else { whole })
}

#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "summary statistics"
)]
fn graphite_summary(o: &GraphiteOptions, samples: &[f64], recorded: u64) -> (Expected, u64) {
    let mut finite: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    let nonfinite = (samples.len() - finite.len()) as u64;
    if finite.is_empty() {
        return (Vec::new(), nonfinite);
    }
    finite.sort_by(f64::total_cmp);
    let kept = samples.len() as u64;
    let recorded = recorded.max(kept);
    let count = if recorded > kept {
        (finite.len() as f64 * recorded as f64 / kept as f64).round()
    } else {
        finite.len() as f64
    };
    let exact_sum: f64 = finite.iter().sum();
    let sum = if recorded > kept {
        exact_sum / finite.len() as f64 * count
    } else {
        exact_sum
    };
    let mean = sum / count;
    // Sums near the overflow boundary may overflow in one summation order and not another.
    let maybe = |v: f64| {
        if v.is_finite() && v.abs() < 1e300 {
            Want::Value(v)
        } else {
            Want::Overflowing
        }
    };
    let mut want = vec![
        (".count".to_owned(), Want::Text((count as u64).to_string())),
        (".sum".to_owned(), maybe(sum)),
        (".min".to_owned(), Want::Value(finite[0])),
        (".max".to_owned(), Want::Value(finite[finite.len() - 1])),
        (".mean".to_owned(), maybe(mean)),
    ];
    for q in &o.percentiles {
        want.push((
            percentile_suffix(*q),
            Want::Value(nearest_rank(&finite, *q)),
        ));
    }
    (want, nonfinite)
}

fn close(got: f64, want: f64) -> bool {
    got == want || (got - want).abs() <= want.abs().max(1.0) * 1e-9
}

/// The lines a Graphite series must produce, their timestamp, and how many of its values are
/// invalid.
fn graphite_expected(o: &GraphiteOptions, s: &Series, aligned: u64) -> (Expected, u64, u64) {
    match &s.value {
        Value::Counter(v) => (vec![(String::new(), Want::Text(v.to_string()))], aligned, 0),
        Value::Gauge(v) | Value::Point { value: v, .. } if !v.is_finite() => (Vec::new(), 0, 1),
        Value::Gauge(v) => (vec![(String::new(), Want::Value(*v))], aligned, 0),
        Value::Point { value, timestamp } => {
            (vec![(String::new(), Want::Value(*value))], *timestamp, 0)
        }
        Value::Histogram {
            samples, recorded, ..
        } => {
            let (want, nonfinite) = graphite_summary(o, samples, *recorded);
            (want, aligned, nonfinite)
        }
        // One gauge point: how many distinct members; none when there is no member.
        Value::Set(raw) => {
            let (members, empty) = set_members(raw);
            let want = if members.is_empty() {
                Vec::new()
            } else {
                #[allow(clippy::cast_precision_loss, reason = "a small count")]
                let count = members.len() as f64;
                vec![(String::new(), Want::Value(count))]
            };
            (want, aligned, empty)
        }
    }
}

/// Checks a Graphite plaintext encoding of `series`; returns the parsed lines.
pub(crate) fn check_graphite(
    o: &GraphiteOptions,
    series: &[Series],
    out: &Encoded,
) -> Result<Vec<graphite_parser::Line>, String> {
    check_payloads(&o.common, out)?;
    let stream = o.common.framing != Framing::Datagram;
    let mut lines = Vec::new();
    for p in &out.payloads {
        let parsed = graphite_parser::parse_payload(&p.bytes, stream)?;
        ensure!(
            parsed.len() == p.lines as usize,
            "payload holds {} lines, writer says {}",
            parsed.len(),
            p.lines
        );
        lines.extend(parsed);
    }
    check_tally(series, out, lines.len() as u64)?;
    let aligned = match o.align_secs {
        0 => o.common.unix_secs,
        a => o.common.unix_secs - o.common.unix_secs % a,
    };
    for (s, oc) in series.iter().zip(&out.series) {
        let base = graphite_base(o, s);
        check_unnamed(s, oc, base.is_some())?;
        let Some((name, tags)) = base else { continue };
        let own = own_lines(&lines, oc)?;
        let t = oc.tally;
        let (want, timestamp, invalid) = graphite_expected(o, s, aligned);
        let context = |e: String| format!("series {:?} ({name}): {e}", s.name);
        // Every expected line is sent, too long, or (an overflowing sum or mean) invalid.
        ensure!(
            t.values + t.too_long + t.invalid_values == want.len() as u64 + invalid,
            "{}",
            context(format!(
                "{} lines expected + {invalid} invalid, tally {t:?}",
                want.len()
            ))
        );
        ensure!(
            t.lines == t.values,
            "{}",
            context("one value per line".into())
        );
        let mut expected = want.iter();
        for l in own {
            let mut sorted_tags = l.tags.clone();
            sorted_tags.sort();
            ensure!(
                sorted_tags == tags,
                "{}",
                context(format!("tags {:?}, expected {tags:?}", l.tags))
            );
            ensure!(
                l.timestamp == timestamp,
                "{}",
                context(format!("timestamp {}, expected {timestamp}", l.timestamp))
            );
            let suffix = l.name.strip_prefix(name.as_str()).unwrap_or("!");
            let Some((_, value)) = expected.find(|(sfx, _)| sfx == suffix) else {
                return Err(context(format!(
                    "line {:?} is not an expected line, or out of order",
                    l.name
                )));
            };
            let ok = match value {
                Want::Text(text) => l.value_text == *text,
                Want::Value(w) => close(l.value, *w),
                Want::Overflowing => true,
            };
            ensure!(
                ok,
                "{}",
                context(format!(
                    "{}{suffix} = {}, expected {value:?}",
                    name, l.value_text
                ))
            );
        }
        let overflowing = want.iter().filter(|(_, w)| *w == Want::Overflowing).count() as u64;
        ensure!(
            t.invalid_values >= invalid && t.invalid_values - invalid <= overflowing,
            "{}",
            context(format!(
                "{} counted invalid; {invalid} samples are, {overflowing} summaries may be",
                t.invalid_values
            ))
        );
    }
    Ok(lines)
}

/// Checks a Graphite pickle encoding: the plaintext as [`check_graphite`], and each payload's
/// frames carrying exactly its lines as `(str, (int, float))` points.
pub(crate) fn check_pickle(o: &GraphiteOptions, series: &[Series], out: &PickleEncoded) -> Check {
    let mut plain = o.clone();
    plain.common.framing = Framing::Stream;
    plain.common.max_payload_len = plain
        .common
        .max_payload_len
        .min(super::fuzzing::MAX_PICKLE_PAYLOAD);
    check_graphite(&plain, series, &out.plaintext)?;
    ensure!(
        out.frames.len() == out.plaintext.payloads.len(),
        "one frame set per payload"
    );
    for (payload, frames) in out.plaintext.payloads.iter().zip(&out.frames) {
        let lines = graphite_parser::parse_payload(&payload.bytes, true)?;
        let mut points = Vec::new();
        for frame in pickle_parser::split_frames(frames)? {
            ensure!(
                frame.len() <= super::fuzzing::MAX_PICKLE_FRAME,
                "frame of {} bytes",
                frame.len()
            );
            points.extend(pickle_parser::parse_frame(frame)?);
        }
        ensure!(
            points.len() == lines.len(),
            "{} points for {} lines",
            points.len(),
            lines.len()
        );
        for (p, l) in points.iter().zip(&lines) {
            ensure!(
                p.name == l.name
                    && p.tags == l.tags
                    && p.timestamp == l.timestamp
                    && p.value.to_bits() == l.value.to_bits(),
                "point {p:?} is not line {l:?}"
            );
        }
    }
    Ok(())
}
