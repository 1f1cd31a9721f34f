//! [`Tracked`]: one wire identity as the flusher tracks it, with the cells of every series
//! that renders to it, and how their interval values merge into one.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::time::Instant;

use crate::aggregate::{CounterCell, GaugeCell, HistogramCell, SetCell};
use crate::encode::{Rendered, SampleUnit, SlotCarry};
use crate::random::random_below;
use crate::stats::add;

/// One wire identity as the flusher tracks it. Kept small (issue 15): 72 bytes for a
/// counter, since there is one per series and the flusher walks them all at every flush.
#[derive(Debug)]
pub(crate) struct Tracked<C: Kept> {
    /// The cell of the first series seen with this identity.
    pub(crate) cell: Arc<C>,
    /// The cells of later series that render alike, merged into this one's line (usually
    /// none, which costs one null pointer).
    pub(crate) merged: Merged<C>,
    /// The constant wire parts, rendered once by the encoder (without capacity slack). The
    /// flag `rendered.clash` marks a series whose identity another kind owns: never sent.
    pub(crate) rendered: Rendered,
    /// Graphite only: what this identity already sent for the current carbon slot (boxed,
    /// so StatsD and DogStatsD series pay one null pointer for it).
    pub(crate) carry: Option<Box<SlotCarry>>,
    /// When a cell last had something new (or the series was created).
    pub(crate) last_active: Stamp,
    /// What this kind keeps between flushes (see [`Kept`]).
    pub(crate) kept: C::State,
}

/// A time on the flusher's clock, as nanoseconds since its [`Epoch`]: 8 bytes where an
/// `Instant` takes 16 (584 years of range; a later time saturates).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Stamp(u64);

/// The instant [`Stamp`]s count from: the first one taken.
#[derive(Debug, Default)]
pub(crate) struct Epoch(Option<Instant>);

