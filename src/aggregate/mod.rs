//! Aggregation: the atomic cells behind every `metrics` handle, and the registry that maps
//! keys to them.
//!
//! The recorder hands out `Arc`s to cells stored in a `metrics_util` [`Registry`]; recording
//! touches only the cell's atomics. When a series is created, its key and cell are also pushed
//! onto a lock-free queue; the flusher pops them into its own list and from then on walks that
//! list, so a flush never takes the registry's locks and never clones a key.
//!
//! Nothing here does I/O or reads a clock.

mod counter;
mod gauge;
mod histogram;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_queue::SegQueue;
use metrics::{Key, Unit};
use metrics_util::registry::{Registry, Storage};

pub(crate) use counter::CounterCell;
pub(crate) use gauge::GaugeCell;
pub(crate) use histogram::HistogramCell;

use crate::encode::SampleUnit;

/// A series the flusher has not seen yet.
#[derive(Debug)]
pub(crate) enum NewSeries {
    Counter(Key, Arc<CounterCell>),
    Gauge(Key, Arc<GaugeCell>),
    Histogram(Key, Arc<HistogramCell>),
}

/// The `Storage` behind our registry: creates cells and announces them to the flusher.
#[derive(Debug)]
pub(crate) struct AggregateStorage {
    new_series: SegQueue<NewSeries>,
    /// Units from `describe_histogram`, by metric name. Read when a histogram is created and
    /// written when one is described: never on the recording path.
    units: Mutex<HashMap<String, SampleUnit>>,
    default_unit: SampleUnit,
    histogram_capacity: usize,
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
}

impl Storage<Key> for AggregateStorage {
    type Counter = Arc<CounterCell>;
    type Gauge = Arc<GaugeCell>;
    type Histogram = Arc<HistogramCell>;

    fn counter(&self, key: &Key) -> Self::Counter {
        let cell = Arc::new(CounterCell::default());
        self.new_series
            .push(NewSeries::Counter(key.clone(), Arc::clone(&cell)));
        cell
    }

    fn gauge(&self, key: &Key) -> Self::Gauge {
        let cell = Arc::new(GaugeCell::default());
        self.new_series
            .push(NewSeries::Gauge(key.clone(), Arc::clone(&cell)));
        cell
    }

    fn histogram(&self, key: &Key) -> Self::Histogram {
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
    registry: Registry<Key, AggregateStorage>,
}

impl Aggregate {
    /// `default_unit` applies to histograms no `describe_histogram` call gave a unit;
    /// `histogram_capacity` bounds the samples each histogram keeps per interval.
    pub(crate) fn new(default_unit: SampleUnit, histogram_capacity: usize) -> Self {
        let storage = AggregateStorage {
            new_series: SegQueue::new(),
            units: Mutex::new(HashMap::new()),
            default_unit,
            histogram_capacity,
        };
        Self {
            registry: Registry::new(storage),
        }
    }

    pub(crate) fn registry(&self) -> &Registry<Key, AggregateStorage> {
        &self.registry
    }

    pub(crate) fn storage(&self) -> &AggregateStorage {
        self.registry.storage()
    }

    /// Records the unit of histogram `name`, for histograms created later and for those that
    /// already exist.
    pub(crate) fn describe_histogram_unit(&self, name: &str, unit: Unit) {
        let unit = SampleUnit::from_unit(unit);
        let storage = self.registry.storage();
        storage
            .units
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), unit);
        self.registry.visit_histograms(|key, cell| {
            if key.name() == name {
                cell.set_unit(unit);
            }
        });
    }
}
