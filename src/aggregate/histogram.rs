//! Histogram cell: a bounded, lock-free sample reservoir per flush interval.
//!
//! Memory is bounded by `capacity` samples per buffer (two buffers). Up to `capacity` samples
//! per interval are all kept; beyond that we keep a uniform random sample of `capacity` of
//! them (Vitter's Algorithm R) and report how many were recorded, so the encoder can send
//! `|@rate` and the server scales the count back.
//!
//! How the hand-off works without a lock:
//! - `state` packs the active buffer (bit 63) and the number of *tickets* handed out for it
//!   this interval (low 63 bits). `record` takes a ticket with one `fetch_add`, writes its
//!   slot in the buffer the ticket names, then bumps that buffer's `done` count.
//! - The flusher flips the active buffer with one `swap`, which also tells it how many tickets
//!   the old buffer got. It waits until `done` has caught up (a writer between its two
//!   atomics; this takes nanoseconds, and the wait is bounded) and reads the slots.
//! - Slots are allocated in chunks of `CHUNK` on first use, so an idle histogram costs a few
//!   hundred bytes, and a histogram that has seen its working size never allocates again.
//!   (While one thread allocates a chunk, another recording into the same new chunk waits for
//!   it: that happens at most once per chunk in a histogram's life.)

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use metrics::HistogramFn;

use crate::encode::SampleUnit;
use crate::random::random_below;

const CHUNK: usize = 64;
const ACTIVE_BIT: u64 = 1 << 63;
const TICKETS: u64 = ACTIVE_BIT - 1;
/// Upper bound on how long the flusher waits for writers that hold a ticket: this many
/// `yield_now` calls after a short spin. A writer preempted for longer than that (many
/// milliseconds, between two adjacent atomics) makes this interval read a stale value from
/// its slot; if it stays preempted until the buffer is active again two intervals later, its
/// late write can also replace one sample of that interval. Counts are never affected.
const MAX_WAIT_YIELDS: u32 = 10_000;

#[derive(Debug)]
struct Buffer {
    /// Writes completed into this buffer, cumulative over its lifetime.
    done: AtomicU64,
    /// Tickets the flusher has accounted for, cumulative; only the flusher writes it.
    expected: AtomicU64,
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
}

impl Buffer {
    fn new(capacity: usize) -> Self {
        let chunks = (0..capacity.div_ceil(CHUNK))
            .map(|_| OnceLock::new())
            .collect();
        Self {
            done: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            chunks,
        }
    }

    fn slot(&self, i: usize) -> Option<&AtomicU64> {
        let chunk = self.chunks.get(i / CHUNK)?;
        let chunk = chunk.get_or_init(|| (0..CHUNK).map(|_| AtomicU64::new(0)).collect());
        chunk.get(i % CHUNK)
    }

    fn existing_slot(&self, i: usize) -> Option<&AtomicU64> {
        self.chunks.get(i / CHUNK)?.get()?.get(i % CHUNK)
    }
}

/// See the module docs.
#[derive(Debug)]
pub(crate) struct HistogramCell {
    state: AtomicU64,
    buffers: [Buffer; 2],
    capacity: usize,
    unit: AtomicU8,
}

impl HistogramCell {
    /// A cell keeping at most `capacity` (at least 1) samples per interval.
    pub(crate) fn new(capacity: usize, unit: SampleUnit) -> Self {
        let capacity = capacity.max(1);
        Self {
            state: AtomicU64::new(0),
            buffers: [Buffer::new(capacity), Buffer::new(capacity)],
            capacity,
            unit: AtomicU8::new(encode_unit(unit)),
        }
    }

    pub(crate) fn unit(&self) -> SampleUnit {
        decode_unit(self.unit.load(Ordering::Relaxed))
    }

    pub(crate) fn set_unit(&self, unit: SampleUnit) {
        self.unit.store(encode_unit(unit), Ordering::Relaxed);
    }

    /// Tests: how many samples were recorded since the last drain, left in place.
    #[cfg(test)]
    pub(crate) fn peek_recorded(&self) -> u64 {
        self.state.load(Ordering::Relaxed) & TICKETS
    }

