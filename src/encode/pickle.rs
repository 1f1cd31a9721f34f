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
//! Allocation: the queued paths live in one reusable `String` and the points in one reusable
//! `Vec`; `finish` serialises straight into the caller's `out`. `serde-pickle` (1.x) does not
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

/// Turns plaintext payloads (`path value timestamp\n` lines, as the Graphite encoder writes
/// them) into pickle frames, reusing its buffers: the flusher encodes every interval once, as
/// plaintext (the lines the backlog keeps and the statistics count), and only the wire form
/// differs.
///
/// The transcoding is one pass over the payload, costing about what formatting the lines did
/// (issue 15; `benches/pickle.rs` measures it against plaintext): the payload is checked as
/// UTF-8 once, not per field; lines and fields are found with `str`'s byte searches; the
/// timestamp and an integral value of up to 15 digits (every counter, and every integral
/// gauge the encoder writes) are read digit by digit, exactly (below 2^53 every integer is an
/// `f64`), anything else by the standard library's correctly rounded parser; and the paths are
/// serialised straight from the payload, not copied. A line that is not `path value
/// timestamp` with a number in both places is skipped, as is a payload line that is not UTF-8.
#[derive(Debug)]
pub(crate) struct PickleWire {
    frames: PickleFrames,
    out: Vec<u8>,
    ranges: Vec<Range<usize>>,
}

impl PickleWire {
    /// Frames of at most `max_frame` pickle bytes (carbon accepts up to 1 MiB).
    pub(crate) fn new(max_frame: usize) -> Self {
        Self {
            frames: PickleFrames::new(max_frame, usize::MAX),
            out: Vec::new(),
            ranges: Vec::new(),
        }
    }

    /// The frames (each with its 4-byte big-endian header) for the lines of `payload`.
    pub(crate) fn encode(&mut self, payload: &[u8]) -> &[u8] {
        self.out.clear();
        self.ranges.clear();
        if let Ok(text) = std::str::from_utf8(payload) {
            let bytes = text.as_bytes();
            let mut at = 0;
            while at < bytes.len() {
                if let Some(line) = counter_like_line(bytes, at) {
                    self.frames
                        .push_span(at, line.path_end, line.timestamp, line.value);
                    at = line.next;
                    continue;
                }
                let end = text[at..].find('\n').map_or(bytes.len(), |p| at + p);
                if let Some((path_len, ts, value)) = fields(&bytes[at..end]) {
                    self.frames.push_span(at, at + path_len, ts, value);
                }
                at = end + 1;
            }
            self.frames
                .finish_over(Some(text), &mut self.out, &mut self.ranges);
        } else {
            // Not ours (the encoder writes UTF-8): line by line, keeping the UTF-8 lines.
            for line in payload.split(|&b| b == b'\n') {
                if let Some((path_len, ts, value)) = fields(line) {
                    self.frames.push(&line[..path_len], ts, value);
                }
            }
            self.frames.finish(&mut self.out, &mut self.ranges);
        }
        &self.out
    }
}

/// A line read by [`counter_like_line`].
struct FastLine {
    /// End of the path (the first space).
    path_end: usize,
    timestamp: u64,
    value: f64,
    /// Start of the next line.
    next: usize,
}

/// The line at `bytes[at..]` if it is the common shape, `path int ts\n` with a path of no
/// spaces, an integer value of at most 15 digits (optionally negative) and a timestamp of at
/// most 19 digits, read in one forward pass; `None` otherwise (then [`fields`] reads it). For
/// such a line the two spaces found are the last two, so the result is the same.
fn counter_like_line(bytes: &[u8], at: usize) -> Option<FastLine> {
    let path_end = find_space_or_newline(bytes, at)?;
    if path_end == at || bytes[path_end] != b' ' {
        return None;
    }
    let (negative, start) = match bytes.get(path_end + 1) {
        Some(b'-') => (true, path_end + 2),
        _ => (false, path_end + 1),
    };
    let (n, end) = leading_digits(bytes, start, F64_EXACT_DIGITS)?;
    if bytes.get(end) != Some(&b' ') {
        return None;
    }
    let (timestamp, ts_end) = leading_digits(bytes, end + 1, U64_DIGITS)?;
    if bytes.get(ts_end) != Some(&b'\n') {
        return None;
    }
    #[allow(
        clippy::cast_precision_loss,
        reason = "at most 15 digits: below 2^53, so exact"
    )]
    let v = n as f64;
    Some(FastLine {
        path_end,
        timestamp,
        value: if negative { -v } else { v },
        next: ts_end + 1,
    })
}

