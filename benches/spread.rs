//! What the send spread does to a central receiver's peak: `HOSTS` exporters in one process
//! (each a simulated host with its own seed), each with `SERIES` counters, send Graphite
//! plaintext over TCP to one loopback receiver that timestamps every read. Reported per run:
//! the peak lines in any 100 ms (and 10 ms) window, the time each tick's lines took to
//! arrive, and whether every line carried its slot's aligned timestamp.
//!
//! Runs alternate without and with a spread, so load from elsewhere on the machine hits both.
//! `cargo bench --bench spread` (about a minute; no criterion: what it measures is a schedule,
//! lines per window, not CPU time).
#![allow(missing_docs, reason = "a bench binary")]
#![allow(
    clippy::expect_used,
    reason = "a bench that cannot set up must stop loudly"
)]
#![allow(
    clippy::print_stdout,
    clippy::cast_precision_loss,
    reason = "benches report on stdout"
)]

use std::collections::BTreeMap;
use std::io::Read;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use metrics_exporter_statsd_graphite::ExporterBuilder;

const HOSTS: u64 = 50;
const SERIES: usize = 500;
const INTERVAL: Duration = Duration::from_secs(2);
/// Ticks measured per run, after the first (which also opens the connections).
const TICKS: usize = 4;

/// One read: when it arrived (since the run started), the lines it completed, and the
/// timestamps those lines carried, with when each line arrived on the wall clock (ms).
#[derive(Default)]
struct Reads {
    arrivals: Vec<(Duration, usize)>,
    /// Per line: (its timestamp, the wall-clock ms it arrived).
    stamps: Vec<(u64, u128)>,
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}

/// A receiver on a free loopback port: every connection read on its own thread.
fn receiver(start: Instant) -> (String, Arc<Mutex<Reads>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("tcp://{}", listener.local_addr().expect("addr"));
    let reads = Arc::new(Mutex::new(Reads::default()));
    let shared = Arc::clone(&reads);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let reads = Arc::clone(&shared);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                let mut partial = Vec::new();
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let at = start.elapsed();
                    let wall = unix_ms();
                    partial.extend_from_slice(&buf[..n]);
                    let Some(end) = partial.iter().rposition(|&b| b == b'\n') else {
                        continue;
                    };
                    let text = String::from_utf8_lossy(&partial[..end]).into_owned();
                    partial.drain(..=end);
                    let stamps: Vec<(u64, u128)> = text
                        .lines()
                        .map(|line| {
                            let ts = line.rsplit(' ').next().and_then(|t| t.parse().ok());
                            (ts.expect("a timestamp"), wall)
                        })
                        .collect();
                    let mut reads = reads.lock().expect("not poisoned");
                    reads.arrivals.push((at, stamps.len()));
                    reads.stamps.extend(stamps);
                }
            });
        }
    });
    (endpoint, reads)
}

/// The most lines that arrived within any `window`.
fn peak(arrivals: &[(Duration, usize)], window: Duration) -> usize {
    let (mut best, mut sum, mut first) = (0, 0, 0);
    for &(at, n) in arrivals {
        sum += n;
        while arrivals[first].0 + window <= at {
            sum -= arrivals[first].1;
            first += 1;
        }
        best = best.max(sum);
    }
    best
}

/// One run: `HOSTS` exporters with `spread`, measured over `TICKS` ticks.
fn run(spread: Duration) {
    let start = Instant::now();
    let (endpoint, reads) = receiver(start);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = runtime.enter();
    let mut guards = Vec::new();
    let mut recorders = Vec::new();
    for host in 0..HOSTS {
        let mut builder = ExporterBuilder::graphite(endpoint.clone())
            .with_prefix(format!("host{host}"))
            .with_flush_interval(INTERVAL);
        if !spread.is_zero() {
            builder = builder.with_send_spread(spread).with_send_spread_seed(host);
        }
        let (recorder, exporter) = builder.build().expect("builds");
        metrics::with_local_recorder(&recorder, || {
            for series in 0..SERIES {
                metrics::counter!("requests", "series" => series.to_string()).increment(1);
            }
        });
        guards.push(exporter.start().expect("starts"));
        recorders.push(recorder);
    }
    // Every series is sent every tick (Graphite counters send their zeros), so a tick is
    // complete once HOSTS * SERIES of its lines arrived.
    let per_tick = usize::try_from(HOSTS).expect("small") * SERIES;
    let deadline = Instant::now() + INTERVAL * u32::try_from(TICKS + 3).expect("small");
    while reads.lock().expect("not poisoned").stamps.len() < per_tick * (TICKS + 1) {
        assert!(Instant::now() < deadline, "the ticks did not arrive");
        std::thread::sleep(Duration::from_millis(50));
    }
    let reads = std::mem::take(&mut *reads.lock().expect("not poisoned"));
    for guard in guards {
        // Shutdown's final flush is not part of the measurement.
        drop(guard.shutdown());
    }
    // Group arrivals by the slot they carry; drop the first (connection set-up) slot.
    let mut by_slot: BTreeMap<u64, (u128, u128, usize)> = BTreeMap::new();
    let mut misplaced = 0;
    for &(ts, wall) in &reads.stamps {
        let slot_ms = u128::from(ts) * 1000;
        if wall < slot_ms || wall >= slot_ms + INTERVAL.as_millis() {
            misplaced += 1;
        }
        let entry = by_slot.entry(ts).or_insert((u128::MAX, 0, 0));
        entry.0 = entry.0.min(wall);
        entry.1 = entry.1.max(wall);
        entry.2 += 1;
    }
    let first_slot = *by_slot.keys().next().expect("a slot");
    let skip_lines = reads
        .stamps
        .iter()
        .position(|&(ts, _)| ts != first_slot)
        .unwrap_or(0);
    // The arrivals after the first slot's lines.
    let mut seen = 0;
    let arrivals: Vec<(Duration, usize)> = reads
        .arrivals
        .iter()
        .filter(|&&(_, n)| {
            seen += n;
            seen > skip_lines
        })
        .copied()
        .collect();
    let spans: Vec<String> = by_slot
        .iter()
        .skip(1)
        .map(|(ts, (first, last, n))| {
            let into = first - u128::from(*ts) * 1000;
            format!("{n} lines from +{into} ms over {} ms", last - first)
        })
        .collect();
    println!(
        "spread {:>5} ms: peak {:>6} lines/100 ms, {:>6} lines/10 ms; lines outside their slot: {misplaced}; ticks: {}",
        spread.as_millis(),
        peak(&arrivals, Duration::from_millis(100)),
        peak(&arrivals, Duration::from_millis(10)),
        spans.join("; "),
    );
}

fn main() {
    println!(
        "{HOSTS} exporters x {SERIES} counters, Graphite plaintext over TCP to one loopback receiver, {} s interval",
        INTERVAL.as_secs()
    );
    for _ in 0..2 {
        for spread in [
            Duration::ZERO,
            Duration::from_millis(250),
            Duration::from_secs(1),
        ] {
            run(spread);
        }
    }
}
