//! [`GraphitePoints`]: explicit `(path, value, timestamp)` points as the bytes of a Graphite
//! plaintext or pickle message, without sending them (aiographite's `generate_message`).
//!
//! A thin shell over the exporter's own steps, so no rule lives here: a path is split into
//! its name and `;k=v` tags and rendered by [`GraphiteEncoder::render`] (sanitising,
//! Graphite 1.1 tags, shortening for carbon's file names), the line is written by
//! [`GraphiteEncoder::point`] (NaN, infinities and over-long lines refused), and pickle
//! frames come from [`PickleWire`], from the points the encoder recorded beside the lines,
//! as for the exporter. No prefix and no global labels: those are the builder's, and this
//! encoder has no builder; put them in the path.

use metrics::{Key, Label};

use super::{
    CounterMode, EncodeTally, Framing, GraphiteEncoder, GraphiteTags, PayloadWriter, PickleWire,
    Rendered, pickle::MAX_PICKLE_FRAME,
};
use crate::error::EncodeError;

/// A batch of Graphite points, encoded as plaintext or pickle bytes without any I/O: what
/// [`GraphiteClient`](crate::GraphiteClient) would send for the same points, for callers who
/// write to carbon themselves (aiographite's `generate_message`).
///
/// Each [`push`](Self::push) checks, sanitises and renders one point at once, with the rules
/// of [`GraphiteClient::send_at`](crate::GraphiteClient::send_at) (the crate docs' "Names"
/// and "Long names" state them) but without a prefix or global labels, which are the
/// builder's: put them in the path. [`plaintext`](Self::plaintext) is then the message for
/// carbon's line receiver, and [`write_pickle`](Self::write_pickle) appends the frames for
/// its pickle receiver.
///
/// ```
/// use metrics_exporter_statsd_graphite::{EncodeError, GraphitePoints};
///
/// let mut points = GraphitePoints::new();
/// points.push("jobs.imported;source=csv", 1250.0, 1_700_000_000)?;
/// points.push("jobs/failed now", 3.5, 1_700_000_000)?; // sanitised
/// assert_eq!(points.push("jobs.lag", f64::NAN, 1_700_000_000), Err(EncodeError::NotFinite));
/// assert_eq!(points.push("...", 1.0, 1_700_000_000), Err(EncodeError::EmptyPath));
/// assert_eq!(
///     points.plaintext(),
///     b"jobs.imported;source=csv 1250 1700000000\njobs_failed_now 3.5 1700000000\n"
/// );
///
/// let mut frames = Vec::new();
/// points.write_pickle(&mut frames); // 4-byte big-endian length + protocol-2 pickle
/// assert_eq!(frames[..4], u32::try_from(frames.len() - 4).unwrap().to_be_bytes());
/// points.clear(); // ready for the next batch, allocations kept
/// # Ok::<(), EncodeError>(())
/// ```
#[derive(Debug)]
pub struct GraphitePoints {
    encoder: GraphiteEncoder,
    /// The plaintext message: one stream payload without a size limit (carbon's line limit
    /// applies per line, in the encoder).
    lines: PayloadWriter,
    wire: PickleWire,
    rendered: Rendered,
    points: usize,
}

impl Default for GraphitePoints {
    fn default() -> Self {
        Self::new()
    }
}

impl GraphitePoints {
    /// An empty batch, shortening tagged names for carbon's default `TAG_HASH_FILENAMES =
    /// True`, as the builder does by default.
    pub fn new() -> Self {
        Self::with_tag_hash_filenames(true)
    }

    /// An empty batch for a carbon whose `TAG_HASH_FILENAMES` is `hashed`, as
    /// [`ExporterBuilder::with_graphite_tag_hash_filenames`](crate::ExporterBuilder::with_graphite_tag_hash_filenames)
    /// (it decides how far a tagged name is shortened; see the crate docs' "Long names").
    pub fn with_tag_hash_filenames(hashed: bool) -> Self {
        Self {
            encoder: GraphiteEncoder::new(
                None,
                Vec::new(),
                GraphiteTags::Tagged,
                CounterMode::Delta,
                0,
                &[],
                hashed,
            ),
            lines: PayloadWriter::new(usize::MAX, Framing::Stream).keeping_points(true),
            wire: PickleWire::new(MAX_PICKLE_FRAME),
            rendered: Rendered::default(),
            points: 0,
        }
    }

    /// Adds the point `value` at `timestamp` (Unix seconds) for `path`, a Graphite path,
    /// optionally tagged (`name;k=v;k2=v2`; a tag without `=` is left out).
    ///
    /// # Errors
    /// [`EncodeError::NotFinite`] for a NaN or infinite value (carbon drops NaN and cannot
    /// read `inf`), [`EncodeError::EmptyPath`] when nothing usable is left of the path once
    /// sanitised (or a tagged name cannot be shortened enough), [`EncodeError::LineTooLong`]
    /// for a line over carbon's 16384 bytes. The batch is then unchanged.
    pub fn push(&mut self, path: &str, value: f64, timestamp: u64) -> Result<(), EncodeError> {
        self.encoder.render(&path_key(path), &mut self.rendered);
        if !self.rendered.sendable() {
            return Err(EncodeError::EmptyPath);
        }
        let mut tally = EncodeTally::default();
        self.encoder.point(
            &self.rendered,
            value,
            timestamp,
            &mut self.lines,
            &mut tally,
        );
        if tally.invalid_values > 0 {
            return Err(EncodeError::NotFinite);
        }
        if tally.values == 0 {
            return Err(EncodeError::LineTooLong);
        }
        self.points += 1;
        Ok(())
    }

    /// How many points the batch holds.
    pub fn len(&self) -> usize {
        self.points
    }

    /// Whether the batch holds no point.
    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// The plaintext message: `path value timestamp\n` per point, in the order pushed. Empty
    /// for an empty batch.
    pub fn plaintext(&self) -> &[u8] {
        self.lines.committed()
    }

    /// Appends the pickle message to `out` (not cleared): frames of a 4-byte big-endian
    /// length and a protocol-2 pickle of `[(path, (timestamp, value)), ...]`, each at most
    /// 1 000 000 bytes (carbon's limit is 1 MiB), as many as the batch needs. Nothing for an
    /// empty batch. [`GraphiteClient`](crate::GraphiteClient) frames the same points alike,
    /// except that it cuts a large batch into more, smaller frames (one per payload); carbon
    /// stores both the same.
    pub fn write_pickle(&mut self, out: &mut Vec<u8>) {
        if self.points == 0 {
            return;
        }
        let text = self.lines.committed();
        let frames = match self.lines.committed_points() {
            Some(points) => self.wire.encode_points(text, points, 0),
            None => self.wire.encode(text),
        };
        out.extend_from_slice(frames);
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.lines.clear();
        self.points = 0;
    }
}

/// The series key of a Graphite path `name;k=v;k2=v2` (a tag without `=` is left out), as
/// the direct client reads it.
pub(crate) fn path_key(path: &str) -> Key {
    let (name, tags) = path.split_once(';').unwrap_or((path, ""));
    let labels: Vec<Label> = tags
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .map(|(k, v)| Label::new(k.to_owned(), v.to_owned()))
        .collect();
    Key::from_parts(name.to_owned(), labels)
}

#[cfg(test)]
#[path = "graphite_message_tests.rs"]
mod tests;
