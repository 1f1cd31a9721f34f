//! Set cell: the distinct members recorded in one flush interval, bounded, lock-free.
//!
//! A member already seen this interval costs a hash and a few atomics: no lock, no
//! allocation. A member seen for the first time is sanitised into a new `String` (its one
//! allocation) and queued for the flusher. The flusher drains the queue and dedups exactly
//! with its own list, so the filter below only has to be *safe*, not exact:
//!
//! - **Filter.** A fixed open-addressing table of 64-bit keyed hashes (0 = empty), at least
//!   twice the member cap. `insert` probes for the member's hash: found means "already
//!   queued this interval"; an empty slot is claimed with a compare-and-swap, and the winner
//!   (only one thread can win a slot for a hash) queues the member. A thread that loses the
//!   race re-reads the slot and carries on probing, so two threads never both skip a member.
//!   Two members that really share a 64-bit hash (a chance of about n²/2⁶⁵ for n members,
//!   keyed randomly per cell) would count as one; nothing else makes the filter lose one.
//! - **Bound.** The queue holds at most `capacity` members per interval. A new member that
//!   finds it full is refused and counted once (its hash stays claimed, so repeats are not
//!   counted again); when no slot is free within `MAX_PROBES` of the member's own (a storm of
//!   new members has filled the table), each such insert is counted. A member longer than the
//!   payload limit is refused before anything is allocated for it, and counted.
//! - **Intervals, with no insert lost between them.** There are two generations (table and
//!   queue), and `epoch`'s parity names the one in use. An insert registers in its
//!   generation's `busy` count, *then* re-reads `epoch`; if the epoch moved it leaves and
//!   retries in the new generation. The flusher bumps `epoch`, *then* waits until the old
//!   generation's `busy` is 0, drains its queue and clears its table. Both sides use `SeqCst`
//!   for that store-then-load pair (Dekker's pattern): either the insert sees the new epoch,
//!   or the flusher sees the insert's `busy` and waits for it to finish. So every insert that
//!   returned before a flush began is in that flush, an insert racing the flush lands in it
//!   or in the next one (never both, never neither), and the old generation is idle while
//!   the flusher clears it: it is used again only after the next bump, by the same flusher.
//!   An insert that finds a member's hash claimed by another insert still in progress returns
//!   at once: the claimer passed its epoch check, so it is counted in `busy` and the flush
//!   waits for its push. (The wait is not bounded, see `YIELDS_BEFORE_SLEEPING`: inserts
//!   never block, so it ends as soon as a preempted inserter runs again.)
//!
//! Nothing here does I/O or reads a clock.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

use super::Idle;
use crate::encode::sanitize::sanitized_member;

/// Yields before the flusher, still waiting for inserts inside the generation it retires,
/// starts sleeping between checks. An insert holds `busy` across a hash, a few atomics and,
/// for a new member, one allocation: nothing in it blocks or panics, so the wait always ends,
/// and it lasts longer than a few spins only while the scheduler has preempted a thread in
/// there (on a loaded 2-vCPU machine that reached more than 10 000 yields). The wait is not
/// bounded: a bound would let the flusher clear a generation under a running insert, whose
/// member would then be sent two intervals late.
const YIELDS_BEFORE_SLEEPING: u32 = 1_000;

/// Slots an insert probes at most. Below the cap the table is at most half full, so a free
/// slot or the member's own is found within a few probes; once a storm of new members has
/// filled it (refused members keep their slots, so each is counted once), a new member is
/// refused after this many probes instead of scanning the whole table on the recording
/// thread (3.7 µs per insert at the default cap, 125 µs at 65 536, measured by the review).
const MAX_PROBES: usize = 64;

#[derive(Debug)]
struct Generation {
    /// Inserts in progress in this generation.
    busy: AtomicUsize,
    /// Hashes of the members queued (or refused) this interval; 0 is an empty slot.
    table: Box<[AtomicU64]>,
    /// Members first seen this interval, sanitised.
    queue: ArrayQueue<String>,
}

