//! The stream backlog: complete lines that a stream transport did not accept, kept (up to a
//! byte bound) for the next connection.
//!
//! Only whole, newline-terminated lines go in, so what comes out can be re-sent as is. When
//! the bound is reached the *oldest* lines are dropped first (and reported), since fresh
//! values matter more than stale ones on a dashboard.

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

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Number of lines held.
    pub(crate) fn lines(&self) -> u64 {
        count_lines(&self.bytes)
    }

    /// Appends complete lines; returns the number of lines dropped to stay within the bound
    /// (the oldest first, possibly some of those just added).
    pub(crate) fn push(&mut self, lines: &[u8]) -> u64 {
        debug_assert!(lines.is_empty() || lines.ends_with(b"\n"));
        self.bytes.extend_from_slice(lines);
        if self.bytes.len() <= self.max_bytes {
            return 0;
        }
        let excess = self.bytes.len() - self.max_bytes;
        // Cut at the end of the line holding the excess-th byte, so no partial line remains.
        let cut = self.bytes[excess.saturating_sub(1)..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |p| excess + p);
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
            let end = self
                .bytes
                .iter()
                .position(|&b| b == b'\n')
                .map_or(self.bytes.len(), |p| p + 1);
            &self.bytes[..end]
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

/// Start of the line that holds byte `offset` of `payload` (or `payload.len()` when the offset
/// is at the end): everything before it was fully written.
pub(crate) fn line_start(payload: &[u8], offset: usize) -> usize {
    if offset >= payload.len() {
        return payload.len();
    }
    payload[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_lines_are_dropped_first_when_the_bound_is_reached() {
        let mut b = Backlog::new(10);
        assert_eq!(b.push(b"aaa\nbbb\n"), 0);
        assert_eq!(b.push(b"ccc\n"), 1);
        assert_eq!(b.front(100), b"bbb\nccc\n");
        assert_eq!(b.lines(), 2);
    }

    #[test]
    fn the_front_is_cut_at_a_line_boundary_within_the_limit() {
        let mut b = Backlog::new(100);
        b.push(b"aaa\nbbb\nccc\n");
        assert_eq!(b.front(9), b"aaa\nbbb\n");
        b.consume(8);
        assert_eq!(b.front(9), b"ccc\n");
        assert_eq!(b.clear(), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn a_partially_written_line_is_resent_from_its_start() {
        let p = b"aaa\nbbb\nccc\n";
        assert_eq!(line_start(p, 0), 0);
        assert_eq!(line_start(p, 4), 4);
        assert_eq!(line_start(p, 6), 4);
        assert_eq!(line_start(p, 12), 12);
    }
}
