//! Setters that bound memory: histogram samples, the backlog, live series and idle
//! expiry.

use std::time::Duration;

use super::{Expiry, ExporterBuilder};

impl ExporterBuilder {
    /// Samples each histogram keeps per flush interval; beyond that a uniform random sample of
    /// this size is kept and sent with `|@rate`, so the server still counts every sample.
    /// Bounds memory at 16 bytes per sample per histogram. Defaults to 1024; must be within
    /// 1..=65536.
    pub fn with_histogram_max_samples(mut self, samples: usize) -> Self {
        self.histogram_capacity = samples;
        self
    }

    /// Bytes of lines kept for a destination that could not take them (down, a write that
    /// broke mid-flush, a missing Unix socket, a full datagram queue), whatever the
    /// transport; beyond it the oldest lines are dropped and counted in
    /// [`ExporterStats::lines_dropped_send`](crate::ExporterStats::lines_dropped_send).
    /// Defaults to 8 MiB.
    pub fn with_max_backlog_bytes(mut self, bytes: usize) -> Self {
        self.max_backlog_bytes = bytes;
        self
    }

    /// The most series (distinct name and label sets, all kinds together) kept at once.
    /// Past it, a *new* series gets a no-op handle and is counted in
    /// [`ExporterStats::series_dropped`](crate::ExporterStats::series_dropped) (and logged
    /// once); existing series keep working, and room freed by idle expiry is reused.
    /// Defaults to 100 000; must not be zero. A runaway label (a user id, a URL with ids in it)
    /// then costs a bounded amount of memory instead of all of it.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let builder = ExporterBuilder::statsd("127.0.0.1:8125").with_max_series(10_000);
    /// # drop(builder);
    /// ```
    pub fn with_max_series(mut self, max: usize) -> Self {
        self.max_series = max;
        self
    }

    /// Removes series that recorded nothing for `timeout` (found by a scan every quarter
    /// timeout, so within 1.25 × `timeout`), returning their memory; `None` keeps every
    /// series forever. Defaults to 10 minutes (or two flush intervals, if longer);
    /// must be at least the flush interval.
    ///
    /// Expiry never loses an update: a series is removed only while no handle to it exists
    /// (a cached `Counter` keeps its series alive however idle) and it holds nothing unsent;
    /// a later update simply creates it again. On the wire, expiry is when an idle series
    /// stops being sent: a gauge's re-sent value
    /// ([`with_gauge_resend`](Self::with_gauge_resend)) and a counter's zeros
    /// ([`with_counter_zeros`](Self::with_counter_zeros)) stop with it. Graphite counters in
    /// [`CounterMode::Total`](crate::CounterMode::Total) are never expired, because their
    /// running total would restart.
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = Expiry::Set(timeout);
        self
    }
}
