//! [`Cells`]: the cells of one wire identity (the first series seen with it and any merged
//! into it), and how their interval values merge into one.
//!
//! Kept apart from the rest of what the flusher tracks of an identity ([`Tracked`]): a flush
//! reads every identity's cells, and for an idle one that is all it reads, so the walk over
//! them reads 16 bytes a series where a whole entry is 72 (issue 15; see [`List`]).
//!
//! [`Tracked`]: super::tracked::Tracked
//! [`List`]: super::list::List

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crate::aggregate::{CounterCell, GaugeCell, HistogramCell};
use crate::encode::SampleUnit;
use crate::random::random_below;
use crate::stats::add;

/// The cells of one wire identity: 16 bytes, one null pointer for the merged ones when there
/// are none (the usual case).
#[derive(Debug)]
pub(crate) struct Cells<C> {
    /// The cell of the first series seen with this identity.
    pub(crate) first: Arc<C>,
    /// The cells of later series that render alike, merged into this one's line.
    pub(crate) merged: Merged<C>,
}

impl<C> Cells<C> {
    /// The cells of a new identity: `first` alone.
    pub(crate) fn new(first: Arc<C>) -> Self {
        Self {
            first,
            merged: Merged::default(),
        }
    }

    /// Every cell sent under this identity.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<C>> {
        std::iter::once(&self.first).chain(self.merged.iter())
    }

    /// Whether nobody but the registry and us holds any of the cells (a cheap pre-check for
    /// expiry; `Aggregate::retire` re-checks each cell under the lock).
    pub(crate) fn unheld(&self) -> bool {
        self.iter().all(|c| Arc::strong_count(c) == 2)
    }
}

impl Cells<CounterCell> {
    /// Takes the interval's sum over every cell, saturated at `u64::MAX` (each cell's own
    /// overflow, and a sum over cells past it, add 1 to `overflows`).
    pub(crate) fn take_counter(&self, overflows: &AtomicU64) -> u64 {
        if self.merged.is_empty() {
            return self.first.take(overflows);
        }
        self.iter().fold(0, |sum: u64, c| {
            sum.checked_add(c.take(overflows)).unwrap_or_else(|| {
                add(overflows, 1);
                u64::MAX
            })
        })
    }
}

impl Cells<GaugeCell> {
    /// The value set this interval, if any cell was set. When several series that render
    /// alike were set in one interval, the largest finite value wins: their order is
    /// unknown, and the largest is the same whatever it was. A value that cannot be sent (NaN,
    /// an infinity) wins only when no finite value was set.
    pub(crate) fn take_gauge(&self) -> Option<f64> {
        if self.merged.is_empty() {
            return self.first.take();
        }
        self.iter()
            .filter_map(|c| c.take())
            .reduce(|a, b| match (a.is_finite(), b.is_finite()) {
                (true, true) => a.max(b),
                (false, true) => b,
                (_, false) => a,
            })
    }
}

impl Cells<HistogramCell> {
    /// Moves the interval's samples of every cell into `out` (appending), converted to the
    /// first cell's unit, and returns how many were recorded in all. (If the first cell is
    /// retired while a merged one of another unit carries on, which only a registration
    /// racing expiry can cause, the identity goes on in the new first cell's unit.) When the
    /// cells kept different shares of what they recorded (one sampled, another not), each is
    /// thinned at random to the smallest share, so every kept sample stands for as many
    /// recorded ones and one `|@rate` (or Graphite's weighting) holds for all of them.
    /// `spans` is scratch space, kept by the caller so a warm flush allocates nothing.
    pub(crate) fn drain_histogram(&self, out: &mut Vec<f64>, spans: &mut Vec<(usize, u64)>) -> u64 {
        let start = out.len();
        let mut recorded = self.first.drain_into(out);
        if self.merged.is_empty() {
            return recorded;
        }
        let unit = self.first.unit();
        // Each cell's (end in `out`, recorded): kept ones are `out[previous end..end]`.
        spans.clear();
        spans.push((out.len(), recorded));
        for cell in self.merged.iter() {
            let from = out.len();
            let n = cell.drain_into(out);
            recorded = recorded.saturating_add(n);
            convert(&mut out[from..], cell.unit(), unit);
            spans.push((out.len(), n));
        }
        thin_to_common_rate(out, start, spans);
        recorded
    }
}

