//! Scaling (1k, 10k, 100k and 1M labelled counters) and memory per counter series, ours and
//! dsd. Each measurement runs in a child process of this bench binary (`COMPARE_CHILD`), so:
//! - dsd's forwarder, which never stops, dies with its child instead of flushing a million
//!   series under every later row;
//! - no flush runs while another exporter's flusher is alive;
//! - memory is counted in a fresh heap, by the counting allocator ([`crate::alloc`]).
//!
//! Children:
//! - `record-ours:N`, `record-dsd:N`: one exporter, idle (hourly flush), N counters; the
//!   median over 11 passes of `Counter::increment` over all N handles, ns per increment
//!   (cache misses grow with N). Each contender has a process (and a heap) of its own: with
//!   both in one process, whichever registered its counters first measured 10–30% slower
//!   past the cache at 100k (the heap layout, not the exporter: a dsd against a second dsd
//!   showed the same), and ours always registered first. The parent alternates the
//!   children over [`RECORD_ROUNDS`] rounds (which goes first rotating) and reports the
//!   medians and the median of per-round ratios.
//! - `flush-ours:N`, `flush-dsd:N`: one exporter on its own timer to a UDP sink, every
//!   counter incremented once per interval (1 s, or 3 µs per series when longer, so a flush
//!   always fits in it), CPU of the exporter's threads per line received (per line sent,
//!   for ours, when the receiver lost some) over 3 intervals after 2 warm ones: the driver
//!   of the timer-driven flush row.
//! - `mem-ours:N`, `mem-dsd:N` (100k and 1M): live heap bytes per series after N counters
//!   were registered, incremented and flushed twice, the handles dropped (the exporter keeps
//!   the series), and the growth of RSS.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::contenders::{HOUR, dsd, ours_sized};
use crate::flush::{bump, labelled_counters, timer_driven};
use crate::stats::median;
use crate::sys::{ThreadsCpu, udp_sink};

/// Series counts of the scaling rows.
pub(crate) const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// Series counts of the memory rows.
pub(crate) const MEMORY_SIZES: [usize; 2] = [100_000, 1_000_000];

/// The child's task, if this process is one.
pub(crate) fn child_task() -> Option<String> {
    std::env::var("COMPARE_CHILD").ok()
}

/// Runs `task` in a child process and returns the numbers it printed.
pub(crate) fn in_child(task: &str) -> Option<Vec<f64>> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new(exe)
        .arg("--bench")
        .env("COMPARE_CHILD", task)
        .stderr(std::process::Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("  child {task} failed: {}", out.status);
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find_map(|l| l.strip_prefix("RESULT "))?;
    Some(
        line.split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect(),
    )
}

fn interval_for(n: usize) -> Duration {
    Duration::from_secs(1).max(Duration::from_micros(3) * u32::try_from(n).unwrap_or(u32::MAX))
}

/// ns per increment of one pass over `counters`, repeated to about 2 ms at small N.
fn pass(counters: &[metrics::Counter]) -> f64 {
    let reps = (200_000 / counters.len()).max(1);
    let start = Instant::now();
    for _ in 0..reps {
        bump(counters);
    }
    start.elapsed().as_nanos() as f64 / (reps * counters.len()) as f64
}

/// A child's work; prints `RESULT` and its numbers on stdout.
#[allow(clippy::print_stdout, reason = "the child's answer to its parent")]
pub(crate) fn child(task: &str) {
    let (kind, n) = task.split_once(':').expect("kind:N");
    let n: usize = n.parse().expect("N");
    let numbers: Vec<f64> = match kind {
        "record-ours" | "record-dsd" => record(kind == "record-ours", n),
        "flush-ours" | "flush-dsd" => flush(kind == "flush-ours", n),
        "mem-ours" | "mem-dsd" => memory(kind == "mem-ours", n),
        _ => panic!("unknown child task {task}"),
    };
    let text: Vec<String> = numbers.iter().map(f64::to_string).collect();
    println!("RESULT {}", text.join(" "));
}

/// Rounds of the record rows: each runs one child per contender.
const RECORD_ROUNDS: usize = 5;

fn record(is_ours: bool, n: usize) -> Vec<f64> {
    let sink = udp_sink().0;
    // Each exporter (and ours's guard) lives until its passes are done.
    let passes = if is_ours {
        let (recorder, _guard) = ours_sized(&sink, HOUR, n);
        record_passes(&labelled_counters(&recorder, n))
    } else {
        record_passes(&labelled_counters(&dsd(&sink, HOUR), n))
    };
    vec![median(passes).unwrap_or(f64::NAN)]
}

/// ns per increment of 11 passes over `counters`.
fn record_passes(counters: &[metrics::Counter]) -> Vec<f64> {
    (0..11).map(|_| pass(counters)).collect()
}

/// The record rows at `n` series: medians of ours and dsd over the rounds, and the median of
/// the per-round ratios.
fn record_rounds(n: usize) -> [f64; 3] {
    let (mut a, mut b) = (vec![], vec![]);
    let one = |who: &str| {
        in_child(&format!("record-{who}:{n}"))
            .and_then(|v| v.first().copied())
            .unwrap_or(f64::NAN)
    };
    for round in 0..RECORD_ROUNDS {
        if round % 2 == 0 {
            a.push(one("ours"));
            b.push(one("dsd"));
        } else {
            b.push(one("dsd"));
            a.push(one("ours"));
        }
    }
    let ratio = median(a.iter().zip(&b).map(|(x, y)| x / y).collect());
    [median(a), median(b), ratio].map(|v| v.unwrap_or(f64::NAN))
}

