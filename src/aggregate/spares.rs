//! [`Spares`]: cells made ahead, a batch at a time, so that series created one by one still
//! get cells that sit back to back in memory.
//!
//! Why (issue 15): every flush reads every series' cell, and for a series that recorded
//! nothing that read is all the flusher does, so an idle flush costs about one memory access
//! per cell. Cells allocated one at a time, at each series' creation, land wherever the heap
//! has room at that moment: between the key we store, the key clone we hand the flusher, the
//! caller's own `Key` and label strings, and whatever else the app allocates between two new
//! series. Spread so, each cell is a cache line of its own and often a page of its own, and
//! the hardware prefetcher cannot follow them. Made [`BATCH`] at a time in a tight loop, they
//! come out of the allocator one after another (glibc carves them from the same free run;
//! size-class allocators such as jemalloc and mimalloc from the same slab), and the flusher,
//! which walks series in creation order, walks them in address order.
//!
//! Each cell is still its own `Arc` (a `metrics` handle needs one: `Counter::from_arc`), so
//! the heap's own rules still apply; a batch only decides *when* they are allocated. The cost
//! is at most `BATCH - 1` unused cells of each kind (48 bytes each for counters and gauges)
//! and one lock, taken only to create a series, under its registry shard's write lock. A
//! spare is a fresh `C::default()`, handed out once: nothing can have recorded into it.

use std::sync::{Arc, Mutex, PoisonError};

/// Cells made at a time: 64 counter cells are 3 KiB, within one 4 KiB page when aligned.
pub(crate) const BATCH: usize = 64;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct Spares<C> {
    /// Cells not handed out yet, the next one last.
    cells: Mutex<Vec<Arc<C>>>,
}

impl<C> Default for Spares<C> {
    fn default() -> Self {
        Self {
            cells: Mutex::new(Vec::new()),
        }
    }
}

impl<C: Default> Spares<C> {
    /// A fresh cell: the next spare, after making a batch if there is none.
    pub(crate) fn take(&self) -> Arc<C> {
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cell) = cells.pop() {
            return cell;
        }
        // The vector first (kept from batch to batch), then the cells in one run.
        cells.reserve_exact(BATCH);
        cells.extend((0..BATCH).map(|_| Arc::new(C::default())));
        // Handed out from the end: lowest address first, in allocation order.
        cells.reverse();
        cells.pop().unwrap_or_default()
    }

    /// Spares left, for tests.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
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

    /// Pairs of consecutive cells at most `size` bytes apart, either way.
    fn adjacent_pairs(at: &[usize], size: usize) -> usize {
        at.windows(2)
            .filter(|w| w[0].abs_diff(w[1]) <= size)
            .count()
    }

    #[test]
    fn cells_taken_between_other_allocations_still_sit_back_to_back() {
        // An `Arc` of a counter or gauge cell is one 48-byte glibc block. Blocks the
        // allocator had free (its per-thread cache, other tests' frees) are handed out first,
        // in their own order: most pairs are still neighbours.
        let mut keep = Vec::new();
        let counters = Spares::<CounterCell>::default();
        let at = taken_between_allocations(&counters, BATCH, &mut keep);
        let pairs = adjacent_pairs(&at, 64);
        assert!(
            pairs >= BATCH / 2,
            "{pairs} of {} pairs adjacent: {at:x?}",
            BATCH - 1
        );
        let gauges = Spares::<GaugeCell>::default();
        let at = taken_between_allocations(&gauges, BATCH, &mut keep);
        let pairs = adjacent_pairs(&at, 64);
        assert!(pairs >= BATCH / 2, "gauges: {pairs} adjacent: {at:x?}");
    }

    #[test]
    fn a_batch_is_made_only_when_the_spares_run_out_and_every_cell_is_fresh_and_distinct() {
        let spares = Spares::<CounterCell>::default();
        let overflows = std::sync::atomic::AtomicU64::new(0);
        let mut seen = std::collections::HashSet::new();
        let mut kept = Vec::new();
        for i in 0..=BATCH * 2 {
            let cell = spares.take();
            assert_eq!(spares.len(), (BATCH * 3 - 1 - i) % BATCH, "after {i}");
            assert_eq!(cell.take(&overflows), 0, "a fresh cell");
            assert_eq!(Arc::strong_count(&cell), 1, "held by nobody else");
            assert!(seen.insert(Arc::as_ptr(&cell).addr()), "handed out twice");
            kept.push(cell);
        }
    }
}
