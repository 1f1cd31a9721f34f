//! Setters for where and when payloads go: the endpoint, the flush interval, payload size and
//! the timeouts and reconnect backoff of the transport.

use std::time::Duration;

use super::ExporterBuilder;

impl ExporterBuilder {
    /// Replaces the endpoint (same forms as [`statsd`](Self::statsd) and
    /// [`dogstatsd`](Self::dogstatsd)). After [`from_env`](Self::from_env), it also sets
    /// aside a malformed host, port or URL variable, which it replaces; any other malformed
    /// variable (`STATSD_PROTOCOL`, which chose the format, `DD_CARDINALITY`,
    /// `STATSD_ENABLED`...) still fails the build.
    pub fn with_remote_address(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self.endpoint_source = None;
        self.env_errors.retain(|e| !e.is_endpoint());
        if let Some(origin) = &mut self.env_origin {
            origin.endpoint_replaced(&self.endpoint);
        }
        self
    }

    /// How often the aggregate is sent. Defaults to 10 seconds (Etsy statsd's own interval).
    /// Must not be zero.
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Largest payload: one datagram for UDP, one write batch for TCP. Lines are never split;
    /// a single line longer than this is dropped and counted. Defaults to 1432 for UDP (fits
    /// an Ethernet MTU), 65536 for TCP and plain StatsD over Unix streams, and 8192 for Unix
    /// datagram sockets and DogStatsD over Unix streams (the Agent's
    /// `dogstatsd_buffer_size`); must be within
    /// 64..=65507 (UDP), 64..=65536 (Unix datagrams) or 64..=16 MiB (streams). For DogStatsD
    /// never set it above the Agent's buffer: the Agent cuts longer datagrams and drops the
    /// connection on longer stream frames.
    pub fn with_maximum_payload_length(mut self, len: usize) -> Self {
        self.max_payload_len = Some(len);
        self
    }

    /// How long the final flush may take at shutdown. Defaults to 5 seconds.
    pub fn with_shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long one payload write may take before it is abandoned. Defaults to 1 second;
    /// must not be zero.
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long one connection attempt (and one DNS lookup) may take. Defaults to 1 second;
    /// must not be zero.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How often a network destination's host name is re-resolved: UDP sends move to the new
    /// address at the next flush, and a TCP connection to an address the name no longer
    /// gives is replaced; TCP also re-resolves on every reconnect. Defaults to 60 seconds.
    pub fn with_resolve_interval(mut self, interval: Duration) -> Self {
        self.resolve_interval = interval;
        self
    }

    /// How long to wait before the first reconnect attempt once a stream destination (TCP,
    /// Unix stream) breaks or refuses, or a Unix datagram socket is missing. Defaults to
    /// 100 ms; must not be zero. (UDP needs no reconnect: every flush simply sends.)
    ///
    /// The backoff is capped exponential with "equal jitter": retry number `n` (0 for the
    /// first) waits between half and all of `min(delay · 2^n, cap)`, at random, so clients
    /// that lost the same receiver at once spread out; the cap is
    /// [`with_max_reconnect_delay`](Self::with_max_reconnect_delay). A connection that works
    /// again resets it. Retries happen at flush ticks: the first flush after the wait tries
    /// again, so the real wait is rounded up to the flush interval. The final flush at
    /// shutdown ignores the backoff and tries at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let builder = ExporterBuilder::graphite("carbon.internal:2003")
    ///     .with_reconnect_delay(Duration::from_millis(500))
    ///     .with_max_reconnect_delay(Duration::from_secs(60));
    /// # drop(builder);
    /// ```
    pub fn with_reconnect_delay(mut self, delay: Duration) -> Self {
        self.reconnect_delay = delay;
        self
    }

    /// The longest wait between reconnect attempts (see
    /// [`with_reconnect_delay`](Self::with_reconnect_delay) for the backoff). Defaults to
    /// 10 seconds; must be at least the reconnect delay.
    pub fn with_max_reconnect_delay(mut self, cap: Duration) -> Self {
        self.max_reconnect_delay = cap;
        self
    }
}
