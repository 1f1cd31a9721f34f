//! Helpers shared by the encoders' tests.

use metrics::Label;

use super::{EncodeTally, Framing, PayloadWriter};

/// Labels from `(key, value)` pairs.
pub(crate) fn labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(k, v)| Label::new((*k).to_string(), (*v).to_string()))
        .collect()
}

/// Runs `f` against a fresh datagram writer limited to `max` bytes; returns the datagrams it
/// produced, as text, and the tally.
pub(crate) fn datagrams(
    max: usize,
    f: impl FnOnce(&mut PayloadWriter, &mut EncodeTally),
) -> (Vec<String>, EncodeTally) {
    let mut w = PayloadWriter::new(max, Framing::Datagram);
    let mut t = EncodeTally::default();
    f(&mut w, &mut t);
    w.finish();
    let out = (0..w.len())
        .map(|i| String::from_utf8(w.payload(i).unwrap().0.to_vec()).unwrap())
        .collect();
    (out, t)
}
