//! The checked, immutable configuration, and endpoint parsing.
//!
//! `ExporterBuilder::build` turns its settings into a [`Config`] in one place, so the order in
//! which setters were called never matters and every error is found before anything starts.

use std::net::SocketAddr;
use std::time::Duration;

use crate::encode::{Framing, SampleUnit};
use crate::error::BuildError;

/// Default StatsD port, used when an endpoint gives none.
pub(crate) const DEFAULT_STATSD_PORT: u16 = 8125;
/// Default carbon plaintext port.
pub(crate) const DEFAULT_GRAPHITE_PORT: u16 = 2003;
/// Default carbon pickle port.
pub(crate) const DEFAULT_PICKLE_PORT: u16 = 2004;
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

/// Default payload for Unix sockets: the Datadog Agent's receive buffer (`dogstatsd_buffer_size`).
pub(crate) const DEFAULT_UNIX_PAYLOAD: usize = 8192;
/// Largest Unix datagram we send (Linux allows more, but receivers' buffers rarely do).
pub(crate) const MAX_UNIXGRAM_PAYLOAD: usize = 65_536;

/// Whether this platform has Unix sockets. The `unix://` and `unixgram://` transports exist
/// only where it does; elsewhere [`Endpoint::available`] refuses those endpoints at build.
pub(crate) const UNIX_SOCKETS: bool = cfg!(unix);

/// The transport an endpoint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Udp,
    Tcp,
    /// Unix stream socket.
    Unix,
    /// Unix datagram socket.
    Unixgram,
}

impl Scheme {
    /// Framing for this transport. DogStatsD over a Unix stream uses the Agent's 4-byte
    /// length prefix; plain StatsD receivers (Etsy statsd, netdata) read newline-terminated
    /// lines there, as over TCP.
    pub(crate) fn framing(self, length_prefixed_streams: bool) -> Framing {
        match self {
            Self::Udp | Self::Unixgram => Framing::Datagram,
            Self::Unix if length_prefixed_streams => Framing::LengthPrefixed,
            Self::Tcp | Self::Unix => Framing::Stream,
        }
    }

    /// (smallest, default, largest) payload length.
    fn payload_limits(self, length_prefixed_streams: bool) -> (usize, usize, usize) {
        match self {
            Self::Udp => (MIN_PAYLOAD, DEFAULT_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
            Self::Unixgram => (MIN_PAYLOAD, DEFAULT_UNIX_PAYLOAD, MAX_UNIXGRAM_PAYLOAD),
            Self::Unix if length_prefixed_streams => {
                (MIN_PAYLOAD, DEFAULT_UNIX_PAYLOAD, MAX_STREAM_PAYLOAD)
            }
            Self::Tcp | Self::Unix => (MIN_PAYLOAD, DEFAULT_STREAM_PAYLOAD, MAX_STREAM_PAYLOAD),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Unix => "unix",
            Self::Unixgram => "unixgram",
        }
    }
}

/// A parsed endpoint: where to send, and over what. For Unix sockets `host` is the socket's
/// path and `port` is 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Endpoint {
    /// Parses `udp://host:port`, `tcp://host:port`, a bare `host:port` (UDP),
    /// `unix:///path` (Unix stream socket) or `unixgram:///path` (Unix datagram socket). IPv6
    /// hosts go in brackets (`[::1]:8125`). A missing port means `default_port`.
    #[cfg(test)]
    pub(crate) fn parse(text: &str, default_port: u16) -> Result<Self, BuildError> {
        Self::parse_with(text, default_port, Scheme::Udp)
    }

