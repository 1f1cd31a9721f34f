//! Flush cost per emitted line. See the crate docs for the method.

use std::time::{Duration, Instant};

use metrics::{Counter, Recorder, counter, with_local_recorder};
use metrics_exporter_statsd_graphite::ExporterBuilder;

use crate::contenders::{HOUR, dsd, mes, ours};
use crate::sys::{Tally, ThreadsCpu, tcp_sink, udp_sink};

const SERIES: usize = 100_000;

fn labelled_counters(r: &dyn Recorder) -> Vec<Counter> {
    with_local_recorder(r, || {
        (0..SERIES)
            .map(|i| counter!("bench.requests", "route" => format!("/api/{i}"), "status" => "200"))
            .collect()
    })
}

fn bump(counters: &[Counter]) {
    for c in counters {
        c.increment(1);
    }
}

/// What one exporter cost over a measurement window.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlushCost {
    cpu_ns: u64,
    lines: u64,
    payloads: u64,
    bytes: u64,
    /// Lines the exporter says it sent, where it can say (ours): received < sent means the
    /// receiver lost datagrams, which would inflate the CPU per received line.
    sent: Option<u64>,
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
fn timer_driven(
    counters: &[Counter],
    cpu: &ThreadsCpu,
    sink: &Tally,
    sent: &dyn Fn() -> Option<u64>,
    (warm, rounds): (u32, u32),
) -> FlushCost {
    let interval = TIMER;
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
    let rounds = (2, 5); // warm-up intervals, measured intervals

    let (addr, sink) = udp_sink();
    let cpu = ThreadsCpu::new();
    let (recorder, guard) = ours(&addr, TIMER);
    let counters = labelled_counters(&recorder);
    let handle = guard.handle();
    let ours = timer_driven(
        &counters,
        &cpu,
        &sink,
        &|| Some(handle.stats().lines_sent),
        rounds,
    );
    drop(guard);

    let (addr, sink) = udp_sink();
    let cpu = ThreadsCpu::new();
    let recorder = dsd(&addr, TIMER);
    let counters = labelled_counters(&recorder);
    let dsd = timer_driven(&counters, &cpu, &sink, &|| None, rounds);

    // mes: each update is a line handed to cadence's worker thread.
    let (addr, sink) = udp_sink();
    let cpu = ThreadsCpu::new();
    let recorder = mes(&addr);
    let counters = labelled_counters(&recorder);
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

/// One protocol's flush cost, from our flusher thread's CPU and our own statistics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProtocolCost {
    ns_per_line: f64,
    fill_percent: f64,
    bytes_per_line: f64,
}

/// Our flusher thread's CPU per line for explicit flushes (`ExporterHandle::flush`) of 100k
/// labelled counters, payloads limited to `limit` bytes.
fn flush_ours_once(
    make: fn(String) -> ExporterBuilder,
    endpoint: &str,
    limit: usize,
) -> ProtocolCost {
    let (recorder, exporter) = make(endpoint.to_owned())
        .with_flush_interval(HOUR)
        .with_maximum_payload_length(limit)
        .build()
        .expect("builds");
    let cpu = ThreadsCpu::new();
    let guard = exporter.start().expect("starts");
    let handle = guard.handle();
    let counters = labelled_counters(&recorder);
    let flush = || {
        bump(&counters);
        handle.flush().expect("flush");
    };
    (0..2).for_each(|_| flush()); // the first flush renders every key once
    let (cpu0, s0) = (cpu.snapshot(), handle.stats());
    (0..5).for_each(|_| flush());
    let (cpu1, s1) = (cpu.snapshot(), handle.stats());
    let lines = (s1.lines_sent - s0.lines_sent).max(1) as f64;
    let bytes = (s1.bytes_sent - s0.bytes_sent) as f64;
    let payloads = (s1.payloads_sent - s0.payloads_sent).max(1) as f64;
    ProtocolCost {
        ns_per_line: ThreadsCpu::spent(&cpu0, &cpu1) as f64 / lines,
        fill_percent: 100.0 * bytes / (payloads * limit as f64),
        bytes_per_line: bytes / lines,
    }
}

/// Each protocol at its default payload size, and at the largest its transport takes, where
/// the send syscalls are amortised over so many lines that what is left is mostly encoding.
pub(crate) fn flush_ours_per_protocol() -> Vec<(&'static str, ProtocolCost, ProtocolCost)> {
    type Make = fn(String) -> ExporterBuilder;
    let (udp, _) = udp_sink();
    let (tcp, _) = tcp_sink();
    let (udp, tcp) = (format!("udp://{udp}"), format!("tcp://{tcp}"));
    // (name, constructor, endpoint, default payload, largest payload)
    let protocols: [(&str, Make, &str, usize, usize); 4] = [
        ("statsd (udp)", ExporterBuilder::statsd, &udp, 1432, 65_507),
        (
            "dogstatsd (udp)",
            ExporterBuilder::dogstatsd,
            &udp,
            1432,
            65_507,
        ),
        (
            "graphite (udp)",
            ExporterBuilder::graphite,
            &udp,
            1432,
            65_507,
        ),
        // Pickle payloads are limited to 512 KiB (the pickled frame stays under carbon's 1 MB).
        (
            "graphite-pickle (tcp)",
            ExporterBuilder::graphite_pickle,
            &tcp,
            65_536,
            524_288,
        ),
    ];
    protocols
        .into_iter()
        .map(|(name, make, endpoint, default, large)| {
            (
                name,
                flush_ours_once(make, endpoint, default),
                flush_ours_once(make, endpoint, large),
            )
        })
        .collect()
}

fn met(ratio: f64, max: f64) -> &'static str {
    if ratio <= max { "met" } else { "NOT met" }
}

/// Runs both flush measurements and prints them.
pub(crate) fn report() {
    // Our per-protocol rows first: dsd's forwarder and mes's worker have no shutdown, so once
    // `flush_ours_vs_dsd` has started them they flush 100k series every second for the rest
    // of the process, on the same two cores (the first per-protocol row measured 522 ns/line
    // after them, 2.8x the next row).
    let per_protocol = flush_ours_per_protocol();
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
    eprintln!(
        "\nOurs, explicit flushes of 100k labelled counters, flusher CPU per line (encode + send):"
    );
    eprintln!(
        "  {:<22} {:>15} {:>7} {:>10} | {:>22}",
        "protocol", "default payload", "fill", "bytes/line", "largest payload"
    );
    for (name, default, large) in per_protocol {
        eprintln!(
            "  {name:<22} {:>10.1} ns/l {:>6.1}% {:>10.1} | {:>10.1} ns/l ({} <=100)",
            default.ns_per_line,
            default.fill_percent,
            default.bytes_per_line,
            large.ns_per_line,
            met(large.ns_per_line, 100.0)
        );
    }
}
