//! Expiry's list work: which identities to propose for removal, forgetting the cells the
//! registry removed, and folding entries together when a clash resolves (see
//! `SeriesSet::expire`).

use std::sync::Arc;
use std::time::Duration;

use super::list::List;
use super::tracked::{Kept, Stamp};
use crate::aggregate::cell_address;

/// Moves the cells of each entry `from` into entry `to`'s merged cells, for each
/// `(from, to)` of `moves` (ascending `from`), and removes the emptied entries. Returns how
/// many cells moved.
pub(super) fn move_into<C: Kept>(list: &mut List<C>, moves: &[(usize, usize)]) -> u64 {
    let mut cells_moved = 0;
    for &(from, to) in moves {
        let cells: Vec<Arc<C>> = list.cells(from).iter().cloned().collect();
        cells_moved += cells.len() as u64;
        list.cells_mut(to).merged.extend(cells);
        let (active, theirs) = (list.tracked(from).last_active, list.tracked(from).kept);
        let to = list.tracked_mut(to);
        to.last_active = to.last_active.max(active);
        C::fold(&mut to.kept, theirs);
    }
    let mut i = 0;
    list.retain(|_, _| {
        i += 1;
        moves.binary_search_by_key(&(i - 1), |m| m.0).is_err()
    });
    cells_moved
}

/// Appends the addresses of the cells of `list`'s expired identities to `out`, sorted.
pub(super) fn propose<C: Kept>(list: &List<C>, out: &mut Vec<usize>, now: Stamp, idle: Duration) {
    out.extend(
        list.iter()
            .filter(|(cells, t)| t.expired(cells, now, idle))
            .flat_map(|(cells, _)| cells.iter())
            .map(cell_address),
    );
    out.sort_unstable();
}

/// Forgets the cells the registry just removed; an identity whose first cell went is carried
/// on by a merged one, and one with no cell left goes. Whether entries moved in `list`.
pub(super) fn drop_removed<C: Kept>(list: &mut List<C>, removed: &mut [usize]) -> bool {
    if removed.is_empty() {
        return false;
    }
    removed.sort_unstable();
    let gone = |c: &Arc<C>| removed.binary_search(&cell_address(c)).is_ok();
    let before = list.len();
    list.retain(|cells, _| {
        cells.merged.retain(|c| !gone(c));
        if !gone(&cells.first) {
            return true;
        }
        match cells.merged.pop() {
            Some(next) => {
                cells.first = next;
                true
            }
            None => false,
        }
    });
    list.len() != before
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{CounterCell, GaugeCell};
    use crate::encode::Rendered;
    use crate::flush::tracked::{LastGauge, Stamp, track};

    fn list<C: Kept>(entries: &[&[&Arc<C>]]) -> List<C> {
        let mut list = List::default();
        for cells in entries {
            let t = track(Rendered::default(), Stamp::default(), false);
            list.push(Arc::clone(cells[0]), t);
            let at = list.len() - 1;
            let merged = cells[1..].iter().map(|c| Arc::clone(c));
            list.cells_mut(at).merged.extend(merged);
        }
        list
    }

    #[test]
    fn a_merged_cell_carries_an_identity_on_when_its_first_cell_is_removed() {
        let cells: Vec<Arc<CounterCell>> = (0..4).map(|_| Arc::default()).collect();
        let mut l = list(&[&[&cells[0], &cells[1]], &[&cells[2]], &[&cells[3]]]);
        for (at, total) in [10, 20, 30].into_iter().enumerate() {
            l.tracked_mut(at).kept = total;
        }
        // The registry removed the first cell of entry 0 and the only one of entry 1.
        let mut removed = vec![cell_address(&cells[2]), cell_address(&cells[0])];
        assert!(drop_removed(&mut l, &mut removed), "entry 1 went");
        assert_eq!(l.len(), 2);
        assert!(Arc::ptr_eq(&l.cells(0).first, &cells[1]) && l.cells(0).merged.is_empty());
        assert!(Arc::ptr_eq(&l.cells(1).first, &cells[3]));
        assert_eq!(
            (l.tracked(0).kept, l.tracked(1).kept),
            (10, 30),
            "each entry keeps its own state"
        );
        // Removing only merged cells moves no entry.
        let mut l = list(&[&[&cells[0], &cells[1], &cells[2]]]);
        let mut removed = vec![cell_address(&cells[1])];
        assert!(!drop_removed(&mut l, &mut removed));
        assert_eq!(l.cells(0).merged.len(), 1);
        assert!(Arc::ptr_eq(&l.cells(0).merged[0], &cells[2]));
    }

    #[test]
    fn folding_entries_together_keeps_every_cell_and_the_largest_gauge_to_resend() {
        let cells: Vec<Arc<GaugeCell>> = (0..4).map(|_| Arc::default()).collect();
        let mut l = list(&[&[&cells[0]], &[&cells[1], &cells[2]], &[&cells[3]]]);
        l.tracked_mut(0).kept = LastGauge(2.0);
        l.tracked_mut(1).kept = LastGauge(3.0);
        l.tracked_mut(2).kept = LastGauge(7.0);
        assert_eq!(move_into(&mut l, &[(1, 0)]), 2);
        assert_eq!(l.len(), 2);
        assert_eq!(l.cells(0).iter().count(), 3);
        assert!(Arc::ptr_eq(&l.cells(1).first, &cells[3]));
        assert_eq!(l.tracked(0).kept, LastGauge(3.0));
        assert_eq!(
            l.tracked(1).kept,
            LastGauge(7.0),
            "the entry after the removed one keeps its own state"
        );
    }
}
