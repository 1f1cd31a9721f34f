//! Setters for what is sent in an interval where a series recorded nothing: gauges re-send
//! their value, counters send 0, so a dashboard shows a line instead of gaps.

use super::ExporterBuilder;

impl ExporterBuilder {
    /// Whether a gauge not set in an interval re-sends its last value at every periodic
    /// flush. Defaults to `true`, for every protocol. Re-sending is the job of the flush
    /// interval's timer: an explicit [`flush`](crate::ExporterHandle::flush) and the final
    /// flush at shutdown send only what changed since the previous flush, so flushing on
    /// demand adds no re-sent line of its own.
    ///
    /// A gauge set once (a pool size, a build number, a configuration value) otherwise leaves
    /// gaps: whisper stores nothing for the slots it missed, the Datadog Agent sends a gauge
    /// only in intervals with a sample, and receivers that delete idle stats (Etsy statsd's
    /// `deleteGauges`, Telegraf's `delete_gauges`, both dropping it after one interval) stop
    /// showing it.
    ///
    /// A gauge is sent from its first `set` (or `increment`) at every tick until its series
    /// expires: when it was not set for the idle timeout
    /// ([`with_idle_timeout`](Self::with_idle_timeout), 10 minutes by default) and no handle
    /// to it is held. So a gauge whose handle the application keeps
    /// (`let g = gauge!("pool.size");`) is sent for as long as the handle lives, and one set
    /// through the macro alone stops 10 to 12.5 minutes after its last `set`. With
    /// `with_idle_timeout(None)` every gauge is sent forever.
    ///
    /// A value that cannot be sent (NaN, an infinity) is counted in
    /// [`ExporterStats::values_dropped_invalid`](crate::ExporterStats::values_dropped_invalid)
    /// once, and the gauge then leaves a gap until it is set to a finite value: re-sending
    /// the value before it would claim something the application no longer says.
    pub fn with_gauge_resend(mut self, resend: bool) -> Self {
        self.continuity.gauge_resend = resend;
        self
    }

    /// Whether a counter that counted nothing in an interval sends 0 at the periodic flush,
    /// from its first increment until its series expires (the same rules as for gauges, see
    /// [`with_gauge_resend`](Self::with_gauge_resend)). A counter created but never
    /// incremented sends nothing.
    ///
    /// Defaults to `true` for Graphite (plaintext and pickle): carbon stores what it is sent,
    /// so a counter that is not sent leaves a gap in a rate graph where there should be 0.
    /// (In [`CounterMode::Total`](crate::CounterMode::Total) the running total is sent at
    /// every flush anyway.)
    ///
    /// Defaults to `false` for StatsD and DogStatsD, whose servers already report 0 for a
    /// counter they know: Etsy statsd with its default `deleteCounters: false`, collectd's
    /// statsd plugin with its default `DeleteCounters false`, and the Datadog Agent for
    /// `dogstatsd_expiry_seconds` (300 s) after a counter's last update. Turn it on for a
    /// server that forgets idle counters (Telegraf's statsd input, whose `delete_counters`
    /// defaults to true; Etsy with `deleteCounters: true`): each idle counter then costs one
    /// `name:0|c` line per flush.
    pub fn with_counter_zeros(mut self, zeros: bool) -> Self {
        self.continuity.counter_zeros = Some(zeros);
        self
    }
}
