//! Flush cost per emitted line. See the crate docs for the method.

use std::time::{Duration, Instant};

use metrics::{Counter, Recorder, counter, with_local_recorder};

use crate::contenders::{dsd, mes, ours};
use crate::sys::{Tally, ThreadsCpu, udp_sink};

/// Series in the flush rows.
pub(crate) const SERIES: usize = 100_000;

/// `n` counters of one metric, labelled `route => "/api/<i>"` and `status => "200"`.
pub(crate) fn labelled_counters(r: &dyn Recorder, n: usize) -> Vec<Counter> {
    with_local_recorder(r, || {
        (0..n)
            .map(|i| counter!("bench.requests", "route" => format!("/api/{i}"), "status" => "200"))
            .collect()
    })
}

pub(crate) fn bump(counters: &[Counter]) {
    for c in counters {
        c.increment(1);
    }
}

/// What one exporter cost over a measurement window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlushCost {
    pub(crate) cpu_ns: u64,
    pub(crate) lines: u64,
    pub(crate) payloads: u64,
    bytes: u64,
    /// Lines the exporter says it sent, where it can say (ours): received < sent means the
    /// receiver lost datagrams, which would inflate the CPU per received line.
    pub(crate) sent: Option<u64>,
}

impl FlushCost {
    pub(crate) fn ns_per_line(self) -> f64 {
        self.cpu_ns as f64 / self.lines.max(1) as f64
    }

    pub(crate) fn fill(self, limit: f64) -> f64 {
        100.0 * self.bytes as f64 / (self.payloads.max(1) as f64 * limit)
    }
}

/// Increments every counter once per `interval` for `warm + rounds` intervals, the exporter
/// flushing on its own timer, and measures the last `rounds` of them.
pub(crate) fn timer_driven(
    counters: &[Counter],
    cpu: &ThreadsCpu,
    sink: &Tally,
    sent: &dyn Fn() -> Option<u64>,
    (warm, rounds, interval): (u32, u32, Duration),
) -> FlushCost {
    let round = || {
        let deadline = Instant::now() + interval;
        bump(counters);
        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
    };
    (0..warm).for_each(|_| round());
    let (cpu0, [p0, b0, l0], s0) = (cpu.snapshot(), sink.read(), sent());
    (0..rounds).for_each(|_| round());
    let (cpu1, [p1, b1, l1], s1) = (cpu.snapshot(), sink.read(), sent());
    FlushCost {
        cpu_ns: ThreadsCpu::spent(&cpu0, &cpu1),
        lines: l1 - l0,
        payloads: p1 - p0,
        bytes: b1 - b0,
        sent: s1.zip(s0).map(|(a, b)| a - b),
    }
}

/// The flush interval of the timer-driven comparison.
const TIMER: Duration = Duration::from_secs(1);

pub(crate) fn flush_ours_vs_dsd() -> (FlushCost, FlushCost, Option<FlushCost>) {
    let rounds = (2, 5, TIMER); // warm-up intervals, measured intervals, interval

    let (addr, sink) = udp_sink();
    let cpu = ThreadsCpu::new();
    let (recorder, guard) = ours(&addr, TIMER);
    let counters = labelled_counters(&recorder, SERIES);
    let handle = guard.handle();
    let ours = timer_driven(
        &counters,
        &cpu,
        &sink,
        &|| Some(handle.stats().lines_sent),
        rounds,
    );
    // Stopped (its thread joined) and its series gone before dsd is measured: a dropped
    // guard alone leaves the exporter flushing 100k series every second.
    drop(guard.shutdown());
    drop((counters, recorder));

    let (addr, sink) = udp_sink();
    let cpu = ThreadsCpu::new();
    let recorder = dsd(&addr, TIMER);
    let counters = labelled_counters(&recorder, SERIES);
    let dsd = timer_driven(&counters, &cpu, &sink, &|| None, rounds);

    // mes: each update is a line handed to cadence's worker thread.
    let (addr, sink) = udp_sink();
    let cpu = ThreadsCpu::new();
    let recorder = mes(&addr);
    let counters = labelled_counters(&recorder, SERIES);
    let (cpu0, [p0, b0, l0]) = (cpu.snapshot(), sink.read());
    bump(&counters);
    std::thread::sleep(Duration::from_millis(500)); // the worker drains the queue
    let (cpu1, [p1, b1, l1]) = (cpu.snapshot(), sink.read());
    let mes = FlushCost {
        cpu_ns: ThreadsCpu::spent(&cpu0, &cpu1),
        lines: l1 - l0,
        payloads: p1 - p0,
        bytes: b1 - b0,
        sent: None,
    };
    eprintln!(
        "mes: {} of {SERIES} updates arrived as lines ({:.1}% lost to its full queue)",
        mes.lines,
        100.0 - 100.0 * mes.lines as f64 / SERIES as f64
    );
    (ours, dsd, (mes.lines > 0).then_some(mes))
}

fn met(ratio: f64, max: f64) -> &'static str {
    if ratio <= max { "met" } else { "NOT met" }
}

/// Runs the timer-driven ours/dsd/mes flush comparison and prints it.
pub(crate) fn report() {
    // Runs last in the process: dsd's forwarder and mes's worker have no shutdown, so once
    // started here they flush 100k series every second for the rest of the process (the
    // per-protocol rows, run first, measured 522 ns/line after them, 2.8x the next row).
    let (ours, dsd, mes) = flush_ours_vs_dsd();
    eprintln!("\nFlush, 100k labelled counters, 1 s timer, UDP loopback, 1432-byte payloads:");
    for (name, cost) in [("ours", Some(ours)), ("dsd", Some(dsd)), ("mes", mes)] {
        if let Some(c) = cost {
            eprintln!(
                "  {name:<5} {:>8.1} ns CPU/line  {:>7} lines received ({} sent)  {:>5} payloads  {:>5.1}% fill",
                c.ns_per_line(),
                c.lines,
                c.sent.map_or_else(|| "?".into(), |s| s.to_string()),
                c.payloads,
                c.fill(1432.0)
            );
        }
    }
    let r = ours.ns_per_line() / dsd.ns_per_line();
    eprintln!("  ours/dsd = {r:.3} ({} <=0.15)", met(r, 0.15));
    if let Some(m) = mes {
        let r = ours.ns_per_line() / m.ns_per_line();
        eprintln!("  ours/mes = {r:.3} ({} <=0.02)", met(r, 0.02));
    }
}
