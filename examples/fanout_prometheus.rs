//! Keep Prometheus and add StatsD: one `metrics-util` fanout feeds both our exporter (pushing
//! StatsD) and metrics-exporter-prometheus (serving `/metrics` for scraping), so every
//! `counter!`, `gauge!` and `histogram!` reaches both.
//!
//! What the same metrics look like on each side:
//!
//! ```text
//! counter!("http.requests", "route" => "/a")   http.requests.a:3|c        (a delta per flush)
//!                                              http_requests{route="/a"} 3  (the running total)
//! gauge!("in_flight")                          in_flight:2|g    in_flight 2
//! histogram!("http.latency") of 12.5 ms        http.latency:12.5|ms
//!                                              http_latency_count, _sum (seconds), quantiles
//! ```
//!
//! By default StatsD goes to a UDP listener in this process that prints each line, Prometheus
//! listens on a free loopback port, and after a few seconds the example scrapes its own
//! `/metrics` page and prints it. Set `STATSD_ENDPOINT` (e.g. `udp://127.0.0.1:8125`) to send
//! to a real StatsD, `PROMETHEUS_LISTEN` (e.g. `127.0.0.1:9000`) to choose the scrape address,
//! and `RUN_SECONDS` to keep it running longer (so you can `curl` it).
//!
//! ```text
//! cargo run --example fanout_prometheus
//! ```
#![allow(clippy::print_stdout, reason = "an example shows its output")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use metrics::{Unit, counter, describe_counter, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::PrometheusBuilder;
use metrics_exporter_statsd_graphite::ExporterBuilder;
use metrics_util::layers::FanoutBuilder;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let statsd_endpoint = match std::env::var("STATSD_ENDPOINT") {
        Ok(endpoint) => endpoint,
        Err(_) => print_udp()?,
    };
    let listen: SocketAddr = match std::env::var("PROMETHEUS_LISTEN") {
        Ok(addr) => addr.parse()?,
        // A free port: bind port 0 and hand the port over (the builder takes an address, not
        // a listener).
        Err(_) => TcpListener::bind("127.0.0.1:0")?.local_addr()?,
    };
    let run_for = Duration::from_secs(match std::env::var("RUN_SECONDS") {
        Ok(seconds) => seconds.parse()?,
        Err(_) => 3,
    });

    // Prometheus: `build` (inside a tokio runtime) binds the listener and gives us the
    // recorder plus the future that serves it.
    let (to_prometheus, serve) = PrometheusBuilder::new()
        .with_http_listener(listen)
        .build()?;
    tokio::spawn(serve);
    // StatsD: `build` gives the recorder; `start` spawns our flusher onto this runtime.
    let (to_statsd, exporter) = ExporterBuilder::statsd(&statsd_endpoint)
        .with_flush_interval(Duration::from_secs(1))
        .build()?;
    let guard = exporter.start()?;

    let fanout = FanoutBuilder::default()
        .add_recorder(to_statsd)
        .add_recorder(to_prometheus)
        .build();
    metrics::set_global_recorder(fanout)?;
    println!("StatsD to {statsd_endpoint}; Prometheus at http://{listen}/metrics\n");

    describe_counter!("http.requests", "requests served");
    describe_histogram!("http.latency", Unit::Seconds, "time to serve a request");
    let in_flight = gauge!("in_flight");
    let start = Instant::now();
    while start.elapsed() < run_for {
        for (route, micros) in [("/a", 12_500), ("/b", 1_250)] {
            in_flight.increment(1.0);
            counter!("http.requests", "route" => route).increment(1);
            histogram!("http.latency").record(Duration::from_micros(micros));
            in_flight.decrement(1.0);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let page = tokio::task::spawn_blocking(move || scrape(listen)).await??;
    println!("\n--- GET http://{listen}/metrics\n{page}");
    let stats = guard.shutdown_async().await?;
    println!("StatsD: {} lines sent", stats.lines_sent);
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
                println!("  statsd | {line}");
            }
        }
    });
    Ok(endpoint)
}

/// What Prometheus would see: a plain HTTP/1.1 GET of `/metrics`, returning the body.
fn scrape(addr: SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map_or(response.clone(), |(_, body)| body.to_owned()))
}
