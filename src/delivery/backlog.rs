//! The backlog: whole lines the transport did not take, kept (up to a byte bound) for the
//! next attempt, for every transport kind alike.
//!
//! It takes only [`Lines`], so it can never hold a partial or unterminated line, and what
//! comes out is re-framed by the transport like any other payload. When the bound is reached
//! the *oldest* chunks are dropped first (and reported), since fresh values matter more than
//! stale ones on a dashboard; a chunk (the Etsy negative-gauge pair) is dropped whole.

use crate::lines::{ChunkRule, Lines};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Backlog {
    /// Newline-terminated lines, oldest first. Only ever extended by whole [`Lines`] and cut
    /// at chunk starts.
    bytes: Vec<u8>,
    max_bytes: usize,
    /// Tests: the lines dropped to stay within the bound, and those cleared, as counted.
    #[cfg(test)]
    pub(crate) ledger: super::Ledger,
}

impl Backlog {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            bytes: Vec::new(),
            max_bytes,
            #[cfg(test)]
            ledger: super::Ledger::default(),
        }
    }

    /// Bytes held.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Everything held, oldest first.
    pub(crate) fn lines(&self) -> Lines<'_> {
        whole(&self.bytes)
    }

    /// Appends whole lines; returns the number of lines dropped to stay within the bound
    /// (the oldest chunks first, possibly some of those just added).
    pub(crate) fn push(&mut self, lines: Lines<'_>, continues: ChunkRule) -> u64 {
        self.bytes.extend_from_slice(lines.bytes());
        if self.bytes.len() <= self.max_bytes {
            return 0;
        }
        let excess = self.bytes.len() - self.max_bytes;
        // Drop every chunk that starts before the excess-th byte ends...
        let (dropped, _) = self.lines().split_at_chunk(excess - 1, continues);
        // ...including the one holding that byte.
        let cut = dropped.len() + self.lines_from(dropped.len()).front(0, continues).len();
        let count = crate::lines::count_lines(&self.bytes[..cut]);
        #[cfg(test)]
        self.ledger
            .dropped_send
            .extend_from_slice(&self.bytes[..cut]);
        self.bytes.drain(..cut);
        count
    }

    fn lines_from(&self, start: usize) -> Lines<'_> {
        whole(&self.bytes[start..])
    }

    /// The next piece to send: the longest run of whole chunks that fits in `max_len` bytes
    /// (at least one chunk).
    pub(crate) fn front(&self, max_len: usize, continues: ChunkRule) -> Lines<'_> {
        self.lines().front(max_len, continues)
    }

    /// Removes the first `done` bytes, which must be the length of a prefix of whole chunks
    /// of what [`front`](Self::front) returned (the whole piece, or what `split_at_chunk`
    /// says went out).
    pub(crate) fn consume(&mut self, done: usize) {
        debug_assert!(done == 0 || self.bytes.get(done - 1) == Some(&b'\n'));
        self.bytes.drain(..done.min(self.bytes.len()));
    }

    /// Empties the backlog, returning how many lines it held.
    pub(crate) fn clear(&mut self) -> u64 {
        let n = self.lines().count();
        #[cfg(test)]
        self.ledger.dropped_shutdown.extend_from_slice(&self.bytes);
        self.bytes.clear();
        n
    }
}

/// The backlog's bytes (or a suffix of them starting at a chunk) as lines. They are whole
/// lines by construction (only `Lines` go in, and cuts are at chunk starts), so the fallback
/// is never taken.
fn whole(bytes: &[u8]) -> Lines<'_> {
    Lines::new(bytes).unwrap_or_else(|| {
        debug_assert!(false, "the backlog holds whole lines only");
        // Never an empty view of a non-empty backlog (the send loop would not advance):
        // the whole lines there are, up to the last newline.
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        Lines::new(&bytes[..end]).unwrap_or(Lines::EMPTY)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lines::tests::statsd_pairs;

    fn never(_: &[u8], _: &[u8]) -> bool {
        false
    }

    fn lines(b: &[u8]) -> Lines<'_> {
        Lines::new(b).unwrap()
    }

    #[test]
    fn the_oldest_lines_are_dropped_first_when_the_bound_is_reached() {
        let mut b = Backlog::new(10);
        assert_eq!(b.push(lines(b"aaa\nbbb\n"), never), 0);
        assert_eq!(b.push(lines(b"ccc\n"), never), 1);
        assert_eq!(b.front(100, never).bytes(), b"bbb\nccc\n");
        assert_eq!(b.lines().count(), 2);
    }

    #[test]
    fn an_exact_fit_drops_nothing_and_one_byte_over_drops_one_line() {
        let mut b = Backlog::new(8);
        assert_eq!(b.push(lines(b"aaa\nbbb\n"), never), 0);
        assert_eq!(b.len(), 8);
        assert_eq!(b.push(lines(b"c\n"), never), 1);
        assert_eq!(b.lines().bytes(), b"bbb\nc\n");
    }

    #[test]
    fn dropping_the_oldest_never_keeps_half_a_negative_gauge_pair() {
        // 13 bytes in a 10-byte backlog: cutting at the first line alone would keep "g:-5|g",
        // which Etsy would apply as a delta.
        let mut b = Backlog::new(10);
        assert_eq!(b.push(lines(b"g:0|g\ng:-5|g\n"), statsd_pairs), 2);
        assert!(b.is_empty());
        let mut b = Backlog::new(16);
        assert_eq!(b.push(lines(b"c:1|c\ng:0|g\ng:-5|g\n"), statsd_pairs), 1);
        assert_eq!(b.front(100, statsd_pairs).bytes(), b"g:0|g\ng:-5|g\n");
    }

    #[test]
    fn the_front_is_cut_at_a_line_boundary_within_the_limit() {
        let mut b = Backlog::new(100);
        b.push(lines(b"aaa\nbbb\nccc\n"), never);
        assert_eq!(b.front(9, never).bytes(), b"aaa\nbbb\n");
        b.consume(8);
        assert_eq!(b.front(9, never).bytes(), b"ccc\n");
        assert_eq!(b.clear(), 1);
        assert!(b.is_empty());
    }
}
