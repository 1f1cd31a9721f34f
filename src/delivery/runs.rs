//! Runs of datagrams for [`Delivery::send`](super::Delivery::send): consecutive payloads of
//! the batch that the transport can hand to the kernel in one call (see
//! `transport::runs`). Counted datagram by datagram, exactly as if each had been sent alone;
//! only the verdict differs: a later "refused" may be about any datagram of the run, so all
//! of its lines await it together.

use crate::encode::PayloadWriter;
use crate::stats::StatsCells;
use crate::transport::{Hint, MAX_RUN, Transport};

#[cfg(test)]
use super::Ledger;
use super::Unconfirmed;
use super::account::{count_sent, settle};

/// Sends the run that starts at payload `next`, if there is one, and counts it (advancing
/// `next` past it). `Ok(true)`: it went out. `Ok(false)`: there is none, or it did not go
/// out; send the first payload alone. `Err(hint)`: it did not go out; send the first payload
/// alone with `hint`.
pub(super) async fn send(
    writer: &PayloadWriter,
    next: &mut usize,
    transport: &mut Transport,
    unconfirmed: &mut Unconfirmed,
    stats: &StatsCells,
    #[cfg(test)] ledger: &mut Ledger,
) -> Result<bool, Hint> {
    let from = *next;
    let body = |i| writer.lines(i).map(|(lines, _)| lines.body());
    let n = Transport::run_len((from..).map_while(|i| body(i).map(<[u8]>::len)));
    if n < 2 {
        return Ok(false);
    }
    let mut run: [&[u8]; MAX_RUN] = [&[]; MAX_RUN];
    for (slot, i) in run.iter_mut().zip(from..from + n) {
        *slot = body(i).unwrap_or_default();
    }
    if !transport.send_run(&run[..n.min(MAX_RUN)]).await? {
        return Ok(false);
    }
    // As after every send: a verdict learnt during it is about earlier lines.
    settle(
        unconfirmed,
        transport,
        stats,
        #[cfg(test)]
        ledger,
    );
    count(
        writer,
        (from, from + n),
        unconfirmed,
        stats,
        #[cfg(test)]
        ledger,
    );
    *next = from + n;
    Ok(true)
}

/// Counts payloads `from..to`, which went out as one run: each as a datagram sent whole, and
/// all their lines unconfirmed together.
fn count(
    writer: &PayloadWriter,
    (from, to): (usize, usize),
    unconfirmed: &mut Unconfirmed,
    stats: &StatsCells,
    #[cfg(test)] ledger: &mut Ledger,
) {
    let (mut bytes, mut lines) = (0, 0);
    #[cfg(test)]
    ledger.unconfirmed.clear();
    for (piece, n) in (from..to).filter_map(|i| writer.lines(i)) {
        count_sent(stats, piece.body().len(), u64::from(n));
        bytes += piece.len();
        lines += u64::from(n);
        #[cfg(test)]
        {
            ledger.unconfirmed.extend_from_slice(piece.bytes());
            ledger.sent.extend_from_slice(piece.bytes());
        }
    }
    unconfirmed.accepted(false, bytes, lines);
}
