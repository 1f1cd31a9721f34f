//! [`PickleWire`]: a flush's plaintext payloads as carbon pickle frames, in one pass over each
//! payload (see [`PickleFrames`](super::PickleFrames) for the frames themselves).

use std::ops::Range;

use super::PickleFrames;
use crate::encode::buffer::Point;

/// Turns plaintext payloads (`path value timestamp\n` lines, as the Graphite encoder writes
/// them) into pickle frames, reusing its buffers: the flusher encodes every interval once, as
/// plaintext (the lines the backlog keeps and the statistics count), and only the wire form
/// differs.
///
/// A fresh payload comes with the points the encoder recorded beside its lines
/// ([`encode_points`](Self::encode_points)): then nothing is parsed, and only the paths are
/// taken from the text; so do the direct client's payloads and the message of
/// [`GraphitePoints`](crate::GraphitePoints). A payload without them (from the backlog, or the
/// exporter's own telemetry) is read back from its text ([`encode`](Self::encode)); both
/// give the same frames, which a test checks.
///
/// Reading the text back is one pass over the payload, costing about what formatting the
/// lines did; from points it costs a sixth of that (BENCHMARKS.md, issue 15, session 12,
/// has the instruction counts; `benches/pickle.rs` measures both): the payload is checked as
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

    /// The frames for `payload` from the points recorded beside its lines, one per line in
    /// order (see [`PayloadWriter::points`](crate::encode::PayloadWriter::points); `start` is
    /// where the payload starts in the writer's buffer). Should a path not lie on UTF-8
    /// boundaries of the payload, or the payload not be UTF-8, the text is read instead, as
    /// [`encode`](Self::encode) does.
    pub(crate) fn encode_points(
        &mut self,
        payload: &[u8],
        points: &[Point],
        start: usize,
    ) -> &[u8] {
        self.out.clear();
        self.ranges.clear();
        let Ok(text) = std::str::from_utf8(payload) else {
            return self.encode(payload);
        };
        for point in points {
            let path = (point.path.start.checked_sub(start))
                .zip(point.path.end.checked_sub(start))
                .map(|(from, to)| from..to)
                .filter(|path| text.get(path.clone()).is_some());
            let Some(path) = path else {
                self.frames.discard();
                return self.encode(payload);
            };
            self.frames
                .push_span(path.start, path.end, point.timestamp, point.value);
        }
        self.frames
            .finish_over(Some(text), &mut self.out, &mut self.ranges);
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
    while let Some(d) = bytes
        .get(i)
        .map(|b| b.wrapping_sub(b'0'))
        .filter(|&d| d <= 9)
    {
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
        let found =
            ((space.wrapping_sub(ONES) & !space) | (newline.wrapping_sub(ONES) & !newline)) & HIGHS;
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
    digits_value(field, U64_DIGITS).or_else(|| std::str::from_utf8(field).ok()?.parse().ok())
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
#[path = "pickle_wire_tests.rs"]
mod tests;
