//! `least`: the least any `metrics` recorder can do for a macro call, a contender in the
//! macro rows.
//!
//! `counter!` asks the recorder for a `Counter`, and a `Counter` owns an `Arc` of its cell
//! (`Counter::from_arc`). So whatever the lookup, a call costs the facade's share, the
//! recorder's dynamic call, one `Arc` clone, the update and the `Arc` drop: three atomic
//! read-modify-writes. This recorder does that and nothing else: no lookup at all, every key
//! gets the same cell. `ours − least` is what our lookup costs, and `least ÷ dsd` is the best
//! `ours ÷ dsd` any lookup could reach on the machine.
//!
//! `fenced` adds one sequentially consistent fence per call. A lookup that takes no lock
//! (a per-thread cache of `Weak` cells, say) must still not hand out a cell that expiry is
//! removing at that moment: the caller's "I hold it" (the upgrade) and expiry's "it is
//! retired" must each see the other's write, a store-buffering pattern that needs a `SeqCst`
//! fence (or another read-modify-write) on the lookup's side. So `fenced` estimates the
//! least such a lookup costs, before any probing. (On x86 the upgrade's locked instruction is
//! a full barrier in hardware already, but Rust's memory model gives `Weak::upgrade` acquire
//! ordering only, so a lookup written in Rust without `unsafe` pays the fence or a
//! read-modify-write of its own.)

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// See the module docs.
#[derive(Default)]
pub(crate) struct Least {
    counter: Arc<Cell>,
    histogram: Arc<Cell>,
    /// One `SeqCst` fence per call (see the module docs).
    fenced: bool,
}

impl Least {
    /// The `fenced` variant (see the module docs).
    pub(crate) fn fenced() -> Self {
        Self {
            fenced: true,
            ..Self::default()
        }
    }

    fn fence(&self) {
        if self.fenced {
            std::sync::atomic::fence(Ordering::SeqCst);
        }
    }
}

#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl HistogramFn for Cell {
    /// One relaxed add, as the `atomic` floor of the cached histogram row.
    fn record(&self, value: f64) {
        black_box(value);
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl Recorder for Least {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        black_box(key);
        let cell = Arc::clone(&self.counter);
        self.fence();
        Counter::from_arc(cell)
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        black_box(key);
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        black_box(key);
        let cell = Arc::clone(&self.histogram);
        self.fence();
        Histogram::from_arc(cell)
    }
}
