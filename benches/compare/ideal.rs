//! The least any flusher can do per series, beside ours (issue 15's "flusher work per
//! series" and "StatsD ≤ 1.5× the GSO floor" targets): whether a target is out of reach on
//! this machine, or only out of ours.
//!
//! For N series (100k and 1M), each N in a child process of its own (a fresh heap), in
//! rounds whose order rotates:
//! - `ours active` / `ours idle`: our StatsD exporter over UDP, N labelled counters, an
//!   explicit flush with every counter counted once before it (active) or none (idle); the
//!   flusher thread's CPU (schedstat) per series, sending included.
//! - `ideal active`: a hand-written loop over N cells that does only what a StatsD line
//!   needs: swap the cell to 0, skip a 0, append the name, `:`, the digits (itoa), `|c`, the
//!   tail and a newline to a 128 KiB buffer, note where each 1432-byte datagram starts, and
//!   drop the buffer when full (it sends nothing). Its names and tails are copied from what
//!   ours sent, so it writes the same bytes. Two layouts:
//!   - `scattered`: each cell its own `Arc`, as `metrics` handles need (`Counter::from_arc`:
//!     one allocation per series), allocated one after another in a fresh heap, the densest
//!     layout separate allocations get; each series' name and tail in one allocation of
//!     their own, as ours.
//!   - `slab`: the cells in one array and every name and tail back to back in another, in
//!     walk order: the best layout there is, which a `metrics` handle can reach only through
//!     a pointer to the slab and an index, one more load on every update.
//! - `ideal idle`: the same cells, all 0: a plain load each, and the swap only if it is not 0.
//! - The GSO floor (`floor`): right after each active flush of ours, the kernel's CPU for
//!   as many 1432-byte datagrams as it sent, as one `sendmsg` with `UDP_SEGMENT` per 32.
//!
//! The ideal loops run on this thread and are timed by its schedstat. So the best any
//! design could do on the GSO target is `(ideal active + floor) ÷ floor` a line, and on the
//! flusher target (work outside the kernel) the ideal active loop itself. Medians of
//! per-round values; every ratio is the median of per-round ratios.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use metrics::Counter;
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterHandle};

use crate::contenders::HOUR;
use crate::cpu::own_cpu_ns;
use crate::floor::{Floor, Method, SEGMENTS};
use crate::flush::{bump, labelled_counters};
use crate::ideal_loop::{
    Out, Scattered, Slab, bump_cell, ideal_active, ideal_idle, lines_ours_sends, slab,
};
use crate::scale::in_child;
use crate::stats::median;
use crate::sys::{ThreadsCpu, udp_sink};

/// Rounds per size; each runs every measurement once.
const ROUNDS: usize = 9;
/// Per-round figures for one size, in ns per series (the floor per line).
#[derive(Debug, Default)]
struct Rounds {
    ours_active: Vec<f64>,
    ours_idle: Vec<f64>,
    /// Scattered cells, then the slab.
    loop_active: [Vec<f64>; 2],
    loop_idle: [Vec<f64>; 2],
    floor_line: Vec<f64>,
    lines_per_datagram: Vec<f64>,
}

/// The figures of one size, as printed.
#[derive(Debug)]
pub(crate) struct Ideal {
    series: usize,
    ours_active: f64,
    ours_idle: f64,
    /// Scattered cells, then the slab.
    loop_active: [f64; 2],
    loop_idle: [f64; 2],
    floor_line: f64,
    lines_per_datagram: f64,
    ours_vs_floor: f64,
    best_vs_floor: [f64; 2],
    ours_outside_kernel: f64,
}

fn med(v: &[f64]) -> f64 {
    median(v.to_vec()).unwrap_or(f64::NAN)
}

/// One size's contenders: our exporter and the ideal loop's two layouts.
struct Bench {
    n: usize,
    counters: Vec<Counter>,
    handle: ExporterHandle,
    cpu: ThreadsCpu,
    scattered: Vec<Scattered>,
    slab: Slab,
    out: Out,
}

impl Bench {
    fn ours_active(&self, floor: &mut Floor, r: &mut Rounds) {
        bump(&self.counters);
        let (c0, a) = (self.cpu.snapshot(), self.handle.stats());
        self.handle.flush().expect("flush");
        let (c1, b) = (self.cpu.snapshot(), self.handle.stats());
        assert_eq!(
            b.lines_sent - a.lines_sent,
            self.n as u64,
            "one line a series"
        );
        let per_datagram = (b.lines_sent - a.lines_sent) as f64
            / (b.payloads_sent - a.payloads_sent).max(1) as f64;
        r.ours_active
            .push(ThreadsCpu::spent(&c0, &c1) as f64 / self.n as f64);
        #[allow(clippy::cast_possible_truncation, reason = "a few thousand datagrams")]
        let batches = (b.payloads_sent - a.payloads_sent).div_ceil(SEGMENTS as u64) as usize;
        if let Some(ns) = floor.measure(Method::Gso, batches) {
            r.floor_line.push(ns / per_datagram);
            r.lines_per_datagram.push(per_datagram);
        }
    }

