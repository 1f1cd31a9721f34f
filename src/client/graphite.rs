//! [`GraphiteClient`]: explicit points to carbon without the recorder, for backfills and batch
//! jobs (what aiographite users expect).
//!
//! Points go through the same sanitising, payload packing, transports, reconnects and
//! bounded backlog as the recorder's, plaintext or pickle. The client buffers points until
//! [`flush`](GraphiteClient::flush); it is async and must be used inside a tokio runtime.

use super::{Outbox, unix_now};
use crate::config::Config;
use crate::encode::{EncodeTally, GraphiteEncoder, PickleWire, Rendered, path_key};
use crate::error::FlushError;
use crate::stats::{ExporterStats, add};
use crate::transport::MemorySink;

/// Sends explicit `(path, value, timestamp)` points to carbon. Build it with
/// [`ExporterBuilder::build_client`](crate::ExporterBuilder::build_client).
///
/// ```no_run
/// use metrics_exporter_statsd_graphite::ExporterBuilder;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut client = ExporterBuilder::graphite_pickle("carbon.internal:2004").build_client()?;
/// client.send_at("jobs.imported;source=csv", 1250.0, 1_700_000_000);
/// client.send("jobs.running", 4.0); // stamped now
/// client.send_many([("jobs.failed", 3.0), ("jobs.retried", 1.0)]); // one timestamp, now
/// client.send_many_at([("jobs.failed", 1.0)], 1_700_000_060);
/// client.flush().await?; // sent; or an error saying what is still queued
/// let stats = client.close().await?;
/// println!("{} points sent", stats.lines_sent);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct GraphiteClient {
    encoder: GraphiteEncoder,
    outbox: Outbox,
    scratch: Rendered,
    tally: EncodeTally,
}

impl GraphiteClient {
    /// This client, sending into `sink` instead of a socket.
    pub(crate) fn capturing(mut self, sink: MemorySink) -> Self {
        self.outbox = self.outbox.capturing(sink);
        self
    }

    pub(crate) fn new(encoder: GraphiteEncoder, config: Config, wire: Option<PickleWire>) -> Self {
        Self {
            encoder,
            outbox: Outbox::new(config, crate::encode::never_continues, wire),
            scratch: Rendered::default(),
            tally: EncodeTally::default(),
        }
    }

    /// Queues one point stamped with the current time, as aiographite's `send_message` does
    /// without a timestamp. See [`send_at`](Self::send_at).
    pub fn send(&mut self, path: &str, value: f64) -> bool {
        self.send_at(path, value, unix_now())
    }

    /// Queues one point at `timestamp` (Unix seconds). `path` is a Graphite path, optionally
    /// tagged (`name;k=v;k2=v2`); it is sanitised like the recorder's names, and the builder's
    /// prefix and global labels apply. Returns `false` (and counts it) when the point cannot be
    /// sent: a NaN or infinite value, a path with nothing usable left, a line over carbon's
    /// limit, or a full buffer (more than the builder's backlog bound waiting).
    pub fn send_at(&mut self, path: &str, value: f64, timestamp: u64) -> bool {
        if self.outbox.refuse_when_full() {
            return false;
        }
        self.encoder.render(&path_key(path), &mut self.scratch);
        if !self.scratch.sendable() {
            add(&self.outbox.stats.values_dropped_unnamed, 1);
            return false;
        }
        add(
            &self.outbox.stats.names_shortened,
            u64::from(self.scratch.shortened),
        );
        let before = self.tally;
        self.encoder.point(
            &self.scratch,
            value,
            timestamp,
            self.outbox.delivery.writer(),
            &mut self.tally,
        );
        let sent = self.tally.values > before.values;
        add(
            &self.outbox.stats.values_dropped_invalid,
            self.tally.invalid_values - before.invalid_values,
        );
        add(
            &self.outbox.stats.lines_dropped_too_long,
            self.tally.too_long - before.too_long,
        );
        sent
    }

    /// Queues many `(path, value)` points, all stamped with the current time read once, as
    /// aiographite's `send_multiple` does; returns how many were accepted (see
    /// [`send_at`](Self::send_at)).
    pub fn send_many<'a>(&mut self, points: impl IntoIterator<Item = (&'a str, f64)>) -> usize {
        self.send_many_at(points, unix_now())
    }

    /// Queues many `(path, value)` points sharing one `timestamp`; returns how many were
    /// accepted (see [`send_at`](Self::send_at)).
    pub fn send_many_at<'a>(
        &mut self,
        points: impl IntoIterator<Item = (&'a str, f64)>,
        timestamp: u64,
    ) -> usize {
        points
            .into_iter()
            .filter(|&(path, value)| self.send_at(path, value, timestamp))
            .count()
    }

    /// Sends everything queued (after anything a previous flush could not send).
    ///
    /// # Errors
    /// [`FlushError::Unreachable`] when carbon cannot be reached now (nothing is lost: the
    /// points stay queued for the next flush); [`FlushError::Incomplete`] when a connection
    /// broke mid-way (the unsent lines stay queued).
    pub async fn flush(&mut self) -> Result<(), FlushError> {
        self.outbox.flush().await
    }

    /// Flushes and closes the connection, returning the client's statistics.
    ///
    /// # Errors
    /// As [`flush`](Self::flush); the queued points are then dropped, and counted.
    pub async fn close(self) -> Result<ExporterStats, FlushError> {
        self.outbox.close().await
    }

    /// What was sent and dropped so far.
    pub fn stats(&self) -> ExporterStats {
        self.outbox.stats()
    }
}