/// The number written by the ASCII digits from `bytes[start]` on and where they end, if there
/// are 1 to `max` of them.
fn leading_digits(bytes: &[u8], start: usize, max: usize) -> Option<(u64, usize)> {
    let mut n = 0u64;
    let mut i = start;
    while let Some(d) = bytes.get(i).map(|b| b.wrapping_sub(b'0')).filter(|&d| d <= 9) {
        if i - start == max {
            return None;
        }
        n = n * 10 + u64::from(d);
        i += 1;
    }
    (i > start).then_some((n, i))
}

/// The index of the first space or newline in `bytes[from..]`, eight bytes at a time (the
/// classic zero-byte test on `word ^ pattern`: its lowest flagged byte is always a true
/// match, so the first one is found exactly).
fn find_space_or_newline(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let rest = bytes.get(from..)?;
    let mut words = rest.chunks_exact(8);
    for (k, word) in words.by_ref().enumerate() {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let w = u64::from_le_bytes(word);
        let space = w ^ (ONES * u64::from(b' '));
        let newline = w ^ (ONES * u64::from(b'\n'));
        let found = ((space.wrapping_sub(ONES) & !space) | (newline.wrapping_sub(ONES) & !newline))
            & HIGHS;
        if found != 0 {
            return Some(from + k * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&b| b == b' ' || b == b'\n')
        .map(|p| bytes.len() - tail.len() + p)
}

/// The path length, timestamp and value of a plaintext line `path value timestamp` (without
/// its newline): the path is everything before the last two spaces. `None` for an empty line
/// or one whose value or timestamp is not a number; debug builds assert that both spaces are
/// there (our encoder writes nothing else).
fn fields(line: &[u8]) -> Option<(usize, u64, f64)> {
    if line.is_empty() {
        return None;
    }
    let spaces = line.iter().rposition(|&b| b == b' ').and_then(|ts_at| {
        let value_at = line[..ts_at].iter().rposition(|&b| b == b' ')?;
        Some((value_at, ts_at))
    });
    let Some((value_at, ts_at)) = spaces else {
        debug_assert!(false, "not a plaintext line: {line:?}");
        return None;
    };
    let ts = parse_timestamp(&line[ts_at + 1..])?;
    let value = parse_value(&line[value_at + 1..ts_at])?;
    Some((value_at, ts, value))
}

/// Most decimal digits read exactly by hand: every 19-digit number fits a `u64`, and every
/// 15-digit one is below 2^53, so exact as an `f64` too.
const U64_DIGITS: usize = 19;
const F64_EXACT_DIGITS: usize = 15;

/// The value of `digits` if it is 1 to `max` ASCII digits, else `None`.
fn digits_value(digits: &[u8], max: usize) -> Option<u64> {
    if digits.is_empty() || digits.len() > max {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let d = b.wrapping_sub(b'0');
        (d <= 9).then(|| n * 10 + u64::from(d))
    })
}

/// A timestamp as `u64::from_str` reads it.
fn parse_timestamp(field: &[u8]) -> Option<u64> {
    digits_value(field, U64_DIGITS)
        .or_else(|| std::str::from_utf8(field).ok()?.parse().ok())
}

/// A value as `f64::from_str` reads it (the same bits, `-0` included).
fn parse_value(field: &[u8]) -> Option<f64> {
    let (negative, digits) = match field {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, field),
    };
    if let Some(n) = digits_value(digits, F64_EXACT_DIGITS) {
        #[allow(
            clippy::cast_precision_loss,
            reason = "at most 15 digits: below 2^53, so exact"
        )]
        let v = n as f64;
        return Some(if negative { -v } else { v });
    }
    std::str::from_utf8(field).ok()?.parse().ok()
}

#[cfg(test)]
#[path = "pickle_tests.rs"]
mod tests;
