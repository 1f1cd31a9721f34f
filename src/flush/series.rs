//! `SeriesSet`: the flusher's own list of what it sends, each entry one wire identity with
//! its form rendered once and the cells of every series that renders to it.
//!
//! Most entries hold one series. When several series render to the same name and tags (see
//! `identity`), the first one's entry also holds the others' cells ([`Tracked::merged`]), so
//! one line carries them all: counters summed, histogram samples merged, gauges by the rule in
//! [`Tracked::take_gauge`].

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use metrics::Key;
use tokio::time::Instant;

use super::identity::{Found, Identities, Owner};
use crate::aggregate::{
    Aggregate, AggregateStorage, ByKind, CounterCell, GaugeCell, HistogramCell, NewSeries,
    cell_address,
};
use crate::encode::{Encoder, Rendered, SeriesKind, SlotCarry};
use crate::stats::add;

/// One wire identity as the flusher tracks it.
#[derive(Debug)]
pub(crate) struct Tracked<C> {
    /// The cell of the first series seen with this identity.
    pub(crate) cell: Arc<C>,
    /// The cells of later series that render alike, merged into this one's line (usually
    /// none: an empty `Vec` does not allocate).
    pub(crate) merged: Vec<Arc<C>>,
    /// The constant wire parts, rendered once by the encoder. `rendered.clash` marks a
    /// series whose identity another kind owns: never sent.
    pub(crate) rendered: Rendered,
    /// Counters: the running total since the exporter started, saturated at `u64::MAX`
    /// (sent in Graphite's total mode; above 0 once the counter counted anything).
    pub(crate) total: u64,
    /// Graphite: what this identity already sent for the current carbon slot.
    pub(crate) carry: SlotCarry,
    /// When a cell last had something new (or the series was created).
    pub(crate) last_active: Instant,
    /// Gauges: the last value sent, re-sent while nothing new is set; NaN when there is
    /// nothing to re-send (never set, or last set to a value that cannot be sent).
    pub(crate) last_gauge: f64,
}

impl<C> Tracked<C> {
    /// Whether the identity may be retired: idle for `idle`, and each of its cells held by
    /// nobody but the registry and us (a cheap pre-check; `Aggregate::retire` re-checks each
    /// cell under the lock).
    fn expired(&self, now: Instant, idle: Duration) -> bool {
        now.saturating_duration_since(self.last_active) >= idle
            && self.cells().all(|c| Arc::strong_count(c) == 2)
    }

    /// Every cell sent under this identity.
    pub(crate) fn cells(&self) -> impl Iterator<Item = &Arc<C>> {
        std::iter::once(&self.cell).chain(&self.merged)
    }
}

impl Tracked<CounterCell> {
    /// Takes the interval's sum over every cell, saturated at `u64::MAX` (each cell's own
    /// overflow, and a sum over cells past it, add 1 to `overflows`).
    pub(crate) fn take_counter(&self, overflows: &AtomicU64) -> u64 {
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
        self.total = self.total.checked_add(delta).unwrap_or_else(|| {
            add(overflows, u64::from(sent));
            u64::MAX
        });
    }
}

impl Tracked<GaugeCell> {
    /// The value set this interval, if any cell was set. When several series that render
    /// alike were set in one interval, the largest value wins: their order is unknown, and
    /// the largest is the same whatever it was. A NaN loses to any number, so it wins only
    /// when every value set was NaN.
    pub(crate) fn take_gauge(&self) -> Option<f64> {
        self.cells()
            .filter_map(|c| c.take())
            .reduce(|a, b| if b > a || a.is_nan() { b } else { a })
    }
}

impl Tracked<HistogramCell> {
    /// Moves the interval's samples of every cell into `out` (appending), converted to the
    /// first cell's unit, and returns how many were recorded in all.
    pub(crate) fn drain_histogram(&self, out: &mut Vec<f64>) -> u64 {
        let unit = self.cell.unit();
        let mut recorded = self.cell.drain_into(out);
        for cell in &self.merged {
            let start = out.len();
            recorded = recorded.saturating_add(cell.drain_into(out));
            let theirs = cell.unit();
            if theirs != unit {
                for v in &mut out[start..] {
                    *v = theirs.convert(*v, unit);
                }
            }
        }
        recorded
    }
}

/// What [`SeriesSet::absorb`] found among the new series.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Absorbed {
    /// Series merged into an identity another series of their kind owns.
    pub(crate) merged: u64,
    /// Series not sent because another kind owns their identity.
    pub(crate) clashed: u64,
    /// Series whose name or tags were shortened for carbon.
    pub(crate) shortened: u64,
}

