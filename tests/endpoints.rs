//! Endpoints whose host is a name, through the system resolver: a name that does not resolve
//! is no reason to fail `build` or to block the application, and a name that resolves
//! ("localhost") is delivered to. Only loopback addresses are sent to, and no DNS query
//! leaves the machine: the unresolvable name has a 64-byte label (the limit is 63, RFC 1035),
//! under `.invalid` (RFC 6761), which the resolver library refuses before asking any server
//! (checked with strace on glibc: no packet to port 53, where `metrics.invalid` sends two).
//! A name that only resolves later is covered by the scripted resolver's unit tests.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup must fail the test loudly"
)]

use std::net::{ToSocketAddrs as _, UdpSocket};
use std::time::{Duration, Instant};

use metrics_exporter_statsd_graphite::{ExporterBuilder, FlushError};

const MAX: Duration = Duration::from_secs(10);

#[test]
fn a_host_that_cannot_resolve_builds_and_counts_failed_lookups_without_blocking_the_app() {
    let shutdown_timeout = Duration::from_millis(500);
    let name = format!("{}.invalid", "a".repeat(64));
    let (recorder, exporter) = ExporterBuilder::statsd(format!("udp://{name}:8125"))
        .with_flush_interval(Duration::from_millis(50))
        .with_connect_timeout(Duration::from_millis(200))
        .with_reconnect_delay(Duration::from_millis(10))
        .with_max_reconnect_delay(Duration::from_millis(20))
        .with_shutdown_timeout(shutdown_timeout)
        .build()
        .expect("a name that does not resolve (yet) builds");
    let guard = exporter.start().unwrap();
    let handle = guard.handle();

    // Recording never waits for the resolver.
    let start = Instant::now();
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..1_000 {
            metrics::counter!("jobs").increment(1);
        }
    });
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );

    // An explicit flush returns within its own bound (the shutdown timeout and a grace),
    // whatever the lookup does meanwhile.
    for _ in 0..3 {
        let start = Instant::now();
        let result = handle.flush();
        assert!(
            matches!(result, Ok(()) | Err(FlushError::Timeout)),
            "{result:?}"
        );
        assert!(
            start.elapsed() < shutdown_timeout + Duration::from_millis(500),
            "flush blocked {:?}",
            start.elapsed()
        );
    }

    let start = Instant::now();
    while handle.stats().resolve_failures < 3 {
        assert!(start.elapsed() < MAX, "{:?}", handle.stats());
        std::thread::sleep(Duration::from_millis(10));
    }

    let start = Instant::now();
    let result = guard.shutdown();
    assert!(
        start.elapsed() < shutdown_timeout + Duration::from_millis(500),
        "shutdown blocked {:?}",
        start.elapsed()
    );
    // Nothing was sent and nothing went missing: the one counter line never sent is
    // counted as dropped at shutdown.
    let stats = handle.stats();
    assert_eq!(stats.lines_sent, 0);
    assert_eq!(stats.send_errors, 0, "a failed lookup is not a send error");
    assert_eq!(stats.lines_dropped_shutdown, 1, "{stats:?} {result:?}");
    assert!(
        matches!(
            result,
            Err(FlushError::Dropped { lines: 1 } | FlushError::Timeout)
        ),
        "{result:?}"
    );
}

#[test]
fn localhost_through_the_system_resolver_is_delivered_to_on_loopback() {
    // The transport sends to the resolver's first answer (127.0.0.1 or ::1): listen there.
    let first = ("localhost", 0).to_socket_addrs().unwrap().next().unwrap();
    assert!(first.ip().is_loopback(), "{first}");
    let socket = UdpSocket::bind(first).unwrap();
    socket.set_read_timeout(Some(MAX)).unwrap();
    let port = socket.local_addr().unwrap().port();
    let (recorder, exporter) = ExporterBuilder::statsd(format!("udp://localhost:{port}"))
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("resolved").increment(7));
    assert_eq!(guard.handle().flush(), Ok(()));

    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"resolved:7|c");
    let stats = guard.shutdown().unwrap();
    assert_eq!((stats.resolve_failures, stats.lines_sent), (0, 1));
}
