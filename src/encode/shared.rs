//! Helpers more than one encoder uses, so no encoder borrows from another: the unit of a
//! histogram's samples and how a sample goes on the wire, the prefix and global labels as
//! rendered at build time, and DogStatsD's tag section (which plain StatsD also writes for
//! DogStatsD-style tags).
//!
//! Pure functions over caller-owned buffers, like every encoder.

use metrics::{Key, Label, Unit};

use super::number::is_sendable;
use super::sanitize::{push_path, push_segment};

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

    /// Converts `v` from this unit to `to` (through milliseconds); a value that is not a
    /// time on either side is left as it is.
    pub(crate) fn convert(self, v: f64, to: Self) -> f64 {
        if self == to || self == Self::Other || to == Self::Other {
            return v;
        }
        let millis = self.to_millis(v);
        match to {
            Self::Seconds => millis / 1e3,
            Self::Milliseconds | Self::Other => millis,
            Self::Microseconds => millis * 1e3,
            Self::Nanoseconds => millis * 1e6,
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

/// Writes DogStatsD's `|#k:v,k2` section (a bare key for an empty value); nothing for no tags.
///
/// Why a bare key, in DogStatsD mode: the Datadog Agent's parser (`parseTags` in
/// `comp/dogstatsd/server/impl/parse.go`) splits the tag field at commas and keeps each tag as
/// an opaque string, never splitting key from value, so `route` reaches Datadog as a tag
/// without a value, which Datadog's tagging allows. `route:` would be a different tag that
/// ends with `:`, which Datadog's tag rules forbid, and leaving the label out would drop what
/// the caller said. Plain StatsD with DogStatsD-style tags filters empty values out before
/// calling this (see `LabelHandling::DogStatsd`), because Etsy's Graphite backend turns a bare
/// tag into `;route`, which carbon rejects.
pub(crate) fn write_dogstatsd_tags(out: &mut Vec<u8>, tags: &[(Vec<u8>, Vec<u8>)]) {
    for (i, (k, v)) in tags.iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"|#" } else { b"," });
        out.extend_from_slice(k);
        if !v.is_empty() {
            out.push(b':');
            out.extend_from_slice(v);
        }
    }
}

/// The global labels folded into a path, right after the prefix and before the name
/// (`myapp.eu.requests.home.200`): one fixed place for what identifies the sender, so a
/// Graphite glob such as `myapp.eu.*` selects one region's whole tree whatever labels each
/// metric has. A series label with a global's key replaces that global's value, in the
/// global's place. The rule is stated for users in the crate docs ("Names: what is sanitised, and how").
pub(crate) fn fold_globals(name: &mut Vec<u8>, globals: &[Label], key: &Key, with_keys: bool) {
    for global in globals {
        let label = key
            .labels()
            .rev()
            .find(|l| l.key() == global.key())
            .unwrap_or(global);
        fold_label(name, label, with_keys);
    }
}

/// The series' own labels folded after its name, ordered by key (the last of equal keys
/// wins); a label with a global's key was already folded in the global's place.
pub(crate) fn fold_own_labels(name: &mut Vec<u8>, globals: &[Label], key: &Key, with_keys: bool) {
    let mut labels: Vec<&Label> = key
        .labels()
        .filter(|l| globals.binary_search_by(|g| g.key().cmp(l.key())).is_err())
        .collect();
    labels.reverse();
    labels.sort_by(|a, b| a.key().cmp(b.key()));
    labels.dedup_by(|a, b| a.key() == b.key());
    for label in labels {
        fold_label(name, label, with_keys);
    }
}

/// One folded label: its value as one segment, or (`with_keys`) `key.value`; with keys, a
/// label missing either is left out, since a bare `.key` could collide with a metric path.
fn fold_label(name: &mut Vec<u8>, label: &Label, with_keys: bool) {
    if with_keys {
        if label.key().is_empty() || label.value().is_empty() {
            return;
        }
        push_segment(name, label.key());
    }
    push_segment(name, label.value());
}
