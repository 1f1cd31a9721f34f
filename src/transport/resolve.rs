//! Host-name lookups for the transport: on tokio's blocking pool (never on the thread that
//! drives the flusher, never on an application thread), bounded by a timeout, and one at a
//! time: a lookup that outlives its timeout stays in flight, and the next attempt waits for
//! *it* instead of starting another, so a resolver that hangs never piles up threads. Also
//! what the transport does while a name does not resolve (`Transport::resolve`).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::stats::StatsCells;

/// Where lookups go. `System` is the platform resolver (`getaddrinfo`, which reads
/// `/etc/hosts` and the DNS configuration); tests script the answers instead.
#[derive(Debug, Clone, Default)]
pub(crate) enum Resolver {
    #[default]
    System,
    /// Tests: the answers of a [`Script`], in order, without DNS.
    #[cfg(test)]
    Scripted(Script),
}

type Answer = io::Result<Vec<SocketAddr>>;

impl Resolver {
    fn start(&self, host: String, port: u16) -> JoinHandle<Answer> {
        match self {
            Self::System => tokio::task::spawn_blocking(move || {
                (host.as_str(), port)
                    .to_socket_addrs()
                    .map(Iterator::collect)
            }),
            #[cfg(test)]
            Self::Scripted(script) => {
                let script = script.clone();
                tokio::task::spawn_blocking(move || script.answer(port))
            }
        }
    }
}

/// What one [`Lookups::lookup`] found.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The name resolved to these addresses (never an empty list).
    Found(Vec<SocketAddr>),
    /// The lookup failed, found no address, or did not answer within the timeout (then it
    /// stays in flight for the next attempt).
    Failed(io::Error),
}

/// A resolver and the one lookup it may have in flight.
#[derive(Debug, Default)]
pub(crate) struct Lookups {
    resolver: Resolver,
    in_flight: Option<JoinHandle<Answer>>,
}

impl Lookups {
    #[cfg(test)]
    pub(crate) fn new(resolver: Resolver) -> Self {
        Self {
            resolver,
            in_flight: None,
        }
    }

    /// Looks `host` up, waiting at most `timeout`; if an earlier lookup is still in flight,
    /// waits for that one instead of starting another (its answer is as good: the name is the
    /// same).
    pub(crate) async fn lookup(&mut self, host: &str, port: u16, timeout: Duration) -> Lookup {
        let resolver = &self.resolver;
        let handle = self
            .in_flight
            .get_or_insert_with(|| resolver.start(host.to_owned(), port));
        let Ok(joined) = tokio::time::timeout(timeout, handle).await else {
            return Lookup::Failed(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {timeout:?}"),
            ));
        };
        self.in_flight = None;
        match joined {
            Ok(Ok(addrs)) if !addrs.is_empty() => Lookup::Found(addrs),
            Ok(Ok(_)) => Lookup::Failed(io::Error::new(
                io::ErrorKind::NotFound,
                "the name has no address",
            )),
            Ok(Err(e)) => Lookup::Failed(e),
            // The blocking task panicked or was cancelled (the runtime is shutting down).
            Err(e) => Lookup::Failed(io::Error::other(e)),
        }
    }

    /// Whether a lookup is still in flight (it outlived the last attempt's timeout).
    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }
}

impl super::Transport {
    /// Looks up a name that never resolved, within the connect timeout. While it does not
    /// resolve: one warning (naming the host, and the environment variable it came from), and
    /// the next lookup after the reconnect backoff. One info line once it resolves.
    pub(super) async fn resolve(&mut self, now: Instant, stats: &StatsCells) -> bool {
        let failed = self
            .target
            .refresh(now, true, self.connect_timeout, stats)
            .await;
        let endpoint = &self.target.endpoint;
        let Some(error) = failed else {
            if self.unresolved_warned {
                tracing::info!(%endpoint, addrs = ?self.target.addrs, "the metrics host resolves now; sending");
            } else {
                tracing::debug!(%endpoint, addrs = ?self.target.addrs, "metrics destination resolved");
            }
            self.unresolved_warned = false;
            return true;
        };
        if !self.unresolved_warned {
            let host = &endpoint.host;
            match self.endpoint_source {
                Some(variable) => {
                    tracing::warn!(%endpoint, host, variable, %error, "the metrics host {host} (from {variable}) does not resolve (yet); keeping the metrics and looking it up again with backoff");
                }
                None => {
                    tracing::warn!(%endpoint, host, %error, "the metrics host {host} does not resolve (yet); keeping the metrics and looking it up again with backoff");
                }
            }
        }
        self.unresolved_warned = true;
        self.back_off(now);
        false
    }
}

#[cfg(test)]
pub(crate) use script::{Script, Step};

#[cfg(test)]
mod script {
    use std::collections::VecDeque;
    use std::io;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::Answer;

    /// One scripted answer.
    #[derive(Debug, Clone)]
    pub(crate) enum Step {
        /// The name does not resolve (yet).
        Fail,
        /// The name resolves to these IPs (with the port looked up).
        Resolve(Vec<std::net::IpAddr>),
        /// Blocks the lookup's thread for this long first, then answers as the inner step.
        Slow(Duration, Box<Step>),
    }

    #[derive(Debug)]
    struct State {
        steps: VecDeque<Step>,
        /// The answer once `steps` is used up.
        then: Step,
        lookups: u64,
        running: u32,
        most_running: u32,
    }

    /// Scripted lookups, shared between a test and the resolver it hands the transport.
    #[derive(Debug, Clone)]
    pub(crate) struct Script(Arc<Mutex<State>>);

    impl Script {
        /// Answers `steps` in order, then `then` for ever.
        pub(crate) fn new(steps: impl IntoIterator<Item = Step>, then: Step) -> Self {
            Self(Arc::new(Mutex::new(State {
                steps: steps.into_iter().collect(),
                then,
                lookups: 0,
                running: 0,
                most_running: 0,
            })))
        }

        /// From now on, answers `then` once the queued steps are used up.
        pub(crate) fn then(&self, then: Step) {
            self.0.lock().unwrap().then = then;
        }

        /// Lookups started so far.
        pub(crate) fn lookups(&self) -> u64 {
            self.0.lock().unwrap().lookups
        }

        /// The most lookups that ever ran at once.
        pub(crate) fn most_running(&self) -> u32 {
            self.0.lock().unwrap().most_running
        }

        pub(super) fn answer(&self, port: u16) -> Answer {
            let mut step = {
                let mut s = self.0.lock().unwrap();
                s.lookups += 1;
                s.running += 1;
                s.most_running = s.most_running.max(s.running);
                s.steps.pop_front().unwrap_or_else(|| s.then.clone())
            };
            let answer = loop {
                match step {
                    Step::Fail => {
                        break Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            "scripted: no such host",
                        ));
                    }
                    Step::Resolve(ips) => {
                        break Ok(ips
                            .into_iter()
                            .map(|ip| SocketAddr::new(ip, port))
                            .collect());
                    }
                    Step::Slow(delay, then) => {
                        std::thread::sleep(delay);
                        step = *then;
                    }
                }
            };
            self.0.lock().unwrap().running -= 1;
            answer
        }
    }
}
