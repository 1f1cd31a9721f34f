//! Delivery: the one send path between the encoders' payloads and the transport, for every
//! transport kind and protocol, shared by the flusher and `GraphiteClient`.
//!
//! It owns the [`PayloadWriter`] the encoders fill, the [`Backlog`] and (for Graphite
//! pickle) the frame transcoder. Payloads are whole [`Lines`] from the writer to the
//! transport; only the transport frames them (see [`Payload`]).
//!
//! [`Delivery::send`] is the one send loop. It sends the backlog first, then the batch, one
//! payload at a time (or, over UDP on Linux, a run of datagrams in one call where the kernel
//! can cut them apart again: [`runs`]), and every outcome is counted exactly once, as if each
//! payload had been sent alone:
//! - sent whole: `lines_sent` (and, until the transport's verdict on them, "unconfirmed");
//! - refused for itself ([`SendError::Rejected`], too large for the socket): dropped and
//!   counted (`payloads_dropped`, `lines_dropped_send`), and the loop goes on;
//! - anything else (no connection, a failed or timed-out write, a missing Unix socket, a full
//!   receive queue): the lines the kernel took whole count as sent, and everything from the
//!   first chunk it did not take whole, with the rest of the batch, joins the backlog. The
//!   backlog keeps the oldest lines' place: they go out first next time.
//!
//! The backlog is bounded ([`Config::max_backlog_bytes`]); what it drops to stay within the
//! bound (oldest chunks first) is counted in `lines_dropped_send`.

mod account;
mod backlog;
#[cfg(test)]
mod ledger;
mod runs;
mod unconfirmed;

use crate::config::Config;
use crate::encode::{PayloadWriter, PickleWire, Point};
use crate::lines::{ChunkRule, Lines};
use crate::stats::{StatsCells, add};
use crate::transport::{Hint, Payload, SendError, Transport};

use account::{accepted, count_sent, settle};
use backlog::Backlog;
#[cfg(test)]
pub(crate) use ledger::Ledger;
use unconfirmed::Unconfirmed;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Delivery {
    writer: PayloadWriter,
    backlog: Backlog,
    /// Index of the first payload of `writer` not yet handed to the transport (or parked).
    next_payload: usize,
    /// Graphite pickle: each payload goes out as a pickle frame.
    wire: Option<PickleWire>,
    continues: ChunkRule,
    /// Lines the transport accepted whose fate it has not told yet (see [`Verdict`](crate::transport::Verdict)).
    unconfirmed: Unconfirmed,
    /// Tests: the bytes of every line as it is counted (see [`Ledger`]).
    #[cfg(test)]
    ledger: Ledger,
}

/// How far one payload got.
#[derive(Debug, Clone, Copy)]
enum Put {
    /// All of it went out; `on_wire` bytes.
    Whole { on_wire: usize },
    /// It stopped after the first `done` bytes (whole chunks; none for a datagram or a
    /// frame). `rejected`: the socket refused this payload itself, so it must not be kept.
    Cut { done: usize, rejected: bool },
}

impl Delivery {
    pub(crate) fn new(config: &Config, continues: ChunkRule, wire: Option<PickleWire>) -> Self {
        Self {
            writer: PayloadWriter::new(config.max_payload_len, config.framing)
                .keeping_points(wire.is_some()),
            backlog: Backlog::new(config.max_backlog_bytes),
            next_payload: 0,
            wire,
            continues,
            unconfirmed: Unconfirmed::default(),
            #[cfg(test)]
            ledger: Ledger::default(),
        }
    }

    /// Settles the lines sent since the last verdict: a stream connection that ended in a
    /// reset (or a failed write), or a UDP datagram later refused, makes them "possibly lost"
    /// (counted; they are also in `lines_sent`, as the kernel took them). Call after
    /// `Transport::ready`; [`send`](Self::send) calls it after every payload.
    pub(crate) fn settle(&mut self, transport: &mut Transport, stats: &StatsCells) {
        settle(
            &mut self.unconfirmed,
            transport,
            stats,
            #[cfg(test)]
            &mut self.ledger,
        );
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

    /// Forgets the payloads of the batch already handed to the transport (or parked), if
    /// that is all of them, keeping the one the encoders are filling (see
    /// [`PayloadWriter::drop_finished`]). The flusher calls it between the parts of a flush
    /// it sends as it collects, so the writer holds one part, not a whole interval.
    pub(crate) fn release_sent(&mut self) {
        if self.next_payload >= self.writer.len() {
            self.writer.drop_finished();
            self.next_payload = 0;
        }
    }

    /// Lines of the current batch not yet handed to the transport (nor parked).
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

    /// Tests: the bytes the writer's buffer has room for.
    #[cfg(test)]
    pub(crate) fn writer_capacity(&self) -> usize {
        self.writer.capacity()
    }

    /// Bytes waiting: the current batch (sent or not) plus the backlog. Cheap: for bounding
    /// what a caller may queue.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.writer.buffered_len() + self.backlog.len()
    }

