//! What a send puts on the wire ([`Payload`]), why it failed ([`SendError`]), and what became
//! of bytes already handed to the kernel ([`Verdict`]).

use std::io;

use crate::lines::Lines;

/// Why a payload did not go out.
#[derive(Debug)]
pub(crate) enum SendError {
    /// There is no socket (the destination is down).
    NotConnected,
    /// A datagram send failed.
    Io(io::Error),
    /// A stream write stopped after `written` bytes (timeout when `error` is `None`).
    Partial {
        written: usize,
        error: Option<io::Error>,
    },
    /// The receiver's queue is full (a Unix datagram socket): nothing of this payload went
    /// out; the receiver is there but slow.
    Full,
    /// The socket refused this payload itself (too large for it): sending it again would
    /// fail again, so it is dropped; the destination is fine.
    Rejected(io::Error),
}

/// What a run of datagrams that did not go out learnt about its first one, which is then
/// sent alone ([`Transport::send`](super::Transport::send)) and counted as if
/// the run had never been tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// Nothing: send it as usual.
    Fresh,
    /// The run's call took the socket's report that an earlier datagram was refused.
    Refused,
    /// The run waited the whole write timeout for room in the socket buffer.
    TimedOut,
}

/// What one [`Transport::send`](super::Transport::send) puts on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payload<'a> {
    /// Lines, framed by the kind of socket in use: a datagram carries them without the final
    /// newline, a byte stream as they are, a length-prefixed stream as a 4-byte
    /// little-endian length and the lines without the final newline.
    Lines(Lines<'a>),
    /// A frame the protocol made (a Graphite pickle frame): sent as is, and delivered whole
    /// or not at all (a receiver decodes only whole frames).
    Frame(&'a [u8]),
}

impl SendError {
    /// Bytes of the payload that reached the kernel before the failure.
    pub(crate) fn written(&self) -> usize {
        match self {
            Self::Partial { written, .. } => *written,
            _ => 0,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotConnected => f.write_str("not connected"),
            Self::Full => f.write_str("the receiver's socket buffer is full"),
            Self::Io(e) | Self::Partial { error: Some(e), .. } => write!(f, "{e}"),
            Self::Rejected(e) => write!(f, "payload refused by the socket: {e}"),
            Self::Partial {
                error: None,
                written,
            } => write!(f, "write timed out after {written} bytes"),
        }
    }
}

/// The fate of stream bytes already handed to the kernel. The kernel cannot tell whether
/// the receiver *read* them; we learn it indirectly, from how the connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing learnt yet.
    Pending,
    /// The connection is still open at the next flush: everything but the last `queue`
    /// bytes written on it has left our kernel's send queue (which holds at most that many),
    /// so only those could still be lost to a reset, ours included.
    Open { queue: usize },
    /// The connection closed cleanly: delivered as far as TCP can tell.
    Delivered,
    /// The connection was reset, or (UDP) an earlier datagram was refused: earlier bytes may
    /// be lost.
    PossiblyLost,
    /// We gave the connection up after a failed write and reset it ourselves, which discards
    /// our own send queue: besides the unconfirmed bytes, those an `Open` verdict confirmed
    /// but that may still have been queued are lost too.
    Abandoned,
}

impl Verdict {
    /// Records an observation; a possible loss sticks until taken.
    pub(super) fn note(&mut self, abrupt: bool) {
        *self = match (*self, abrupt) {
            (Self::Abandoned, _) => Self::Abandoned,
            (_, true) | (Self::PossiblyLost, false) => Self::PossiblyLost,
            (_, false) => Self::Delivered,
        };
    }

    /// Records that we reset a connection ourselves (see [`Verdict::Abandoned`]); sticks.
    pub(super) fn note_abandoned(&mut self) {
        *self = Self::Abandoned;
    }

    /// Records that the connection is still open, its send queue bounded by `queue` bytes.
    pub(super) fn note_open(&mut self, queue: usize) {
        if *self == Self::Pending {
            *self = Self::Open { queue };
        }
    }
}

/// `EPROTOTYPE`: a stream connect to a datagram socket (or the reverse).
#[cfg(target_os = "linux")]
pub(super) const EPROTOTYPE: i32 = 91;
#[cfg(not(target_os = "linux"))]
pub(super) const EPROTOTYPE: i32 = 41;

/// `EMSGSIZE`: a datagram larger than the socket can send.
#[cfg(target_os = "linux")]
pub(super) const EMSGSIZE: i32 = 90;
#[cfg(not(target_os = "linux"))]
pub(super) const EMSGSIZE: i32 = 40;

/// What to do about a Unix socket error, for the one warning we log.
pub(super) fn unix_hint(error: &SendError) -> &'static str {
    let kind = match error {
        SendError::Io(e) | SendError::Partial { error: Some(e), .. } => Some(e.kind()),
        _ => None,
    };
    match kind {
        Some(io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
            "no receiver is listening there; start the Agent (or the receiver) with its socket at this path, or fix the path"
        }
        Some(_) if matches!(error, SendError::Io(e) if e.raw_os_error() == Some(EPROTOTYPE)) => {
            "the socket is of the other type; use unixgram:// for a datagram socket, unix:// for a stream socket"
        }
        Some(io::ErrorKind::PermissionDenied) => {
            "permission denied; this process's user must be allowed to write to the socket (the Datadog Agent creates it with mode 0722)"
        }
        _ => "the receiver may have stopped",
    }
}
