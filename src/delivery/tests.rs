//! The one send loop on real sockets: what each outcome leaves in the backlog and counts.

#[cfg(unix)]
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tokio::time::Instant;

use super::Delivery;
use crate::ExporterBuilder;
use crate::config::Config;
use crate::encode::never_continues;
use crate::stats::StatsCells;
use crate::transport::Transport;

/// Commits each of `lines` (without newline) as its own chunk and closes the batch.
fn fill(delivery: &mut Delivery, lines: &[String]) {
    delivery.start();
    let w = delivery.writer();
    for line in lines {
        w.line_buf().extend_from_slice(line.as_bytes());
        w.line_buf().push(b'\n');
        w.commit(1).unwrap();
    }
    w.finish();
}

fn numbered(n: usize, pad: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("c{i:06}.{}:1|c", "x".repeat(pad)))
        .collect()
}

fn config(builder: &ExporterBuilder) -> Config {
    builder.config().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_write_that_stops_mid_payload_keeps_exactly_the_rest_in_the_backlog() {
    // A receiver that accepts and never reads, with a small receive buffer.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(8).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut config = config(
        &ExporterBuilder::statsd(format!("tcp://{addr}"))
            .with_write_timeout(Duration::from_millis(200))
            .with_max_backlog_bytes(64 << 20),
    );
    // One payload far larger than the kernel takes for a connection that is not read.
    config.max_payload_len = 16 << 20;
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());
    let mut delivery = Delivery::new(&config, never_continues, None);
    let lines = numbered(20_000, 200);
    fill(&mut delivery, &lines);
    let all: Vec<u8> = lines
        .iter()
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    assert_eq!(delivery.writer.len(), 1, "one payload");

    assert!(transport.ready(Instant::now(), &stats).await);
    assert!(
        !delivery.send(&mut transport, &stats).await,
        "the write stalls"
    );
    let s = stats.snapshot();
    let sent = usize::try_from(s.bytes_sent).unwrap();
    assert!(sent > 0 && sent < all.len(), "{s:?}");
    assert_eq!(s.payloads_sent, 0, "not whole: {s:?}");
    assert!(
        all[..sent].ends_with(b"\n"),
        "what counts as sent is whole lines"
    );
    assert_eq!(crate::lines::count_lines(&all[..sent]), s.lines_sent);
    assert_eq!(
        delivery.backlog.lines().bytes(),
        &all[sent..],
        "the backlog holds exactly the rest, from the first line not written whole"
    );
    assert_eq!(s.lines_dropped_send, 0);
    assert_eq!(
        s.lines_possibly_lost, s.lines_sent,
        "the abandoned connection's lines"
    );
    drop(socket);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_parked_while_the_socket_is_missing_go_out_as_the_same_datagrams() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsd.sock");
    let config = config(
        &ExporterBuilder::dogstatsd(format!("unixgram://{}", path.display()))
            .with_maximum_payload_length(64),
    );
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());
    let mut delivery = Delivery::new(&config, never_continues, None);
    let mut expected = Vec::new();
    for interval in 0..3 {
        let lines: Vec<String> = (0..4)
            .map(|i| format!("h{interval}.{i}.{}:1:2:3|d", "x".repeat(i * 8)))
            .collect();
        fill(&mut delivery, &lines);
        expected.extend(
            (0..delivery.writer.len()).map(|i| delivery.writer.payload(i).unwrap().0.to_vec()),
        );
        assert!(
            !transport.ready(Instant::now(), &stats).await,
            "the socket is missing"
        );
        delivery.park(&stats);
        transport.retry_now();
    }
    assert!(expected.len() >= 6, "several datagrams per interval");
    let receiver = UnixDatagram::bind(&path).unwrap();
    receiver.set_nonblocking(true).unwrap();
    delivery.start();
    assert!(transport.ready(Instant::now(), &stats).await);
    assert!(delivery.send(&mut transport, &stats).await);
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = receiver.recv(&mut buf) {
        got.push(buf[..n].to_vec());
    }
    // The backlog re-packs whole lines up to the same limit (across intervals, so into fewer
    // datagrams): every line whole, once, in order, and no datagram over the limit or ending
    // in a newline.
    let lines = |d: &[Vec<u8>]| -> Vec<String> {
        d.iter()
            .flat_map(|d| {
                String::from_utf8_lossy(d)
                    .split('\n')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert_eq!(lines(&got), lines(&expected));
    for d in &got {
        assert!(
            d.len() <= 64 && !d.ends_with(b"\n"),
            "{:?}",
            String::from_utf8_lossy(d)
        );
    }
    assert!(got.len() <= expected.len());
    let s = stats.snapshot();
    assert_eq!((s.lines_sent, s.lines_dropped_send), (12, 0), "{s:?}");
}

#[tokio::test]
async fn a_datagram_too_large_for_the_socket_is_dropped_and_counted_and_the_rest_goes_out() {
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut config = config(&ExporterBuilder::statsd(format!(
        "udp://{}",
        receiver.local_addr().unwrap()
    )));
    // Past what `build` allows, to make the kernel refuse one datagram (EMSGSIZE).
    config.max_payload_len = 100_000;
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());
    let mut delivery = Delivery::new(&config, never_continues, None);
    // Two payloads, the first one line of 70 000 bytes.
    delivery.start();
    {
        let w = delivery.writer();
        w.line_buf()
            .extend_from_slice(format!("big.{}:1|c\n", "x".repeat(70_000)).as_bytes());
        w.commit(1).unwrap();
        w.finish();
        w.line_buf().extend_from_slice(b"small:1|c\n");
        w.commit(1).unwrap();
        w.finish();
    }
    assert_eq!(delivery.writer.len(), 2);
    assert!(transport.ready(Instant::now(), &stats).await);
    assert!(
        delivery.send(&mut transport, &stats).await,
        "a refused payload does not stop the loop"
    );
    let mut buf = [0u8; 128];
    let n = receiver.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"small:1|c");
    let s = stats.snapshot();
    assert_eq!(
        (s.payloads_dropped, s.lines_dropped_send, s.lines_sent),
        (1, 1, 1),
        "{s:?}"
    );
    assert!(
        delivery.backlog.is_empty(),
        "never kept: it would fail again"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn a_full_receive_queue_keeps_what_it_did_not_take_and_sends_it_first_next_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.sock");
    let receiver = UnixDatagram::bind(&path).unwrap();
    receiver.set_nonblocking(true).unwrap();
    let config = config(
        &ExporterBuilder::dogstatsd(format!("unixgram://{}", path.display()))
            .with_maximum_payload_length(1024),
    );
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());
    let mut delivery = Delivery::new(&config, never_continues, None);
    let first = numbered(5_000, 40);
    fill(&mut delivery, &first);
    assert!(transport.ready(Instant::now(), &stats).await);
    assert!(
        !delivery.send(&mut transport, &stats).await,
        "the queue fills up"
    );
    let s = stats.snapshot();
    assert_eq!((s.lines_dropped_send, s.payloads_dropped), (0, 0), "{s:?}");
    assert_eq!(s.lines_sent + delivery.backlog.lines().count(), 5_000);
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    let mut drain = |got: &mut Vec<String>| {
        while let Ok(n) = receiver.recv(&mut buf) {
            got.extend(
                std::str::from_utf8(&buf[..n])
                    .unwrap()
                    .split('\n')
                    .map(str::to_owned),
            );
        }
    };
    // The receiver reads; the next batches wait behind the backlog, which goes out first.
    let second = numbered(10, 1);
    let mut rounds = 0;
    loop {
        drain(&mut got);
        rounds += 1;
        assert!(rounds < 1000, "never caught up");
        if delivery.backlog.is_empty() {
            break;
        }
        assert!(transport.ready(Instant::now(), &stats).await);
        delivery.start();
        delivery.send(&mut transport, &stats).await;
    }
    fill(&mut delivery, &second);
    assert!(delivery.send(&mut transport, &stats).await);
    drain(&mut got);
    let expected: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(got, expected, "every line once, in order");
}

