//! Aggregation: the atomic cells behind every `metrics` handle, and the registry that maps
//! keys to them.
//!
//! The recorder hands out `Arc`s to cells stored in our [`Registry`] (see `registry` for why
//! not `metrics-util`'s, and `stored` for how it keeps keys); recording touches only the
//! cell's atomics. A new counter's or gauge's cell comes from a batch made ahead (see
//! `spares`), so that cells sit back to back for the flusher. When a series is created, its
//! key and cell are also pushed onto a lock-free queue; the flusher pops them into its own
//! list and from then on walks that list, so a flush never takes the registry's locks and
//! never clones a key. Sets (see `set`), which the `metrics` registry has no kind for, live
//! in a map of their own behind one lock, taken to register or retire a set, never to
//! record.
//!
//! Two bounds keep memory in check:
//! - **Cardinality** (see [`admission`]): at most `max_series_per_metric` series of one
//!   metric and `max_series` in all. A new series past either goes to its metric's one
//!   overflow series (a bounded number of those exist), so totals stay exact; only when no
//!   overflow series can take it either does it get a no-op handle, counted. Existing series
//!   keep working.
//! - **Expiry**: the flusher asks [`Aggregate::retire`] to remove series it found idle. A
//!   series is removed only under the registry's write lock, only when nobody but the
//!   registry and the flusher holds its cell (no cached handle anywhere, no lookup in
//!   flight) and only when the cell has recorded nothing since it was drained. So no update
//!   can land in a removed cell: a later update registers a fresh series.
//!
//! Nothing here does I/O or reads a clock.

mod admission;
mod counter;
mod gauge;
mod histogram;
mod registry;
mod set;
mod spares;
mod stored;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crossbeam_queue::SegQueue;
use metrics::{Key, Unit};

pub(crate) use admission::{Kind, Limits};
use admission::{is_overflow, is_overflow_stored};
pub(crate) use counter::CounterCell;
pub(crate) use gauge::GaugeCell;
pub(crate) use histogram::HistogramCell;
pub(crate) use registry::Registry;
pub use set::SetHandle;
pub(crate) use set::{SetCell, distinct_members};

use spares::Spares;

use crate::encode::SampleUnit;
use crate::stats::{StatsCells, add};

/// Distinct members a set keeps per interval unless configured otherwise.
pub(crate) const DEFAULT_SET_CAPACITY: usize = 1024;

/// A cell that can tell it holds nothing the flusher has not taken.
pub(crate) trait Idle {
    /// True when nothing was recorded since the flusher last drained the cell.
    fn is_idle(&self) -> bool;
}

/// A series the flusher has not seen yet.
#[derive(Debug)]
pub(crate) enum NewSeries {
    Counter(Key, Arc<CounterCell>),
    Gauge(Key, Arc<GaugeCell>),
    Histogram(Key, Arc<HistogramCell>),
    Set(Key, Arc<SetCell>),
}

/// What creates the registry's cells and announces them to the flusher.
#[derive(Debug)]
pub(crate) struct AggregateStorage {
    new_series: SegQueue<NewSeries>,
    /// Counter cells made ahead, so that cells sit back to back (see `spares`).
    counter_cells: Spares<CounterCell>,
    /// The same for gauges. (Histogram and set cells are made one at a time: their size
    /// depends on settings, and they are few.)
    gauge_cells: Spares<GaugeCell>,
    /// Units from `describe_histogram`, by metric name. Read when a histogram is created and
    /// written when one is described: never on the recording path.
    units: Mutex<HashMap<String, SampleUnit>>,
    default_unit: SampleUnit,
    histogram_capacity: usize,
    /// Series in the registry, by kind and name: counted here when created, and by
    /// [`Aggregate::retire`] when removed.
    census: RwLock<admission::Census>,
}

impl AggregateStorage {
    fn unit_for(&self, name: &str) -> SampleUnit {
        let units = self.units.lock().unwrap_or_else(PoisonError::into_inner);
        units.get(name).copied().unwrap_or(self.default_unit)
    }

    /// Takes the next series created since the last call.
    pub(crate) fn pop_new(&self) -> Option<NewSeries> {
        self.new_series.pop()
    }

