//! Counter cell: the sum since the last flush, in one atomic, plus an overflow flag.
//!
//! `increment` is a single relaxed `fetch_add`, and the flusher takes the sum with a single
//! `swap(0)`. Every increment lands either before or after that swap in the atomic's
//! modification order, so it is counted in exactly one flush: nothing is lost or doubled at a
//! flush boundary, whatever the number of threads.
//!
//! # Idle cells
//!
//! Most series are idle in most intervals, so `take` first does a plain relaxed load of the
//! sum and of the flag, and swaps only when either is non-zero: an idle cell costs the flusher
//! no locked instruction, and its cache line stays shared with the threads that record into
//! it instead of being taken exclusively at every flush. Nothing is lost: only a swap ever
//! removes anything from the sum, and a swap reads the latest value whatever happened before.
//! A load that reads 0 reads some value of the sum's modification order; an add that the load
//! does not see comes later in that order, so it stays in the atomic, and the next `take`'s
//! load (which by read-read coherence sees that value or a later one, never an earlier one)
//! finds it non-zero and swaps it out. So a zero load followed by a concurrent add is counted
//! in the next flush, exactly as an add that lands just after the swap always was. (A sum that
//! wrapped to exactly 0 still has its flag raised, so it is swapped too; a flag raised late is
//! the imprecision described below, unchanged.)
//!
//! # Overflow
//!
//! An interval's sum that would exceed `u64::MAX` is taken as `u64::MAX` (saturated), never
//! as the wrapped remainder. The add that wraps knows it from the value `fetch_add` returns
//! (`previous + value` overflows), and only then, off the common path, raises `overflowed`
//! (a `Release` store). `take` swaps the flag out (`Acquire`) *before* it swaps the sum out,
//! so a raised flag it sees was raised by an add that landed before its swap of the sum: an
//! overflow is never reported for an interval earlier than the one whose sum wrapped. The
//! one imprecision left is a flag raised late: an add that wraps before `take` swaps the sum
//! but whose thread is suspended between its add and its store of the flag until `take` has
//! read the flag. That interval is then taken wrapped, and the next `take` reports the
//! overflow (taking `u64::MAX`). The window is the few instructions between the wrapping add
//! and its store; closing it would take a compare-and-swap loop on every increment.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use metrics::CounterFn;

use crate::stats::add;

/// See the module docs. `repr(C)`, the flag last: every field ends within the cell's first
/// 17 bytes, which `spares` relies on to keep cells 96 bytes apart off each other's lines.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct CounterCell {
    /// Sum of increments not yet flushed, modulo 2^64.
    pending: AtomicU64,
    /// Last value passed to `absolute` (the counter is taken to start at 0).
    last_absolute: AtomicU64,
    /// Whether `pending` wrapped since the flag was last taken.
    overflowed: AtomicBool,
}

const _: () = assert!(std::mem::offset_of!(CounterCell, overflowed) == 16);

impl CounterCell {
    /// Takes the sum accumulated since the previous call, saturated at `u64::MAX`; a sum that
    /// overflowed adds 1 to `overflows`.
    pub(crate) fn take(&self, overflows: &AtomicU64) -> u64 {
        // Idle: read, never written. See the module docs.
        if self.pending.load(Ordering::Relaxed) == 0 && !self.overflowed.load(Ordering::Relaxed) {
            return 0;
        }
        // Acquire, and before the sum: a flag seen here was raised by an add that the swap
        // below takes (or an earlier one did). See the module docs.
        let overflowed = self.overflowed.swap(false, Ordering::Acquire);
        // Relaxed: the value is the only data; RMW atomicity alone makes the hand-off exact.
        let sum = self.pending.swap(0, Ordering::Relaxed);
        if overflowed {
            add(overflows, 1);
            u64::MAX
        } else {
            sum
        }
    }

