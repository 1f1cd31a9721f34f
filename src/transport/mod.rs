//! Transports: the only place with sockets.
//!
//! [`Transport`] is a closed enum over socket kinds. It keeps the destination's addresses
//! fresh (re-resolved on every reconnect and every `resolve_interval`), tracks whether the
//! destination is reachable, and logs only *changes* of that state: one warning when it goes
//! away, one info line when it is back, never a line per packet.
//!
//! A host name is looked up lazily, by the transport ([`resolve`]): one that does not resolve
//! yet (DNS not ready when a pod starts) makes the destination unreachable, exactly as a
//! refused connection does (the flusher keeps the aggregate), and is looked up again with the
//! reconnect backoff until it resolves.

mod backoff;
#[cfg(target_os = "linux")]
mod gso;
mod memory;
mod outcome;
mod resolve;
mod runs;
mod stream;
mod target;
mod udp;
// Unix sockets exist only on Unix; elsewhere `build` refuses their endpoints
// (`Endpoint::available`), so no `Transport` with a Unix endpoint is ever made there.
#[cfg(unix)]
mod unixgram;

#[cfg(test)]
pub(crate) use resolve::{Resolver, Script, Step};
#[cfg(test)]
pub(crate) use stream::SEND_BUFFER_FOR_TESTS;

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{Config, Scheme};
use crate::encode::Framing;
use crate::random::random_unit;
use crate::stats::{StatsCells, add};

pub(crate) use memory::MemorySink;
use outcome::{EMSGSIZE, EPROTOTYPE, unix_hint};
pub(crate) use outcome::{Hint, Payload, SendError, Verdict};
pub(crate) use runs::MAX_RUN;
pub(crate) use target::Target;

#[derive(Debug)]
enum Socket {
    Udp(udp::UdpTransport),
    /// TCP or a Unix stream socket.
    Stream(stream::StreamTransport),
    #[cfg(unix)]
    Unixgram(unixgram::UnixgramTransport),
    /// No socket: payloads are kept in memory (captures for the user's tests).
    Memory(memory::MemoryTransport),
}

/// The socket to the destination plus its reachability state. See the module docs.
#[derive(Debug)]
pub(crate) struct Transport {
    socket: Socket,
    target: Target,
    write_timeout: Duration,
    connect_timeout: Duration,
    /// Whether the last attempt to reach the destination worked (for logging changes only).
    up: bool,
    /// Whether the receiver's queue was full at the last send (for logging changes only).
    full: bool,
    failures: u32,
    backoff: backoff::Backoff,
    retry_at: Option<Instant>,
    verdict: Verdict,
    /// Whether we warned that the name does not resolve (for logging changes only).
    unresolved_warned: bool,
    /// The environment variable the endpoint came from, for that warning.
    endpoint_source: Option<&'static str>,
}

impl Transport {
    pub(crate) fn new(config: &Config, now: Instant) -> Self {
        let socket = match config.endpoint.scheme {
            Scheme::Udp => Socket::Udp(udp::UdpTransport::new()),
            #[cfg(unix)]
            Scheme::Unixgram => Socket::Unixgram(unixgram::UnixgramTransport::new()),
            // Without Unix sockets `build` refused `unixgram://`: only TCP and `unix://` get here.
            _ => Socket::Stream(stream::StreamTransport::new(
                config.connect_timeout,
                config.framing == Framing::LengthPrefixed,
            )),
        };
        let target = Target {
            endpoint: config.endpoint.clone(),
            addrs: config.addrs.clone(),
            resolved_at: (!config.addrs.is_empty()).then_some(now),
            resolve_interval: config.resolve_interval,
            lookups: resolve::Lookups::default(),
        };
        Self {
            socket,
            target,
            write_timeout: config.write_timeout,
            connect_timeout: config.connect_timeout,
            up: true,
            full: false,
            failures: 0,
            backoff: backoff::Backoff {
                first: config.reconnect_delay,
                cap: config.max_reconnect_delay,
            },
            retry_at: None,
            verdict: Verdict::Pending,
            unresolved_warned: false,
            endpoint_source: config.endpoint_source,
        }
    }

    /// Tests: looks names up with `resolver` instead of the system's.
    #[cfg(test)]
    pub(crate) fn with_resolver(mut self, resolver: Resolver) -> Self {
        self.target.lookups = resolve::Lookups::new(resolver);
        self
    }

    /// Tests: whether the destination's name has not resolved yet.
    #[cfg(test)]
    pub(crate) fn unresolved(&self) -> bool {
        self.target.unresolved()
    }

    /// A transport that keeps every payload in `sink`, framed as the configured socket would
    /// send it, and never fails (see `memory`).
    pub(crate) fn memory(config: &Config, sink: MemorySink) -> Self {
        let mut transport = Self::new(config, Instant::now());
        transport.socket = Socket::Memory(memory::MemoryTransport::new(config.framing, sink));
        transport
    }

