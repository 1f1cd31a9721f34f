//! Byte streams: TCP, and Unix stream sockets. Newline-terminated lines written in large
//! batches, or, for DogStatsD over a Unix stream, each payload in a frame with a 4-byte
//! little-endian length (what the Datadog Agent reads).

use std::io;
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::SockRef;
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;
use tokio::time::Instant;

use super::{Payload, SendError, Target};

#[derive(Debug)]
enum Conn {
    Tcp(TcpStream),
    /// Only on Unix; elsewhere `build` refuses `unix://` (`Endpoint::available`).
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Conn {
    /// Reads straight from the socket. Not `try_read`: tokio answers that from its cached
    /// readiness, which does not know about a FIN until its driver next polls, so a peer
    /// that has just closed would look open and the next write would go into a dead
    /// connection. The socket is non-blocking (tokio made it so), so this never waits.
    fn read_now(&self, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
        self.sock_ref().recv(buf)
    }

    fn sock_ref(&self) -> SockRef<'_> {
        match self {
            Self::Tcp(s) => SockRef::from(s),
            #[cfg(unix)]
            Self::Unix(s) => SockRef::from(s),
        }
    }

    /// Bounds what the kernel may hold for this connection (see [`SEND_BUFFER`]).
    fn bound_send_buffer(&self) -> io::Result<()> {
        #[cfg(test)]
        let size = SEND_BUFFER_FOR_TESTS
            .with(std::cell::Cell::get)
            .unwrap_or(SEND_BUFFER);
        #[cfg(not(test))]
        let size = SEND_BUFFER;
        self.sock_ref().set_send_buffer_size(size)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.try_write(buf),
            #[cfg(unix)]
            Self::Unix(s) => s.try_write(buf),
        }
    }

    async fn writable(&self) -> io::Result<()> {
        match self {
            Self::Tcp(s) => s.writable().await,
            #[cfg(unix)]
            Self::Unix(s) => s.writable().await,
        }
    }
}

/// The send buffer we ask the kernel for on every stream connection: what one connection
/// may hold in the kernel, sent but not yet acknowledged or not yet sent, while a receiver
/// is slow or has stopped reading. Linux doubles the value for its bookkeeping, so a
/// connection holds at most 512 KiB (instead of autotuning up to `tcp_wmem`'s maximum,
/// 4 MiB by default). Plenty for metrics: at a 10 ms round trip it still allows 25 MiB/s.
pub(crate) const SEND_BUFFER: usize = 256 * 1024;

#[cfg(test)]
thread_local! {
    /// Tests: a smaller send buffer for connections made on this thread, so a receiver that
    /// stops reading fills it with little data.
    pub(crate) static SEND_BUFFER_FOR_TESTS: std::cell::Cell<Option<usize>> =
        const { std::cell::Cell::new(None) };
}

/// What [`StreamTransport::check_peer`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// Connected, and the peer has not closed.
    Open,
    /// No connection (any more). `abrupt`: it ended in a reset, not a clean close, so data
    /// the kernel accepted earlier may never have been read.
    Gone { abrupt: bool },
}

/// A stream connection that is re-established, with backoff, when it breaks.
#[derive(Debug)]
pub(crate) struct StreamTransport {
    conn: Option<Conn>,
    connect_timeout: Duration,
    length_prefixed: bool,
}

impl StreamTransport {
    /// Whether each payload goes out as a length-prefixed frame (DogStatsD over a Unix stream).
    pub(crate) fn length_prefixed(&self) -> bool {
        self.length_prefixed
    }

    pub(crate) fn new(connect_timeout: Duration, length_prefixed: bool) -> Self {
        Self {
            conn: None,
            connect_timeout,
            length_prefixed,
        }
    }

    /// The TCP address we are connected to (none for Unix sockets).
    pub(crate) fn peer(&self) -> Option<SocketAddr> {
        if let Some(Conn::Tcp(s)) = &self.conn {
            s.peer_addr().ok()
        } else {
            None
        }
    }

    /// The most the kernel may hold unsent or unacknowledged for this connection: its send
    /// buffer as the kernel reports it (Linux doubles what we asked for).
    pub(crate) fn queue_bound(&self) -> usize {
        self.conn
            .as_ref()
            .and_then(|c| c.sock_ref().send_buffer_size().ok())
            .unwrap_or(2 * SEND_BUFFER)
    }

    pub(crate) fn has_connection(&self) -> bool {
        self.conn.is_some()
    }

