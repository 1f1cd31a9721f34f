//! Setters for self-telemetry: the exporter's own statistics sent as metrics.

use super::{DEFAULT_TELEMETRY_PREFIX, ExporterBuilder};

impl ExporterBuilder {
    /// Sends the exporter's own statistics as metrics, after each flush, under the prefix
    /// `metrics_exporter` (change it with
    /// [`with_telemetry_prefix`](Self::with_telemetry_prefix)). Defaults to off.
    ///
    /// The metrics are [`ExporterStats`](crate::ExporterStats) as counters (what changed since
    /// the last report, so a dashboard sums them like any counter) and the live-series count
    /// as a gauge, named and tagged like every other metric (your prefix and global labels
    /// apply). They never count themselves: they travel in their own payloads, after yours,
    /// and are tallied only in `telemetry_lines_sent` / `telemetry_lines_dropped`, which are
    /// not reported, so your statistics are the same with telemetry on or off. A report the
    /// transport does not accept is carried into the next one; none is sent while a stream
    /// destination is down or after a failed send. The crate docs' "Self-telemetry" section lists every
    /// name.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// // Sends e.g. `metrics_exporter.lines_sent:42|c` and `metrics_exporter.series:7|g`.
    /// let builder = ExporterBuilder::statsd("127.0.0.1:8125").with_telemetry(true);
    /// # drop(builder);
    /// ```
    pub fn with_telemetry(mut self, enabled: bool) -> Self {
        let prefix = self.telemetry.take();
        self.telemetry =
            enabled.then(|| prefix.unwrap_or_else(|| DEFAULT_TELEMETRY_PREFIX.to_owned()));
        self
    }

    /// Sends the exporter's own statistics (see [`with_telemetry`](Self::with_telemetry))
    /// under `prefix`, sanitised like any name; calling it turns telemetry on. A prefix with no
    /// name in it (`""`, `"."`) fails the build, so the stats never go out bare.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// // `myapp.statsd_client.lines_dropped.send:3|c`
    /// let builder = ExporterBuilder::statsd("127.0.0.1:8125")
    ///     .with_prefix("myapp")
    ///     .with_telemetry_prefix("statsd_client");
    /// # drop(builder);
    /// ```
    pub fn with_telemetry_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.telemetry = Some(prefix.into());
        self
    }
}