/// Commits `name value ts` lines, recording each line's point as the Graphite encoder does
/// (but not for names starting with `!`, as if an encoder had forgotten it).
fn fill_with_points(delivery: &mut Delivery, points: &[(&str, f64)], ts: u64) {
    delivery.start();
    let w = delivery.writer();
    for (name, value) in points {
        let start = w.line_buf().len();
        w.line_buf()
            .extend_from_slice(format!("{name} {value} {ts}\n").as_bytes());
        if !name.starts_with('!') {
            w.point(start..start + name.len(), ts, *value);
        }
        w.commit(1).unwrap();
    }
    w.finish();
}

/// Sends a parked batch, then a fresh one, as Graphite pickle to a TCP receiver; returns the
/// points it decoded, in order, and `lines_sent`.
async fn pickled(
    parked: &[(&str, f64)],
    fresh: &[(&str, f64)],
) -> (Vec<(String, (u64, f64))>, u64) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut all = Vec::new();
        conn.read_to_end(&mut all).unwrap();
        all
    });
    let config = config(&ExporterBuilder::graphite_pickle(format!("tcp://{addr}")));
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());
    let wire = crate::encode::PickleWire::new(crate::encode::MAX_PICKLE_FRAME);
    let mut delivery = Delivery::new(&config, never_continues, Some(wire));
    fill_with_points(&mut delivery, parked, 100);
    delivery.park(&stats);
    fill_with_points(&mut delivery, fresh, 200);
    assert!(transport.ready(Instant::now(), &stats).await);
    assert!(delivery.send(&mut transport, &stats).await);
    drop(transport);
    let mut bytes = &reader.join().unwrap()[..];
    let mut received = Vec::new();
    while !bytes.is_empty() {
        let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        let frame: Vec<(String, (u64, f64))> =
            serde_pickle::from_slice(&bytes[4..4 + len], serde_pickle::DeOptions::new()).unwrap();
        received.extend(frame);
        bytes = &bytes[4 + len..];
    }
    (received, stats.snapshot().lines_sent)
}

