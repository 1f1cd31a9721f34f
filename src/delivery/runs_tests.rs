//! Runs of datagrams (UDP segmentation offload) on a real loopback receiver: the same
//! datagrams, in the same order, and the same counts as one `send` each, in every mode.

#![allow(clippy::unwrap_used, reason = "a test")]

use std::net::UdpSocket;
use std::time::Duration;

use nix::errno::Errno;
use tokio::time::Instant;

use super::Delivery;
use crate::ExporterBuilder;
use crate::encode::never_continues;
use crate::stats::StatsCells;
use crate::transport::Transport;

/// How the transport sends the runs it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Segmentation offload, as the kernel allows.
    Gso,
    /// One `send` per datagram (GSO off on the socket).
    Single,
    /// The kernel refuses the first run with this error.
    Refused(Errno),
}

/// A receiver on loopback with room for every datagram of a test.
fn receiver() -> UdpSocket {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    socket.set_recv_buffer_size(4 << 20).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    let socket: UdpSocket = socket.into();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
}

/// The next `n` datagrams on `socket`.
fn receive(socket: &UdpSocket, n: usize) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 1 << 17];
    (0..n)
        .map(|_| {
            let len = socket.recv(&mut buf).unwrap();
            buf[..len].to_vec()
        })
        .collect()
}

/// Fills `delivery`'s batch with one payload per entry of `payloads` (its lines).
fn fill(delivery: &mut Delivery, payloads: &[Vec<String>]) {
    delivery.start();
    let w = delivery.writer();
    for lines in payloads {
        for line in lines {
            w.line_buf().extend_from_slice(line.as_bytes());
            w.line_buf().push(b'\n');
            w.commit(1).unwrap();
        }
        w.finish();
    }
}

/// Payload `i` of a group: `lines` lines, each `pad` bytes of padding long.
fn payload(group: &str, i: usize, lines: usize, pad: usize) -> Vec<String> {
    (0..lines)
        .map(|l| format!("{group}{i:04}.{l}.{}:1|c", "x".repeat(pad)))
        .collect()
}

/// Equal runs longer than one call carries, a shorter last one, lengths that all differ, a
/// longer one after a run.
fn mixed() -> Vec<Vec<String>> {
    let mut payloads: Vec<_> = (0..100).map(|i| payload("a", i, 3, 10)).collect();
    payloads.push(payload("b", 0, 2, 10));
    payloads.extend((0..6).map(|i| payload("c", i, 1, i * 7)));
    payloads.extend((0..10).map(|i| payload("d", i, 2, 20)));
    payloads.push(payload("e", 0, 3, 40));
    payloads
}

fn datagram(lines: &[String]) -> Vec<u8> {
    lines.join("\n").into_bytes()
}

struct Sent {
    datagrams: Vec<Vec<u8>>,
    stats: crate::ExporterStats,
    runs: usize,
    runs_on: bool,
}

/// Sends `batches` one after the other through one transport in `mode`, to `rx`, and
/// receives `expect` datagrams.
async fn send(mode: Mode, rx: &UdpSocket, batches: &[Vec<Vec<String>>], expect: usize) -> Sent {
    let mut config = ExporterBuilder::statsd(format!("udp://{}", rx.local_addr().unwrap()))
        .config()
        .unwrap();
    config.max_payload_len = 100_000;
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());
    let mut delivery = Delivery::new(&config, never_continues, None);
    assert!(transport.ready(Instant::now(), &stats).await);
    match mode {
        Mode::Gso => {}
        Mode::Single => transport.force_runs(false, None),
        Mode::Refused(errno) => transport.force_runs(true, Some(errno)),
    }
    for batch in batches {
        fill(&mut delivery, batch);
        assert!(transport.ready(Instant::now(), &stats).await);
        delivery.send(&mut transport, &stats).await;
    }
    Sent {
        datagrams: receive(rx, expect),
        stats: stats.snapshot(),
        runs: transport.runs_sent(),
        runs_on: transport.sends_runs(),
    }
}