    /// Tests: the pending sum, left in place.
    #[cfg(test)]
    pub(crate) fn peek(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Adds `value` to the pending sum; the add that makes it wrap raises the flag.
    fn add(&self, value: u64) {
        // Relaxed: see `take`.
        let previous = self.pending.fetch_add(value, Ordering::Relaxed);
        if previous.checked_add(value).is_none() {
            self.raise_overflow();
        }
    }

    /// The rare branch of `add`, kept out of line.
    #[cold]
    #[inline(never)]
    fn raise_overflow(&self) {
        // Release: pairs with the Acquire in `take`. See the module docs.
        self.overflowed.store(true, Ordering::Release);
    }
}

impl super::Idle for CounterCell {
    fn is_idle(&self) -> bool {
        self.pending.load(Ordering::Relaxed) == 0 && !self.overflowed.load(Ordering::Relaxed)
    }
}

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.add(value);
    }

    /// Converts an absolute reading into a delta against the previous reading. The first
    /// reading counts in full (the counter started at 0 with the process), and a reading
    /// lower than the previous one is taken as a reset of the source, so it counts in full
    /// too. The deltas sum like increments (saturating at `u64::MAX`). Concurrent `absolute`
    /// calls with out-of-order readings are not meaningful.
    fn absolute(&self, value: u64) {
        // Relaxed: `last_absolute` only orders against itself.
        let previous = self.last_absolute.swap(value, Ordering::Relaxed);
        let delta = if value >= previous {
            value - previous
        } else {
            value
        };
        if delta > 0 {
            self.add(delta);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Takes the cell's sum, and whether that take counted an overflow.
    fn take(c: &CounterCell) -> (u64, bool) {
        let overflows = AtomicU64::new(0);
        let sum = c.take(&overflows);
        (sum, overflows.load(Ordering::Relaxed) == 1)
    }

    #[test]
    fn increments_accumulate_until_taken() {
        let c = CounterCell::default();
        c.increment(2);
        c.increment(3);
        assert_eq!(take(&c), (5, false));
        assert_eq!(take(&c), (0, false));
    }

    #[test]
    fn absolute_readings_become_deltas_and_a_lower_reading_is_a_reset() {
        let c = CounterCell::default();
        c.absolute(10);
        assert_eq!(take(&c), (10, false));
        c.absolute(15);
        c.absolute(15);
        assert_eq!(take(&c), (5, false));
        c.absolute(4); // the source restarted
        assert_eq!(take(&c), (4, false));
    }

    #[test]
    fn increments_and_absolute_readings_mix_without_losing_either() {
        let c = CounterCell::default();
        c.increment(1);
        c.absolute(7);
        c.increment(1);
        assert_eq!(take(&c), (9, false));
    }

    #[test]
    fn an_interval_whose_increments_overflow_is_taken_saturated_and_counted_once() {
        let c = CounterCell::default();
        c.increment(u64::MAX);
        c.increment(2); // would wrap to 1
        c.increment(u64::MAX); // wraps again: still one overflowed interval
        assert_eq!(take(&c), (u64::MAX, true));
        // The next interval starts afresh.
        assert_eq!(take(&c), (0, false));
        c.increment(3);
        assert_eq!(take(&c), (3, false));
    }

    #[test]
    fn a_sum_of_exactly_u64_max_is_not_an_overflow() {
        let c = CounterCell::default();
        c.increment(u64::MAX - 1);
        c.increment(1);
        c.increment(0);
        assert_eq!(take(&c), (u64::MAX, false));
        c.absolute(u64::MAX);
        assert_eq!(take(&c), (u64::MAX, false));
    }

    #[test]
    fn absolute_deltas_sum_with_saturation() {
        // Deltas 100, 50 (a reset counts in full), u64::MAX - 50, 0 (a reset to 0): they
        // sum past u64::MAX, which wrapped to 99 before.
        let c = CounterCell::default();
        for reading in [100, 50, u64::MAX, 0] {
            c.absolute(reading);
        }
        assert_eq!(take(&c), (u64::MAX, true));
        c.absolute(7); // up from 0
        assert_eq!(take(&c), (7, false));
    }

    #[test]
    fn an_overflowed_cell_is_not_idle_even_if_its_sum_wrapped_to_zero() {
        use super::super::Idle;
        let c = CounterCell::default();
        c.increment(u64::MAX);
        c.increment(1);
        assert!(!c.is_idle());
        assert_eq!(take(&c), (u64::MAX, true));
        assert!(c.is_idle());
    }

    #[test]
    fn concurrent_increments_that_overflow_are_taken_saturated_never_wrapped() {
        // 4 threads × 8 increments of 2^62: 2^67 in all, so the sum wraps many times.
        let c = Arc::new(CounterCell::default());
        let start = Arc::new(std::sync::Barrier::new(4));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (c, start) = (Arc::clone(&c), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    (0..8).for_each(|_| c.increment(1 << 62));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(take(&c), (u64::MAX, true));
    }

    #[test]
    fn concurrent_increments_and_takes_lose_nothing() {
        let c = Arc::new(CounterCell::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || (0..100_000).for_each(|_| c.increment(1)))
            })
            .collect();
        let mut taken = 0;
        while !threads.iter().all(std::thread::JoinHandle::is_finished) {
            taken += take(&c).0;
        }
        for t in threads {
            t.join().unwrap();
        }
        taken += take(&c).0;
        assert_eq!(taken, 400_000);
    }
}
