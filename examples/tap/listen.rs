//! Sockets: parsing `--listen`, binding, and the receive threads (std threads with short read
//! timeouts, so a stop request is seen within 100 ms).
//!
//! On stop, every socket is drained until it is quiet (or for at most [`DRAIN`]), so what a
//! sender's final flush put on the wire is still counted.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::frame::{AGENT_MAX_FRAME, FrameSplitter, Framing, LineSplitter};
use crate::parse::Bad;
use crate::tally::Tap;

const POLL: Duration = Duration::from_millis(100);
/// How long a stopping receiver keeps reading a socket that is still busy.
const DRAIN: Duration = Duration::from_millis(500);

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Udp(SocketAddr),
    Tcp(SocketAddr),
    #[cfg(unix)]
    Unix(PathBuf),
    #[cfg(unix)]
    Unixgram(PathBuf),
}

impl Endpoint {
    /// `udp://host:port`, `tcp://host:port`, `unix:///path`, `unixgram:///path`.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}`: want scheme://address"))?;
        let addr = || -> Result<SocketAddr, String> {
            rest.to_socket_addrs()
                .map_err(|e| format!("`{rest}`: {e}"))?
                .next()
                .ok_or_else(|| format!("`{rest}` resolves to nothing"))
        };
        let path = || -> Result<PathBuf, String> {
            if rest.is_empty() {
                Err(format!("`{text}`: empty socket path"))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        match scheme {
            "udp" => Ok(Self::Udp(addr()?)),
            "tcp" => Ok(Self::Tcp(addr()?)),
            #[cfg(unix)]
            "unix" => Ok(Self::Unix(path()?)),
            #[cfg(unix)]
            "unixgram" => Ok(Self::Unixgram(path()?)),
            other => {
                let _ = path;
                Err(format!(
                    "unknown scheme `{other}`: want udp, tcp, unix or unixgram"
                ))
            }
        }
    }

    pub(crate) fn is_stream(&self) -> bool {
        match self {
            Self::Tcp(_) => true,
            #[cfg(unix)]
            Self::Unix(_) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Udp(a) => write!(f, "udp://{a}"),
            Self::Tcp(a) => write!(f, "tcp://{a}"),
            #[cfg(unix)]
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            #[cfg(unix)]
            Self::Unixgram(p) => write!(f, "unixgram://{}", p.display()),
        }
    }
}

/// A stop request, and when it was made.
#[derive(Debug, Default)]
pub(crate) struct Stop(OnceLock<Instant>);

impl Stop {
    pub(crate) fn request(&self) {
        let _ = self.0.set(Instant::now());
    }

    fn requested(&self) -> bool {
        self.0.get().is_some()
    }

    /// Stop even though the socket is still busy.
    fn overdue(&self) -> bool {
        self.0.get().is_some_and(|at| at.elapsed() > DRAIN)
    }
}

/// A bound socket, not yet read.
#[derive(Debug)]
pub(crate) enum Bound {
    Udp(UdpSocket),
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixListener, PathBuf),
    #[cfg(unix)]
    Unixgram(std::os::unix::net::UnixDatagram, PathBuf),
}

#[cfg(unix)]
fn clear_stale_socket(path: &std::path::Path) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket", path.display()),
        )),
        Err(_) => Ok(()),
    }
}

impl Bound {
    /// Binds `endpoint`. An existing Unix socket file is replaced, as the Agent does.
    pub(crate) fn bind(endpoint: &Endpoint) -> io::Result<Self> {
        Ok(match endpoint {
            Endpoint::Udp(a) => Self::Udp(UdpSocket::bind(a)?),
            Endpoint::Tcp(a) => Self::Tcp(TcpListener::bind(a)?),
            #[cfg(unix)]
            Endpoint::Unix(p) => {
                clear_stale_socket(p)?;
                Self::Unix(std::os::unix::net::UnixListener::bind(p)?, p.clone())
            }
            #[cfg(unix)]
            Endpoint::Unixgram(p) => {
                clear_stale_socket(p)?;
                Self::Unixgram(std::os::unix::net::UnixDatagram::bind(p)?, p.clone())
            }
        })
    }

    /// Where we actually listen (the real port when asked for port 0).
    pub(crate) fn endpoint(&self) -> io::Result<Endpoint> {
        Ok(match self {
            Self::Udp(s) => Endpoint::Udp(s.local_addr()?),
            Self::Tcp(s) => Endpoint::Tcp(s.local_addr()?),
            #[cfg(unix)]
            Self::Unix(_, p) => Endpoint::Unix(p.clone()),
            #[cfg(unix)]
            Self::Unixgram(_, p) => Endpoint::Unixgram(p.clone()),
        })
    }
}

