//! Our recorder side by side with its peers, every workload in one run, so the ratios compare
//! numbers taken on the same (noisy, 2-core) machine within minutes of each other.
//!
//! Contenders, all on `metrics` 0.24:
//! - `atomic`: the physical floor of the operation, written out by hand: one relaxed
//!   `fetch_add` (counters, histograms), one store (gauge set), one f64 compare-and-swap loop
//!   (gauge increment). No `metrics` handle, so no dynamic call either.
//! - `ours`: this crate, DogStatsD protocol (the hot path is the same for every protocol).
//! - `dsd`: metrics-exporter-dogstatsd 0.9 with its defaults (raw histograms, no sampling),
//!   self-telemetry off (it would go through the global recorder, which is not installed).
//! - `mes`: metrics-exporter-statsd 0.9 (on cadence), with its documented 5000-entry queue.
//!   It has no aggregation: every update formats a line and queues it for a worker thread.
//!   Its `Gauge::increment` is a silent no-op, so that row says nothing about it.
//! - `noop`: the `metrics` `NoopRecorder`, in the macro rows only: the facade's own share.
//! - `least`: in the macro rows only, the least any recorder can do for a macro call (an
//!   `Arc` clone, the update, the `Arc` drop, no lookup), and `fenced`, the same with one
//!   `SeqCst` fence, an estimate of the least a lookup without a lock costs: see `least`.
//! - `cadence` and `client`: cadence 1.8 (a `QueuingMetricSink` over a `BufferedUdpMetricSink`)
//!   and our direct `StatsdClient`, in the rows they can express (see `direct`).
//!
//! Sections, in the order they run (`COMPARE_SECTIONS=a,b` runs some; the method of each is
//! in BENCHMARKS.md, "Method", and in each module's docs):
//! - `floor` (`floor`): CPU per datagram of `send`, `sendmmsg` and UDP GSO on loopback.
//! - `protocols` (`protocols`): our flusher per protocol, with ratios to the floor; first, so
//!   no other exporter's thread is alive.
//! - `ideal` (`ideal`): the least any flusher can do per series (StatsD), beside ours, at 100k
//!   and 1M series, with the GSO floor per line, each size in a child process.
//! - `scaling`, `memory` (`scale`): 1k..1M series and memory per series, ours and dsd, each
//!   in a child process of this binary.
//! - `hot` (`hot`, `direct`): the update rows, under criterion and then interleaved (41
//!   rounds of short batches in rotation; the verdicts use the medians of per-round ratios).
//!   Handles and macros go through `metrics::with_local_recorder`, so all recorders live in
//!   one process; ours and dsd flush hourly here, so their threads stay idle.
//! - `flush` (`flush`): timer-driven flush CPU per line, ours vs dsd vs mes; last, because
//!   dsd's and mes's threads never stop.
//!
//! Every run prints the machine (CPU model, kernel, load) first and atop its summary. Under
//! `cargo test --benches` criterion runs each hot-path bench once and the floor runs one
//! round; nothing else runs.
#![allow(missing_docs, reason = "criterion generates the entry point")]
#![allow(
    clippy::expect_used,
    reason = "a bench that cannot set up must stop loudly"
)]
#![allow(
    clippy::print_stderr,
    clippy::cast_precision_loss,
    reason = "benches report ratios on stderr"
)]

mod alloc;
#[path = "../support/capture.rs"]
mod capture;
mod contenders;
#[path = "../support/cpu.rs"]
mod cpu;
mod direct;
mod floor;
mod flush;
mod frames;
mod hot;
mod ideal;
mod ideal_loop;
mod least;
mod machine;
mod protocols;
mod scale;
mod stats;
mod summary;
#[allow(
    dead_code,
    reason = "shared with examples/loadgen.rs, which uses what this bench does not"
)]
mod sys;

use std::time::{Duration, SystemTime};

use criterion::Criterion;
use metrics::NoopRecorder;

/// The sections of a run, in the order they run. `COMPARE_SECTIONS` (comma-separated names)
/// picks some; unset, all run.
const SECTIONS: [&str; 7] = [
    "floor",
    "protocols",
    "ideal",
    "scaling",
    "memory",
    "hot",
    "flush",
];

fn selected() -> Vec<String> {
    match std::env::var("COMPARE_SECTIONS") {
        Ok(list) => {
            let picked: Vec<String> = list.split(',').map(|s| s.trim().to_owned()).collect();
            for p in &picked {
                assert!(
                    SECTIONS.contains(&p.as_str()),
                    "COMPARE_SECTIONS: unknown section {p:?}; known: {SECTIONS:?}"
                );
            }
            picked
        }
        Err(_) => SECTIONS.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn main() {
    if let Some(task) = scale::child_task() {
        if task.starts_with("mem-") {
            alloc::start();
        }
        if task.starts_with("ideal:") {
            ideal::child(&task);
        } else {
            scale::child(&task);
        }
        return;
    }
    let since = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; without it (`cargo test --benches`) criterion runs each
    // bench once as a test, and so do we: no interleaving, no flush measurements, one round
    // of the floor.
    let benching = args.iter().any(|a| a == "--bench");
    let filter = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(String::as_str);
    let sections = selected();
    let run = |name: &str| sections.iter().any(|s| s == name);
    let machine = machine::describe();
    eprintln!("{machine}");

    if !benching {
        let mut f = floor::Floor::new();
        floor::print_floor(&floor::rounds(&mut f, 1, 1));
    }
    // Everything that measures our flusher runs before any other exporter exists (dsd's and
    // mes's threads never stop once started).
    let floor = (benching && run("floor")).then(floor::report);
    let protocols = (benching && run("protocols")).then(|| {
        let rows = protocols::flush_ours_per_protocol();
        protocols::print(&rows);
        rows
    });
    let ideal = (benching && run("ideal")).then(ideal::report);
    let scaling = (benching && run("scaling")).then(scale::report_scaling);
    let memory = (benching && run("memory")).then(scale::report_memory);

    let mut rounds = Vec::new();
    let hot = run("hot") || !benching;
    if hot {
        let who = contenders::Contenders::new();
        let direct = direct::Direct::new();
        let atomics = hot::Floor::default();
        let (least, fenced) = (least::Least::default(), least::Least::fenced());
        let floors: [(&'static str, &dyn metrics::Recorder); 3] = [
            ("noop", &NoopRecorder),
            ("least", &least),
            ("fenced", &fenced),
        ];
        let workloads = hot::workloads(&who, &direct, &atomics, floors);
        hot::criterion(&mut c, &workloads);
        c.final_summary();
        if benching {
            rounds = hot::interleave(&workloads, filter);
        }
        let (cadence_refused, client_dropped) = direct.drops();
        eprintln!(
            "direct clients: cadence refused {cadence_refused} calls (full queue); our client \
             dropped {client_dropped} lines (full backlog)"
        );
    }
    if !benching {
        return;
    }
    if run("flush") {
        flush::report();
    }
    eprintln!("\n===== Summary =====\n{machine}");
    if let Some(r) = &floor {
        floor::print_floor(r);
    }
    if let Some(rows) = &protocols {
        protocols::print(rows);
    }
    if let Some(rows) = &ideal {
        ideal::print(rows);
    }
    for lines in [&scaling, &memory].into_iter().flatten() {
        eprintln!();
        for l in lines {
            eprintln!("{l}");
        }
    }
    if hot {
        summary::criterion_table(since);
        summary::interleaved_table(&rounds);
    }
}
