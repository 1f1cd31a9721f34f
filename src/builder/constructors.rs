//! The constructors: one per protocol, and the two that read the environment.

use super::ExporterBuilder;
use crate::env_origin::Scope;
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

    /// DogStatsD configured from the `DD_*` environment variables, as the official Datadog
    /// clients read them: endpoint and unified service tags. The variables, their defaults
    /// and the precedence rules are listed once, in the crate docs'
    /// [Configuration reference](crate#configuration-reference).
    pub fn dogstatsd_from_env() -> Self {
        Self::from_settings_in(
            crate::env::dogstatsd_settings(env_var),
            Scope::DogStatsd,
            env_var,
        )
    }

    /// Any protocol, configured from the environment as the clients our users come from read
    /// it: the `STATSD_*`, `GRAPHITE_*` and `DD_*` variables, which also pick the protocol.
    /// The variables, their defaults, how the protocol is picked and the precedence rules
    /// are listed once, in the crate docs'
    /// [Configuration reference](crate#configuration-reference).
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
        Self::from_settings_in(crate::env::detect(env_var), Scope::Detect, env_var)
    }

    /// The builder `env` describes, with the record of where it came from.
    pub(super) fn from_settings_in(
        env: crate::env::EnvSettings,
        scope: Scope,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let origin = crate::env_origin::origin(scope, &env, lookup);
        let mut builder = Self::new(env.protocol, env.endpoint.0);
        builder.endpoint_source = env.endpoint.1;
        builder.env_labels = env.labels;
        builder.env_errors = env.errors;
        builder.prefix = env.prefix;
        builder.cardinality = env.cardinality;
        builder.switch = env.enabled.map(|on| (on, crate::env::ENABLED));
        builder.env_origin = Some(origin);
        builder
    }

    /// As [`from_settings_in`](Self::from_settings_in) for `from_env`, with no variable
    /// named in the record but those `env` came from.
    #[cfg(test)]
    pub(super) fn from_settings(env: crate::env::EnvSettings) -> Self {
        Self::from_settings_in(env, Scope::Detect, |_| None)
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
pub(super) fn env_var(name: &str) -> Option<String> {
    env_value(std::env::var(name))
}

pub(super) fn env_value(read: Result<String, std::env::VarError>) -> Option<String> {
    match read {
        Ok(value) => Some(value),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(raw)) => Some(raw.to_string_lossy().into_owned()),
    }
}
