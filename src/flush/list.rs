//! [`List`]: the identities of one kind, their cells in one array and the rest of what is
//! tracked of them in another, index by index.
//!
//! Why two arrays (issue 15): a flush reads every identity's cells, and for an identity whose
//! cells had nothing, that is all it reads. In one array of whole entries (72 bytes for a
//! counter) the walk over idle series drew every entry's cache lines in for the 16 bytes it
//! needed; apart, it streams 16 bytes a series, and reads a [`Tracked`] for a counter or a
//! gauge only when it has something to send (a value, a zero on a tick, a running total, a
//! gauge re-sent), for sets always (their clash flag). Every change keeps the two arrays the
//! same length and in the same order: pushes, removals and the walk go through this type.

use std::sync::Arc;

use super::cells::Cells;
use super::tracked::{Kept, Tracked};

/// See the module docs.
#[derive(Debug)]
pub(crate) struct List<C: Kept> {
    cells: Vec<Cells<C>>,
    tracked: Vec<Tracked<C>>,
}

impl<C: Kept> Default for List<C> {
    fn default() -> Self {
        Self {
            cells: Vec::new(),
            tracked: Vec::new(),
        }
    }
}

impl<C: Kept> List<C> {
    /// Identities in the list.
    pub(crate) fn len(&self) -> usize {
        self.cells.len()
    }

    /// A new identity, last: `first`'s series, tracked as `tracked`.
    pub(crate) fn push(&mut self, first: Arc<C>, tracked: Tracked<C>) {
        self.cells.push(Cells::new(first));
        self.tracked.push(tracked);
    }

    /// The cells of identity `at` (an index the caller found in the list).
    pub(crate) fn cells(&self, at: usize) -> &Cells<C> {
        &self.cells[at]
    }

    /// See [`cells`](Self::cells).
    pub(crate) fn cells_mut(&mut self, at: usize) -> &mut Cells<C> {
        &mut self.cells[at]
    }

    /// Merges `cell`'s series into identity `at`: its values go out on that identity's line.
    pub(crate) fn merge(&mut self, at: usize, cell: Arc<C>) {
        self.cells[at].merged.extend([cell]);
    }

    /// What is tracked of identity `at` (an index the caller found in the list).
    pub(crate) fn tracked(&self, at: usize) -> &Tracked<C> {
        &self.tracked[at]
    }

    /// See [`tracked`](Self::tracked).
    pub(crate) fn tracked_mut(&mut self, at: usize) -> &mut Tracked<C> {
        &mut self.tracked[at]
    }

