//! TCP: one connection, newline-terminated lines written in large batches.

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{SendError, Target};

/// A TCP connection that is re-established, with backoff, when it breaks.
#[derive(Debug)]
pub(crate) struct TcpTransport {
    stream: Option<TcpStream>,
    connect_timeout: Duration,
}

impl TcpTransport {
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        Self {
            stream: None,
            connect_timeout,
        }
    }

    /// The address we are connected to.
    pub(crate) fn peer(&self) -> Option<std::net::SocketAddr> {
        self.stream.as_ref()?.peer_addr().ok()
    }

    pub(crate) fn disconnect(&mut self) {
        self.stream = None;
    }

    /// Drops the connection if the peer has closed it. A receiver that restarts gracefully
    /// closes its side; we notice here, *before* writing, instead of writing into a dead
    /// connection and losing what the kernel accepted.
    pub(crate) fn check_peer(&mut self) -> bool {
        let Some(stream) = &self.stream else {
            return false;
        };
        let mut scratch = [0u8; 256];
        let open = loop {
            match stream.try_read(&mut scratch) {
                Ok(0) => break false,
                // Receivers do not talk back; whatever they sent is discarded.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break false,
            }
        };
        if !open {
            self.stream = None;
        }
        open
    }

    /// Connects to the first address of `target` that answers within the connect timeout.
    pub(crate) async fn connect(&mut self, target: &Target) -> io::Result<()> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for addr in target.all() {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    // Payloads are already batched; don't let Nagle delay the last one.
                    stream.set_nodelay(true)?;
                    self.stream = Some(stream);
                    return Ok(());
                }
                Ok(Err(e)) => last = e,
                Err(_) => {
                    last = io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("connect to {addr} timed out"),
                    );
                }
            }
        }
        Err(last)
    }

    /// Writes all of `payload` before `deadline`. On failure the error carries how many bytes
    /// the kernel accepted, so the caller can resend from the first incomplete line.
    pub(crate) async fn send(
        &mut self,
        payload: &[u8],
        deadline: Instant,
    ) -> Result<(), SendError> {
        let Some(stream) = &self.stream else {
            return Err(SendError::NotConnected);
        };
        let mut written = 0;
        while written < payload.len() {
            match tokio::time::timeout_at(deadline, stream.writable()).await {
                Err(_) => {
                    return Err(SendError::Partial {
                        written,
                        error: None,
                    });
                }
                Ok(Err(e)) => {
                    return Err(SendError::Partial {
                        written,
                        error: Some(e),
                    });
                }
                Ok(Ok(())) => {}
            }
            match stream.try_write(&payload[written..]) {
                Ok(n) => written += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    return Err(SendError::Partial {
                        written,
                        error: Some(e),
                    });
                }
            }
        }
        Ok(())
    }
}
