//! [`ExporterRecorder`]: the `metrics::Recorder` implementation. Registration goes to the
//! registry; recording goes straight to the cells' atomics.

use std::sync::Arc;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use tokio::sync::mpsc;

use crate::aggregate::{Aggregate, CounterCell, GaugeCell, HistogramCell};
use crate::flush::Command;

/// The recorder: install it globally with [`ExporterBuilder::install`](crate::ExporterBuilder::install),
/// or take it from [`ExporterBuilder::build`](crate::ExporterBuilder::build) to wrap it in
/// `metrics-util` layers first.
///
/// Every `register_*` returns a handle to an atomic cell: cache handles
/// (`let c = metrics::counter!("x");`) in hot loops to skip the registry lookup, though the
/// lookup itself is a read lock and a hash probe with no allocation once the series exists.
#[derive(Debug, Clone)]
pub struct ExporterRecorder {
    /// `None`: disabled ([`ExporterBuilder::with_enabled`](crate::ExporterBuilder::with_enabled)),
    /// every handle a no-op.
    aggregate: Option<Arc<Aggregate>>,
    /// Never sent on: while a recorder (or a handle) exists, the flusher's command channel
    /// stays open and the exporter keeps running, guard or no guard (see
    /// [`ExporterGuard`](crate::ExporterGuard)). `None` for a capture, which has no flusher
    /// task, and when disabled.
    _keepalive: Option<mpsc::UnboundedSender<Command>>,
}

impl ExporterRecorder {
    pub(crate) fn new(aggregate: Arc<Aggregate>) -> Self {
        Self {
            aggregate: Some(aggregate),
            _keepalive: None,
        }
    }

    /// The recorder of a running exporter: keeps its flusher's command channel open.
    pub(crate) fn keeping_alive(self, keepalive: mpsc::UnboundedSender<Command>) -> Self {
        Self {
            _keepalive: Some(keepalive),
            ..self
        }
    }

    /// A recorder that records nothing.
    pub(crate) fn disabled() -> Self {
        Self {
            aggregate: None,
            _keepalive: None,
        }
    }
}

impl Recorder for ExporterRecorder {
    fn describe_counter(&self, _key: KeyName, _unit: Option<Unit>, _description: SharedString) {}

    fn describe_gauge(&self, _key: KeyName, _unit: Option<Unit>, _description: SharedString) {}

    /// A time unit converts the histogram's samples to milliseconds for `|ms` timers.
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _description: SharedString) {
        if let (Some(aggregate), Some(unit)) = (&self.aggregate, unit) {
            aggregate.describe_histogram_unit(key.as_str(), unit);
        }
    }

    /// Past a series limit, the metric's overflow series; a no-op counter when that cannot
    /// be had either.
    fn register_counter(&self, key: &Key, _metadata: &Metadata<'_>) -> Counter {
        self.aggregate
            .as_ref()
            .and_then(|a| a.admit::<CounterCell>(key))
            .map_or_else(Counter::noop, Counter::from_arc)
    }

    /// Past a series limit, the metric's overflow series; a no-op gauge when that cannot be
    /// had either.
    fn register_gauge(&self, key: &Key, _metadata: &Metadata<'_>) -> Gauge {
        self.aggregate
            .as_ref()
            .and_then(|a| a.admit::<GaugeCell>(key))
            .map_or_else(Gauge::noop, Gauge::from_arc)
    }

    /// Past a series limit, the metric's overflow series; a no-op histogram when that cannot
    /// be had either.
    fn register_histogram(&self, key: &Key, _metadata: &Metadata<'_>) -> Histogram {
        self.aggregate
            .as_ref()
            .and_then(|a| a.admit::<HistogramCell>(key))
            .map_or_else(Histogram::noop, Histogram::from_arc)
    }
}
