//! Counter cell: the delta since the last flush, in one atomic.
//!
//! `increment` is a single relaxed `fetch_add`, and the flusher takes the delta with a single
//! `swap(0)`. Every increment lands either before or after that swap in the atomic's
//! modification order, so it is counted in exactly one flush: nothing is lost or doubled at a
//! flush boundary, whatever the number of threads.

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::CounterFn;

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct CounterCell {
    /// Sum of increments not yet flushed.
    pending: AtomicU64,
    /// Last value passed to `absolute` (the counter is taken to start at 0).
    last_absolute: AtomicU64,
}

impl CounterCell {
    /// Takes the delta accumulated since the previous call.
    pub(crate) fn take(&self) -> u64 {
        // Relaxed: the value is the only data; RMW atomicity alone makes the hand-off exact.
        self.pending.swap(0, Ordering::Relaxed)
    }
}

impl super::Idle for CounterCell {
    fn is_idle(&self) -> bool {
        self.pending.load(Ordering::Relaxed) == 0
    }
}

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        // Relaxed: see `take`.
        self.pending.fetch_add(value, Ordering::Relaxed);
    }

    /// Converts an absolute reading into a delta against the previous reading. The first
    /// reading counts in full (the counter started at 0 with the process), and a reading
    /// lower than the previous one is taken as a reset of the source, so it counts in full
    /// too. Concurrent `absolute` calls with out-of-order readings are not meaningful.
    fn absolute(&self, value: u64) {
        // Relaxed: `last_absolute` only orders against itself.
        let previous = self.last_absolute.swap(value, Ordering::Relaxed);
        let delta = if value >= previous {
            value - previous
        } else {
            value
        };
        if delta > 0 {
            self.pending.fetch_add(delta, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn increments_accumulate_until_taken() {
        let c = CounterCell::default();
        c.increment(2);
        c.increment(3);
        assert_eq!(c.take(), 5);
        assert_eq!(c.take(), 0);
    }

    #[test]
    fn absolute_readings_become_deltas_and_a_lower_reading_is_a_reset() {
        let c = CounterCell::default();
        c.absolute(10);
        assert_eq!(c.take(), 10);
        c.absolute(15);
        c.absolute(15);
        assert_eq!(c.take(), 5);
        c.absolute(4); // the source restarted
        assert_eq!(c.take(), 4);
    }

    #[test]
    fn increments_and_absolute_readings_mix_without_losing_either() {
        let c = CounterCell::default();
        c.increment(1);
        c.absolute(7);
        c.increment(1);
        assert_eq!(c.take(), 9);
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
            taken += c.take();
        }
        for t in threads {
            t.join().unwrap();
        }
        taken += c.take();
        assert_eq!(taken, 400_000);
    }
}
