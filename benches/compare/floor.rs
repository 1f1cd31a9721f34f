//! The kernel's floor for a flush's sending: the CPU one thread spends per 1432-byte datagram
//! on loopback, three ways, to a socket drained by a thread (`sys::udp_sink`):
//! - `send`: one `send(2)` per datagram;
//! - `sendmmsg`: one `sendmmsg(2)` per 32 datagrams;
//! - `gso`: one `sendmsg(2)` per 32 datagrams, carrying a `UDP_SEGMENT` control message (UDP
//!   generic segmentation offload: the kernel cuts one 45 824-byte buffer into 32 datagrams).
//!
//! The CPU is the sending thread's own (`/proc/thread-self/schedstat`), which on loopback
//! includes delivering each datagram to the receiving socket (the softirq runs on the sending
//! CPU). The calls go through nix 0.32: its `sendmsg` allocates the control-message buffer per
//! call (a few tens of ns, against microseconds of kernel work).
//!
//! Measured in rounds, the three methods in a rotating order each round; the verdicts use the
//! medians of per-round ratios. If the kernel refuses `UDP_SEGMENT`, the row says so and the
//! GSO figures stay empty.

use std::io::IoSlice;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrIn, sendmmsg, sendmsg};

use crate::cpu::own_cpu_ns;
use crate::stats::median;
use crate::sys::{Tally, udp_sink};

/// Bytes per datagram (the default UDP payload of every exporter here).
pub(crate) const DATAGRAM: usize = 1432;
/// Datagrams per `sendmmsg` call and per GSO buffer.
pub(crate) const SEGMENTS: usize = 32;

/// The three ways of sending, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Send,
    Sendmmsg,
    Gso,
}

impl Method {
    pub(crate) const ALL: [Self; 3] = [Self::Send, Self::Sendmmsg, Self::Gso];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Sendmmsg => "sendmmsg x32",
            Self::Gso => "gso x32",
        }
    }
}

/// A connected sending socket, its drained receiver and the buffers of the three methods.
pub(crate) struct Floor {
    socket: UdpSocket,
    tally: Arc<Tally>,
    /// `SEGMENTS` datagrams back to back (one GSO buffer, or 32 slices of it).
    buffer: Vec<u8>,
    headers: MultiHeaders<SockaddrIn>,
    /// Why the kernel refused GSO, once it did.
    gso_refused: Option<Errno>,
}

impl Floor {
    pub(crate) fn new() -> Self {
        let (addr, tally) = udp_sink();
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.connect(&addr).expect("connect");
        let mut buffer = Vec::with_capacity(DATAGRAM * SEGMENTS);
        for i in 0..SEGMENTS {
            // One DogStatsD line per datagram, padded in a tag to the full size.
            let mut datagram = format!("floor.datagram.{i}:1|c|#pad:").into_bytes();
            datagram.resize(DATAGRAM - 1, b'x');
            datagram.push(b'\n');
            buffer.extend_from_slice(&datagram);
        }
        let mut floor = Self {
            socket,
            tally,
            buffer,
            headers: MultiHeaders::preallocate(SEGMENTS, None),
            gso_refused: None,
        };
        if let Err(e) = floor.gso() {
            floor.gso_refused = Some(e);
        }
        floor
    }

    /// Why the kernel refused `UDP_SEGMENT` on this socket, if it did.
    pub(crate) fn gso_refused(&self) -> Option<Errno> {
        self.gso_refused
    }

    fn send(&self) -> Result<(), Errno> {
        let fd = self.socket.as_raw_fd();
        for datagram in self.buffer.chunks(DATAGRAM) {
            nix::sys::socket::send(fd, datagram, MsgFlags::empty())?;
        }
        Ok(())
    }

