//! How [`Delivery`](super::Delivery) counts what the transport did with each payload:
//! lines sent, and the transport's later verdict on them (see [`Unconfirmed`]).

use crate::lines::Lines;
use crate::stats::{StatsCells, add};
use crate::transport::{Transport, Verdict};

#[cfg(test)]
use super::Ledger;
use super::Unconfirmed;

/// See [`Delivery::settle`](super::Delivery::settle).
pub(super) fn settle(
    unconfirmed: &mut Unconfirmed,
    transport: &mut Transport,
    stats: &StatsCells,
    #[cfg(test)] ledger: &mut Ledger,
) {
    match transport.take_verdict() {
        Verdict::Pending => {}
        Verdict::Open { queue } => {
            let kept = unconfirmed.open(queue);
            #[cfg(test)]
            {
                ledger.unconfirmed.clear();
                let from = ledger.queued.len() - kept;
                ledger.queued.drain(..from);
            }
            #[cfg(not(test))]
            let _ = kept;
        }
        Verdict::Delivered => {
            unconfirmed.delivered();
            #[cfg(test)]
            {
                ledger.unconfirmed.clear();
                ledger.queued.clear();
            }
        }
        Verdict::PossiblyLost => {
            add(&stats.lines_possibly_lost, unconfirmed.lost());
            #[cfg(test)]
            {
                ledger.possibly_lost.append(&mut ledger.unconfirmed);
                ledger.queued.clear();
            }
        }
        Verdict::Abandoned => {
            add(&stats.lines_possibly_lost, unconfirmed.abandoned());
            #[cfg(test)]
            {
                ledger.possibly_lost.append(&mut ledger.queued);
                ledger.unconfirmed.clear();
            }
        }
    }
}

/// Notes lines the transport accepted, pending its verdict (see [`Unconfirmed`]).
pub(super) fn accepted(
    unconfirmed: &mut Unconfirmed,
    transport: &Transport,
    (piece, lines): (Lines<'_>, u64),
    #[cfg(test)] ledger: &mut Ledger,
) {
    unconfirmed.accepted(transport.is_stream(), piece.len(), lines);
    #[cfg(test)]
    {
        if transport.is_stream() {
            ledger.queued.extend_from_slice(piece.bytes());
        } else {
            ledger.unconfirmed.clear();
        }
        ledger.unconfirmed.extend_from_slice(piece.bytes());
        ledger.sent.extend_from_slice(piece.bytes());
    }
}

/// Counts a payload that went out whole.
pub(super) fn count_sent(stats: &StatsCells, bytes: usize, lines: u64) {
    add(&stats.payloads_sent, 1);
    add(&stats.bytes_sent, bytes as u64);
    add(&stats.lines_sent, lines);
}