fn flush(is_ours: bool, n: usize) -> Vec<f64> {
    let interval = interval_for(n);
    let (addr, sink) = udp_sink();
    let cpu = ThreadsCpu::new();
    let cost = if is_ours {
        let (recorder, guard) = ours_sized(&addr, interval, n);
        let counters = labelled_counters(&recorder, n);
        let handle = guard.handle();
        let sent = || Some(handle.stats().lines_sent);
        timer_driven(&counters, &cpu, &sink, &sent, (2, 3, interval))
    } else {
        let recorder = dsd(&addr, interval);
        let counters = labelled_counters(&recorder, n);
        timer_driven(&counters, &cpu, &sink, &|| None, (2, 3, interval))
    };
    // Per line sent where the exporter says (ours): a receiver that lost datagrams in a
    // burst would otherwise charge the lost lines' CPU to the ones that arrived.
    let lines = cost.sent.unwrap_or(cost.lines).max(cost.lines).max(1);
    vec![
        cost.cpu_ns as f64 / lines as f64,
        cost.lines as f64,
        cost.payloads as f64,
        cost.sent.map_or(f64::NAN, |s| s as f64),
    ]
}

fn memory(is_ours: bool, n: usize) -> Vec<f64> {
    let (addr, sink) = udp_sink();
    let interval = interval_for(n);
    let (live0, rss0) = (crate::alloc::live(), crate::alloc::rss());
    let keep: Box<dyn std::any::Any> = if is_ours {
        let (recorder, guard) = ours_sized(&addr, HOUR, n);
        let counters = labelled_counters(&recorder, n);
        for _ in 0..2 {
            bump(&counters);
            guard.handle().flush().expect("flush");
        }
        drop(counters);
        Box::new((recorder, guard))
    } else {
        let recorder = dsd(&addr, interval);
        let counters = labelled_counters(&recorder, n);
        // Two timer flushes, each carrying every series.
        let deadline = Instant::now() + interval * 4;
        while sink.read()[2] < 2 * n as u64 && Instant::now() < deadline {
            bump(&counters);
            std::thread::sleep(interval);
        }
        drop(counters);
        Box::new(recorder)
    };
    std::thread::sleep(Duration::from_millis(100));
    let (live1, rss1) = (crate::alloc::live(), crate::alloc::rss());
    let lines = sink.read()[2];
    drop(keep);
    vec![
        (live1 - live0) as f64 / n as f64,
        rss1.saturating_sub(rss0) as f64 / n as f64,
        lines as f64,
    ]
}

/// The scaling section: record and flush at every size.
pub(crate) fn report_scaling() -> Vec<String> {
    let mut out = vec![
        format!(
            "Scaling, labelled counters (each exporter in its own child process): record = ns \
             per Counter::increment over all N handles, children alternating over \
             {RECORD_ROUNDS} rounds; flush = exporter CPU per line, own timer"
        ),
        format!(
            "  {:>9} | {:>10} {:>10} {:>9} | {:>12} {:>12} {:>9} {:>9}",
            "series",
            "rec ours",
            "rec dsd",
            "ours/dsd",
            "flush ours",
            "flush dsd",
            "ours/dsd",
            "lines/pl"
        ),
    ];
    for n in SIZES {
        let rec = record_rounds(n);
        let ours = in_child(&format!("flush-ours:{n}")).unwrap_or_default();
        let dsd = in_child(&format!("flush-dsd:{n}")).unwrap_or_default();
        let get = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(f64::NAN);
        out.push(format!(
            "  {n:>9} | {:>10.2} {:>10.2} {:>9.3} | {:>9.1} ns {:>9.1} ns {:>9.3} {:>9.1}",
            get(&rec, 0),
            get(&rec, 1),
            get(&rec, 2),
            get(&ours, 0),
            get(&dsd, 0),
            get(&ours, 0) / get(&dsd, 0),
            get(&ours, 1) / get(&ours, 2),
        ));
        if get(&ours, 3) > get(&ours, 1) {
            out.push(format!(
                "      ours sent {} lines, {} arrived (the receiver lost some): its CPU is per line sent",
                get(&ours, 3),
                get(&ours, 1)
            ));
        }
    }
    for l in &out {
        eprintln!("{l}");
    }
    out
}

/// The memory section: live heap bytes per counter series after flushes.
pub(crate) fn report_memory() -> Vec<String> {
    let mut out = vec![
        "Memory per counter series after two flushes (each in its own child process; live heap \
         bytes as requested from the allocator, and RSS growth)"
            .to_owned(),
        format!(
            "  {:>9} | {:>10} {:>10} {:>9} | {:>10} {:>10}",
            "series", "heap ours", "heap dsd", "ours/dsd", "rss ours", "rss dsd"
        ),
    ];
    for n in MEMORY_SIZES {
        let ours = in_child(&format!("mem-ours:{n}")).unwrap_or_default();
        let dsd = in_child(&format!("mem-dsd:{n}")).unwrap_or_default();
        let get = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(f64::NAN);
        out.push(format!(
            "  {n:>9} | {:>8.0} B {:>8.0} B {:>9.3} | {:>8.0} B {:>8.0} B",
            get(&ours, 0),
            get(&dsd, 0),
            get(&ours, 0) / get(&dsd, 0),
            get(&ours, 1),
            get(&dsd, 1),
        ));
        if get(&dsd, 2) < 2.0 * n as f64 {
            out.push(format!(
                "      dsd: {} lines arrived, fewer than two full flushes",
                get(&dsd, 2)
            ));
        }
    }
    for l in &out {
        eprintln!("{l}");
    }
    out
}
