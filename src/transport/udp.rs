//! UDP: one datagram per payload, fire and forget.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;

use super::{SendError, Target};

/// A connected UDP socket, re-created when the destination's address changes.
#[derive(Debug)]
pub(crate) struct UdpTransport {
    socket: Option<(UdpSocket, SocketAddr)>,
    /// The socket reported that an earlier datagram was refused (nobody listening).
    refused: bool,
}

impl UdpTransport {
    pub(crate) fn new() -> Self {
        Self {
            socket: None,
            refused: false,
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
        Ok(())
    }

    pub(crate) async fn send(&mut self, payload: &[u8]) -> Result<(), SendError> {
        let Some((socket, _)) = &self.socket else {
            return Err(SendError::NotConnected);
        };
        match socket.send(payload).await {
            Ok(_) => Ok(()),
            // A connected UDP socket reports an ICMP "port unreachable" from an *earlier*
            // datagram on the next send, which did not go out. Note the earlier loss, and
            // try once more: if the receiver is back, this one arrives.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                self.refused = true;
                socket.send(payload).await.map(|_| ()).map_err(classify)
            }
            Err(e) => Err(classify(e)),
        }
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
