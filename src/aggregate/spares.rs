//! [`Spares`]: cells made ahead, a batch at a time, so that series created one by one still
//! get cells that sit back to back in memory.
//!
//! Why (issue 15): every flush reads every series' cell, and for a series that recorded
//! nothing that read is all the flusher does, so an idle flush costs about one memory access
//! per cell. Cells allocated one at a time, at each series' creation, land wherever the heap
//! has room at that moment: between the key we store, the key clone we hand the flusher, the
//! caller's own `Key` and label strings, and whatever else the app allocates between two new
//! series. Spread so, each cell is a cache line of its own and often a page of its own, and
//! the hardware prefetcher cannot follow them. Made a batch at a time in a tight loop, they
//! come out of the allocator one after another (glibc carves them from the same free run;
//! size-class allocators such as jemalloc and mimalloc from the same slab).
//!
//! They are handed out every other one: the even cells of a run in address order, then the
//! odd ones. Two cells side by side can share a cache line, and two series created one after
//! the other are often updated together by different threads (`ok` and `error`, a request's
//! count and its bytes), which would then contend for that line at every update (false
//! sharing: 29.8–32.6 ns an add from each of two threads on one line, against 6.3–7.7 ns two
//! cells apart, on the Intel Xeon of BENCHMARKS.md). With glibc on a 64-bit target a cell's
//! `Arc` is one 48-byte block, so every other cell is 96 bytes on. What the recording path
//! writes of a cell lies in its allocation's first 33 bytes (the `Arc`'s counts, then the
//! cell's fields, their order fixed by `repr(C)`: see `CounterCell` and `GaugeCell`), so the
//! spans of two cells 96 bytes apart are 63 bytes apart or more and never share a 64-byte
//! line. That holds for a fresh run on a CPU with 64-byte lines: blocks the allocator had
//! free are handed out first, where they lie, and a CPU that pairs lines (an adjacent-line
//! prefetcher, 128-byte lines) pairs some neighbours still. Cells side by side belong to
//! series created half a run apart.
//!
//! The flusher walks series in creation order, so it walks each run twice at a stride of 96
//! bytes, the second pass over lines the first brought in. That costs an idle flush 0–15%
//! over walking the run once (BENCHMARKS.md, session 15), the price of no false sharing.
//!
//! Batches double from [`FIRST_BATCH`] to [`LAST_BATCH`] cells: a long run lets the prefetcher
//! stream through many cells before the next run starts elsewhere (at 1M series, runs of 256
//! cells made an idle flush 17% cheaper than runs of 64; runs of 1024 were no cheaper than
//! 256), and an app with a few series makes only small ones.
//!
//! Each cell is still its own `Arc` (a `metrics` handle needs one: `Counter::from_arc`), so
//! the heap's own rules still apply; a batch only decides *when* they are allocated. The cost
//! is the unused cells of the last batch of each kind (48 bytes each for counters and gauges):
//! at most `LAST_BATCH - 1` (12 KiB), and at most 15 more than the cells handed out so far;
//! and one lock, taken only to create a series, under its registry shard's write lock. A
//! spare is a fresh `C::default()`, handed out once: nothing can have recorded into it.

use std::sync::{Arc, Mutex, PoisonError};

/// Cells in the first batch of each kind.
pub(crate) const FIRST_BATCH: usize = 16;

/// Cells in a batch at most: 256 counter cells are 12 KiB.
pub(crate) const LAST_BATCH: usize = 256;

/// See the module docs.
pub(crate) struct Spares<C> {
    cells: Mutex<Batch<C>>,
}

struct Batch<C> {
    /// Cells not handed out yet, the next one last.
    left: Vec<Arc<C>>,
    /// The size of the next batch.
    next: usize,
}

impl<C> Default for Spares<C> {
    fn default() -> Self {
        Self {
            cells: Mutex::new(Batch {
                left: Vec::new(),
                next: FIRST_BATCH,
            }),
        }
    }
}

/// The numbers only: a batch of cells says nothing more.
impl<C> std::fmt::Debug for Spares<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let batch = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Spares")
            .field("left", &batch.left.len())
            .field("next", &batch.next)
            .finish()
    }
}

