//! Graphite pickle against Graphite plaintext, both over TCP loopback: the flusher thread's
//! CPU per line for explicit flushes of 100k labelled counters (issue 15's "pickle flush per
//! line <= plaintext's").
//!
//! Default mode: both exporters run side by side and their flushes are interleaved round by
//! round, so load from other processes hits both alike; each round's CPU comes from the two
//! flusher threads' schedstat (user + system, so the kernel's send path is in), and the report
//! is the ratio pickle/plaintext over all rounds and the median of per-round ratios, at the
//! default TCP payload limit and at a large one. Each round runs its measurements in a
//! rotated order, reversed every other round, so no measurement always follows the same one.
//!
//! Each round also times the ideal loops of [`ideal`] (plaintext, pickle through serde-pickle,
//! pickle written by hand, a compact pickle) on the paths ours sends, sending and writing
//! only, so the report says whether the target is out of reach of serde-pickle itself.
//!
//! Callgrind mode (`PICKLE_BENCH_ONLY=pickle` or `plaintext`, optional `PICKLE_BENCH_FLUSHES`,
//! default 4): only that exporter, two warm flushes then the given number, so instruction
//! counts (repeatable under load) can be compared between two runs that differ only in the
//! flush count: `valgrind --tool=callgrind --separate-threads=yes target/release/deps/pickle-*`.
#![allow(missing_docs, reason = "a bench binary")]
#![allow(
    clippy::expect_used,
    reason = "a bench that cannot set up must stop loudly"
)]
#![allow(
    clippy::print_stderr,
    clippy::cast_precision_loss,
    reason = "benches report ratios on stderr"
)]

use std::collections::HashSet;
use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use metrics::{Counter, with_local_recorder};

#[path = "support/capture.rs"]
mod capture;
#[path = "support/cpu.rs"]
mod cpu;
#[path = "pickle/ideal.rs"]
mod ideal;
use ideal::Format;
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterGuard, ExporterHandle};

const SERIES: usize = 100_000;
const ROUNDS: usize = 12;
/// Measurements a round: ours twice, then each ideal format sending and writing only.
const RUNS: usize = 2 + 2 * Format::ALL.len();

/// A TCP listener on loopback that reads and discards every connection.
fn tcp_sink() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    format!("tcp://{addr}")
}