    /// A new counter series' cell (called under its registry shard's write lock).
    pub(crate) fn counter(&self, key: &Key) -> Arc<CounterCell> {
        self.census().add(Kind::Counter, key);
        let cell = self.counter_cells.take();
        self.new_series
            .push(NewSeries::Counter(key.clone(), Arc::clone(&cell)));
        cell
    }

    /// A new gauge series' cell (called under its registry shard's write lock).
    pub(crate) fn gauge(&self, key: &Key) -> Arc<GaugeCell> {
        self.census().add(Kind::Gauge, key);
        let cell = self.gauge_cells.take();
        self.new_series
            .push(NewSeries::Gauge(key.clone(), Arc::clone(&cell)));
        cell
    }

    /// A new histogram series' cell (called under its registry shard's write lock).
    pub(crate) fn histogram(&self, key: &Key) -> Arc<HistogramCell> {
        self.census().add(Kind::Histogram, key);
        let cell = Arc::new(HistogramCell::new(
            self.histogram_capacity,
            self.unit_for(key.name()),
        ));
        self.new_series
            .push(NewSeries::Histogram(key.clone(), Arc::clone(&cell)));
        cell
    }
}

/// The registry plus the little state the recorder needs besides it.
#[derive(Debug)]
pub(crate) struct Aggregate {
    registry: Registry,
    storage: AggregateStorage,
    limits: Limits,
    stats: Arc<StatsCells>,
    /// Set once a redirect to an overflow series has been logged.
    warned_overflow: AtomicBool,
    /// Set once a refused series has been logged.
    warned_dropped: AtomicBool,
    /// Set series, by key: the `metrics` registry knows only its three kinds. Locked to
    /// register a set and to retire one, never to record.
    sets: Mutex<HashMap<Key, Arc<SetCell>>>,
    /// Distinct members each set keeps per interval.
    set_capacity: usize,
    /// Longest set member kept, in bytes (the payload limit).
    set_member_len: usize,
}

impl Aggregate {
    /// `default_unit` applies to histograms no `describe_histogram` call gave a unit;
    /// `histogram_capacity` bounds the samples each histogram keeps per interval;
    /// `limits` bound the live series. Redirected and refused series are counted in `stats`.
    pub(crate) fn new(
        default_unit: SampleUnit,
        histogram_capacity: usize,
        limits: Limits,
        stats: Arc<StatsCells>,
    ) -> Self {
        let storage = AggregateStorage {
            new_series: SegQueue::new(),
            counter_cells: Spares::default(),
            gauge_cells: Spares::default(),
            units: Mutex::new(HashMap::new()),
            default_unit,
            histogram_capacity,
            census: RwLock::default(),
        };
        Self {
            registry: Registry::new(),
            storage,
            limits,
            stats,
            warned_overflow: AtomicBool::new(false),
            warned_dropped: AtomicBool::new(false),
            sets: Mutex::new(HashMap::new()),
            set_capacity: DEFAULT_SET_CAPACITY,
            set_member_len: usize::MAX,
        }
    }

    /// Each set keeps at most `members` distinct members per interval, each at most
    /// `member_len` bytes long.
    pub(crate) fn with_set_capacity(mut self, members: usize, member_len: usize) -> Self {
        self.set_capacity = members;
        self.set_member_len = member_len;
        self
    }

    /// Removes from the registry each series whose cell address is in `candidates` (sorted)
    /// and that is still idle and held by nobody but the registry and the flusher; the
    /// removed addresses go to `removed`. See the module docs for why this is race-free.
    /// Each removed series leaves the census, so its metric gets its room back.
    pub(crate) fn retire(&self, candidates: &Candidates, removed: &mut Removed) {
        let before = removed.len();
        let storage = self.storage();
        let registry = &self.registry;
        registry.counters.retain(stored_filter(retire_filter(
            storage,
            Kind::Counter,
            &candidates.counters,
            &mut removed.counters,
        )));
        registry.gauges.retain(stored_filter(retire_filter(
            storage,
            Kind::Gauge,
            &candidates.gauges,
            &mut removed.gauges,
        )));
        registry.histograms.retain(stored_filter(retire_filter(
            storage,
            Kind::Histogram,
            &candidates.histograms,
            &mut removed.histograms,
        )));
        {
            let mut sets = self.sets.lock().unwrap_or_else(PoisonError::into_inner);
            let mut keep = retire_filter(storage, Kind::Set, &candidates.sets, &mut removed.sets);
            sets.retain(|key, cell| keep(key.name(), is_overflow(key), cell));
        }
        let gone = removed.len() - before;
        add(&self.stats.series_expired, gone as u64);
    }

