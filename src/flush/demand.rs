//! [`Demand`]: explicit flushes asked for by handles, answered without a channel per call.
//!
//! `ExporterHandle::flush` used to make a reply channel per call (and the command queue
//! grew a block now and then): three allocations per call. Handles are `Clone` and used from
//! many threads at once, so one reply slot cannot be handed out per call either. Instead,
//! requests are numbered: a caller takes the next ticket, wakes the flusher and waits until
//! the flusher has *completed* a flush that started after the ticket was taken. Concurrent
//! requests therefore share one flush, and nothing is allocated on either side (a `Mutex`,
//! a `Condvar` and tokio's `Notify` wait in place).
//!
//! The order that makes this correct: the flusher reads `requested` *before* it collects,
//! so every ticket up to that number was taken before the flush looked at the aggregate,
//! and everything recorded before those calls is in it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::FlushError;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Demand {
    /// Tickets handed out so far (the last one is this number).
    requested: AtomicU64,
    /// Wakes the flusher; a wake-up asked for while it is busy is kept (one permit).
    wake: Notify,
    /// What the flusher has finished.
    state: Mutex<Done>,
    /// Wakes blocking waiters when `state` changes.
    changed: Condvar,
    /// Wakes async waiters when `state` changes.
    changed_async: Notify,
}

#[derive(Debug, Default)]
struct Done {
    /// Every ticket up to this one has had its flush.
    completed: u64,
    /// The flusher is gone: no later flush will come.
    stopped: bool,
}

impl Done {
    /// The answer for `ticket`, if there is one yet.
    fn answer(&self, ticket: u64) -> Option<Result<(), FlushError>> {
        if self.completed >= ticket {
            Some(Ok(()))
        } else if self.stopped {
            Some(Err(FlushError::NotRunning))
        } else {
            None
        }
    }
}

impl Demand {
    /// Asks for a flush: returns the caller's ticket.
    fn request(&self) -> u64 {
        let ticket = self.requested.fetch_add(1, Ordering::AcqRel) + 1;
        self.wake.notify_one();
        ticket
    }

    /// Asks for a flush and blocks until one that started after this call is done, for at
    /// most `wait`.
    pub(crate) fn flush_blocking(&self, wait: Duration) -> Result<(), FlushError> {
        let ticket = self.request();
        let deadline = std::time::Instant::now() + wait;
        let mut done = self.lock();
        loop {
            if let Some(answer) = done.answer(ticket) {
                return answer;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(FlushError::Timeout);
            }
            done = self
                .changed
                .wait_timeout(done, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Async version of [`flush_blocking`](Self::flush_blocking).
    pub(crate) async fn flush_async(&self, wait: Duration) -> Result<(), FlushError> {
        let ticket = self.request();
        let deadline = Instant::now() + wait;
        loop {
            let changed = self.changed_async.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the check, so a change between the two is not missed.
            changed.as_mut().enable();
            if let Some(answer) = self.lock().answer(ticket) {
                return answer;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(FlushError::Timeout);
            }
        }
    }

    /// Flusher: waits until a flush is asked for that no flush has answered yet, then
    /// returns the last ticket it covers. Read before the flush collects anything (see the
    /// module docs). A wake-up whose tickets an earlier flush already answered (two requests
    /// racing the flusher leave a spare permit) is skipped, so it costs no extra flush.
    pub(super) async fn asked(&self) -> u64 {
        loop {
            self.wake.notified().await;
            let requested = self.requested.load(Ordering::Acquire);
            if requested > self.lock().completed {
                return requested;
            }
        }
    }

    /// Flusher: the tickets we are about to cover (the final flush covers every one asked
    /// for before it starts).
    pub(super) fn pending(&self) -> u64 {
        self.requested.load(Ordering::Acquire)
    }

    /// Flusher: every ticket up to `upto` has had its flush.
    pub(super) fn complete(&self, upto: u64) {
        let mut done = self.lock();
        done.completed = done.completed.max(upto);
        drop(done);
        self.announce();
    }

    /// The flusher is gone: waiting callers get [`FlushError::NotRunning`].
    pub(super) fn stop(&self) {
        self.lock().stopped = true;
        self.announce();
    }

    fn announce(&self) {
        self.changed.notify_all();
        self.changed_async.notify_waiters();
    }

    /// A panic elsewhere cannot leave `Done` half-written (two plain stores), so a poisoned
    /// lock is still good to use.
    fn lock(&self) -> MutexGuard<'_, Done> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Marks the flusher stopped when it goes away, however it ends (returned, or dropped with
/// its runtime), so no caller waits for a flush that cannot come.
#[derive(Debug)]
pub(super) struct StopOnDrop<'a>(pub(super) &'a Demand);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn a_ticket_taken_after_the_flush_read_the_requests_waits_for_the_next_flush() {
        let demand = Arc::new(Demand::default());
        let first = demand.request();
        let covered = demand.asked().await;
        assert_eq!(covered, first);
        // Taken while that flush runs: not covered by it.
        let second = demand.request();
        demand.complete(covered);
        assert!(matches!(demand.lock().answer(first), Some(Ok(()))));
        assert!(demand.lock().answer(second).is_none());
        // Its wake-up was kept for the flusher.
        assert_eq!(demand.asked().await, second);
        demand.complete(second);
        assert!(matches!(demand.lock().answer(second), Some(Ok(()))));
    }

    #[tokio::test(start_paused = true)]
    async fn a_spare_wake_up_for_tickets_already_answered_runs_no_flush() {
        let demand = Demand::default();
        // Two requests before the flusher looks leave one permit: one flush covers both.
        let (first, second) = (demand.request(), demand.request());
        let covered = demand.asked().await;
        assert_eq!(covered, second);
        demand.complete(covered);
        assert!(matches!(demand.lock().answer(first), Some(Ok(()))));
        // A permit left over from a request the flush already answered wakes nobody.
        demand.wake.notify_one();
        let idle = tokio::time::timeout(Duration::from_secs(1), demand.asked()).await;
        assert!(
            idle.is_err(),
            "a flush for tickets already answered: {idle:?}"
        );
        // A new request still gets its flush.
        let third = demand.request();
        assert_eq!(demand.asked().await, third);
    }

    #[tokio::test]
    async fn waiters_hear_not_running_once_the_flusher_is_gone() {
        let demand = Arc::new(Demand::default());
        let waiter = {
            let demand = Arc::clone(&demand);
            std::thread::spawn(move || demand.flush_blocking(Duration::from_secs(30)))
        };
        let async_waiter = {
            let demand = Arc::clone(&demand);
            tokio::spawn(async move { demand.flush_async(Duration::from_secs(30)).await })
        };
        while demand.pending() < 2 {
            tokio::task::yield_now().await;
        }
        drop(StopOnDrop(&demand));
        assert!(matches!(
            waiter.join().unwrap(),
            Err(FlushError::NotRunning)
        ));
        assert!(matches!(
            async_waiter.await.unwrap(),
            Err(FlushError::NotRunning)
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_flush_nobody_answers_times_out() {
        let demand = Demand::default();
        let result = demand.flush_async(Duration::from_secs(5)).await;
        assert!(matches!(result, Err(FlushError::Timeout)));
        let result = demand.flush_blocking(Duration::from_millis(20));
        assert!(matches!(result, Err(FlushError::Timeout)));
    }
}
