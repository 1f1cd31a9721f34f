//! Tests only: the bytes of every line at the moment [`Delivery`](super::Delivery) counts it
//! as dropped or possibly lost, kept right beside the counting code, so a test can tell
//! *which* lines each counter stands for (and check that the counts agree with the bytes).

/// See the module docs. Every field holds whole newline-terminated lines.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ledger {
    /// Counted in `lines_dropped_send`.
    pub(crate) dropped_send: Vec<u8>,
    /// Counted in `lines_dropped_shutdown`.
    pub(crate) dropped_shutdown: Vec<u8>,
    /// Counted in `lines_possibly_lost`.
    pub(crate) possibly_lost: Vec<u8>,
    /// Accepted by the transport (counted in `lines_sent`), in order.
    pub(crate) sent: Vec<u8>,
    /// Accepted by the transport, awaiting its verdict (the `unconfirmed` count's lines).
    pub(crate) unconfirmed: Vec<u8>,
    /// Stream lines that may still be in our own send queue (lost if we reset the
    /// connection ourselves).
    pub(crate) queued: Vec<u8>,
}

impl super::Delivery {
    /// Tests: the backlog's lines, oldest first.
    pub(crate) fn backlog_bytes(&self) -> &[u8] {
        self.backlog.lines().bytes()
    }

    /// Tests: the ledger, the backlog's own entries included.
    pub(crate) fn ledger(&self) -> Ledger {
        let mut ledger = self.ledger.clone();
        ledger
            .dropped_send
            .extend_from_slice(&self.backlog.ledger.dropped_send);
        ledger
            .dropped_shutdown
            .extend_from_slice(&self.backlog.ledger.dropped_shutdown);
        ledger
    }

    /// Tests: notes the batch's unsent lines in the ledger as dropped at shutdown; called
    /// where [`unsent_lines`](Self::unsent_lines) is counted in `lines_dropped_shutdown`.
    pub(crate) fn ledger_unsent_at_shutdown(&mut self) {
        for i in self.next_payload..self.writer.len() {
            if let Some((lines, _)) = self.writer.lines(i) {
                self.ledger
                    .dropped_shutdown
                    .extend_from_slice(lines.bytes());
            }
        }
    }
}
