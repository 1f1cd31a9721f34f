//! [`Tracked`]: one wire identity as the flusher tracks it, with the cells of every series
//! that renders to it, and how their interval values merge into one.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::time::Instant;

use crate::aggregate::{CounterCell, GaugeCell, HistogramCell};
use crate::encode::{Rendered, SampleUnit, SlotCarry};
use crate::random::random_below;
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
    pub(crate) fn expired(&self, now: Instant, idle: Duration) -> bool {
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
    /// alike were set in one interval, the largest finite value wins: their order is
    /// unknown, and the largest is the same whatever it was. A value that cannot be sent (NaN,
    /// an infinity) wins only when no finite value was set.
    pub(crate) fn take_gauge(&self) -> Option<f64> {
        self.cells()
            .filter_map(|c| c.take())
            .reduce(|a, b| match (a.is_finite(), b.is_finite()) {
                (true, true) => a.max(b),
                (false, true) => b,
                (_, false) => a,
            })
    }
}

impl Tracked<HistogramCell> {
    /// Moves the interval's samples of every cell into `out` (appending), converted to the
    /// first cell's unit, and returns how many were recorded in all. (If the first cell is
    /// retired while a merged one of another unit carries on, which only a registration
    /// racing expiry can cause, the identity goes on in the new first cell's unit.) When the cells kept different shares of what they
    /// recorded (one sampled, another not), each is thinned at random to the smallest share,
    /// so every kept sample stands for as many recorded ones and one `|@rate` (or Graphite's
    /// weighting) holds for all of them.
    /// `spans` is scratch space, kept by the caller so a warm flush allocates nothing.
    pub(crate) fn drain_histogram(&self, out: &mut Vec<f64>, spans: &mut Vec<(usize, u64)>) -> u64 {
        let start = out.len();
        let mut recorded = self.cell.drain_into(out);
        if self.merged.is_empty() {
            return recorded;
        }
        let unit = self.cell.unit();
        // Each cell's (end in `out`, recorded): kept ones are `out[previous end..end]`.
        spans.clear();
        spans.push((out.len(), recorded));
        for cell in &self.merged {
            let from = out.len();
            let n = cell.drain_into(out);
            recorded = recorded.saturating_add(n);
            convert(&mut out[from..], cell.unit(), unit);
            spans.push((out.len(), n));
        }
        thin_to_common_rate(out, start, spans);
        recorded
    }
}

/// Converts samples recorded in `from` to `to`.
fn convert(samples: &mut [f64], from: SampleUnit, to: SampleUnit) {
    if from != to {
        for v in samples {
            *v = from.convert(*v, to);
        }
    }
}

/// Thins each cell's kept samples in `out[start..]` (cell `i` kept `out[spans[i-1].0..
/// spans[i].0]` of the `spans[i].1` it recorded) to the smallest kept share among them, by
/// uniform random choice, and compacts what is kept. Cells that kept everything keep
/// everything when none sampled.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "shares and counts of at most a few million samples"
)]
fn thin_to_common_rate(out: &mut Vec<f64>, start: usize, spans: &[(usize, u64)]) {
    let mut from = start;
    let mut share = 1.0_f64;
    for &(end, recorded) in spans {
        if recorded > 0 {
            share = share.min((end - from) as f64 / recorded as f64);
        }
        from = end;
    }
    if share >= 1.0 {
        return;
    }
    let (mut from, mut write) = (start, start);
    for &(end, recorded) in spans {
        let kept = end - from;
        let keep = ((recorded as f64 * share).round() as usize).min(kept);
        // A partial Fisher-Yates shuffle picks `keep` of the cell's samples uniformly.
        for i in 0..keep {
            let j = i + random_below((kept - i) as u64) as usize;
            out.swap(from + i, from + j);
        }
        out.copy_within(from..from + keep, write);
        write += keep;
        from = end;
    }
    out.truncate(write);
}

/// A new identity for `cell`, rendered as `rendered`.
pub(crate) fn track<C>(cell: Arc<C>, rendered: Rendered, now: Instant) -> Tracked<C> {
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
