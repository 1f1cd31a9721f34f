//! Whole flushes through the public API: N labelled counters, each changed once per interval,
//! drained, encoded, packed into 1432-byte datagrams and sent to a real UDP socket on loopback
//! (a thread drains it). Throughput is in lines, so criterion reports time per emitted line.
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

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use metrics::{Counter, with_local_recorder};
use metrics_exporter_statsd_graphite::ExporterBuilder;

/// A protocol constructor of the builder.
type Protocol = fn(String) -> ExporterBuilder;

fn flush(c: &mut Criterion) {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("udp://{}", sink.local_addr().expect("addr"));
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while sink.recv(&mut buf).is_ok() {}
    });
    // A TCP sink that reads and discards every connection, for pickle.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let tcp = format!("tcp://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while conn.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    // (name, constructor, endpoint, payload limit: 1432-byte datagrams, 64 KiB TCP batches)
    let protocols: [(&str, Protocol, &str, f64); 4] = [
        ("statsd", ExporterBuilder::statsd, &endpoint, 1432.0),
        ("dogstatsd", ExporterBuilder::dogstatsd, &endpoint, 1432.0),
        ("graphite", ExporterBuilder::graphite, &endpoint, 1432.0),
        (
            "graphite_pickle_tcp",
            ExporterBuilder::graphite_pickle,
            &tcp,
            65_536.0,
        ),
    ];
    for (protocol, builder, endpoint, limit) in protocols {
        flush_protocol(c, protocol, builder, endpoint, limit);
    }
    telemetry(c, &endpoint);
}

/// The cost of self-telemetry: the same flush of 1000 labelled counters with it off and on
/// (the report is one more small datagram per flush), in one group so the two are measured
/// side by side.
fn telemetry(c: &mut Criterion, endpoint: &str) {
    const SERIES: usize = 1_000;
    let mut g = c.benchmark_group("flush_udp_statsd_telemetry");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.sample_size(20);
    for on in [false, true] {
        let (recorder, exporter) = ExporterBuilder::statsd(endpoint.to_owned())
            .with_flush_interval(Duration::from_secs(3600))
            .with_telemetry(on)
            .build()
            .expect("builds");
        let guard = exporter.start().expect("starts");
        let handle = guard.handle();
        let counters: Vec<Counter> = with_local_recorder(&recorder, || {
            (0..SERIES)
                .map(|i| metrics::counter!("bench.requests", "route" => format!("/api/{i}")))
                .collect()
        });
        let name = if on { "on" } else { "off" };
        g.bench_function(name, |b| {
            b.iter(|| {
                for c in &counters {
                    c.increment(1);
                }
                handle.flush().expect("flush");
            });
        });
        let stats = guard.shutdown().expect("shutdown");
        eprintln!(
            "telemetry {name}: {} user lines, {} telemetry lines over {} flushes",
            stats.lines_sent, stats.telemetry_lines_sent, stats.flushes
        );
    }
    g.finish();
}

fn flush_protocol(
    c: &mut Criterion,
    protocol: &str,
    builder: fn(String) -> ExporterBuilder,
    endpoint: &str,
    limit: f64,
) {
    let mut g = c.benchmark_group(format!("flush_udp_{protocol}"));
    for series in [1_000usize, 10_000, 100_000] {
        // One metric labelled `series` ways: its own limit must not turn it into 2 000.
        let (recorder, exporter) = builder(endpoint.to_owned())
            .with_flush_interval(Duration::from_secs(3600))
            .with_max_series_per_metric(series)
            .build()
            .expect("builds");
        let guard = exporter.start().expect("starts");
        let handle = guard.handle();
        let counters: Vec<Counter> = with_local_recorder(&recorder, || {
            (0..series)
                .map(|i| metrics::counter!("bench.requests", "route" => format!("/api/{i}"), "status" => "200"))
                .collect()
        });
        g.throughput(Throughput::Elements(series as u64));
        g.sample_size(10);
        g.bench_with_input(BenchmarkId::from_parameter(series), &series, |b, _| {
            b.iter(|| {
                for c in &counters {
                    c.increment(1);
                }
                handle.flush().expect("flush");
            });
        });
        let stats = guard.shutdown().expect("shutdown");
        if stats.payloads_sent == 0 {
            continue; // filtered out on the command line
        }
        // bytes_sent counts wire bytes: for pickle the frames, larger than the plaintext the
        // limit applies to, so its fill is not reported.
        let fill = if protocol.contains("pickle") {
            "n/a".to_owned()
        } else {
            format!(
                "{:.1}%",
                100.0 * stats.bytes_sent as f64 / (stats.payloads_sent as f64 * limit)
            )
        };
        eprintln!(
            "{protocol}, {series} series: {:.1} lines per payload, {fill} average fill of the limit, {:.0} wire bytes per payload, {} dropped",
            stats.lines_sent as f64 / stats.payloads_sent as f64,
            stats.bytes_sent as f64 / stats.payloads_sent as f64,
            stats.payloads_dropped
        );
    }
    g.finish();
}

criterion_group!(benches, flush);
criterion_main!(benches);