    /// What became of the bytes earlier writes handed to the kernel, learnt since the last
    /// call: from how a stream connection ended, or from the "refused" a UDP socket reports
    /// for an earlier datagram.
    pub(crate) fn take_verdict(&mut self) -> Verdict {
        std::mem::replace(&mut self.verdict, Verdict::Pending)
    }

    /// Whether the last attempt to reach the destination worked.
    pub(crate) fn is_up(&self) -> bool {
        self.up
    }

    /// The bytes a successful [`send`](Self::send) of `payload` puts on the wire, for the
    /// socket in use now (a `unix://` endpoint may have turned out to be a datagram socket).
    /// See [`Payload`] for the framing.
    pub(crate) fn wire_len(&self, payload: Payload<'_>) -> usize {
        let lines = match payload {
            Payload::Frame(frame) => return frame.len(),
            Payload::Lines(lines) => lines,
        };
        if let Socket::Memory(memory) = &self.socket {
            return memory.wire_len(lines);
        }
        let Socket::Stream(stream) = &self.socket else {
            // A datagram (UDP, Unix) carries the lines without the final newline.
            return lines.body().len();
        };
        if stream.length_prefixed() {
            4 + lines.body().len()
        } else {
            lines.len()
        }
    }

    /// Whether payloads go over a byte stream (which can keep a backlog) or as datagrams.
    pub(crate) fn is_stream(&self) -> bool {
        match &self.socket {
            Socket::Stream(_) => true,
            Socket::Memory(memory) => memory.is_stream(),
            _ => false,
        }
    }