    /// Every identity, in order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&Cells<C>, &Tracked<C>)> {
        self.cells.iter().zip(&self.tracked)
    }

    /// Identities from `from` on, in order, what is tracked of them writable (the walk of a
    /// flush: see the module docs for when a [`Tracked`] is read).
    pub(crate) fn walk_from(
        &mut self,
        from: usize,
    ) -> impl ExactSizeIterator<Item = (&Cells<C>, &mut Tracked<C>)> {
        let cells = self.cells.get(from..).unwrap_or_default();
        let tracked = self.tracked.get_mut(from..).unwrap_or_default();
        cells.iter().zip(tracked)
    }

    /// Keeps the identities for which `keep` holds, in their order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&mut Cells<C>, &mut Tracked<C>) -> bool) {
        let mut kept = 0;
        for at in 0..self.cells.len() {
            if keep(&mut self.cells[at], &mut self.tracked[at]) {
                if kept != at {
                    self.cells.swap(kept, at);
                    self.tracked.swap(kept, at);
                }
                kept += 1;
            }
        }
        self.cells.truncate(kept);
        self.tracked.truncate(kept);
    }

    /// Gives back the growth slack of both arrays after a batch of new identities at least an
    /// eighth of the list came in at once (it held `before`), keeping a sixteenth of room: a
    /// storm of new series then costs its entries, not up to twice as many. Each such copy
    /// follows at least `len / 9` new entries, so the copying stays amortised O(1) per
    /// series; trickling series grow the list as usual.
    pub(crate) fn fit(&mut self, before: usize) {
        let len = self.len();
        let added = len - before;
        if added > 0 && added >= len / 8 {
            self.cells.shrink_to(len + len / 16);
            self.tracked.shrink_to(len + len / 16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::CounterCell;
    use crate::encode::Rendered;
    use crate::flush::tracked::{Stamp, track};

    /// A list of `n` counters, identity `i` with `kept == i`, and its cells.
    fn list(n: u64) -> (List<CounterCell>, Vec<Arc<CounterCell>>) {
        let mut list = List::default();
        let cells: Vec<Arc<CounterCell>> = (0..n).map(|_| Arc::default()).collect();
        for (i, cell) in (0..n).zip(&cells) {
            let mut t = track(Rendered::default(), Stamp::default(), false);
            t.kept = i;
            list.push(Arc::clone(cell), t);
        }
        (list, cells)
    }

    /// Each identity's (cell, kept), in order.
    fn pairs(list: &List<CounterCell>) -> Vec<(usize, u64)> {
        list.iter()
            .map(|(c, t)| (Arc::as_ptr(&c.first).addr(), t.kept))
            .collect()
    }

    #[test]
    fn removing_identities_keeps_each_ones_cells_beside_what_is_tracked_of_it_in_order() {
        let (mut l, cells) = list(10);
        let before = pairs(&l);
        l.retain(|_, t| t.kept % 3 != 1);
        let expected: Vec<_> = before.into_iter().filter(|p| p.1 % 3 != 1).collect();
        assert_eq!(pairs(&l), expected);
        assert_eq!(l.len(), 7);
        // The removed identities' cells were dropped: only the test holds them.
        for (i, cell) in cells.iter().enumerate() {
            assert_eq!(
                Arc::strong_count(cell),
                if i % 3 == 1 { 1 } else { 2 },
                "{i}"
            );
        }
    }

    #[test]
    fn a_merged_series_joins_the_cells_of_its_identity_and_no_other() {
        let (mut l, cells) = list(3);
        let other = Arc::new(CounterCell::default());
        l.merge(1, Arc::clone(&other));
        let merged: Vec<usize> = (0..3).map(|at| l.cells(at).merged.len()).collect();
        assert_eq!(merged, [0, 1, 0]);
        assert!(Arc::ptr_eq(&l.cells(1).merged[0], &other));
        assert!(
            Arc::ptr_eq(&l.cells(1).first, &cells[1]),
            "its first cell stays"
        );
    }

    #[test]
    fn a_walk_from_an_index_yields_the_rest_in_order_and_past_the_end_nothing() {
        let (mut l, _) = list(5);
        let all = pairs(&l);
        let mut rest = l.walk_from(2);
        assert_eq!(rest.len(), 3);
        let (c, t) = rest.next().unwrap();
        assert_eq!((Arc::as_ptr(&c.first).addr(), t.kept), all[2]);
        t.kept = 40;
        assert_eq!(rest.count(), 2);
        assert_eq!(l.tracked(2).kept, 40, "written through the walk");
        assert_eq!(l.walk_from(5).len(), 0);
        assert_eq!(l.walk_from(9).len(), 0);
    }

    #[test]
    fn a_storm_of_new_identities_leaves_little_slack_and_a_trickle_keeps_its_room() {
        let (mut l, _) = list(1100);
        assert!(l.cells.capacity() >= 2048, "grown by doubling");
        l.fit(0);
        let room = (l.cells.capacity(), l.tracked.capacity());
        assert!(room.0 <= 1168 && room.1 <= 1168, "{room:?}");
        let before = l.len();
        let cell = Arc::new(CounterCell::default());
        l.push(cell, track(Rendered::default(), Stamp::default(), false));
        l.fit(before);
        assert_eq!(
            (l.cells.capacity(), l.tracked.capacity()),
            room,
            "one more is a trickle"
        );
    }
}
