//! `SeriesSet`: the flusher's own list of every series, with names rendered once.

use std::sync::Arc;

use metrics::Key;

use super::{AggregateStorage, CounterCell, GaugeCell, HistogramCell, NewSeries};

/// One series as the flusher tracks it.
#[derive(Debug)]
pub(crate) struct Tracked<C> {
    pub(crate) cell: Arc<C>,
    /// The wire name, rendered once by the encoder; empty when the name is unusable.
    pub(crate) name: Vec<u8>,
}

impl<C> Tracked<C> {
    /// Whether the series has a usable name (an unusable one is counted and never sent).
    pub(crate) fn sendable(&self) -> bool {
        !self.name.is_empty()
    }
}

/// Every series the flusher knows, by kind. Owned by the flusher alone: no locks.
#[derive(Debug, Default)]
pub(crate) struct SeriesSet {
    pub(crate) counters: Vec<Tracked<CounterCell>>,
    pub(crate) gauges: Vec<Tracked<GaugeCell>>,
    pub(crate) histograms: Vec<Tracked<HistogramCell>>,
}

impl SeriesSet {
    /// Moves series created since the last call into the set, rendering each name with
    /// `render` (which returns `false` for a name with nothing usable left).
    pub(crate) fn absorb(
        &mut self,
        storage: &AggregateStorage,
        mut render: impl FnMut(&Key, &mut Vec<u8>) -> bool,
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

fn track<C>(
    key: &Key,
    cell: Arc<C>,
    render: &mut impl FnMut(&Key, &mut Vec<u8>) -> bool,
) -> Tracked<C> {
    let mut name = Vec::new();
    if !render(key, &mut name) {
        name.clear();
    }
    Tracked { cell, name }
}