    /// Gets ready to send: looks the name up if it never resolved, drops a connection the
    /// peer closed, reconnects when the backoff allows. Returns `false` when the destination
    /// cannot be reached now.
    pub(crate) async fn ready(&mut self, now: Instant, stats: &StatsCells) -> bool {
        if matches!(self.socket, Socket::Memory(_)) {
            // A capture: no name to look up, nothing to connect.
            return true;
        }
        if self.retry_at.is_some_and(|at| now < at) {
            return false;
        }
        // A name looked up just now needs no second lookup before the connect.
        let looked_up = self.target.unresolved();
        if looked_up && !self.resolve(now, stats).await {
            return false;
        }
        let timeout = self.connect_timeout;
        let result = match &mut self.socket {
            Socket::Memory(_) => Ok(()), // answered above
            Socket::Udp(udp) => {
                if !looked_up {
                    self.target.refresh(now, false, timeout, stats).await;
                }
                udp.ready(&self.target).await
            }
            #[cfg(unix)]
            Socket::Unixgram(gram) => gram.ready(self.target.path().unwrap_or_default()),
            #[cfg(unix)]
            Socket::Stream(tcp) if self.target.path().is_some() && !tcp.has_connection() => {
                // `unix://` names a stream socket, but the Datadog admission controller (and
                // the official clients) use it for the Agent's *datagram* socket too: when the
                // path turns out to be one, switch to datagrams for good.
                match tcp.connect(&self.target).await {
                    Err(e) if e.raw_os_error() == Some(EPROTOTYPE) => {
                        tracing::info!(endpoint = %self.target.endpoint, "the socket is a datagram socket; sending datagrams");
                        let mut gram = unixgram::UnixgramTransport::new();
                        let result = gram.ready(self.target.path().unwrap_or_default());
                        self.socket = Socket::Unixgram(gram);
                        result
                    }
                    Ok(()) => {
                        add(&stats.connects, 1);
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Socket::Stream(tcp) => {
                let peer = tcp.check_peer();
                match peer {
                    stream::Peer::Open => self.verdict.note_open(tcp.queue_bound()),
                    stream::Peer::Gone { abrupt } => self.verdict.note(abrupt),
                }
                if peer == stream::Peer::Open {
                    // A healthy connection follows DNS too: once the name no longer resolves
                    // to the peer we are connected to, move to the new address.
                    self.target.refresh(now, false, timeout, stats).await;
                    if tcp.peer().is_none_or(|peer| self.target.contains(peer)) {
                        return true;
                    }
                    tracing::info!(endpoint = %self.target.endpoint, "metrics destination moved; reconnecting");
                    tcp.disconnect();
                }
                if !looked_up {
                    self.target.refresh(now, true, timeout, stats).await;
                }
                let result = tcp.connect(&self.target).await;
                if result.is_ok() {
                    add(&stats.connects, 1);
                }
                result
            }
        };
        match result {
            Ok(()) => {
                self.mark_up();
                true
            }
            Err(e) => {
                self.mark_down(now, &SendError::Io(e), stats);
                false
            }
        }
    }

    /// Forgets the reconnect backoff, so the next `ready` tries at once (the final flush).
    pub(crate) fn retry_now(&mut self) {
        self.retry_at = None;
    }

    /// Sends one payload. On failure the transport is marked down (stream transports
    /// reconnect on the next `ready`).
    ///
    /// On a byte stream, a failed send's error tells how many bytes of the lines the kernel
    /// accepted ([`SendError::written`]); a frame (length-prefixed or pickle) cut anywhere
    /// delivered nothing, so it reports none.
    ///
    /// `hint` is [`Hint::Fresh`], except for the first datagram of a run that did not go out:
    /// then it is what the run learnt about it.
    pub(crate) async fn send(
        &mut self,
        payload: Payload<'_>,
        hint: Hint,
        stats: &StatsCells,
    ) -> Result<(), SendError> {
        let datagram = match payload {
            Payload::Lines(lines) => lines.body(),
            Payload::Frame(frame) => frame,
        };
        let timed_out = SendError::Partial {
            written: 0,
            error: None,
        };
        let result = match &mut self.socket {
            Socket::Udp(_) if hint == Hint::TimedOut => Err(timed_out),
            Socket::Udp(udp) => tokio::time::timeout(self.write_timeout, udp.send(datagram, hint))
                .await
                .unwrap_or(Err(timed_out)),
            Socket::Stream(tcp) => tcp.send(payload, Instant::now() + self.write_timeout).await,
            #[cfg(unix)]
            Socket::Unixgram(gram) => gram.send(datagram, self.target.path().unwrap_or_default()),
            Socket::Memory(memory) => {
                memory.send(payload);
                // Delivered as soon as kept: nothing stays unconfirmed (and accumulates).
                self.verdict.note(false);
                Ok(())
            }
        };
        if let Socket::Udp(udp) = &mut self.socket {
            if udp.take_refused() {
                // The ICMP for an earlier datagram: it went nowhere.
                add(&stats.send_errors, 1);
                self.verdict.note(true);
            }
        }
        match &result {
            Ok(()) => self.mark_up(),
            Err(SendError::Full) => {
                add(&stats.send_errors, 1);
                if !self.full {
                    tracing::warn!(endpoint = %self.target.endpoint, "the receiver's socket queue is full; keeping what it does not take (bounded backlog) and sending it once it drains");
                }
                self.full = true;
            }
            Err(SendError::Rejected(e)) => {
                add(&stats.send_errors, 1);
                tracing::debug!(endpoint = %self.target.endpoint, error = %e, "a payload was refused by the socket and dropped");
            }
            Err(e) => {
                if let Socket::Stream(tcp) = &mut self.socket {
                    // Closed with a reset, so the kernel frees what it still holds for this
                    // connection at once (those lines are counted as possibly lost below).
                    tcp.abandon();
                    // Whatever the kernel accepted on this connection may be stuck unread,
                    // and what was still in our send queue is gone with the reset.
                    self.verdict.note_abandoned();
                }
                self.mark_down(Instant::now(), e, stats);
            }
        }
        result
    }

    fn mark_up(&mut self) {
        self.full = false;
        if !self.up {
            tracing::info!(endpoint = %self.target.endpoint, "metrics destination reachable again");
        }
        self.up = true;
        self.failures = 0;
        self.retry_at = None;
    }

    fn mark_down(&mut self, now: Instant, error: &SendError, stats: &StatsCells) {
        add(&stats.send_errors, 1);
        if self.up {
            match self.target.path() {
                Some(path) => tracing::warn!(
                    endpoint = %self.target.endpoint,
                    %error,
                    "cannot send metrics to the Unix socket {path}: {}; keeping them and retrying with backoff",
                    unix_hint(error)
                ),
                None if matches!(self.socket, Socket::Udp(_)) => {
                    tracing::warn!(endpoint = %self.target.endpoint, %error, "cannot send metrics; keeping them and retrying at the next flush");
                }
                None => {
                    tracing::warn!(endpoint = %self.target.endpoint, %error, "cannot send metrics; keeping them and retrying with backoff");
                }
            }
        }
        self.up = false;
        // UDP needs no reconnect: the next flush simply tries again. Streams reconnect, and a
        // Unix datagram path that is missing is re-checked, both after a backoff.
        if !matches!(self.socket, Socket::Udp(_)) {
            self.back_off(now);
        }
    }

    /// Schedules the next attempt after the reconnect backoff.
    fn back_off(&mut self, now: Instant) {
        let delay = self.backoff.delay(self.failures, random_unit());
        // A delay past what the clock can represent (a huge configured one) is a year.
        self.retry_at = now
            .checked_add(delay)
            .or_else(|| now.checked_add(Duration::from_secs(365 * 86_400)));
        self.failures = self.failures.saturating_add(1);
    }
}

#[cfg(test)]
mod resolve_tests;
#[cfg(test)]
mod tests;
