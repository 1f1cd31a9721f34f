//! Exporter statistics: what was sent and what was dropped, and why.
//!
//! The flusher updates the cells (never the recording path); [`ExporterStats`] is a plain
//! snapshot of them for users.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the exporter's counters, all cumulative since the exporter was built.
///
/// Every line the encoder produced is in exactly one of `lines_sent`,
/// `lines_dropped_send` or `lines_dropped_shutdown`, or still waiting in the backlog;
/// every value that could not be encoded is in `values_dropped_invalid`,
/// `lines_dropped_too_long`, `values_dropped_unnamed` or `values_dropped_collision`.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use metrics_exporter_statsd_graphite::ExporterBuilder;
///
/// let guard = ExporterBuilder::statsd("127.0.0.1:8125").install()?;
/// // ... later, e.g. from a health check:
/// let stats = guard.handle().stats();
/// if stats.lines_dropped_send > 0 {
///     tracing::warn!(dropped = stats.lines_dropped_send, "metrics were lost");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExporterStats {
    /// Flushes completed (timer ticks, explicit flushes and the final one).
    pub flushes: u64,
    /// Lines written to the transport.
    pub lines_sent: u64,
    /// Payloads (datagrams, or stream batches) written to the transport whole.
    pub payloads_sent: u64,
    /// Bytes that went on the wire: the pickle frames for Graphite pickle, the 4-byte length
    /// prefixes for DogStatsD over Unix streams.
    pub bytes_sent: u64,
    /// Payloads the socket refused for themselves (a datagram too large for it): sending them
    /// again would fail again, so they are dropped. Any other failure keeps the lines in the
    /// backlog.
    pub payloads_dropped: u64,
    /// Lines lost to failed sends: those in refused payloads, and lines dropped (oldest
    /// first) because the backlog was full.
    pub lines_dropped_send: u64,
    /// Values dropped because their line alone was longer than the maximum payload length
    /// (counted per value: a packed DogStatsD line carrying 3 samples counts 3, the Etsy
    /// negative-gauge pair counts 1).
    pub lines_dropped_too_long: u64,
    /// Values never encoded: NaN, infinities, negative timer values; for a
    /// [`StatsdClient`](crate::StatsdClient), also calls refused for a bad sample rate, a
    /// type or field the dialect cannot carry, or a line that `raw` refuses.
    pub values_dropped_invalid: u64,
    /// Values never encoded because the metric name had nothing usable left after sanitising
    /// (or, for Graphite, because its tags cannot fit carbon's file name even shortened; see
    /// [Long names](crate#long-names)).
    pub values_dropped_unnamed: u64,
    /// Lines the final flush could not deliver before the shutdown timeout.
    pub lines_dropped_shutdown: u64,
    /// Histogram samples recorded but left out of the reservoir (sent as `|@rate` instead);
    /// for a [`StatsdClient`](crate::StatsdClient), sampled calls not sent.
    pub samples_sampled_out: u64,
    /// Send or connect errors seen (each also logged, at most once per state change).
    pub send_errors: u64,
    /// Connections established (stream transports), including reconnects.
    pub connects: u64,
    /// Lookups of the endpoint's host name that failed or did not answer within the connect
    /// timeout. Until the name first resolves (DNS not ready yet when the process starts)
    /// nothing is sent and nothing is lost: the metrics are kept as for an unreachable
    /// destination, and the name is looked up again with the reconnect backoff. A later
    /// re-resolution that fails keeps the addresses already known.
    pub resolve_failures: u64,
    /// Lines the kernel accepted (so also in `lines_sent`) that may never have reached the
    /// receiver: on a stream connection that then ended abruptly (reset by the receiver, e.g.
    /// killed while our data sat unread, or broken under a write), or in a UDP datagram the
    /// socket later reported as refused (nobody listening; on Linux, every datagram of the
    /// run it went out with in one call). A stream receiver that closes
    /// cleanly, or is still connected at the next flush, confirms what it got.
    pub lines_possibly_lost: u64,
    /// Flushes cut short by a panic inside the exporter (a bug: please report it). The
    /// exporter keeps running; what that flush had not sent is lost.
    pub flush_panics: u64,
    /// Series known to the exporter.
    pub series: u64,
    /// Registrations of new series refused because a series limit was reached and no overflow
    /// series could take them either (each `counter!` call of a refused series counts once).
    pub series_dropped: u64,
    /// Idle series removed to return their memory.
    pub series_expired: u64,
    /// Counter sums that went past `u64::MAX` and were saturated to it: one for each
    /// interval whose increments (or `absolute` deltas) summed past it, and, in Graphite's
    /// [`CounterMode::Total`](crate::CounterMode::Total), one for each flush that added to a
    /// running total past it (or to one already there).
    pub counter_overflows: u64,
    /// The exporter's own metrics (see
    /// [`with_telemetry`](crate::ExporterBuilder::with_telemetry)) written to the transport.
    /// Telemetry lines are counted here only, never in the fields above, and these two
    /// fields are not themselves reported.
    pub telemetry_lines_sent: u64,
    /// The exporter's own metrics that could not be sent (their changes are carried into the
    /// next report).
    pub telemetry_lines_dropped: u64,
    /// Series merged into another series' line because both render to the same name and
    /// tags (`x` and `x{route=""}`, `a b` and `a_b`): counted once per merged series. Their
    /// counters are summed, histogram samples merged, gauges as the README's "What is sent"
    /// says.
    pub series_merged: u64,
    /// Values not sent because their series renders to the same name and tags as a series
    /// of another kind that the receiver stores in the same place (a counter and a gauge in
    /// Graphite or DogStatsD; a counter `x.count` and a Graphite histogram `x`): the first
    /// series seen keeps the name.
    pub values_dropped_collision: u64,
    /// Registrations of new series redirected to their metric's overflow series (labelled
    /// `cardinality="overflow"`) because a series limit was reached (see
    /// [`with_max_series_per_metric`](crate::ExporterBuilder::with_max_series_per_metric));
    /// what they record is sent in it. Each `counter!` call of a redirected series counts
    /// once.
    pub series_overflowed: u64,
    /// Series whose name or tags were too long for carbon to store and were shortened (see
    /// [Long names](crate#long-names)); counted once per series, when the exporter first
    /// renders it. The direct clients ([`GraphiteClient`](crate::GraphiteClient),
    /// [`StatsdClient`](crate::StatsdClient)) keep no series and count each call instead.
    pub names_shortened: u64,
    /// New set members refused because their set already had its cap of distinct members
    /// this interval (see
    /// [`with_set_max_members`](crate::ExporterBuilder::with_set_max_members)): each refused
    /// member counts once per interval.
    pub set_members_dropped: u64,
}

