//! Flusher CPU per line for explicit flushes of 100k labelled counters over UDP loopback at
//! 1432-byte payloads, StatsD, DogStatsD and Graphite plaintext: what sending runs of
//! equal-length datagrams in one call (segmentation offload, Linux) saves over one `send`
//! each. Only public API, so the same file runs on a build without runs (the baseline):
//! alternate the two binaries and compare (the ratios are in the report of issue 15).
//!
//! CPU is the flusher thread's, from `/proc/self/task/<tid>/schedstat` (nanoseconds on CPU,
//! kernel time included, which is where the send path spends it). Each protocol prints the
//! median of 7 measurements of 5 flushes each, after 2 warm-up flushes.
#![allow(
    missing_docs,
    clippy::cast_precision_loss,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "a benchmark: it prints its results, and a failed setup must stop it loudly"
)]

use std::collections::HashSet;
use std::net::UdpSocket;
use std::time::Duration;

use metrics::{Counter, counter, with_local_recorder};
use metrics_exporter_statsd_graphite::ExporterBuilder;

const SERIES: usize = 100_000;

fn tasks() -> HashSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn task_cpu_ns(tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A receiver thread that reads and discards every datagram.
fn sink() -> String {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    drop(socket.set_recv_buffer_size(8 << 20));
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let socket = UdpSocket::from(socket);
    let addr = socket.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while socket.recv(&mut buf).is_ok() {}
    });
    addr
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn measure(name: &str, make: fn(String) -> ExporterBuilder, endpoint: &str) {
    let before = tasks();
    let (recorder, exporter) = make(format!("udp://{endpoint}"))
        .with_flush_interval(Duration::from_secs(3600))
        .with_maximum_payload_length(1432)
        .with_max_series_per_metric(SERIES)
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    let handle = guard.handle();
    let counters: Vec<Counter> = with_local_recorder(&recorder, || {
        (0..SERIES)
            .map(|i| counter!("bench.requests", "route" => format!("/api/{i}"), "status" => "200"))
            .collect()
    });
    let flusher: Vec<u32> = tasks().difference(&before).copied().collect();
    let cpu = || flusher.iter().map(|&t| task_cpu_ns(t)).sum::<u64>();
    let flush = || {
        for c in &counters {
            c.increment(1);
        }
        handle.flush().expect("flush");
    };
    (0..2).for_each(|_| flush());
    let per_line: Vec<f64> = (0..7)
        .map(|_| {
            let (c0, s0) = (cpu(), handle.stats());
            (0..5).for_each(|_| flush());
            let (c1, s1) = (cpu(), handle.stats());
            (c1 - c0) as f64 / (s1.lines_sent - s0.lines_sent).max(1) as f64
        })
        .collect();
    let s = handle.stats();
    eprintln!(
        "{name:<10} {:>7.1} ns CPU/line (min {:>6.1})  {} payloads, {} lines, {} send errors",
        median(per_line.clone()),
        per_line.iter().copied().fold(f64::INFINITY, f64::min),
        s.payloads_sent,
        s.lines_sent,
        s.send_errors
    );
    guard.shutdown().expect("shutdown");
}

fn main() {
    let endpoint = sink();
    measure("statsd", ExporterBuilder::statsd, &endpoint);
    measure("dogstatsd", ExporterBuilder::dogstatsd, &endpoint);
    measure("graphite", ExporterBuilder::graphite, &endpoint);
}
