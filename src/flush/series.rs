//! `SeriesSet`: the flusher's own list of what it sends, each entry one wire identity with
//! its form rendered once and the cells of every series that renders to it.
//!
//! Most entries hold one series. When several series render to the same name and tags (see
//! `identity`), the first one's entry also holds the others' cells ([`Cells::merged`]), so
//! one line carries them all: counters summed, histogram samples merged, gauges by the rule in
//! [`Cells::take_gauge`].
//!
//! [`Cells::merged`]: super::cells::Cells::merged
//! [`Cells::take_gauge`]: super::cells::Cells::take_gauge

use std::time::Duration;

use metrics::Key;
use tokio::time::Instant;

use super::expiry::{drop_removed, move_into, propose};
use super::identity::{Found, Identities, Owner};
use super::list::List;
use super::tracked::{Epoch, Kept, Stamp, track};
use crate::aggregate::{
    Aggregate, AggregateStorage, ByKind, CounterCell, GaugeCell, HistogramCell, NewSeries, SetCell,
};
use crate::encode::{Encoder, Rendered, SeriesKind};

/// What [`SeriesSet::absorb`] found among the new series.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Absorbed {
    /// Series merged into an identity another series of their kind owns.
    pub(crate) merged: u64,
    /// Series whose name or tags were shortened for carbon.
    pub(crate) shortened: u64,
}

