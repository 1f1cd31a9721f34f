//! `SeriesSet`: the flusher's own list of every series, each with its wire form rendered once.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use metrics::Key;
use tokio::time::Instant;

use crate::aggregate::{
    Aggregate, AggregateStorage, ByKind, CounterCell, GaugeCell, HistogramCell, NewSeries,
    cell_address,
};
use crate::encode::{Rendered, SeriesKind, SlotCarry};
use crate::stats::add;

/// One series as the flusher tracks it.
#[derive(Debug)]
pub(crate) struct Tracked<C> {
    pub(crate) cell: Arc<C>,
    /// The series' constant wire parts, rendered once by the encoder.
    pub(crate) rendered: Rendered,
    /// Counters: the running total since the exporter started (for Graphite's total mode),
    /// saturated at `u64::MAX`.
    pub(crate) total: u64,
    /// Graphite: what this series already sent for the current carbon slot.
    pub(crate) carry: SlotCarry,
    /// When the series last had something to send (or was created).
    pub(crate) last_active: Instant,
}

impl<C> Tracked<C> {
    /// Whether the series may be retired: idle for `idle`, and held by nobody but the
    /// registry and us (a cheap pre-check; `Aggregate::retire` re-checks under the lock).
    fn expired(&self, now: Instant, idle: Duration) -> bool {
        now.saturating_duration_since(self.last_active) >= idle
            && Arc::strong_count(&self.cell) == 2
    }
}

impl Tracked<CounterCell> {
    /// Adds an interval's `delta` to the running total, saturating; when the total is what
    /// is sent (`sent`), each add that saturates adds 1 to `overflows`.
    pub(crate) fn add_to_total(&mut self, delta: u64, sent: bool, overflows: &AtomicU64) {
        self.total = self.total.checked_add(delta).unwrap_or_else(|| {
            add(overflows, u64::from(sent));
            u64::MAX
        });
    }
}

/// Every series the flusher knows, by kind. Owned by the flusher alone: no locks.
#[derive(Debug, Default)]
pub(crate) struct SeriesSet {
    pub(crate) counters: Vec<Tracked<CounterCell>>,
    pub(crate) gauges: Vec<Tracked<GaugeCell>>,
    pub(crate) histograms: Vec<Tracked<HistogramCell>>,
    /// Scratch lists for expiry, kept to avoid allocating in a flush.
    candidates: ByKind,
    removed: ByKind,
    /// When expiry next looks for idle series: a scan touches every series, so it runs a few
    /// times per idle timeout, not at every flush.
    next_scan: Option<Instant>,
}

impl SeriesSet {
    /// Moves series created since the last call into the set, rendering each with `render`
    /// (which leaves the name empty when nothing usable is left; such a series is never sent).
    pub(crate) fn absorb(
        &mut self,
        storage: &AggregateStorage,
        now: Instant,
        mut render: impl FnMut(SeriesKind, &Key, &mut Rendered),
    ) {
        while let Some(new) = storage.pop_new() {
            match new {
                NewSeries::Counter(key, cell) => {
                    self.counters.push(track(&key, cell, now, |k, r| {
                        render(SeriesKind::Counter, k, r);
                    }));
                }
                NewSeries::Gauge(key, cell) => {
                    self.gauges.push(track(&key, cell, now, |k, r| {
                        render(SeriesKind::Gauge, k, r);
                    }));
                }
                NewSeries::Histogram(key, cell) => {
                    self.histograms.push(track(&key, cell, now, |k, r| {
                        render(SeriesKind::Histogram, k, r);
                    }));
                }
            }
        }
    }

    /// Retires the series idle for at least `idle` that no handle holds, from the registry
    /// and from this set; with `keep_counters`, counters stay (their running total is
    /// state). Call it right after draining, so retired cells held nothing unsent. It scans
    /// at most every `idle / 4`, so a series goes between `idle` and `1.25 × idle` after its
    /// last update.
    pub(crate) fn expire(
        &mut self,
        aggregate: &Aggregate,
        now: Instant,
        idle: Duration,
        keep_counters: bool,
    ) {
        if self.next_scan.is_some_and(|at| now < at) {
            return;
        }
        self.next_scan = Some(now + idle / 4);
        let Self {
            counters,
            gauges,
            histograms,
            candidates,
            removed,
            ..
        } = self;
        candidates.clear();
        removed.clear();
        if !keep_counters {
            propose(counters, &mut candidates.counters, now, idle);
        }
        propose(gauges, &mut candidates.gauges, now, idle);
        propose(histograms, &mut candidates.histograms, now, idle);
        if candidates.is_empty() {
            return;
        }
        aggregate.retire(candidates, removed);
        drop_removed(counters, &mut removed.counters);
        drop_removed(gauges, &mut removed.gauges);
        drop_removed(histograms, &mut removed.histograms);
    }

    /// Number of series tracked.
    pub(crate) fn len(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.histograms.len()
    }
}

fn track<C>(
    key: &Key,
    cell: Arc<C>,
    now: Instant,
    render: impl FnOnce(&Key, &mut Rendered),
) -> Tracked<C> {
    let mut rendered = Rendered::default();
    render(key, &mut rendered);
    Tracked {
        cell,
        rendered,
        total: 0,
        carry: SlotCarry::default(),
        last_active: now,
    }
}

/// Appends the addresses of `list`'s expired series to `out`, sorted.
fn propose<C>(list: &[Tracked<C>], out: &mut Vec<usize>, now: Instant, idle: Duration) {
    out.extend(
        list.iter()
            .filter(|t| t.expired(now, idle))
            .map(|t| cell_address(&t.cell)),
    );
    out.sort_unstable();
}

/// Forgets the series whose cells the registry just removed.
fn drop_removed<C>(list: &mut Vec<Tracked<C>>, removed: &mut [usize]) {
    if removed.is_empty() {
        return;
    }
    removed.sort_unstable();
    list.retain(|t| removed.binary_search(&cell_address(&t.cell)).is_err());
}