    /// Moves this interval's kept samples into `out` (appending) and returns how many samples
    /// were recorded in the interval (at least `out`'s growth; more when sampled).
    pub(crate) fn drain_into(&self, out: &mut Vec<f64>) -> u64 {
        // Only the flusher flips the active bit, so it cannot change between load and swap.
        let state = self.state.load(Ordering::Relaxed);
        // No ticket out: nothing to drain, so no flip (no locked instruction for an idle
        // histogram). A ticket taken after this load is counted in `state` and drained at the
        // next flush, as one taken just after the swap always was.
        if state & TICKETS == 0 {
            return 0;
        }
        let active = state & ACTIVE_BIT;
        // AcqRel: orders the flip against the writers' ticket fetch_adds.
        let previous = self.state.swap(active ^ ACTIVE_BIT, Ordering::AcqRel);
        let recorded = previous & TICKETS;
        let buffer = &self.buffers[usize::from(active != 0)];
        let target = buffer.expected.load(Ordering::Relaxed) + recorded;
        buffer.expected.store(target, Ordering::Relaxed);
        // Acquire pairs with the writers' Release on `done`: their slot writes are visible.
        let mut spins = 0;
        while buffer.done.load(Ordering::Acquire) < target && spins < MAX_WAIT_YIELDS {
            if spins < 64 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            spins += 1;
        }
        let kept = usize::try_from(recorded)
            .unwrap_or(usize::MAX)
            .min(self.capacity);
        out.extend(
            (0..kept)
                .filter_map(|i| buffer.existing_slot(i))
                .map(|s| f64::from_bits(s.load(Ordering::Relaxed))),
        );
        recorded
    }
}

impl super::Idle for HistogramCell {
    fn is_idle(&self) -> bool {
        self.state.load(Ordering::Relaxed) & TICKETS == 0
    }
}

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        // AcqRel: the ticket must name the buffer the flusher has not drained yet.
        let state = self.state.fetch_add(1, Ordering::AcqRel);
        let buffer = &self.buffers[usize::from(state & ACTIVE_BIT != 0)];
        let ticket = state & TICKETS;
        let slot = if ticket < self.capacity as u64 {
            Some(ticket)
        } else {
            // Algorithm R: keep the ticket-th sample with probability capacity / (ticket + 1).
            let j = random_below(ticket + 1);
            (j < self.capacity as u64).then_some(j)
        };
        if let Some(slot) = slot.and_then(|j| buffer.slot(usize::try_from(j).ok()?)) {
            // Relaxed: published by the Release on `done` below.
            slot.store(value.to_bits(), Ordering::Relaxed);
        }
        buffer.done.fetch_add(1, Ordering::Release);
    }
}

fn encode_unit(unit: SampleUnit) -> u8 {
    match unit {
        SampleUnit::Seconds => 0,
        SampleUnit::Milliseconds => 1,
        SampleUnit::Microseconds => 2,
        SampleUnit::Nanoseconds => 3,
        SampleUnit::Other => 4,
    }
}

fn decode_unit(code: u8) -> SampleUnit {
    match code {
        0 => SampleUnit::Seconds,
        1 => SampleUnit::Milliseconds,
        2 => SampleUnit::Microseconds,
        3 => SampleUnit::Nanoseconds,
        _ => SampleUnit::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn samples_below_the_capacity_are_all_kept_in_order() {
        let h = HistogramCell::new(100, SampleUnit::Seconds);
        for v in [1.0, 2.0, 3.0] {
            h.record(v);
        }
        let mut out = Vec::new();
        assert_eq!(h.drain_into(&mut out), 3);
        assert_eq!(out, vec![1.0, 2.0, 3.0]);
        out.clear();
        assert_eq!(h.drain_into(&mut out), 0);
        assert!(out.is_empty());
    }

    #[test]
    fn beyond_the_capacity_a_uniform_sample_is_kept_and_the_recorded_count_reported() {
        let h = HistogramCell::new(100, SampleUnit::Seconds);
        for v in 0..10_000 {
            h.record(f64::from(v));
        }
        let mut out = Vec::new();
        assert_eq!(h.drain_into(&mut out), 10_000);
        assert_eq!(out.len(), 100);
        // A uniform sample of 0..10000 has a mean near 5000; the first 100 would average 49.5.
        let mean = out.iter().sum::<f64>() / 100.0;
        assert!((3500.0..6500.0).contains(&mean), "mean {mean}");
    }

    #[test]
    fn alternating_buffers_keep_each_interval_separate() {
        let h = HistogramCell::new(4, SampleUnit::Seconds);
        let mut out = Vec::new();
        for round in 0..5 {
            h.record(f64::from(round));
            out.clear();
            assert_eq!(h.drain_into(&mut out), 1);
            assert_eq!(out, vec![f64::from(round)]);
        }
    }

    #[test]
    fn concurrent_records_are_each_counted_in_exactly_one_interval() {
        let h = Arc::new(HistogramCell::new(16, SampleUnit::Seconds));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let h = Arc::clone(&h);
                std::thread::spawn(move || (0..50_000).for_each(|_| h.record(1.0)))
            })
            .collect();
        let mut recorded = 0;
        let mut out = Vec::new();
        while !threads.iter().all(std::thread::JoinHandle::is_finished) {
            out.clear();
            recorded += h.drain_into(&mut out);
            assert!(out.iter().all(|v| v.to_bits() == 1f64.to_bits()));
        }
        for t in threads {
            t.join().unwrap();
        }
        recorded += h.drain_into(&mut out);
        assert_eq!(recorded, 200_000);
    }
}
