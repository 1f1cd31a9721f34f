//! The whole loop on loopback: the tap's receive threads on a free port or a socket in a temp
//! dir, this crate's exporter sending the demo's metrics to it, and the tap's counts checked.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{FramingChoice, demo_builder, framing, record_demo_round};
use crate::frame::Framing;
use crate::listen::{Bound, Endpoint, Stop, serve};
use crate::parse::Dialect;
use crate::tally::{Echo, Tally, Tap};

/// The tap's output, kept for failure messages.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

struct Running {
    tap: Arc<Tap>,
    stop: Arc<Stop>,
    receiver: std::thread::JoinHandle<()>,
    endpoint: Endpoint,
    out: Captured,
}

fn start_tap(dialect: Dialect, listen: &str) -> Running {
    let bound = Bound::bind(&Endpoint::parse(listen).unwrap()).unwrap();
    let endpoint = bound.endpoint().unwrap();
    let framing = framing(&endpoint, dialect, FramingChoice::Auto).unwrap();
    let out = Captured::default();
    let tap = Arc::new(Tap::new(dialect, Echo::All, Box::new(out.clone())));
    let stop = Arc::new(Stop::default());
    let receiver = serve(bound, framing, Arc::clone(&tap), Arc::clone(&stop)).unwrap();
    Running {
        tap,
        stop,
        receiver,
        endpoint,
        out,
    }
}

impl Running {
    /// Waits (up to 10 s) until `done` holds for the totals, then stops the tap.
    fn finish(self, done: impl Fn(&Tally) -> bool) -> (Tally, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(&self.tap.total()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop.request();
        self.receiver.join().unwrap();
        (self.tap.total(), self.out.text())
    }
}

/// Sends one demo round through the exporter to the tap and checks what the tap saw.
fn exporter_to_tap(dialect: Dialect, listen: &str, series: usize) {
    let running = start_tap(dialect, listen);
    let endpoint = running.endpoint.clone();
    let (recorder, exporter) = demo_builder(dialect, &running.endpoint)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, record_demo_round);
    let stats = guard.shutdown().unwrap();
    assert!(stats.lines_sent > 0);
    let (total, out) = running.finish(|t| t.lines >= stats.lines_sent);
    assert_eq!(total.bad, 0, "{out}");
    assert_eq!(total.series.len(), series, "{out}");
    assert_eq!(total.lines, stats.lines_sent, "{out}");
    // On a length-prefixed stream `bytes_sent` counts each payload with a final newline that
    // is not sent, and not the 4-byte prefix that is; elsewhere it is what went on the wire.
    if framing(&endpoint, dialect, FramingChoice::Auto) != Ok(Framing::LengthPrefixed) {
        assert_eq!(total.bytes, stats.bytes_sent, "{out}");
    }
}

#[test]
fn statsd_over_udp_from_the_exporter_has_no_bad_lines_and_four_series() {
    // requests.a, requests.b, queue_depth (sent as 0 then -3), latency (3 timer lines).
    exporter_to_tap(Dialect::Statsd, "udp://127.0.0.1:0", 4);
}

#[test]
fn statsd_over_tcp_from_the_exporter_has_no_bad_lines_and_four_series() {
    exporter_to_tap(Dialect::Statsd, "tcp://127.0.0.1:0", 4);
}

#[test]
fn dogstatsd_over_udp_from_the_exporter_has_no_bad_lines_and_four_series() {
    exporter_to_tap(Dialect::Dogstatsd, "udp://127.0.0.1:0", 4);
}

#[test]
fn graphite_over_tcp_from_the_exporter_has_no_bad_lines_and_twelve_series() {
    // Two tagged counters, the gauge, and latency .count .sum .min .max .mean .p50 .p90 .p99
    // .p999.
    exporter_to_tap(Dialect::Graphite, "tcp://127.0.0.1:0", 12);
}

#[cfg(unix)]
#[test]
fn dogstatsd_over_a_unix_stream_is_read_length_prefixed_with_no_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("unix://{}", dir.path().join("dsd.sock").display());
    exporter_to_tap(Dialect::Dogstatsd, &listen, 4);
}

#[cfg(unix)]
#[test]
fn dogstatsd_over_a_unix_datagram_socket_has_no_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("unixgram://{}", dir.path().join("dsd.sock").display());
    exporter_to_tap(Dialect::Dogstatsd, &listen, 4);
}

#[test]
fn a_tcp_sender_s_bad_and_unterminated_lines_are_flagged() {
    let running = start_tap(Dialect::Statsd, "tcp://127.0.0.1:0");
    let Endpoint::Tcp(addr) = running.endpoint else {
        unreachable!()
    };
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    // Written in pieces that cut lines in half: only `\n` ends a line.
    for piece in ["ok:1|c\nno_ty", "pe:1\nga:1|g", "\ntail:1|c"] {
        conn.write_all(piece.as_bytes()).unwrap();
        conn.flush().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(conn);
    let (total, out) = running.finish(|t| t.lines + t.bad >= 4);
    assert_eq!((total.lines, total.bad), (3, 2), "{out}");
    assert_eq!(total.series.len(), 2, "{out}");
    assert!(out.contains("BAD  no_type:1\n     ^ missing type"), "{out}");
    assert!(
        out.contains("BAD  tail:1|c\n     ^ stream ended inside a line"),
        "{out}"
    );
}

#[cfg(unix)]
#[test]
fn a_newline_framed_sender_on_a_length_prefixed_socket_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dsd.sock");
    let running = start_tap(Dialect::Dogstatsd, &format!("unix://{}", path.display()));
    let mut conn = std::os::unix::net::UnixStream::connect(&path).unwrap();
    conn.write_all(b"requests:1|c\n").unwrap();
    drop(conn);
    let (total, out) = running.finish(|t| t.bad >= 1);
    assert_eq!((total.lines, total.bad), (0, 1), "{out}");
    assert!(out.contains("exceeds the 8192-byte buffer"), "{out}");
}
