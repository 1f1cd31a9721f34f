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
//! After the criterion groups, two measurements criterion cannot make (skipped when a filter
//! that does not match "flush" is given, and in `cargo test`'s test mode):
//! - Flush CPU per emitted line, ours vs dsd: 100k labelled counters, each incremented once per
//!   1 s interval, both exporters flushing on their own timer to a real UDP socket on loopback
//!   (1432-byte payloads, the default of both). We read the CPU time of the exporter's own
//!   threads (the threads that appeared when it was built or started) from
//!   `/proc/self/task/<tid>/schedstat` before and after a window of whole intervals, and count
//!   the lines and bytes that arrive at the receiving socket in the same window. The same
//!   driver code runs for both. mes has no flush; its per-line cost is its cadence worker's CPU
//!   (queue pop, buffer, send) over the same 100k updates, the formatting being in the update
//!   rows already.
//! - Ours per protocol, an upper bound on encoding cost: CPU of our flusher thread per line
//!   for explicit flushes (`ExporterHandle::flush`) of 100k labelled counters, all four
//!   protocols, sending included. Encoding alone is not reachable from outside the crate.
//!
//! Finally a ratio table (medians from criterion's `estimates.json` written in this run) is
//! printed to stderr.
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

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use metrics::{
    Counter, Gauge, Histogram, NoopRecorder, Recorder, counter, gauge, histogram,
    with_local_recorder,
};
use metrics_exporter_dogstatsd::{DogStatsDBuilder, DogStatsDRecorder};
use metrics_exporter_statsd::{StatsdBuilder, StatsdRecorder};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterGuard, ExporterRecorder};

const HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// Receivers and thread CPU

/// What a loopback receiver saw.
#[derive(Debug, Default)]
struct Tally {
    payloads: AtomicU64,
    bytes: AtomicU64,
    lines: AtomicU64,
}

impl Tally {
    fn read(&self) -> [u64; 3] {
        [&self.payloads, &self.bytes, &self.lines].map(|c| c.load(Ordering::Relaxed))
    }

    fn add(&self, payload: &[u8]) {
        // A payload's last line may or may not end with a newline (dsd leaves it off).
        let lines = payload.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        self.lines
            .fetch_add(lines.count() as u64, Ordering::Relaxed);
        self.payloads.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
    }
}

/// A UDP socket on loopback, drained and tallied by a thread. Returns its `host:port`.
fn udp_sink() -> (String, Arc<Tally>) {
    // A large receive buffer (the kernel caps it at net.core.rmem_max, 4 MiB here), so a
    // burst of 100k lines (about 3 MB) is not lost before the thread reads it.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    drop(socket.set_recv_buffer_size(8 << 20));
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let socket = UdpSocket::from(socket);
    let addr = socket.local_addr().expect("addr").to_string();
    let tally = Arc::new(Tally::default());
    let t = Arc::clone(&tally);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = socket.recv(&mut buf) {
            t.add(&buf[..n]);
        }
    });
    (addr, tally)
}

/// A TCP listener on loopback that reads and tallies bytes (for pickle). Returns `host:port`.
fn tcp_sink() -> (String, Arc<Tally>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let tally = Arc::new(Tally::default());
    let t = Arc::clone(&tally);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    t.bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, tally)
}