#[tokio::test]
async fn every_mode_puts_the_same_datagrams_on_a_loopback_receiver_as_one_send_each() {
    let payloads = mixed();
    let expected: Vec<Vec<u8>> = payloads.iter().map(|p| datagram(p)).collect();
    let batches = [payloads.clone(), payloads];
    let mut single = None;
    for mode in [
        Mode::Single,
        Mode::Gso,
        Mode::Refused(Errno::EINVAL),
        Mode::Refused(Errno::EIO),
        Mode::Refused(Errno::ENOBUFS),
    ] {
        let rx = receiver();
        let sent = send(mode, &rx, &batches, 2 * expected.len()).await;
        for (n, got) in sent.datagrams.chunks(expected.len()).enumerate() {
            assert!(
                got == expected.as_slice(),
                "{mode:?}, batch {n}: not the same datagrams"
            );
        }
        let s = sent.stats;
        assert_eq!(
            s.payloads_sent,
            2 * expected.len() as u64,
            "{mode:?}: {s:?}"
        );
        let single = single.get_or_insert(s);
        assert_eq!(
            (s.lines_sent, s.bytes_sent, s.payloads_sent, s.send_errors),
            (
                single.lines_sent,
                single.bytes_sent,
                single.payloads_sent,
                single.send_errors
            ),
            "{mode:?}: counted as one send each"
        );
        match mode {
            Mode::Single => assert_eq!(sent.runs, 0),
            // 100 equal ones (two runs), the shorter one with them, the 10, twice.
            Mode::Gso => assert_eq!(sent.runs, 6, "{mode:?}"),
            // A kernel that refuses GSO: off for good on that socket, quietly.
            Mode::Refused(Errno::EINVAL | Errno::EIO) => {
                assert_eq!((sent.runs, sent.runs_on), (0, false), "{mode:?}");
            }
            // Any other failure is the first datagram's to meet alone; runs go on.
            Mode::Refused(_) => assert_eq!((sent.runs, sent.runs_on), (6, true), "{mode:?}"),
        }
    }
}

#[tokio::test]
async fn a_datagram_too_large_between_two_runs_is_dropped_alone_and_both_runs_arrive() {
    let mut payloads: Vec<_> = (0..5).map(|i| payload("a", i, 2, 5)).collect();
    payloads.push(vec![format!("big.{}:1|c", "x".repeat(70_000))]);
    payloads.extend((0..5).map(|i| payload("b", i, 2, 5)));
    let rx = receiver();
    let sent = send(Mode::Gso, &rx, &[payloads.clone()], 10).await;
    let expected: Vec<Vec<u8>> = payloads
        .iter()
        .filter(|p| p.len() == 2)
        .map(|p| datagram(p))
        .collect();
    assert!(sent.datagrams == expected, "the same datagrams, in order");
    let s = sent.stats;
    assert_eq!(
        (
            s.payloads_sent,
            s.lines_sent,
            s.payloads_dropped,
            s.lines_dropped_send,
            s.send_errors
        ),
        (10, 20, 1, 1, 1),
        "{s:?}"
    );
    assert_eq!(sent.runs, 2, "a run before it and one after");
}

