//! `PickleFrames`: Graphite points as carbon pickle frames (TCP port 2004).
//!
//! A frame is a 4-byte big-endian payload length followed by the payload, a pickle (protocol 2)
//! of a list of `(path, (timestamp, value))` tuples: the path a `str` (`BINUNICODE`, UTF-8;
//! carbon's safe unpickler rejects byte strings under protocol 2 because they need a global),
//! the timestamp an `int` (`BININT`, or `LONG1` from 2^31 on) and the value a `float`
//! (`BINFLOAT`). The pickle is written by `serde-pickle` from a borrowing [`Serialize`] view of
//! the queued points, and uses only `PROTO`, `EMPTY_LIST`, `MARK`, `APPENDS`, `BINUNICODE`,
//! `BININT`/`LONG1`, `BINFLOAT`, `TUPLE` and `STOP`: no globals, no `REDUCE`, no memo.
//!
//! Frame sizes are computed exactly before anything is written (see [`point_size`] and
//! [`frame_overhead`]; a test pins them to `serde-pickle`'s output), so a flush is split into
//! frames of at most `max_frame` payload bytes and `max_points` points without serialising
//! anything twice. Should a future `serde-pickle` write more than predicted, the frame is
//! rolled back and retried with fewer points, so the limit holds either way.
//!
//! Allocation: the points live in one reusable `Vec`, their paths in one reusable `String`
//! (or, from [`PickleWire`], in the payload itself); `finish` serialises straight into the
//! caller's `out`. `serde-pickle` (1.x) does not
//! allocate for the calls used here (`serialize_seq`, `serialize_tuple`, `serialize_str`,
//! `serialize_u64`, `serialize_f64` only write opcodes and bytes to the writer; it allocates
//! only for `char`, for byte strings under protocol 2, and for big integers, none of which are
//! used). So once `out`, `frames` and the queue have grown to a flush's size, a flush of the
//! same size allocates nothing.

use std::ops::Range;

use serde::ser::{Serialize, SerializeSeq, SerializeTuple, Serializer};
use serde_pickle::SerOptions;

/// Bytes of the length header in front of each payload.
const HEADER_LEN: usize = 4;

/// Largest pickle frame we write (payload bytes): under carbon's 1 MiB
/// `PICKLE_RECEIVER_MAX_LENGTH`.
pub(crate) const MAX_PICKLE_FRAME: usize = 1_000_000;

/// `serde-pickle` closes a `MARK`…`APPENDS` batch after this many list elements (Python's
/// batch size too) and opens a new one, which costs two more bytes; unlike Python it does so
/// even when no element follows, leaving an empty batch at exactly 1000 (valid pickle).
const APPENDS_BATCH: usize = 1000;

/// Payload bytes of a frame holding `points` points, besides the points themselves:
/// `PROTO 2` (2), `EMPTY_LIST` (1), `MARK` (1), `APPENDS` (1), `STOP` (1), plus
/// `APPENDS MARK` (2) after every [`APPENDS_BATCH`] points. (An empty list is never written.)
const fn frame_overhead(points: usize) -> usize {
    6 + 2 * (points / APPENDS_BATCH)
}

/// Payload bytes of one `(path, (timestamp, value))` element as `serde-pickle` writes it:
/// `MARK` (1), `BINUNICODE` + u32 length + UTF-8 (5 + len), `MARK` (1), the timestamp
/// (`BININT` + i32 = 5 below 2^31, else `LONG1` + length byte + 9 bytes = 11), `BINFLOAT` +
/// f64 (9), `TUPLE` (1) for the inner pair and `TUPLE` (1) for the outer one.
const fn point_size(path_len: usize, timestamp: u64) -> usize {
    let ts = if timestamp < 0x8000_0000 { 5 } else { 11 };
    1 + (5 + path_len) + 1 + ts + 9 + 1 + 1
}

/// One queued point; its path is `paths[start..end]`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    start: usize,
    end: usize,
    timestamp: u64,
    value: f64,
}

impl Entry {
    fn size(&self) -> usize {
        point_size(self.end - self.start, self.timestamp)
    }
}

/// Writes pickle frames for carbon into a caller-owned buffer, reusing its allocations.
#[derive(Debug)]
pub(crate) struct PickleFrames {
    /// Most payload bytes per frame (header excluded); at most `u32::MAX`.
    max_frame: usize,
    /// Most points per frame; at least 1.
    max_points: usize,
    /// All queued paths, back to back.
    paths: String,
    entries: Vec<Entry>,
}

impl PickleFrames {
    /// A writer for frames of at most `max_frame` payload bytes (excluding the 4-byte header;
    /// carbon's default limit is 1 MiB) and at most `max_points` points (carbon's relay sends
    /// 500). `max_frame` is capped at `u32::MAX`, and a `max_points` of 0 counts as 1.
    pub(crate) fn new(max_frame: usize, max_points: usize) -> Self {
        Self {
            max_frame: max_frame.min(u32::MAX as usize),
            max_points: max_points.max(1),
            paths: String::new(),
            entries: Vec::new(),
        }
    }