impl Generation {
    fn new(capacity: usize) -> Self {
        let slots = (capacity.max(8) * 2).next_power_of_two();
        Self {
            busy: AtomicUsize::new(0),
            table: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            queue: ArrayQueue::new(capacity.max(1)),
        }
    }
}

/// What one [`SetCell::drain_into`] took besides the members.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetDrain {
    /// Members appended to the caller's list (before its exact dedup).
    pub(crate) members: u64,
    /// New members refused by the cap.
    pub(crate) refused: u64,
    /// Empty members (refused: nothing to send).
    pub(crate) empty: u64,
    /// Members longer than the payload limit (refused: no line could carry them).
    pub(crate) too_long: u64,
}

/// One set series' members for the current interval. See the module docs.
#[derive(Debug)]
pub(crate) struct SetCell {
    epoch: AtomicUsize,
    generations: [Generation; 2],
    hasher: std::collections::hash_map::RandomState,
    refused: AtomicU64,
    empty: AtomicU64,
    /// Longest member kept, in bytes: a longer one could not go out in a payload.
    max_member_len: usize,
    too_long: AtomicU64,
}

impl SetCell {
    /// A set keeping at most `capacity` distinct members per interval.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            epoch: AtomicUsize::new(0),
            generations: [Generation::new(capacity), Generation::new(capacity)],
            hasher: std::collections::hash_map::RandomState::new(),
            refused: AtomicU64::new(0),
            empty: AtomicU64::new(0),
            max_member_len: usize::MAX,
            too_long: AtomicU64::new(0),
        }
    }

    /// Refuses (and counts) members longer than `bytes`, before anything is allocated for
    /// them: the payload limit, past which no line with the member could be sent. So a set's
    /// members take at most twice its capacity times this many bytes.
    pub(crate) fn with_max_member_len(mut self, bytes: usize) -> Self {
        self.max_member_len = bytes;
        self
    }

    /// Records `member` in the current interval.
    pub(crate) fn insert(&self, member: &str) {
        if member.is_empty() {
            // Relaxed: an independent tally, read by the flusher.
            self.empty.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if member.len() > self.max_member_len {
            // Relaxed: an independent tally, read by the flusher.
            self.too_long.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let hash = self.hasher.hash_one(member).max(1);
        loop {
            // SeqCst, with the load below: the Dekker pair of the module docs.
            let epoch = self.epoch.load(Ordering::SeqCst);
            let generation = &self.generations[epoch & 1];
            generation.busy.fetch_add(1, Ordering::SeqCst);
            if self.epoch.load(Ordering::SeqCst) == epoch {
                self.insert_in(generation, hash, member);
                // Release: the flusher's (SeqCst, so acquiring) load of `busy` then sees our
                // claim and push.
                generation.busy.fetch_sub(1, Ordering::Release);
                return;
            }
            generation.busy.fetch_sub(1, Ordering::Release);
        }
    }

    fn insert_in(&self, generation: &Generation, hash: u64, member: &str) {
        let mask = generation.table.len() - 1;
        #[allow(
            clippy::cast_possible_truncation,
            reason = "only the low bits pick the first slot"
        )]
        let start = hash as usize;
        for probe in 0..generation.table.len().min(MAX_PROBES) {
            let slot = &generation.table[(start + probe) & mask];
            // Relaxed: a claimed hash only tells "someone queues it"; the queue and `busy`
            // carry the ordering the flusher needs.
            let mut seen = slot.load(Ordering::Relaxed);
            if seen == 0 {
                match slot.compare_exchange(0, hash, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        if generation.queue.push(sanitized_member(member)).is_err() {
                            self.refused.fetch_add(1, Ordering::Relaxed);
                        }
                        return;
                    }
                    Err(now) => seen = now,
                }
            }
            if seen == hash {
                return;
            }
        }
        // Relaxed: an independent tally.
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Flusher only: starts a new interval and appends the members of the one that ended to
    /// `out` (unsorted; members that sanitise alike appear once each). See the module docs
    /// for why no insert is lost or counted twice.
    pub(crate) fn drain_into(&self, out: &mut Vec<String>) -> SetDrain {
        // SeqCst, with the load of `busy` below: the Dekker pair of the module docs.
        let old = self.epoch.fetch_add(1, Ordering::SeqCst) & 1;
        let generation = &self.generations[old];
        // Until every insert in it has finished: see `YIELDS_BEFORE_SLEEPING`.
        wait_idle(&generation.busy);
        let before = out.len();
        while let Some(member) = generation.queue.pop() {
            out.push(member);
        }
        for slot in &*generation.table {
            slot.store(0, Ordering::Relaxed);
        }
        SetDrain {
            members: (out.len() - before) as u64,
            refused: self.refused.swap(0, Ordering::Relaxed),
            empty: self.empty.swap(0, Ordering::Relaxed),
            too_long: self.too_long.swap(0, Ordering::Relaxed),
        }
    }
}