/// Every identity the flusher sends, by kind. Owned by the flusher alone: no locks.
#[derive(Debug, Default)]
pub(crate) struct SeriesSet {
    pub(crate) counters: List<CounterCell>,
    pub(crate) gauges: List<GaugeCell>,
    pub(crate) histograms: List<HistogramCell>,
    pub(crate) sets: List<SetCell>,
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
    /// What the series' activity times count from.
    epoch: Epoch,
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
        let stamp = self.stamp(now);
        let before = [
            self.counters.len(),
            self.gauges.len(),
            self.histograms.len(),
            self.sets.len(),
        ];
        while let Some(new) = storage.pop_new() {
            self.cells += 1;
            let (kind, key) = match &new {
                NewSeries::Counter(key, _) => (SeriesKind::Counter, key),
                NewSeries::Gauge(key, _) => (SeriesKind::Gauge, key),
                NewSeries::Histogram(key, _) => (SeriesKind::Histogram, key),
                NewSeries::Set(key, _) => (SeriesKind::Set, key),
            };
            let mut rendered = Rendered::default();
            encoder.render_series(kind, key, &mut rendered);
            absorbed.shortened += u64::from(rendered.shortened);
            let found = if rendered.sendable() {
                self.place(encoder, kind, &rendered, self.len_of(kind))
            } else {
                Found::Unindexed
            };
            if let Found::Merge(owner) = found {
                absorbed.merged += 1;
                match new {
                    NewSeries::Counter(_, c) => self.counters.merge(owner.at(), c),
                    NewSeries::Gauge(_, c) => self.gauges.merge(owner.at(), c),
                    NewSeries::Histogram(_, c) => self.histograms.merge(owner.at(), c),
                    NewSeries::Set(_, c) => self.sets.merge(owner.at(), c),
                }
                continue;
            }
            if let Found::Clash(owner) = found {
                rendered.clash = true;
                warn_clash(&mut self.warned_clash, key, kind, owner.kind, &rendered);
            }
            let graphite = matches!(encoder, Encoder::Graphite(_));
            match new {
                NewSeries::Counter(_, c) => self.counters.push(c, track(rendered, stamp, graphite)),
                NewSeries::Gauge(_, c) => self.gauges.push(c, track(rendered, stamp, graphite)),
                NewSeries::Histogram(_, c) => {
                    self.histograms.push(c, track(rendered, stamp, graphite));
                }
                NewSeries::Set(_, c) => self.sets.push(c, track(rendered, stamp, graphite)),
            }
        }
        self.counters.fit(before[0]);
        self.gauges.fit(before[1]);
        self.histograms.fit(before[2]);
        self.sets.fit(before[3]);
        absorbed
    }

    /// `now` as a stamp for the series' activity times.
    pub(crate) fn stamp(&mut self, now: Instant) -> Stamp {
        self.epoch.stamp(now)
    }

    /// Finds where a series of `kind` rendered as `r` goes; when it starts an identity,
    /// indexes it as entry `index` of its kind's list (a new one's: the end, where the caller
    /// pushes it).
    fn place(&mut self, encoder: &Encoder, kind: SeriesKind, r: &Rendered, index: usize) -> Found {
        let hash = self.identities.hash(encoder, kind, r);
        let found = self
            .identities
            .find(hash, kind, r, |o| self.rendered(o))
            .or_else(|| self.summary_clash(encoder, kind, r));
        if found == Found::Free {
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

    /// Whether a new series would share a receiver's name with a histogram's summary (a
    /// counter `x.count` and a histogram `x`, either way round: Graphite's summaries, the
    /// Datadog Agent's for `|h` and `|ms`); `Free` when not.
    fn summary_clash(&self, encoder: &Encoder, kind: SeriesKind, r: &Rendered) -> Found {
        let histogram = kind == SeriesKind::Histogram;
        if histogram && !encoder.summarizes(r.histogram) {
            return Found::Free;
        }
        let mut probe = Rendered::default();
        for suffix in encoder.summary_suffixes() {
            probe.clear();
            let probe_kind = if histogram {
                probe.name_buf().extend_from_slice(r.name());
                probe.name_buf().extend_from_slice(suffix);
                SeriesKind::Counter
            } else if let Some(base) = r.name().strip_suffix(suffix) {
                probe.name_buf().extend_from_slice(base);
                SeriesKind::Histogram
            } else {
                continue;
            };
            probe.tail_buf().extend_from_slice(r.tail());
            let hash = self.identities.hash(encoder, probe_kind, &probe);
            let found = self
                .identities
                .find(hash, probe_kind, &probe, |o| self.rendered(o));
            let (Found::Merge(owner) | Found::Clash(owner)) = found else {
                continue;
            };
            // A histogram's summary meets a counter's or a gauge's name, or a counter's or
            // gauge's name meets a histogram's summary (a probe's class may hold both kinds:
            // DogStatsD; distributions have a class of their own there).
            if histogram != (owner.kind == SeriesKind::Histogram) {
                return Found::Clash(owner);
            }
        }
        Found::Free
    }

    fn len_of(&self, kind: SeriesKind) -> usize {
        match kind {
            SeriesKind::Counter => self.counters.len(),
            SeriesKind::Gauge => self.gauges.len(),
            SeriesKind::Histogram => self.histograms.len(),
            SeriesKind::Set => self.sets.len(),
        }
    }

    fn rendered(&self, owner: Owner) -> &Rendered {
        match owner.kind {
            SeriesKind::Counter => &self.counters.tracked(owner.at()).rendered,
            SeriesKind::Gauge => &self.gauges.tracked(owner.at()).rendered,
            SeriesKind::Histogram => &self.histograms.tracked(owner.at()).rendered,
            SeriesKind::Set => &self.sets.tracked(owner.at()).rendered,
        }
    }

    /// Retires the identities idle for at least `idle` whose cells no handle holds, from the
    /// registry and from this set; with `keep_counters`, counters stay (their running total
    /// is state). Call it right after draining, so retired cells held nothing unsent. It
    /// scans at most every `idle / 4`, so a series goes between `idle` and `1.25 × idle`
    /// after its identity's last update. Returns how many series were merged because the
    /// series of another kind that owned their name went (see `reindex`).
    pub(crate) fn expire(
        &mut self,
        aggregate: &Aggregate,
        now: Instant,
        idle: Duration,
        keep_counters: bool,
        encoder: &Encoder,
    ) -> u64 {
        if self.next_scan.is_some_and(|at| now < at) {
            return 0;
        }
        self.next_scan = Some(now + idle / 4);
        let now = self.stamp(now);
        let Self {
            counters,
            gauges,
            histograms,
            sets,
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
        propose(sets, &mut candidates.sets, now, idle);
        if candidates.is_empty() {
            return 0;
        }
        aggregate.retire(candidates, removed);
        let gone = removed.len();
        let shifted = drop_removed(counters, &mut removed.counters)
            | drop_removed(gauges, &mut removed.gauges)
            | drop_removed(histograms, &mut removed.histograms)
            | drop_removed(sets, &mut removed.sets);
        self.cells -= gone;
        if shifted { self.reindex(encoder) } else { 0 }
    }

    /// Rebuilds the identity index after entries moved in the lists. A series silenced by a
    /// clash is placed again, like a new one: once the series of the other kind that owned
    /// its name is gone, it owns the name (or merges into one of its kind that does).
    /// Returns how many series were merged so.
    fn reindex(&mut self, encoder: &Encoder) -> u64 {
        self.identities.clear();
        let Self {
            counters,
            gauges,
            histograms,
            sets,
            identities,
            ..
        } = self;
        index(identities, encoder, SeriesKind::Counter, counters);
        index(identities, encoder, SeriesKind::Gauge, gauges);
        index(identities, encoder, SeriesKind::Histogram, histograms);
        index(identities, encoder, SeriesKind::Set, sets);
        let mut merged = 0;
        for kind in [
            SeriesKind::Counter,
            SeriesKind::Gauge,
            SeriesKind::Histogram,
            SeriesKind::Set,
        ] {
            merged += self.replace_clashed(encoder, kind);
        }
        if merged > 0 {
            // Entries went: index again (what is left clashes or owns, so this ends).
            merged += self.reindex(encoder);
        }
        merged
    }

    /// Places each clashed entry of `kind` again; those that merge into an owner of their
    /// kind hand it their cells and go. How many series (cells) went so.
    fn replace_clashed(&mut self, encoder: &Encoder, kind: SeriesKind) -> u64 {
        let mut moves = Vec::new();
        for i in 0..self.len_of(kind) {
            let Ok(index) = u32::try_from(i) else { break };
            let here = Owner {
                kind,
                index,
                class: 0,
            };
            if !self.rendered(here).clash {
                continue;
            }
            let mut r = self.rendered(here).clone();
            r.clash = false;
            match self.place(encoder, kind, &r, i) {
                Found::Free => self.set_clash(here, false),
                Found::Merge(owner) => moves.push((i, owner.at())),
                Found::Clash(_) | Found::Unindexed => {}
            }
        }
        match kind {
            SeriesKind::Counter => move_into(&mut self.counters, &moves),
            SeriesKind::Gauge => move_into(&mut self.gauges, &moves),
            SeriesKind::Histogram => move_into(&mut self.histograms, &moves),
            SeriesKind::Set => move_into(&mut self.sets, &moves),
        }
    }

    fn set_clash(&mut self, at: Owner, clash: bool) {
        match at.kind {
            SeriesKind::Counter => self.counters.tracked_mut(at.at()).rendered.clash = clash,
            SeriesKind::Gauge => self.gauges.tracked_mut(at.at()).rendered.clash = clash,
            SeriesKind::Histogram => self.histograms.tracked_mut(at.at()).rendered.clash = clash,
            SeriesKind::Set => self.sets.tracked_mut(at.at()).rendered.clash = clash,
        }
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

/// Indexes the sendable identities of `list` (each of kind `kind`).
fn index<C: Kept>(ids: &mut Identities, encoder: &Encoder, kind: SeriesKind, list: &List<C>) {
    for (index, (_, t)) in list.iter().enumerate() {
        let Ok(index) = u32::try_from(index) else {
            return;
        };
        if t.rendered.sendable() && !t.rendered.clash {
            let (class, hash) = ids.hash(encoder, kind, &t.rendered);
            ids.insert(hash, Owner { kind, index, class });
        }
    }
}

/// Logs a series that is not sent because another kind owns its identity: at warn for the
/// first one, so the logs are not flooded when many clash.
fn warn_clash(warned: &mut bool, key: &Key, kind: SeriesKind, owner: SeriesKind, r: &Rendered) {
    let name = String::from_utf8_lossy(r.name());
    if std::mem::replace(warned, true) {
        tracing::debug!(metric = key.name(), wire = %name, ?kind, ?owner, "series not sent: another kind of series has the same wire name");
    } else {
        tracing::warn!(metric = key.name(), wire = %name, ?kind, ?owner, "series not sent: another kind of series has the same wire name, and the receiver would store both in one place (its values are counted in stats().values_dropped_collision; further cases are logged at debug)");
    }
}
