//! Captures: in-memory destinations for the user's own tests, returning exactly the bytes that
//! would have been sent.
//!
//! A [`Capture`] is a flush driver: the real recorder, aggregation, flusher, encoders and
//! delivery run as in production, only the socket is replaced by memory and the interval
//! timer by [`Capture::flush`]. A [`ClientCapture`] does the same for the direct clients,
//! whose own `flush` sends into it. The crate docs' "Testing your metrics" section shows
//! both.

mod flushed;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub use flushed::Flushed;
pub(crate) use flushed::Wire;

use crate::aggregate::{Aggregate, SetHandle};
use crate::flush::{Flusher, Stepped, WallClock};
use crate::stats::{ExporterStats, StatsCells};
use crate::transport::MemorySink;

/// The flusher of an exporter built with
/// [`ExporterBuilder::build_capture`](crate::ExporterBuilder::build_capture), driven by hand:
/// each [`flush`](Self::flush) is one tick of the flush interval and returns what it sent.
///
/// There is no background thread and no timer; nothing is sent between flushes. A flush does
/// what a periodic one does in production: counters send their interval's delta, gauges are
/// re-sent while unchanged (unless turned off), histograms and sets send their interval, the
/// exporter's own metrics follow (when configured), and payloads are split at the configured
/// size. Pair it with [`metrics::with_local_recorder`] so tests running in parallel each keep
/// their own recorder.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use metrics_exporter_statsd_graphite::ExporterBuilder;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (recorder, mut capture) = ExporterBuilder::graphite("metrics.example.invalid")
///     .with_prefix("app")
///     .build_capture()?;
/// metrics::with_local_recorder(&recorder, || {
///     metrics::counter!("jobs").increment(3);
///     metrics::gauge!("queue").set(7.0);
/// });
/// let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
/// let sent = capture.flush_at(at);
/// assert!(sent.lines().contains(&"app.jobs 3 1700000000".to_owned()));
/// assert!(sent.lines().contains(&"app.queue 7 1700000000".to_owned()));
/// // The next interval: no new increments, the gauge is sent again.
/// let next = capture.flush_at(at + Duration::from_secs(10));
/// assert!(next.lines().contains(&"app.queue 7 1700000010".to_owned()));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Capture {
    stepped: Stepped,
    sink: MemorySink,
    wire: Wire,
    /// For sets.
    aggregate: Arc<Aggregate>,
    stats: Arc<StatsCells>,
}

impl Capture {
    pub(crate) fn new(
        flusher: Flusher,
        aggregate: Arc<Aggregate>,
        stats: Arc<StatsCells>,
        pickle: bool,
    ) -> Self {
        let sink = MemorySink::default();
        let stepped = Stepped::new(flusher, sink.clone());
        let wire = Wire::of(stepped.config(), pickle);
        Self {
            stepped,
            sink,
            wire,
            aggregate,
            stats,
        }
    }

    /// One periodic flush, stamped with the system clock's time (for Graphite timestamps);
    /// what it sent.
    pub fn flush(&mut self) -> Flushed {
        self.tick(WallClock::System)
    }

    /// One periodic flush, as [`flush`](Self::flush), with Graphite points (and the
    /// timestamps of DogStatsD lines, when enabled) stamped `time`. A time before the Unix
    /// epoch counts as the epoch.
    pub fn flush_at(&mut self, time: SystemTime) -> Flushed {
        let unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        self.tick(WallClock::Fixed(unix))
    }

    /// Tests: the driver.
    #[cfg(test)]
    pub(crate) fn stepped(&self) -> &Stepped {
        &self.stepped
    }

    fn tick(&mut self, clock: WallClock) -> Flushed {
        self.stepped.tick(clock);
        Flushed::new(self.sink.take(), self.wire)
    }

    /// The set series for `key`, as [`ExporterHandle::set`](crate::ExporterHandle::set).
    pub fn set(&self, key: impl Into<metrics::Key>) -> SetHandle {
        SetHandle::new(self.aggregate.admit_set(&key.into()))
    }

    /// A snapshot of the exporter's statistics, as
    /// [`ExporterHandle::stats`](crate::ExporterHandle::stats).
    pub fn stats(&self) -> ExporterStats {
        self.stats.snapshot()
    }
}

/// What a direct client built with
/// [`build_statsd_client_capture`](crate::ExporterBuilder::build_statsd_client_capture) or
/// [`build_client_capture`](crate::ExporterBuilder::build_client_capture) sent: the client
/// is the real one, its `flush` sends here instead of to a socket, and never fails.
///
/// ```
/// use metrics_exporter_statsd_graphite::{CallOpts, ExporterBuilder};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (mut client, capture) = ExporterBuilder::statsd("statsd.example.invalid:8125")
///     .build_statsd_client_capture()?;
/// client.count("jobs", 2, CallOpts::default());
/// client.gauge("queue", 7.0, CallOpts::default());
/// client.flush().await?;
/// assert_eq!(capture.take().lines(), ["jobs:2|c", "queue:7|g"]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ClientCapture {
    sink: MemorySink,
    wire: Wire,
}

impl ClientCapture {
    pub(crate) fn new(sink: MemorySink, wire: Wire) -> Self {
        Self { sink, wire }
    }

    /// Everything the client sent since the last call.
    pub fn take(&self) -> Flushed {
        Flushed::new(self.sink.take(), self.wire)
    }
}

#[cfg(test)]
mod tests;
