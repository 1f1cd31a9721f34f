//! The properties of `GraphitePoints` (the pure Graphite encoder) over any points, checked
//! with the strict spec parsers of `graphite_parser.rs` and `pickle_parser.rs`, not with the
//! crate's own rules: run by the property test in `tests/graphite_points.rs` and by the
//! `graphite_points` fuzz target.
//!
//! - a point is refused only for a reason it has: `NotFinite` only for NaN or an infinity,
//!   `EmptyPath` only for a name part (before the first `;`) of nothing but dots, or a long
//!   tagged name carbon cannot store even shortened; a refused point leaves the batch
//!   unchanged; `LineTooLong` never happens (shortening keeps lines far below carbon's limit);
//! - an accepted point adds exactly one line, which carbon reads as exactly one point of
//!   that value and timestamp under a valid path (no extra field, line, tag or node);
//! - a short untagged name is each `.`-node cleaned character by character, never merged with
//!   another node or split;
//! - the pickle message decodes to exactly the plaintext lines' points, in order, in frames
//!   under carbon's limit; an empty batch writes nothing.
//!
//! Include next to `graphite_parser.rs` and `pickle_parser.rs` (it uses them through `super::`).
#![allow(dead_code, reason = "each includer uses a different subset")]

use metrics_exporter_statsd_graphite::{EncodeError, GraphitePoints};

/// A point as carbon reads it: name, tags, timestamp, value.
type Decoded = (String, Vec<(String, String)>, u64, f64);

/// The untagged name `name` must become: each non-empty `.`-node with every character but
/// `[A-Za-z0-9_-]` as `_`, joined by single dots.
fn model_name(name: &str) -> String {
    name.split('.')
        .filter(|node| !node.is_empty())
        .map(|node| {
            node.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Pushes every point into a fresh batch (`hashed`: carbon's `TAG_HASH_FILENAMES`) and checks
/// the properties above.
///
/// # Errors
/// The first broken property, with the point.
pub(crate) fn check_points(points: &[(String, f64, u64)], hashed: bool) -> Result<(), String> {
    let mut batch = GraphitePoints::with_tag_hash_filenames(hashed);
    let mut lines: Vec<super::graphite_parser::Line> = Vec::new();
    for (path, value, ts) in points {
        let (path, value, ts) = (path.as_str(), *value, *ts);
        let before = batch.plaintext().to_vec();
        let name = path.split(';').next().unwrap_or_default();
        let tagged = path.contains(';');
        let ctx = || format!("point {path:?} {value} {ts}");
        match batch.push(path, value, ts) {
            Ok(()) => {
                if !value.is_finite() {
                    return Err(format!("accepted a value that is not finite: {}", ctx()));
                }
                let added = batch
                    .plaintext()
                    .strip_prefix(before.as_slice())
                    .ok_or_else(|| format!("earlier lines changed: {}", ctx()))?;
                let text = std::str::from_utf8(added)
                    .map_err(|e| format!("line not UTF-8 ({e}): {}", ctx()))?;
                let line = text
                    .strip_suffix('\n')
                    .filter(|l| !l.contains('\n'))
                    .ok_or_else(|| format!("not exactly one line {text:?}: {}", ctx()))?;
                let parsed = super::graphite_parser::parse_line(line)
                    .map_err(|e| format!("{e}: {}", ctx()))?;
                if parsed.value != value || parsed.timestamp != ts {
                    return Err(format!("carbon reads {parsed:?}: {}", ctx()));
                }
                if !tagged && path.len() <= 200 && parsed.name != model_name(name) {
                    return Err(format!(
                        "name {:?} is not its nodes cleaned: {}",
                        parsed.name,
                        ctx()
                    ));
                }
                lines.push(parsed);
            }
            Err(e) => {
                if batch.plaintext() != before.as_slice() {
                    return Err(format!(
                        "a refused point ({e}) changed the batch: {}",
                        ctx()
                    ));
                }
                let usable = name.chars().any(|c| c != '.');
                let why = match e {
                    EncodeError::NotFinite => usable && !value.is_finite(),
                    // A tagged name carbon cannot store even shortened: only a long one.
                    EncodeError::EmptyPath => !usable || (tagged && path.len() > 40),
                    _ => false,
                };
                if !why {
                    return Err(format!(
                        "refused with {e:?} for no reason it has: {}",
                        ctx()
                    ));
                }
            }
        }
    }
    if batch.len() != lines.len() {
        return Err(format!("len {} for {} lines", batch.len(), lines.len()));
    }
    let mut frames = Vec::new();
    batch.write_pickle(&mut frames);
    if lines.is_empty() != frames.is_empty() {
        return Err(format!(
            "{} points, {} pickle bytes",
            lines.len(),
            frames.len()
        ));
    }
    let mut pickled = Vec::new();
    for frame in super::pickle_parser::split_frames(&frames)? {
        pickled.extend(super::pickle_parser::parse_frame(frame)?);
    }
    let from_lines: Vec<Decoded> = lines
        .into_iter()
        .map(|l| (l.name, l.tags, l.timestamp, l.value))
        .collect();
    let from_pickle: Vec<Decoded> = pickled
        .into_iter()
        .map(|p| (p.name, p.tags, p.timestamp, p.value))
        .collect();
    if from_lines != from_pickle {
        return Err(format!(
            "pickle {from_pickle:?} is not plaintext {from_lines:?}"
        ));
    }
    Ok(())
}