impl Epoch {
    /// `now` as a stamp; the first call sets the epoch. `now` never goes back (the flusher's
    /// `Instant::now()`), and one earlier than the epoch would stamp as 0.
    pub(crate) fn stamp(&mut self, now: Instant) -> Stamp {
        let epoch = *self.0.get_or_insert(now);
        let nanos = now.saturating_duration_since(epoch).as_nanos();
        Stamp(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// What the flusher keeps between flushes for one kind of cell, beyond what every kind keeps.
pub(crate) trait Kept {
    /// Counters: the running total since the exporter started, saturated at `u64::MAX`
    /// (sent in Graphite's total mode; above 0 once the counter counted anything). Gauges:
    /// the last value sent ([`LastGauge`]). Sets: whether the set ever had a member.
    /// Histograms: nothing.
    type State: std::fmt::Debug + Default + Copy;

    /// Folds `theirs`, of an identity merged into ours, into `ours` (see `expiry::move_into`).
    fn fold(ours: &mut Self::State, theirs: Self::State) {
        let _ = (ours, theirs);
    }
}

impl Kept for CounterCell {
    type State = u64;
}

impl Kept for HistogramCell {
    type State = ();
}

impl Kept for SetCell {
    type State = bool;
}

impl Kept for GaugeCell {
    type State = LastGauge;

    /// The merge rule for what is re-sent too: the largest finite value.
    fn fold(ours: &mut LastGauge, theirs: LastGauge) {
        if ours.0.is_nan() || theirs.0 > ours.0 {
            *ours = theirs;
        }
    }
}

/// A gauge's last value sent, re-sent while nothing new is set; NaN when there is nothing to
/// re-send (never set, or last set to a value that cannot be sent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LastGauge(pub(crate) f64);

impl Default for LastGauge {
    fn default() -> Self {
        Self(f64::NAN)
    }
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

impl<C: Kept> Tracked<C> {
    /// Whether the identity may be retired: idle for `idle`, and each of its cells held by
    /// nobody but the registry and us (a cheap pre-check; `Aggregate::retire` re-checks each
    /// cell under the lock).
    pub(crate) fn expired(&self, now: Stamp, idle: Duration) -> bool {
        u128::from(now.0.saturating_sub(self.last_active.0)) >= idle.as_nanos()
            && self.cells().all(|c| Arc::strong_count(c) == 2)
    }

    /// Every cell sent under this identity.
    pub(crate) fn cells(&self) -> impl Iterator<Item = &Arc<C>> {
        std::iter::once(&self.cell).chain(self.merged.iter())
    }
}

impl Tracked<CounterCell> {
    /// Takes the interval's sum over every cell, saturated at `u64::MAX` (each cell's own
    /// overflow, and a sum over cells past it, add 1 to `overflows`).
    pub(crate) fn take_counter(&self, overflows: &AtomicU64) -> u64 {
        if self.merged.is_empty() {
            return self.cell.take(overflows);
        }
        self.cells().fold(0, |sum: u64, c| {
            sum.checked_add(c.take(overflows)).unwrap_or_else(|| {
                add(overflows, 1);
                u64::MAX
            })
        })
    }

    /// Adds an interval's `delta` to the running total, saturating; when the total is what
    /// is sent (`sent`), each add that saturates adds 1 to `overflows`.
    pub(crate) fn add_to_total(&mut self, delta: u64, sent: bool, overflows: &AtomicU64) {
        if delta == 0 {
            return;
        }
        self.kept = self.kept.checked_add(delta).unwrap_or_else(|| {
            add(overflows, u64::from(sent));
            u64::MAX
        });
    }
}

impl Tracked<GaugeCell> {
    /// The value set this interval, if any cell was set. When several series that render
    /// alike were set in one interval, the largest finite value wins: their order is
    /// unknown, and the largest is the same whatever it was. A value that cannot be sent (NaN,
    /// an infinity) wins only when no finite value was set.
    pub(crate) fn take_gauge(&self) -> Option<f64> {
        if self.merged.is_empty() {
            return self.cell.take();
        }
        self.cells()
            .filter_map(|c| c.take())
            .reduce(|a, b| match (a.is_finite(), b.is_finite()) {
                (true, true) => a.max(b),
                (false, true) => b,
                (_, false) => a,
            })
    }
}

impl Tracked<HistogramCell> {
    /// Moves the interval's samples of every cell into `out` (appending), converted to the
    /// first cell's unit, and returns how many were recorded in all. (If the first cell is
    /// retired while a merged one of another unit carries on, which only a registration
    /// racing expiry can cause, the identity goes on in the new first cell's unit.) When the cells kept different shares of what they
    /// recorded (one sampled, another not), each is thinned at random to the smallest share,
    /// so every kept sample stands for as many recorded ones and one `|@rate` (or Graphite's
    /// weighting) holds for all of them.
    /// `spans` is scratch space, kept by the caller so a warm flush allocates nothing.
    pub(crate) fn drain_histogram(&self, out: &mut Vec<f64>, spans: &mut Vec<(usize, u64)>) -> u64 {
        let start = out.len();
        let mut recorded = self.cell.drain_into(out);
        if self.merged.is_empty() {
            return recorded;
        }
        let unit = self.cell.unit();
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

/// A new identity for `cell`, rendered as `rendered` (its capacity slack is given back: it
/// lives as long as the series); `graphite` gives it a slot carry.
pub(crate) fn track<C: Kept>(
    cell: Arc<C>,
    mut rendered: Rendered,
    now: Stamp,
    graphite: bool,
) -> Tracked<C> {
    rendered.shrink_to_fit();
    Tracked {
        cell,
        merged: Merged::default(),
        rendered,
        carry: graphite.then(Box::default),
        last_active: now,
        kept: C::State::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tracked_counter_is_at_most_72_bytes_and_only_graphite_series_carry_a_slot() {
        // One per series, walked at every flush: what was 168 bytes, then 96 (issue 15).
        assert!(
            size_of::<Tracked<CounterCell>>() <= 72,
            "{}",
            size_of::<Tracked<CounterCell>>()
        );
        assert!(
            size_of::<Tracked<HistogramCell>>() <= 64,
            "{}",
            size_of::<Tracked<HistogramCell>>()
        );
        let statsd = track(
            Arc::new(CounterCell::default()),
            Rendered::default(),
            Stamp::default(),
            false,
        );
        assert!(statsd.carry.is_none() && statsd.merged.is_empty());
        let graphite = track(
            Arc::new(GaugeCell::default()),
            Rendered::default(),
            Stamp::default(),
            true,
        );
        assert!(graphite.carry.is_some());
        assert!(
            graphite.kept.0.is_nan(),
            "a new gauge has nothing to re-send"
        );
    }

    #[test]
    fn an_identity_expires_once_idle_for_the_timeout_counted_from_its_last_stamp() {
        let mut epoch = Epoch::default();
        let start = Instant::now();
        assert_eq!(
            epoch.stamp(start + Duration::from_secs(5)),
            Stamp(0),
            "the first stamp is 0"
        );
        let active = epoch.stamp(start + Duration::from_secs(7));
        assert_eq!(active, Stamp(2_000_000_000));
        let cell = Arc::new(CounterCell::default());
        let registry = Arc::clone(&cell); // the registry's reference
        let t = track(cell, Rendered::default(), active, false);
        let idle = Duration::from_millis(1500);
        let mut at = |after: Duration| epoch.stamp(start + Duration::from_secs(7) + after);
        let almost = at(Duration::from_nanos(1_499_999_999));
        assert!(!t.expired(almost, idle));
        assert!(t.expired(at(idle), idle));
        drop(registry);
        assert!(
            !t.expired(at(idle), idle),
            "a cell nobody else holds is not the registry's"
        );
    }

    #[test]
    fn merged_cells_come_and_go_leaving_no_box_behind() {
        let mut t = track(
            Arc::new(CounterCell::default()),
            Rendered::default(),
            Stamp::default(),
            false,
        );
        let (a, b) = (
            Arc::new(CounterCell::default()),
            Arc::new(CounterCell::default()),
        );
        t.merged.extend([Arc::clone(&a), Arc::clone(&b)]);
        assert_eq!(t.cells().count(), 3);
        t.merged.retain(|c| !Arc::ptr_eq(c, &a));
        assert!(Arc::ptr_eq(&t.merged[0], &b));
        assert!(t.merged.pop().is_some_and(|c| Arc::ptr_eq(&c, &b)));
        assert!(t.merged.0.is_none() && t.merged.pop().is_none());
        t.merged.extend([a]);
        t.merged.retain(|_| false);
        assert!(t.merged.0.is_none());
    }

    #[test]
    fn a_counter_with_merged_cells_sums_them_and_one_without_takes_its_own() {
        let overflows = AtomicU64::new(0);
        let mut t = track(
            Arc::new(CounterCell::default()),
            Rendered::default(),
            Stamp::default(),
            false,
        );
        metrics::CounterFn::increment(&*t.cell, 2);
        assert_eq!(t.take_counter(&overflows), 2);
        assert_eq!(t.take_counter(&overflows), 0);
        let other = Arc::new(CounterCell::default());
        t.merged.extend([Arc::clone(&other)]);
        metrics::CounterFn::increment(&*other, 5);
        metrics::CounterFn::increment(&*t.cell, 1);
        assert_eq!(t.take_counter(&overflows), 6);
        t.add_to_total(6, true, &overflows);
        t.add_to_total(0, true, &overflows);
        assert_eq!(t.kept, 6);
    }
}
