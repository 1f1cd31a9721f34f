//! Gauge cell: an `f64` stored as bits, plus a "touched since the last flush" flag.
//!
//! `set` is two relaxed/release stores; `increment` and `decrement` are a compare-and-swap
//! loop on the bits. The flusher takes the value only when the flag was set, so a gauge that
//! nobody touched is not re-sent. It swaps the flag only when a relaxed load finds it set, so
//! an untouched gauge costs the flusher no locked instruction and no exclusive cache line; a
//! `set` the load misses leaves the flag set, for the next flush (see the counter's module
//! docs for the argument).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use metrics::GaugeFn;

/// See the module docs. `repr(C)`, the flag last: every field ends within the cell's first
/// 9 bytes (see `spares` for why that matters).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct GaugeCell {
    bits: AtomicU64,
    touched: AtomicBool,
}

const _: () = assert!(std::mem::offset_of!(GaugeCell, touched) == 8);

impl Default for GaugeCell {
    fn default() -> Self {
        Self {
            bits: AtomicU64::new(0f64.to_bits()),
            touched: AtomicBool::new(false),
        }
    }
}

impl GaugeCell {
    /// The current value if the gauge was touched since the previous call.
    pub(crate) fn take(&self) -> Option<f64> {
        if !self.touched.load(Ordering::Relaxed) {
            return None;
        }
        // Acquire pairs with the Release in `touch`: seeing the flag means seeing the value
        // written before it (or a later one).
        if self.touched.swap(false, Ordering::Acquire) {
            Some(f64::from_bits(self.bits.load(Ordering::Relaxed)))
        } else {
            None
        }
    }

    fn touch(&self) {
        // Release: publishes the value stored just before.
        self.touched.store(true, Ordering::Release);
    }

    fn add(&self, delta: f64) {
        // Relaxed: the flag's Release/Acquire orders the value for the flusher.
        let _ = self
            .bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + delta).to_bits())
            });
        self.touch();
    }
}

impl super::Idle for GaugeCell {
    fn is_idle(&self) -> bool {
        !self.touched.load(Ordering::Relaxed)
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.add(value);
    }

    fn decrement(&self, value: f64) {
        self.add(-value);
    }

    fn set(&self, value: f64) {
        // Relaxed: published by the Release store in `touch`.
        self.bits.store(value.to_bits(), Ordering::Relaxed);
        self.touch();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untouched_gauge_yields_nothing() {
        assert_eq!(GaugeCell::default().take(), None);
    }

    #[test]
    fn set_increment_and_decrement_all_count() {
        let g = GaugeCell::default();
        g.set(10.0);
        g.increment(2.5);
        g.decrement(0.5);
        assert_eq!(g.take(), Some(12.0));
        assert_eq!(g.take(), None);
        g.decrement(20.0);
        assert_eq!(g.take(), Some(-8.0));
    }
}
