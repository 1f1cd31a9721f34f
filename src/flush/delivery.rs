//! `Delivery`: getting encoded payloads onto a transport, shared by the flusher and
//! `GraphiteClient`.
//!
//! It owns the payload writer the encoders fill, the stream backlog, and (for Graphite
//! pickle) the frame transcoder. Datagram failures drop that payload (counted); a stream
//! failure keeps everything from the first chunk the kernel did not fully accept in the
//! backlog, which goes out first next time.

use crate::config::Config;
use crate::encode::{PayloadWriter, PickleWire};
use crate::stats::{StatsCells, add};
use crate::transport::{SendError, Transport, Verdict};

use super::backlog::{Backlog, ChunkRule, count_lines, resume_point};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Delivery {
    writer: PayloadWriter,
    backlog: Backlog,
    /// Index of the first payload of `writer` not yet handed to the transport.
    next_payload: usize,
    /// Graphite pickle: each plaintext payload goes out as a pickle frame.
    wire: Option<PickleWire>,
    continues: ChunkRule,
    /// Stream lines the kernel accepted whose fate the transport has not told yet.
    unconfirmed: u64,
}

impl Delivery {
    pub(crate) fn new(config: &Config, continues: ChunkRule, wire: Option<PickleWire>) -> Self {
        Self {
            writer: PayloadWriter::new(config.max_payload_len, config.framing),
            backlog: Backlog::new(config.max_backlog_bytes),
            next_payload: 0,
            wire,
            continues,
            unconfirmed: 0,
        }
    }

    /// Settles the lines sent on a stream since the last verdict: a connection that ended in
    /// a reset (or a failed write) makes them "possibly lost" (counted; they are also in
    /// `lines_sent`, as the kernel took them). Call after `Transport::ready` (`send_backlog`
    /// starts with it); `deliver` and `send_backlog` call it after a failure too.
    pub(crate) fn settle(&mut self, transport: &mut Transport, stats: &StatsCells) {
        settle(&mut self.unconfirmed, transport, stats);
    }

    /// The writer for the next batch of lines.
    pub(crate) fn writer(&mut self) -> &mut PayloadWriter {
        &mut self.writer
    }

    /// Forgets the previous batch (keeping allocations); the backlog stays.
    pub(crate) fn start(&mut self) {
        self.writer.clear();
        self.next_payload = 0;
    }

    /// Lines of the current batch not yet handed to the transport.
    pub(crate) fn unsent_lines(&self) -> u64 {
        (self.next_payload..self.writer.len())
            .filter_map(|i| self.writer.payload(i))
            .map(|(_, lines)| u64::from(lines))
            .sum()
    }

    /// Empties the backlog, returning how many lines it held.
    pub(crate) fn clear_backlog(&mut self) -> u64 {
        self.backlog.clear()
    }

