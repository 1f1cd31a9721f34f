//! Loopback receivers for integration tests: a UDP socket and a restartable TCP listener,
//! bound to port 0 on 127.0.0.1, that collect what they receive. No sleeps: every wait polls
//! with a deadline.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::unwrap_used,
    reason = "test support: a failed setup must fail the test loudly"
)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A UDP receiver on 127.0.0.1. A background thread reads continuously, so a burst of
/// datagrams never overflows the kernel's receive buffer while a test is busy.
pub(crate) struct UdpReceiver {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    pub(crate) datagrams: Vec<Vec<u8>>,
}

impl UdpReceiver {
    pub(crate) fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let received: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let sink = Arc::clone(&received);
        // The thread ends when the test process does; it holds only the socket.
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while let Ok(n) = socket.recv(&mut buf) {
                sink.lock().unwrap().push(buf[..n].to_vec());
            }
        });
        Self {
            addr,
            received,
            datagrams: Vec::new(),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("udp://{}", self.addr())
    }

    fn sync(&mut self) -> usize {
        self.datagrams.clone_from(&self.received.lock().unwrap());
        self.datagrams.len()
    }

    /// Waits until `quiet` passes with no new datagram (or `max` elapses); returns all lines.
    pub(crate) fn drain(&mut self, quiet: Duration, max: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut seen = self.sync();
        let mut last_change = Instant::now();
        while start.elapsed() < max && last_change.elapsed() < quiet {
            std::thread::sleep(Duration::from_millis(5));
            let now = self.sync();
            if now != seen {
                seen = now;
                last_change = Instant::now();
            }
        }
        self.lines()
    }

    /// Waits until `pred` holds on all lines so far, or `max` elapses.
    pub(crate) fn wait_for(
        &mut self,
        max: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let start = Instant::now();
        self.sync();
        while !pred(&self.lines()) && start.elapsed() < max {
            std::thread::sleep(Duration::from_millis(5));
            self.sync();
        }
        self.lines()
    }

    /// Every line received so far, in order.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.datagrams
            .iter()
            .flat_map(|d| {
                String::from_utf8(d.clone())
                    .unwrap()
                    .split('\n')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// A TCP receiver that accepts any number of connections and appends their bytes to one log.
/// It can be stopped (closing the listener and every connection gracefully) and restarted on
/// the same port.
pub(crate) struct TcpReceiver {
    addr: SocketAddr,
    bytes: Arc<Mutex<Vec<u8>>>,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    pub(crate) accepted: Arc<Mutex<usize>>,
}

impl TcpReceiver {
    pub(crate) fn new() -> Self {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// A receiver on `listener` (bound anywhere, such as `[::1]:0`).
    pub(crate) fn on(listener: TcpListener) -> Self {
        let mut r = Self {
            addr: listener.local_addr().unwrap(),
            bytes: Arc::default(),
            running: None,
            accepted: Arc::default(),
        };
        r.run(listener);
        r
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    fn run(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (bytes, accepted, stop2) = (
            Arc::clone(&self.bytes),
            Arc::clone(&self.accepted),
            Arc::clone(&stop),
        );
        let thread = std::thread::spawn(move || {
            let mut conns: Vec<TcpStream> = Vec::new();
            let mut buf = vec![0u8; 65_536];
            while !stop2.load(Ordering::SeqCst) {
                if let Ok((s, _)) = listener.accept() {
                    s.set_nonblocking(true).unwrap();
                    conns.push(s);
                    *accepted.lock().unwrap() += 1;
                }
                conns.retain_mut(|c| {
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) => break false,
                            Ok(n) => bytes.lock().unwrap().extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break true,
                            Err(_) => break false,
                        }
                    }
                });
                std::thread::sleep(Duration::from_millis(2));
            }
            // Dropping the listener and the streams closes them gracefully (FIN).
        });
        self.running = Some((stop, thread));
    }

    /// Closes the listener and every connection.
    pub(crate) fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            stop.store(true, Ordering::SeqCst);
            thread.join().unwrap();
        }
    }

    /// Listens again on the same port.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let listener = TcpListener::bind(self.addr).unwrap();
        self.run(listener);
    }

    /// Every byte received so far.
    pub(crate) fn raw(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.bytes.lock().unwrap().clone()).unwrap()
    }

    /// Complete lines received so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        let text = self.text();
        let complete = text.rfind('\n').map_or("", |i| &text[..i]);
        complete
            .split('\n')
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub(crate) fn wait_for(&self, max: Duration, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        let start = Instant::now();
        while !pred(&self.lines()) && start.elapsed() < max {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.lines()
    }
}

impl Drop for TcpReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True when running under CI: `CI` is set, non-empty and not `false` (`.ci/run` sets it).
pub(crate) fn is_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// The socket `bound` to the IPv6 loopback (`::1`), or `None` when this machine has none:
/// outside CI the caller skips its test (the reason is printed); under CI (see [`is_ci`]) it
/// panics instead, because CI must test IPv6.
///
/// # Panics
///
/// Under CI when `bound` is an error.
#[allow(
    clippy::print_stderr,
    reason = "tells the person running the tests locally why a test did nothing"
)]
pub(crate) fn require_ipv6_loopback<S>(bound: std::io::Result<S>) -> Option<S> {
    match bound {
        Ok(socket) => Some(socket),
        Err(e) => {
            assert!(
                !is_ci(),
                "cannot bind the IPv6 loopback [::1] ({e}); CI must run with IPv6 enabled"
            );
            eprintln!("SKIPPED: cannot bind the IPv6 loopback [::1] ({e})");
            None
        }
    }
}

/// Sum of the values of every `name:<v>|c` line.
pub(crate) fn counter_sum(lines: &[String], name: &str) -> u64 {
    let prefix = format!("{name}:");
    lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix(&prefix)?
                .strip_suffix("|c")?
                .parse::<u64>()
                .ok()
        })
        .sum()
}
