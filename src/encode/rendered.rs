//! [`Rendered`]: a series' constant wire parts (its name, and the tail that ends each of its
//! lines), rendered once and kept by the flusher for every series.
//!
//! The name and the tail share one buffer, the name first: the flusher keeps one allocation
//! per series for both (none for the tail of an untagged series), and the struct is 32
//! bytes where two `Vec`s made it 56 (issue 15: memory per series). Renderers write the name
//! through [`Rendered::name_buf`], then the tail through [`Rendered::tail_buf`], which
//! closes the name; writing the name again drops the tail.

use super::HistogramKind;

/// `name_len` while the name is still being written: the whole buffer is the name.
const OPEN: u32 = u32::MAX;

/// A series' constant wire parts, rendered once. See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    /// The sanitised, prefixed name, then the tail.
    parts: Vec<u8>,
    /// Bytes of `parts` that are the name, or [`OPEN`].
    name_len: u32,
    /// How this series is sent if it is a histogram.
    pub(crate) histogram: HistogramKind,
    /// Set by the flusher for a series not sent because a series of another kind has the
    /// same wire identity (see `flush::identity`).
    pub(crate) clash: bool,
    /// Whether the name or tags were shortened to fit carbon's file-name limits.
    pub(crate) shortened: bool,
}

impl Default for Rendered {
    fn default() -> Self {
        Self {
            parts: Vec::new(),
            name_len: OPEN,
            histogram: HistogramKind::default(),
            clash: false,
            shortened: false,
        }
    }
}

impl PartialEq for Rendered {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
            && self.tail() == other.tail()
            && self.histogram == other.histogram
            && self.clash == other.clash
            && self.shortened == other.shortened
    }
}

impl Eq for Rendered {}

impl Rendered {
    /// Tests: a rendering with this name and tail (every flag at its default).
    #[cfg(test)]
    pub(crate) fn of(name: &[u8], tail: &[u8]) -> Self {
        let mut r = Self::default();
        r.name_buf().extend_from_slice(name);
        r.tail_buf().extend_from_slice(tail);
        r
    }

    /// The sanitised, prefixed name; empty when nothing usable is left (never sent).
    pub(crate) fn name(&self) -> &[u8] {
        &self.parts[..self.split()]
    }

    /// What follows the type (and rate) on every line: DogStatsD `|#tags|c:id` (also plain
    /// StatsD with DogStatsD-style tags), Graphite's `;k=v` tags; empty otherwise.
    pub(crate) fn tail(&self) -> &[u8] {
        &self.parts[self.split()..]
    }

    /// The name and the tail back to back: what a line carries when nothing goes between
    /// them (a Graphite line without a summary suffix).
    pub(crate) fn name_and_tail(&self) -> &[u8] {
        &self.parts
    }

    /// Whether the series has a usable name.
    pub(crate) fn sendable(&self) -> bool {
        !self.name().is_empty()
    }

    fn split(&self) -> usize {
        (self.name_len as usize).min(self.parts.len())
    }

    /// The name, to write (or rewrite) in place; the tail, if one was written, is dropped.
    pub(crate) fn name_buf(&mut self) -> &mut Vec<u8> {
        if self.name_len != OPEN {
            self.parts.truncate(self.name_len as usize);
            self.name_len = OPEN;
        }
        &mut self.parts
    }

    /// Starts a new rendering: name and tail empty, the name open.
    pub(crate) fn clear(&mut self) {
        self.parts.clear();
        self.name_len = OPEN;
    }

    /// The tail, to append to; the name is final from here on. A name of 4 GiB or more
    /// (which no payload could carry) is cleared, so the series counts as unnamed.
    pub(crate) fn tail_buf(&mut self) -> &mut Vec<u8> {
        if self.name_len == OPEN {
            match u32::try_from(self.parts.len()) {
                Ok(len) if len != OPEN => self.name_len = len,
                _ => {
                    self.parts.clear();
                    self.name_len = 0;
                }
            }
        }
        &mut self.parts
    }

    /// Drops the buffer's spare capacity: what the flusher keeps is exactly the bytes.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.parts.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::Rendered;

    #[test]
    fn the_name_and_the_tail_read_back_as_written_and_equal_what_of_builds() {
        let mut r = Rendered::default();
        r.name_buf().extend_from_slice(b"app.requests");
        assert_eq!((r.name(), r.tail()), (&b"app.requests"[..], &b""[..]));
        r.tail_buf().extend_from_slice(b"|#a:1");
        r.tail_buf().extend_from_slice(b",b:2");
        assert_eq!(r.name(), b"app.requests");
        assert_eq!(r.tail(), b"|#a:1,b:2");
        assert_eq!(r.name_and_tail(), b"app.requests|#a:1,b:2");
        assert_eq!(r, Rendered::of(b"app.requests", b"|#a:1,b:2"));
        assert_ne!(r, Rendered::of(b"app.request", b"s|#a:1,b:2"));
    }

    #[test]
    fn writing_the_name_again_drops_the_tail_and_clear_empties_both() {
        let mut r = Rendered::of(b"x", b";k=v");
        r.name_buf().push(b'y');
        assert_eq!((r.name(), r.tail()), (&b"xy"[..], &b""[..]));
        r.tail_buf().extend_from_slice(b";k=w");
        assert_eq!((r.name(), r.tail()), (&b"xy"[..], &b";k=w"[..]));
        r.clear();
        assert!(!r.sendable());
        assert_eq!((r.name(), r.tail()), (&b""[..], &b""[..]));
        r.name_buf().extend_from_slice(b"z");
        assert_eq!((r.name(), r.tail()), (&b"z"[..], &b""[..]));
    }

    #[test]
    fn an_empty_name_is_not_sendable_even_with_a_tail() {
        assert!(!Rendered::of(b"", b"|#a:1").sendable());
        assert!(Rendered::of(b"a", b"").sendable());
    }

    #[test]
    fn a_rendering_is_32_bytes() {
        assert_eq!(size_of::<Rendered>(), 32);
    }
}
