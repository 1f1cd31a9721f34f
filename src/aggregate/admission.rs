//! Admission: which new series get a cell of their own, which are sent to their metric's
//! overflow series, and which are refused.
//!
//! Two limits apply to *ordinary* series (every series but the overflow ones): at most
//! `per_metric` of one metric name and kind, and at most `max_series` in all. A new series
//! either limit refuses is redirected to the one overflow series of its metric name and kind,
//! the key `name{cardinality="overflow"}`, so what it records still adds up. Overflow series
//! count against neither limit: they have a bound of their own (`max_overflow`), and only when
//! that is exhausted too, and the metric has no overflow series yet, is a registration refused
//! (a no-op handle, counted in `series_dropped`).
//!
//! The counts live in one [`Census`] behind a read-write lock. A registration the registry
//! could not answer (a new series, or one being redirected) reads it; creating or retiring a
//! series writes it. Finding an existing series is the registry's read-locked probe alone, as
//! before. The lock is always taken either alone or inside a registry shard lock (the
//! registry's `get_or_create` creates a cell while holding one, and `retain` removes series
//! under one), never the other way round, so the two cannot deadlock.
//!
//! Checking room and creating the series are two steps, so threads creating distinct series of
//! one metric at the same instant can pass its limit (or the total) by at most their number;
//! threads registering the *same* new key create it once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLockReadGuard, RwLockWriteGuard};

use metrics::{Key, KeyName, Label};

use super::registry::{Registry, Table};
use super::stored::StoredKey;
use super::{
    Aggregate, AggregateStorage, CounterCell, GaugeCell, HistogramCell, NewSeries, SetCell,
};
use crate::stats::add;

/// The label that marks an overflow series. Plain ASCII letters in both parts, so every
/// sanitiser and tag style keeps it as is (`cardinality:overflow`, `;cardinality=overflow`,
/// and `name.overflow` when labels are folded into the name).
pub(crate) const OVERFLOW_LABEL: Label = Label::from_static_parts("cardinality", "overflow");
static OVERFLOW_LABELS: [Label; 1] = [OVERFLOW_LABEL];

/// The kinds of series, each with its own per-name counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
    Set,
}

/// The limits admission enforces. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Ordinary series in all.
    pub(crate) max_series: usize,
    /// Ordinary series of one metric name and kind.
    pub(crate) per_metric: usize,
    /// Overflow series in all (at most one per metric name and kind).
    pub(crate) max_overflow: usize,
}

impl Limits {
    /// `max_series` and `per_metric` as configured, and room for overflow series of 1% of
    /// `max_series` (at least one).
    pub(crate) fn new(max_series: usize, per_metric: usize) -> Self {
        Self {
            max_series,
            per_metric,
            max_overflow: (max_series / 100).max(1),
        }
    }
}

/// Live series, counted by kind and metric name. Changed only under the storage's write lock.
#[derive(Debug, Default)]
pub(crate) struct Census {
    /// Ordinary series by metric name, one map per [`Kind`]. A name leaves its map when its
    /// last series is retired, so the maps hold at most one entry per live series.
    by_name: [HashMap<KeyName, usize>; 4],
    /// Ordinary series in all.
    ordinary: usize,
    /// Overflow series in all.
    overflow: usize,
}

/// What a registration the registry could not answer gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// A series of its own.
    Own,
    /// Its metric's overflow series; `room`: one may be created if it does not exist.
    Overflow { room: bool },
}

impl Census {
    fn map(&self, kind: Kind) -> &HashMap<KeyName, usize> {
        &self.by_name[kind as usize]
    }

    /// Ordinary series of `name` and `kind`.
    pub(crate) fn of(&self, kind: Kind, name: &str) -> usize {
        self.map(kind).get(name).copied().unwrap_or(0)
    }

    /// Ordinary series in all, and overflow series in all.
    #[cfg(test)]
    pub(crate) fn totals(&self) -> (usize, usize) {
        (self.ordinary, self.overflow)
    }

