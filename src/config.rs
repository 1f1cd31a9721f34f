//! The checked, immutable configuration, and endpoint parsing.
//!
//! `ExporterBuilder::build` turns its settings into a [`Config`] in one place, so the order in
//! which setters were called never matters and every error is found before anything starts.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use crate::encode::{Framing, HistogramKind, LabelHandling, SampleUnit};
use crate::error::BuildError;

/// Default StatsD port, used when an endpoint gives none.
pub(crate) const DEFAULT_STATSD_PORT: u16 = 8125;
/// Default UDP payload: fits a 1500-byte Ethernet MTU with the largest IP and UDP headers.
pub(crate) const DEFAULT_UDP_PAYLOAD: usize = 1432;
/// Largest UDP payload over IPv4 (65535 - 20 - 8).
pub(crate) const MAX_UDP_PAYLOAD: usize = 65_507;
/// Default batch size for stream transports: large writes, few syscalls.
pub(crate) const DEFAULT_STREAM_PAYLOAD: usize = 64 * 1024;
/// Largest batch for stream transports.
pub(crate) const MAX_STREAM_PAYLOAD: usize = 16 * 1024 * 1024;
/// Smallest payload limit we accept: anything smaller cannot hold a useful line.
pub(crate) const MIN_PAYLOAD: usize = 64;

/// The transport an endpoint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Udp,
    Tcp,
}

impl Scheme {
    pub(crate) fn framing(self) -> Framing {
        match self {
            Self::Udp => Framing::Datagram,
            Self::Tcp => Framing::Stream,
        }
    }

    fn payload_limits(self) -> (usize, usize, usize) {
        match self {
            Self::Udp => (MIN_PAYLOAD, DEFAULT_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
            Self::Tcp => (MIN_PAYLOAD, DEFAULT_STREAM_PAYLOAD, MAX_STREAM_PAYLOAD),
        }
    }
}

/// A parsed endpoint: where to send, and over what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Endpoint {
    /// Parses `udp://host:port`, `tcp://host:port` or a bare `host:port` (UDP). IPv6 hosts
    /// go in brackets (`[::1]:8125`). A missing port means `default_port`.
    pub(crate) fn parse(text: &str, default_port: u16) -> Result<Self, BuildError> {
        let bad = |reason| BuildError::InvalidEndpoint {
            endpoint: text.to_owned(),
            reason,
        };
        let (scheme, rest) = match text.split_once("://") {
            None => (Scheme::Udp, text),
            Some(("udp", rest)) => (Scheme::Udp, rest),
            Some(("tcp", rest)) => (Scheme::Tcp, rest),
            Some(_) => return Err(bad("the scheme must be udp:// or tcp://")),
        };
        if rest.contains('/') {
            return Err(bad("expected host:port with no path"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in an IPv6 address"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| bad("expected ':' after ']'"))?,
                    ),
                ),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, _)) if h.contains(':') => {
                    return Err(bad("IPv6 addresses must be in brackets: [::1]:8125"));
                }
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
                Ok(p) => p,
            },
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
        })
    }

    /// Resolves the endpoint now (blocking), failing if it yields no address.
    pub(crate) fn resolve(&self) -> Result<Vec<SocketAddr>, BuildError> {
        let unresolvable = |source| BuildError::Unresolvable {
            host: self.host.clone(),
            source,
        };
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(unresolvable)?
            .collect();
        if addrs.is_empty() {
            return Err(unresolvable(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no addresses",
            )));
        }
        Ok(addrs)
    }

    /// Checks a requested payload length against the transport, or picks the default.
    pub(crate) fn payload_len(&self, requested: Option<usize>) -> Result<usize, BuildError> {
        let (min, default, max) = self.scheme.payload_limits();
        match requested {
            None => Ok(default),
            Some(len) if (min..=max).contains(&len) => Ok(len),
            Some(len) => Err(BuildError::PayloadLength { len, min, max }),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Udp => "udp",
            Scheme::Tcp => "tcp",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Everything the exporter needs, checked.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) endpoint: Endpoint,
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) flush_interval: Duration,
    pub(crate) max_payload_len: usize,
    pub(crate) prefix: Option<String>,
    pub(crate) global_labels: Vec<metrics::Label>,
    pub(crate) labels: LabelHandling,
    pub(crate) histograms: HistogramKind,
    pub(crate) default_histogram_unit: SampleUnit,
    pub(crate) histogram_capacity: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) resolve_interval: Duration,
    pub(crate) max_backlog_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> (Scheme, String, u16) {
        let e = Endpoint::parse(text, 8125).unwrap();
        (e.scheme, e.host, e.port)
    }

    #[test]
    fn endpoints_parse_with_and_without_scheme_and_port() {
        assert_eq!(
            ok("udp://127.0.0.1:9125"),
            (Scheme::Udp, "127.0.0.1".into(), 9125)
        );
        assert_eq!(
            ok("tcp://localhost:2003"),
            (Scheme::Tcp, "localhost".into(), 2003)
        );
        assert_eq!(
            ok("statsd.local:8126"),
            (Scheme::Udp, "statsd.local".into(), 8126)
        );
        assert_eq!(
            ok("statsd.local"),
            (Scheme::Udp, "statsd.local".into(), 8125)
        );
        assert_eq!(ok("[::1]:9000"), (Scheme::Udp, "::1".into(), 9000));
        assert_eq!(ok("tcp://[::1]"), (Scheme::Tcp, "::1".into(), 8125));
    }

    #[test]
    fn malformed_endpoints_say_what_is_wrong() {
        for (text, want) in [
            ("http://x:1", "scheme"),
            ("udp://:8125", "host is empty"),
            ("udp://x:0", "port"),
            ("udp://x:99999", "port"),
            ("udp://x:abc", "port"),
            ("::1:8125", "brackets"),
            ("[::1:8125", "unclosed"),
            ("udp://x:1/path", "path"),
        ] {
            let err = Endpoint::parse(text, 8125).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn payload_lengths_are_checked_against_the_transport() {
        let udp = Endpoint::parse("x:1", 8125).unwrap();
        assert_eq!(udp.payload_len(None).unwrap(), 1432);
        assert_eq!(udp.payload_len(Some(65_507)).unwrap(), 65_507);
        assert!(matches!(
            udp.payload_len(Some(65_508)),
            Err(BuildError::PayloadLength { max: 65_507, .. })
        ));
        assert!(matches!(
            udp.payload_len(Some(10)),
            Err(BuildError::PayloadLength { .. })
        ));
        let tcp = Endpoint::parse("tcp://x:1", 8125).unwrap();
        assert_eq!(tcp.payload_len(None).unwrap(), 65_536);
        assert_eq!(tcp.payload_len(Some(1_000_000)).unwrap(), 1_000_000);
    }

    #[test]
    fn endpoints_display_as_a_parseable_url() {
        for text in ["udp://127.0.0.1:1", "tcp://[::1]:2003"] {
            assert_eq!(Endpoint::parse(text, 1).unwrap().to_string(), text);
        }
    }

    #[test]
    fn loopback_names_resolve_and_garbage_does_not() {
        assert!(
            !Endpoint::parse("localhost:1", 1)
                .unwrap()
                .resolve()
                .unwrap()
                .is_empty()
        );
        let err = Endpoint::parse("no-such-host.invalid:1", 1)
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(matches!(err, BuildError::Unresolvable { .. }), "{err}");
    }
}
