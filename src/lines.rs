//! [`Lines`]: whole, newline-terminated lines, the one form in which encoded metrics travel
//! between the encoders, the delivery backlog and the transports.
//!
//! Its constructor refuses anything that does not end with a newline, and every way of
//! cutting one ([`Lines::split_at_chunk`], [`Lines::front`]) cuts at the start of a chunk, so
//! a value of this type never holds a partial or unterminated line. How lines are framed on
//! the wire (a datagram without the final newline, a stream as is, a length-prefixed frame)
//! is the transport's business, not this type's.

/// Tells whether a line (second argument) must travel with the line before it (first), such
/// as the Etsy negative-gauge pair `g:0|g` + `g:-5|g`: such lines are kept, dropped and
/// re-sent together, never apart. The encoder's `chunk_rule`.
pub(crate) type ChunkRule = fn(&[u8], &[u8]) -> bool;

/// Whole newline-terminated lines (possibly none). See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lines<'a>(&'a [u8]);

impl<'a> Lines<'a> {
    /// No lines.
    pub(crate) const EMPTY: Lines<'static> = Lines(b"");

    /// `bytes` as lines, if it is empty or ends with a newline.
    pub(crate) fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.is_empty() || bytes.ends_with(b"\n")).then_some(Self(bytes))
    }

    /// The bytes, final newline included.
    pub(crate) fn bytes(self) -> &'a [u8] {
        self.0
    }

    /// Length in bytes, final newline included.
    pub(crate) fn len(self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    /// The bytes without the final newline: what a datagram carries.
    pub(crate) fn body(self) -> &'a [u8] {
        self.0.strip_suffix(b"\n").unwrap_or(self.0)
    }

    /// Number of lines.
    pub(crate) fn count(self) -> u64 {
        count_lines(self.0)
    }

    /// Splits where a write that stopped after `written` bytes must resume: before the start
    /// of the chunk holding byte `written`. The first part went out whole; the second is
    /// everything from that chunk on (empty when all was written).
    pub(crate) fn split_at_chunk(self, written: usize, continues: ChunkRule) -> (Self, Self) {
        let at = chunk_start(self.0, written, continues);
        let (done, rest) = self.0.split_at(at);
        (Self(done), Self(rest))
    }

    /// The longest run of whole chunks from the start that fits in `max_len` bytes; at least
    /// the first chunk, even if it is longer (nothing else could ever send it).
    pub(crate) fn front(self, max_len: usize, continues: ChunkRule) -> Self {
        if self.0.len() <= max_len {
            return self;
        }
        match chunk_start(self.0, max_len, continues) {
            0 => Self(&self.0[..chunk_end(self.0, 0, continues)]),
            end => Self(&self.0[..end]),
        }
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
fn line_end(bytes: &[u8], start: usize) -> usize {
    bytes[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(bytes.len(), |p| start + p + 1)
}

/// End (exclusive) of the chunk starting at `start`: its first line and every line that
/// continues it.
fn chunk_end(bytes: &[u8], start: usize, continues: ChunkRule) -> usize {
    let mut end = line_end(bytes, start);
    while end < bytes.len() {
        let next = line_end(bytes, end);
        if !continues(last_line(&bytes[..end]), &bytes[end..next - 1]) {
            break;
        }
        end = next;
    }
    end
}

/// The last line of newline-terminated `bytes`, without its newline (empty if none).
pub(crate) fn last_line(bytes: &[u8]) -> &[u8] {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.iter()
        .rposition(|&b| b == b'\n')
        .map_or(body, |p| &body[p + 1..])
}

/// The start of the chunk holding byte `offset` of newline-terminated `bytes` (or
/// `bytes.len()` when `offset` is past the end). Everything before it forms whole chunks.
fn chunk_start(bytes: &[u8], offset: usize, continues: ChunkRule) -> usize {
    if offset >= bytes.len() {
        return bytes.len();
    }
    let mut start = bytes[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    while start > 0 {
        let line = &bytes[start..line_end(bytes, start) - 1];
        let prev = last_line(&bytes[..start]);
        if !continues(prev, line) {
            break;
        }
        start -= prev.len() + 1;
    }
    start
}

#[cfg(test)]
#[path = "lines_tests.rs"]
pub(crate) mod tests;