    fn verdict(&self, kind: Kind, key: &Key, limits: &Limits) -> Verdict {
        if !is_overflow(key)
            && self.ordinary < limits.max_series
            && self.of(kind, key.name()) < limits.per_metric
        {
            Verdict::Own
        } else {
            Verdict::Overflow {
                room: self.overflow < limits.max_overflow,
            }
        }
    }

    /// Counts a series just created.
    pub(crate) fn add(&mut self, kind: Kind, key: &Key) {
        if is_overflow(key) {
            self.overflow += 1;
            return;
        }
        self.ordinary += 1;
        let map = &mut self.by_name[kind as usize];
        match map.get_mut(key.name()) {
            Some(n) => *n += 1,
            None => {
                map.insert(key.name_shared(), 1);
            }
        }
    }

    /// Forgets a series just retired: of metric `name`, an overflow series or not.
    pub(crate) fn remove(&mut self, kind: Kind, name: &str, overflow: bool) {
        if overflow {
            self.overflow = self.overflow.saturating_sub(1);
            return;
        }
        self.ordinary = self.ordinary.saturating_sub(1);
        let map = &mut self.by_name[kind as usize];
        if let Some(n) = map.get_mut(name) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(name);
            }
        }
    }
}

/// Whether `key` is an overflow series' key: exactly the overflow label. (An application that
/// records such a key itself shares the overflow series.)
pub(crate) fn is_overflow(key: &Key) -> bool {
    let mut labels = key.labels();
    labels.next() == Some(&OVERFLOW_LABEL) && labels.next().is_none()
}

/// As [`is_overflow`], for a key as the registry stores it.
pub(crate) fn is_overflow_stored(key: &StoredKey) -> bool {
    let mut labels = key.labels();
    let [label] = &OVERFLOW_LABELS;
    let overflow = (label.key().as_bytes(), label.value().as_bytes());
    labels.next() == Some(overflow) && labels.next().is_none()
}

/// The key of the overflow series of `key`'s metric: its name with the overflow label alone.
pub(crate) fn overflow_key(key: &Key) -> Key {
    Key::from_static_labels(key.name_shared(), &OVERFLOW_LABELS)
}

/// A kind of cell, with its registry table and how a new one is made.
pub(crate) trait Kinded: Sized {
    /// The kind of series.
    const KIND: Kind;
    /// The registry's table of this kind.
    fn table(registry: &Registry) -> &Table<Self>;
    /// A new series' cell, counted and announced to the flusher.
    fn create(storage: &AggregateStorage, key: &Key) -> Arc<Self>;
}

impl Kinded for CounterCell {
    const KIND: Kind = Kind::Counter;
    fn table(registry: &Registry) -> &Table<Self> {
        &registry.counters
    }
    fn create(storage: &AggregateStorage, key: &Key) -> Arc<Self> {
        storage.counter(key)
    }
}

impl Kinded for GaugeCell {
    const KIND: Kind = Kind::Gauge;
    fn table(registry: &Registry) -> &Table<Self> {
        &registry.gauges
    }
    fn create(storage: &AggregateStorage, key: &Key) -> Arc<Self> {
        storage.gauge(key)
    }
}

impl Kinded for HistogramCell {
    const KIND: Kind = Kind::Histogram;
    fn table(registry: &Registry) -> &Table<Self> {
        &registry.histograms
    }
    fn create(storage: &AggregateStorage, key: &Key) -> Arc<Self> {
        storage.histogram(key)
    }
}

