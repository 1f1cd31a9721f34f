//! `PayloadWriter`: packs encoded lines into payloads of at most `max_len` bytes.
//!
//! All payloads of one batch live in one reusable `Vec<u8>`; a payload is a range of it. An
//! encoder appends a *chunk* (one or more complete, newline-terminated lines that must travel
//! together, such as the Etsy `0|g` + `-5|g` pair) through [`PayloadWriter::line_buf`] and then
//! calls [`PayloadWriter::commit`]. A chunk that fits in the current payload joins it; one that
//! does not starts the next payload; one longer than the limit is rolled back and counted by
//! the caller. So a line is never split and no payload is ever over the limit.
//!
//! Every payload is kept as whole newline-terminated [`Lines`]; the framing only decides
//! what counts against the limit. A datagram (and a length-prefixed frame) is sent without
//! its final newline (receivers split on `\n`, and some log an empty trailing line as
//! malformed), so that newline does not count; a stream keeps it, since the newline is the
//! only frame on a stream. The limit counts exactly the bytes that are sent. Dropping the
//! final newline is the transport's job, so a payload that waits in the backlog is still
//! whole lines.
//!
//! For Graphite pickle ([`keeping_points`](PayloadWriter::keeping_points)), the encoder also
//! records each line's [`Point`] (where its path is, its timestamp and value) as it writes
//! the line, so delivery can pickle a fresh payload without reading its text back. The points
//! follow the lines exactly: a rolled-back chunk drops its points, and a chunk that starts a
//! new payload takes its points along.
//!
//! A batch may be handed over in parts: once its finished payloads are sent,
//! [`drop_finished`](PayloadWriter::drop_finished) forgets them and keeps the payload being
//! filled, so the flusher holds one part of an interval at a time and the payloads are cut
//! exactly as if the batch had been written whole.
//!
//! The writer does no I/O. Once its buffers have grown to a batch's (or a part's) size, a
//! batch of the same size allocates nothing.

use std::ops::Range;

use crate::lines::Lines;

/// How payloads are framed on the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One payload per datagram; lines separated by `\n`, no trailing newline.
    Datagram,
    /// A byte stream; every line ends with `\n`.
    Stream,
    /// A byte stream of frames, each a 4-byte little-endian length and a payload whose lines
    /// are separated by `\n` with none after the last (DogStatsD over a Unix stream socket).
    /// Payloads here keep their final newline; the transport drops it when it frames them.
    LengthPrefixed,
}

/// Why a chunk was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLong;

/// One finished payload: its byte range, how many lines it carries and which points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PayloadSpan {
    range: Range<usize>,
    lines: u32,
    points: Range<usize>,
}

/// One Graphite line's point, recorded beside the line as the encoder writes it: the point
/// carbon stores when it reads the line. `path` is a byte range of the writer's buffer (see
/// [`PayloadWriter::points`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Point {
    pub(crate) path: Range<usize>,
    pub(crate) timestamp: u64,
    pub(crate) value: f64,
}

/// Packs chunks of lines into payloads. See the module docs.
#[derive(Debug)]
pub(crate) struct PayloadWriter {
    buf: Vec<u8>,
    spans: Vec<PayloadSpan>,
    framing: Framing,
    /// Largest chunk or payload held in `buf`, final newline included: the payload limit,
    /// plus the newline a datagram or frame drops (see [`fresh_capacity`](Self::fresh_capacity)).
    capacity: usize,
    /// Start of the payload being filled.
    payload_start: usize,
    /// Lines committed to the payload being filled.
    payload_lines: u32,
    /// Start of the chunk being written.
    chunk_start: usize,
    /// Whether [`point`](Self::point) records anything (Graphite pickle only).
    keep_points: bool,
    /// The points of every committed line, and then of the pending chunk's.
    points: Vec<Point>,
    /// First point of the payload being filled.
    payload_points: usize,
    /// First point of the chunk being written.
    chunk_points: usize,
}

