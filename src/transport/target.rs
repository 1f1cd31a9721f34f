//! The destination's addresses, kept fresh.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::resolve::{Lookup, Lookups};
use crate::config::Endpoint;
use crate::stats::{StatsCells, add};

/// The destination's addresses, looked up lazily (a name need not resolve when the exporter
/// is built) and re-resolved now and then so DNS changes are followed.
#[derive(Debug)]
pub(crate) struct Target {
    pub(super) endpoint: Endpoint,
    /// Empty until a name first resolves; never emptied again.
    pub(super) addrs: Vec<SocketAddr>,
    /// When the addresses were last looked up (`None`: never).
    pub(super) resolved_at: Option<Instant>,
    pub(super) resolve_interval: Duration,
    pub(super) lookups: Lookups,
}

impl Target {
    /// The preferred address (the resolver's first); `None` until the name first resolves.
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

    /// Whether this is a network destination whose name has not resolved yet.
    pub(super) fn unresolved(&self) -> bool {
        !self.endpoint.is_unix() && self.addrs.is_empty()
    }

    /// Re-resolves when `force`d or when the interval has passed (or the name never resolved).
    /// A failed lookup (counted in `resolve_failures`) keeps the old addresses: a DNS hiccup
    /// must not stop metrics to a server that is still there. Returns the lookup's error.
    pub(super) async fn refresh(
        &mut self,
        now: Instant,
        force: bool,
        timeout: Duration,
        stats: &StatsCells,
    ) -> Option<std::io::Error> {
        let fresh = self
            .resolved_at
            .is_some_and(|at| now.duration_since(at) < self.resolve_interval);
        if self.endpoint.is_unix() || (!force && fresh) {
            return None;
        }
        self.resolved_at = Some(now);
        let (host, port) = (self.endpoint.host.as_str(), self.endpoint.port);
        match self.lookups.lookup(host, port, timeout).await {
            Lookup::Found(addrs) => {
                if addrs != self.addrs {
                    if !self.addrs.is_empty() {
                        tracing::info!(endpoint = %self.endpoint, ?addrs, "metrics destination resolved to new addresses");
                    }
                    self.addrs = addrs;
                }
                None
            }
            Lookup::Failed(error) => {
                add(&stats.resolve_failures, 1);
                if !self.addrs.is_empty() {
                    tracing::debug!(endpoint = %self.endpoint, %error, "re-resolving the metrics destination failed; keeping its addresses");
                }
                Some(error)
            }
        }
    }
}
