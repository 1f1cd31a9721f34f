//! Small statistics shared by the sections (and by `tests/compare_parts.rs`).

/// The median of `v` (the upper one of an even count), `None` when empty.
pub(crate) fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}
