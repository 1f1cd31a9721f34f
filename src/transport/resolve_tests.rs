//! Lazy resolution with scripted lookups (no DNS): a name that does not resolve yet keeps the
//! metrics and is looked up again with the reconnect backoff, one lookup at a time and each
//! bounded by the connect timeout; one warning while it fails, one info line once it works.

#[path = "../../tests/support/log_capture.rs"]
mod log_capture;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::time::Instant;
use tracing::Level;

use super::{Resolver, Script, Step, Transport};
use crate::ExporterBuilder;
use crate::flush::Trigger;
use crate::stats::StatsCells;
use log_capture::Capture;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The next datagram on `socket`, or `None` if none comes within a second.
async fn next_datagram(socket: &tokio::net::UdpSocket) -> Option<String> {
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[tokio::test(start_paused = true)]
async fn a_name_that_fails_three_times_then_resolves_gets_everything_recorded_meanwhile() {
    let capture = Capture::default();
    let _logs = tracing::subscriber::set_default(capture.clone());
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let (recorder, exporter) = ExporterBuilder::statsd(format!("udp://statsd.invalid:{port}"))
        .with_reconnect_delay(Duration::from_secs(1))
        .with_max_reconnect_delay(Duration::from_secs(4))
        .build()
        .expect("a name that does not resolve yet builds");
    let stats = exporter.stats_cells();
    let mut flusher = exporter.into_flusher();
    let mut config = flusher.config().clone();
    // As `from_env` would have set it.
    config.endpoint_source = Some("STATSD_HOST");
    let script = Script::new(
        [Step::Fail, Step::Fail, Step::Fail],
        Step::Resolve(vec![LOOPBACK]),
    );
    let mut transport =
        Transport::new(&config, Instant::now()).with_resolver(Resolver::Scripted(script.clone()));
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("jobs"));

    for (failures, amount) in [(1, 5), (2, 2), (3, 3)] {
        counter.increment(amount);
        flusher.flush(&mut transport, Trigger::Tick).await;
        assert_eq!(stats.snapshot().resolve_failures, failures);
        assert_eq!(script.lookups(), failures);
        assert!(transport.unresolved());
        // Within the backoff (at least half the doubled step), no new lookup.
        flusher.flush(&mut transport, Trigger::Tick).await;
        assert_eq!(
            script.lookups(),
            failures,
            "looked up again within the backoff"
        );
        // (Waiting for a datagram moves the paused clock on by a second.)
        assert_eq!(next_datagram(&socket).await, None, "sent while unresolved");
        tokio::time::advance(Duration::from_secs(5)).await;
    }
    counter.increment(1);
    flusher.flush(&mut transport, Trigger::Tick).await;
    assert_eq!(
        next_datagram(&socket).await.as_deref(),
        Some("jobs:11|c"),
        "every increment of the unresolved flushes arrives once"
    );
    let s = stats.snapshot();
    assert_eq!(
        (
            s.resolve_failures,
            s.lines_sent,
            s.send_errors,
            s.lines_dropped_send
        ),
        (3, 1, 0, 0)
    );
    assert_eq!(script.lookups(), 4);

    let warnings = capture.at(Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("statsd.invalid") && warnings[0].contains("STATSD_HOST"),
        "the warning names the host and its variable: {}",
        warnings[0]
    );
    assert_eq!(capture.count(Level::INFO, "resolves now"), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_lookup_that_hangs_is_cut_by_the_connect_timeout_and_never_run_twice_at_once() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let config = ExporterBuilder::statsd(format!("udp://slow.invalid:{port}"))
        .with_connect_timeout(Duration::from_millis(100))
        .with_reconnect_delay(Duration::from_millis(1))
        .with_max_reconnect_delay(Duration::from_millis(1))
        .config()
        .unwrap();
    let hang = Duration::from_millis(700);
    let script = Script::new(
        [Step::Slow(hang, Box::new(Step::Resolve(vec![LOOPBACK])))],
        Step::Fail,
    );
    let stats = StatsCells::default();
    let mut transport =
        Transport::new(&config, Instant::now()).with_resolver(Resolver::Scripted(script.clone()));

    let start = std::time::Instant::now();
    assert!(!transport.ready(Instant::now(), &stats).await);
    assert!(
        start.elapsed() < Duration::from_millis(400),
        "waited {:?} for a hanging lookup",
        start.elapsed()
    );
    assert!(transport.target.lookups.in_flight());
    // Retries while it hangs wait for the same lookup: it answers, not a new one.
    let mut attempts = 1;
    while !transport.ready(Instant::now(), &stats).await {
        attempts += 1;
        assert!(start.elapsed() < Duration::from_secs(5), "never resolved");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(start.elapsed() >= hang);
    assert!(attempts >= 3, "{attempts}");
    assert_eq!((script.lookups(), script.most_running()), (1, 1));
    // Every attempt that found no address is one failure, however long the lookup hung.
    assert_eq!(stats.snapshot().resolve_failures, attempts);
    assert_eq!(transport.target.addrs, [SocketAddr::new(LOOPBACK, port)]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_tcp_name_resolved_at_the_connect_is_not_looked_up_twice() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = ExporterBuilder::statsd(format!("tcp://carbon.invalid:{port}"))
        .with_reconnect_delay(Duration::from_millis(1))
        .with_max_reconnect_delay(Duration::from_millis(1))
        .config()
        .unwrap();
    let script = Script::new([Step::Fail], Step::Resolve(vec![LOOPBACK]));
    let stats = StatsCells::default();
    let mut transport =
        Transport::new(&config, Instant::now()).with_resolver(Resolver::Scripted(script.clone()));

    assert!(!transport.ready(Instant::now(), &stats).await);
    assert_eq!(stats.snapshot().connects, 0, "connected without an address");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert!(transport.ready(Instant::now(), &stats).await);
    let (_conn, _) = listener.accept().await.unwrap();
    let s = stats.snapshot();
    assert_eq!((s.connects, s.resolve_failures, s.send_errors), (1, 1, 0));
    assert_eq!(script.lookups(), 2, "the connect looked the name up again");
}

#[tokio::test(start_paused = true)]
async fn a_re_resolution_that_fails_is_counted_and_keeps_the_addresses_it_had() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let config = ExporterBuilder::statsd(format!("udp://statsd.invalid:{port}"))
        .with_resolve_interval(Duration::from_secs(60))
        .config()
        .unwrap();
    let script = Script::new([Step::Resolve(vec![LOOPBACK])], Step::Fail);
    let stats = StatsCells::default();
    let mut transport =
        Transport::new(&config, Instant::now()).with_resolver(Resolver::Scripted(script.clone()));
    assert!(transport.ready(Instant::now(), &stats).await);

    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(
        transport.ready(Instant::now(), &stats).await,
        "a DNS hiccup stopped a destination that is still there"
    );
    assert_eq!(script.lookups(), 2);
    assert_eq!(stats.snapshot().resolve_failures, 1);
    assert_eq!(transport.target.addrs, [SocketAddr::new(LOOPBACK, port)]);
}