    #[cfg(test)]
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn storage(&self) -> &AggregateStorage {
        &self.storage
    }

    /// Records the unit of histogram `name`, for histograms created later and for those that
    /// already exist.
    pub(crate) fn describe_histogram_unit(&self, name: &str, unit: Unit) {
        let unit = SampleUnit::from_unit(unit);
        self.storage
            .units
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), unit);
        self.registry.histograms.visit(|key, cell| {
            if key.name() == name {
                cell.set_unit(unit);
            }
        });
    }
}

/// Cell addresses (sorted) the flusher proposes for removal, by kind.
pub(crate) type Candidates = ByKind;
/// Cell addresses removed from the registry, by kind.
pub(crate) type Removed = ByKind;

/// Cell addresses, by kind of series.
#[derive(Debug, Default)]
pub(crate) struct ByKind {
    pub(crate) counters: Vec<usize>,
    pub(crate) gauges: Vec<usize>,
    pub(crate) histograms: Vec<usize>,
    pub(crate) sets: Vec<usize>,
}

impl ByKind {
    pub(crate) fn len(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.histograms.len() + self.sets.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn clear(&mut self) {
        self.counters.clear();
        self.gauges.clear();
        self.histograms.clear();
        self.sets.clear();
    }
}

/// The address the flusher and the registry both know a cell by.
pub(crate) fn cell_address<C>(cell: &Arc<C>) -> usize {
    Arc::as_ptr(cell).addr()
}

/// [`retire_filter`] over the registry's keys.
fn stored_filter<C>(
    mut keep: impl FnMut(&str, bool, &Arc<C>) -> bool,
) -> impl FnMut(&stored::StoredKey, &Arc<C>) -> bool {
    move |key, cell| keep(key.name(), is_overflow_stored(key), cell)
}

/// The `retain` predicate of [`Aggregate::retire`]. It runs under the shard's write lock (the
/// sets' lock for sets), so no lookup can clone the cell meanwhile: a strong count of 2
/// (registry and flusher) means no handle exists anywhere, and an idle cell stays idle. Each
/// removed series leaves the census (locked inside the shard lock, as when a series is
/// created).
fn retire_filter<'a, C: Idle>(
    storage: &'a AggregateStorage,
    kind: Kind,
    candidates: &'a [usize],
    removed: &'a mut Vec<usize>,
) -> impl FnMut(&str, bool, &Arc<C>) -> bool + 'a {
    move |name, overflow, cell| {
        let address = cell_address(cell);
        let retire = candidates.binary_search(&address).is_ok()
            && Arc::strong_count(cell) == 2
            && cell.is_idle();
        if retire {
            removed.push(address);
            storage.census().remove(kind, name, overflow);
        }
        !retire
    }
}

#[cfg(test)]
mod tests {
    use metrics::{CounterFn, GaugeFn};

    use super::*;

    /// No overflow series, so the total alone refuses.
    fn aggregate(max_series: usize) -> (Aggregate, Arc<StatsCells>) {
        let stats = Arc::new(StatsCells::default());
        let limits = Limits {
            max_series,
            per_metric: max_series,
            max_overflow: 0,
        };
        let a = Aggregate::new(SampleUnit::Seconds, 16, limits, Arc::clone(&stats));
        (a, stats)
    }

    fn counter(a: &Aggregate, name: &'static str) -> Option<Arc<CounterCell>> {
        a.admit::<CounterCell>(&Key::from_static_name(name))
    }

    fn drain_new(a: &Aggregate) -> Vec<NewSeries> {
        std::iter::from_fn(|| a.storage().pop_new()).collect()
    }

