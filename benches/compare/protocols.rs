//! Ours per protocol: our flusher thread's CPU per line for explicit flushes
//! (`ExporterHandle::flush`) of 100k labelled counters, sending included, at the default
//! payload size and at the largest one (where sends matter least).
//!
//! Isolation: these rows run before any other exporter is built in this process (`main` runs
//! them first), each exporter is shut down (its thread joined) before the next starts, and
//! each row checks that no other exporter thread is alive when it starts.
//!
//! Floor ratio (UDP rows at 1432 bytes): right after each measured flush, the same number of
//! datagrams goes out through each [`Method`] of the floor; the row's ratio is the median over
//! flushes of `(ns per line) / (floor ns per datagram / lines per datagram)`: how many times
//! the bare kernel cost of the datagrams the flush needed the whole flush costs.

use std::time::Duration;

use metrics_exporter_statsd_graphite::ExporterBuilder;

use crate::contenders::HOUR;
use crate::floor::{DATAGRAM, Floor, Method, SEGMENTS};
use crate::flush::{bump, labelled_counters};
use crate::frames::{FrameTally, PICKLE_FRAME_CAP, pickle_sink};
use crate::stats::median;
use crate::sys::{ThreadsCpu, udp_sink};

/// Measured flushes per row, after two warm ones (the first renders every key once).
const FLUSHES: usize = 5;

/// One protocol's flush cost, from our flusher thread's CPU and our own statistics.
#[derive(Debug, Clone)]
pub(crate) struct ProtocolCost {
    pub(crate) ns_per_line: f64,
    pub(crate) fill_percent: f64,
    pub(crate) bytes_per_line: f64,
    pub(crate) lines_per_payload: f64,
    /// Median over flushes of the ratio to each floor method (UDP rows at 1432 bytes only).
    pub(crate) vs_floor: Option<[Option<f64>; 3]>,
    /// How the fill was computed, where it is not plain bytes / (payloads x limit).
    pub(crate) fill_note: Option<String>,
}

/// Threads of this process named as an exporter's flusher: ours (`metrics-exporter-flusher`)
/// and dsd's (`metrics-exporter-dogstatsd-forwarder`), both cut to 15 bytes by the kernel.
fn exporter_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |dir| {
        dir.flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("comm"))
                    .is_ok_and(|c| c.starts_with("metrics-exporte"))
            })
            .count()
    })
}

