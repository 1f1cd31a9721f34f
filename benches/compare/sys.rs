//! Loopback receivers that tally what arrives, and the CPU time of an exporter's threads
//! (`benches/support/cpu.rs`). Shared by `benches/compare` and `examples/loadgen.rs` (which
//! includes this file, and `cpu.rs`, by path).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cpu::thread_cpu_ns;

/// What a loopback receiver saw.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    payloads: AtomicU64,
    bytes: AtomicU64,
    lines: AtomicU64,
}

impl Tally {
    /// Payloads, bytes and lines received so far (a stream counts bytes only).
    pub(crate) fn read(&self) -> [u64; 3] {
        [&self.payloads, &self.bytes, &self.lines].map(|c| c.load(Ordering::Relaxed))
    }

    fn add(&self, payload: &[u8]) {
        // A payload's last line may or may not end with a newline (dsd leaves it off).
        let lines = payload.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        self.lines
            .fetch_add(lines.count() as u64, Ordering::Relaxed);
        self.payloads.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(payload.len() as u64, Ordering::Relaxed);
    }
}

/// A UDP socket on 127.0.0.1, drained and tallied by a thread. Returns its `host:port`.
pub(crate) fn udp_sink() -> (String, Arc<Tally>) {
    // A large receive buffer (the kernel caps it at net.core.rmem_max), so a burst of 100k
    // lines (about 3 MB) is not lost before the thread reads it.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
    drop(socket.set_recv_buffer_size(8 << 20));
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let socket = UdpSocket::from(socket);
    let addr = socket.local_addr().expect("addr").to_string();
    let tally = Arc::new(Tally::default());
    let t = Arc::clone(&tally);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = socket.recv(&mut buf) {
            t.add(&buf[..n]);
        }
    });
    (addr, tally)
}

/// A TCP listener on 127.0.0.1 that reads every connection and tallies its bytes. Returns its
/// `host:port`.
pub(crate) fn tcp_sink() -> (String, Arc<Tally>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let tally = Arc::new(Tally::default());
    let t = Arc::clone(&tally);
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let t = Arc::clone(&t);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    t.bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, tally)
}

/// The ids of this process's threads.
fn threads() -> HashSet<u32> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The CPU time of the threads started after this value was made: create it just before
/// building or starting an exporter, and it measures that exporter's own threads.
#[derive(Debug)]
pub(crate) struct ThreadsCpu {
    before: HashSet<u32>,
}

/// CPU nanoseconds per thread at one moment.
pub(crate) type CpuSnapshot = HashMap<u32, u64>;

impl ThreadsCpu {
    pub(crate) fn new() -> Self {
        Self { before: threads() }
    }

    pub(crate) fn snapshot(&self) -> CpuSnapshot {
        threads()
            .difference(&self.before)
            .filter_map(|&tid| Some((tid, thread_cpu_ns(tid)?)))
            .collect()
    }

    /// CPU nanoseconds spent between two snapshots (threads born in between count in full;
    /// threads that ended in between are lost, which none of ours do while measured).
    pub(crate) fn spent(start: &CpuSnapshot, end: &CpuSnapshot) -> u64 {
        end.iter()
            .map(|(tid, ns)| ns.saturating_sub(start.get(tid).copied().unwrap_or(0)))
            .sum()
    }
}
