//! Setters that spread a fleet's aligned Graphite sends over part of the interval, and their
//! check (called from `validate`).

use std::time::Duration;

use super::ExporterBuilder;
use super::constructors::env_var;
use crate::error::BuildError;
use crate::flush::{identity_seed, send_delay};
use crate::protocol::Protocol;

/// Where Linux keeps the hostname.
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

impl ExporterBuilder {
    /// Graphite with aligned timestamps: each periodic flush goes out a fixed delay after its
    /// slot starts, chosen per host within `[0, spread)`, instead of at the slot start, so the
    /// hosts of a fleet reach a central carbon or relay spread over `spread` rather than all
    /// in the same few milliseconds of every interval. Off (zero) by default; must be at most
    /// half the flush interval.
    ///
    /// - Points keep the slot start as their timestamp, so carbon stores them in the same
    ///   slot as without a spread: only their arrival moves, by less than `spread`.
    /// - The delay is stable: the same host gets the same one on every tick and every
    ///   restart, so its points stay one interval apart. It is the 64-bit FNV-1a hash of the
    ///   hostname (`/proc/sys/kernel/hostname`, else `HOSTNAME`), passed through `SplitMix64`'s
    ///   finaliser, whose high bits scale it into `[0, spread)`.
    ///   [`with_send_spread_seed`](Self::with_send_spread_seed) replaces the hostname.
    /// - [`ExporterHandle::flush`](crate::ExporterHandle::flush) and the final flush at
    ///   shutdown are never delayed.
    /// - With a fleet's delays spread at random, the receiver's peak falls to about twice the
    ///   even share (`lines × window / spread`); BENCHMARKS.md has the measurement
    ///   (`benches/spread.rs`). It is off by default because a lone host gains nothing and
    ///   every point would arrive later; turn it on where many hosts feed one carbon or
    ///   relay.
    ///
    /// ```
    /// use std::time::Duration;
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// // 10 s slots; this host sends somewhere in the first 3 s of each, always at the same point.
    /// let builder = ExporterBuilder::graphite("127.0.0.1:2003")
    ///     .with_flush_interval(Duration::from_secs(10))
    ///     .with_send_spread(Duration::from_secs(3));
    /// # drop(builder);
    /// ```
    pub fn with_send_spread(mut self, spread: Duration) -> Self {
        self.send_spread = spread;
        self
    }

    /// The seed of this process's send delay
    /// ([`with_send_spread`](Self::with_send_spread)) in place of its hostname's hash: for
    /// processes that share a hostname (several workers on one machine, containers on the
    /// host's network) and should not send at the same instant, such as a worker index. The
    /// same seed always gives the same delay. Needs a send spread.
    pub fn with_send_spread_seed(mut self, seed: u64) -> Self {
        self.send_spread_seed = Some(seed);
        self
    }

    /// This host's delay after each aligned slot start (zero: none), with the spread checked.
    pub(super) fn send_delay(&self) -> Result<Duration, BuildError> {
        let invalid = |setting, reason| Err(BuildError::InvalidSetting { setting, reason });
        if self.send_spread.is_zero() {
            if self.send_spread_seed.is_some() {
                return invalid(
                    "with_send_spread_seed",
                    "needs a send spread (with_send_spread)",
                );
            }
            return Ok(Duration::ZERO);
        }
        let graphite = matches!(self.protocol, Protocol::Graphite | Protocol::GraphitePickle);
        if !graphite || self.aligned_timestamps == Some(false) {
            return invalid(
                "with_send_spread",
                "Graphite with aligned timestamps only: other flushes tick from the exporter's start, so hosts are spread already",
            );
        }
        if self.send_spread > self.flush_interval / 2 {
            return invalid(
                "with_send_spread",
                "must be at most half the flush interval, so each flush stays inside its aligned slot",
            );
        }
        let seed = self.send_spread_seed.unwrap_or_else(|| {
            let file = std::fs::read_to_string(HOSTNAME_FILE).ok();
            let identity = host_identity(file, env_var("HOSTNAME"));
            if identity.is_none() {
                tracing::warn!(
                    "no hostname found for the send spread: every such host sends at the same delay (set with_send_spread_seed)"
                );
            }
            identity_seed(identity.unwrap_or_default().as_bytes())
        });
        let delay = send_delay(seed, self.send_spread);
        tracing::debug!(?delay, spread = ?self.send_spread, "aligned Graphite sends delayed");
        Ok(delay)
    }
}

/// The hostname from the kernel's `file`, else from the `HOSTNAME` variable `env`, trimmed;
/// `None` when neither has one.
pub(super) fn host_identity(file: Option<String>, env: Option<String>) -> Option<String> {
    [file, env]
        .into_iter()
        .flatten()
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
}

#[cfg(test)]
#[path = "spread_tests.rs"]
mod tests;