/// The atomic cells behind [`ExporterStats`]; written by the flusher, except `series_dropped`
/// and `series_overflowed`, written when a series is registered (never when recording).
#[derive(Debug, Default)]
pub(crate) struct StatsCells {
    pub(crate) flushes: AtomicU64,
    pub(crate) lines_sent: AtomicU64,
    pub(crate) payloads_sent: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) payloads_dropped: AtomicU64,
    pub(crate) lines_dropped_send: AtomicU64,
    pub(crate) lines_dropped_too_long: AtomicU64,
    pub(crate) values_dropped_invalid: AtomicU64,
    pub(crate) values_dropped_unnamed: AtomicU64,
    pub(crate) lines_dropped_shutdown: AtomicU64,
    pub(crate) samples_sampled_out: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) resolve_failures: AtomicU64,
    pub(crate) lines_possibly_lost: AtomicU64,
    pub(crate) flush_panics: AtomicU64,
    pub(crate) series: AtomicU64,
    pub(crate) series_dropped: AtomicU64,
    pub(crate) series_expired: AtomicU64,
    pub(crate) counter_overflows: AtomicU64,
    pub(crate) telemetry_lines_sent: AtomicU64,
    pub(crate) telemetry_lines_dropped: AtomicU64,
    pub(crate) series_merged: AtomicU64,
    pub(crate) values_dropped_collision: AtomicU64,
    pub(crate) series_overflowed: AtomicU64,
    pub(crate) names_shortened: AtomicU64,
    pub(crate) set_members_dropped: AtomicU64,
}

/// Adds `n` to a statistics cell. Relaxed: the cells are independent tallies.
pub(crate) fn add(cell: &AtomicU64, n: u64) {
    if n > 0 {
        cell.fetch_add(n, Ordering::Relaxed);
    }
}

impl StatsCells {
    pub(crate) fn snapshot(&self) -> ExporterStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ExporterStats {
            flushes: get(&self.flushes),
            lines_sent: get(&self.lines_sent),
            payloads_sent: get(&self.payloads_sent),
            bytes_sent: get(&self.bytes_sent),
            payloads_dropped: get(&self.payloads_dropped),
            lines_dropped_send: get(&self.lines_dropped_send),
            lines_dropped_too_long: get(&self.lines_dropped_too_long),
            values_dropped_invalid: get(&self.values_dropped_invalid),
            values_dropped_unnamed: get(&self.values_dropped_unnamed),
            lines_dropped_shutdown: get(&self.lines_dropped_shutdown),
            samples_sampled_out: get(&self.samples_sampled_out),
            send_errors: get(&self.send_errors),
            connects: get(&self.connects),
            resolve_failures: get(&self.resolve_failures),
            lines_possibly_lost: get(&self.lines_possibly_lost),
            flush_panics: get(&self.flush_panics),
            series: get(&self.series),
            series_dropped: get(&self.series_dropped),
            series_expired: get(&self.series_expired),
            counter_overflows: get(&self.counter_overflows),
            telemetry_lines_sent: get(&self.telemetry_lines_sent),
            telemetry_lines_dropped: get(&self.telemetry_lines_dropped),
            series_merged: get(&self.series_merged),
            values_dropped_collision: get(&self.values_dropped_collision),
            series_overflowed: get(&self.series_overflowed),
            names_shortened: get(&self.names_shortened),
            set_members_dropped: get(&self.set_members_dropped),
        }
    }
}
