//! Splitting what a stream socket delivers into lines or payloads, whatever the read sizes.
//!
//! Newline-terminated streams (StatsD and Graphite over TCP or a Unix stream): a receiver acts
//! on complete lines only, so the bytes after the last `\n` wait for the next read.
//! Length-prefixed streams (DogStatsD over a Unix stream): each payload is preceded by its
//! length as a 4-byte little-endian integer; the Agent drops the connection when that length
//! exceeds its buffer.

/// How a connection's bytes become payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// One datagram is one payload (UDP, Unix datagram).
    Datagram,
    /// A stream of `\n`-terminated lines.
    Lines,
    /// A stream of 4-byte little-endian lengths, each followed by that many bytes.
    LengthPrefixed,
}

/// The Agent's default `dogstatsd_buffer_size`: the largest frame it reads.
pub(crate) const AGENT_MAX_FRAME: usize = 8192;

/// Longest partial line we keep while waiting for its `\n`.
const MAX_PARTIAL_LINE: usize = 1 << 20;

/// Buffers a newline-terminated stream.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    /// The complete lines (without `\n`) that `bytes` finishes. A partial line longer than
    /// 1 MiB is handed out as it is, so a peer that never sends `\n` cannot grow us forever.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..end]);
            lines.push(std::mem::take(&mut self.partial));
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        if self.partial.len() > MAX_PARTIAL_LINE {
            lines.push(std::mem::take(&mut self.partial));
        }
        lines
    }

    /// At the end of the stream: the unterminated tail, if any.
    pub(crate) fn finish(self) -> Option<Vec<u8>> {
        (!self.partial.is_empty()).then_some(self.partial)
    }
}

/// Buffers a length-prefixed stream.
#[derive(Debug)]
pub(crate) struct FrameSplitter {
    buffered: Vec<u8>,
    max_frame: usize,
}

/// A frame that makes the rest of the stream unreadable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    TooLarge { len: usize, max: usize },
    Truncated { have: usize, want: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { len, max } => write!(
                f,
                "length prefix {len} exceeds the {max}-byte buffer (the Agent drops the connection)"
            ),
            Self::Truncated { have, want } => {
                write!(f, "stream ended {have} bytes into a {want}-byte frame")
            }
        }
    }
}

impl FrameSplitter {
    pub(crate) fn new(max_frame: usize) -> Self {
        Self {
            buffered: Vec::new(),
            max_frame,
        }
    }

    /// The complete payloads that `bytes` finishes, in order.
    ///
    /// # Errors
    /// A length over `max_frame`: the caller should close the connection, as the Agent does.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        self.buffered.extend_from_slice(bytes);
        let mut frames = Vec::new();
        let mut at = 0;
        while let Some(header) = self.buffered.get(at..at + 4) {
            let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > self.max_frame {
                return Err(FrameError::TooLarge {
                    len,
                    max: self.max_frame,
                });
            }
            let Some(payload) = self.buffered.get(at + 4..at + 4 + len) else {
                break;
            };
            frames.push(payload.to_vec());
            at += 4 + len;
        }
        self.buffered.drain(..at);
        Ok(frames)
    }

    /// At the end of the stream: an error if it stopped inside a frame.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] with what was read of the frame.
    pub(crate) fn finish(self) -> Result<(), FrameError> {
        match self.buffered.len() {
            0 => Ok(()),
            have if have < 4 => Err(FrameError::Truncated { have, want: 4 }),
            have => {
                let b = &self.buffered;
                let want = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize + 4;
                Err(FrameError::Truncated { have, want })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FrameError, FrameSplitter, LineSplitter};

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_length_prefixed_stream_splits_into_its_payloads_whatever_the_read_sizes() {
        let payloads: [&[u8]; 4] = [b"a:1|c\nb:2|g", b"", b"lat:1:2:3|d", &[b'x'; 300]];
        let stream: Vec<u8> = payloads.iter().flat_map(|p| frame(p)).collect();
        for chunk in 1..=stream.len() {
            let mut splitter = FrameSplitter::new(8192);
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                got.extend(splitter.push(piece).unwrap());
            }
            assert_eq!(got, payloads, "read size {chunk}");
            assert_eq!(splitter.finish(), Ok(()), "read size {chunk}");
        }
    }

    #[test]
    fn a_length_over_the_agent_buffer_is_an_error() {
        let mut splitter = FrameSplitter::new(8192);
        let mut stream = frame(b"ok:1|c");
        stream.extend_from_slice(&8193u32.to_le_bytes());
        assert_eq!(
            splitter.push(&stream),
            Err(FrameError::TooLarge {
                len: 8193,
                max: 8192
            })
        );
        // A newline-framed sender talking to a length-prefixed reader looks like this too:
        // "a:1|" read as a little-endian length is about 2 billion.
        let mut splitter = FrameSplitter::new(8192);
        assert!(matches!(
            splitter.push(b"a:1|c\n"),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_stream_that_stops_inside_a_frame_is_reported_truncated() {
        let mut splitter = FrameSplitter::new(8192);
        let stream = frame(b"a:1|c");
        assert_eq!(splitter.push(&stream[..7]).unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(
            splitter.finish(),
            Err(FrameError::Truncated { have: 7, want: 9 })
        );
        let mut splitter = FrameSplitter::new(8192);
        splitter.push(&[5, 0]).unwrap();
        assert_eq!(
            splitter.finish(),
            Err(FrameError::Truncated { have: 2, want: 4 })
        );
    }

    #[test]
    fn a_line_stream_splits_on_newlines_whatever_the_read_sizes() {
        let stream = b"a:1|c\nb:2|g\n\nc 1 2\nd:1|ms";
        for chunk in 1..=stream.len() {
            let mut splitter = LineSplitter::default();
            let mut got = Vec::new();
            for piece in stream.chunks(chunk) {
                got.extend(splitter.push(piece));
            }
            let want: [&[u8]; 4] = [b"a:1|c", b"b:2|g", b"", b"c 1 2"];
            assert_eq!(got, want, "read size {chunk}");
            assert_eq!(
                splitter.finish(),
                Some(b"d:1|ms".to_vec()),
                "the unterminated tail"
            );
        }
    }
}
