//! The flusher: the only place with a clock and a runtime.
//!
//! Each flush has two steps:
//! 1. [`Flusher::collect`] (synchronous, no I/O): picks up new series, takes every cell's
//!    interval data and encodes it into the reusable [`PayloadWriter`];
//! 2. [`Flusher::deliver`]: hands the payloads to the transport.
//!
//! When the destination is unreachable (a stream transport that is down), step 1 is skipped:
//! counters keep summing in their cells, gauges keep their value and histograms keep a
//! bounded reservoir, so nothing of the outage is lost or grows without bound. Stream payloads
//! that fail mid-way go to a bounded [`Backlog`] and are sent first once the connection is
//! back, resuming at the first line the kernel did not fully accept.

mod backlog;
mod series;
mod spawn;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};

use crate::aggregate::Aggregate;
use crate::config::Config;
use crate::encode::{CounterMode, EncodeTally, Encoder, FlushContext, PayloadWriter, PickleWire};
use crate::stats::{StatsCells, add};
use crate::transport::{SendError, Transport};

use backlog::{Backlog, count_lines, resume_point};
use series::SeriesSet;
pub(crate) use spawn::{Running, spawn};

/// How the caller of a flush wants to hear that it is done.
#[derive(Debug)]
pub(crate) enum Reply {
    Sync(std::sync::mpsc::SyncSender<()>),
    Async(oneshot::Sender<()>),
}

impl Reply {
    fn send(self) {
        // The waiter may have given up (timed out); that is fine.
        match self {
            Self::Sync(tx) => drop(tx.try_send(())),
            Self::Async(tx) => drop(tx.send(())),
        }
    }
}

/// Requests from handles and the guard.
#[derive(Debug)]
pub(crate) enum Command {
    /// Flush now and reply when done.
    Flush(Reply),
    /// Final flush (bounded by the deadline), then stop.
    Shutdown { deadline: Instant, reply: Reply },
}

/// Owns everything a flush needs. See the module docs.
#[derive(Debug)]
pub(crate) struct Flusher {
    aggregate: Arc<Aggregate>,
    stats: Arc<StatsCells>,
    config: Config,
    encoder: Encoder,
    writer: PayloadWriter,
    series: SeriesSet,
    samples: Vec<f64>,
    backlog: Backlog,
    /// Index of the first payload of `writer` not yet handed to the transport.
    next_payload: usize,
    /// Graphite pickle: each plaintext payload goes out as a pickle frame.
    wire: Option<PickleWire>,
}

impl Flusher {
    pub(crate) fn new(
        aggregate: Arc<Aggregate>,
        stats: Arc<StatsCells>,
        config: Config,
        encoder: Encoder,
        wire: Option<PickleWire>,
    ) -> Self {
        let writer = PayloadWriter::new(config.max_payload_len, config.framing);
        let backlog = Backlog::new(config.max_backlog_bytes);
        Self {
            aggregate,
            stats,
            config,
            encoder,
            writer,
            series: SeriesSet::default(),
            samples: Vec::new(),
            backlog,
            next_payload: 0,
            wire,
        }
    }

