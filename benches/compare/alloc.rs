//! A counting global allocator: live heap bytes (requested sizes, so malloc's own per-chunk
//! overhead and fragmentation are not in them). It counts only in the memory children
//! (`scale::child`), which switch it on before anything else runs; everywhere else each
//! allocation pays one relaxed load of the switch and nothing more, so the timed rows of
//! allocating contenders (mes, cadence, dsd's macro path) are not slowed.
#![allow(
    unsafe_code,
    reason = "a GlobalAlloc impl is unsafe by definition; the library itself forbids unsafe"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicI64 = AtomicI64::new(0);

#[allow(
    clippy::cast_possible_wrap,
    reason = "an allocation is far below 2^63 bytes"
)]
fn add(bytes: usize, sign: i64) {
    if ON.load(Ordering::Relaxed) {
        LIVE.fetch_add(sign * bytes as i64, Ordering::Relaxed);
    }
}

// SAFETY: delegates every call to `System` unchanged; the counters do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size(), 1);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(layout.size(), -1);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size, 1);
        add(layout.size(), -1);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Starts counting. Call first thing in a process that measures memory: blocks allocated
/// before are not counted, and freeing them later would count negative.
pub(crate) fn start() {
    ON.store(true, Ordering::SeqCst);
}

/// Live heap bytes allocated since [`start`].
pub(crate) fn live() -> i64 {
    LIVE.load(Ordering::SeqCst)
}

/// This process's resident set (`VmRSS`), in bytes.
pub(crate) fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
