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
//!
//! Every exporter sends to its own UDP socket on loopback, drained by a thread, so none of them
//! sees send errors. Ours and dsd flush every hour during the hot-path groups: their
//! background threads stay idle and the second core stays free for the two-thread rows. (dsd's
//! raw histograms keep every sample until a flush, so this process grows by a few hundred MB
//! during the histogram rows; ours keeps a bounded reservoir and, never drained here, pays its
//! sampling path, the steady state of a busy histogram.)
//!
//! Handles and macros are exercised through `metrics::with_local_recorder`, so all recorders
//! live in one process. A program using the global recorder pays one more indirection (an
//! atomic load of the global `&dyn Recorder`) in the macro rows, the same for every recorder.
//!
//! After the criterion groups (skipped in `cargo test`'s test mode, where criterion runs each
//! bench once):
//! - The interleaved runner (`hot::interleave`): short batches of every contender in rotation,
//!   41 rounds, so load from other processes hits all contenders alike; the verdicts use the
//!   median of its per-round ratios. A filter argument restricts it to groups containing it.
//! - Flush CPU per emitted line, ours vs dsd (skipped when a filter not matching "flush" is
//!   given): 100k labelled counters, each incremented once per 1 s interval, both exporters
//!   flushing on their own timer to a real UDP socket on loopback (1432-byte payloads, the
//!   default of both). We read the CPU time of the exporter's own threads (the threads that
//!   appeared when it was built or started) from `/proc/self/task/<tid>/schedstat` before and
//!   after a window of whole intervals, and count the lines and bytes that arrive at the
//!   receiving socket in the same window. The same driver code runs for both. mes has no
//!   flush; its per-line cost is its cadence worker's CPU (queue pop, buffer, send) over the
//!   same 100k updates, the formatting being in the update rows already.
//! - Ours per protocol: CPU of our flusher thread per line for explicit flushes
//!   (`ExporterHandle::flush`) of 100k labelled counters, all four protocols, sending
//!   included, at the default payload size and at the largest one (where sends matter
//!   least). Encoding alone is not reachable from outside the crate.
//!
//! Finally two tables go to stderr: criterion's medians (from the `estimates.json` files this
//! run wrote) and the interleaved medians and ratios, with the targets.
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

mod contenders;
mod direct;
mod floor;
mod flush;
mod frames;
mod hot;
mod machine;
mod protocols;
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
const SECTIONS: [&str; 4] = ["floor", "protocols", "hot", "flush"];

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

    let mut rounds = Vec::new();
    let hot = run("hot") || !benching;
    if hot {
        let who = contenders::Contenders::new();
        let direct = direct::Direct::new();
        let (atomics, noop) = (hot::Floor::default(), NoopRecorder);
        let workloads = hot::workloads(&who, &direct, &atomics, &noop);
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
    if hot {
        summary::criterion_table(since);
        summary::interleaved_table(&rounds);
    }
}