    /// Queues one point (path must already be a valid Graphite path; value finite).
    ///
    /// Returns false, queueing nothing, if the point alone cannot fit in a frame (the path is
    /// too long) or the path is not UTF-8; the caller counts it as dropped.
    pub(crate) fn push(&mut self, path: &[u8], timestamp: u64, value: f64) -> bool {
        debug_assert!(
            value.is_finite(),
            "pickled values must be finite, got {value}"
        );
        if frame_overhead(1) + point_size(path.len(), timestamp) > self.max_frame {
            return false;
        }
        let Ok(path) = std::str::from_utf8(path) else {
            return false;
        };
        let start = self.paths.len();
        self.paths.push_str(path);
        self.entries.push(Entry {
            start,
            end: self.paths.len(),
            timestamp,
            value,
        });
        true
    }

    /// Serialises everything queued into frames (header + pickle each) appended to `out` (not
    /// cleared), splitting into as many frames as needed so no frame's payload exceeds
    /// `max_frame` and no frame has more than `max_points` points; appends each frame's byte
    /// range of `out` (header included) to `frames` (not cleared either). Clears the queue.
    /// Writes nothing when nothing is queued.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, frames: &mut Vec<Range<usize>>) {
        self.finish_over(None, out, frames);
        self.paths.clear();
    }

    /// Queues one point whose path is `text[start..end]` of the `text` later given to
    /// [`finish_over`](Self::finish_over), without copying it; same checks as
    /// [`push`](Self::push), the text being UTF-8 already.
    fn push_span(&mut self, start: usize, end: usize, timestamp: u64, value: f64) -> bool {
        if frame_overhead(1) + point_size(end - start, timestamp) > self.max_frame {
            return false;
        }
        self.entries.push(Entry {
            start,
            end,
            timestamp,
            value,
        });
        true
    }

    /// Forgets everything queued.
    fn discard(&mut self) {
        self.entries.clear();
        self.paths.clear();
    }

    /// [`finish`](Self::finish), the queued paths being spans of `text` (from
    /// [`push_span`](Self::push_span)), or of the copied paths when `text` is `None`.
    fn finish_over(
        &mut self,
        text: Option<&str>,
        out: &mut Vec<u8>,
        frames: &mut Vec<Range<usize>>,
    ) {
        let paths = text.unwrap_or(&self.paths);
        let mut first = 0;
        while first < self.entries.len() {
            let mut end = self.frame_end(first);
            loop {
                let start = out.len();
                out.extend_from_slice(&[0; HEADER_LEN]);
                let chunk = Chunk {
                    paths,
                    entries: &self.entries[first..end],
                };
                let written = serde_pickle::to_writer(out, &chunk, SerOptions::new().proto_v2());
                let payload_len = out.len() - start - HEADER_LEN;
                match (written, u32::try_from(payload_len)) {
                    (Ok(()), Ok(len)) if payload_len <= self.max_frame => {
                        out[start..start + HEADER_LEN].copy_from_slice(&len.to_be_bytes());
                        frames.push(start..out.len());
                        first = end;
                        break;
                    }
                    _ => {
                        // Unreachable while `point_size` matches serde-pickle (a test checks
                        // it), and writing to a `Vec` cannot fail: roll back, then retry with
                        // half the points, or skip a point that cannot be written at all.
                        out.truncate(start);
                        if end - first > 1 {
                            end = first + (end - first) / 2;
                        } else {
                            first = end;
                            break;
                        }
                    }
                }
            }
        }
        self.entries.clear();
    }

    /// The end of the longest run of queued points from `first` that fits in one frame.
    /// `push` guarantees any single point fits, so the run is never empty.
    fn frame_end(&self, first: usize) -> usize {
        let last = self
            .entries
            .len()
            .min(first.saturating_add(self.max_points));
        let mut size = frame_overhead(0);
        let mut end = first;
        for (count, entry) in (1..).zip(&self.entries[first..last]) {
            size += entry.size() + (frame_overhead(count) - frame_overhead(count - 1));
            if size > self.max_frame && end > first {
                break;
            }
            end += 1;
        }
        end
    }
}

/// A borrowing view of some queued points that serialises as a list of
/// `(path, (timestamp, value))` tuples, without building owned strings.
struct Chunk<'a> {
    paths: &'a str,
    entries: &'a [Entry],
}

impl Serialize for Chunk<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.entries.len()))?;
        for entry in self.entries {
            seq.serialize_element(&Point {
                path: &self.paths[entry.start..entry.end],
                timestamp: entry.timestamp,
                value: entry.value,
            })?;
        }
        seq.end()
    }
}

/// One `(path, (timestamp, value))` tuple.
struct Point<'a> {
    path: &'a str,
    timestamp: u64,
    value: f64,
}

impl Serialize for Point<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut outer = serializer.serialize_tuple(2)?;
        outer.serialize_element(self.path)?;
        outer.serialize_element(&(self.timestamp, self.value))?;
        outer.end()
    }
}

// The transcoder from plaintext payloads, in a file of its own.
#[path = "pickle_wire.rs"]
mod wire;
pub(crate) use wire::PickleWire;

#[cfg(test)]
#[path = "pickle_tests.rs"]
mod tests;