impl AggregateStorage {
    /// The census, locked for a change. Never held while calling into the registry (see the
    /// module docs).
    pub(crate) fn census(&self) -> RwLockWriteGuard<'_, Census> {
        self.census.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The census, locked for reading: a redirected registration only reads it, so
    /// registrations during a storm do not queue behind one another.
    pub(crate) fn census_read(&self) -> RwLockReadGuard<'_, Census> {
        self.census.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Aggregate {
    /// The cell for `key`. An existing series is found by one read-locked registry probe, as
    /// ever. A new one gets a cell of its own while its metric and the total have room, and
    /// otherwise its metric's overflow series (counted in `series_overflowed`), or `None`
    /// (counted in `series_dropped`) when that does not exist and the overflow bound is
    /// exhausted. See the module docs.
    #[inline]
    pub(crate) fn admit<C: Kinded>(&self, key: &Key) -> Option<Arc<C>> {
        let table = C::table(&self.registry);
        if let Some(found) = table.get(key) {
            return Some(found);
        }
        self.admit_new(table, key)
    }

    /// The rest of [`admit`](Self::admit), for a key the registry did not have: out of line,
    /// so the lookup of an existing series stays short.
    #[inline(never)]
    fn admit_new<C: Kinded>(&self, table: &Table<C>, key: &Key) -> Option<Arc<C>> {
        let storage = self.storage();
        let create = |key: &Key| C::create(storage, key);
        let verdict = storage.census_read().verdict(C::KIND, key, &self.limits);
        let Verdict::Overflow { room } = verdict else {
            return Some(table.get_or_create(key, create));
        };
        let overflow = overflow_key(key);
        let cell = table
            .get(&overflow)
            .or_else(|| room.then(|| table.get_or_create(&overflow, create)));
        self.tally_redirect(key, cell.is_some());
        cell
    }

    /// As [`admit`](Self::admit), for a set (sets live in a map of their own, behind one
    /// lock: registering a set is never on a recording path). The census is locked inside
    /// the map's lock, as it is inside a registry shard lock for the other kinds.
    pub(crate) fn admit_set(&self, key: &Key) -> Option<Arc<SetCell>> {
        let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = sets.get(key) {
            return Some(Arc::clone(found));
        }
        let verdict = self
            .storage()
            .census_read()
            .verdict(Kind::Set, key, &self.limits);
        let Verdict::Overflow { room } = verdict else {
            return Some(self.create_set(&mut sets, key));
        };
        let overflow = overflow_key(key);
        let cell = match sets.get(&overflow) {
            Some(found) => Some(Arc::clone(found)),
            None => room.then(|| self.create_set(&mut sets, &overflow)),
        };
        self.tally_redirect(key, cell.is_some());
        cell
    }

    /// A new set series for `key`, counted and announced to the flusher.
    fn create_set(&self, sets: &mut HashMap<Key, Arc<SetCell>>, key: &Key) -> Arc<SetCell> {
        let storage = self.storage();
        storage.census().add(Kind::Set, key);
        let cell =
            Arc::new(SetCell::new(self.set_capacity).with_max_member_len(self.set_member_len));
        sets.insert(key.clone(), Arc::clone(&cell));
        storage
            .new_series
            .push(NewSeries::Set(key.clone(), Arc::clone(&cell)));
        cell
    }

    /// Counts (and logs once) a registration redirected to an overflow series (`found`) or
    /// refused.
    fn tally_redirect(&self, key: &Key, found: bool) {
        // Relaxed, both flags: each only keeps a warning to one line, and guards no data. The
        // load first: once warned, a storm's registrations only read the flag's cache line.
        if found {
            add(&self.stats.series_overflowed, 1);
            if !self.warned_overflow.load(Ordering::Relaxed)
                && !self.warned_overflow.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    max_series = self.limits.max_series,
                    max_series_per_metric = self.limits.per_metric,
                    metric = key.name(),
                    "metrics series limit reached; new series of this metric are recorded in its overflow series, labelled cardinality=overflow (counted in stats)"
                );
            }
        } else {
            add(&self.stats.series_dropped, 1);
            if !self.warned_dropped.load(Ordering::Relaxed)
                && !self.warned_dropped.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    max_series = self.limits.max_series,
                    max_overflow_series = self.limits.max_overflow,
                    metric = key.name(),
                    "metrics series limit reached and no room for another overflow series; new series are dropped (counted in stats)"
                );
            }
        }
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
mod tests;
