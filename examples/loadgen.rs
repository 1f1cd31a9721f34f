//! A load generator: N threads update M series for T seconds through the global recorder,
//! while the exporter flushes on its timer; then it prints what that cost.
//!
//! ```text
//! cargo run --release --example loadgen -- --seconds 2
//! cargo run --release --example loadgen -- --threads 2 --series 100000 --protocol dogstatsd
//! cargo run --release --example loadgen -- --protocol graphite --endpoint tcp://127.0.0.1:2003
//! ```
//!
//! Options (all optional):
//! - `--threads N` (2), `--series M` (1000), `--seconds T` (5), `--interval-ms I` (1000);
//! - `--protocol statsd|dogstatsd|graphite|graphite-pickle` (statsd);
//! - `--kind counter|gauge|histogram|mixed` (counter): the kind of every series (`counter`
//!   increments by 1, `gauge` sets, `histogram` records); mixed makes series i a counter, a
//!   gauge or a histogram by i mod 3;
//! - `--endpoint URL`: where to send (`udp://host:port`, `tcp://host:port`, `unix:///path`,
//!   ...). Without it, a built-in sink on 127.0.0.1 receives and counts everything (UDP, or
//!   TCP for pickle), so the generator runs with no server.
//!
//! Updates go through cached handles (`Counter`, `Gauge`, `Histogram`), one series after the
//! other, each thread starting at its own offset. Series are labelled `series => "<i>"`.
//!
//! Printed: updates/s; the flusher's CPU time per line sent (read from
//! `/proc/self/task/<tid>/schedstat` for the threads the exporter started); payloads/s and
//! bytes/s sent; lines received by the built-in sink; the exporter's drop counters; and the
//! process's resident memory (`VmRSS`, `VmHWM`).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports on stdout, usage errors on stderr"
)]
#![allow(
    clippy::expect_used,
    reason = "a load generator that cannot set up must stop loudly"
)]
#![allow(clippy::cast_precision_loss, reason = "rates are printed as floats")]

#[allow(dead_code, reason = "shared with the benches, which use more of it")]
#[path = "../benches/support/cpu.rs"]
mod cpu;
#[path = "../benches/compare/sys.rs"]
mod sys;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterStats};
use sys::{Tally, ThreadsCpu, tcp_sink, udp_sink};

/// What one update does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
    Mixed,
}

#[derive(Debug)]
struct Args {
    threads: usize,
    series: usize,
    seconds: f64,
    interval: Duration,
    protocol: String,
    kind: Kind,
    endpoint: Option<String>,
}

const USAGE: &str = "usage: loadgen [--threads N] [--series M] [--seconds T] [--interval-ms I] \
    [--protocol statsd|dogstatsd|graphite|graphite-pickle] [--kind counter|gauge|histogram|mixed] \
    [--endpoint URL]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        threads: 2,
        series: 1000,
        seconds: 5.0,
        interval: Duration::from_secs(1),
        protocol: "statsd".into(),
        kind: Kind::Counter,
        endpoint: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = |what: &str| -> Result<f64, String> {
            match value.parse::<f64>() {
                Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
                _ => Err(format!("{what} must be a positive number, not {value:?}")),
            }
        };
        match flag.as_str() {
            "--threads" => args.threads = count(number("--threads")?),
            "--series" => args.series = count(number("--series")?),
            "--seconds" => args.seconds = number("--seconds")?,
            "--interval-ms" => {
                args.interval = Duration::from_secs_f64(number("--interval-ms")? / 1000.0);
            }
            "--protocol" => args.protocol = value,
            "--endpoint" => args.endpoint = Some(value),
            "--kind" => {
                args.kind = match value.as_str() {
                    "counter" => Kind::Counter,
                    "gauge" => Kind::Gauge,
                    "histogram" => Kind::Histogram,
                    "mixed" => Kind::Mixed,
                    _ => return Err(format!("unknown --kind {value:?}")),
                };
            }
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    Ok(args)
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a positive count typed on a command line"
)]
fn count(v: f64) -> usize {
    (v as usize).max(1)
}

/// The builder for `protocol`.
fn builder(protocol: &str, endpoint: String) -> Result<ExporterBuilder, String> {
    Ok(match protocol {
        "statsd" => ExporterBuilder::statsd(endpoint),
        "dogstatsd" => ExporterBuilder::dogstatsd(endpoint),
        "graphite" => ExporterBuilder::graphite(endpoint),
        "graphite-pickle" => ExporterBuilder::graphite_pickle(endpoint),
        _ => return Err(format!("unknown --protocol {protocol:?}")),
    })
}

/// One series' handle.
enum Series {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

impl Series {
    /// Series `i` of `kind` (mixed: counters, gauges and histograms in turn), labelled with
    /// its number.
    fn register(i: usize, kind: Kind) -> Self {
        let label = i.to_string();
        let kind = match (kind, i % 3) {
            (Kind::Mixed, 0) => Kind::Counter,
            (Kind::Mixed, 1) => Kind::Gauge,
            (Kind::Mixed, _) => Kind::Histogram,
            (k, _) => k,
        };
        match kind {
            Kind::Counter | Kind::Mixed => {
                Self::Counter(metrics::counter!("loadgen.requests", "series" => label))
            }
            Kind::Gauge => Self::Gauge(metrics::gauge!("loadgen.in_flight", "series" => label)),
            Kind::Histogram => {
                Self::Histogram(metrics::histogram!("loadgen.latency", "series" => label))
            }
        }
    }

