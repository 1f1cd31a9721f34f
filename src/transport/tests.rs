//! DNS re-resolution: on tokio's paused clock, a target's addresses are looked up again once
//! `resolve_interval` has passed (and not a moment before), and every reconnect looks them up
//! again whatever the interval says.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::{Target, Transport};
use crate::ExporterBuilder;
use crate::config::Endpoint;
use crate::stats::StatsCells;

/// TEST-NET-1 (RFC 5737): never what a name resolves to here, and never a receiver.
fn stale(port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], port))
}

/// What the system resolver says for `host` now.
fn system_addrs(host: &str, port: u16) -> Vec<SocketAddr> {
    use std::net::ToSocketAddrs as _;
    (host, port).to_socket_addrs().unwrap().collect()
}

const LOOKUP_TIMEOUT: Duration = Duration::from_secs(1);

/// The next datagram on `socket`, or `None` if none comes within a second. On the paused
/// clock a datagram already queued is still seen first (tokio polls the sockets before it
/// advances the clock), so a missing one fails the test instead of hanging it.
async fn next_datagram(socket: &tokio::net::UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf))
        .await
        .ok()?
        .unwrap();
    Some(buf[..n].to_vec())
}

#[tokio::test(start_paused = true)]
async fn a_target_is_re_resolved_once_its_interval_has_passed_and_not_a_moment_before() {
    let endpoint = Endpoint::parse("tcp://localhost:8125", 8125).unwrap();
    // What the system resolver says now (the same getaddrinfo the transport's lookup uses).
    let resolved = system_addrs("localhost", 8125);
    assert!(!resolved.contains(&stale(8125)));
    let start = Instant::now();
    let mut target = Target {
        endpoint,
        // As if the name had pointed elsewhere when the exporter was built.
        addrs: vec![stale(8125)],
        resolved_at: Some(start),
        resolve_interval: Duration::from_secs(60),
        lookups: super::resolve::Lookups::default(),
    };
    let stats = StatsCells::default();

    tokio::time::advance(Duration::from_millis(59_999)).await;
    target
        .refresh(Instant::now(), false, LOOKUP_TIMEOUT, &stats)
        .await;
    assert_eq!(
        target.addrs,
        [stale(8125)],
        "re-resolved before the interval"
    );
    assert_eq!(target.resolved_at, Some(start));

    tokio::time::advance(Duration::from_millis(1)).await;
    target
        .refresh(Instant::now(), false, LOOKUP_TIMEOUT, &stats)
        .await;
    assert_eq!(target.addrs, resolved, "not re-resolved after the interval");
    assert_eq!(target.resolved_at, Some(start + Duration::from_secs(60)));

    // The next interval counts from that lookup, not from the start.
    target.addrs = vec![stale(8125)];
    tokio::time::advance(Duration::from_millis(59_999)).await;
    target
        .refresh(Instant::now(), false, LOOKUP_TIMEOUT, &stats)
        .await;
    assert_eq!(target.addrs, [stale(8125)]);
    tokio::time::advance(Duration::from_millis(1)).await;
    target
        .refresh(Instant::now(), false, LOOKUP_TIMEOUT, &stats)
        .await;
    assert_eq!(target.addrs, resolved);
}

