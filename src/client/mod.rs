//! The direct clients: explicit points and lines without the recorder. [`GraphiteClient`]
//! for carbon (backfills, batch jobs), [`StatsdClient`] for StatsD and DogStatsD (what
//! aiostatsd, sprockets-statsd and Datadog's clients offer: signed counters, gauge deltas,
//! sets, events...).
//!
//! Both share [`Outbox`]: the builder's checked [`Config`], one [`Delivery`] (payload packing,
//! the bounded backlog), a lazily connected [`Transport`] (reconnects) and the statistics.
//! Lines are queued until `flush`; the clients are async and must be used inside a tokio
//! runtime. A client is its own flusher, so `flush` is where it touches a socket.

mod graphite;
mod opts;
mod render;
mod statsd;

pub use graphite::GraphiteClient;
pub use opts::CallOpts;
pub(crate) use render::ClientEncoder;
pub use statsd::StatsdClient;

use tokio::time::Instant;

use crate::config::Config;
use crate::delivery::Delivery;
use crate::encode::PickleWire;
use crate::error::FlushError;
use crate::lines::ChunkRule;
use crate::stats::{ExporterStats, StatsCells, add};
use crate::transport::{MemorySink, Transport};

/// What both clients queue into and flush from. See the module docs.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) config: Config,
    transport: Option<Transport>,
    pub(crate) delivery: Delivery,
    pub(crate) stats: StatsCells,
    /// Whether flushes throw the queued lines away instead of sending them (a disabled
    /// client: no socket is ever opened).
    discard: bool,
}

impl Outbox {
    pub(crate) fn new(config: Config, continues: ChunkRule, wire: Option<PickleWire>) -> Self {
        let delivery = Delivery::new(&config, continues, wire);
        Self {
            config,
            transport: None,
            delivery,
            stats: StatsCells::default(),
            discard: false,
        }
    }

    /// Sends into `sink` instead of a socket (a [`ClientCapture`](crate::ClientCapture)).
    pub(crate) fn capturing(mut self, sink: MemorySink) -> Self {
        self.transport = Some(Transport::memory(&self.config, sink));
        self
    }

    /// Makes every flush drop what is queued, unsent and uncounted: nothing is ever sent.
    pub(crate) fn discarding(mut self) -> Self {
        self.discard = true;
        self
    }

    /// Whether more than the builder's backlog bound is waiting: then a new line is dropped
    /// (and counted, here) rather than queued.
    pub(crate) fn refuse_when_full(&self) -> bool {
        let full = self.delivery.pending_bytes() > self.config.max_backlog_bytes;
        if full {
            add(&self.stats.lines_dropped_send, 1);
        }
        full
    }

    /// Sends everything queued (after anything a previous flush could not send).
    pub(crate) async fn flush(&mut self) -> Result<(), FlushError> {
        self.delivery.writer().finish();
        if self.discard {
            self.delivery.start();
            return Ok(());
        }
        if self.delivery.pending_bytes() == 0 {
            return Ok(());
        }
        add(&self.stats.flushes, 1);
        let transport = self
            .transport
            .get_or_insert_with(|| Transport::new(&self.config, Instant::now()));
        transport.retry_now();
        if !transport.ready(Instant::now(), &self.stats).await {
            return Err(FlushError::Unreachable);
        }
        self.delivery.settle(transport, &self.stats);
        // What does not go out waits in the backlog, first in line next time.
        self.delivery.send(transport, &self.stats).await;
        self.delivery.start();
        match self.delivery.pending_bytes() {
            0 => Ok(()),
            _ => Err(FlushError::Incomplete),
        }
    }

    /// Flushes; on failure the queued lines are dropped and counted. Then the statistics.
    pub(crate) async fn close(mut self) -> Result<ExporterStats, FlushError> {
        let result = self.flush().await;
        if result.is_err() {
            let lost = self.delivery.unsent_lines() + self.delivery.clear_backlog();
            add(&self.stats.lines_dropped_shutdown, lost);
        }
        result.map(|()| self.stats.snapshot())
    }

    pub(crate) fn stats(&self) -> ExporterStats {
        self.stats.snapshot()
    }
}

/// The wall-clock time in Unix seconds (0 before 1970), for points sent without a timestamp.
/// A client is its own flusher, so this is its one clock read.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
