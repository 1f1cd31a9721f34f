//! Setters that bound memory: histogram samples, set members, the backlog, live series (in all and per
//! metric) and idle expiry.

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

    /// Distinct members each set (see [`ExporterHandle::set`](crate::ExporterHandle::set))
    /// keeps per flush interval; a new member past it is refused and counted in
    /// [`ExporterStats::set_members_dropped`](crate::ExporterStats::set_members_dropped).
    /// Each set allocates about 100 bytes per member of this cap when it is registered (two
    /// intervals' queue and filter: about 100 KiB at the default), plus each member's text
    /// (each at most the payload limit long), so lower it when you register many sets. Defaults to 1024; must be within 1..=65536.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let builder = ExporterBuilder::statsd("127.0.0.1:8125").with_set_max_members(256);
    /// # drop(builder);
    /// ```
    pub fn with_set_max_members(mut self, members: usize) -> Self {
        self.set_capacity = members;
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

    /// The most series (distinct name and label sets, all kinds together) kept at once, not
    /// counting overflow series (see
    /// [`with_max_series_per_metric`](Self::with_max_series_per_metric), which also says what
    /// happens past this cap). Room freed by idle expiry is reused. Defaults to 100 000; must
    /// not be zero. A runaway label (a user id, a URL with ids in it) then costs a bounded
    /// amount of memory instead of all of it.
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

    /// The most series one metric (a name and a kind: a counter and a gauge of the same name
    /// are two metrics) keeps at once, like OpenTelemetry's cardinality limit per instrument.
    /// Defaults to 2 000 (OpenTelemetry's default), or half of
    /// [`with_max_series`](Self::with_max_series) if that is less, so that one runaway label
    /// cannot fill the total: the other metrics keep getting new series while they are under
    /// their own limit and the total has room. Must be within 1..=`max_series`.
    ///
    /// **Overflow.** A new series past this limit, or past `max_series`, is not lost: its
    /// registration returns a handle to the metric's one *overflow series*, the metric's name
    /// with the single label `cardinality="overflow"` (sent as `cardinality:overflow`,
    /// `;cardinality=overflow`, or `name.overflow` when labels are folded into the name),
    /// and is counted in
    /// [`ExporterStats::series_overflowed`](crate::ExporterStats::series_overflowed). So a
    /// metric's totals stay exact: a counter's increments add up in its overflow counter, a
    /// histogram's samples go into its overflow histogram, and for a gauge the last write
    /// wins (`set` from any redirected series replaces the value; `increment`/`decrement`
    /// move it), since one value cannot stand for many. The overflow series counts against
    /// neither limit; at most one exists per metric, and at most 1% of `max_series` (at least
    /// one) in all. It expires when idle like any series, and a metric whose series expired
    /// gets its room back.
    ///
    /// Only when the total is full *and* that many overflow series exist does a new series
    /// of a metric without one get a no-op handle, counted in
    /// [`ExporterStats::series_dropped`](crate::ExporterStats::series_dropped). That is what a
    /// storm of distinct metric *names* (each under its own limit) runs into: it fills the
    /// total, then takes the overflow room, and beyond that new series are dropped. Existing
    /// series always keep working. Threads creating series of one metric at the same instant
    /// can pass a limit by at most their number. Each redirect and drop situation is logged
    /// once.
    ///
    /// ```
    /// use metrics_exporter_statsd_graphite::ExporterBuilder;
    ///
    /// let builder = ExporterBuilder::statsd("127.0.0.1:8125").with_max_series_per_metric(500);
    /// # drop(builder);
    /// ```
    pub fn with_max_series_per_metric(mut self, max: usize) -> Self {
        self.max_series_per_metric = Some(max);
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