    /// Bytes waiting: the current batch (sent or not) plus the backlog. Cheap: for bounding
    /// what a caller may queue.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.writer.buffered_len() + self.backlog.len()
    }

    /// Moves the collected payloads to the backlog, for a destination that is down; the
    /// oldest lines go first if the bound is reached (counted as dropped).
    pub(crate) fn park(&mut self, stats: &StatsCells) {
        let mut dropped = 0;
        while let Some((payload, _)) = self.writer.payload(self.next_payload) {
            self.next_payload += 1;
            dropped += self.backlog.push(payload, self.continues);
        }
        add(&stats.lines_dropped_send, dropped);
    }

    /// Sends the collected payloads. Datagram failures drop that payload (counted); a stream
    /// failure moves the rest, from the first chunk the kernel did not fully accept, to the
    /// backlog.
    pub(crate) async fn deliver(&mut self, transport: &mut Transport, stats: &StatsCells) {
        while let Some((payload, lines)) = self.writer.payload(self.next_payload) {
            let result = send(&mut self.wire, transport, payload, stats).await;
            // Only now: a send cancelled by the shutdown deadline still counts as unsent.
            self.next_payload += 1;
            match result {
                Ok(on_wire) => {
                    count_sent(stats, on_wire, u64::from(lines));
                    settle(&mut self.unconfirmed, transport, stats);
                    accepted(&mut self.unconfirmed, transport, u64::from(lines));
                }
                Err(error) if transport.is_stream() => {
                    let from = resume_point(payload, error.written(), self.continues);
                    let partial = count_partial(stats, &payload[..from]);
                    accepted(&mut self.unconfirmed, transport, partial);
                    settle(&mut self.unconfirmed, transport, stats);
                    let mut dropped = self.backlog.push(&payload[from..], self.continues);
                    while let Some((rest, _)) = self.writer.payload(self.next_payload) {
                        self.next_payload += 1;
                        dropped += self.backlog.push(rest, self.continues);
                    }
                    add(&stats.lines_dropped_send, dropped);
                    return;
                }
                Err(SendError::Full) => {
                    add(&stats.payloads_dropped, 1);
                    add(&stats.lines_dropped_send, u64::from(lines));
                }
                Err(_) => {
                    // Anything but a full queue (no receiver, refused, no permission) would
                    // fail the same way for the rest of this flush: drop and count it all
                    // now, and let the backoff decide when to try again.
                    add(&stats.payloads_dropped, 1);
                    add(&stats.lines_dropped_send, u64::from(lines));
                    while let Some((_, rest)) = self.writer.payload(self.next_payload) {
                        self.next_payload += 1;
                        add(&stats.payloads_dropped, 1);
                        add(&stats.lines_dropped_send, u64::from(rest));
                    }
                    return;
                }
            }
        }
    }

    /// Whether everything collected so far was handed to the transport: nothing of the
    /// current batch is left and the backlog is empty.
    pub(crate) fn caught_up(&self) -> bool {
        self.next_payload >= self.writer.len() && self.backlog.is_empty()
    }

    /// Sends payloads that are not the user's (the exporter's own telemetry), after the
    /// user's: they are counted only in `telemetry_lines_sent` / `telemetry_lines_dropped`,
    /// never join the backlog and never enter a delivery verdict, so the user's statistics
    /// are the same with telemetry on or off. Stops at the first failure.
    /// Returns how many of their lines the transport accepted (the first ones, in order).
    pub(crate) async fn deliver_aside(
        &mut self,
        transport: &mut Transport,
        payloads: &PayloadWriter,
        stats: &StatsCells,
    ) -> u64 {
        let mut accepted_lines = 0;
        for i in 0..payloads.len() {
            let Some((payload, lines)) = payloads.payload(i) else {
                break;
            };
            let result = send(&mut self.wire, transport, payload, stats).await;
            // A verdict learnt during this send is about the user's earlier lines.
            settle(&mut self.unconfirmed, transport, stats);
            match result {
                // Not part of any verdict: a later UDP "refused" stays charged to the user's
                // last datagram, as without telemetry (the report would most likely have been
                // refused with it), and the report is not re-sent, like user lines.
                Ok(_) => accepted_lines += u64::from(lines),
                Err(error) => {
                    let done = resume_point(payload, error.written(), self.continues);
                    let partial = count_lines(&payload[..done]);
                    accepted_lines += partial;
                    let later: u64 = (i + 1..payloads.len())
                        .filter_map(|j| payloads.payload(j))
                        .map(|(_, n)| u64::from(n))
                        .sum();
                    add(
                        &stats.telemetry_lines_dropped,
                        u64::from(lines) - partial + later,
                    );
                    break;
                }
            }
        }
        add(&stats.telemetry_lines_sent, accepted_lines);
        accepted_lines
    }

    /// Sends the backlog first, in payload-sized pieces. Returns `false` if it could not all
    /// be sent (the rest stays queued).
    pub(crate) async fn send_backlog(
        &mut self,
        transport: &mut Transport,
        stats: &StatsCells,
    ) -> bool {
        self.settle(transport, stats);
        while !self.backlog.is_empty() {
            let piece = self.backlog.front(self.writer.max_len());
            match send(&mut self.wire, transport, piece, stats).await {
                Ok(on_wire) => {
                    let (len, lines) = (piece.len(), count_lines(piece));
                    count_sent(stats, on_wire, lines);
                    settle(&mut self.unconfirmed, transport, stats);
                    accepted(&mut self.unconfirmed, transport, lines);
                    self.backlog.consume(len);
                }
                Err(error) => {
                    let done = resume_point(piece, error.written(), self.continues);
                    let partial = count_partial(stats, &piece[..done]);
                    accepted(&mut self.unconfirmed, transport, partial);
                    settle(&mut self.unconfirmed, transport, stats);
                    self.backlog.consume(done);
                    return false;
                }
            }
        }
        true
    }
}

/// See [`Delivery::settle`].
fn settle(unconfirmed: &mut u64, transport: &mut Transport, stats: &StatsCells) {
    match transport.take_verdict() {
        Verdict::Pending => {}
        Verdict::Delivered => *unconfirmed = 0,
        Verdict::PossiblyLost => add(&stats.lines_possibly_lost, std::mem::take(unconfirmed)),
    }
}

/// Counts lines the transport accepted, pending a verdict: every line since the last one for
/// a stream; the latest datagram for UDP, which a later "refused" is (most likely) about.
fn accepted(unconfirmed: &mut u64, transport: &Transport, lines: u64) {
    if transport.is_stream() {
        *unconfirmed += lines;
    } else {
        *unconfirmed = lines;
    }
}

/// Counts a payload that went out whole.
fn count_sent(stats: &StatsCells, bytes: usize, lines: u64) {
    add(&stats.payloads_sent, 1);
    add(&stats.bytes_sent, bytes as u64);
    add(&stats.lines_sent, lines);
}

/// Counts the whole lines at the start of a stream payload that went out before a failure;
/// returns their number.
fn count_partial(stats: &StatsCells, written: &[u8]) -> u64 {
    let lines = count_lines(written);
    add(&stats.bytes_sent, written.len() as u64);
    add(&stats.lines_sent, lines);
    lines
}

/// Sends one payload as is, or as a pickle frame, and returns the bytes that went on the
/// wire (see `Transport::wire_len`; for pickle, the frame). A frame cut anywhere delivered
/// nothing (carbon only unpickles whole frames), so a partial write counts as none.
async fn send(
    wire: &mut Option<PickleWire>,
    transport: &mut Transport,
    payload: &[u8],
    stats: &StatsCells,
) -> Result<usize, SendError> {
    let Some(wire) = wire else {
        let on_wire = transport.wire_len(payload);
        return transport.send(payload, stats).await.map(|()| on_wire);
    };
    let frame = wire.encode(payload);
    let on_wire = frame.len();
    transport
        .send(frame, stats)
        .await
        .map(|()| on_wire)
        .map_err(|e| match e {
            SendError::Partial { error, .. } => SendError::Partial { written: 0, error },
            other => other,
        })
}
