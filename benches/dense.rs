//! Per-series cost of the flusher's state, in two measurements that hold under a loaded
//! machine (issue 15):
//!
//! - `mem [N [WHO]]`: live heap bytes per counter series (a counting global allocator: requested
//!   bytes, and glibc's chunk sizes for them), after N labelled counters were registered,
//!   counted once and flushed twice, for each of our protocols and for
//!   metrics-exporter-dogstatsd (dsd) in the same process. Handles are dropped, as after a
//!   `counter!` call: what is left is the registry's and the flusher's. `mem N PROTOCOL quiet`
//!   counts nothing, so no line is sent: the difference is what the delivery keeps of a
//!   flush's payloads.
//! - `flush PROTOCOL N active|idle K`: registers N counters, warms up with two flushes, then
//!   runs K explicit flushes with every series counted once before each (`active`) or with
//!   none counted (`idle`). Run it under `valgrind --tool=callgrind` for two values of K: the
//!   difference in instructions over the difference in flushes, divided by N, is the
//!   flusher's instructions per series per flush, setup excluded.
//!
//! `cargo bench --bench dense` runs `mem` for 100 000 series.
#![allow(
    unsafe_code,
    reason = "a GlobalAlloc impl is unsafe by definition; the library itself forbids unsafe"
)]
#![allow(missing_docs, reason = "a bench binary")]
#![allow(
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::cast_precision_loss,
    reason = "a bench that cannot set up must stop loudly; it reports on stdout"
)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Recorder, with_local_recorder};
use metrics_exporter_dogstatsd::DogStatsDBuilder;
use metrics_exporter_statsd_graphite::ExporterBuilder;

struct Counting;

/// Bytes requested and not yet freed.
static LIVE: AtomicU64 = AtomicU64::new(0);
/// The same in glibc malloc chunks (a 16-byte aligned size with an 8-byte header, 32 at
/// least), which is what RSS pays.
static LIVE_CHUNKS: AtomicU64 = AtomicU64::new(0);
/// Allocations not yet freed.
static LIVE_COUNT: AtomicU64 = AtomicU64::new(0);

fn chunk(size: usize) -> u64 {
    ((size as u64 + 8 + 15) & !15).max(32)
}

fn grew(size: usize) {
    LIVE.fetch_add(size as u64, Ordering::Relaxed);
    LIVE_CHUNKS.fetch_add(chunk(size), Ordering::Relaxed);
}

fn shrank(size: usize) {
    LIVE.fetch_sub(size as u64, Ordering::Relaxed);
    LIVE_CHUNKS.fetch_sub(chunk(size), Ordering::Relaxed);
}

// SAFETY: delegates every call to `System` unchanged; the counters do not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        LIVE_COUNT.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrank(layout.size());
        LIVE_COUNT.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        shrank(layout.size());
        grew(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy)]
struct Live {
    bytes: u64,
    chunks: u64,
    count: u64,
}

fn live() -> Live {
    Live {
        bytes: LIVE.load(Ordering::SeqCst),
        chunks: LIVE_CHUNKS.load(Ordering::SeqCst),
        count: LIVE_COUNT.load(Ordering::SeqCst),
    }
}

/// A UDP socket on loopback that a thread drains; its `udp://` address.
fn sink() -> String {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let endpoint = sink.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while sink.recv(&mut buf).is_ok() {}
    });
    endpoint
}

/// Registers `n` labelled counters (one dynamic label, one static), as `benches/flush.rs` does.
fn counters(recorder: &impl Recorder, n: usize) -> Vec<Counter> {
    with_local_recorder(recorder, || {
        (0..n)
            .map(|i| metrics::counter!("bench.requests", "route" => format!("/api/{i}"), "status" => "200"))
            .collect()
    })
}

fn builder(protocol: &str, endpoint: String) -> ExporterBuilder {
    match protocol {
        "statsd" => ExporterBuilder::statsd(endpoint),
        "dogstatsd" => ExporterBuilder::dogstatsd(endpoint),
        "graphite" => ExporterBuilder::graphite(endpoint),
        other => panic!("unknown protocol {other}"),
    }
}

fn report(what: &str, n: usize, before: Live, after: Live) -> f64 {
    let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / n as f64;
    let chunks = per(after.chunks, before.chunks);
    println!(
        "{what:>10}, {n} series: {:.1} B requested, {chunks:.1} B in malloc chunks, {:.2} allocations per series",
        per(after.bytes, before.bytes),
        per(after.count, before.count),
    );
    chunks
}

