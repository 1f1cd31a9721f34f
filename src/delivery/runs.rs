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
use super::{Unconfirmed, count_sent};

/// Sends the run that starts at payload `next`, if there is one. `Ok(n)`: the first `n`
/// payloads went out (0: none, there is no run or it did not go out; send the first alone).
/// `Err(hint)`: none did; send the first alone with `hint`.
pub(super) async fn send(
    writer: &PayloadWriter,
    next: usize,
    transport: &mut Transport,
) -> Result<usize, Hint> {
    let body = |i| writer.lines(i).map(|(lines, _)| lines.body());
    let n = Transport::run_len((next..).map_while(|i| body(i).map(<[u8]>::len)));
    if n < 2 {
        return Ok(0);
    }
    let mut run: [&[u8]; MAX_RUN] = [&[]; MAX_RUN];
    for (slot, i) in run.iter_mut().zip(next..next + n) {
        *slot = body(i).unwrap_or_default();
    }
    match transport.send_run(&run[..n.min(MAX_RUN)]).await {
        Ok(true) => Ok(n),
        Ok(false) => Ok(0),
        Err(hint) => Err(hint),
    }
}

/// Counts payloads `from..to`, which went out as one run: each as a datagram sent whole, and
/// all their lines unconfirmed together.
pub(super) fn count(
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