    /// Whether everything collected so far was handed to the transport: nothing of the
    /// current batch is left and the backlog is empty.
    pub(crate) fn caught_up(&self) -> bool {
        self.next_payload >= self.writer.len() && self.backlog.is_empty()
    }

    /// Moves the rest of the batch to the backlog, for a destination that cannot take it
    /// now; the oldest chunks go first if the bound is reached (counted as dropped).
    pub(crate) fn park(&mut self, stats: &StatsCells) {
        let dropped = park_from(
            &self.writer,
            &mut self.next_payload,
            &mut self.backlog,
            self.continues,
        );
        add(&stats.lines_dropped_send, dropped);
    }

    /// The one send loop (see the module docs): the backlog, then the batch. Returns whether
    /// everything went out; if not, what is left is in the backlog.
    #[expect(
        clippy::too_many_lines,
        reason = "the one send loop: every outcome is counted here, in one place"
    )]
    pub(crate) async fn send(&mut self, transport: &mut Transport, stats: &StatsCells) -> bool {
        let Self {
            writer,
            backlog,
            next_payload,
            wire,
            continues,
            unconfirmed,
            #[cfg(test)]
            ledger,
        } = self;
        let capacity = writer.fresh_capacity();
        // What a run that did not go out learnt about the datagram sent alone next.
        let mut hint = Hint::Fresh;
        loop {
            let from_backlog = !backlog.is_empty();
            if !from_backlog && wire.is_none() && hint == Hint::Fresh && transport.sends_runs() {
                let sent = runs::send(
                    writer,
                    next_payload,
                    transport,
                    unconfirmed,
                    stats,
                    #[cfg(test)]
                    ledger,
                )
                .await;
                match sent {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(learnt) => hint = learnt,
                }
            }
            let (piece, lines) = if from_backlog {
                let piece = backlog.front(capacity, *continues);
                if piece.is_empty() {
                    // Only a fragment without a newline could look like this (never stored:
                    // see `Backlog`); it is not a line, so it is discarded, not sent.
                    backlog.clear();
                    continue;
                }
                (piece, piece.count())
            } else if let Some((piece, lines)) = writer.lines(*next_payload) {
                // The writer knows its payloads' line counts: no scan on the warm path.
                (piece, u64::from(lines))
            } else {
                return true;
            };
            // A fresh payload is pickled from the points recorded beside its lines, if there is
            // one for every line (else, as for the backlog, from its text).
            let points = writer.points(*next_payload).filter(|_| !from_backlog);
            let put = put(
                wire,
                transport,
                piece,
                points,
                stats,
                std::mem::replace(&mut hint, Hint::Fresh),
            )
            .await;
            let len = piece.len();
            match put {
                Put::Whole { on_wire } => {
                    // A verdict learnt during this send is about earlier lines.
                    settle(
                        unconfirmed,
                        transport,
                        stats,
                        #[cfg(test)]
                        ledger,
                    );
                    count_sent(stats, on_wire, lines);
                    accepted(
                        unconfirmed,
                        transport,
                        (piece, lines),
                        #[cfg(test)]
                        ledger,
                    );
                    if from_backlog {
                        backlog.consume(len);
                    } else {
                        *next_payload += 1;
                    }
                }
                Put::Cut { done, rejected } => {
                    let (sent, rest) = piece.split_at_chunk(done, *continues);
                    let (sent_len, rest_lines) = (sent.len(), rest.count());
                    if !sent.is_empty() {
                        // On the connection that just failed: its verdict covers them.
                        add(&stats.bytes_sent, sent_len as u64);
                        add(&stats.lines_sent, sent.count());
                        accepted(
                            unconfirmed,
                            transport,
                            (sent, sent.count()),
                            #[cfg(test)]
                            ledger,
                        );
                    }
                    settle(
                        unconfirmed,
                        transport,
                        stats,
                        #[cfg(test)]
                        ledger,
                    );
                    if rejected {
                        add(&stats.payloads_dropped, 1);
                        add(&stats.lines_dropped_send, rest_lines);
                        #[cfg(test)]
                        ledger.dropped_send.extend_from_slice(rest.bytes());
                        if from_backlog {
                            backlog.consume(len);
                        } else {
                            *next_payload += 1;
                        }
                        continue;
                    }
                    let mut dropped = 0;
                    if from_backlog {
                        backlog.consume(sent_len);
                    } else if let Some((batch, _)) = writer.lines(*next_payload) {
                        *next_payload += 1;
                        let (_, rest) = batch.split_at_chunk(done, *continues);
                        dropped += backlog.push(rest, *continues);
                    }
                    dropped += park_from(writer, next_payload, backlog, *continues);
                    add(&stats.lines_dropped_send, dropped);
                    return false;
                }
            }
        }
    }

    /// Sends payloads that are not the user's (the exporter's own telemetry), after the
    /// user's, one payload at a time like [`send`](Self::send): they are counted only in
    /// `telemetry_lines_sent` / `telemetry_lines_dropped`, never join the backlog and never
    /// enter a delivery verdict, so the user's statistics are the same with telemetry on or
    /// off. Stops at the first failure. Returns how many of their lines the transport
    /// accepted (the first ones, in order).
    pub(crate) async fn send_aside(
        &mut self,
        transport: &mut Transport,
        payloads: &PayloadWriter,
        stats: &StatsCells,
    ) -> u64 {
        let mut accepted_lines = 0;
        let mut i = 0;
        while let Some((piece, lines)) = payloads.lines(i) {
            i += 1;
            let put = put(&mut self.wire, transport, piece, None, stats, Hint::Fresh).await;
            // A verdict learnt during this send is about the user's earlier lines.
            settle(
                &mut self.unconfirmed,
                transport,
                stats,
                #[cfg(test)]
                &mut self.ledger,
            );
            match put {
                // Not part of any verdict: a later UDP "refused" stays charged to the user's
                // last datagram, as without telemetry (the report would most likely have been
                // refused with it), and the report is not re-sent, like user lines.
                Put::Whole { .. } => accepted_lines += u64::from(lines),
                Put::Cut { done, .. } => {
                    let partial = piece.split_at_chunk(done, self.continues).0.count();
                    accepted_lines += partial;
                    let later: u64 = (i..payloads.len())
                        .filter_map(|j| payloads.lines(j))
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
}

/// Moves the writer's payloads from `next` on to the backlog; returns the lines the backlog
/// dropped to stay within its bound.
fn park_from(
    writer: &PayloadWriter,
    next: &mut usize,
    backlog: &mut Backlog,
    continues: ChunkRule,
) -> u64 {
    let mut dropped = 0;
    while let Some((lines, _)) = writer.lines(*next) {
        *next += 1;
        dropped += backlog.push(lines, continues);
    }
    dropped
}

/// The one send step: puts `lines` on the wire (as a pickle frame for Graphite pickle, which
/// goes out whole or not at all, made from `points` when given: see
/// [`PayloadWriter::points`]).
async fn put(
    wire: &mut Option<PickleWire>,
    transport: &mut Transport,
    lines: Lines<'_>,
    points: Option<(&[Point], usize)>,
    stats: &StatsCells,
    hint: Hint,
) -> Put {
    let payload = match (wire, points) {
        (Some(wire), Some((points, start))) => {
            Payload::Frame(wire.encode_points(lines.bytes(), points, start))
        }
        (Some(wire), None) => Payload::Frame(wire.encode(lines.bytes())),
        (None, _) => Payload::Lines(lines),
    };
    let on_wire = transport.wire_len(payload);
    match transport.send(payload, hint, stats).await {
        Ok(()) => Put::Whole { on_wire },
        Err(SendError::Rejected(_)) => Put::Cut {
            done: 0,
            rejected: true,
        },
        Err(error) => Put::Cut {
            done: error.written(),
            rejected: false,
        },
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(all(test, target_os = "linux"))]
mod runs_tests;
#[cfg(test)]
mod tests;