    fn ours_idle(&self, r: &mut Rounds) {
        let (c0, a) = (self.cpu.snapshot(), self.handle.stats());
        self.handle.flush().expect("flush");
        let (c1, b) = (self.cpu.snapshot(), self.handle.stats());
        assert_eq!(
            b.lines_sent, a.lines_sent,
            "an idle StatsD flush sends nothing"
        );
        let spent = ThreadsCpu::spent(&c0, &c1);
        r.ours_idle.push(spent as f64 / self.n as f64);
    }

    fn loop_active(&mut self, slab: bool, r: &mut Rounds) {
        let before = self.out.lines;
        let t0 = if slab {
            let s = &self.slab;
            s.cells.iter().for_each(bump_cell);
            let t0 = own_cpu_ns();
            let mut from = 0;
            let lines = s.cells.iter().zip(&s.ends).map(|(cell, &(name, end))| {
                let parts = (cell, &s.bytes[from..name], &s.bytes[name..end]);
                from = end;
                parts
            });
            ideal_active(lines, &mut self.out);
            t0
        } else {
            self.scattered.iter().for_each(|s| bump_cell(&s.cell));
            let t0 = own_cpu_ns();
            let lines = self.scattered.iter().map(|s| {
                let (name, tail) = s.parts.split_at(s.name_len);
                (&*s.cell, name, tail)
            });
            ideal_active(lines, &mut self.out);
            t0
        };
        let spent = own_cpu_ns().saturating_sub(t0);
        assert_eq!(self.out.lines - before, self.n as u64, "every line written");
        r.loop_active[usize::from(slab)].push(spent as f64 / self.n as f64);
    }

    fn loop_idle(&self, slab: bool, r: &mut Rounds) {
        let t0 = own_cpu_ns();
        let taken = if slab {
            ideal_idle(self.slab.cells.iter())
        } else {
            ideal_idle(self.scattered.iter().map(|s| &*s.cell))
        };
        let spent = own_cpu_ns().saturating_sub(t0);
        assert_eq!(taken, 0, "nothing was counted");
        r.loop_idle[usize::from(slab)].push(spent as f64 / self.n as f64);
    }
}

/// Everything for `n` series.
fn measure(n: usize, floor: &mut Floor) -> Ideal {
    let captured = lines_ours_sends(n);
    let lines = &captured.lines;
    assert_eq!(lines.len(), n, "every series' line captured");
    let (addr, _received) = udp_sink();
    // Each cell its own `Arc`, allocated one after another: the densest layout separate
    // allocations get (a registry allocates other things between them). The lines are
    // rendered later, at the first flush, as ours are.
    let cells: Vec<Arc<AtomicU64>> = (0..n).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let scattered = cells
        .into_iter()
        .zip(lines)
        .map(|(cell, (name, tail))| Scattered {
            cell,
            parts: [&name[..], tail].concat().into(),
            name_len: name.len(),
        })
        .collect();
    let (recorder, exporter) = ExporterBuilder::statsd(format!("udp://{addr}"))
        .with_flush_interval(HOUR)
        .with_max_series(n)
        .with_max_series_per_metric(n)
        .build()
        .expect("builds");
    let cpu = ThreadsCpu::new();
    let guard = exporter.start().expect("starts");
    let mut bench = Bench {
        n,
        counters: labelled_counters(&recorder, n),
        handle: guard.handle(),
        cpu,
        slab: slab(lines),
        scattered,
        out: Out::new(),
    };
    for _ in 0..2 {
        bump(&bench.counters);
        bench.handle.flush().expect("flush"); // the first renders every key
    }
    let mut r = Rounds::default();
    for round in 0..ROUNDS {
        for k in 0..6 {
            match (k + round) % 6 {
                0 => bench.ours_active(floor, &mut r),
                1 => bench.ours_idle(&mut r),
                2 => bench.loop_active(false, &mut r),
                3 => bench.loop_active(true, &mut r),
                4 => bench.loop_idle(false, &mut r),
                _ => bench.loop_idle(true, &mut r),
            }
        }
    }
    let stats = guard.shutdown().expect("shutdown");
    let ours_line = stats.bytes_sent as f64 / stats.lines_sent.max(1) as f64;
    let ideal_line = bench.out.bytes as f64 / bench.out.lines.max(1) as f64;
    // Ours leaves off each datagram's last newline; the ideal keeps it.
    assert!(
        (ideal_line - ours_line).abs() < 0.2,
        "the ideal loop writes ours' bytes: {ideal_line:.2} vs {ours_line:.2} a line"
    );
    let per_round =
        |f: &dyn Fn(usize) -> f64| med(&(0..r.floor_line.len()).map(f).collect::<Vec<_>>());
    Ideal {
        series: n,
        ours_active: med(&r.ours_active),
        ours_idle: med(&r.ours_idle),
        loop_active: [med(&r.loop_active[0]), med(&r.loop_active[1])],
        loop_idle: [med(&r.loop_idle[0]), med(&r.loop_idle[1])],
        floor_line: med(&r.floor_line),
        lines_per_datagram: med(&r.lines_per_datagram),
        ours_vs_floor: per_round(&|i| r.ours_active[i] / r.floor_line[i]),
        best_vs_floor: [0, 1]
            .map(|w| per_round(&|i| (r.loop_active[w][i] + r.floor_line[i]) / r.floor_line[i])),
        ours_outside_kernel: per_round(&|i| r.ours_active[i] - r.floor_line[i]),
    }
}

