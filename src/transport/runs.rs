//! Runs: several datagrams handed to the kernel in one call (UDP generic segmentation
//! offload, Linux; see `gso`), for [`Delivery`](crate::delivery) to use where it applies.
//!
//! A run goes out whole or not at all. When it does not, nothing of it counts: its first
//! datagram is sent alone with [`Transport::send`], carrying what the run learnt
//! ([`Hint`]), and is counted exactly as if the run had never been tried. While the
//! destination refuses datagrams (an ICMP "port unreachable" reported on a send), datagrams
//! go out one at a time, so each refusal is charged to the datagram just before it.

use super::{Hint, Socket, Transport};

/// The most datagrams in one run.
#[cfg(target_os = "linux")]
pub(crate) const MAX_RUN: usize = super::gso::MAX_SEGMENTS;
/// The most datagrams in one run (no runs off Linux).
#[cfg(not(target_os = "linux"))]
pub(crate) const MAX_RUN: usize = 1;

impl Transport {
    /// Whether [`send_run`](Self::send_run) may be tried now.
    pub(crate) fn sends_runs(&self) -> bool {
        match &self.socket {
            Socket::Udp(udp) => udp.sends_runs(),
            _ => false,
        }
    }

    /// How many of the datagrams with lengths `lens` (in order) one run can carry; fewer than
    /// 2 means "send the first alone".
    pub(crate) fn run_len(lens: impl Iterator<Item = usize>) -> usize {
        #[cfg(target_os = "linux")]
        return super::gso::Gso::run_len(lens);
        #[cfg(not(target_os = "linux"))]
        {
            let _ = lens;
            0
        }
    }

    /// Sends `run` (as [`run_len`](Self::run_len) allows) in one call, waiting up to the
    /// write timeout for room as a `send` does. `Ok(true)`: all of it went out. `Ok(false)`:
    /// none did; send its first datagram alone. `Err(hint)`: none did, and this is what the
    /// run learnt about its first datagram.
    pub(crate) async fn send_run(&mut self, run: &[&[u8]]) -> Result<bool, Hint> {
        let Socket::Udp(udp) = &mut self.socket else {
            return Ok(false);
        };
        let sent = tokio::time::timeout(self.write_timeout, udp.send_run(run))
            .await
            .unwrap_or(Err(Hint::TimedOut));
        if sent == Ok(true) {
            self.mark_up();
        }
        sent
    }

    /// Tests: turns runs off on this socket (every datagram then goes out with its own
    /// `send`), or makes the kernel refuse the next run with `errno` (then runs turn off).
    #[cfg(all(test, target_os = "linux"))]
    pub(crate) fn force_runs(&mut self, on: bool, refuse: Option<nix::errno::Errno>) {
        if let Socket::Udp(udp) = &mut self.socket {
            if !on {
                udp.gso().turn_off();
            }
            udp.gso().refuse = refuse;
        }
    }

    /// Tests: how many runs went out on this socket.
    #[cfg(all(test, target_os = "linux"))]
    pub(crate) fn runs_sent(&mut self) -> usize {
        match &mut self.socket {
            Socket::Udp(udp) => udp.gso().runs,
            _ => 0,
        }
    }
}