    /// Closes the connection gracefully: the kernel still delivers what it holds (the peer
    /// moved, but the old one is healthy).
    pub(crate) fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Closes a connection we give up on (a write failed or timed out) with a reset
    /// (`SO_LINGER` 0), so the kernel discards what it still holds for it at once instead of
    /// keeping an orphaned socket with up to [`SEND_BUFFER`] of unsent data for minutes.
    /// What it held was already counted as possibly lost.
    pub(crate) fn abandon(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Best effort: if it fails, the socket is closed normally.
            drop(conn.sock_ref().set_linger(Some(Duration::ZERO)));
        }
    }

    /// Drops the connection if the peer has closed it. A receiver that restarts gracefully
    /// closes its side; we notice here, *before* writing, instead of writing into a dead
    /// connection and losing what the kernel accepted.
    pub(crate) fn check_peer(&mut self) -> Peer {
        let Some(conn) = &self.conn else {
            return Peer::Gone { abrupt: false };
        };
        let mut scratch = [MaybeUninit::<u8>::uninit(); 256];
        let peer = loop {
            match conn.read_now(&mut scratch) {
                // A FIN; but a reset that followed it (the receiver died with our data
                // unread) is only left as the socket's pending error.
                Ok(0) => {
                    let reset = !matches!(conn.sock_ref().take_error(), Ok(None));
                    break Peer::Gone { abrupt: reset };
                }
                // Receivers do not talk back; whatever they sent is discarded.
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Peer::Open,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A reset: the peer died or closed with our data unread.
                Err(_) => break Peer::Gone { abrupt: true },
            }
        };
        if peer != Peer::Open {
            self.conn = None;
        }
        peer
    }

    /// Connects to the Unix socket at `target`'s path, or to the first address of `target`
    /// that answers, within the connect timeout.
    pub(crate) async fn connect(&mut self, target: &Target) -> io::Result<()> {
        let timed_out = |what: &dyn std::fmt::Display| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connect to {what} timed out"),
            )
        };
        #[cfg(unix)]
        if let Some(path) = target.path() {
            let stream = tokio::time::timeout(self.connect_timeout, UnixStream::connect(path))
                .await
                .map_err(|_| timed_out(&std::path::Path::new(path).display()))??;
            let conn = Conn::Unix(stream);
            conn.bound_send_buffer()?;
            self.conn = Some(conn);
            return Ok(());
        }
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address to connect to");
        for addr in target.all() {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    // Payloads are already batched; don't let Nagle delay the last one.
                    stream.set_nodelay(true)?;
                    let conn = Conn::Tcp(stream);
                    conn.bound_send_buffer()?;
                    self.conn = Some(conn);
                    return Ok(());
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = timed_out(&addr),
            }
        }
        Err(last)
    }

    /// Writes `payload` before `deadline`: lines as they are (or, length-prefixed, as one
    /// frame without the final newline), a protocol frame as it is. On failure the error
    /// carries how many bytes *of the lines* the kernel accepted, so the caller can resend
    /// from the first incomplete chunk; a frame cut anywhere counts as none.
    pub(crate) async fn send(
        &mut self,
        payload: Payload<'_>,
        deadline: Instant,
    ) -> Result<(), SendError> {
        let Some(conn) = &self.conn else {
            return Err(SendError::NotConnected);
        };
        // The Agent and carbon discard a frame they did not receive whole, and we drop the
        // connection on any failure: a frame cut anywhere has delivered nothing, so all of it
        // is resent.
        let whole_or_nothing = |e: SendError| match e {
            SendError::Partial { error, .. } => SendError::Partial { written: 0, error },
            other => other,
        };
        let lines = match payload {
            Payload::Frame(frame) => {
                return write_all(conn, frame, deadline)
                    .await
                    .map_err(whole_or_nothing);
            }
            Payload::Lines(lines) if !self.length_prefixed => {
                return write_all(conn, lines.bytes(), deadline).await;
            }
            Payload::Lines(lines) => lines,
        };
        let body = lines.body();
        let Ok(len) = u32::try_from(body.len()) else {
            return Err(SendError::Rejected(io::Error::new(
                io::ErrorKind::InvalidInput,
                "payload longer than a length-prefixed frame can carry",
            )));
        };
        write_all(conn, &len.to_le_bytes(), deadline)
            .await
            .map_err(whole_or_nothing)?;
        write_all(conn, body, deadline)
            .await
            .map_err(whole_or_nothing)
    }
}

async fn write_all(conn: &Conn, bytes: &[u8], deadline: Instant) -> Result<(), SendError> {
    let mut written = 0;
    while written < bytes.len() {
        match tokio::time::timeout_at(deadline, conn.writable()).await {
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
        match conn.try_write(&bytes[written..]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_peer_that_just_closed_is_seen_before_the_runtime_polls_again() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut t = StreamTransport::new(Duration::from_secs(1), false);
        t.conn = Some(Conn::Tcp(
            TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap(),
        ));
        assert_eq!(t.check_peer(), Peer::Open, "a live peer is open");
        let (server, _) = listener.accept().unwrap();
        drop(server);
        // No await between the close and the check: tokio's driver has not seen the FIN.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            t.check_peer(),
            Peer::Gone { abrupt: false },
            "the FIN is seen without the driver"
        );
        assert!(!t.has_connection());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn bytes_a_receiver_sends_back_are_discarded_and_a_reset_is_reported_as_abrupt() {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut t = StreamTransport::new(Duration::from_secs(1), false);
        t.conn = Some(Conn::Tcp(
            TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap(),
        ));
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(&[b'x'; 1000]).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(t.check_peer(), Peer::Open);
        assert_eq!(t.check_peer(), Peer::Open);
        SockRef::from(&server)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(server);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            t.check_peer(),
            Peer::Gone { abrupt: true },
            "a reset is told apart from a clean close"
        );
    }
}