/// Flusher only: turns the union of a set's drains (see [`SetCell::drain_into`]) into what
/// is encoded, its distinct members in order: sorted, and exact duplicates (members that
/// sanitised alike) removed.
pub(crate) fn distinct_members(members: &mut Vec<String>) {
    members.sort_unstable();
    members.dedup();
}

/// Waits until no insert is inside the generation `busy` counts.
fn wait_idle(busy: &AtomicUsize) {
    // SeqCst: the load side of the Dekker pair (it also acquires each insert's Release
    // decrement, so its claims and push are visible).
    let mut checks: u32 = 0;
    while busy.load(Ordering::SeqCst) != 0 {
        checks = checks.saturating_add(1);
        if checks < 64 {
            std::hint::spin_loop();
        } else if checks < 64 + YIELDS_BEFORE_SLEEPING {
            std::thread::yield_now();
        } else {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }
}

impl Idle for SetCell {
    fn is_idle(&self) -> bool {
        let generation = &self.generations[self.epoch.load(Ordering::SeqCst) & 1];
        generation.queue.is_empty()
            && generation.busy.load(Ordering::SeqCst) == 0
            && self.refused.load(Ordering::Relaxed) == 0
            && self.empty.load(Ordering::Relaxed) == 0
            && self.too_long.load(Ordering::Relaxed) == 0
    }
}

/// A handle to one set series, from [`ExporterHandle::set`](crate::ExporterHandle::set):
/// cheap to clone and to share between threads.
///
/// A set sends, each flush interval, its distinct members: one `name:member|s` line per
/// member for StatsD and DogStatsD (the server counts them), and the number of distinct
/// members as a gauge for Graphite. The rules (sanitising, the per-interval cap, what is
/// counted) are in the crate docs' [Aggregation semantics](crate#aggregation-semantics).
///
/// Inserting a member already seen in the interval takes a few atomics and allocates
/// nothing; the first insert of a member in an interval allocates its `String` once. Keep
/// the handle rather than calling `set` again for each insert (registering takes a lock).
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use metrics::{Key, Label};
/// use metrics_exporter_statsd_graphite::ExporterBuilder;
///
/// let guard = ExporterBuilder::statsd("udp://127.0.0.1:8125").install()?;
/// let users = guard.handle().set("users.unique");
/// users.insert("alice");
/// users.insert("alice"); // counted once this interval
/// let eu = guard
///     .handle()
///     .set(Key::from_parts("users.unique", vec![Label::new("region", "eu")]));
/// eu.insert("bob");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SetHandle {
    cell: Option<Arc<SetCell>>,
}

impl SetHandle {
    pub(crate) fn new(cell: Option<Arc<SetCell>>) -> Self {
        Self { cell }
    }

    /// Records `member` in the current flush interval. An empty member is refused (counted
    /// in [`values_dropped_invalid`](crate::ExporterStats::values_dropped_invalid)).
    pub fn insert(&self, member: &str) {
        if let Some(cell) = &self.cell {
            cell.insert(member);
        }
    }
}

#[cfg(test)]
#[path = "set_tests.rs"]
mod tests;