/// Where a row sends: a UDP sink (optionally with the floor to pace against) or the pickle
/// frame receiver.
enum Wire<'a> {
    Udp(Option<&'a mut Floor>),
    Pickle(&'a FrameTally),
}

fn flush_ours_once(
    make: fn(String) -> ExporterBuilder,
    endpoint: &str,
    limit: usize,
    mut wire: Wire<'_>,
) -> ProtocolCost {
    let alive = exporter_threads();
    if alive > 0 {
        eprintln!("  WARNING: {alive} other exporter thread(s) alive during this row");
    }
    let (recorder, exporter) = make(endpoint.to_owned())
        .with_flush_interval(HOUR)
        .with_maximum_payload_length(limit)
        .with_max_series_per_metric(100_000)
        .build()
        .expect("builds");
    let cpu = ThreadsCpu::new();
    let guard = exporter.start().expect("starts");
    let handle = guard.handle();
    let counters = labelled_counters(&recorder, crate::flush::SERIES);
    let flush = || {
        bump(&counters);
        handle.flush().expect("flush");
    };
    (0..2).for_each(|_| flush());
    let frames0 = match &wire {
        Wire::Pickle(t) => t.read(),
        Wire::Udp(_) => [0; 4],
    };
    let (mut cpu_ns, mut ratios) = (0, [vec![], vec![], vec![]]);
    let s0 = handle.stats();
    for i in 0..FLUSHES {
        let (c0, a) = (cpu.snapshot(), handle.stats());
        flush();
        let (c1, b) = (cpu.snapshot(), handle.stats());
        let spent = ThreadsCpu::spent(&c0, &c1);
        cpu_ns += spent;
        if let Wire::Udp(Some(floor)) = &mut wire {
            let lines = (b.lines_sent - a.lines_sent).max(1) as f64;
            let payloads = (b.payloads_sent - a.payloads_sent).max(1);
            let per_line = spent as f64 / lines;
            let per_datagram = lines / payloads as f64;
            #[allow(clippy::cast_possible_truncation, reason = "a few thousand datagrams")]
            let batches = (payloads as usize).div_ceil(SEGMENTS);
            for k in 0..Method::ALL.len() {
                let m = Method::ALL[(k + i) % Method::ALL.len()];
                if let Some(ns) = floor.measure(m, batches) {
                    ratios[m as usize].push(per_line / (ns / per_datagram));
                }
            }
        }
    }
    let s1 = handle.stats();
    let lines = (s1.lines_sent - s0.lines_sent).max(1) as f64;
    let bytes = (s1.bytes_sent - s0.bytes_sent) as f64;
    let payloads = (s1.payloads_sent - s0.payloads_sent).max(1) as f64;
    let (fill_percent, fill_note) = match wire {
        Wire::Pickle(tally) => {
            std::thread::sleep(Duration::from_millis(200)); // the receiver reads the rest
            pickle_fill(tally, frames0, limit, payloads)
        }
        Wire::Udp(_) => (100.0 * bytes / (payloads * limit as f64), None),
    };
    drop(guard.shutdown());
    ProtocolCost {
        ns_per_line: cpu_ns as f64 / lines,
        fill_percent,
        bytes_per_line: bytes / lines,
        lines_per_payload: lines / payloads,
        vs_floor: (limit == DATAGRAM && ratios.iter().any(|r| !r.is_empty()))
            .then(|| ratios.map(median)),
        fill_note,
    }
}

/// The pickle row's fill: the pickled bytes that reached the receiver, frame by frame,
/// against the limit that applies to them (see [`FrameTally::fill_since`]).
fn pickle_fill(
    tally: &FrameTally,
    before: [u64; 4],
    limit: usize,
    payloads: f64,
) -> (f64, Option<String>) {
    let fill = tally.fill_since(before, limit as u64);
    let why = if fill.limit == PICKLE_FRAME_CAP {
        "the frame cap (frames exceed the payload limit, which bounds the plaintext)"
    } else {
        "the payload limit"
    };
    let note = format!(
        "{} frames, {:.2} per payload, largest {} B, {} malformed; fill vs {} B, {why}",
        fill.frames,
        fill.frames as f64 / payloads,
        fill.largest,
        fill.malformed,
        fill.limit
    );
    (fill.percent, Some(note))
}

/// Each protocol at its default payload size, and at the largest its transport takes.
pub(crate) fn flush_ours_per_protocol() -> Vec<(&'static str, ProtocolCost, ProtocolCost)> {
    type Make = fn(String) -> ExporterBuilder;
    let (udp, _) = udp_sink();
    let udp = format!("udp://{udp}");
    let mut floor = Floor::new();
    let udp_rows: [(&str, Make); 3] = [
        ("statsd (udp)", ExporterBuilder::statsd),
        ("dogstatsd (udp)", ExporterBuilder::dogstatsd),
        ("graphite (udp)", ExporterBuilder::graphite),
    ];
    let mut out: Vec<_> = udp_rows
        .into_iter()
        .map(|(name, make)| {
            let default = flush_ours_once(make, &udp, DATAGRAM, Wire::Udp(Some(&mut floor)));
            let large = flush_ours_once(make, &udp, 65_507, Wire::Udp(None));
            (name, default, large)
        })
        .collect();
    // Pickle payloads are limited to 512 KiB (the builder's cap). A fresh receiver per row,
    // so its largest frame is that row's.
    let pickle = |limit| {
        let (tcp, frames) = pickle_sink();
        let endpoint = format!("tcp://{tcp}");
        let make = ExporterBuilder::graphite_pickle;
        flush_ours_once(make, &endpoint, limit, Wire::Pickle(&frames))
    };
    out.push(("graphite-pickle (tcp)", pickle(65_536), pickle(524_288)));
    if let Some(e) = floor.gso_refused() {
        eprintln!("  the kernel refused UDP_SEGMENT ({e}): no ratio to the GSO floor");
    }
    out
}

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

/// Prints the per-protocol rows.
pub(crate) fn print(rows: &[(&'static str, ProtocolCost, ProtocolCost)]) {
    eprintln!(
        "\nOurs, explicit flushes of 100k labelled counters, flusher CPU per line (encode + send), \
         alone in the process:"
    );
    eprintln!(
        "  {:<22} {:>15} {:>7} {:>10} {:>9} | {:>9} {:>9} {:>9} | {:>22}",
        "protocol",
        "default payload",
        "fill",
        "bytes/line",
        "lines/pl",
        "vs send",
        "vs mmsg",
        "vs gso",
        "largest payload"
    );
    for (name, default, large) in rows {
        let floor = default.vs_floor.unwrap_or([None; 3]);
        eprintln!(
            "  {name:<22} {:>10.1} ns/l {:>6.1}% {:>10.1} {:>9.1} | {:>9} {:>9} {:>9} | {:>10.1} ns/l ({:.1}% fill)",
            default.ns_per_line,
            default.fill_percent,
            default.bytes_per_line,
            default.lines_per_payload,
            ratio(floor[0]),
            ratio(floor[1]),
            ratio(floor[2]),
            large.ns_per_line,
            large.fill_percent,
        );
        for (size, cost) in [("default", default), ("largest", large)] {
            if let Some(note) = &cost.fill_note {
                eprintln!("      {size}: {note}");
            }
        }
    }
    eprintln!(
        "  (vs send/mmsg/gso: ns per line / (the floor's ns per {DATAGRAM}-byte datagram / lines \
         per datagram), median over {FLUSHES} flushes, each paired with the floor right after it)"
    );
}