fn points_at(points: &[(&str, u64, f64)]) -> Vec<(String, (u64, f64))> {
    points
        .iter()
        .map(|&(p, ts, v)| (p.to_string(), (ts, v)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pickled_backlog_is_read_from_its_own_lines_and_the_fresh_batch_from_its_points() {
    // The same number of lines in both batches, so points taken from the wrong one would fit.
    let (received, sent) = pickled(
        &[("old.a", 1.0), ("old.b", 2.0)],
        &[("new.a", 3.5), ("new.b", -4.0)],
    )
    .await;
    let expected = [
        ("old.a", 100, 1.0),
        ("old.b", 100, 2.0),
        ("new.a", 200, 3.5),
        ("new.b", 200, -4.0),
    ];
    assert_eq!(received, points_at(&expected));
    assert_eq!(sent, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_pickled_batch_with_a_line_missing_its_point_is_read_from_its_text() {
    let (received, sent) = pickled(&[], &[("new.a", 3.5), ("!new.b", 5.0)]).await;
    assert_eq!(
        received,
        points_at(&[("new.a", 200, 3.5), ("!new.b", 200, 5.0)])
    );
    assert_eq!(sent, 2);
}

#[test]
fn releasing_a_batch_keeps_it_while_any_of_its_payloads_is_unsent() {
    let config = config(&ExporterBuilder::statsd("udp://127.0.0.1:8125"));
    let mut delivery = Delivery::new(&config, never_continues, None);
    let lines = numbered(200, 20);
    fill(&mut delivery, &lines);
    let payloads = delivery.writer().len();
    assert!(payloads > 2);
    // Nothing was handed over: everything stays.
    delivery.release_sent();
    assert_eq!(delivery.writer().len(), payloads);
    assert_eq!(delivery.unsent_lines(), 200);
    // Once every payload is handed over (here, parked), the batch goes.
    delivery.park(&StatsCells::default());
    delivery.release_sent();
    assert_eq!(
        (delivery.writer().len(), delivery.writer().buffered_len()),
        (0, 0)
    );
}
