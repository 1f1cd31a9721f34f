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

use std::net::UdpSocket;
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
    let protocols: [(&str, Protocol); 2] = [
        ("statsd", ExporterBuilder::statsd),
        ("dogstatsd", ExporterBuilder::dogstatsd),
    ];
    for (protocol, builder) in protocols {
        flush_protocol(c, protocol, builder, &endpoint);
    }
}

fn flush_protocol(
    c: &mut Criterion,
    protocol: &str,
    builder: fn(String) -> ExporterBuilder,
    endpoint: &str,
) {
    let mut g = c.benchmark_group(format!("flush_udp_{protocol}"));
    for series in [1_000usize, 10_000, 100_000] {
        let (recorder, exporter) = builder(endpoint.to_owned())
            .with_flush_interval(Duration::from_secs(3600))
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
        eprintln!(
            "{protocol}, {series} series: {:.1} lines per datagram, {:.1}% average fill, {} dropped",
            stats.lines_sent as f64 / stats.payloads_sent as f64,
            100.0 * stats.bytes_sent as f64 / (stats.payloads_sent as f64 * 1432.0),
            stats.payloads_dropped
        );
    }
    g.finish();
}

criterion_group!(benches, flush);
criterion_main!(benches);
