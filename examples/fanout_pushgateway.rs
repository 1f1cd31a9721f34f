//! Push to a Prometheus push gateway and send StatsD, from the same metrics: one
//! `metrics-util` fanout feeds metrics-exporter-prometheus in push-gateway mode and our
//! exporter, so every `counter!`, `gauge!` and `histogram!` reaches both (what
//! aioprometheus and `prometheus_client` users who push do today).
//!
//! By default both go to listeners in this process that print what arrives: a UDP socket for
//! StatsD, and a small HTTP server standing in for the gateway that prints each pushed body.
//! Set `PUSHGATEWAY_URL` (e.g. `http://127.0.0.1:9091/metrics/job/myapp`) to push to a real
//! gateway and `STATSD_ENDPOINT` (e.g. `udp://127.0.0.1:8125`) to send to a real StatsD.
//! `tests/prometheus_pushgateway.rs` runs the same setup against Debian's
//! `prometheus-pushgateway`.
//!
//! metrics-exporter-prometheus needs its `push-gateway-no-tls-provider` feature (or
//! `push-gateway`, which builds aws-lc-rs) and a process-wide rustls `CryptoProvider`, even
//! for an `http://` gateway: without one its push task panics when it starts.
//!
//! ```text
//! cargo run --example fanout_pushgateway
//! ```
#![allow(clippy::print_stdout, reason = "an example shows its output")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use metrics::{Unit, counter, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_exporter_statsd_graphite::ExporterBuilder;
use metrics_util::layers::FanoutBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let statsd_endpoint = match std::env::var("STATSD_ENDPOINT") {
        Ok(endpoint) => endpoint,
        Err(_) => print_udp()?,
    };
    let gateway = match std::env::var("PUSHGATEWAY_URL") {
        Ok(url) => url,
        Err(_) => print_pushes()?,
    };
    // An error only means a provider is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let (to_prometheus, push) = PrometheusBuilder::new()
        .with_push_gateway(&gateway, Duration::from_secs(1), None, None, false)?
        .build()?;
    tokio::spawn(push);
    let (to_statsd, exporter) = ExporterBuilder::statsd(&statsd_endpoint)
        .with_flush_interval(Duration::from_secs(1))
        .build()?;
    let guard = exporter.start()?;
    metrics::set_global_recorder(
        FanoutBuilder::default()
            .add_recorder(to_statsd)
            .add_recorder(to_prometheus)
            .build(),
    )?;
    println!("StatsD to {statsd_endpoint}; pushing to {gateway} every second\n");

    describe_histogram!("job.duration", Unit::Seconds, "time to run one job");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2_500) {
        counter!("jobs.done", "queue" => "mail").increment(2);
        gauge!("jobs.waiting").set(5.0);
        histogram!("job.duration").record(Duration::from_millis(40));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stats = guard.shutdown_async().await?;
    println!("\nStatsD: {} lines sent", stats.lines_sent);
    Ok(())
}

/// A UDP socket on a free loopback port that prints each line it receives; returns its
/// endpoint.
fn print_udp() -> std::io::Result<String> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let endpoint = format!("udp://{}", socket.local_addr()?);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = socket.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                println!("  statsd  | {line}");
            }
        }
    });
    Ok(endpoint)
}

/// An HTTP listener on a free loopback port that answers every request 200 and prints the
/// method, path and body it was sent; returns the gateway URL to push to.
fn print_pushes() -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/metrics/job/example", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if request.is_empty() {
                    line.trim_end().clone_into(&mut request);
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                line.clear();
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            println!("  gateway | {request}");
            for l in String::from_utf8_lossy(&body)
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                println!("  gateway |   {l}");
            }
            let _ = reader
                .get_mut()
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    Ok(url)
}