/// The ids of this process's threads.
fn threads() -> HashSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Nanoseconds thread `tid` has run on a CPU (first field of its schedstat), if readable.
fn thread_cpu_ns(tid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// CPU time of the threads that appeared since `before` was taken: the exporter's own.
#[derive(Debug)]
struct ThreadsCpu {
    before: HashSet<u32>,
}

impl ThreadsCpu {
    fn snapshot(&self) -> HashMap<u32, u64> {
        threads()
            .difference(&self.before)
            .filter_map(|&tid| Some((tid, thread_cpu_ns(tid)?)))
            .collect()
    }

    /// CPU nanoseconds spent between two snapshots (threads born in between count in full).
    fn spent(start: &HashMap<u32, u64>, end: &HashMap<u32, u64>) -> u64 {
        end.iter()
            .map(|(tid, ns)| ns.saturating_sub(start.get(tid).copied().unwrap_or(0)))
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// The contenders

struct Contenders {
    ours: ExporterRecorder,
    _guard: ExporterGuard,
    dsd: DogStatsDRecorder,
    mes: StatsdRecorder,
}

fn ours(endpoint: &str, interval: Duration) -> (ExporterRecorder, ExporterGuard) {
    let (recorder, exporter) = ExporterBuilder::dogstatsd(format!("udp://{endpoint}"))
        .with_flush_interval(interval)
        .build()
        .expect("builds");
    (recorder, exporter.start().expect("starts"))
}

fn dsd(endpoint: &str, interval: Duration) -> DogStatsDRecorder {
    DogStatsDBuilder::default()
        .with_remote_address(endpoint)
        .expect("address")
        .with_flush_interval(interval)
        .with_telemetry(false)
        .build()
        .expect("builds")
}

fn mes(endpoint: &str) -> StatsdRecorder {
    let (host, port) = endpoint.rsplit_once(':').expect("host:port");
    StatsdBuilder::from(host, port.parse().expect("port"))
        // `from` leaves the queue at 256 entries (a known slip); 5000 is its documented default.
        .with_queue_size(5000)
        .build(None)
        .expect("builds")
}

impl Contenders {
    fn new() -> Self {
        let (ours, guard) = ours(&udp_sink().0, HOUR);
        Self {
            ours,
            _guard: guard,
            dsd: dsd(&udp_sink().0, HOUR),
            mes: mes(&udp_sink().0),
        }
    }

    /// Each recorder by the name its criterion bench gets.
    fn each(&self) -> [(&'static str, &dyn Recorder); 3] {
        [("ours", &self.ours), ("dsd", &self.dsd), ("mes", &self.mes)]
    }
}

// ---------------------------------------------------------------------------------------------
// Hot-path groups

fn group<'a>(c: &'a mut Criterion, name: &str, elements: u64) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(elements));
    g
}

fn cached(c: &mut Criterion, who: &Contenders) {
    let atomic = AtomicU64::new(0);
    let mut g = group(c, "cmp_counter_increment", 1);
    g.bench_function("atomic", |b| {
        b.iter(|| black_box(&atomic).fetch_add(black_box(1), Ordering::Relaxed));
    });
    for (name, r) in who.each() {
        let h: Counter = with_local_recorder(r, || counter!("requests"));
        g.bench_function(name, |b| b.iter(|| h.increment(black_box(1))));
    }
    g.finish();

    let mut g = group(c, "cmp_gauge_set", 1);
    g.bench_function("atomic", |b| {
        b.iter(|| black_box(&atomic).store(black_box(2.0f64).to_bits(), Ordering::Relaxed));
    });
    for (name, r) in who.each() {
        let h: Gauge = with_local_recorder(r, || gauge!("in_flight"));
        g.bench_function(name, |b| b.iter(|| h.set(black_box(2.0))));
    }
    g.finish();

    let mut g = group(c, "cmp_gauge_increment", 1);
    g.bench_function("atomic", |b| {
        b.iter(|| {
            black_box(&atomic).fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some((f64::from_bits(v) + black_box(1.0)).to_bits())
            })
        });
    });
    for (name, r) in who.each() {
        let h: Gauge = with_local_recorder(r, || gauge!("in_flight"));
        g.bench_function(name, |b| b.iter(|| h.increment(black_box(1.0))));
    }
    g.finish();

    let mut g = group(c, "cmp_histogram_record", 1);
    g.bench_function("atomic", |b| {
        b.iter(|| black_box(&atomic).fetch_add(black_box(1), Ordering::Relaxed));
    });
    for (name, r) in who.each() {
        let h: Histogram = with_local_recorder(r, || histogram!("latency"));
        g.bench_function(name, |b| b.iter(|| h.record(black_box(0.012))));
    }
    g.finish();
}

fn macros(c: &mut Criterion, who: &Contenders) {
    let atomic = AtomicU64::new(0);
    let noop = NoopRecorder;
    let mut all: Vec<(&str, &dyn Recorder)> = vec![("noop", &noop)];
    all.extend(who.each());

    let mut g = group(c, "cmp_counter_macro_static_labels", 1);
    g.bench_function("atomic", |b| {
        b.iter(|| black_box(&atomic).fetch_add(black_box(1), Ordering::Relaxed));
    });
    for &(name, r) in &all {
        with_local_recorder(r, || {
            g.bench_function(name, |b| {
                b.iter(|| counter!("requests", "route" => "/a", "status" => "200").increment(1));
            });
        });
    }
    g.finish();

    let mut g = group(c, "cmp_histogram_macro_static_labels", 1);
    g.bench_function("atomic", |b| {
        b.iter(|| black_box(&atomic).fetch_add(black_box(1), Ordering::Relaxed));
    });
    for &(name, r) in &all {
        with_local_recorder(r, || {
            g.bench_function(name, |b| {
                b.iter(|| {
                    histogram!("latency", "route" => "/a", "status" => "200").record(0.012);
                });
            });
        });
    }
    g.finish();
}

