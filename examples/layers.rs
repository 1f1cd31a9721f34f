//! Our recorder under `metrics-util` layers: drop a noisy metric, prefix every name, and route
//! the database metrics to Graphite while everything else goes to StatsD.
//!
//! ```text
//! recorded name          FilterLayer        PrefixLayer("svc")     Router
//! http.requests     ->   kept          ->   svc.http.requests  ->  StatsD   (the default)
//! db.query_time     ->   kept          ->   svc.db.query_time  ->  Graphite (route "svc.db.")
//! cache.debug_hits  ->   dropped ("debug" matches anywhere in the name)
//! ```
//!
//! Layers apply outside in: the filter sees the names your code records, the router sees them
//! after the prefix, so its route includes the prefix. A route is a raw name prefix: `"svc.db"`
//! would also take `svc.dbx.*`, so we end it with a dot.
//!
//! By default it starts a UDP listener (StatsD) and a TCP listener (Graphite) on 127.0.0.1 in
//! this process and prints every line each receives. Set `STATSD_ENDPOINT` (e.g.
//! `udp://127.0.0.1:8125`) and `GRAPHITE_ENDPOINT` (e.g. `tcp://127.0.0.1:2003`) to send to
//! real servers instead.
//!
//! ```text
//! cargo run --example layers
//! ```
#![allow(clippy::print_stdout, reason = "an example shows its output")]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use metrics::{Unit, counter, describe_histogram, gauge, histogram};
use metrics_exporter_statsd_graphite::ExporterBuilder;
use metrics_util::MetricKindMask;
use metrics_util::layers::{FilterLayer, Layer, PrefixLayer, RouterBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let statsd_endpoint = match std::env::var("STATSD_ENDPOINT") {
        Ok(endpoint) => endpoint,
        Err(_) => print_udp("statsd")?,
    };
    let graphite_endpoint = match std::env::var("GRAPHITE_ENDPOINT") {
        Ok(endpoint) => endpoint,
        Err(_) => print_tcp("graphite")?,
    };
    println!(
        "StatsD to {statsd_endpoint}, Graphite to {graphite_endpoint}, flushing every second\n"
    );

    // Two exporters, each with its own flusher; `build` hands back the recorder so we can
    // wrap it before installing.
    let (to_statsd, statsd) = ExporterBuilder::statsd(statsd_endpoint)
        .with_flush_interval(Duration::from_secs(1))
        .build()?;
    let (to_graphite, graphite) = ExporterBuilder::graphite(graphite_endpoint)
        .with_flush_interval(Duration::from_secs(1))
        .with_percentiles([0.5, 0.99])
        .build()?;
    let statsd = statsd.start()?;
    let graphite = graphite.start()?;

    let mut router = RouterBuilder::from_recorder(to_statsd);
    router.add_route(MetricKindMask::ALL, "svc.db.", to_graphite);
    let stack =
        FilterLayer::from_patterns(["debug"]).layer(PrefixLayer::new("svc").layer(router.build()));
    metrics::set_global_recorder(stack)?;

    describe_histogram!("db.query_time", Unit::Seconds, "time to run one query");
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(2_500) {
        counter!("http.requests", "status" => "200").increment(3);
        counter!("cache.debug_hits").increment(1_000); // filtered out: never sent
        gauge!("db.pool.idle").set(7.0);
        histogram!("db.query_time").record(Duration::from_micros(2_500));
        histogram!("db.query_time").record(Duration::from_millis(4));
        std::thread::sleep(Duration::from_millis(250));
    }

    // Each guard does a final flush of its own exporter.
    let statsd = statsd.shutdown()?;
    let graphite = graphite.shutdown()?;
    std::thread::sleep(Duration::from_millis(100)); // let the printers catch up
    println!(
        "\nStatsD: {} lines sent; Graphite: {} lines sent",
        statsd.lines_sent, graphite.lines_sent
    );
    Ok(())
}

/// A UDP socket on a free loopback port that prints each line it receives; returns its
/// endpoint.
fn print_udp(tag: &'static str) -> std::io::Result<String> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let endpoint = format!("udp://{}", socket.local_addr()?);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = socket.recv(&mut buf) {
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                println!("{tag:>8} | {line}");
            }
        }
    });
    Ok(endpoint)
}

/// A TCP listener on a free loopback port that prints each line of each connection; returns
/// its endpoint.
fn print_tcp(tag: &'static str) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let endpoint = format!("tcp://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    println!("{tag:>8} | {line}");
                }
            });
        }
    });
    Ok(endpoint)
}
