//! Debian's `prometheus-pushgateway`, started on a free loopback port and stopped by PID, and
//! what it stores read back from its own `/metrics` page. Call `require_pushgateway()` first:
//! it skips locally when the gateway is missing and fails under CI.
#![allow(dead_code, reason = "each test binary uses a different subset")]

#[path = "process.rs"]
mod process;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use process::{
    Daemon, find_program, free_tcp_port, loopback, not_installed, read_text, require, wait_ready,
    with_retries,
};

fn program() -> Option<PathBuf> {
    find_program("prometheus-pushgateway")
}

/// See the module docs.
pub(crate) fn require_pushgateway() -> bool {
    require(
        "prometheus-pushgateway",
        program()
            .is_none()
            .then(|| "no prometheus-pushgateway on PATH".to_owned()),
    )
}

/// A running push gateway, stopped (SIGTERM, then SIGKILL) when dropped. It keeps what is
/// pushed in memory only (no `--persistence.file`): nothing it loses at stop matters here,
/// since every read happens while it runs.
pub(crate) struct Pushgateway {
    daemon: Daemon,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pushgateway {
    /// Starts a gateway on a free loopback port and waits until `/-/ready` answers 200.
    ///
    /// # Errors
    ///
    /// When it is not installed or does not come up (the message holds its log).
    pub(crate) fn start() -> io::Result<Self> {
        let program =
            program().ok_or_else(|| not_installed("prometheus-pushgateway", "not on PATH"))?;
        with_retries(|| {
            let dir = tempfile::tempdir()?;
            let addr = loopback(free_tcp_port(&[])?);
            let log = dir.path().join("pushgateway.log");
            let listen = format!("--web.listen-address={addr}");
            let daemon = Daemon::spawn(&program, &[Path::new(&listen)], dir.path(), &log)?;
            let mut gateway = Self {
                daemon,
                addr,
                log,
                _dir: dir,
            };
            wait_ready(
                &mut gateway,
                "prometheus-pushgateway",
                Duration::from_millis(50),
                |g| &mut g.daemon,
                |g| Ok(g.get("/-/ready").is_ok_and(|(status, _)| status == 200)),
                |g| read_text(&g.log),
            )?;
            Ok(gateway)
        })
    }

    /// The URL a pusher PUTs a group to: `http://127.0.0.1:port/metrics/job/<job>`.
    pub(crate) fn job_url(&self, job: &str) -> String {
        format!("http://{}/metrics/job/{job}", self.addr)
    }

    /// Every sample the gateway serves, `series -> value` (series as on the page,
    /// `name{label="value",...}`), its own `push_time_seconds` and the like included.
    ///
    /// # Errors
    ///
    /// When the page cannot be fetched or is not a 200.
    pub(crate) fn samples(&self) -> io::Result<BTreeMap<String, f64>> {
        let (status, page) = self.get("/metrics")?;
        if status != 200 {
            return Err(io::Error::other(format!("GET /metrics: {status}\n{page}")));
        }
        Ok(page
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect())
    }

    /// The gateway's log so far.
    pub(crate) fn log(&self) -> String {
        read_text(&self.log)
    }

    /// `GET path` over HTTP/1.0 (the body ends at close): the status code and the body.
    fn get(&self, path: &str) -> io::Result<(u16, String)> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr)?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| io::Error::other(format!("no HTTP head in {response:?}")))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no status in {head:?}")))?;
        Ok((status, body.to_owned()))
    }
}
