//! A regular flush sent in parts (see `PART_BYTES`): the receiver must get exactly the
//! payloads of the interval collected whole, and the writer must hold one part, not the
//! interval.

#![allow(clippy::unwrap_used, reason = "a test")]

use std::io::Read;
use std::time::Duration;

use tokio::time::Instant;

use super::{Flusher, Trigger, WallClock};
use crate::ExporterBuilder;
use crate::transport::Transport;

/// Counters, gauges and histograms: enough for a dozen datagrams and more, few enough that
/// both flushes fit in a loopback socket's default receive buffer (212 992 bytes, at about
/// 2.3 KB of it a datagram) even if its reader is not scheduled until they are sent: with 200
/// series, Graphite's 160 datagrams did not, and a loaded machine lost some.
const SERIES: usize = 60;

/// Records the same values into a fresh exporter's series, flushes twice (the second time
/// only some series changed), and returns the flusher after the flushes.
async fn flush_twice(builder: ExporterBuilder, part_bytes: usize) -> Flusher {
    let (recorder, exporter) = builder
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let clock = WallClock::Anchored {
        unix: Duration::from_secs(1_700_000_000),
        at: Instant::now(),
    };
    let mut flusher = exporter
        .into_flusher()
        .with_clock(clock)
        .with_part_bytes(part_bytes);
    let mut transport = Transport::new(flusher.config(), Instant::now());
    let handles = metrics::with_local_recorder(&recorder, || {
        (0..SERIES)
            .map(|i| {
                let route = format!("/api/v1/items/{i}");
                (
                    metrics::counter!("requests", "route" => route.clone()),
                    metrics::gauge!("inflight", "route" => route.clone()),
                    metrics::histogram!("latency", "route" => route),
                )
            })
            .collect::<Vec<_>>()
    });
    for round in 0..2_u32 {
        for (i, (c, g, h)) in handles.iter().enumerate() {
            if round == 1 && i % 3 == 0 {
                continue;
            }
            c.increment(i as u64 + 1);
            let x = f64::from(u32::try_from(i).unwrap());
            g.set(f64::from(round) + x / 8.0);
            h.record(x * 0.5);
            h.record(1.25);
        }
        flusher.flush(&mut transport, Trigger::Demand).await;
    }
    assert_eq!(flusher.stats.snapshot().lines_dropped_send, 0);
    flusher
}

/// What `part_bytes` flushes put on a UDP socket (read as they arrive, by a thread of its
/// own, until the socket stays quiet), and the bytes the writer still held.
async fn over_udp(
    builder: fn(String) -> ExporterBuilder,
    part_bytes: usize,
) -> (Vec<Vec<u8>>, usize) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("udp://{}", socket.local_addr().unwrap());
    let reader = std::thread::spawn(move || {
        let mut got = vec![];
        let mut buf = vec![0u8; 65_536];
        // Long for the first datagram, then until half a second passes without one.
        let quiet = |d| {
            socket
                .set_read_timeout(Some(Duration::from_millis(d)))
                .unwrap();
        };
        quiet(10_000);
        while let Ok(n) = socket.recv(&mut buf) {
            got.push(buf[..n].to_vec());
            quiet(500);
        }
        got
    });
    let flusher = flush_twice(builder(endpoint), part_bytes).await;
    (reader.join().unwrap(), flusher.delivery().pending_bytes())
}

#[tokio::test]
async fn an_interval_sent_in_parts_puts_exactly_the_datagrams_of_one_sent_whole_on_the_wire() {
    type Builder = fn(String) -> ExporterBuilder;
    let protocols: [(&str, Builder); 3] = [
        ("statsd", ExporterBuilder::statsd),
        ("dogstatsd", ExporterBuilder::dogstatsd),
        ("graphite", ExporterBuilder::graphite),
    ];
    for (name, builder) in protocols {
        let (whole, held_whole) = over_udp(builder, usize::MAX).await;
        // The smallest part: one payload's worth.
        let (parts, held_parts) = over_udp(builder, 1).await;
        assert!(whole.len() >= 10, "{name}: {} datagrams", whole.len());
        assert_eq!(parts, whole, "{name}");
        assert!(
            held_parts <= 1433 && held_whole > 3 * 1432,
            "{name}: the writer held {held_parts} bytes in parts, {held_whole} whole"
        );
        // The default part size, for the same data.
        let (default, _) = over_udp(builder, super::PART_BYTES).await;
        assert_eq!(default, whole, "{name}");
    }
}

#[tokio::test]
async fn a_pickle_interval_sent_in_parts_puts_exactly_the_frames_of_one_sent_whole_on_the_wire() {
    let mut streams = vec![];
    for part_bytes in [usize::MAX, 1] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("tcp://{}", listener.local_addr().unwrap());
        let reader = std::thread::spawn(move || {
            let mut bytes = vec![];
            listener
                .accept()
                .unwrap()
                .0
                .read_to_end(&mut bytes)
                .unwrap();
            bytes
        });
        // Small payloads, so an interval takes many frames.
        let builder = ExporterBuilder::graphite_pickle(endpoint).with_maximum_payload_length(4096);
        drop(flush_twice(builder, part_bytes).await);
        streams.push(reader.join().unwrap());
    }
    assert!(streams[0].len() > 50_000, "{} bytes", streams[0].len());
    assert!(streams[0] == streams[1], "the frames differ");
}

#[tokio::test]
async fn after_an_outage_encoded_whole_the_first_healthy_flush_gives_the_writer_back_to_a_part() {
    let addr = super::test_support::closed_port();
    let (recorder, exporter) = ExporterBuilder::statsd(format!("tcp://{addr}"))
        .with_flush_interval(Duration::from_secs(3600))
        .with_histogram_max_samples(20_000)
        // Small payloads, so that a part (at least one payload) is small too.
        .with_maximum_payload_length(1432)
        .build()
        .unwrap();
    let part = 4096;
    let mut flusher = exporter.into_flusher().with_part_bytes(part);
    let mut transport = Transport::new(flusher.config(), Instant::now());
    let histogram = metrics::with_local_recorder(&recorder, || metrics::histogram!("h"));
    for i in 0..20_000_u32 {
        histogram.record(f64::from(i));
    }
    // While down, the interval's histograms are encoded whole and parked.
    flusher.flush(&mut transport, Trigger::Demand).await;
    assert!(flusher.delivery().writer_capacity() > 100_000);
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = vec![];
        let (mut conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = conn.read_to_end(&mut bytes);
        bytes
    });
    // Past the reconnect backoff, a flush sends the backlog and then its own interval.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !flusher.delivery().caught_up() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        flusher.flush(&mut transport, Trigger::Demand).await;
    }
    histogram.record(1.0);
    flusher.flush(&mut transport, Trigger::Demand).await;
    assert!(flusher.delivery().caught_up());
    let capacity = flusher.delivery().writer_capacity();
    assert!(
        capacity <= 4 * part,
        "the writer kept room for {capacity} bytes"
    );
    drop((flusher, transport));
    let received = String::from_utf8(reader.join().unwrap()).unwrap();
    assert_eq!(received.lines().count(), 20_001, "every sample arrived");
}
