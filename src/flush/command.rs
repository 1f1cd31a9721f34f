//! What handles and the guard ask of the flusher, and how it answers. (Explicit flushes,
//! the frequent request, go through [`Demand`](super::Demand) instead: no allocation.)

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::error::FlushError;

/// How the caller of a flush wants to hear that it is done.
#[derive(Debug)]
pub(crate) enum Reply {
    Sync(std::sync::mpsc::SyncSender<Result<(), FlushError>>),
    Async(oneshot::Sender<Result<(), FlushError>>),
}

impl Reply {
    pub(super) fn send(self, result: Result<(), FlushError>) {
        // The waiter may have given up (timed out); that is fine.
        match self {
            Self::Sync(tx) => drop(tx.try_send(result)),
            Self::Async(tx) => drop(tx.send(result)),
        }
    }
}

/// Requests from handles and the guard.
#[derive(Debug)]
pub(crate) enum Command {
    /// The guard was dropped: flush now, trying the destination at once (as the final flush
    /// does), reply when done, and keep running.
    Release(Reply),
    /// Final flush (bounded by the deadline), then stop.
    Shutdown { deadline: Instant, reply: Reply },
}

/// Tests: queues a shutdown with `wait` to finish in, and returns where its answer arrives.
#[cfg(test)]
pub(crate) fn queue_shutdown(
    commands: &tokio::sync::mpsc::UnboundedSender<Command>,
    wait: std::time::Duration,
) -> oneshot::Receiver<Result<(), FlushError>> {
    let (tx, done) = oneshot::channel();
    let sent = commands.send(Command::Shutdown {
        deadline: Instant::now() + wait,
        reply: Reply::Async(tx),
    });
    assert!(sent.is_ok(), "the flusher is gone");
    done
}