    /// Runs until a shutdown command arrives or every handle is gone, then flushes one last
    /// time.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let interval = self.config.flush_interval;
        let mut transport = Transport::new(&self.config, Instant::now());
        let mut ticker = tokio::time::interval_at(Instant::now() + interval, interval);
        // After a stall, flush once and re-align rather than bursting the missed ticks.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.flush(&mut transport).await,
                command = commands.recv() => match command {
                    Some(Command::Flush(reply)) => {
                        self.flush(&mut transport).await;
                        reply.send();
                    }
                    Some(Command::Shutdown { deadline, reply }) => {
                        self.final_flush(&mut transport, deadline).await;
                        reply.send();
                        return;
                    }
                    None => {
                        let deadline = Instant::now() + self.config.shutdown_timeout;
                        self.final_flush(&mut transport, deadline).await;
                        return;
                    }
                },
            }
        }
    }

    /// One regular flush.
    pub(crate) async fn flush(&mut self, transport: &mut Transport) {
        add(&self.stats.flushes, 1);
        if !transport.ready(Instant::now(), &self.stats).await {
            // Keep everything in the aggregate until the destination is back.
            return;
        }
        if !self.send_backlog(transport).await {
            return;
        }
        self.collect();
        self.deliver(transport).await;
    }

    /// The last flush: like `flush`, but it ignores the reconnect backoff, and whatever it
    /// cannot deliver before `deadline` is counted as dropped at shutdown.
    async fn final_flush(&mut self, transport: &mut Transport, deadline: Instant) {
        transport.retry_now();
        self.writer.clear();
        self.next_payload = 0;
        let mut collected = false;
        let finished = tokio::time::timeout_at(deadline, async {
            add(&self.stats.flushes, 1);
            if transport.ready(Instant::now(), &self.stats).await
                && self.send_backlog(transport).await
            {
                self.collect();
                collected = true;
                self.deliver(transport).await;
            }
        })
        .await;
        if finished.is_err() || !collected {
            if !collected {
                self.collect();
            }
            let unsent: u64 = (self.next_payload..self.writer.len())
                .filter_map(|i| self.writer.payload(i))
                .map(|(_, lines)| u64::from(lines))
                .sum();
            let lost = unsent + self.backlog.clear();
            add(&self.stats.lines_dropped_shutdown, lost);
            if lost > 0 {
                tracing::warn!(
                    lines = lost,
                    "metrics destination unreachable at shutdown; final metrics dropped"
                );
            }
        } else {
            // Lines the final flush moved to the backlog cannot be sent any more.
            add(&self.stats.lines_dropped_shutdown, self.backlog.clear());
        }
    }

    /// Drains every cell and encodes the interval into `self.writer`. No I/O; the only
    /// outside input is the wall-clock time, read here for encoders that stamp it.
    pub(crate) fn collect(&mut self) {
        let unix_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.collect_at(FlushContext { unix_secs });
    }

    fn collect_at(&mut self, cx: FlushContext) {
        let Self {
            aggregate,
            stats,
            encoder,
            writer,
            series,
            samples,
            ..
        } = self;
        series.absorb(aggregate.storage(), |key, out| encoder.render(key, out));
        stats
            .series
            .store(series.len() as u64, std::sync::atomic::Ordering::Relaxed);
        writer.clear();
        self.next_payload = 0;
        let mut tally = EncodeTally::default();
        let mut unnamed = 0u64;
        let mut sampled_out = 0u64;
        let totals = encoder.counter_mode() == CounterMode::Total;
        for c in &mut series.counters {
            let delta = c.cell.take();
            c.total = c.total.wrapping_add(delta);
            // Deltas are sent when non-zero; running totals every flush once they exist.
            if delta == 0 && !(totals && c.total > 0) {
                continue;
            }
            if c.rendered.sendable() {
                let value = if totals { c.total } else { delta };
                encoder.counter(&c.rendered, value, cx, writer, &mut tally);
            } else {
                unnamed += 1;
            }
        }
        for g in &series.gauges {
            if let Some(value) = g.cell.take() {
                if g.rendered.sendable() {
                    encoder.gauge(&g.rendered, value, cx, writer, &mut tally);
                } else {
                    unnamed += 1;
                }
            }
        }
        for h in &series.histograms {
            samples.clear();
            let recorded = h.cell.drain_into(samples);
            if recorded == 0 {
                continue;
            }
            let kept = samples.len() as u64;
            sampled_out += recorded.saturating_sub(kept);
            if !h.rendered.sendable() {
                unnamed += kept;
                continue;
            }
            encoder.histogram(
                &h.rendered,
                samples,
                recorded,
                h.cell.unit(),
                cx,
                writer,
                &mut tally,
            );
        }
        writer.finish();
        add(&stats.values_dropped_invalid, tally.invalid_values);
        add(&stats.lines_dropped_too_long, tally.too_long);
        add(&stats.values_dropped_unnamed, unnamed);
        add(&stats.samples_sampled_out, sampled_out);
    }

    /// Sends the collected payloads. Datagram failures drop that payload (counted); a stream
    /// failure moves the rest, from the first chunk the kernel did not fully accept, to the
    /// backlog.
    async fn deliver(&mut self, transport: &mut Transport) {
        while let Some((payload, lines)) = self.writer.payload(self.next_payload) {
            let result = send(&mut self.wire, transport, payload, &self.stats).await;
            // Only now: a send cancelled by the shutdown deadline still counts as unsent.
            self.next_payload += 1;
            match result {
                Ok(()) => self.count_sent(payload.len(), u64::from(lines)),
                Err(error) if transport.is_stream() => {
                    let continues =
                        |prev: &[u8], line: &[u8]| self.encoder.continues_chunk(prev, line);
                    let from = resume_point(payload, error.written(), &continues);
                    self.count_partial(&payload[..from]);
                    let mut dropped = self.backlog.push(&payload[from..], &continues);
                    while let Some((rest, _)) = self.writer.payload(self.next_payload) {
                        self.next_payload += 1;
                        dropped += self.backlog.push(rest, &continues);
                    }
                    add(&self.stats.lines_dropped_send, dropped);
                    return;
                }
                Err(SendError::Full) => {
                    add(&self.stats.payloads_dropped, 1);
                    add(&self.stats.lines_dropped_send, u64::from(lines));
                }
                Err(_) => {
                    // Anything but a full queue (no receiver, refused, no permission) would
                    // fail the same way for the rest of this flush: drop and count it all
                    // now, and let the backoff decide when to try again.
                    add(&self.stats.payloads_dropped, 1);
                    add(&self.stats.lines_dropped_send, u64::from(lines));
                    while let Some((_, rest)) = self.writer.payload(self.next_payload) {
                        self.next_payload += 1;
                        add(&self.stats.payloads_dropped, 1);
                        add(&self.stats.lines_dropped_send, u64::from(rest));
                    }
                    return;
                }
            }
        }
    }

    /// Sends the backlog first, in payload-sized pieces. Returns `false` if it could not all
    /// be sent (the rest stays queued).
    async fn send_backlog(&mut self, transport: &mut Transport) -> bool {
        while !self.backlog.is_empty() {
            let piece = self.backlog.front(self.writer.max_len());
            match send(&mut self.wire, transport, piece, &self.stats).await {
                Ok(()) => {
                    let len = piece.len();
                    self.count_sent(len, count_lines(piece));
                    self.backlog.consume(len);
                }
                Err(error) => {
                    let continues =
                        |prev: &[u8], line: &[u8]| self.encoder.continues_chunk(prev, line);
                    let done = resume_point(piece, error.written(), &continues);
                    self.count_partial(&piece[..done]);
                    self.backlog.consume(done);
                    return false;
                }
            }
        }
        true
    }

    /// Counts a payload that went out whole.
    fn count_sent(&self, bytes: usize, lines: u64) {
        add(&self.stats.payloads_sent, 1);
        add(&self.stats.bytes_sent, bytes as u64);
        add(&self.stats.lines_sent, lines);
    }

    /// Counts the whole lines at the start of a stream payload that went out before a failure.
    fn count_partial(&self, written: &[u8]) {
        add(&self.stats.bytes_sent, written.len() as u64);
        add(&self.stats.lines_sent, count_lines(written));
    }
}

/// Sends one payload as is, or as a pickle frame. A frame cut anywhere delivered nothing
/// (carbon only unpickles whole frames), so a partial write counts as none.
async fn send(
    wire: &mut Option<PickleWire>,
    transport: &mut Transport,
    payload: &[u8],
    stats: &StatsCells,
) -> Result<(), SendError> {
    let Some(wire) = wire else {
        return transport.send(payload, stats).await;
    };
    transport
        .send(wire.encode(payload), stats)
        .await
        .map_err(|e| match e {
            SendError::Partial { error, .. } => SendError::Partial { written: 0, error },
            other => other,
        })
}

#[cfg(test)]
mod tests;