/// With `quiet`, no counter is counted, so no line is sent (StatsD and DogStatsD send
/// nothing for an idle counter): the difference from a counted run is what the delivery keeps
/// of a flush's payloads.
fn ours_memory(protocol: &str, n: usize, quiet: bool) -> f64 {
    let endpoint = format!("udp://{}", sink());
    let before = live();
    let (recorder, exporter) = builder(protocol, endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        .with_max_series(n)
        .with_max_series_per_metric(n)
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    let handle = guard.handle();
    for c in counters(&recorder, n) {
        if !quiet {
            c.increment(1);
        }
    }
    let registered = live();
    handle.flush().expect("flush");
    handle.flush().expect("flush");
    let after = live();
    assert_eq!(handle.stats().series, n as u64, "every series tracked");
    let bytes = handle.stats().bytes_sent as f64 / n as f64;
    println!("{protocol:>10}, {n} series: {bytes:.1} wire bytes per series in the first flush");
    report(&format!("{protocol} reg"), n, before, registered);
    let total = report(protocol, n, before, after);
    drop(recorder);
    guard.shutdown().expect("shutdown");
    // The flusher thread frees its state after the guard returns.
    std::thread::sleep(Duration::from_millis(500));
    total
}

fn dsd_memory(n: usize) -> f64 {
    let endpoint = sink();
    let before = live();
    let recorder = DogStatsDBuilder::default()
        .with_remote_address(&endpoint)
        .expect("address")
        .with_flush_interval(Duration::from_millis(100))
        .with_telemetry(false)
        .build()
        .expect("builds");
    for c in counters(&recorder, n) {
        c.increment(1);
    }
    // Two of its flushes at least.
    std::thread::sleep(Duration::from_millis(350));
    let after = live();
    report("dsd", n, before, after)
}

/// `who`: `dsd` or one of our protocols alone, or everything (each of ours against dsd).
fn memory(n: usize, who: Option<&str>, quiet: bool) {
    match who {
        Some("dsd") => {
            dsd_memory(n);
            return;
        }
        Some(protocol) => {
            ours_memory(protocol, n, quiet);
            return;
        }
        None => {}
    }
    let dsd = dsd_memory(n);
    for protocol in ["statsd", "dogstatsd", "graphite"] {
        let ours = ours_memory(protocol, n, quiet);
        println!(
            "{protocol:>10}, {n} series: {:.3}x dsd (malloc chunks)",
            ours / dsd
        );
    }
}

fn flushes(protocol: &str, n: usize, active: bool, k: usize) {
    let (recorder, exporter) = builder(protocol, format!("udp://{}", sink()))
        .with_flush_interval(Duration::from_secs(3600))
        // Under callgrind a flush of many series takes seconds.
        .with_shutdown_timeout(Duration::from_secs(600))
        .with_max_series(n)
        .with_max_series_per_metric(n)
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    let handle = guard.handle();
    let counters = counters(&recorder, n);
    for _ in 0..2 {
        for c in &counters {
            c.increment(1);
        }
        handle.flush().expect("flush");
    }
    // Wall time of the flushes alone (the increments before each are outside it): a rough
    // per-series figure for runs that alternate two binaries; callgrind's counts are the
    // repeatable ones.
    let mut flushing = Duration::ZERO;
    for _ in 0..k {
        if active {
            for c in &counters {
                c.increment(1);
            }
        }
        let start = std::time::Instant::now();
        handle.flush().expect("flush");
        flushing += start.elapsed();
    }
    let stats = guard.shutdown().expect("shutdown");
    println!(
        "{protocol}, {n} series, {} flushes: {} lines sent; {:.1} ns per series per measured flush",
        k + 2,
        stats.lines_sent,
        flushing.as_nanos() as f64 / (k.max(1) * n) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let num = |i: usize, default: usize| {
        args.get(i)
            .map_or(default, |s| s.parse().expect("a number"))
    };
    match args.first().map(String::as_str) {
        None => memory(100_000, None, false),
        Some("mem") => memory(
            num(1, 100_000),
            args.get(2).map(String::as_str),
            args.get(3).is_some_and(|q| q == "quiet"),
        ),
        Some("flush") => flushes(
            args.get(1).map_or("statsd", String::as_str),
            num(2, 100_000),
            args.get(3).is_none_or(|m| m == "active"),
            num(4, 10),
        ),
        Some(other) => eprintln!(
            "unknown mode {other}: mem [N [dsd|statsd|dogstatsd|graphite [quiet]]] | flush PROTOCOL N active|idle K"
        ),
    }
}
