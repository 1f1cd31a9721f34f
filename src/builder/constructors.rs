//! The constructors: one per protocol, and the two that read the environment.

use super::ExporterBuilder;
use crate::protocol::Protocol;

impl ExporterBuilder {
    /// Plain StatsD to `endpoint`: `udp://host:port`, `tcp://host:port`, `host:port` (UDP),
    /// `unix:///path` (a Unix stream socket, newline-terminated lines, as Etsy statsd's
    /// `socket` server reads them) or `unixgram:///path` (a Unix datagram socket). IPv6 hosts go in brackets: `udp://[::1]:8125`. The port
    /// defaults to 8125.
    pub fn statsd(endpoint: impl Into<String>) -> Self {
        Self::new(Protocol::Statsd, endpoint.into())
    }

    /// DogStatsD to `endpoint`: `udp://host:port` or `host:port`, `unix:///path` (a Unix
    /// stream socket; each payload framed with a 4-byte little-endian length, as the Datadog
    /// Agent reads it) or `unixgram:///path` (a Unix datagram socket).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let guard = ExporterBuilder::dogstatsd("unixgram:///var/run/datadog/dsd.socket")
    ///     .with_global_labels([("env", "prod")])
    ///     .install()?;
    /// metrics::histogram!("request.latency", "route" => "/a").record(0.012);
    /// // sends `request.latency:0.012|d|#env:prod,route:/a`
    /// # drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    pub fn dogstatsd(endpoint: impl Into<String>) -> Self {
        Self::new(Protocol::DogStatsd, endpoint.into())
    }

    /// DogStatsD configured from the environment as the official Datadog clients do: the
    /// endpoint from `DD_DOGSTATSD_URL`, else `DD_AGENT_HOST` and `DD_DOGSTATSD_PORT`, else
    /// `udp://127.0.0.1:8125`; global tags `env`, `service`, `version` from `DD_ENV`,
    /// `DD_SERVICE`, `DD_VERSION`, and `dd.internal.entity_id` from `DD_ENTITY_ID`.
    ///
    /// Setters called afterwards win over the environment (`with_remote_address` replaces
    /// the endpoint; a global label with the same key replaces the environment's). A malformed
    /// variable is reported by `build`, naming the variable and its value.
    pub fn dogstatsd_from_env() -> Self {
        Self::from_settings(crate::env::dogstatsd(env_var).into())
    }

    /// Any protocol, configured from the environment as the clients our users come from read
    /// it. The protocol is DogStatsD when `DD_DOGSTATSD_URL` or `DD_AGENT_HOST` is set (see
    /// [`dogstatsd_from_env`](Self::dogstatsd_from_env)), else Graphite when `GRAPHITE_URL`
    /// or `GRAPHITE_HOST` is, else plain StatsD:
    ///
    /// | variable | effect |
    /// |---|---|
    /// | `STATSD_URL` | the endpoint (`udp://`, `tcp://`, `unix://`); wins over the next three |
    /// | `STATSD_HOST`, `STATSD_PORT` | host (default `127.0.0.1`) and port (default 8125) |
    /// | `STATSD_PROTOCOL` | `udp` (default) or `tcp`, as sprockets-statsd reads it |
    /// | `STATSD_PREFIX` | [`with_prefix`](Self::with_prefix) |
    /// | `GRAPHITE_URL` | the endpoint (`tcp://`, `udp://`, `unix://`); wins over the next three |
    /// | `GRAPHITE_HOST`, `GRAPHITE_PORT` | host and port (default 2003; 2004 for pickle) |
    /// | `GRAPHITE_PROTOCOL` | `tcp` (plaintext, default), `udp` (plaintext) or `pickle` |
    /// | `GRAPHITE_PREFIX` | [`with_prefix`](Self::with_prefix) |
    ///
    /// Precedence: setters called afterwards > the environment > defaults. Empty values count
    /// as unset; a malformed one (a port of `99999`, `STATSD_PROTOCOL=http`) makes `build`
    /// fail with [`BuildError::InvalidEnvironment`](crate::BuildError::InvalidEnvironment)
    /// naming the variable and its value, never a silent default.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// // STATSD_HOST=statsd.internal STATSD_PREFIX=myapp ./app
    /// let guard = ExporterBuilder::from_env()
    ///     .with_flush_interval(Duration::from_secs(5))
    ///     .install()?;
    /// # drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_env() -> Self {
        Self::from_settings(crate::env::detect(env_var))
    }

    pub(super) fn from_settings(env: crate::env::EnvSettings) -> Self {
        let mut builder = Self::new(env.protocol, env.endpoint.0);
        builder.endpoint_source = env.endpoint.1;
        builder.env_labels = env.labels;
        builder.env_error = env.error;
        builder.prefix = env.prefix;
        builder
    }

    /// Graphite plaintext (`path value timestamp`) to `endpoint`: `tcp://host:port` or a bare
    /// `host:port` (TCP), `udp://host:port` (carbon's UDP listener, off by default in
    /// carbon), or `unix:///path` (a stream socket, as carbon-c-relay offers). The port
    /// defaults to 2003.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let guard = ExporterBuilder::graphite("carbon.internal:2003").with_prefix("myapp").install()?;
    /// metrics::counter!("requests", "route" => "/a").increment(1);
    /// // sends `myapp.requests;route=/a 1 1700000010` at the next flush
    /// # drop(guard);
    /// # Ok(())
    /// # }
    /// ```
    pub fn graphite(endpoint: impl Into<String>) -> Self {
        Self::new(Protocol::Graphite, endpoint.into())
    }

    /// Graphite pickle batches to carbon's pickle receiver: `tcp://host:port` or a bare
    /// `host:port`, port 2004 by default. Each payload (64 KiB of points by default, at most
    /// 512 KiB) goes out as one frame (or more, should its pickle pass 1 000 000 bytes): a 4-byte big-endian length and a protocol-2 pickle of
    /// `[(path, (timestamp, value)), ...]` with unicode paths, integer timestamps and float
    /// values, which both carbon and go-carbon accept. Everything else is as
    /// [`graphite`](Self::graphite).
    pub fn graphite_pickle(endpoint: impl Into<String>) -> Self {
        Self::new(Protocol::GraphitePickle, endpoint.into())
    }
}

/// A variable of the process environment. A value that is not UTF-8 is passed on lossily,
/// never taken as unset: a port or protocol then fails to parse and is reported, a host fails
/// to resolve, and a prefix or tag carries `_` where the bad bytes were.
fn env_var(name: &str) -> Option<String> {
    env_value(std::env::var(name))
}

pub(super) fn env_value(read: Result<String, std::env::VarError>) -> Option<String> {
    match read {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(raw)) => Some(raw.to_string_lossy().into_owned()),
    }
}