/// Every identity the flusher sends, by kind. Owned by the flusher alone: no locks.
#[derive(Debug, Default)]
pub(crate) struct SeriesSet {
    pub(crate) counters: Vec<Tracked<CounterCell>>,
    pub(crate) gauges: Vec<Tracked<GaugeCell>>,
    pub(crate) histograms: Vec<Tracked<HistogramCell>>,
    identities: Identities,
    /// Series (cells) tracked, merged ones included.
    cells: usize,
    /// Scratch lists for expiry, kept to avoid allocating in a flush.
    candidates: ByKind,
    removed: ByKind,
    /// When expiry next looks for idle series: a scan touches every series, so it runs a few
    /// times per idle timeout, not at every flush.
    next_scan: Option<Instant>,
    /// Set once a clash has been logged at warn.
    warned_clash: bool,
}

impl SeriesSet {
    /// Moves series created since the last call into the set: each is rendered once and
    /// joins the identity it renders to, or starts one (a series whose name has nothing usable
    /// left is kept on its own and never sent).
    pub(crate) fn absorb(
        &mut self,
        storage: &AggregateStorage,
        now: Instant,
        encoder: &Encoder,
    ) -> Absorbed {
        let mut absorbed = Absorbed::default();
        while let Some(new) = storage.pop_new() {
            self.cells += 1;
            let (kind, key) = match &new {
                NewSeries::Counter(key, _) => (SeriesKind::Counter, key),
                NewSeries::Gauge(key, _) => (SeriesKind::Gauge, key),
                NewSeries::Histogram(key, _) => (SeriesKind::Histogram, key),
            };
            let mut rendered = Rendered::default();
            encoder.render_series(kind, key, &mut rendered);
            absorbed.shortened += u64::from(rendered.shortened);
            let found = if rendered.sendable() {
                self.place(encoder, kind, &rendered)
            } else {
                Found::Unindexed
            };
            if let Found::Merge(owner) = found {
                absorbed.merged += 1;
                match new {
                    NewSeries::Counter(_, c) => self.counters[owner.at()].merged.push(c),
                    NewSeries::Gauge(_, c) => self.gauges[owner.at()].merged.push(c),
                    NewSeries::Histogram(_, c) => self.histograms[owner.at()].merged.push(c),
                }
                continue;
            }
            if let Found::Clash(owner) = found {
                absorbed.clashed += 1;
                rendered.clash = true;
                warn_clash(&mut self.warned_clash, key, kind, owner.kind, &rendered);
            }
            match new {
                NewSeries::Counter(_, c) => self.counters.push(track(c, rendered, now)),
                NewSeries::Gauge(_, c) => self.gauges.push(track(c, rendered, now)),
                NewSeries::Histogram(_, c) => self.histograms.push(track(c, rendered, now)),
            }
        }
        absorbed
    }

    /// Finds where a new series of `kind` rendered as `r` goes; when it starts an identity,
    /// indexes it at the end of its kind's list (where the caller pushes it).
    fn place(&mut self, encoder: &Encoder, kind: SeriesKind, r: &Rendered) -> Found {
        let hash = self.identities.hash(encoder, kind, r);
        let found = self
            .identities
            .find(hash, kind, r, |o| self.rendered(o))
            .or_else(|| self.summary_clash(encoder, kind, r));
        if found == Found::Free {
            let index = match kind {
                SeriesKind::Counter => self.counters.len(),
                SeriesKind::Gauge => self.gauges.len(),
                SeriesKind::Histogram => self.histograms.len(),
            };
            if let Ok(index) = u32::try_from(index) {
                let owner = Owner {
                    kind,
                    index,
                    class: hash.0,
                };
                self.identities.insert(hash.1, owner);
            }
        }
        found
    }

    /// Graphite: whether a new series would share a carbon path with a histogram's summary
    /// (a counter `x.count` and a histogram `x`, either way round); `Free` when not.
    fn summary_clash(&self, encoder: &Encoder, kind: SeriesKind, r: &Rendered) -> Found {
        let mut probe = Rendered {
            tail: r.tail.clone(),
            ..Rendered::default()
        };
        for suffix in encoder.summary_suffixes() {
            let probe_kind = if kind == SeriesKind::Histogram {
                probe.name.clear();
                probe.name.extend_from_slice(&r.name);
                probe.name.extend_from_slice(suffix);
                SeriesKind::Counter
            } else if let Some(base) = r.name.strip_suffix(suffix) {
                probe.name.clear();
                probe.name.extend_from_slice(base);
                SeriesKind::Histogram
            } else {
                continue;
            };
            let hash = self.identities.hash(encoder, probe_kind, &probe);
            let found = self
                .identities
                .find(hash, probe_kind, &probe, |o| self.rendered(o));
            // A counter probe matches a gauge too (one class): either is a clash.
            if let Found::Merge(owner) | Found::Clash(owner) = found {
                return Found::Clash(owner);
            }
        }
        Found::Free
    }