#[tokio::test]
async fn a_receiver_that_went_away_is_charged_the_same_lost_lines_as_with_one_send_each() {
    // Two flushes of 10 equal datagrams to a port nobody listens on: every line is lost, and
    // each "refused" the socket reports charges the lines sent before it.
    // Bound, then closed: nobody listens there.
    let addr = receiver().local_addr().unwrap();
    let batch: Vec<_> = (0..10).map(|i| payload("a", i, 2, 5)).collect();
    let batches = [batch.clone(), batch];
    let mut counted = Vec::new();
    for mode in [Mode::Single, Mode::Gso] {
        let mut config = ExporterBuilder::statsd(format!("udp://{addr}"))
            .config()
            .unwrap();
        config.max_payload_len = 1_000;
        let stats = StatsCells::default();
        let mut transport = Transport::new(&config, Instant::now());
        let mut delivery = Delivery::new(&config, never_continues, None);
        assert!(transport.ready(Instant::now(), &stats).await);
        if mode == Mode::Single {
            transport.force_runs(false, None);
        }
        for batch in &batches {
            fill(&mut delivery, batch);
            assert!(transport.ready(Instant::now(), &stats).await);
            delivery.settle(&mut transport, &stats);
            delivery.send(&mut transport, &stats).await;
            // Time for the ICMP port unreachable (on loopback it is immediate).
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let s = stats.snapshot();
        counted.push((
            mode,
            s.lines_sent,
            s.lines_possibly_lost,
            transport.sends_runs(),
        ));
    }
    assert_eq!(counted.len(), 2);
    let (single, gso) = (counted[0], counted[1]);
    assert_eq!(single.1, 40, "{counted:?}");
    assert_eq!(
        (gso.1, gso.2),
        (single.1, single.2),
        "the same lines sent and lost: {counted:?}"
    );
    assert!(!gso.3, "no runs while the destination refuses");
}

#[tokio::test]
async fn after_a_run_fails_no_run_is_tried_until_a_datagram_sent_alone_goes_out() {
    let rx = receiver();
    let config = ExporterBuilder::statsd(format!("udp://{}", rx.local_addr().unwrap()))
        .config()
        .unwrap();
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());
    assert!(transport.ready(Instant::now(), &stats).await);
    // The kernel fails the run with an error that is not a refusal of GSO itself.
    transport.force_runs(true, Some(Errno::ENOBUFS));
    let (a, b) = (b"a:1|c".as_slice(), b"b:1|c".as_slice());
    assert_eq!(transport.send_run(&[a, b]).await, Ok(false));
    assert!(
        !transport.sends_runs(),
        "a run right after a failed one would fail the same way under pressure"
    );
    let sent = transport
        .send(
            crate::transport::Payload::Frame(a),
            crate::transport::Hint::Fresh,
            &stats,
        )
        .await;
    assert!(sent.is_ok(), "{sent:?}");
    assert!(transport.sends_runs(), "runs resume once a send goes out");
    assert_eq!(transport.send_run(&[a, b]).await, Ok(true));
    assert_eq!(receive(&rx, 3), [a.to_vec(), a.to_vec(), b.to_vec()]);
}

#[tokio::test]
async fn runs_resume_once_a_datagram_sent_alone_meets_no_refusal_after_a_receiver_returns() {
    // Bound, then closed: nobody listens there, so the socket learns of a refusal.
    let addr = receiver().local_addr().unwrap();
    let config = ExporterBuilder::statsd(format!("udp://{addr}"))
        .config()
        .unwrap();
    let stats = StatsCells::default();
    let mut transport = Transport::new(&config, Instant::now());
    assert!(transport.ready(Instant::now(), &stats).await);
    let (a, b) = (b"a:1|c".as_slice(), b"b:1|c".as_slice());
    let single = crate::transport::Payload::Frame(a);
    let fresh = crate::transport::Hint::Fresh;
    assert_eq!(transport.send_run(&[a, b]).await, Ok(true), "lost unseen");
    // Time for the ICMP port unreachable (on loopback it is immediate).
    tokio::time::sleep(Duration::from_millis(20)).await;
    // The run that learns of the refusal does not go out.
    assert_eq!(
        transport.send_run(&[a, b]).await,
        Err(crate::transport::Hint::Refused)
    );
    // The receiver is back on the same port before the run's first datagram goes out alone.
    let back = UdpSocket::bind(addr).unwrap();
    back.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let hinted = transport
        .send(single, crate::transport::Hint::Refused, &stats)
        .await;
    assert!(hinted.is_ok(), "{hinted:?}");
    assert!(!transport.sends_runs(), "one at a time while refusals come");
    // The next datagram alone meets no refusal: runs resume.
    let sent = transport.send(single, fresh, &stats).await;
    assert!(sent.is_ok(), "{sent:?}");
    assert!(
        transport.sends_runs(),
        "runs resume once a send learns of no refusal"
    );
    assert_eq!(transport.send_run(&[a, b]).await, Ok(true));
    assert_eq!(
        receive(&back, 4),
        [a.to_vec(), a.to_vec(), a.to_vec(), b.to_vec()]
    );
    assert_eq!(transport.runs_sent(), 2, "the first run and the one after");
}
