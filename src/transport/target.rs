//! The destination's addresses, kept fresh.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Endpoint;

/// The destination's addresses, re-resolved now and then so DNS changes are followed.
#[derive(Debug)]
pub(crate) struct Target {
    pub(super) endpoint: Endpoint,
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) resolved_at: Instant,
    pub(super) resolve_interval: Duration,
}

impl Target {
    /// The preferred address (the resolver's first). Never `None` in practice: `build`
    /// refuses an endpoint without addresses and `refresh` never stores an empty list.
    pub(super) fn current(&self) -> Option<SocketAddr> {
        self.addrs.first().copied()
    }

    pub(super) fn contains(&self, addr: SocketAddr) -> bool {
        self.addrs.contains(&addr)
    }

    /// The socket path, for Unix sockets.
    pub(super) fn path(&self) -> Option<&str> {
        self.endpoint
            .is_unix()
            .then_some(self.endpoint.host.as_str())
    }

    pub(super) fn all(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.addrs.iter().copied()
    }

    /// Re-resolves when `force`d or when the interval has passed. A failed lookup keeps the
    /// old addresses: a DNS hiccup must not stop metrics to a server that is still there.
    pub(super) async fn refresh(&mut self, now: Instant, force: bool, timeout: Duration) {
        if self.endpoint.is_unix()
            || (!force && now.duration_since(self.resolved_at) < self.resolve_interval)
        {
            return;
        }
        self.resolved_at = now;
        let host = (self.endpoint.host.as_str(), self.endpoint.port);
        if let Ok(Ok(addrs)) = tokio::time::timeout(timeout, tokio::net::lookup_host(host)).await {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if !addrs.is_empty() && addrs != self.addrs {
                tracing::info!(endpoint = %self.endpoint, ?addrs, "metrics destination resolved to new addresses");
                self.addrs = addrs;
            }
        }
    }
}
