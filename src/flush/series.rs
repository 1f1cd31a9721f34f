//! `SeriesSet`: the flusher's own list of every series, each with its wire form rendered once.

use std::sync::Arc;

use metrics::Key;

use crate::aggregate::{AggregateStorage, CounterCell, GaugeCell, HistogramCell, NewSeries};
use crate::encode::{Rendered, SlotCarry};

/// One series as the flusher tracks it.
#[derive(Debug)]
pub(crate) struct Tracked<C> {
    pub(crate) cell: Arc<C>,
    /// The series' constant wire parts, rendered once by the encoder.
    pub(crate) rendered: Rendered,
    /// Counters: the running total since the exporter started (for Graphite's total mode).
    pub(crate) total: u64,
    /// Graphite: what this series already sent for the current carbon slot.
    pub(crate) carry: SlotCarry,
}

/// Every series the flusher knows, by kind. Owned by the flusher alone: no locks.
#[derive(Debug, Default)]
pub(crate) struct SeriesSet {
    pub(crate) counters: Vec<Tracked<CounterCell>>,
    pub(crate) gauges: Vec<Tracked<GaugeCell>>,
    pub(crate) histograms: Vec<Tracked<HistogramCell>>,
}

impl SeriesSet {
    /// Moves series created since the last call into the set, rendering each with `render`
    /// (which leaves the name empty when nothing usable is left; such a series is never sent).
    pub(crate) fn absorb(
        &mut self,
        storage: &AggregateStorage,
        mut render: impl FnMut(&Key, &mut Rendered),
    ) {
        while let Some(new) = storage.pop_new() {
            match new {
                NewSeries::Counter(key, cell) => self.counters.push(track(&key, cell, &mut render)),
                NewSeries::Gauge(key, cell) => self.gauges.push(track(&key, cell, &mut render)),
                NewSeries::Histogram(key, cell) => {
                    self.histograms.push(track(&key, cell, &mut render));
                }
            }
        }
    }

    /// Number of series tracked.
    pub(crate) fn len(&self) -> usize {
        self.counters.len() + self.gauges.len() + self.histograms.len()
    }
}

fn track<C>(key: &Key, cell: Arc<C>, render: &mut impl FnMut(&Key, &mut Rendered)) -> Tracked<C> {
    let mut rendered = Rendered::default();
    render(key, &mut rendered);
    Tracked {
        cell,
        rendered,
        total: 0,
        carry: SlotCarry::default(),
    }
}
