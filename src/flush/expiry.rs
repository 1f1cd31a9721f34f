//! Expiry's list work: which identities to propose for removal, forgetting the cells the
//! registry removed, and folding entries together when a clash resolves (see
//! `SeriesSet::expire`).

use std::sync::Arc;
use std::time::Duration;

use super::tracked::{Kept, Stamp, Tracked};
use crate::aggregate::cell_address;

/// Moves the cells of each entry `from` into entry `to`'s merged cells, for each
/// `(from, to)` of `moves` (ascending `from`), and removes the emptied entries. Returns how
/// many cells moved.
pub(super) fn move_into<C: Kept>(list: &mut Vec<Tracked<C>>, moves: &[(usize, usize)]) -> u64 {
    let mut cells_moved = 0;
    for &(from, to) in moves {
        let cells: Vec<Arc<C>> = list[from].cells().cloned().collect();
        cells_moved += cells.len() as u64;
        list[to].merged.extend(cells);
        list[to].last_active = list[to].last_active.max(list[from].last_active);
        let theirs = list[from].kept;
        C::fold(&mut list[to].kept, theirs);
    }
    let mut i = 0;
    list.retain(|_| {
        i += 1;
        moves.binary_search_by_key(&(i - 1), |m| m.0).is_err()
    });
    cells_moved
}

/// Appends the addresses of the cells of `list`'s expired identities to `out`, sorted.
pub(super) fn propose<C: Kept>(
    list: &[Tracked<C>],
    out: &mut Vec<usize>,
    now: Stamp,
    idle: Duration,
) {
    out.extend(
        list.iter()
            .filter(|t| t.expired(now, idle))
            .flat_map(Tracked::cells)
            .map(cell_address),
    );
    out.sort_unstable();
}

/// Forgets the cells the registry just removed; an identity whose first cell went is carried
/// on by a merged one, and one with no cell left goes. Whether entries moved in `list`.
pub(super) fn drop_removed<C: Kept>(list: &mut Vec<Tracked<C>>, removed: &mut [usize]) -> bool {
    if removed.is_empty() {
        return false;
    }
    removed.sort_unstable();
    let gone = |c: &Arc<C>| removed.binary_search(&cell_address(c)).is_ok();
    let before = list.len();
    list.retain_mut(|t| {
        t.merged.retain(|c| !gone(c));
        if !gone(&t.cell) {
            return true;
        }
        match t.merged.pop() {
            Some(next) => {
                t.cell = next;
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

    fn entry<C: Kept>(cells: &[&Arc<C>]) -> Tracked<C> {
        let mut t = track(
            Arc::clone(cells[0]),
            Rendered::default(),
            Stamp::default(),
            false,
        );
        t.merged.extend(cells[1..].iter().map(|c| Arc::clone(c)));
        t
    }

    #[test]
    fn a_merged_cell_carries_an_identity_on_when_its_first_cell_is_removed() {
        let cells: Vec<Arc<CounterCell>> = (0..4).map(|_| Arc::default()).collect();
        let mut list = vec![
            entry(&[&cells[0], &cells[1]]),
            entry(&[&cells[2]]),
            entry(&[&cells[3]]),
        ];
        // The registry removed the first cell of entry 0 and the only one of entry 1.
        let mut removed = vec![cell_address(&cells[2]), cell_address(&cells[0])];
        assert!(drop_removed(&mut list, &mut removed), "entry 1 went");
        assert_eq!(list.len(), 2);
        assert!(Arc::ptr_eq(&list[0].cell, &cells[1]) && list[0].merged.is_empty());
        assert!(Arc::ptr_eq(&list[1].cell, &cells[3]));
        // Removing only merged cells moves no entry.
        let mut list = vec![entry(&[&cells[0], &cells[1], &cells[2]])];
        let mut removed = vec![cell_address(&cells[1])];
        assert!(!drop_removed(&mut list, &mut removed));
        assert_eq!(list[0].merged.len(), 1);
        assert!(Arc::ptr_eq(&list[0].merged[0], &cells[2]));
    }

    #[test]
    fn folding_entries_together_keeps_every_cell_and_the_largest_gauge_to_resend() {
        let cells: Vec<Arc<GaugeCell>> = (0..4).map(|_| Arc::default()).collect();
        let mut list = vec![
            entry(&[&cells[0]]),
            entry(&[&cells[1], &cells[2]]),
            entry(&[&cells[3]]),
        ];
        list[0].kept = LastGauge(2.0);
        list[1].kept = LastGauge(3.0);
        assert_eq!(move_into(&mut list, &[(1, 0)]), 2);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].cells().count(), 3);
        assert!(Arc::ptr_eq(&list[1].cell, &cells[3]));
        assert_eq!(list[0].kept, LastGauge(3.0));
    }
}