    /// As [`parse`](Self::parse), with the scheme a bare `host:port` gets.
    pub(crate) fn parse_with(
        text: &str,
        default_port: u16,
        default_scheme: Scheme,
    ) -> Result<Self, BuildError> {
        let bad = |reason| BuildError::InvalidEndpoint {
            endpoint: text.to_owned(),
            reason,
        };
        let (scheme, rest) = match text.split_once("://") {
            None => (default_scheme, text),
            Some(("udp", rest)) => (Scheme::Udp, rest),
            Some(("tcp", rest)) => (Scheme::Tcp, rest),
            Some(("unix", path)) => {
                return Self::path(Scheme::Unix, path)
                    .ok_or_else(|| bad("the socket path is empty"));
            }
            Some(("unixgram", path)) => {
                return Self::path(Scheme::Unixgram, path)
                    .ok_or_else(|| bad("the socket path is empty"));
            }
            Some(_) => {
                return Err(bad(
                    "the scheme must be udp://, tcp://, unix:// or unixgram://",
                ));
            }
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

    fn path(scheme: Scheme, path: &str) -> Option<Self> {
        (!path.is_empty()).then(|| Self {
            scheme,
            host: path.to_owned(),
            port: 0,
        })
    }

    /// Refuses a Unix socket endpoint (`text` as given) where the platform has no Unix
    /// sockets. `unix_sockets` is [`UNIX_SOCKETS`] (a parameter so the refusal is tested on
    /// Unix too).
    pub(crate) fn available(self, text: &str, unix_sockets: bool) -> Result<Self, BuildError> {
        if self.is_unix() && !unix_sockets {
            return Err(BuildError::InvalidEndpoint {
                endpoint: text.to_owned(),
                reason: "Unix sockets are not available on this platform; use udp:// or tcp://",
            });
        }
        Ok(self)
    }

    /// Whether this is a Unix socket (its `host` is a path).
    pub(crate) fn is_unix(&self) -> bool {
        matches!(self.scheme, Scheme::Unix | Scheme::Unixgram)
    }

    /// The endpoint's address when its host is an IP address; nothing for a name (the
    /// transport looks it up later, off the application's threads: a name that does not
    /// resolve yet is no reason to fail `build`) or a Unix socket path.
    pub(crate) fn literal_addrs(&self) -> Vec<SocketAddr> {
        if self.is_unix() {
            return Vec::new();
        }
        self.host
            .parse::<std::net::IpAddr>()
            .map(|ip| vec![SocketAddr::new(ip, self.port)])
            .unwrap_or_default()
    }

    /// Checks a requested payload length against the transport, or picks the default.
    pub(crate) fn payload_len(
        &self,
        requested: Option<usize>,
        length_prefixed_streams: bool,
    ) -> Result<usize, BuildError> {
        let (min, default, max) = self.scheme.payload_limits(length_prefixed_streams);
        match requested {
            None => Ok(default),
            Some(len) if (min..=max).contains(&len) => Ok(len),
            Some(len) => Err(BuildError::PayloadLength { len, min, max }),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.scheme.name();
        if self.is_unix() {
            write!(f, "{scheme}://{}", self.host)
        } else if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Everything the flusher and transport need, checked. (Protocol settings go into the
/// encoder, built next to this in `ExporterBuilder::build`.)
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) endpoint: Endpoint,
    /// The environment variable the endpoint came from, if any (for the transport's logs).
    pub(crate) endpoint_source: Option<&'static str>,
    /// The endpoint's address when its host is an IP address; empty for a name, which the
    /// transport resolves.
    pub(crate) addrs: Vec<SocketAddr>,
    pub(crate) framing: Framing,
    pub(crate) flush_interval: Duration,
    pub(crate) max_payload_len: usize,
    pub(crate) default_histogram_unit: SampleUnit,
    pub(crate) histogram_capacity: usize,
    /// Distinct members each set keeps per interval.
    pub(crate) set_capacity: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) resolve_interval: Duration,
    /// The first reconnect delay; each later one doubles, up to `max_reconnect_delay`.
    pub(crate) reconnect_delay: Duration,
    /// The cap on the reconnect delay; at least `reconnect_delay`.
    pub(crate) max_reconnect_delay: Duration,
    pub(crate) max_backlog_bytes: usize,
    pub(crate) max_series: usize,
    /// At most `max_series`, and not zero.
    pub(crate) max_series_per_metric: usize,
    pub(crate) idle_timeout: Option<Duration>,
    /// Whether a gauge not set in an interval re-sends its last value.
    pub(crate) gauge_resend: bool,
    /// Whether a counter with no increment in an interval sends 0 (once it counted anything).
    pub(crate) counter_zeros: bool,
    /// The prefix of the exporter's own metrics, when they are sent.
    pub(crate) telemetry: Option<String>,
    /// How long after each aligned slot start this host's ticks send (zero: at the start).
    pub(crate) send_delay: Duration,
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
        assert_eq!(
            ok("unix:///var/run/datadog/dsd.socket"),
            (Scheme::Unix, "/var/run/datadog/dsd.socket".into(), 0)
        );
        assert_eq!(
            ok("unixgram:///tmp/d.sock"),
            (Scheme::Unixgram, "/tmp/d.sock".into(), 0)
        );
    }

    #[test]
    fn unix_socket_endpoints_are_refused_by_name_where_the_platform_has_none() {
        for text in ["unix:///run/d.sock", "unixgram:///run/d.sock"] {
            let endpoint = Endpoint::parse(text, 8125).unwrap();
            let err = endpoint.clone().available(text, false).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid endpoint {text:?}: Unix sockets are not available on this platform; use udp:// or tcp://"
                )
            );
            assert_eq!(endpoint.available(text, true).unwrap().to_string(), text);
        }
        // Network endpoints are available everywhere.
        for text in ["udp://x:1", "tcp://x:1", "x:1"] {
            assert!(
                Endpoint::parse(text, 8125)
                    .unwrap()
                    .available(text, false)
                    .is_ok()
            );
        }
        // This platform's answer is the one `build` uses.
        assert_eq!(UNIX_SOCKETS, cfg!(unix));
    }

