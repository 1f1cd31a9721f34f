//! Quick start: install the exporter, record a few realistic metrics, and see the exact
//! StatsD lines that go on the wire.
//!
//! By default it starts a UDP listener on 127.0.0.1 in this process and prints every line it
//! receives. Set `STATSD_ENDPOINT` (e.g. `udp://127.0.0.1:8125` or `tcp://statsd:8125`) to send
//! to a real server instead.
//!
//! ```text
//! cargo run -p quickstart          # builds only the exporter and its dependencies (46 crates)
//! cargo run --example quickstart   # the same program, with every dev-dependency (141 crates)
//! ```
#![allow(clippy::print_stdout, reason = "an example shows its output")]

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use metrics::{Unit, counter, describe_histogram, gauge, histogram};
use metrics_exporter_statsd_graphite::ExporterBuilder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (endpoint, listener) = if let Ok(endpoint) = std::env::var("STATSD_ENDPOINT") {
        (endpoint, None)
    } else {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let endpoint = format!("udp://{}", socket.local_addr()?);
        (endpoint, Some(socket))
    };
    println!("sending StatsD to {endpoint}, flushing every second\n");

    // Print what arrives, as it arrives.
    if let Some(socket) = listener {
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = socket.recv(&mut buf) {
                println!("--- datagram, {n} bytes");
                for line in String::from_utf8_lossy(&buf[..n]).lines() {
                    println!("    {line}");
                }
            }
        });
    }

    let exporter = ExporterBuilder::statsd(endpoint)
        .with_prefix("myapp")
        .with_flush_interval(Duration::from_secs(1))
        .with_global_labels([("region", "eu")])
        .install()?;

    describe_histogram!("request_duration", Unit::Seconds, "time to serve a request");
    let in_flight = gauge!("requests_in_flight");
    let start = Instant::now();
    let mut served = 0u64;
    while start.elapsed() < Duration::from_millis(2_500) {
        for (route, status, micros) in [
            ("/home", "200", 1_250),
            ("/api/items", "200", 12_500),
            ("/api/items", "500", 250),
        ] {
            in_flight.increment(1.0);
            counter!("requests", "route" => route, "status" => status).increment(1);
            histogram!("request_duration", "route" => route).record(Duration::from_micros(micros));
            in_flight.decrement(1.0);
            served += 1;
        }
        gauge!("queue_depth").set(-3.0); // a negative Etsy gauge: sent as 0 then -3
        std::thread::sleep(Duration::from_millis(250));
    }
    counter!("shutdowns").increment(1); // recorded after the last tick: the final flush sends it

    let stats = exporter.shutdown()?;
    std::thread::sleep(Duration::from_millis(100)); // let the printer catch up
    println!(
        "\n{served} requests recorded; {} lines in {} datagrams ({} bytes) sent, {} dropped",
        stats.lines_sent,
        stats.payloads_sent,
        stats.bytes_sent,
        stats.lines_dropped_send + stats.lines_dropped_too_long + stats.values_dropped_invalid
    );
    Ok(())
}
