//! Unix datagram sockets: one datagram per payload, sent from an unbound socket to the path.
//!
//! We `send_to` the path on every payload instead of connecting once, so a receiver that
//! removes and recreates its socket (an Agent restart) is reached again with no reconnect.
//! A full receive queue (`EAGAIN`/`ENOBUFS`) is reported as [`SendError::Full`] at once:
//! sending never waits for the receiver (delivery keeps what was not taken in its backlog).
//!
//! The socket is a plain non-blocking std socket, not a tokio one: a datagram send either
//! completes at once or fails at once, so there is nothing to wait for, and tokio's `try_*`
//! calls would report a fresh socket as not writable until the reactor had polled it.

use std::io;
use std::os::unix::net::UnixDatagram;

use super::SendError;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct UnixgramTransport {
    socket: Option<UnixDatagram>,
}

impl UnixgramTransport {
    pub(crate) fn new() -> Self {
        Self { socket: None }
    }

    /// Creates the unbound socket if needed, then probes the receiver with a throwaway
    /// `connect`: it reports a missing socket (`ENOENT`), a dead receiver that left its socket
    /// file behind (`ECONNREFUSED`) and a permission problem (`EACCES`) before the flusher
    /// drains anything, so the aggregate is kept until the receiver can take it.
    pub(crate) fn ready(&mut self, path: &str) -> io::Result<()> {
        if self.socket.is_none() {
            let socket = UnixDatagram::unbound()?;
            socket.set_nonblocking(true)?;
            self.socket = Some(socket);
        }
        UnixDatagram::unbound()?.connect(path)
    }

    /// Sends one datagram (the lines without their final newline).
    pub(crate) fn send(&mut self, payload: &[u8], path: &str) -> Result<(), SendError> {
        let Some(socket) = &self.socket else {
            return Err(SendError::NotConnected);
        };
        match socket.send_to(payload, path) {
            Ok(_) => Ok(()),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == Some(ENOBUFS) =>
            {
                Err(SendError::Full)
            }
            Err(e) if e.raw_os_error() == Some(super::EMSGSIZE) => Err(SendError::Rejected(e)),
            Err(e) => Err(SendError::Io(e)),
        }
    }
}

/// `ENOBUFS` on Linux and the BSDs' most common value; matched by number because std has no
/// `ErrorKind` for it.
#[cfg(target_os = "linux")]
const ENOBUFS: i32 = 105;
#[cfg(not(target_os = "linux"))]
const ENOBUFS: i32 = 55;