/// An atomic alone on its cache line (and the next: adjacent-line prefetch), so two of them
/// never share one.
#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// One iteration = one call of `mine` on this thread and one of `theirs` on a helper thread,
/// started together behind a barrier; the time is until both are done.
fn two_threads(
    b: &mut criterion::Bencher<'_>,
    mine: &(dyn Fn() + Sync),
    theirs: &(dyn Fn() + Sync),
) {
    b.iter_custom(|iters| {
        let start_line = Barrier::new(2);
        std::thread::scope(|s| {
            let helper = s.spawn(|| {
                start_line.wait();
                (0..iters).for_each(|_| theirs());
            });
            start_line.wait();
            let start = Instant::now();
            (0..iters).for_each(|_| mine());
            helper.join().expect("helper");
            start.elapsed()
        })
    });
}

fn contended(c: &mut Criterion, who: &Contenders) {
    let (a, b2) = (Padded::default(), Padded::default());
    let mut g = group(c, "cmp_two_threads_same_counter", 2);
    let add_a = || {
        a.0.fetch_add(1, Ordering::Relaxed);
    };
    g.bench_function("atomic", |b| two_threads(b, &add_a, &add_a));
    for (name, r) in who.each() {
        let h = with_local_recorder(r, || counter!("shared"));
        let inc = || h.increment(1);
        g.bench_function(name, |b| two_threads(b, &inc, &inc));
    }
    g.finish();

    let mut g = group(c, "cmp_two_threads_distinct_counters", 2);
    let add_b = || {
        b2.0.fetch_add(1, Ordering::Relaxed);
    };
    g.bench_function("atomic", |b| two_threads(b, &add_a, &add_b));
    for (name, r) in who.each() {
        // Registered one after the other, as a program's series usually are.
        let (h1, h2) = with_local_recorder(r, || (counter!("one"), counter!("two")));
        let (inc1, inc2) = (|| h1.increment(1), || h2.increment(1));
        g.bench_function(name, |b| two_threads(b, &inc1, &inc2));
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Flush CPU per line

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
struct FlushCost {
    cpu_ns: u64,
    lines: u64,
    payloads: u64,
    bytes: u64,
    /// Lines the exporter says it sent, where it can say (ours): received < sent means the
    /// receiver lost datagrams, which would inflate the CPU per received line.
    sent: Option<u64>,
}

impl FlushCost {
    fn ns_per_line(self) -> f64 {
        self.cpu_ns as f64 / self.lines.max(1) as f64
    }

    fn fill(self, limit: f64) -> f64 {
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

fn flush_ours_vs_dsd() -> (FlushCost, FlushCost, Option<FlushCost>) {
    let rounds = (2, 5); // warm-up intervals, measured intervals

    let (addr, sink) = udp_sink();
    let cpu = ThreadsCpu { before: threads() };
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
    let cpu = ThreadsCpu { before: threads() };
    let recorder = dsd(&addr, TIMER);
    let counters = labelled_counters(&recorder);
    let dsd = timer_driven(&counters, &cpu, &sink, &|| None, rounds);

    // mes: each update is a line handed to cadence's worker thread.
    let (addr, sink) = udp_sink();
    let cpu = ThreadsCpu { before: threads() };
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
struct ProtocolCost {
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
    let cpu = ThreadsCpu { before: threads() };
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
fn flush_ours_per_protocol() -> Vec<(&'static str, ProtocolCost, ProtocolCost)> {
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

// ---------------------------------------------------------------------------------------------
// The summary

/// Where criterion writes its reports: as criterion itself decides, short of `cargo metadata`
/// (the bench binary is `<target>/<profile>/deps/compare-<hash>`).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(|t| t.join("criterion")))
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// The median time per iteration (ns) of `group/bench`, if criterion wrote it in this run.
fn median_ns(group: &str, bench: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(bench)
        .join("new/estimates.json");
    if std::fs::metadata(&path).ok()?.modified().ok()? < since {
        return None; // left from an earlier run (filtered out of this one)
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// (group, row title, target on ours/dsd, target on ours/atomic)
const ROWS: [(&str, &str, Option<f64>, Option<f64>); 8] = [
    (
        "cmp_counter_increment",
        "cached Counter::increment",
        Some(0.5),
        Some(2.0),
    ),
    ("cmp_gauge_set", "cached Gauge::set", Some(1.0), None),
    ("cmp_gauge_increment", "cached Gauge::increment", None, None),
    (
        "cmp_histogram_record",
        "cached Histogram::record",
        Some(0.5),
        None,
    ),
    (
        "cmp_counter_macro_static_labels",
        "counter!(k => v).increment",
        Some(0.9),
        None,
    ),
    (
        "cmp_histogram_macro_static_labels",
        "histogram!(k => v).record",
        None,
        None,
    ),
    (
        "cmp_two_threads_same_counter",
        "2 threads, same counter",
        Some(1.0),
        None,
    ),
    (
        "cmp_two_threads_distinct_counters",
        "2 threads, distinct counters",
        None,
        None,
    ),
];

fn verdict(ratio: Option<f64>, max: Option<f64>) -> String {
    match (ratio, max) {
        (Some(r), Some(m)) => format!("{r:.2} ({} <={m})", if r <= m { "met" } else { "NOT met" }),
        (Some(r), None) => format!("{r:.2}"),
        (None, _) => "-".into(),
    }
}

fn summary(since: SystemTime) {
    eprintln!("\nMedian ns per iteration (two-thread rows: wall time for one op on each thread)");
    eprintln!(
        "{:<30} {:>7} {:>7} {:>7} {:>8} | {:<20} {:<18} {:<18}",
        "workload", "atomic", "ours", "dsd", "mes", "ours/dsd", "ours/atomic", "ours/mes (<=0.02)"
    );
    for (group, title, dsd_max, atomic_max) in ROWS {
        let [atomic, ours, dsd, mes] =
            ["atomic", "ours", "dsd", "mes"].map(|b| median_ns(group, b, since));
        let ratio = |other: Option<f64>| Some(ours? / other?);
        let ns = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.2}"));
        // mes's gauge increment does nothing at all, so no ratio against it means anything.
        let mes_max = (group != "cmp_gauge_increment").then_some(0.02);
        eprintln!(
            "{title:<30} {:>7} {:>7} {:>7} {:>8} | {:<20} {:<18} {:<18}",
            ns(atomic),
            ns(ours),
            ns(dsd),
            ns(mes),
            verdict(ratio(dsd), dsd_max),
            verdict(ratio(atomic), atomic_max),
            verdict(ratio(mes), mes_max),
        );
    }
}

fn flush_report() {
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
    eprintln!(
        "  ours/dsd = {r:.3} ({} <=0.15)",
        if r <= 0.15 { "met" } else { "NOT met" }
    );
    if let Some(m) = mes {
        let r = ours.ns_per_line() / m.ns_per_line();
        eprintln!(
            "  ours/mes = {r:.3} ({} <=0.02)",
            if r <= 0.02 { "met" } else { "NOT met" }
        );
    }
    eprintln!(
        "\nOurs, explicit flushes of 100k labelled counters, flusher CPU per line (encode + send):"
    );
    eprintln!(
        "  {:<22} {:>15} {:>7} {:>10} | {:>22}",
        "protocol", "default payload", "fill", "bytes/line", "largest payload (~encode)"
    );
    for (name, default, large) in flush_ours_per_protocol() {
        eprintln!(
            "  {name:<22} {:>10.1} ns/l {:>6.1}% {:>10.1} | {:>10.1} ns/l ({} <=100)",
            default.ns_per_line,
            default.fill_percent,
            default.bytes_per_line,
            large.ns_per_line,
            if large.ns_per_line <= 100.0 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
}

fn main() {
    let since = SystemTime::now();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .configure_from_args();
    let who = Contenders::new();
    cached(&mut c, &who);
    macros(&mut c, &who);
    contended(&mut c, &who);
    c.final_summary();

    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let filter = args.iter().find(|a| !a.starts_with('-'));
    if benching && filter.is_none_or(|f| "flush".contains(f.as_str())) {
        flush_report();
    }
    if benching {
        summary(since);
    }
}