#[tokio::test(start_paused = true)]
async fn udp_moves_to_the_new_address_at_the_first_send_after_the_resolve_interval() {
    let old = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let new = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut config = ExporterBuilder::statsd(format!("udp://{}", new.local_addr().unwrap()))
        .with_resolve_interval(Duration::from_secs(60))
        .config()
        .unwrap();
    // The name resolved to `old` when the exporter was built; it resolves to `new` now.
    config.addrs = vec![old.local_addr().unwrap()];
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());
    let mut send = async |payload: &[u8]| {
        assert!(transport.ready(Instant::now(), &stats).await);
        transport
            .send(super::Payload::Frame(payload), super::Hint::Fresh, &stats)
            .await
            .unwrap();
    };

    send(b"before").await;
    assert_eq!(next_datagram(&old).await.as_deref(), Some(&b"before"[..]));

    tokio::time::advance(Duration::from_millis(59_999)).await;
    send(b"still").await;
    assert_eq!(
        next_datagram(&old).await.as_deref(),
        Some(&b"still"[..]),
        "moved before the interval"
    );

    tokio::time::advance(Duration::from_millis(1)).await;
    send(b"after").await;
    assert_eq!(
        next_datagram(&new).await.as_deref(),
        Some(&b"after"[..]),
        "still on the old address after the interval"
    );
    assert_eq!(
        next_datagram(&old).await,
        None,
        "nothing else went to the old address"
    );
    assert_eq!(stats.snapshot().send_errors, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_reconnect_re_resolves_even_before_the_resolve_interval() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // "localhost" may also resolve to ::1, where nothing listens: connect tries the next one.
    let mut config = ExporterBuilder::statsd(format!("tcp://localhost:{port}"))
        .with_resolve_interval(Duration::from_secs(3600))
        .config()
        .unwrap();
    let resolved = system_addrs("localhost", port);
    // The name pointed at port 1 when the exporter was built (privileged and unused here: it
    // refuses, and no parallel test can take it). The interval is an hour away, so only the
    // reconnect's own lookup can find the listener.
    let refused = SocketAddr::from(([127, 0, 0, 1], 1));
    config.addrs = vec![refused];
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());

    assert!(
        transport.ready(Instant::now(), &stats).await,
        "connected with the stale address instead of looking the name up again"
    );
    assert_eq!(transport.target.addrs, resolved);
    let (_conn, _) = listener.accept().await.unwrap();
    let stats = stats.snapshot();
    assert_eq!((stats.connects, stats.send_errors), (1, 0));
}

/// A TCP transport to a free loopback port nobody listens on (yet), with the given reconnect
/// delays.
fn refused_tcp(first: u64, cap: u64) -> (SocketAddr, Transport, StatsCells) {
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let config = ExporterBuilder::statsd(format!("tcp://{addr}"))
        .with_reconnect_delay(Duration::from_secs(first))
        .with_max_reconnect_delay(Duration::from_secs(cap))
        .config()
        .unwrap();
    (
        addr,
        Transport::new(&config, Instant::now()),
        StatsCells::default(),
    )
}

#[tokio::test]
async fn a_reconnect_waits_out_the_configured_backoff_and_not_a_moment_more() {
    let (addr, mut transport, stats) = refused_tcp(10, 20);
    let t0 = Instant::now();
    assert!(!transport.ready(t0, &stats).await, "refused");
    let retry_at = transport.retry_at.unwrap();
    // Equal jitter: between half and all of the first delay.
    assert!(retry_at >= t0 + Duration::from_secs(5) && retry_at <= t0 + Duration::from_secs(10));
    let _listener = std::net::TcpListener::bind(addr).unwrap();
    assert!(
        !transport
            .ready(retry_at - Duration::from_millis(1), &stats)
            .await,
        "no attempt before the backoff is over"
    );
    assert_eq!(stats.snapshot().connects, 0);
    assert!(
        transport.ready(retry_at, &stats).await,
        "an attempt once it is over"
    );
    assert_eq!(stats.snapshot().connects, 1);
    // A working connection resets the backoff: the next failure starts from the first delay.
    assert_eq!(transport.failures, 0);
}

#[tokio::test]
async fn the_second_failure_doubles_the_delay_up_to_the_cap() {
    let (_, mut transport, stats) = refused_tcp(10, 15);
    let t0 = Instant::now();
    assert!(!transport.ready(t0, &stats).await);
    let first = transport.retry_at.unwrap();
    assert!(!transport.ready(first, &stats).await);
    let second = transport.retry_at.unwrap() - first;
    // min(20 s, cap 15 s), equal jitter: 7.5 s to 15 s.
    assert!(
        second >= Duration::from_millis(7_500) && second <= Duration::from_secs(15),
        "{second:?}"
    );
}