/// Converts samples recorded in `from` to `to`.
fn convert(samples: &mut [f64], from: SampleUnit, to: SampleUnit) {
    if from != to {
        for v in samples {
            *v = from.convert(*v, to);
        }
    }
}

/// Thins each cell's kept samples in `out[start..]` (cell `i` kept `out[spans[i-1].0..
/// spans[i].0]` of the `spans[i].1` it recorded) to the smallest kept share among them, by
/// uniform random choice, and compacts what is kept. Cells that kept everything keep
/// everything when none sampled.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "shares and counts of at most a few million samples"
)]
fn thin_to_common_rate(out: &mut Vec<f64>, start: usize, spans: &[(usize, u64)]) {
    let mut from = start;
    let mut share = 1.0_f64;
    for &(end, recorded) in spans {
        if recorded > 0 {
            share = share.min((end - from) as f64 / recorded as f64);
        }
        from = end;
    }
    if share >= 1.0 {
        return;
    }
    let (mut from, mut write) = (start, start);
    for &(end, recorded) in spans {
        let kept = end - from;
        let keep = ((recorded as f64 * share).round() as usize).min(kept);
        // A partial Fisher-Yates shuffle picks `keep` of the cell's samples uniformly.
        for i in 0..keep {
            let j = i + random_below((kept - i) as u64) as usize;
            out.swap(from + i, from + j);
        }
        out.copy_within(from..from + keep, write);
        write += keep;
        from = end;
    }
    out.truncate(write);
}

/// The cells merged into an identity: a null pointer when there are none (the usual case),
/// a boxed `Vec` otherwise.
#[derive(Debug)]
#[allow(
    clippy::box_collection,
    reason = "the box keeps the field one pointer wide: a Vec is three, on every series"
)]
pub(crate) struct Merged<C>(Option<Box<Vec<Arc<C>>>>);

impl<C> Default for Merged<C> {
    fn default() -> Self {
        Self(None)
    }
}

impl<C> Merged<C> {
    /// The merged cells, in the order they came.
    pub(crate) fn as_slice(&self) -> &[Arc<C>] {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Adds the cells of `cells`.
    pub(crate) fn extend(&mut self, cells: impl IntoIterator<Item = Arc<C>>) {
        self.0.get_or_insert_with(Box::default).extend(cells);
    }

    /// Keeps the cells for which `keep` holds.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Arc<C>) -> bool) {
        if let Some(cells) = &mut self.0 {
            cells.retain(keep);
            if cells.is_empty() {
                self.0 = None;
            }
        }
    }

    /// Removes and returns the last cell.
    pub(crate) fn pop(&mut self) -> Option<Arc<C>> {
        let cells = self.0.as_mut()?;
        let last = cells.pop();
        if cells.is_empty() {
            self.0 = None;
        }
        last
    }
}

impl<C> std::ops::Deref for Merged<C> {
    type Target = [Arc<C>];

    fn deref(&self) -> &[Arc<C>] {
        self.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_cells_come_and_go_leaving_no_box_behind() {
        let mut c = Cells::new(Arc::new(CounterCell::default()));
        let (a, b) = (
            Arc::new(CounterCell::default()),
            Arc::new(CounterCell::default()),
        );
        c.merged.extend([Arc::clone(&a), Arc::clone(&b)]);
        assert_eq!(c.iter().count(), 3);
        c.merged.retain(|x| !Arc::ptr_eq(x, &a));
        assert!(Arc::ptr_eq(&c.merged[0], &b));
        assert!(c.merged.pop().is_some_and(|x| Arc::ptr_eq(&x, &b)));
        assert!(c.merged.0.is_none() && c.merged.pop().is_none());
        c.merged.extend([a]);
        c.merged.retain(|_| false);
        assert!(c.merged.0.is_none());
    }

    #[test]
    fn a_counter_with_merged_cells_sums_them_and_one_without_takes_its_own() {
        let overflows = AtomicU64::new(0);
        let mut c = Cells::new(Arc::new(CounterCell::default()));
        metrics::CounterFn::increment(&*c.first, 2);
        assert_eq!(c.take_counter(&overflows), 2);
        assert_eq!(c.take_counter(&overflows), 0);
        let other = Arc::new(CounterCell::default());
        c.merged.extend([Arc::clone(&other)]);
        metrics::CounterFn::increment(&*other, 5);
        metrics::CounterFn::increment(&*c.first, 1);
        assert_eq!(c.take_counter(&overflows), 6);
    }
}