impl Ideal {
    fn to_numbers(&self) -> [f64; 13] {
        let [active_scattered, active_slab] = self.loop_active;
        let [idle_scattered, idle_slab] = self.loop_idle;
        let [best_scattered, best_slab] = self.best_vs_floor;
        #[allow(clippy::cast_precision_loss, reason = "a series count")]
        let series = self.series as f64;
        [
            series,
            self.ours_active,
            self.ours_idle,
            active_scattered,
            active_slab,
            idle_scattered,
            idle_slab,
            self.floor_line,
            self.lines_per_datagram,
            self.ours_vs_floor,
            best_scattered,
            best_slab,
            self.ours_outside_kernel,
        ]
    }

    fn from_numbers(v: &[f64]) -> Option<Self> {
        let &[
            series,
            oa,
            oi,
            as_,
            asl,
            is,
            isl,
            fl,
            lpd,
            ovf,
            bs,
            bsl,
            ook,
        ] = v
        else {
            return None;
        };
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a series count, printed by the child"
        )]
        let series = series as usize;
        Some(Self {
            series,
            ours_active: oa,
            ours_idle: oi,
            loop_active: [as_, asl],
            loop_idle: [is, isl],
            floor_line: fl,
            lines_per_datagram: lpd,
            ours_vs_floor: ovf,
            best_vs_floor: [bs, bsl],
            ours_outside_kernel: ook,
        })
    }
}

/// The section: 100k and 1M series, each in a child process of this bench binary, so the
/// cells and ours are allocated in a fresh heap (in a heap that freed a million series just
/// before, the next cells land wherever the freed chunks were, and an active flush over
/// them cost four to six times as much).
pub(crate) fn report() -> Vec<Ideal> {
    let rows: Vec<Ideal> = [100_000, 1_000_000]
        .iter()
        .filter_map(|n| Ideal::from_numbers(&in_child(&format!("ideal:{n}"))?))
        .collect();
    print(&rows);
    rows
}

/// The child's task `ideal:N`: prints one size's figures as the parent reads them.
#[allow(clippy::print_stdout, reason = "the child's answer to its parent")]
pub(crate) fn child(task: &str) {
    let n = task
        .strip_prefix("ideal:")
        .and_then(|n| n.parse().ok())
        .expect("ideal:N");
    let mut floor = Floor::new();
    floor.measure(Method::Gso, 10); // warm the socket and the receiver
    let numbers = measure(n, &mut floor).to_numbers();
    let text: Vec<String> = numbers.iter().map(f64::to_string).collect();
    println!("RESULT {}", text.join(" "));
}

/// Prints the section's rows.
pub(crate) fn print(rows: &[Ideal]) {
    eprintln!(
        "\nThe ideal flusher beside ours: CPU ns per series per flush (StatsD, counters, \
         {ROUNDS} rounds, medians; ideal = scattered cells / a slab, no send)"
    );
    eprintln!(
        "  {:>9} | {:>8} {:>13} {:>8} | {:>6} {:>13} {:>8} | {:>9} {:>7} | {:>8} {:>15} | {:>10}",
        "series",
        "ours act",
        "ideal act",
        "target",
        "ours",
        "ideal idle",
        "target",
        "gso/line",
        "l/dgram",
        "ours/gso",
        "ideal+gso/gso",
        "ours-gso"
    );
    for r in rows {
        eprintln!(
            "  {:>9} | {:>8.1} {:>6.1} /{:>5.1} {:>8} | {:>6.2} {:>6.2} /{:>5.2} {:>8} | {:>9.1} {:>7.1} | {:>7.2}x {:>6.2}x /{:>6.2}x | {:>10.1}",
            r.series,
            r.ours_active,
            r.loop_active[0],
            r.loop_active[1],
            "<= 10",
            r.ours_idle,
            r.loop_idle[0],
            r.loop_idle[1],
            "<= 5",
            r.floor_line,
            r.lines_per_datagram,
            r.ours_vs_floor,
            r.best_vs_floor[0],
            r.best_vs_floor[1],
            r.ours_outside_kernel,
        );
    }
    eprintln!(
        "  (ideal+gso/gso: the best any design could reach on 'StatsD <= 1.5x the GSO floor'; \
         ours-gso: our work outside the kernel, against <= 10 ns active)"
    );
}
