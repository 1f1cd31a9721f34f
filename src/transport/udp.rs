//! UDP: one datagram per payload, fire and forget; on Linux, runs of equal-length datagrams
//! in one system call ([`gso`](super::gso)).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;

#[cfg(target_os = "linux")]
use super::gso::{Gso, RunError};
use super::{Hint, SendError, Target};

/// A connected UDP socket, re-created when the destination's address changes.
#[derive(Debug)]
pub(crate) struct UdpTransport {
    socket: Option<(UdpSocket, SocketAddr)>,
    /// The socket reported that an earlier datagram was refused (nobody listening).
    refused: bool,
    /// The last send learnt of a refusal: until a send learns of none, datagrams go out one
    /// at a time, so each refusal is charged to the datagram before it, as it always was.
    refusing: bool,
    /// The last run failed for another reason (e.g. `ENOBUFS` under memory pressure): until
    /// a datagram sent alone goes out, no run is tried, so a stressed system does not pay a
    /// failed run plus the single send for every datagram.
    run_failed: bool,
    /// Per socket (reset with it).
    #[cfg(target_os = "linux")]
    gso: Gso,
}

impl UdpTransport {
    pub(crate) fn new() -> Self {
        Self {
            socket: None,
            refused: false,
            refusing: false,
            run_failed: false,
            #[cfg(target_os = "linux")]
            gso: Gso::new(),
        }
    }

    /// Whether a send since the last call learnt that an earlier datagram was refused.
    pub(crate) fn take_refused(&mut self) -> bool {
        std::mem::take(&mut self.refused)
    }

    /// Opens a socket towards `target`'s current address if we have none (or the address
    /// changed). Binds to the wildcard address of the destination's family, so IPv6
    /// destinations work.
    pub(crate) async fn ready(&mut self, target: &Target) -> io::Result<()> {
        let Some(addr) = target.current() else {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the destination has no address",
            ));
        };
        if matches!(&self.socket, Some((_, a)) if *a == addr) {
            return Ok(());
        }
        let local: SocketAddr = match addr {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await?;
        socket.connect(addr).await?;
        self.socket = Some((socket, addr));
        #[cfg(target_os = "linux")]
        {
            self.gso = Gso::new();
        }
        Ok(())
    }

    /// Sends one datagram. `hint` is what a failed run learnt about it (see [`Hint`]).
    pub(crate) async fn send(&mut self, payload: &[u8], hint: Hint) -> Result<(), SendError> {
        let Some((socket, _)) = &self.socket else {
            return Err(SendError::NotConnected);
        };
        #[cfg(target_os = "linux")]
        if let Err(e) = self.gso.before_single(socket) {
            // The socket might cut this datagram: give it up (the next `ready` makes a new one).
            self.socket = None;
            return Err(SendError::Io(e));
        }
        let first = match hint {
            Hint::Refused => Err(io::ErrorKind::ConnectionRefused.into()),
            // (A timed-out run never gets here: the transport reports the timeout.)
            Hint::Fresh | Hint::TimedOut => socket.send(payload).await.map(|_| ()),
        };
        let result = match first {
            Ok(()) => Ok(()),
            // A connected UDP socket reports an ICMP "port unreachable" from an *earlier*
            // datagram on the next send, which did not go out. Note the earlier loss, and
            // try once more: if the receiver is back, this one arrives.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                self.refused = true;
                socket.send(payload).await.map(|_| ()).map_err(classify)
            }
            Err(e) => Err(classify(e)),
        };
        self.refusing = self.refused;
        if result.is_ok() {
            self.run_failed = false;
        }
        result
    }

    /// Whether [`send_run`](Self::send_run) may be tried now.
    pub(crate) fn sends_runs(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.socket.is_some() && !self.refusing && !self.run_failed && self.gso.is_on();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// Sends a run of datagrams in one call (all or none). `Ok(false)`: not sent, send them
    /// one at a time. `Err(hint)`: not sent, and `hint` is what the run learnt about its first
    /// datagram.
    pub(crate) async fn send_run(&mut self, run: &[&[u8]]) -> Result<bool, Hint> {
        #[cfg(target_os = "linux")]
        {
            let Some((socket, _)) = &self.socket else {
                return Ok(false);
            };
            match self.gso.send(socket, run).await {
                Ok(()) => Ok(true),
                // The refusal of an earlier datagram, which the run's call took: its first
                // datagram is the one that learnt it.
                Err(RunError::Io(e)) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    Err(Hint::Refused)
                }
                // GSO off, or anything else: the first datagram, sent alone, meets it (or
                // not) itself.
                Err(RunError::Off) => Ok(false),
                Err(RunError::Io(_)) => {
                    self.run_failed = true;
                    Ok(false)
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = run;
            Ok(false)
        }
    }

    /// Tests: GSO off on this socket, as a refusing kernel would turn it.
    #[cfg(all(test, target_os = "linux"))]
    pub(crate) fn gso(&mut self) -> &mut Gso {
        &mut self.gso
    }
}

/// A datagram too large for the socket is refused for itself; anything else is about the
/// destination.
fn classify(e: io::Error) -> SendError {
    if e.raw_os_error() == Some(super::EMSGSIZE) {
        SendError::Rejected(e)
    } else {
        SendError::Io(e)
    }
}
