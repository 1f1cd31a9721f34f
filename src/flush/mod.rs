//! The flusher: the only place with a clock and a runtime.
//!
//! Each flush has two steps:
//! 1. [`Flusher::collect`] (synchronous, no I/O): picks up new series, takes every cell's
//!    interval data and encodes it into the reusable payload writer;
//! 2. [`Delivery::send`]: hands the backlog, then the payloads, to the transport.
//!
//! A regular flush to a destination that takes the backlog alternates the two: it collects
//! about [`PART_BYTES`] of lines, sends them, releases them and collects on, so the writer
//! holds one part of an interval, never all of it. Each series is still drained once per
//! interval, and the payloads are cut exactly as a whole collect would cut them.
//!
//! When the destination cannot take them (a stream transport that is down, a Unix socket
//! that is missing, a receive queue that is full), counters keep summing in their cells and
//! gauges keep their value, while each interval's histograms are encoded into the bounded
//! backlog (so every interval keeps its own samples, or its own Graphite summary and
//! timestamp). Payloads that fail mid-way join the backlog too; it goes out first once the
//! destination is back, resuming at the first chunk the kernel did not fully accept. Nothing
//! of an outage grows without bound. The delivery module documents how each outcome is
//! counted.

mod cells;
mod clock;
mod collect;
mod command;
mod demand;
mod expiry;
mod identity;
mod isolate;
mod list;
mod series;
mod spawn;
mod spread;
mod stepped;
mod telemetry;
mod tracked;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::aggregate::Aggregate;
use crate::config::Config;
use crate::delivery::Delivery;
use crate::encode::{Encoder, PickleWire};
use crate::error::FlushError;
use crate::stats::{StatsCells, add};
use crate::transport::Transport;

pub(crate) use clock::WallClock;
use clock::until_next_multiple;
pub(crate) use command::{Command, Reply};
pub(crate) use demand::Demand;
use series::SeriesSet;
pub(crate) use spawn::{Running, spawn};
pub(crate) use spread::{identity_seed, send_delay};
pub(crate) use stepped::Stepped;
use telemetry::Telemetry;

/// Bytes a regular flush collects before it sends them and collects on (see the module
/// docs). A part stays in the CPU's cache on its way to the kernel; a whole interval in the
/// writer kept about 75 bytes a series between flushes at 100k series (issue 15).
const PART_BYTES: usize = 128 * 1024;

/// Owns everything a flush needs. See the module docs.
#[derive(Debug)]
pub(crate) struct Flusher {
    aggregate: Arc<Aggregate>,
    stats: Arc<StatsCells>,
    config: Config,
    encoder: Encoder,
    series: SeriesSet,
    samples: Vec<f64>,
    /// Scratch for merging histograms (see `Cells::drain_histogram`).
    spans: Vec<(usize, u64)>,
    /// Scratch for a set's members (see `Pass::set`).
    members: Vec<String>,
    delivery: Delivery,
    /// The exporter's own metrics, when configured.
    telemetry: Option<Telemetry>,
    clock: WallClock,
    /// Explicit flushes asked for by handles.
    demand: Arc<Demand>,
    /// A regular flush sends what it collected once the writer holds this many bytes, or
    /// more than an empty payload can take if that is more (so each part has a finished
    /// payload to send): [`PART_BYTES`], or smaller in tests.
    part_bytes: usize,
    /// Tests: makes the next collect panic.
    #[cfg(test)]
    pub(crate) inject_panic: Arc<std::sync::atomic::AtomicBool>,
}

impl Flusher {
    pub(crate) fn new(
        aggregate: Arc<Aggregate>,
        stats: Arc<StatsCells>,
        config: Config,
        encoder: Encoder,
        wire: Option<PickleWire>,
    ) -> Self {
        let delivery = Delivery::new(&config, encoder.chunk_rule(), wire);
        let telemetry = config
            .telemetry
            .as_deref()
            .map(|prefix| Telemetry::new(prefix, &encoder, &config));
        Self {
            aggregate,
            stats,
            config,
            encoder,
            series: SeriesSet::default(),
            samples: Vec::new(),
            spans: Vec::new(),
            members: Vec::new(),
            delivery,
            telemetry,
            clock: WallClock::System,
            demand: Arc::default(),
            part_bytes: PART_BYTES,
            #[cfg(test)]
            inject_panic: Arc::default(),
        }
    }

    /// Where handles ask this flusher for explicit flushes.
    pub(crate) fn demand(&self) -> Arc<Demand> {
        Arc::clone(&self.demand)
    }

