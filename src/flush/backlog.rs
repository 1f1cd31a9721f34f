//! The stream backlog: complete lines that a stream transport did not accept, kept (up to a
//! byte bound) for the next connection.
//!
//! Only whole, newline-terminated lines go in, so what comes out can be re-sent as is. When
//! the bound is reached the *oldest* lines are dropped first (and reported), since fresh
//! values matter more than stale ones on a dashboard. Lines that form one chunk (the Etsy
//! negative-gauge pair) are dropped or resumed together, never split; the caller says which
//! lines continue their predecessor.

/// Tells whether a line (second argument) must travel with the line before it (first); the
/// encoder's `chunk_rule`.
pub(crate) type ChunkRule = fn(&[u8], &[u8]) -> bool;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    bytes: Vec<u8>,
    max_bytes: usize,
}

impl Backlog {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            bytes: Vec::new(),
            max_bytes,
        }
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Number of lines held.
    pub(crate) fn lines(&self) -> u64 {
        count_lines(&self.bytes)
    }

    /// Appends complete lines; returns the number of lines dropped to stay within the bound
    /// (the oldest first, possibly some of those just added).
    pub(crate) fn push(&mut self, lines: &[u8], continues: ChunkRule) -> u64 {
        debug_assert!(lines.is_empty() || lines.ends_with(b"\n"));
        self.bytes.extend_from_slice(lines);
        if self.bytes.len() <= self.max_bytes {
            return 0;
        }
        let excess = self.bytes.len() - self.max_bytes;
        // Cut at the end of the line holding the excess-th byte, so no partial line remains...
        let mut cut = self.bytes[excess.saturating_sub(1)..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |p| excess + p);
        // ...and past any line that continues a dropped one.
        while cut < self.bytes.len() {
            let next_end = next_line_end(&self.bytes, cut);
            if !continues(
                last_line(&self.bytes[..cut]),
                &self.bytes[cut..next_end - 1],
            ) {
                break;
            }
            cut = next_end;
        }
        let dropped = count_lines(&self.bytes[..cut]);
        self.bytes.drain(..cut);
        dropped
    }

    /// The longest prefix of whole lines of at most `max_len` bytes (at least one line).
    pub(crate) fn front(&self, max_len: usize) -> &[u8] {
        let window = &self.bytes[..self.bytes.len().min(max_len)];
        if let Some(end) = window.iter().rposition(|&b| b == b'\n') {
            &self.bytes[..=end]
        } else {
            // A line longer than the limit cannot be queued by the encoder; send it whole.
            &self.bytes[..next_line_end(&self.bytes, 0)]
        }
    }

    /// Removes the first `len` bytes (which must end at a line boundary).
    pub(crate) fn consume(&mut self, len: usize) {
        self.bytes.drain(..len);
    }

    /// Empties the backlog, returning how many lines it held.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self.lines();
        self.bytes.clear();
        n
    }
}

/// Lines in newline-terminated text.
#[allow(
    clippy::naive_bytecount,
    reason = "off the hot path; not worth a dependency"
)]
pub(crate) fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// End (exclusive, after its newline) of the line starting at `start`.
fn next_line_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| start + p + 1)
}

/// The last line of newline-terminated `bytes`, without its newline (empty if none).
fn last_line(bytes: &[u8]) -> &[u8] {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.iter()
        .rposition(|&b| b == b'\n')
        .map_or(body, |p| &body[p + 1..])
}

/// Where to resume after a write that stopped at byte `offset` of `payload`: the start of the
/// chunk holding that byte (or `payload.len()` when everything was written). Everything
/// before it was fully written and forms whole chunks.
pub(crate) fn resume_point(payload: &[u8], offset: usize, continues: ChunkRule) -> usize {
    if offset >= payload.len() {
        return payload.len();
    }
    let mut start = payload[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    while start > 0 {
        let line = &payload[start..next_line_end(payload, start) - 1];
        let prev = last_line(&payload[..start]);
        if !continues(prev, line) {
            break;
        }
        start -= prev.len() + 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Encoder;

    fn never(_: &[u8], _: &[u8]) -> bool {
        false
    }

    fn statsd_pairs(prev: &[u8], line: &[u8]) -> bool {
        let e = crate::encode::StatsdEncoder::new(
            None,
            crate::LabelHandling::Drop,
            vec![],
            crate::encode::HistogramRules::default(),
        );
        Encoder::Statsd(e).chunk_rule()(prev, line)
    }

    #[test]
    fn the_oldest_lines_are_dropped_first_when_the_bound_is_reached() {
        let mut b = Backlog::new(10);
        assert_eq!(b.push(b"aaa\nbbb\n", never), 0);
        assert_eq!(b.push(b"ccc\n", never), 1);
        assert_eq!(b.front(100), b"bbb\nccc\n");
        assert_eq!(b.lines(), 2);
    }

    #[test]
    fn dropping_the_oldest_never_keeps_half_a_negative_gauge_pair() {
        // 13 bytes in a 10-byte backlog: cutting at the first line alone would keep "g:-5|g",
        // which Etsy would apply as a delta.
        let mut b = Backlog::new(10);
        assert_eq!(b.push(b"g:0|g\ng:-5|g\n", statsd_pairs), 2);
        assert!(b.is_empty());
        let mut b = Backlog::new(16);
        assert_eq!(b.push(b"c:1|c\ng:0|g\ng:-5|g\n", statsd_pairs), 1);
        assert_eq!(b.front(100), b"g:0|g\ng:-5|g\n");
    }

    #[test]
    fn the_front_is_cut_at_a_line_boundary_within_the_limit() {
        let mut b = Backlog::new(100);
        b.push(b"aaa\nbbb\nccc\n", never);
        assert_eq!(b.front(9), b"aaa\nbbb\n");
        b.consume(8);
        assert_eq!(b.front(9), b"ccc\n");
        assert_eq!(b.clear(), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn a_partially_written_line_is_resent_from_its_start() {
        let p = b"aaa\nbbb\nccc\n";
        assert_eq!(resume_point(p, 0, never), 0);
        assert_eq!(resume_point(p, 4, never), 4);
        assert_eq!(resume_point(p, 6, never), 4);
        assert_eq!(resume_point(p, 12, never), 12);
    }

    #[test]
    fn a_write_that_stops_inside_a_pair_resends_the_whole_pair() {
        let p = b"c:1|c\ng:0|g\ng:-5|g\n";
        // Stopped inside "g:-5|g": resume at "g:0|g" (re-sending 0 first is harmless).
        assert_eq!(resume_point(p, 14, statsd_pairs), 6);
        assert_eq!(resume_point(p, 8, statsd_pairs), 6);
        assert_eq!(resume_point(p, 3, statsd_pairs), 0);
    }
}
