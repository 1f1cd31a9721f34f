//! [`Tracked`]: what the flusher keeps of one wire identity besides its cells (those are in
//! [`Cells`], walked apart: see [`List`](super::list::List)).

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::time::Instant;

use super::cells::Cells;
use crate::aggregate::{CounterCell, GaugeCell, HistogramCell, SetCell};
use crate::encode::{Rendered, SlotCarry};
use crate::stats::add;

/// One wire identity as the flusher tracks it, but for its cells. Kept small (issue 15): 56
/// bytes for a counter, since there is one per series; a flush reads it only for an
/// identity that has something to send (see [`List`](super::list::List) for when).
#[derive(Debug)]
pub(crate) struct Tracked<C: Kept> {
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

impl<C: Kept> Tracked<C> {
    /// Whether the identity may be retired: idle for `idle`, and each of its `cells` held by
    /// nobody but the registry and us (see [`Cells::unheld`]).
    pub(crate) fn expired(&self, cells: &Cells<C>, now: Stamp, idle: Duration) -> bool {
        u128::from(now.0.saturating_sub(self.last_active.0)) >= idle.as_nanos() && cells.unheld()
    }
}

impl Tracked<CounterCell> {
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

/// What is tracked of a new identity rendered as `rendered` (its capacity slack is given
/// back: it lives as long as the series); `graphite` gives it a slot carry.
pub(crate) fn track<C: Kept>(mut rendered: Rendered, now: Stamp, graphite: bool) -> Tracked<C> {
    rendered.shrink_to_fit();
    Tracked {
        rendered,
        carry: graphite.then(Box::default),
        last_active: now,
        kept: C::State::default(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn a_tracked_counter_is_at_most_56_bytes_its_cells_16_and_only_graphite_series_carry_a_slot() {
        // One per series: what was 168 bytes with the cells, then 96, then 72 (issue 15). The
        // walk over idle series reads only the cells.
        let sizes = [
            size_of::<Tracked<CounterCell>>(),
            size_of::<Tracked<HistogramCell>>(),
            size_of::<Cells<CounterCell>>(),
        ];
        assert!(
            sizes[0] <= 56 && sizes[1] <= 48 && sizes[2] <= 16,
            "{sizes:?}"
        );
        let statsd = track::<CounterCell>(Rendered::default(), Stamp::default(), false);
        assert!(statsd.carry.is_none());
        let graphite = track::<GaugeCell>(Rendered::default(), Stamp::default(), true);
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
        let cells = Cells::new(cell);
        let t = track::<CounterCell>(Rendered::default(), active, false);
        let idle = Duration::from_millis(1500);
        let mut at = |after: Duration| epoch.stamp(start + Duration::from_secs(7) + after);
        let almost = at(Duration::from_nanos(1_499_999_999));
        assert!(!t.expired(&cells, almost, idle));
        assert!(t.expired(&cells, at(idle), idle));
        drop(registry);
        assert!(
            !t.expired(&cells, at(idle), idle),
            "a cell nobody else holds is not the registry's"
        );
    }

    #[test]
    fn a_running_total_saturates_and_counts_the_overflow_only_when_it_is_sent() {
        let overflows = AtomicU64::new(0);
        let mut t = track::<CounterCell>(Rendered::default(), Stamp::default(), false);
        t.add_to_total(6, true, &overflows);
        t.add_to_total(0, true, &overflows);
        assert_eq!(t.kept, 6);
        t.add_to_total(u64::MAX, false, &overflows);
        assert_eq!(
            (t.kept, overflows.load(std::sync::atomic::Ordering::Relaxed)),
            (u64::MAX, 0)
        );
        t.add_to_total(1, true, &overflows);
        assert_eq!(
            (t.kept, overflows.load(std::sync::atomic::Ordering::Relaxed)),
            (u64::MAX, 1)
        );
    }
}
