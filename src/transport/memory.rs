//! A transport without a socket: every payload is kept in memory, framed exactly as the
//! configured socket would put it on the wire, for [`Capture`](crate::Capture) and
//! [`ClientCapture`](crate::ClientCapture).
//!
//! It never fails and never waits, so a flush through it completes on its first poll.

use std::sync::{Arc, Mutex, PoisonError};

use crate::encode::Framing;
use crate::lines::Lines;

use super::Payload;

/// Where a memory transport puts its payloads; shared with whoever reads them.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemorySink(Arc<Mutex<Vec<Vec<u8>>>>);

impl MemorySink {
    /// Every payload recorded since the last call, oldest first.
    pub(crate) fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn push(&self, payload: Vec<u8>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(payload);
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct MemoryTransport {
    framing: Framing,
    sink: MemorySink,
}

impl MemoryTransport {
    /// Records into `sink`, framing lines as `framing` says (the configured endpoint's).
    pub(crate) fn new(framing: Framing, sink: MemorySink) -> Self {
        Self { framing, sink }
    }

    /// Whether the configured socket is a byte stream.
    pub(crate) fn is_stream(&self) -> bool {
        self.framing != Framing::Datagram
    }

    /// The bytes [`send`](Self::send) records for `lines`.
    pub(crate) fn wire_len(&self, lines: Lines<'_>) -> usize {
        match self.framing {
            Framing::Datagram => lines.body().len(),
            Framing::Stream => lines.len(),
            Framing::LengthPrefixed => 4 + lines.body().len(),
        }
    }

    /// Records `payload` as the socket would send it: a datagram without the final newline,
    /// a stream's lines as they are, a length-prefixed frame, a protocol frame as it is.
    pub(crate) fn send(&self, payload: Payload<'_>) {
        let bytes = match payload {
            Payload::Frame(frame) => frame.to_vec(),
            Payload::Lines(lines) => match self.framing {
                Framing::Datagram => lines.body().to_vec(),
                Framing::Stream => lines.bytes().to_vec(),
                Framing::LengthPrefixed => {
                    let body = lines.body();
                    // The writer's payload limit keeps a body far below 4 GiB.
                    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
                    let mut framed = Vec::with_capacity(4 + body.len());
                    framed.extend_from_slice(&len.to_le_bytes());
                    framed.extend_from_slice(body);
                    framed
                }
            },
        };
        self.sink.push(bytes);
    }
}