    fn rendered(&self, owner: Owner) -> &Rendered {
        match owner.kind {
            SeriesKind::Counter => &self.counters[owner.at()].rendered,
            SeriesKind::Gauge => &self.gauges[owner.at()].rendered,
            SeriesKind::Histogram => &self.histograms[owner.at()].rendered,
        }
    }

    /// Retires the identities idle for at least `idle` whose cells no handle holds, from the
    /// registry and from this set; with `keep_counters`, counters stay (their running total
    /// is state). Call it right after draining, so retired cells held nothing unsent. It
    /// scans at most every `idle / 4`, so a series goes between `idle` and `1.25 × idle`
    /// after its identity's last update.
    pub(crate) fn expire(
        &mut self,
        aggregate: &Aggregate,
        now: Instant,
        idle: Duration,
        keep_counters: bool,
        encoder: &Encoder,
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
        let gone = removed.len();
        let shifted = drop_removed(counters, &mut removed.counters)
            | drop_removed(gauges, &mut removed.gauges)
            | drop_removed(histograms, &mut removed.histograms);
        self.cells -= gone;
        if shifted {
            self.reindex(encoder);
        }
    }

    /// Rebuilds the identity index after entries moved in the lists.
    fn reindex(&mut self, encoder: &Encoder) {
        self.identities.clear();
        let Self {
            counters,
            gauges,
            histograms,
            identities,
            ..
        } = self;
        index(identities, encoder, SeriesKind::Counter, counters);
        index(identities, encoder, SeriesKind::Gauge, gauges);
        index(identities, encoder, SeriesKind::Histogram, histograms);
    }

    /// Number of series tracked (cells: a merged series counts on its own).
    pub(crate) fn len(&self) -> usize {
        self.cells
    }
}

impl Found {
    /// `self`, or what `other` finds when `self` is `Free`.
    fn or_else(self, other: impl FnOnce() -> Self) -> Self {
        if self == Self::Free { other() } else { self }
    }
}

fn track<C>(cell: Arc<C>, rendered: Rendered, now: Instant) -> Tracked<C> {
    Tracked {
        cell,
        merged: Vec::new(),
        rendered,
        total: 0,
        carry: SlotCarry::default(),
        last_active: now,
        last_gauge: f64::NAN,
    }
}

/// Indexes the sendable identities of `list` (each of kind `kind`).
fn index<C>(ids: &mut Identities, encoder: &Encoder, kind: SeriesKind, list: &[Tracked<C>]) {
    for (index, t) in list.iter().enumerate() {
        let Ok(index) = u32::try_from(index) else {
            return;
        };
        if t.rendered.sendable() && !t.rendered.clash {
            let (class, hash) = ids.hash(encoder, kind, &t.rendered);
            ids.insert(hash, Owner { kind, index, class });
        }
    }
}

/// Appends the addresses of the cells of `list`'s expired identities to `out`, sorted.
fn propose<C>(list: &[Tracked<C>], out: &mut Vec<usize>, now: Instant, idle: Duration) {
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
fn drop_removed<C>(list: &mut Vec<Tracked<C>>, removed: &mut [usize]) -> bool {
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

/// Logs a series that is not sent because another kind owns its identity: at warn for the
/// first one, so the logs are not flooded when many clash.
fn warn_clash(warned: &mut bool, key: &Key, kind: SeriesKind, owner: SeriesKind, r: &Rendered) {
    let name = String::from_utf8_lossy(&r.name);
    if std::mem::replace(warned, true) {
        tracing::debug!(metric = key.name(), wire = %name, ?kind, ?owner, "series not sent: another kind of series has the same wire name");
    } else {
        tracing::warn!(metric = key.name(), wire = %name, ?kind, ?owner, "series not sent: another kind of series has the same wire name, and the receiver would store both in one place (its values are counted in stats().values_dropped_collision; further cases are logged at debug)");
    }
}
