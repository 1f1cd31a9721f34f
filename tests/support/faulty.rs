//! Fault-injection receivers on loopback, for the reliability tests (`tests/faults_*.rs`).
//!
//! [`StreamReceiver`] (TCP, or a Unix stream socket in a private temp dir) and
//! [`DatagramReceiver`] (UDP, or a Unix datagram socket) record every byte they receive, and a
//! test switches them, at any moment, between:
//!
//! - **up**: accepting and reading everything;
//! - **down, refusing**: no listener. A TCP port stays *reserved* by a bound socket that does
//!   not listen, so connects are refused (RST) and no other test can take the port; a Unix
//!   path does not exist;
//! - **closing gracefully** ([`StreamReceiver::close_gracefully`]): the listener closes (a
//!   Unix socket file is removed) and every connection gets a FIN, but is still read until the
//!   sender closes its side (a lame-duck drain, bounded by [`DRAIN_LIMIT`]): nothing the
//!   sender wrote before it noticed the FIN is lost;
//! - **resetting** ([`StreamReceiver::reset`]): like `kill -9`. Connections are closed
//!   without reading what is queued, TCP ones with `SO_LINGER` 0 (an RST); the kernel discards
//!   the unread bytes;
//! - **stalling** ([`StreamReceiver::stall`]): connections are still accepted but never read,
//!   so the kernel buffers fill and the sender's writes block; [`resume`](StreamReceiver::resume)
//!   reads again, old connections included;
//! - **coming back** ([`StreamReceiver::reopen`]) on the same port or path.
//!
//! Stream bytes are recorded per connection, in accept order, with how each connection ended.
//! A background thread polls the non-blocking sockets every millisecond; every switch takes
//! the same lock, so it is done when the call returns. No sleeps in the tests: every wait
//! polls with a deadline.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(
    clippy::unwrap_used,
    reason = "test support: a failed setup must fail the test loudly"
)]

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};
use tempfile::TempDir;

/// How long a gracefully closed connection is still read, waiting for the sender to close its
/// side, before we close it anyway.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// How often the background thread looks at the sockets.
const POLL: Duration = Duration::from_millis(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------------
// Stream receivers

/// How a stream connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The sender closed it (we read EOF) while we were up.
    SenderClosed,
    /// We sent a FIN, then read until the sender closed its side: a complete graceful close.
    Graceful,
    /// We sent a FIN, but the sender never closed its side within [`DRAIN_LIMIT`].
    DrainTimedOut,
    /// We reset it ([`StreamReceiver::reset`]), discarding what we had not read.
    Reset,
    /// Reading failed (the sender reset it).
    Failed,
}

/// Everything one connection delivered, and how it ended (`None` while open).
#[derive(Debug, Clone, Default)]
pub(crate) struct Connection {
    pub(crate) bytes: Vec<u8>,
    pub(crate) end: Option<End>,
}

impl Connection {
    /// The newline-terminated lines; a cut line at the end (after the last `\n`) is left out.
    pub(crate) fn complete_lines(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.bytes);
        let mut lines: Vec<String> = text.split('\n').map(str::to_owned).collect();
        lines.pop();
        lines
    }

    /// Bytes after the last newline: a line cut short (or still arriving, while open).
    pub(crate) fn partial_tail(&self) -> &[u8] {
        let start = self
            .bytes
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        &self.bytes[start..]
    }

    /// The bodies of the complete 4-byte little-endian length-prefixed frames (DogStatsD over a
    /// Unix stream); a frame cut short at the end is left out, as the Agent does.
    pub(crate) fn complete_frames(&self) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        let mut rest = self.bytes.as_slice();
        while rest.len() >= 4 {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            if rest.len() < 4 + len {
                break;
            }
            frames.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        frames
    }
}