/// The ids of this process's threads whose name starts with `prefix` (names are cut to 15
/// bytes by the kernel).
fn threads_named(prefix: &str) -> HashSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|tid: &u32| {
                    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
                        .is_ok_and(|c| c.starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// CPU nanoseconds (user and system) thread `tid` has run.
fn thread_cpu_ns(tid: u32) -> u64 {
    cpu::thread_cpu_ns(tid).expect("schedstat")
}

/// One ideal loop's CPU nanoseconds and bytes sent.
fn timed(run: impl FnOnce() -> usize) -> (u64, usize) {
    let before = cpu::own_cpu_ns();
    let bytes = run();
    (cpu::own_cpu_ns().saturating_sub(before), bytes)
}

/// The ideal loops on the paths a plaintext exporter sends for `SERIES` counters.
fn ideal_loops(endpoint: &str, limit: usize) -> ideal::Ideal {
    let (addr, reader) = capture::capture(SERIES);
    let side = Side::start(ExporterBuilder::graphite, &addr, limit);
    side.flush();
    let text = reader.join().expect("the capture");
    drop(side);
    let loops = ideal::Ideal::new(&text, endpoint, limit);
    assert_eq!(loops.lines(), SERIES, "every path captured");
    assert!(
        loops.hand_written_reads_as_serde(),
        "the hand-written pickles read as serde-pickle's"
    );
    loops
}

/// One running exporter, its flusher thread and its counters.
struct Side {
    _guard: ExporterGuard,
    handle: ExporterHandle,
    flusher: u32,
    counters: Vec<Counter>,
}

impl Side {
    fn start(make: fn(String) -> ExporterBuilder, endpoint: &str, limit: usize) -> Self {
        let before = threads_named("metrics-export");
        let (recorder, exporter) = make(endpoint.to_owned())
            .with_flush_interval(Duration::from_secs(3600))
            .with_max_series_per_metric(SERIES)
            .with_maximum_payload_length(limit)
            // Room for a flush under callgrind, about 50 times slower than native.
            .with_shutdown_timeout(Duration::from_secs(300))
            .with_write_timeout(Duration::from_secs(60))
            .build()
            .expect("builds");
        let guard = exporter.start().expect("starts");
        // The thread names itself once running: look again until it has.
        let flusher = (0..1000)
            .find_map(|_| {
                let found = threads_named("metrics-export")
                    .difference(&before)
                    .next()
                    .copied();
                if found.is_none() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                found
            })
            .expect("a flusher thread");
        let counters = with_local_recorder(&recorder, || {
            (0..SERIES)
                .map(|i| metrics::counter!("bench.requests", "route" => format!("/api/{i}"), "status" => "200"))
                .collect()
        });
        let handle = guard.handle();
        Self {
            _guard: guard,
            handle,
            flusher,
            counters,
        }
    }

    /// Bumps every counter and flushes; returns the flusher's CPU nanoseconds for it.
    fn flush(&self) -> u64 {
        for c in &self.counters {
            c.increment(1);
        }
        let before = thread_cpu_ns(self.flusher);
        self.handle.flush().expect("flush");
        thread_cpu_ns(self.flusher) - before
    }

    fn lines_sent(&self) -> u64 {
        self.handle.stats().lines_sent
    }
}

fn interleaved(endpoint: &str, limit: usize) {
    let mut loops = ideal_loops(endpoint, limit);
    let plain = Side::start(ExporterBuilder::graphite, endpoint, limit);
    let pickle = Side::start(ExporterBuilder::graphite_pickle, endpoint, limit);
    for _ in 0..2 {
        plain.flush();
        pickle.flush();
    }
    let (l0, p0) = (plain.lines_sent(), pickle.lines_sent());
    // Per round: ours plaintext, ours pickle, then each ideal format sending, then each
    // writing only.
    let mut ns = [[0u64; RUNS]; ROUNDS];
    let mut bytes = [0usize; Format::ALL.len()];
    for (round, row) in ns.iter_mut().enumerate() {
        for k in 0..RUNS {
            let which = if round % 2 == 0 {
                (k + round) % RUNS
            } else {
                (RUNS - 1 - k + round) % RUNS
            };
            row[which] = match which {
                0 => plain.flush(),
                1 => pickle.flush(),
                _ => {
                    let (format, send) = (Format::ALL[(which - 2) % 4], which < 6);
                    let (cpu, wrote) = timed(|| loops.run(format, send));
                    bytes[(which - 2) % 4] = wrote;
                    cpu
                }
            };
        }
    }
    let (plain_lines, pickle_lines) = (plain.lines_sent() - l0, pickle.lines_sent() - p0);
    assert_eq!(
        plain_lines,
        (SERIES * ROUNDS) as u64,
        "every plaintext line sent"
    );
    assert_eq!(
        pickle_lines,
        (SERIES * ROUNDS) as u64,
        "every pickle line sent"
    );
    let total = |col: usize| ns.iter().map(|row| row[col]).sum::<u64>();
    let per_line = |col: usize| total(col) as f64 / (SERIES * ROUNDS) as f64;
    let median_ratio = |a: usize, b: usize| {
        let mut r: Vec<f64> = ns.iter().map(|row| row[a] as f64 / row[b] as f64).collect();
        r.sort_by(f64::total_cmp);
        r[ROUNDS / 2]
    };
    eprintln!(
        "payload limit {limit:>7}: ours plaintext {:6.1} ns/line, pickle {:6.1} ns/line; pickle/plaintext {:.3} overall, per round median {:.3} ({ROUNDS} rounds)",
        per_line(0),
        per_line(1),
        total(1) as f64 / total(0) as f64,
        median_ratio(1, 0),
    );
    for (label, first) in [("ideal, sending", 2), ("ideal, writing only", 6)] {
        let cells: Vec<String> = Format::ALL
            .iter()
            .enumerate()
            .map(|(i, f)| {
                format!(
                    "{} {:.1} ns/line {:.3}x",
                    f.name(),
                    per_line(first + i),
                    median_ratio(first + i, first)
                )
            })
            .collect();
        eprintln!("    {label:<20} {}", cells.join(", "));
    }
    let sizes: Vec<String> = Format::ALL
        .iter()
        .zip(bytes)
        .map(|(f, b)| format!("{} {:.1}", f.name(), b as f64 / SERIES as f64))
        .collect();
    eprintln!(
        "    bytes a line: {} (ratios: median of per-round ratios to plaintext)",
        sizes.join(", ")
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument, if any, is ignored.
    let endpoint = tcp_sink();
    if let Ok(only) = std::env::var("PICKLE_BENCH_ONLY") {
        let make = match only.as_str() {
            "pickle" => ExporterBuilder::graphite_pickle,
            "plaintext" => ExporterBuilder::graphite,
            other => panic!("PICKLE_BENCH_ONLY={other}: pickle or plaintext"),
        };
        let flushes: usize = std::env::var("PICKLE_BENCH_FLUSHES")
            .ok()
            .map_or(4, |n| n.parse().expect("PICKLE_BENCH_FLUSHES: a number"));
        let side = Side::start(make, &endpoint, 65_536);
        (0..2 + flushes).for_each(|_| {
            side.flush();
        });
        eprintln!("{only}: {} lines sent", side.lines_sent());
        return;
    }
    for limit in [65_536, 524_288] {
        interleaved(&endpoint, limit);
    }
}
