//! Tests: what the flusher's tests set and read on a [`Flusher`], and the helpers they share.

use super::{Aggregate, Config, Delivery, Flusher, WallClock};

impl Flusher {
    /// Replaces the wall clock (tests on tokio's paused clock).
    pub(crate) fn with_clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// Tests: regular flushes send every `bytes` collected (at least a payload's worth).
    pub(crate) fn with_part_bytes(mut self, bytes: usize) -> Self {
        self.part_bytes = bytes;
        self
    }

    /// Tests: the delivery state (backlog, ledger).
    pub(crate) fn delivery(&self) -> &Delivery {
        &self.delivery
    }

    /// Tests: the cells.
    pub(crate) fn aggregate(&self) -> &Aggregate {
        &self.aggregate
    }

    /// Tests: the configuration the flusher runs with.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// Tests: replaces the wall clock between flushes.
    pub(crate) fn set_clock(&mut self, clock: WallClock) {
        self.clock = clock;
    }
}

/// A loopback TCP port with nobody listening on it (bound for a moment, then closed), so a
/// flusher pointed at it finds its destination down until a test listens there.
pub(crate) fn closed_port() -> std::net::SocketAddr {
    #[allow(clippy::unwrap_used, reason = "a test helper")]
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}