impl PayloadWriter {
    pub(crate) fn new(max_len: usize, framing: Framing) -> Self {
        let capacity = match framing {
            Framing::Datagram | Framing::LengthPrefixed => max_len.saturating_add(1),
            Framing::Stream => max_len,
        };
        Self {
            buf: Vec::new(),
            spans: Vec::new(),
            framing,
            capacity,
            payload_start: 0,
            payload_lines: 0,
            chunk_start: 0,
            keep_points: false,
            points: Vec::new(),
            payload_points: 0,
            chunk_points: 0,
        }
    }

    /// The same writer, also recording each line's [`Point`] when `keep` (for Graphite
    /// pickle: see the module docs).
    pub(crate) fn keeping_points(mut self, keep: bool) -> Self {
        self.keep_points = keep;
        self
    }

    /// Records the point of the line being written, its path being `path` of the buffer
    /// (absolute offsets into [`line_buf`](Self::line_buf)). Nothing when points are not kept.
    #[inline]
    pub(crate) fn point(&mut self, path: Range<usize>, timestamp: u64, value: f64) {
        if self.keep_points {
            self.points.push(Point {
                path,
                timestamp,
                value,
            });
        }
    }

    /// The buffer to append the next chunk to. Everything appended since the last
    /// `commit`/`rollback` is the chunk.
    pub(crate) fn line_buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Adds the pending chunk (`lines` newline-terminated lines) to the current payload, or
    /// starts a new payload with it. A chunk longer than the limit on its own is discarded.
    /// Always inlined: the encoders call it once a line, and when the flush went out in parts
    /// (`Flusher::walk_on`) the compiler stopped inlining it into the Graphite encoder on its
    /// own, which cost 19 instructions a line (callgrind, `benches/pickle`).
    #[allow(
        clippy::inline_always,
        reason = "measured: the hint alone no longer inlines it into every encoder"
    )]
    #[inline(always)]
    pub(crate) fn commit(&mut self, lines: u32) -> Result<(), TooLong> {
        if self.buf.len() == self.chunk_start {
            return Ok(());
        }
        // Every chunk ends with a newline (the encoders write it), so every payload is whole
        // lines; should one ever not, it is terminated here rather than glued to the next.
        if self.buf.last() != Some(&b'\n') {
            debug_assert!(
                false,
                "an encoder committed a chunk without its final newline"
            );
            self.buf.push(b'\n');
        }
        let chunk_len = self.buf.len() - self.chunk_start;
        // Against `capacity`: a datagram's (or frame's) final newline is not sent.
        if chunk_len > self.capacity {
            self.rollback();
            return Err(TooLong);
        }
        let with_chunk = self.buf.len() - self.payload_start;
        if with_chunk > self.capacity {
            self.close_payload(self.chunk_start, self.chunk_points);
        }
        self.payload_lines += lines;
        self.chunk_start = self.buf.len();
        self.chunk_points = self.points.len();
        Ok(())
    }

    /// Largest chunk (with its final newline) that still fits in the payload being filled.
    pub(crate) fn remaining(&self) -> usize {
        let used = self.chunk_start - self.payload_start;
        self.fresh_capacity().saturating_sub(used)
    }

    /// Largest chunk (with its final newline) that fits in an empty payload.
    pub(crate) fn fresh_capacity(&self) -> usize {
        self.capacity
    }

    /// Discards the pending chunk.
    pub(crate) fn rollback(&mut self) {
        self.buf.truncate(self.chunk_start);
        self.points.truncate(self.chunk_points);
    }

    /// Ends the payload being filled at byte `end` and point `points_end` (the pending
    /// chunk's start, or everything).
    fn close_payload(&mut self, end: usize, points_end: usize) {
        if end > self.payload_start {
            self.spans.push(PayloadSpan {
                range: self.payload_start..end,
                lines: self.payload_lines,
                points: self.payload_points..points_end,
            });
        }
        self.payload_start = end;
        self.payload_lines = 0;
        self.payload_points = points_end;
    }

    /// Closes the payload being filled. Call once all chunks of a flush are committed.
    pub(crate) fn finish(&mut self) {
        self.rollback();
        self.close_payload(self.buf.len(), self.points.len());
    }

    /// Number of finished payloads.
    pub(crate) fn len(&self) -> usize {
        self.spans.len()
    }

    /// The `i`-th finished payload as whole lines (final newline included, whatever the
    /// framing), and the number of lines in it: what delivery and the backlog handle.
    pub(crate) fn lines(&self, i: usize) -> Option<(Lines<'_>, u32)> {
        let span = self.spans.get(i)?;
        // Every committed chunk ends with a newline, so a span always holds whole lines.
        let lines = Lines::new(&self.buf[span.range.clone()])?;
        Some((lines, span.lines))
    }

    /// The points of the `i`-th finished payload's lines, and where the payload starts in the
    /// buffer (a point's path is `path.start - start..path.end - start` of the payload).
    /// `None` unless there is exactly one point per line: points are not kept, or an encoder
    /// wrote a line without recording its point, and the text is then the only truth.
    pub(crate) fn points(&self, i: usize) -> Option<(&[Point], usize)> {
        let span = self.spans.get(i)?;
        let points = self.points.get(span.points.clone())?;
        (points.len() == span.lines as usize).then_some((points, span.range.start))
    }

    /// The `i`-th finished payload as its framing puts it on the wire (a datagram without
    /// its final newline; stream payloads as they are, a length-prefixed one before the
    /// transport frames it), and the number of lines in it.
    pub(crate) fn payload(&self, i: usize) -> Option<(&[u8], u32)> {
        let (lines, n) = self.lines(i)?;
        let bytes = match self.framing {
            Framing::Datagram => lines.body(),
            Framing::Stream | Framing::LengthPrefixed => lines.bytes(),
        };
        Some((bytes, n))
    }

    /// Forgets every payload, keeping the allocations for the next flush.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
        self.points.clear();
        self.payload_points = 0;
        self.chunk_points = 0;
        self.payload_start = 0;
        self.payload_lines = 0;
        self.chunk_start = 0;
    }

    /// Gives back the memory of a batch written whole, on an empty writer, once it holds more
    /// than four times `part` bytes: after a flush whose destination failed mid-interval,
    /// the writer would otherwise keep a whole interval's size for good. The buffer shrinks
    /// to twice `part`, the spans and points to nothing (the next part regrows them). A
    /// writer that only ever held parts of `part` bytes (at most `part` plus the payload being
    /// filled) is never above the bound, so this does not allocate between healthy flushes.
    pub(crate) fn trim(&mut self, part: usize) {
        debug_assert!(self.buf.is_empty(), "trim an empty writer");
        if self.buf.capacity() > part.saturating_mul(4) {
            self.buf.shrink_to(part.saturating_mul(2));
            self.spans.shrink_to(0);
            self.points.shrink_to(0);
        }
    }

    /// Forgets the finished payloads, which the caller has handed over, and keeps the one
    /// being filled, moved to the start of the buffer with its points (see the module docs
    /// on parts). Call between chunks (nothing pending). Allocates nothing.
    pub(crate) fn drop_finished(&mut self) {
        debug_assert_eq!(self.chunk_start, self.buf.len(), "a chunk is pending");
        let (bytes, points) = (self.payload_start, self.payload_points);
        self.buf.drain(..bytes);
        self.spans.clear();
        self.points.drain(..points);
        for p in &mut self.points {
            p.path = p.path.start - bytes..p.path.end - bytes;
        }
        self.payload_start = 0;
        self.chunk_start -= bytes;
        self.payload_points = 0;
        self.chunk_points -= points;
    }

    /// Every committed chunk so far, back to back, whatever payload it is in: whole
    /// newline-terminated lines.
    pub(crate) fn committed(&self) -> &[u8] {
        &self.buf[..self.chunk_start]
    }

    /// The points of the [`committed`](Self::committed) lines, in order (paths are offsets
    /// into `committed()`); `None` unless there is exactly one per line, as for
    /// [`points`](Self::points).
    pub(crate) fn committed_points(&self) -> Option<&[Point]> {
        let points = self.points.get(..self.chunk_points)?;
        let lines: u64 = self.spans.iter().map(|s| u64::from(s.lines)).sum::<u64>()
            + u64::from(self.payload_lines);
        (points.len() as u64 == lines).then_some(points)
    }

    /// Tests: the bytes the buffer has room for.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes held, committed or pending, across all payloads.
    pub(crate) fn buffered_len(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(w: &mut PayloadWriter, line: &str) -> Result<(), TooLong> {
        w.line_buf().extend_from_slice(line.as_bytes());
        w.line_buf().push(b'\n');
        w.commit(1)
    }

    fn payloads(w: &PayloadWriter) -> Vec<(String, u32)> {
        (0..w.len())
            .map(|i| {
                let (p, n) = w.payload(i).unwrap();
                (String::from_utf8(p.to_vec()).unwrap(), n)
            })
            .collect()
    }

    #[test]
    fn datagrams_are_packed_up_to_exactly_the_limit_without_a_trailing_newline() {
        // "aaaa\nbbbb" is 9 bytes: exactly at a limit of 9.
        let mut w = PayloadWriter::new(9, Framing::Datagram);
        push(&mut w, "aaaa").unwrap();
        push(&mut w, "bbbb").unwrap();
        push(&mut w, "cc").unwrap();
        w.finish();
        assert_eq!(
            payloads(&w),
            vec![("aaaa\nbbbb".into(), 2), ("cc".into(), 1)]
        );
    }

    #[test]
    fn a_line_exactly_at_the_limit_is_sent_and_one_byte_over_is_dropped() {
        let mut w = PayloadWriter::new(4, Framing::Datagram);
        assert_eq!(push(&mut w, "abcd"), Ok(()));
        assert_eq!(push(&mut w, "abcde"), Err(TooLong));
        push(&mut w, "x").unwrap();
        w.finish();
        assert_eq!(payloads(&w), vec![("abcd".into(), 1), ("x".into(), 1)]);
    }

    #[test]
    fn stream_payloads_keep_every_newline_and_count_it() {
        let mut w = PayloadWriter::new(10, Framing::Stream);
        push(&mut w, "aaaa").unwrap();
        push(&mut w, "bbbb").unwrap();
        push(&mut w, "cccc").unwrap();
        w.finish();
        assert_eq!(
            payloads(&w),
            vec![("aaaa\nbbbb\n".into(), 2), ("cccc\n".into(), 1)]
        );
    }

    #[test]
    fn a_multi_line_chunk_is_never_split_across_payloads() {
        let mut w = PayloadWriter::new(12, Framing::Datagram);
        push(&mut w, "first").unwrap();
        w.line_buf().extend_from_slice(b"g:0|g\ng:-5|g\n");
        w.commit(2).unwrap();
        w.finish();
        assert_eq!(
            payloads(&w),
            vec![("first".into(), 1), ("g:0|g\ng:-5|g".into(), 2)]
        );
    }

    #[test]
    fn remaining_space_is_exactly_what_the_next_chunk_may_use() {
        for framing in [Framing::Datagram, Framing::Stream, Framing::LengthPrefixed] {
            let mut w = PayloadWriter::new(20, framing);
            push(&mut w, "0123456789").unwrap();
            let room = w.remaining();
            w.line_buf().extend(std::iter::repeat_n(b'x', room - 1));
            w.line_buf().push(b'\n');
            w.commit(1).unwrap();
            w.finish();
            assert_eq!(
                w.len(),
                1,
                "{framing:?}: a chunk of exactly the remaining size joins the payload"
            );
        }
    }

    #[test]
    fn length_prefixed_payloads_keep_their_newlines_but_count_without_the_last() {
        let mut w = PayloadWriter::new(9, Framing::LengthPrefixed);
        push(&mut w, "aaaa").unwrap();
        push(&mut w, "bbbb").unwrap();
        push(&mut w, "c").unwrap();
        w.finish();
        assert_eq!(
            payloads(&w),
            vec![("aaaa\nbbbb\n".into(), 2), ("c\n".into(), 1)]
        );
    }

    #[test]
    fn points_are_offered_only_while_every_line_has_one() {
        let mut w = PayloadWriter::new(100, Framing::Stream).keeping_points(true);
        w.point(0..1, 7, 1.0);
        push(&mut w, "a").unwrap();
        assert_eq!(w.committed_points().map(<[_]>::len), Some(1));
        // A line committed without its point: the text is the only truth from here on.
        push(&mut w, "b").unwrap();
        assert_eq!(w.committed_points(), None);
        w.finish();
        assert_eq!(w.points(0), None);
        assert_eq!(
            PayloadWriter::new(100, Framing::Stream).committed_points(),
            Some(&[][..]),
            "no line, no point"
        );
    }

    #[test]
    fn clearing_keeps_capacity_and_starts_empty() {
        let mut w = PayloadWriter::new(100, Framing::Datagram);
        push(&mut w, "a").unwrap();
        w.finish();
        let cap = w.buf.capacity();
        w.clear();
        w.finish();
        assert_eq!(w.len(), 0);
        assert_eq!(w.buf.capacity(), cap);
    }

    #[test]
    fn a_writer_that_held_a_whole_batch_gives_it_back_and_one_that_held_parts_keeps_its_memory() {
        let mut w = PayloadWriter::new(100, Framing::Datagram);
        let part = 1000;
        let line = "x".repeat(60);
        let fill = |w: &mut PayloadWriter, bytes: usize| {
            w.clear();
            while w.buffered_len() < bytes {
                push(w, &line).unwrap();
            }
            w.finish();
            w.clear();
        };
        fill(&mut w, part * 2);
        let cap = w.buf.capacity();
        w.trim(part);
        assert_eq!(w.buf.capacity(), cap, "a part's worth is kept");
        fill(&mut w, part * 20);
        w.trim(part);
        assert!(w.buf.capacity() <= part * 2, "{}", w.buf.capacity());
        assert_eq!((w.spans.capacity(), w.points.capacity()), (0, 0));
        // And it writes on as before.
        push(&mut w, "a").unwrap();
        w.finish();
        assert_eq!(w.lines(0).unwrap().1, 1);
    }

    /// Every finished payload from `from` on: its lines, line count, and its points with
    /// paths relative to the payload.
    type Seen = Vec<(Vec<u8>, u32, Vec<(Range<usize>, u64, u64)>)>;
    fn finished(w: &PayloadWriter, seen: &mut Seen) {
        for i in 0..w.len() {
            let (lines, n) = w.lines(i).unwrap();
            let (points, start) = w.points(i).expect("a point per line");
            let points = points
                .iter()
                .map(|p| {
                    (
                        p.path.start - start..p.path.end - start,
                        p.timestamp,
                        p.value.to_bits(),
                    )
                })
                .collect();
            seen.push((lines.bytes().to_vec(), n, points));
        }
    }

    proptest::proptest! {
        #[test]
        fn payloads_dropped_as_they_finish_leave_the_same_payloads_and_points_as_a_whole_batch(
            lines in proptest::collection::vec((1..60_usize, proptest::bool::ANY), 1..80),
            max_len in 8..200_usize,
            stream in proptest::bool::ANY,
        ) {
            let framing = if stream { Framing::Stream } else { Framing::Datagram };
            let run = |drops: bool| {
                let mut w = PayloadWriter::new(max_len, framing).keeping_points(true);
                let mut seen = Seen::new();
                for (i, &(len, drop_after)) in lines.iter().enumerate() {
                    let start = w.line_buf().len();
                    let text: String = (0..len).map(|k| char::from(b"abcdefghijklmnopqrstuvwxyz"[(i + k) % 26])).collect();
                    w.line_buf().extend_from_slice(text.as_bytes());
                    w.point(start..start + len, i as u64, f64::from(u32::try_from(len).unwrap()));
                    w.line_buf().push(b'\n');
                    // Too long for any payload: rolled back with its point.
                    let _ = w.commit(1);
                    if drops && drop_after {
                        finished(&w, &mut seen);
                        w.drop_finished();
                        proptest::prop_assert!(w.buffered_len() <= w.fresh_capacity());
                    }
                }
                w.finish();
                finished(&w, &mut seen);
                Ok(seen)
            };
            proptest::prop_assert_eq!(run(true)?, run(false)?);
        }
    }
}
