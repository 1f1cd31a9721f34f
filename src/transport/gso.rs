//! UDP generic segmentation offload (Linux): a run of datagrams of one length (the last may be
//! shorter) handed to the kernel in one system call, which cuts it back into exactly those
//! datagrams. The receiver sees the same bytes, boundaries and order as from one `send` each.
//!
//! The segment size is a socket option (`UDP_SEGMENT`), set only when it changes, and the run
//! goes out with one `writev` of the datagrams as they lie in the payload writer: no copy, no
//! control-message buffer, so nothing is allocated. A datagram sent on its own goes out with
//! the option cleared (one longer than the segment size would be cut).
//!
//! A kernel that refuses (`EINVAL`, `ENOPROTOOPT`, `EIO`, `ENOSYS`) turns it off for good on
//! that socket, logged once at debug; every datagram then goes out with its own `send`.
//! Datagrams are never padded or altered to make a run: runs occur where the encoder's packed
//! payloads happen to have equal lengths (for 100k similar series, nearly all of them).

use std::io::{self, IoSlice};

use nix::errno::Errno;
use nix::sys::socket::{setsockopt, sockopt::UdpGsoSegment};
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// The most datagrams in one run (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
pub(crate) const MAX_SEGMENTS: usize = 64;
/// The most bytes in one run: one UDP datagram's payload limit (65,507 on IPv4, 65,487 on
/// IPv6), with room to spare.
const MAX_RUN_BYTES: usize = 65_000;

/// Per socket: whether GSO is still on and the segment size set on it now.
#[derive(Debug)]
pub(crate) struct Gso {
    on: bool,
    /// The `UDP_SEGMENT` value on the socket (0: none).
    size: usize,
    /// Tests: the kernel "refuses" the next run with this error.
    #[cfg(test)]
    pub(crate) refuse: Option<Errno>,
    /// Tests: runs that went out.
    #[cfg(test)]
    pub(crate) runs: usize,
}

/// Why a run did not go out.
#[derive(Debug)]
pub(crate) enum RunError {
    /// GSO is off on this socket (now or before): send the datagrams one at a time.
    Off,
    /// The send failed (nothing of the run went out).
    Io(io::Error),
}

impl Gso {
    pub(crate) fn new() -> Self {
        Self {
            on: true,
            size: 0,
            #[cfg(test)]
            refuse: None,
            #[cfg(test)]
            runs: 0,
        }
    }

    /// Whether runs are sent with GSO on this socket.
    pub(crate) fn is_on(&self) -> bool {
        self.on
    }

    /// Tests: turns GSO off on this socket, as a refusing kernel would.
    #[cfg(test)]
    pub(crate) fn turn_off(&mut self) {
        self.on = false;
    }

    /// How many of `lens` (datagram lengths, in order) one run can carry: those of the first
    /// one's length, then at most one shorter, within the segment and byte limits. A run of
    /// fewer than 2 is not worth a run.
    pub(crate) fn run_len(lens: impl Iterator<Item = usize>) -> usize {
        let mut n = 0;
        let mut size = 0;
        let mut total = 0;
        for len in lens {
            if n == MAX_SEGMENTS || total + len > MAX_RUN_BYTES {
                break;
            }
            if n == 0 {
                if len == 0 {
                    return 0;
                }
                size = len;
            } else if len > size {
                break;
            }
            n += 1;
            total += len;
            if len < size {
                break;
            }
        }
        n
    }

    /// Sends `run` (at least 2 datagrams, as [`run_len`](Self::run_len) allows) in one call,
    /// waiting for room in the socket buffer as `send` does. All of it goes out, or none.
    pub(crate) async fn send(&mut self, socket: &UdpSocket, run: &[&[u8]]) -> Result<(), RunError> {
        if !self.on {
            return Err(RunError::Off);
        }
        let mut iov = [IoSlice::new(&[]); MAX_SEGMENTS];
        for (slot, datagram) in iov.iter_mut().zip(run) {
            *slot = IoSlice::new(datagram);
        }
        let iov = &iov[..run.len().min(MAX_SEGMENTS)];
        let size = run.first().map_or(0, |d| d.len());
        let result = match self.set_size(socket, size) {
            Ok(()) => {
                socket
                    .async_io(Interest::WRITABLE, || {
                        #[cfg(test)]
                        if let Some(errno) = self.refuse.take() {
                            return Err(errno.into());
                        }
                        nix::sys::uio::writev(socket, iov).map_err(io::Error::from)
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(_) => {
                #[cfg(test)]
                {
                    self.runs += 1;
                }
                Ok(())
            }
            Err(e) if refused_by_kernel(&e) => {
                tracing::debug!(error = %e, "the kernel refuses UDP segmentation offload on this socket; sending one datagram per call");
                self.on = false;
                // The datagrams that follow go out alone: none may be cut at a stale size.
                match self.set_size(socket, 0) {
                    Ok(()) => Err(RunError::Off),
                    Err(e) => Err(RunError::Io(e)),
                }
            }
            Err(e) => Err(RunError::Io(e)),
        }
    }

    /// Clears the segment size before a datagram goes out alone: one longer than it would be
    /// cut, and while it is set the kernel checks every send against the path (its MTU, its
    /// checksum offload) as for a run.
    pub(crate) fn before_single(&mut self, socket: &UdpSocket) -> io::Result<()> {
        self.set_size(socket, 0)
    }

    fn set_size(&mut self, socket: &UdpSocket, size: usize) -> io::Result<()> {
        if size == self.size {
            return Ok(());
        }
        let value = i32::try_from(size).unwrap_or(i32::MAX);
        setsockopt(socket, UdpGsoSegment, &value)?;
        self.size = size;
        Ok(())
    }
}

/// The errors with which a kernel (or device) says it does not do GSO here.
fn refused_by_kernel(e: &io::Error) -> bool {
    let errno = e.raw_os_error().map(Errno::from_raw);
    matches!(
        errno,
        Some(Errno::EINVAL | Errno::ENOPROTOOPT | Errno::EIO | Errno::ENOSYS)
    )
}