    /// Runs until a shutdown command arrives or every sender is gone (the recorder, the
    /// guard and every handle), then flushes one last time. A dropped guard does not stop
    /// it (see [`ExporterGuard`](crate::ExporterGuard)).
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let interval = self.config.flush_interval;
        let mut transport = Transport::new(&self.config, Instant::now());
        // Graphite with aligned timestamps ticks on wall-clock multiples of the interval, so each
        // tick fills its own carbon slot; a send spread shifts the ticks (not the timestamps)
        // this host's delay into the slot. Explicit and final flushes are never delayed.
        let first = if self.encoder.aligns_ticks() {
            let delay = self.config.send_delay;
            until_next_multiple(self.clock.now().saturating_sub(delay), interval)
        } else {
            interval
        };
        let mut ticker = tokio::time::interval_at(Instant::now() + first, interval);
        // After a stall, flush once and re-align rather than bursting the missed ticks.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let demand = Arc::clone(&self.demand);
        let _stop = demand::StopOnDrop(&demand);

        loop {
            tokio::select! {
                _ = ticker.tick() => self.isolated_flush(&mut transport, Trigger::Tick).await,
                upto = demand.asked() => {
                    self.isolated_flush(&mut transport, Trigger::Demand).await;
                    demand.complete(upto);
                }
                command = commands.recv() => match command {
                    Some(Command::Release(reply)) => {
                        transport.retry_now();
                        self.isolated_flush(&mut transport, Trigger::Demand).await;
                        reply.send(Ok(()));
                    }
                    Some(Command::Shutdown { deadline, reply }) => {
                        // The final flush also answers the flushes asked for before it.
                        let upto = demand.pending();
                        let result = self.isolated_final_flush(&mut transport, deadline).await;
                        demand.complete(upto);
                        reply.send(result);
                        return;
                    }
                    None => {
                        let deadline = Instant::now() + self.config.shutdown_timeout;
                        let upto = demand.pending();
                        // Nobody is left to hear the result; it is logged and counted.
                        drop(self.isolated_final_flush(&mut transport, deadline).await);
                        demand.complete(upto);
                        return;
                    }
                },
            }
        }
    }

    /// One regular flush, with a panic inside it caught, logged and counted: the exporter
    /// keeps running, and the next flush starts from a clean payload writer.
    async fn isolated_flush(&mut self, transport: &mut Transport, trigger: Trigger) {
        let outcome = {
            let mut flush = std::pin::pin!(self.flush(transport, trigger));
            isolate::CatchPanic(flush.as_mut()).await
        };
        if let Err(message) = outcome {
            self.recover(&message);
        }
    }

    /// The final flush, isolated as [`isolated_flush`](Self::isolated_flush) is, so the
    /// guard always gets its reply: after a panic, what was not sent is counted as dropped.
    async fn isolated_final_flush(
        &mut self,
        transport: &mut Transport,
        deadline: Instant,
    ) -> Result<(), FlushError> {
        let outcome = {
            let mut flush = std::pin::pin!(self.final_flush(transport, deadline));
            isolate::CatchPanic(flush.as_mut()).await
        };
        outcome.unwrap_or_else(|message| {
            // A panic inside the encoding leaves the last payload open: close it, so its
            // committed lines are counted too.
            self.delivery.writer().finish();
            let lines = self.delivery.unsent_lines() + self.delivery.clear_backlog();
            add(&self.stats.lines_dropped_shutdown, lines);
            self.delivery.start();
            self.recover(&message);
            Err(FlushError::Dropped { lines })
        })
    }

    fn recover(&mut self, message: &str) {
        add(&self.stats.flush_panics, 1);
        // What the batch had not handed over is gone with it (none, after a final flush,
        // which counts its own).
        self.delivery.writer().finish();
        add(&self.stats.lines_dropped_send, self.delivery.unsent_lines());
        tracing::error!(panic = %message, "a metrics flush panicked; this interval's unsent metrics are dropped, the exporter goes on (please report this bug)");
        self.delivery.start();
    }

    /// One regular flush, set off by `trigger`.
    pub(crate) async fn flush(&mut self, transport: &mut Transport, trigger: Trigger) {
        add(&self.stats.flushes, 1);
        let ready = transport.ready(Instant::now(), &self.stats).await;
        self.delivery.settle(transport, &self.stats);
        // The backlog first: this interval is collected only once everything before it went
        // out, so it never overtakes older lines.
        if ready && self.delivery.send(transport, &self.stats).await {
            // Collected in parts, each sent before the next is collected (see `PART_BYTES`).
            let budget = self
                .part_bytes
                .max(self.delivery.writer().fresh_capacity() + 1);
            let mut walk = self.begin_walk(What::All(trigger));
            // The last flush may have collected whole (it failed, or the destination was down).
            self.delivery.writer().trim(budget);
            while !self.walk_on(&mut walk, budget) {
                if !self.delivery.send(transport, &self.stats).await {
                    // The destination failed mid-interval: the rest of the interval is
                    // collected whole and joins the backlog, as when a whole interval's send
                    // fails.
                    self.walk_on(&mut walk, usize::MAX);
                    self.end_walk(walk);
                    self.delivery.park(&self.stats);
                    // As after a whole interval's failed send (it reports nothing while the
                    // backlog holds lines).
                    self.report(transport).await;
                    return;
                }
                self.delivery.release_sent();
            }
            self.end_walk(walk);
            // What the destination does not take joins the backlog.
            self.delivery.send(transport, &self.stats).await;
            self.report(transport).await;
            return;
        }
        // The destination is down, or did not take the whole backlog. Counters and gauges
        // keep summing in the aggregate until it is back; this interval's histograms join
        // the bounded backlog, so each interval keeps its own samples (and, for Graphite, its
        // own summary and timestamp).
        self.collect_interval(What::Histograms);
        self.delivery.park(&self.stats);
    }

    /// Sends the exporter's own metrics (when configured), once everything collected went
    /// out: while the destination is failing there is nothing to gain, and what changes
    /// meanwhile is reported once it is back.
    async fn report(&mut self, transport: &mut Transport) {
        let Some(telemetry) = &mut self.telemetry else {
            return;
        };
        if !transport.is_up() || !self.delivery.caught_up() {
            return;
        }
        let cx = self.encoder.context(self.clock.now().as_secs());
        telemetry.encode(&self.stats.snapshot(), &self.encoder, &cx);
        let accepted = self
            .delivery
            .send_aside(transport, telemetry.writer(), &self.stats)
            .await;
        telemetry.confirm(accepted);
    }

    /// The last flush: like `flush`, but it ignores the reconnect backoff, and whatever it
    /// cannot deliver before `deadline` is counted as dropped at shutdown.
    ///
    /// # Errors
    /// [`FlushError::Timeout`] when the deadline cut it short, [`FlushError::Dropped`] when
    /// the destination could not take everything in time.
    pub(crate) async fn final_flush(
        &mut self,
        transport: &mut Transport,
        deadline: Instant,
    ) -> Result<(), FlushError> {
        transport.retry_now();
        self.delivery.start();
        let mut collected = false;
        let finished = tokio::time::timeout_at(deadline, async {
            add(&self.stats.flushes, 1);
            let ready = transport.ready(Instant::now(), &self.stats).await;
            // A reset seen by `ready` settles the last flush's lines even when nothing new is
            // sent.
            self.delivery.settle(transport, &self.stats);
            if ready && self.delivery.send(transport, &self.stats).await {
                self.collect();
                collected = true;
                self.delivery.send(transport, &self.stats).await;
            }
        })
        .await;
        if collected && finished.is_ok() {
            // The last report, within what is left of the deadline; cutting it short loses
            // nothing of the user's.
            drop(tokio::time::timeout_at(deadline, self.report(transport)).await);
        }
        if !collected {
            self.collect();
        }
        // Lines never handed over, and those the final flush moved to the backlog, cannot be
        // sent any more.
        #[cfg(test)]
        self.delivery.ledger_unsent_at_shutdown();
        let lost = self.delivery.unsent_lines() + self.delivery.clear_backlog();
        add(&self.stats.lines_dropped_shutdown, lost);
        if lost > 0 {
            tracing::warn!(
                lines = lost,
                "metrics destination unreachable at shutdown; final metrics dropped"
            );
        }
        match (finished, lost) {
            (Err(_), _) => Err(FlushError::Timeout),
            (Ok(()), 0) => Ok(()),
            (Ok(()), lines) => Err(FlushError::Dropped { lines }),
        }
    }
}

/// What set off a flush.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// The flush interval's timer: also re-sends gauges and counters' zeros (when
    /// configured), one per interval.
    Tick,
    /// An explicit flush, or the final one: sends what changed since the previous flush.
    Demand,
}

/// What a collect takes from the cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    /// Everything: a regular flush.
    All(Trigger),
    /// Histograms only: the destination is down, so counters and gauges stay in the cells.
    Histograms,
}

#[cfg(test)]
mod test_support;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fidelity_tests;

#[cfg(test)]
#[path = "set_tests.rs"]
mod set_tests;

#[cfg(test)]
mod spread_tests;

#[cfg(test)]
mod part_tests;
