//! Lines the transport accepted whose fate it has not told yet.
//!
//! A stream keeps every line since the last verdict; UDP only the latest datagram, which a
//! later "refused" is (most likely) about. A stream connection still open at the next flush
//! confirms every line since the last verdict ([`Verdict::Open`]), as it always has; but the
//! newest of them, those within the connection's send-queue bound, may still sit in our own
//! kernel queue, and if we later give the connection up we reset it ourselves
//! ([`Verdict::Abandoned`]), which discards that queue: those lines are then counted as
//! possibly lost too.
//!
//! [`Verdict::Open`]: crate::transport::Verdict::Open
//! [`Verdict::Abandoned`]: crate::transport::Verdict::Abandoned

use std::collections::VecDeque;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Unconfirmed {
    /// Lines since the last verdict.
    pending: u64,
    /// Stream pieces that may still be in our send queue, oldest first: (bytes, lines). Every
    /// piece since the last verdict, and after an `Open` verdict the newest that fit its
    /// queue bound.
    queued: VecDeque<(usize, u64)>,
}

impl Unconfirmed {
    /// Lines awaiting a verdict.
    #[cfg(test)]
    pub(crate) fn lines(&self) -> u64 {
        self.pending
    }

    /// Notes `lines` (in `bytes` bytes) the transport accepted.
    pub(crate) fn accepted(&mut self, stream: bool, bytes: usize, lines: u64) {
        if stream {
            self.pending += lines;
            self.queued.push_back((bytes, lines));
        } else {
            self.pending = lines;
        }
    }

    /// The connection is still open and its send queue holds at most `queue` bytes: every
    /// pending line is confirmed, and only the newest pieces within `queue` bytes are kept as
    /// possibly still queued. Returns their bytes (a suffix of what was accepted).
    pub(crate) fn open(&mut self, queue: usize) -> usize {
        self.pending = 0;
        let mut kept = 0;
        let mut keep = 0;
        for &(bytes, _) in self.queued.iter().rev() {
            if kept >= queue {
                break;
            }
            kept += bytes;
            keep += 1;
        }
        let gone = self.queued.len() - keep;
        self.queued.drain(..gone);
        kept
    }

    /// Everything is delivered (a clean close).
    pub(crate) fn delivered(&mut self) {
        self.pending = 0;
        self.queued.clear();
    }

    /// The peer reset the connection (or refused a datagram): the pending lines may be lost.
    pub(crate) fn lost(&mut self) -> u64 {
        self.queued.clear();
        std::mem::take(&mut self.pending)
    }

    /// We reset the connection ourselves: the pending lines and those possibly still in our
    /// send queue may be lost. Returns how many lines.
    pub(crate) fn abandoned(&mut self) -> u64 {
        self.pending = 0;
        self.queued.drain(..).map(|(_, lines)| lines).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_connection_confirms_the_pending_lines_but_remembers_what_may_be_queued() {
        let mut u = Unconfirmed::default();
        u.accepted(true, 100, 10);
        u.accepted(true, 100, 10);
        u.accepted(true, 50, 5);
        // The last 120 bytes may be queued: the last two pieces (150 bytes) are remembered.
        assert_eq!(u.open(120), 150);
        assert_eq!(u.lines(), 0);
        u.accepted(true, 10, 1);
        assert_eq!(u.abandoned(), 16, "the remembered pieces and the new one");
        assert_eq!(u.abandoned(), 0);
    }

    #[test]
    fn a_peer_reset_counts_only_the_pending_lines() {
        let mut u = Unconfirmed::default();
        u.accepted(true, 100, 10);
        u.open(1000);
        u.accepted(true, 10, 3);
        assert_eq!(u.lost(), 3);
        assert_eq!(u.abandoned(), 0, "a loss settles everything");
    }

    #[test]
    fn a_datagram_replaces_and_a_clean_close_confirms_everything() {
        let mut u = Unconfirmed::default();
        u.accepted(false, 10, 3);
        u.accepted(false, 10, 2);
        assert_eq!(u.lines(), 2);
        assert_eq!(u.lost(), 2);
        u.accepted(true, 10, 4);
        u.delivered();
        assert_eq!(u.abandoned(), 0);
    }
}