/// Starts receiving on `bound` in a thread; it returns once `stop` is requested and every
/// socket is drained.
pub(crate) fn serve(
    bound: Bound,
    framing: Framing,
    tap: Arc<Tap>,
    stop: Arc<Stop>,
) -> io::Result<JoinHandle<()>> {
    let name = "tap-receive".to_owned();
    std::thread::Builder::new().name(name).spawn(move || {
        let result = match bound {
            Bound::Udp(socket) => socket.set_read_timeout(Some(POLL)).map(|()| {
                datagrams(|buf| socket.recv(buf), &tap, &stop);
            }),
            Bound::Tcp(listener) => listener.set_nonblocking(true).map(|()| {
                accept(|| listener.accept().map(|(s, _)| s), framing, &tap, &stop);
            }),
            #[cfg(unix)]
            Bound::Unix(listener, path) => {
                let result = listener.set_nonblocking(true).map(|()| {
                    accept(|| listener.accept().map(|(s, _)| s), framing, &tap, &stop);
                });
                let _ = std::fs::remove_file(path);
                result
            }
            #[cfg(unix)]
            Bound::Unixgram(socket, path) => {
                let result = socket.set_read_timeout(Some(POLL)).map(|()| {
                    datagrams(|buf| socket.recv(buf), &tap, &stop);
                });
                let _ = std::fs::remove_file(path);
                result
            }
        };
        if let Err(e) = result {
            tap.flag(b"<socket>", &Bad::Frame(format!("receiver failed: {e}")));
        }
    })
}

fn quiet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn datagrams(mut recv: impl FnMut(&mut [u8]) -> io::Result<usize>, tap: &Tap, stop: &Stop) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match recv(&mut buf) {
            Ok(n) => {
                tap.bytes(n);
                tap.payload(&buf[..n]);
                if stop.overdue() {
                    return;
                }
            }
            Err(e) if quiet(&e) || e.kind() == io::ErrorKind::Interrupted => {
                if stop.requested() {
                    return;
                }
            }
            // e.g. ECONNREFUSED reported for an earlier send: nothing to do with us.
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// A connected stream we can read with a timeout.
trait Conn: Read + Send + 'static {
    fn prepare(&self) -> io::Result<()>;
}

impl Conn for std::net::TcpStream {
    fn prepare(&self) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(POLL))
    }
}

#[cfg(unix)]
impl Conn for std::os::unix::net::UnixStream {
    fn prepare(&self) -> io::Result<()> {
        self.set_nonblocking(false)?;
        self.set_read_timeout(Some(POLL))
    }
}

fn accept<C: Conn>(
    mut next: impl FnMut() -> io::Result<C>,
    framing: Framing,
    tap: &Arc<Tap>,
    stop: &Arc<Stop>,
) {
    let mut conns = Vec::new();
    while !stop.requested() {
        match next() {
            Ok(conn) => {
                if conn.prepare().is_err() {
                    continue;
                }
                let (tap, stop) = (Arc::clone(tap), Arc::clone(stop));
                conns.push(std::thread::spawn(move || {
                    stream(conn, framing, &tap, &stop);
                }));
            }
            // Nothing waiting, or out of file descriptors for a moment: try again shortly.
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    for conn in conns {
        let _ = conn.join();
    }
}

/// Reads one connection to its end (or until stopped), splitting as `framing` says.
fn stream(mut conn: impl Read, framing: Framing, tap: &Tap, stop: &Stop) {
    let mut lines = LineSplitter::default();
    let mut frames = FrameSplitter::new(AGENT_MAX_FRAME);
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if quiet(&e) || e.kind() == io::ErrorKind::Interrupted => {
                if stop.requested() {
                    break;
                }
                continue;
            }
            Err(_) => break,
        };
        tap.bytes(n);
        if framing == Framing::LengthPrefixed {
            match frames.push(&buf[..n]) {
                Ok(payloads) => payloads.iter().for_each(|p| tap.payload(p)),
                Err(e) => {
                    // The Agent drops the connection: nothing after this can be framed.
                    tap.frame_error(&e);
                    return;
                }
            }
        } else {
            lines.push(&buf[..n]).iter().for_each(|l| tap.line(l));
        }
        if stop.overdue() {
            break;
        }
    }
    if framing == Framing::LengthPrefixed {
        if let Err(e) = frames.finish() {
            tap.frame_error(&e);
        }
    } else if let Some(tail) = lines.finish() {
        tap.flag(&tail, &Bad::Unterminated);
    }
}