    #[test]
    fn past_the_cap_with_no_overflow_room_new_series_are_refused_and_counted_but_existing_ones_work()
     {
        let (a, stats) = aggregate(2);
        let x = counter(&a, "x").unwrap();
        assert!(counter(&a, "y").is_some());
        assert!(counter(&a, "z").is_none(), "a third series is refused");
        assert!(counter(&a, "z").is_none());
        assert_eq!(stats.snapshot().series_dropped, 2);
        let again = counter(&a, "x").expect("an existing series is still found");
        assert!(Arc::ptr_eq(&x, &again));
        assert_eq!(
            drain_new(&a).len(),
            2,
            "refused series never reach the flusher"
        );
    }

    #[test]
    fn retiring_frees_room_and_skips_held_or_busy_cells() {
        let (a, stats) = aggregate(3);
        let held = counter(&a, "held").unwrap();
        drop(counter(&a, "idle"));
        drop(counter(&a, "busy"));
        // The flusher's own references, as `SeriesSet` keeps them.
        let tracked: Vec<(String, usize, NewSeries)> = drain_new(&a)
            .into_iter()
            .map(|n| match &n {
                NewSeries::Counter(k, c) => (k.name().to_owned(), cell_address(c), n),
                _ => unreachable!(),
            })
            .collect();
        a.registry()
            .counters
            .get(&Key::from_static_name("busy"))
            .unwrap()
            .increment(1);
        let mut candidates = ByKind {
            counters: tracked.iter().map(|t| t.1).collect(),
            ..ByKind::default()
        };
        candidates.counters.sort_unstable();
        let mut removed = ByKind::default();
        a.retire(&candidates, &mut removed);
        let idle = tracked.iter().find(|t| t.0 == "idle").unwrap().1;
        assert_eq!(
            removed.counters,
            [idle],
            "only the unheld, idle series goes"
        );
        assert_eq!(stats.snapshot().series_expired, 1);
        assert!(counter(&a, "new").is_some(), "its room is reused");
        assert!(counter(&a, "newer").is_none());
        held.increment(1);
    }

    #[test]
    fn an_expired_series_updated_again_is_created_afresh() {
        let (a, _) = aggregate(10);
        let key = Key::from_static_name("g");
        let g = || a.admit::<GaugeCell>(&key).unwrap();
        let first = cell_address(&g());
        let new = drain_new(&a);
        let mut candidates = ByKind::default();
        candidates.gauges.push(first);
        let mut removed = ByKind::default();
        a.retire(&candidates, &mut removed);
        assert_eq!(removed.gauges, [first]);
        drop(new);
        let fresh = g();
        fresh.set(3.0);
        assert_eq!(fresh.take(), Some(3.0));
        assert_eq!(drain_new(&a).len(), 1, "the flusher hears of it again");
    }

    #[test]
    #[cfg_attr(
        not(all(target_os = "linux", target_env = "gnu", target_pointer_width = "64")),
        ignore = "the distances are glibc's 48-byte blocks on a 64-bit target"
    )]
    fn series_created_one_by_one_among_other_allocations_get_cells_two_apart() {
        // Each key owns its label, as `counter!("c", "i" => i.to_string())` does: the
        // registry packs it, the flusher's queue gets a clone, and the caller allocates
        // between two series. The cells still come from one run, every other one (96 bytes
        // apart: see `spares`).
        let (a, _) = aggregate(1000);
        let mut keep = Vec::new();
        let two_apart = |cells: &[usize]| spares::pairs_apart(cells, 96);
        let cells: Vec<usize> = (0..spares::FIRST_BATCH * 4)
            .map(|i| {
                let key = Key::from_parts("c", vec![metrics::Label::new("i", i.to_string())]);
                let cell = a.admit::<CounterCell>(&key).unwrap();
                keep.push(vec![0u8; 200]);
                cell_address(&cell)
            })
            .collect();
        let near = two_apart(&cells);
        assert!(near >= spares::FIRST_BATCH * 2, "{near}: {cells:x?}");
        let gauges: Vec<usize> = (0..spares::FIRST_BATCH * 4)
            .map(|i| {
                let key = Key::from_parts("g", vec![metrics::Label::new("i", i.to_string())]);
                keep.push(vec![0u8; 200]);
                cell_address(&a.admit::<GaugeCell>(&key).unwrap())
            })
            .collect();
        let near = two_apart(&gauges);
        assert!(
            near >= spares::FIRST_BATCH * 2,
            "gauges: {near}: {gauges:x?}"
        );
        drop(drain_new(&a));
    }
}
