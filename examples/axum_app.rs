//! Request metrics for an axum app: `RequestMetricsLayer` counts and times every request by
//! method, matched route and status, and the exporter sends them as DogStatsD.
//!
//! By default it serves on a free loopback port, sends itself a few requests, prints every
//! line the exporter sends (to a UDP listener in this process), and exits:
//!
//! ```text
//! cargo run --example axum_app --features tower
//! ```
//!
//! Set `AXUM_APP_ADDR=127.0.0.1:3000` to serve there until Enter (or end of input) instead,
//! and try it with `curl localhost:3000/users/7`. Set `STATSD_ENDPOINT` (e.g.
//! `udp://127.0.0.1:8125`) to send to a real DogStatsD agent instead of printing.
#![allow(clippy::print_stdout, reason = "an example shows its output")]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use metrics_exporter_statsd_graphite::{ExporterBuilder, HistogramKind, RequestMetricsLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = if let Ok(endpoint) = std::env::var("STATSD_ENDPOINT") {
        endpoint
    } else {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        let endpoint = format!("udp://{}", socket.local_addr()?);
        std::thread::spawn(move || print_datagrams(&socket));
        endpoint
    };
    println!("sending DogStatsD to {endpoint}, flushing every second");

    let exporter = ExporterBuilder::dogstatsd(endpoint)
        .with_flush_interval(Duration::from_secs(1))
        .with_histogram_kind(HistogramKind::Timer)
        .install()?;

    // The route label is axum's matched route template (`/users/{id}`), never the raw path:
    // `Router::layer` runs the layer after routing, so `MatchedPath` is in the request's
    // extensions. Requests no route matched (404s) are labelled `route:unmatched`.
    let metrics = RequestMetricsLayer::new().with_route_source(|request: &Request<Body>| {
        let path = request.extensions().get::<MatchedPath>()?;
        Some(Arc::<str>::from(path.as_str()))
    });
    let app = Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/users/{id}", get(user))
        .route("/slow", get(slow))
        .layer(metrics);

    if let Ok(addr) = std::env::var("AXUM_APP_ADDR") {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("serving on http://{addr}; press Enter to stop");
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ =
                    tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()))
                        .await;
            })
            .await?;
    } else {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        for path in ["/", "/users/7", "/users/8", "/users/x", "/slow", "/nope"] {
            let status = get_status(addr, path).await?;
            println!("GET {path} -> {status}");
        }
    }

    exporter.shutdown_async().await?; // the final flush
    // Give the printing thread a moment to show the last datagram.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

async fn user(Path(id): Path<u32>) -> String {
    format!("user {id}")
}

async fn slow() -> StatusCode {
    tokio::time::sleep(Duration::from_millis(25)).await;
    StatusCode::ACCEPTED
}

/// A one-request HTTP/1.1 client, enough for the demo.
async fn get_status(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response.lines().next().unwrap_or_default().to_owned())
}

fn print_datagrams(socket: &UdpSocket) {
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = socket.recv(&mut buf) {
        for line in String::from_utf8_lossy(&buf[..n]).lines() {
            println!("    {line}");
        }
    }
}