    fn update(&self, n: u64) {
        match self {
            Self::Counter(c) => c.increment(1),
            Self::Gauge(g) => g.set(n as f64),
            Self::Histogram(h) => h.record((n % 1000) as f64 / 1000.0),
        }
    }
}

/// Updates series from `start` on, round-robin, until `stop`; returns how many updates.
fn hammer(series: &[Series], start: usize, stop: &AtomicBool) -> u64 {
    let mut done = 0u64;
    let mut i = start % series.len();
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1024 {
            series[i].update(done);
            done += 1;
            i += 1;
            if i == series.len() {
                i = 0;
            }
        }
    }
    done
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            if !error.is_empty() {
                eprintln!("loadgen: {error}");
            }
            eprintln!("{USAGE}");
            return if error.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let pickle = args.protocol == "graphite-pickle";
    let (endpoint, sink): (String, Option<Arc<Tally>>) = match &args.endpoint {
        Some(e) => (e.clone(), None),
        None if pickle => {
            let (addr, tally) = tcp_sink();
            (format!("tcp://{addr}"), Some(tally))
        }
        None => {
            let (addr, tally) = udp_sink();
            (format!("udp://{addr}"), Some(tally))
        }
    };
    let (recorder, exporter) = builder(&args.protocol, endpoint.clone())?
        .with_flush_interval(args.interval)
        .build()
        .map_err(|e| e.to_string())?;
    let cpu = ThreadsCpu::new(); // from here on, new threads are the exporter's
    let guard = exporter.start().map_err(|e| e.to_string())?;
    let handle = guard.handle();
    metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;

    let series: Arc<Vec<Series>> = Arc::new(
        (0..args.series)
            .map(|i| Series::register(i, args.kind))
            .collect(),
    );
    println!(
        "loadgen: {} threads, {} series, {:?} updates, {} s, {} to {endpoint}, flush every {:?}",
        args.threads, args.series, args.kind, args.seconds, args.protocol, args.interval
    );

    let stop = Arc::new(AtomicBool::new(false));
    let updates = Arc::new(AtomicU64::new(0));
    let (cpu0, stats0, started) = (cpu.snapshot(), handle.stats(), Instant::now());
    let workers: Vec<_> = (0..args.threads)
        .map(|t| {
            let (series, stop, updates) =
                (Arc::clone(&series), Arc::clone(&stop), Arc::clone(&updates));
            let start = t * args.series / args.threads;
            std::thread::spawn(move || {
                let n = hammer(&series, start, &stop);
                updates.fetch_add(n, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().map_err(|_| "a worker thread panicked")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Measure the exporter's threads before shutdown ends them (the final flush is left out).
    let (cpu1, stats1) = (cpu.snapshot(), handle.stats());
    let (rss, peak) = memory_kib();
    let flush_cpu = ThreadsCpu::spent(&cpu0, &cpu1);
    let final_stats = guard.shutdown().map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(100)); // let the sink read the final flush
    report(
        args,
        elapsed,
        updates.load(Ordering::Relaxed),
        flush_cpu,
        (&stats0, &stats1, &final_stats),
        sink.as_deref(),
        (rss, peak),
    );
    Ok(())
}

fn report(
    args: &Args,
    elapsed: f64,
    updates: u64,
    flush_cpu_ns: u64,
    (before, during, last): (&ExporterStats, &ExporterStats, &ExporterStats),
    sink: Option<&Tally>,
    (rss, peak): (u64, u64),
) {
    let lines = during.lines_sent - before.lines_sent;
    let payloads = during.payloads_sent - before.payloads_sent;
    let bytes = during.bytes_sent - before.bytes_sent;
    println!(
        "updates:       {:>14.0} /s  ({updates} in {elapsed:.2} s, {:.1} ns per update per thread)",
        updates as f64 / elapsed,
        elapsed * 1e9 * args.threads as f64 / updates.max(1) as f64
    );
    println!(
        "flushes:       {:>14}     ({} lines, {:.1} lines per payload)",
        during.flushes - before.flushes,
        lines,
        lines as f64 / payloads.max(1) as f64
    );
    println!(
        "flush CPU:     {:>14.1} ns per line ({:.3} s CPU in {elapsed:.2} s, exporter threads)",
        flush_cpu_ns as f64 / lines.max(1) as f64,
        flush_cpu_ns as f64 / 1e9
    );
    println!(
        "sent:          {:>14.0} payloads/s, {:.0} bytes/s",
        payloads as f64 / elapsed,
        bytes as f64 / elapsed
    );
    if let Some(sink) = sink {
        // Counted over the whole run, the final flush included; a stream sink counts bytes only.
        match sink.read() {
            [0, b, 0] => println!("sink received: {b:>14} bytes"),
            [p, b, l] => println!("sink received: {p:>14} payloads, {b} bytes, {l} lines"),
        }
    }
    println!(
        "final:         {:>14} lines sent in total, {} flushes",
        last.lines_sent, last.flushes
    );
    println!(
        "drops:         payloads {} (lines {}), too long {}, invalid {}, unnamed {}, at shutdown {}, \
         send errors {}, histogram samples sampled out {}",
        last.payloads_dropped,
        last.lines_dropped_send,
        last.lines_dropped_too_long,
        last.values_dropped_invalid,
        last.values_dropped_unnamed,
        last.lines_dropped_shutdown,
        last.send_errors,
        last.samples_sampled_out
    );
    println!(
        "memory:        VmRSS {:.1} MiB, peak VmHWM {:.1} MiB",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}