/// Where a receiver listens.
#[derive(Debug, Clone)]
pub(crate) enum Place {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Stream> {
        match self {
            Self::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            Self::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn set_nonblocking(&self) {
        match self {
            Self::Tcp(s) => s.set_nonblocking(true).unwrap(),
            Self::Unix(s) => s.set_nonblocking(true).unwrap(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Tcp(s) => s.read(buf),
            Self::Unix(s) => s.read(buf),
        }
    }

    /// Sends a FIN (our side will write no more); reading goes on.
    fn shutdown_write(&self) {
        // The sender may have gone already; then there is nothing to tell it.
        let _ = match self {
            Self::Tcp(s) => s.shutdown(Shutdown::Write),
            Self::Unix(s) => s.shutdown(Shutdown::Write),
        };
    }

    /// Closes abruptly: TCP with an RST (`SO_LINGER` 0), discarding unread bytes. A Unix
    /// stream closed with unread bytes makes the sender's next read fail with `ECONNRESET`.
    fn reset(self) {
        if let Self::Tcp(s) = &self {
            SockRef::from(s).set_linger(Some(Duration::ZERO)).unwrap();
        }
    }
}

/// One accepted connection still open on our side.
struct Open {
    index: usize,
    stream: Stream,
    /// Set once we sent a FIN: read until EOF, but not past this instant.
    draining_until: Option<Instant>,
}

struct StreamState {
    place: Place,
    listener: Option<Listener>,
    /// TCP while down: the port, bound but not listening, so connects are refused and nobody
    /// else can take it.
    reservation: Option<Socket>,
    /// Receive buffer size asked for on the listener (so accepted connections inherit it).
    receive_buffer: Option<usize>,
    open: Vec<Open>,
    connections: Vec<Connection>,
    reading: bool,
}

impl StreamState {
    /// Accepts every connection the kernel has completed.
    fn accept_pending(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        while let Ok(stream) = listener.accept() {
            stream.set_nonblocking();
            self.open.push(Open {
                index: self.connections.len(),
                stream,
                draining_until: None,
            });
            self.connections.push(Connection::default());
        }
    }

    /// Reads what is there on every connection we read (all when up, draining ones always).
    fn read_all(&mut self, buf: &mut [u8]) {
        let reading = self.reading;
        let connections = &mut self.connections;
        self.open.retain_mut(|open| {
            if !reading && open.draining_until.is_none() {
                return true;
            }
            let conn = &mut connections[open.index];
            loop {
                match open.stream.read(buf) {
                    Ok(0) => {
                        conn.end = Some(if open.draining_until.is_some() {
                            End::Graceful
                        } else {
                            End::SenderClosed
                        });
                        return false;
                    }
                    Ok(n) => conn.bytes.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        conn.end = Some(End::Failed);
                        return false;
                    }
                }
            }
            if open.draining_until.is_some_and(|t| Instant::now() >= t) {
                conn.end = Some(End::DrainTimedOut);
                return false;
            }
            true
        });
    }

    fn listen(&mut self) {
        assert!(self.listener.is_none(), "already listening");
        match self.place.clone() {
            Place::Tcp(addr) => {
                let socket = match self.reservation.take() {
                    Some(s) => s,
                    None => reserve(addr, self.receive_buffer),
                };
                socket.listen(1024).unwrap();
                let listener: TcpListener = socket.into();
                listener.set_nonblocking(true).unwrap();
                self.listener = Some(Listener::Tcp(listener));
            }
            Place::Unix(path) => {
                let _ = std::fs::remove_file(&path);
                let listener = UnixListener::bind(&path).unwrap();
                listener.set_nonblocking(true).unwrap();
                self.listener = Some(Listener::Unix(listener));
            }
        }
    }

    /// Stops listening: connects are refused from now on (a Unix socket file is removed).
    fn unlisten(&mut self) {
        self.accept_pending();
        if self.listener.take().is_none() {
            return;
        }
        match self.place.clone() {
            Place::Tcp(addr) => self.reservation = Some(reserve(addr, self.receive_buffer)),
            Place::Unix(path) => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// A TCP socket bound to `addr` (port 0 picks one) but not listening.
fn reserve(addr: SocketAddr, receive_buffer: Option<usize>) -> Socket {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.bind(&addr.into()).unwrap();
    socket
}

/// A stream receiver whose faults a test switches. See the module docs.
pub(crate) struct StreamReceiver {
    place: Place,
    state: Arc<Mutex<StreamState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: Option<TempDir>,
}

impl StreamReceiver {
    /// A TCP receiver on 127.0.0.1, up.
    pub(crate) fn tcp() -> Self {
        let r = Self::tcp_down();
        r.reopen();
        r
    }

    /// A TCP receiver on a reserved 127.0.0.1 port, down (refusing) until
    /// [`reopen`](Self::reopen).
    pub(crate) fn tcp_down() -> Self {
        Self::tcp_with(None)
    }

    /// A TCP receiver, up, whose connections get (about) `bytes` of kernel receive buffer, so
    /// a stalled reader fills up quickly.
    pub(crate) fn tcp_with_receive_buffer(bytes: usize) -> Self {
        let r = Self::tcp_with(Some(bytes));
        r.reopen();
        r
    }

    fn tcp_with(receive_buffer: Option<usize>) -> Self {
        let socket = reserve("127.0.0.1:0".parse().unwrap(), receive_buffer);
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        Self::start(Place::Tcp(addr), Some(socket), receive_buffer, None)
    }

    /// A Unix stream receiver at `<temp dir>/<name>`, up.
    pub(crate) fn unix(name: &str) -> Self {
        let r = Self::unix_down(name);
        r.reopen();
        r
    }

    /// A Unix stream receiver whose socket file does not exist yet.
    pub(crate) fn unix_down(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("faulty-")
            .tempdir()
            .unwrap();
        let path = dir.path().join(name);
        Self::start(Place::Unix(path), None, None, Some(dir))
    }

    fn start(
        place: Place,
        reservation: Option<Socket>,
        receive_buffer: Option<usize>,
        dir: Option<TempDir>,
    ) -> Self {
        let state = Arc::new(Mutex::new(StreamState {
            place: place.clone(),
            listener: None,
            reservation,
            receive_buffer,
            open: Vec::new(),
            connections: Vec::new(),
            reading: true,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (state2, stop2) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            while !stop2.load(Ordering::SeqCst) {
                {
                    let mut s = lock(&state2);
                    s.accept_pending();
                    s.read_all(&mut buf);
                }
                std::thread::sleep(POLL);
            }
        });
        Self {
            place,
            state,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub(crate) fn place(&self) -> &Place {
        &self.place
    }

    /// `tcp://127.0.0.1:port` or `unix:///path`.
    pub(crate) fn endpoint(&self) -> String {
        match &self.place {
            Place::Tcp(addr) => format!("tcp://{addr}"),
            Place::Unix(path) => format!("unix://{}", path.display()),
        }
    }

    /// The Unix socket's path (panics for TCP).
    pub(crate) fn path(&self) -> PathBuf {
        match &self.place {
            Place::Unix(path) => path.clone(),
            Place::Tcp(_) => panic!("a TCP receiver has no path"),
        }
    }

    /// Listens again, on the same port or path, reading (a new process: not stalled).
    pub(crate) fn reopen(&self) {
        let mut s = lock(&self.state);
        s.listen();
        s.reading = true;
    }

    /// Stops listening (connects are refused, a Unix socket file is removed), leaving the
    /// open connections as they are.
    pub(crate) fn refuse(&self) {
        lock(&self.state).unlisten();
    }

    /// Stops listening and sends every connection a FIN, then keeps reading each until the
    /// sender closes its side (up to [`DRAIN_LIMIT`]).
    pub(crate) fn close_gracefully(&self) {
        let mut s = lock(&self.state);
        s.unlisten();
        let until = Instant::now() + DRAIN_LIMIT;
        for open in &mut s.open {
            if open.draining_until.is_none() {
                open.stream.shutdown_write();
                open.draining_until = Some(until);
            }
        }
    }

    /// Dies like `kill -9`: stops listening and closes every connection without reading what
    /// is queued (TCP: with an RST). Returns how many connections were reset.
    pub(crate) fn reset(&self) -> usize {
        let mut s = lock(&self.state);
        s.unlisten();
        let open = std::mem::take(&mut s.open);
        let n = open.len();
        for o in open {
            s.connections[o.index].end = Some(End::Reset);
            o.stream.reset();
        }
        n
    }

    /// Stops reading (connections are still accepted): the kernel buffers fill up.
    pub(crate) fn stall(&self) {
        lock(&self.state).reading = false;
    }

    /// Reads again, every open connection included.
    pub(crate) fn resume(&self) {
        lock(&self.state).reading = true;
    }

    /// Whether a listener is up.
    pub(crate) fn is_listening(&self) -> bool {
        lock(&self.state).listener.is_some()
    }

    /// A copy of every connection so far, in accept order.
    pub(crate) fn connections(&self) -> Vec<Connection> {
        lock(&self.state).connections.clone()
    }

    /// Bytes received so far, over every connection.
    pub(crate) fn bytes_received(&self) -> usize {
        lock(&self.state)
            .connections
            .iter()
            .map(|c| c.bytes.len())
            .sum()
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> usize {
        lock(&self.state).connections.len()
    }

    /// Connections still open on our side.
    pub(crate) fn open_connections(&self) -> usize {
        lock(&self.state).open.len()
    }

    /// The complete lines of every connection, in accept order.
    pub(crate) fn lines(&self) -> Vec<String> {
        lock(&self.state)
            .connections
            .iter()
            .flat_map(Connection::complete_lines)
            .collect()
    }

    /// Polls `pred` on the connections until it holds or `max` passes; returns whether it held.
    pub(crate) fn wait_until(&self, max: Duration, pred: impl Fn(&[Connection]) -> bool) -> bool {
        let deadline = Instant::now() + max;
        loop {
            if pred(&lock(&self.state).connections) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for StreamReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A TCP port that never answers: its listener never accepts and its accept queue is full,
/// so the kernel drops new SYNs and a connect hangs until the client's own timeout, like a
/// host that went silent (not one that refuses).
pub(crate) struct BlackHole {
    addr: SocketAddr,
    _listener: Socket,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    pub(crate) fn tcp() -> Self {
        let listener = reserve("127.0.0.1:0".parse().unwrap(), None);
        let addr = listener.local_addr().unwrap().as_socket().unwrap();
        // A backlog of 0 still queues one connection; fill the queue until a connect hangs.
        listener.listen(0).unwrap();
        let mut queued = Vec::new();
        while let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            queued.push(s);
            assert!(queued.len() < 64, "the accept queue never fills");
        }
        Self {
            addr,
            _listener: listener,
            _queued: queued,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

// ---------------------------------------------------------------------------------------------
// Datagram receivers

enum Datagram {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Datagram {
    fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Udp(s) => s.recv(buf),
            Self::Unix(s) => s.recv(buf),
        }
    }
}

/// Where a datagram receiver listens.
#[derive(Debug, Clone)]
pub(crate) enum DatagramPlace {
    Udp(SocketAddr),
    Unix(PathBuf),
}

struct DatagramState {
    place: DatagramPlace,
    socket: Option<Datagram>,
    datagrams: Vec<Vec<u8>>,
    reading: bool,
}

impl DatagramState {
    fn read_all(&mut self, buf: &mut [u8]) -> usize {
        let Some(socket) = &self.socket else { return 0 };
        if !self.reading {
            return 0;
        }
        let mut n = 0;
        while let Ok(len) = socket.recv(buf) {
            self.datagrams.push(buf[..len].to_vec());
            n += 1;
        }
        n
    }

    fn bind(&mut self) {
        assert!(self.socket.is_none(), "already bound");
        let socket = match &self.place {
            DatagramPlace::Udp(addr) => {
                // A receive buffer of 4 MiB where the kernel allows it (rmem_max), not the
                // default 208 KiB: on a loaded 2-core machine the reading thread can be off
                // the CPU long enough for a burst to overflow the default, and a datagram the
                // kernel drops there is neither ours to count nor a fault the test injected.
                let s = Socket::new(Domain::for_address(*addr), Type::DGRAM, None).unwrap();
                drop(s.set_recv_buffer_size(4 << 20));
                s.bind(&(*addr).into()).unwrap();
                let s = UdpSocket::from(s);
                s.set_nonblocking(true).unwrap();
                Datagram::Udp(s)
            }
            DatagramPlace::Unix(path) => {
                let _ = std::fs::remove_file(path);
                let s = UnixDatagram::bind(path).unwrap();
                s.set_nonblocking(true).unwrap();
                Datagram::Unix(s)
            }
        };
        self.socket = Some(socket);
    }
}

/// A UDP or Unix datagram receiver that can go away and come back. See the module docs.
pub(crate) struct DatagramReceiver {
    place: DatagramPlace,
    state: Arc<Mutex<DatagramState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: Option<TempDir>,
}

impl DatagramReceiver {
    /// A UDP receiver on 127.0.0.1, up.
    pub(crate) fn udp() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        drop(socket);
        let r = Self::start(DatagramPlace::Udp(addr), None);
        r.reopen();
        r
    }

    /// A Unix datagram receiver at `<temp dir>/<name>`, up.
    pub(crate) fn unixgram(name: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("faulty-")
            .tempdir()
            .unwrap();
        let path = dir.path().join(name);
        let r = Self::start(DatagramPlace::Unix(path), Some(dir));
        r.reopen();
        r
    }

    fn start(place: DatagramPlace, dir: Option<TempDir>) -> Self {
        let state = Arc::new(Mutex::new(DatagramState {
            place: place.clone(),
            socket: None,
            datagrams: Vec::new(),
            reading: true,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (state2, stop2) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_536];
            while !stop2.load(Ordering::SeqCst) {
                lock(&state2).read_all(&mut buf);
                std::thread::sleep(POLL);
            }
        });
        Self {
            place,
            state,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// `udp://127.0.0.1:port` or `unixgram:///path`.
    pub(crate) fn endpoint(&self) -> String {
        match &self.place {
            DatagramPlace::Udp(addr) => format!("udp://{addr}"),
            DatagramPlace::Unix(path) => format!("unixgram://{}", path.display()),
        }
    }

    /// The Unix socket's path (panics for UDP).
    pub(crate) fn path(&self) -> PathBuf {
        match &self.place {
            DatagramPlace::Unix(path) => path.clone(),
            DatagramPlace::Udp(_) => panic!("a UDP receiver has no path"),
        }
    }

    /// Binds again, on the same port or path.
    pub(crate) fn reopen(&self) {
        lock(&self.state).bind();
    }

    /// Goes away the way a receiver that stops cleanly does: a Unix socket file is removed
    /// first (new sends fail), then what is queued is read until nothing arrives for 50 ms,
    /// then the socket closes (UDP: later datagrams draw an ICMP port unreachable).
    pub(crate) fn close(&self) {
        let mut buf = vec![0u8; 65_536];
        if let DatagramPlace::Unix(path) = &self.place {
            std::fs::remove_file(path).unwrap();
        }
        let mut s = lock(&self.state);
        s.reading = true;
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(50) {
            if s.read_all(&mut buf) > 0 {
                quiet_since = Instant::now();
            }
            std::thread::sleep(POLL);
        }
        s.socket = None;
    }

    /// Stops reading: the socket's queue fills up.
    pub(crate) fn stall(&self) {
        lock(&self.state).reading = false;
    }

    /// Reads again.
    pub(crate) fn resume(&self) {
        lock(&self.state).reading = true;
    }

    /// A copy of every datagram received so far.
    pub(crate) fn datagrams(&self) -> Vec<Vec<u8>> {
        lock(&self.state).datagrams.clone()
    }

    /// Every line of every datagram so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        lock(&self.state)
            .datagrams
            .iter()
            .flat_map(|d| {
                String::from_utf8_lossy(d)
                    .split('\n')
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Polls `pred` on the datagrams until it holds or `max` passes; returns whether it held.
    pub(crate) fn wait_until(&self, max: Duration, pred: impl Fn(&[Vec<u8>]) -> bool) -> bool {
        let deadline = Instant::now() + max;
        loop {
            if pred(&lock(&self.state).datagrams) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for DatagramReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Load and parsing

/// A thread incrementing a counter by 1 as fast as it reasonably can (it naps 200 µs every
/// 100 increments, so it leaves the CPU to the flusher on a small machine), counting its
/// iterations: the exact total recorded.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    iterations: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Load {
    pub(crate) fn start(counter: metrics::Counter) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let iterations = Arc::new(AtomicU64::new(0));
        let (stop2, iterations2) = (Arc::clone(&stop), Arc::clone(&iterations));
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                for _ in 0..100 {
                    counter.increment(1);
                    // Counted after the increment: a reader never sees more than was recorded.
                    iterations2.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        Self {
            stop,
            iterations,
            thread: Some(thread),
        }
    }

    /// Increments done so far.
    pub(crate) fn iterations(&self) -> u64 {
        self.iterations.load(Ordering::SeqCst)
    }

    /// Stops the thread; returns the exact number of increments it recorded.
    pub(crate) fn stop(mut self) -> u64 {
        self.halt();
        self.iterations()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One plain StatsD line: `name:value|type` with an optional `|@rate`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StatsdLine {
    pub(crate) name: String,
    pub(crate) value: f64,
    pub(crate) kind: String,
}

/// Parses one plain StatsD line strictly: a non-empty name of `[A-Za-z0-9_.-]`, a finite
/// number, a known type. Anything else (a cut or glued line) is an error.
pub(crate) fn parse_statsd(line: &str) -> Result<StatsdLine, String> {
    let bad = || format!("not a StatsD line: {line:?}");
    let (name, rest) = line.split_once(':').ok_or_else(bad)?;
    let mut fields = rest.split('|');
    let value: f64 = fields.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let kind = fields.next().ok_or_else(bad)?;
    let rate_ok = match fields.next() {
        None => true,
        Some(r) => r
            .strip_prefix('@')
            .is_some_and(|r| r.parse::<f64>().is_ok()),
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !name_ok
        || !value.is_finite()
        || !["c", "g", "ms", "h"].contains(&kind)
        || !rate_ok
        || fields.next().is_some()
    {
        return Err(bad());
    }
    Ok(StatsdLine {
        name: name.to_owned(),
        value,
        kind: kind.to_owned(),
    })
}

/// Parses every line, panicking with the first that is not a valid StatsD line.
pub(crate) fn parse_all(lines: &[String]) -> Vec<StatsdLine> {
    lines
        .iter()
        .map(|l| parse_statsd(l).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// Sum of the `|c` values of counter `name`.
pub(crate) fn counter_total(lines: &[StatsdLine], name: &str) -> u64 {
    lines
        .iter()
        .filter(|l| l.name == name && l.kind == "c")
        .map(|l| {
            assert!(l.value >= 1.0 && l.value.fract() == 0.0, "{l:?}");
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked: a positive whole number"
            )]
            let v = l.value as u64;
            v
        })
        .sum()
}

/// The last `|g` value of gauge `name`.
pub(crate) fn last_gauge(lines: &[StatsdLine], name: &str) -> Option<f64> {
    lines
        .iter()
        .rev()
        .find(|l| l.name == name && l.kind == "g")
        .map(|l| l.value)
}

/// Polls `pred` every 5 ms until it holds or `max` passes; returns whether it held. Tests
/// wait on conditions, never on time.
pub(crate) async fn until(max: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + max;
    loop {
        if pred() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `/proc/self/status` `VmRSS`, in bytes.
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

/// Whether `path` exists (a Unix socket file, for instance).
pub(crate) fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}