    #[test]
    fn malformed_endpoints_say_what_is_wrong() {
        for (text, want) in [
            ("http://x:1", "scheme"),
            ("unix://", "socket path is empty"),
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
        assert_eq!(udp.payload_len(None, false).unwrap(), 1432);
        assert_eq!(udp.payload_len(Some(65_507), false).unwrap(), 65_507);
        assert!(matches!(
            udp.payload_len(Some(65_508), false),
            Err(BuildError::PayloadLength { max: 65_507, .. })
        ));
        assert!(matches!(
            udp.payload_len(Some(10), false),
            Err(BuildError::PayloadLength { .. })
        ));
        let tcp = Endpoint::parse("tcp://x:1", 8125).unwrap();
        assert_eq!(tcp.payload_len(None, false).unwrap(), 65_536);
        assert_eq!(tcp.payload_len(Some(1_000_000), false).unwrap(), 1_000_000);
    }

    #[test]
    fn endpoints_display_as_a_parseable_url() {
        for text in [
            "udp://127.0.0.1:1",
            "tcp://[::1]:2003",
            "unix:///a/b.sock",
            "unixgram:///c",
        ] {
            assert_eq!(Endpoint::parse(text, 1).unwrap().to_string(), text);
        }
    }

    #[test]
    fn ip_hosts_are_addresses_at_once_and_names_are_left_to_the_transport() {
        let addrs = |text| Endpoint::parse(text, 1).unwrap().literal_addrs();
        assert_eq!(
            addrs("127.0.0.1:9"),
            [SocketAddr::from(([127, 0, 0, 1], 9))]
        );
        assert_eq!(
            addrs("tcp://[::1]:9"),
            [SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 9))]
        );
        assert_eq!(addrs("localhost:9"), []);
        assert_eq!(addrs("no-such-host.invalid:9"), []);
        assert_eq!(addrs("unix:///tmp/x.sock"), []);
    }
}