    fn sendmmsg(&mut self) -> Result<(), Errno> {
        let fd = self.socket.as_raw_fd();
        let slices: Vec<[IoSlice<'_>; 1]> = self
            .buffer
            .chunks(DATAGRAM)
            .map(|d| [IoSlice::new(d)])
            .collect();
        let addrs = [None; SEGMENTS];
        let mut first = 0;
        while first < SEGMENTS {
            let sent = sendmmsg(
                fd,
                &mut self.headers,
                &slices[first..],
                &addrs[first..],
                [],
                MsgFlags::empty(),
            )?
            .count();
            if sent == 0 {
                return Err(Errno::EAGAIN);
            }
            first += sent;
        }
        Ok(())
    }

    fn gso(&self) -> Result<(), Errno> {
        let segment = u16::try_from(DATAGRAM).expect("fits");
        let cmsg = [ControlMessage::UdpGsoSegments(&segment)];
        let iov = [IoSlice::new(&self.buffer)];
        sendmsg::<SockaddrIn>(
            self.socket.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::empty(),
            None,
        )?;
        Ok(())
    }

    /// Sends `batches` x `SEGMENTS` datagrams by `method` and returns this thread's CPU
    /// nanoseconds per datagram, or `None` for GSO when the kernel refuses it.
    pub(crate) fn measure(&mut self, method: Method, batches: usize) -> Option<f64> {
        if method == Method::Gso && self.gso_refused.is_some() {
            return None;
        }
        let start = own_cpu_ns();
        for _ in 0..batches {
            let sent = match method {
                Method::Send => self.send(),
                Method::Sendmmsg => self.sendmmsg(),
                Method::Gso => self.gso(),
            };
            if let Err(e) = sent {
                if method == Method::Gso {
                    self.gso_refused = Some(e);
                    return None;
                }
                panic!("{}: {e}", method.name());
            }
        }
        let spent = own_cpu_ns().saturating_sub(start);
        Some(spent as f64 / (batches * SEGMENTS) as f64)
    }

    /// Datagrams, bytes and lines the receiver has seen so far.
    pub(crate) fn tally_read(&self) -> [u64; 3] {
        self.tally.read()
    }
}

/// Per-round CPU per datagram of each method (a column per [`Method::ALL`] entry).
pub(crate) struct FloorRounds {
    pub(crate) per_method: [Vec<f64>; 3],
    pub(crate) gso_refused: Option<Errno>,
    pub(crate) sent: u64,
    pub(crate) received: u64,
}

impl FloorRounds {
    /// The median over rounds of `method`'s CPU per datagram.
    pub(crate) fn median(&self, method: Method) -> Option<f64> {
        median(self.per_method[method as usize].clone())
    }

    /// The median over rounds of `method`'s per-round ratio to `send`.
    pub(crate) fn ratio_to_send(&self, method: Method) -> Option<f64> {
        let (m, s) = (&self.per_method[method as usize], &self.per_method[0]);
        median(m.iter().zip(s).map(|(m, s)| m / s).collect())
    }
}

/// `rounds` rounds of `batches` x 32 datagrams per method, rotating the order each round.
pub(crate) fn rounds(floor: &mut Floor, rounds: usize, batches: usize) -> FloorRounds {
    std::thread::sleep(Duration::from_millis(50)); // earlier datagrams arrive first
    let before = floor.tally_read()[0];
    let mut per_method: [Vec<f64>; 3] = Default::default();
    let mut sent = 0;
    for round in 0..rounds {
        for k in 0..Method::ALL.len() {
            let method = Method::ALL[(k + round) % Method::ALL.len()];
            if let Some(ns) = floor.measure(method, batches) {
                per_method[method as usize].push(ns);
                sent += (batches * SEGMENTS) as u64;
            }
        }
    }
    std::thread::sleep(Duration::from_millis(50)); // the receiver catches up
    FloorRounds {
        per_method,
        gso_refused: floor.gso_refused(),
        sent,
        received: floor.tally_read()[0] - before,
    }
}

/// The floor section: 21 rounds of 100 x 32 datagrams per method.
pub(crate) fn report() -> FloorRounds {
    let mut floor = Floor::new();
    floor.measure(Method::Send, 10); // warm the socket and the receiver
    let r = rounds(&mut floor, 21, 100);
    print_floor(&r);
    r
}

pub(crate) fn print_floor(r: &FloorRounds) {
    eprintln!(
        "\nFloor: CPU of the sending thread per {DATAGRAM}-byte datagram on loopback, \
         {} rounds (median; ratio = median of per-round ratios to send)",
        r.per_method[0].len()
    );
    for m in Method::ALL {
        match (r.median(m), r.ratio_to_send(m)) {
            (Some(ns), Some(ratio)) => {
                eprintln!(
                    "  {:<14} {ns:>8.1} ns/datagram  {ratio:>6.3}x send",
                    m.name()
                );
            }
            _ => eprintln!(
                "  {:<14} refused by the kernel ({}): no GSO figures",
                m.name(),
                r.gso_refused.map_or_else(|| "?".into(), |e| e.to_string())
            ),
        }
    }
    eprintln!(
        "  datagrams sent {} received {} (a shortfall is the receiver's buffer overflowing)",
        r.sent, r.received
    );
}