impl<C: Default> Spares<C> {
    /// A fresh cell: the next spare, after making a batch if there is none.
    pub(crate) fn take(&self) -> Arc<C> {
        let mut batch = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        let Batch { left, next } = &mut *batch;
        if let Some(cell) = left.pop() {
            return cell;
        }
        // The vectors first (`left` is kept from batch to batch), then the cells in one run.
        let n = *next;
        *next = (n * 2).min(LAST_BATCH);
        left.reserve_exact(n);
        let run: Vec<Arc<C>> = (0..n).map(|_| Arc::new(C::default())).collect();
        // Handed out from the end: the even cells in allocation order, then the odd ones
        // (see the module docs).
        left.extend(run.iter().skip(1).step_by(2).rev().cloned());
        left.extend(run.iter().step_by(2).rev().cloned());
        drop(run);
        left.pop().unwrap_or_default()
    }

    /// Spares left, for tests.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .left
            .len()
    }
}

/// Tests: pairs of consecutive cell addresses in `at` that are `size` bytes apart, either
/// way.
#[cfg(test)]
pub(crate) fn pairs_apart(at: &[usize], size: usize) -> usize {
    at.windows(2)
        .filter(|w| w[0].abs_diff(w[1]) == size)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{CounterCell, GaugeCell};

    /// Addresses of `n` cells taken one at a time with an allocation of 200 bytes kept
    /// between each two, as an app that allocates between creating two series; the cells
    /// and the allocations are kept in `keep`, so that none is freed and reused meanwhile.
    fn taken_between_allocations<C: Default + Send + Sync + 'static>(
        spares: &Spares<C>,
        n: usize,
        keep: &mut Vec<Box<dyn std::any::Any>>,
    ) -> Vec<usize> {
        (0..n)
            .map(|i| {
                let cell = spares.take();
                let at = Arc::as_ptr(&cell).addr();
                keep.push(Box::new(cell));
                keep.push(Box::new(vec![i.to_le_bytes()[0]; 200]));
                at
            })
            .collect()
    }

    /// Pairs of consecutive cells whose written bytes (the allocation's first 33, which
    /// starts 16 bytes before the cell: the `Arc`'s two counts) share a 64-byte line.
    fn sharing_a_line(at: &[usize]) -> usize {
        let lines = |cell: usize| [(cell - 16) / 64, (cell - 16 + 32) / 64];
        at.windows(2)
            .filter(|w| lines(w[0]).iter().any(|l| lines(w[1]).contains(l)))
            .count()
    }

    #[test]
    #[cfg_attr(
        not(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64")),
        ignore = "the distances are glibc's 48-byte blocks on a 64-bit target"
    )]
    fn cells_taken_between_other_allocations_sit_two_apart_and_never_share_a_line() {
        // An `Arc` of a counter or gauge cell is one 48-byte glibc block, so every other cell
        // is 96 bytes on. Blocks the allocator had free (its per-thread cache, other tests'
        // frees) are handed out first, in their own order: most pairs are still two apart.
        // 240 cells: batches of 16, 32, 64 and 128.
        let mut keep = Vec::new();
        let counters = Spares::<CounterCell>::default();
        let at = taken_between_allocations(&counters, 240, &mut keep);
        let two_apart = pairs_apart(&at, 96);
        assert!(
            two_apart >= 120,
            "{two_apart} of 239 pairs two apart: {at:x?}"
        );
        assert!(sharing_a_line(&at) <= 4, "{at:x?}");
        let gauges = Spares::<GaugeCell>::default();
        let at = taken_between_allocations(&gauges, 240, &mut keep);
        let two_apart = pairs_apart(&at, 96);
        assert!(two_apart >= 120, "gauges: {two_apart} two apart: {at:x?}");
        assert!(sharing_a_line(&at) <= 4, "gauges: {at:x?}");
    }

    #[test]
    fn batches_double_up_to_the_largest_and_are_made_only_when_the_spares_run_out() {
        let spares = Spares::<CounterCell>::default();
        let overflows = std::sync::atomic::AtomicU64::new(0);
        let mut seen = std::collections::HashSet::new();
        let mut kept = Vec::new();
        // Spares left after each batch's first cell: 15, 31, 63, 127, then 255 for good.
        for size in [16, 32, 64, 128, 256, 256, 256] {
            for i in 0..size {
                let cell = spares.take();
                assert_eq!(spares.len(), size - 1 - i, "batch of {size}, cell {i}");
                assert_eq!(cell.take(&overflows), 0, "a fresh cell");
                assert_eq!(Arc::strong_count(&cell), 1, "held by nobody else");
                assert!(seen.insert(Arc::as_ptr(&cell).addr()), "handed out twice");
                kept.push(cell);
            }
        }
    }
}
