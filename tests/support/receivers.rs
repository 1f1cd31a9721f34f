//! Real third-party StatsD receivers for integration tests: Etsy statsd 0.9.0 (node) and
//! collectd 5.12's statsd plugin. Each instance runs in the foreground as a child process,
//! bound to 127.0.0.1 on free ports, with its config, log and data in a private temp dir, and
//! is stopped by PID when dropped (also when the test panics).
//!
//! Install the receivers with `scripts/install-receivers.sh`. Use from a test file with
//! `#[path = "support/receivers.rs"] mod receivers;` and start each test with
//! `if !receivers::require_etsy_statsd() { return; }` (or `require_collectd`/`require_receivers`):
//! that skips locally when a receiver is missing and fails under CI.
#![allow(dead_code, reason = "each test binary uses a different subset")]

#[path = "process.rs"]
mod process;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub(crate) use process::is_ci;
use process::{
    Daemon, START_ATTEMPTS, complete_lines, find_program, free_port, free_tcp_port, loopback,
    not_installed, path_str, read_text, require, tcp_accepts, udp_port_bound, wait_ready,
    with_retries,
};

/// How often the polling helpers look again.
const POLL: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// Availability

/// Whether the tests that need Etsy statsd and collectd may run.
///
/// Returns `true` when both are installed. When one is missing it returns `false` (the caller
/// skips the test) after printing how to install it, except under CI, where it panics.
///
/// # Panics
///
/// Under CI (see [`is_ci`]) when a receiver is missing.
pub(crate) fn require_receivers() -> bool {
    let statsd = require("Etsy statsd", etsy_statsd_missing());
    let collectd = require("collectd", collectd_missing());
    statsd && collectd
}

/// Like [`require_receivers`], for Etsy statsd alone.
///
/// # Panics
///
/// Under CI (see [`is_ci`]) when Etsy statsd, node or socat is missing.
pub(crate) fn require_etsy_statsd() -> bool {
    require("Etsy statsd", etsy_statsd_missing())
}

/// Like [`require_receivers`], for collectd alone.
///
/// # Panics
///
/// Under CI (see [`is_ci`]) when collectd or its statsd/csv plugins are missing.
pub(crate) fn require_collectd() -> bool {
    require("collectd", collectd_missing())
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where `scripts/install-receivers.sh` puts Etsy statsd's entry point.
pub(crate) fn etsy_statsd_script() -> PathBuf {
    repo_root().join("target/receivers/statsd/node_modules/statsd/stats.js")
}

fn etsy_statsd_missing() -> Option<String> {
    let script = etsy_statsd_script();
    if !script.is_file() {
        return Some(format!("{} not found", script.display()));
    }
    if find_program("node").is_none() {
        return Some("`node` not found on PATH".to_owned());
    }
    if find_program("socat").is_none() {
        return Some("`socat` not found on PATH (the unixgram bridge needs it)".to_owned());
    }
    None
}

const COLLECTD_PLUGIN_DIR: &str = "/usr/lib/collectd";
const COLLECTD_TYPES_DB: &str = "/usr/share/collectd/types.db";

fn collectd_missing() -> Option<String> {
    if find_program("collectd").is_none() {
        return Some("`collectd` not found on PATH or in /usr/sbin".to_owned());
    }
    for plugin in ["statsd", "csv", "logfile"] {
        let so = Path::new(COLLECTD_PLUGIN_DIR).join(format!("{plugin}.so"));
        if !so.is_file() {
            return Some(format!("{} not found", so.display()));
        }
    }
    if !Path::new(COLLECTD_TYPES_DB).is_file() {
        return Some(format!("{COLLECTD_TYPES_DB} not found"));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

/// Polls `pred` every [`POLL`] until it holds or `timeout` has passed; returns its last result.
fn poll_until(timeout: Duration, pred: impl FnMut() -> bool) -> bool {
    process::poll_until(POLL, timeout, pred)
}

/// Reads with `read` every [`POLL`] until `done` holds on the value or `timeout` has passed;
/// returns the last value read.
fn poll_read<T>(timeout: Duration, read: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    process::poll_read(POLL, timeout, read, done)
}

/// A string literal for a JavaScript/collectd config file.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// Etsy statsd

/// Backend loaded into statsd next to the console backend. The console backend prints a
/// `util.inspect` dump that truncates arrays after 100 items (`... 50 more items`), so timer
/// values cannot be read back from it reliably; this one prints every flush as plain lines:
///
/// ```text
/// STATSD_HARNESS_FLUSH <ts>
/// STATSD_HARNESS counter <key> <value>
/// STATSD_HARNESS gauge <key> <value>
/// STATSD_HARNESS timer <key> <v1>,<v2>,...        (sorted ascending by statsd)
/// STATSD_HARNESS timer_count <key> <count>        (sample rates applied)
/// STATSD_HARNESS set <key> <m1>,<m2>,...
/// STATSD_HARNESS_END <ts>
/// ```
///
/// Keys and set members are `encodeURIComponent`-encoded; numbers are JavaScript's `String()`.
const HARNESS_BACKEND_JS: &str = r"/* Written by tests/support/receivers.rs: prints each statsd flush as plain lines. */
'use strict';
function enc(s) { return encodeURIComponent(String(s)); }
exports.init = function (startupTime, config, events) {
  events.on('flush', function (ts, m) {
    const out = ['STATSD_HARNESS_FLUSH ' + ts];
    for (const k in m.counters) { out.push('STATSD_HARNESS counter ' + enc(k) + ' ' + m.counters[k]); }
    for (const k in m.gauges) { out.push('STATSD_HARNESS gauge ' + enc(k) + ' ' + m.gauges[k]); }
    for (const k in m.timers) {
      out.push('STATSD_HARNESS timer ' + enc(k) + ' ' + m.timers[k].join(','));
      out.push('STATSD_HARNESS timer_count ' + enc(k) + ' ' + m.timer_counters[k]);
    }
    for (const k in m.sets) { out.push('STATSD_HARNESS set ' + enc(k) + ' ' + m.sets[k].values().map(enc).join(',')); }
    out.push('STATSD_HARNESS_END ' + ts);
    process.stdout.write(out.join('\n') + '\n');
  });
  return true;
};
";

/// What statsd flushed at one flush (after its own key sanitising: `a b/c` is `a_b-c`, and
/// DogStatsD tags `|#k:v` make the key `name;k=v`).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StatsdFlush {
    /// Unix time (seconds) statsd stamped the flush with.
    pub(crate) timestamp: u64,
    /// Counter totals for this flush interval (sample rates applied), including statsd's own
    /// `statsd.packets_received`, `statsd.metrics_received` and `statsd.bad_lines_seen`.
    pub(crate) counters: BTreeMap<String, f64>,
    /// Gauge values at flush time (including statsd's `statsd.timestamp_lag`).
    pub(crate) gauges: BTreeMap<String, f64>,
    /// Timer samples received in this interval, sorted ascending.
    pub(crate) timers: BTreeMap<String, Vec<f64>>,
    /// Timer counts for this interval: each sample counts `1 / sample_rate`.
    pub(crate) timer_counts: BTreeMap<String, f64>,
    /// Distinct set members received in this interval.
    pub(crate) sets: BTreeMap<String, Vec<String>>,
}

/// Etsy statsd 0.9.0 (`node stats.js`) listening on 127.0.0.1 (UDP and TCP on the same port
/// number, management on another) and on a Unix stream socket, `dumpMessages: true`,
/// `deleteIdleStats: true`, console backend plus a line-printing backend for reading flushes
/// back. A `socat` child bridges a Unix datagram socket to statsd's UDP port (statsd has no
/// unixgram listener). Both sockets live in the private temp dir.
///
/// [`start_with_graphite`](Self::start_with_graphite) adds statsd's own graphite backend,
/// flushing to a carbon plaintext port (see [`GRAPHITE_PREFIX`] for the names it sends).
#[derive(Debug)]
pub(crate) struct EtsyStatsd {
    // Field order is drop order: the bridge stops before statsd, the temp dir goes last.
    /// `socat` forwarding each datagram of `dsd.sock` as one UDP datagram to statsd.
    bridge: Daemon,
    daemon: Daemon,
    node: PathBuf,
    port: u16,
    mgmt_port: u16,
    /// Where the graphite backend sends, when it is loaded.
    graphite: Option<SocketAddr>,
    config_path: PathBuf,
    log_path: PathBuf,
    bridge_log_path: PathBuf,
    /// The logs of the statsd processes that [`restart`](Self::restart) stopped, in order,
    /// each ending with `\n`.
    archived_log: String,
    dir: TempDir,
}

/// File name of statsd's Unix stream socket in its temp dir.
const STATSD_STREAM_SOCKET: &str = "statsd.sock";
/// File name of the socat bridge's Unix datagram socket in statsd's temp dir.
const STATSD_DATAGRAM_SOCKET: &str = "dsd.sock";
/// Largest datagram the bridge forwards whole (the largest UDP payload over IPv4); socat
/// truncates longer ones to its buffer size.
const BRIDGE_BUFFER: usize = 65_507;
/// Longest path a Unix socket address can hold on Linux (`sun_path` minus the NUL).
const UNIX_PATH_MAX: usize = 107;

/// `graphite.globalPrefix` of the graphite backend that
/// [`EtsyStatsd::start_with_graphite`] loads, with `legacyNamespace: false` and the default
/// type prefixes and `flush_counts`. statsd 0.9.0 then sends, per flush, in graphite
/// plaintext over a fresh TCP connection (`<key>` is the metric name and `<tags>` the
/// DogStatsD tags as `;k=v;k2=v2` in the order received, both after statsd's key sanitising,
/// which covers the tags too: `route:/a` arrives as `route=-a`; `<ts>` is the flush time):
///
/// ```text
/// statsd.counters.<key>.count<tags> <total> <ts>       (sample rates applied)
/// statsd.counters.<key>.rate<tags> <total / flush seconds> <ts>
/// statsd.gauges.<key><tags> <value> <ts>
/// statsd.timers.<key>.<stat><tags> <value> <ts>
/// statsd.sets.<key>.count<tags> <distinct members> <ts>
/// ```
///
/// where a timer with samples in the flush has the 14 stats `count`, `count_ps`, `lower`,
/// `upper`, `mean`, `median`, `std`, `sum`, `sum_squares` and `count_90`, `mean_90`,
/// `upper_90`, `sum_90`, `sum_squares_90` (default `percentThreshold: 90`), plus statsd's
/// own untagged `statsd.statsd.*`, `statsd.counters.statsd.*` and `statsd.gauges.statsd.*`
/// series.
pub(crate) const GRAPHITE_PREFIX: &str = "statsd";

/// The statistics Etsy's graphite backend sends per timer with samples in the flush (its
/// default `percentThreshold: 90`), in the order the docs above list them.
pub(crate) const ETSY_TIMER_STATS: [&str; 14] = [
    "count",
    "count_ps",
    "lower",
    "upper",
    "mean",
    "median",
    "std",
    "sum",
    "sum_squares",
    "count_90",
    "mean_90",
    "upper_90",
    "sum_90",
    "sum_squares_90",
];

impl EtsyStatsd {
    /// Starts statsd with a 1 s flush interval.
    ///
    /// # Errors
    ///
    /// When statsd is not installed, or did not come up in 3 attempts with fresh ports; the
    /// error message includes its log.
    pub(crate) fn start() -> io::Result<Self> {
        Self::start_with_flush_interval(Duration::from_secs(1))
    }

    /// Starts statsd with the given flush interval (whole milliseconds, at least 1).
    ///
    /// # Errors
    ///
    /// As [`EtsyStatsd::start`].
    pub(crate) fn start_with_flush_interval(flush_interval: Duration) -> io::Result<Self> {
        Self::start_inner(flush_interval, None)
    }

    /// Starts statsd with a 1 s flush interval and, next to the console and line-printing
    /// backends, statsd's graphite backend sending graphite plaintext over TCP to
    /// `carbon_line` (a carbon plaintext port, `Carbon::line_addr` in carbon.rs) at every
    /// flush, under the names [`GRAPHITE_PREFIX`] describes. Tagged keys go out as graphite
    /// 1.1 tagged series (`statsd.counters.x.count;env=prod`). The receiver need not be up:
    /// a flush that cannot connect is lost (statsd 0.9.0 logs nothing about it without
    /// `debug`, which this harness leaves off because it would mix its own lines into the
    /// `DEBUG:` lines [`received_lines`](Self::received_lines) reads).
    ///
    /// # Errors
    ///
    /// As [`EtsyStatsd::start`].
    pub(crate) fn start_with_graphite(carbon_line: SocketAddr) -> io::Result<Self> {
        Self::start_inner(Duration::from_secs(1), Some(carbon_line))
    }

    fn start_inner(flush_interval: Duration, graphite: Option<SocketAddr>) -> io::Result<Self> {
        if let Some(why) = etsy_statsd_missing() {
            return Err(not_installed("Etsy statsd", &why));
        }
        let node = find_program("node").ok_or_else(|| not_installed("node", "not on PATH"))?;
        let flush_ms = flush_interval.as_millis().max(1);
        with_retries(|| Self::try_start(&node, flush_ms, graphite))
    }

    fn try_start(node: &Path, flush_ms: u128, graphite: Option<SocketAddr>) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("etsy-statsd-").tempdir()?;
        let port = free_port(true, &[])?;
        let mgmt_port = free_tcp_port(&[port])?;
        let stream_socket = dir.path().join(STATSD_STREAM_SOCKET);
        let datagram_socket = dir.path().join(STATSD_DATAGRAM_SOCKET);
        for socket in [&stream_socket, &datagram_socket] {
            if path_str(socket)?.len() > UNIX_PATH_MAX {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "Unix socket path longer than {UNIX_PATH_MAX} bytes (set TMPDIR shorter): {}",
                        socket.display()
                    ),
                ));
            }
        }
        let backend = dir.path().join("harness_backend.js");
        fs::write(&backend, HARNESS_BACKEND_JS)?;
        let mut backends = format!(r#""./backends/console", {}"#, quoted(path_str(&backend)?));
        let mut graphite_config = String::new();
        if let Some(carbon) = graphite {
            backends.push_str(r#", "./backends/graphite""#);
            graphite_config = format!(
                r#",
  graphiteHost: {host}, graphitePort: {port}, graphiteProtocol: "text",
  graphite: {{ legacyNamespace: false, globalPrefix: {prefix} }}"#,
                host = quoted(&carbon.ip().to_string()),
                port = carbon.port(),
                prefix = quoted(GRAPHITE_PREFIX),
            );
        }
        let config_path = dir.path().join("config.js");
        // No `socket_mod`: statsd 0.9.0 calls `fs.chmod` without a callback, which throws on
        // node 20. The socket gets the umask's mode (owner can connect), enough for tests.
        fs::write(
            &config_path,
            format!(
                r#"{{
  servers: [
    {{ server: "./servers/udp", address: "127.0.0.1", port: {port} }},
    {{ server: "./servers/tcp", address: "127.0.0.1", port: {port} }},
    {{ server: "./servers/tcp", socket: {socket} }}
  ],
  mgmt_address: "127.0.0.1", mgmt_port: {mgmt_port},
  flushInterval: {flush_ms}, dumpMessages: true, deleteIdleStats: true, automaticConfigReload: false,
  backends: [{backends}], console: {{ prettyprint: false }}{graphite_config}
}}
"#,
                socket = quoted(path_str(&stream_socket)?),
            ),
        )?;
        let log_path = dir.path().join("statsd.log");
        let bridge_log_path = dir.path().join("socat.log");
        let mut daemon = spawn_statsd(node, &config_path, dir.path(), &log_path)?;
        wait_statsd_ready(&mut daemon, port, mgmt_port, &log_path, &stream_socket)?;
        let mut bridge = spawn_bridge(&datagram_socket, port, dir.path(), &bridge_log_path)?;
        wait_bridge_ready(&mut bridge, &datagram_socket, &bridge_log_path)?;
        Ok(Self {
            bridge,
            daemon,
            node: node.to_owned(),
            port,
            mgmt_port,
            graphite,
            config_path,
            log_path,
            bridge_log_path,
            archived_log: String::new(),
            dir,
        })
    }

    /// Stops the socat bridge and statsd (SIGTERM, as an Agent restart would: statsd flushes
    /// once more on the way out and removes its stream socket; whatever is still queued in
    /// the bridge's socket is lost), then starts both again on the same UDP/TCP/management
    /// ports and the same socket paths. Between the stop and the start neither socket file
    /// exists, so clients see the receiver as gone.
    ///
    /// Logs accumulate: [`log`](Self::log), [`received_lines`](Self::received_lines),
    /// [`flushes`](Self::flushes) and the totals cover every process since
    /// [`start`](Self::start), oldest first; the old process's final flush included.
    ///
    /// # Errors
    ///
    /// When statsd or the bridge does not come back up (e.g. someone else took the port in
    /// between; 3 attempts). The value then has no running receiver, but can still be read
    /// and restarted again.
    pub(crate) fn restart(&mut self) -> io::Result<()> {
        self.bridge.stop();
        self.daemon.stop();
        // statsd unlinks its socket on SIGTERM and socat on exit; after a SIGKILL they remain.
        for socket in [self.unix_stream_path(), self.unix_datagram_path()] {
            match fs::remove_file(&socket) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let mut old = self.current_log();
        if !old.is_empty() && !old.ends_with('\n') {
            old.push('\n');
        }
        self.archived_log.push_str(&old);
        // Emptied now, so a failed attempt below never archives the old text twice.
        File::create(&self.log_path)?;
        let mut last = None;
        for attempt in 0..START_ATTEMPTS {
            if attempt > 0 {
                thread::sleep(Duration::from_millis(200));
            }
            match self.try_restart() {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // Keep what the failed attempt logged, then try again.
                    self.bridge.stop();
                    self.daemon.stop();
                    let mut failed = self.current_log();
                    if !failed.is_empty() && !failed.ends_with('\n') {
                        failed.push('\n');
                    }
                    self.archived_log.push_str(&failed);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no restart attempt was made")))
    }

    fn try_restart(&mut self) -> io::Result<()> {
        let stream_socket = self.unix_stream_path();
        let datagram_socket = self.unix_datagram_path();
        for socket in [&stream_socket, &datagram_socket] {
            let _ = fs::remove_file(socket);
        }
        // `File::create` truncates: the old text is in `archived_log`.
        self.daemon = spawn_statsd(
            &self.node,
            &self.config_path,
            self.dir.path(),
            &self.log_path,
        )?;
        wait_statsd_ready(
            &mut self.daemon,
            self.port,
            self.mgmt_port,
            &self.log_path,
            &stream_socket,
        )?;
        self.bridge = spawn_bridge(
            &datagram_socket,
            self.port,
            self.dir.path(),
            &self.bridge_log_path,
        )?;
        wait_bridge_ready(&mut self.bridge, &datagram_socket, &self.bridge_log_path)
    }

    /// statsd's current log (this process only), for readiness checks.
    fn current_log(&self) -> String {
        read_text(&self.log_path)
    }

    /// Sends one command (`health`, `stats`, `counters`, `gauges`, `timers`, ...) to the
    /// management port and returns the reply. Counters and timers there reset at each flush.
    ///
    /// statsd treats each TCP chunk as one command, so the command goes alone; the reply is
    /// complete at `END\n\n` (listings), at the first line (`health`), or when nothing more
    /// arrives for 200 ms.
    ///
    /// # Errors
    ///
    /// When the management port cannot be reached or nothing arrives within 2 s.
    pub(crate) fn mgmt_command(&self, command: &str) -> io::Result<String> {
        mgmt_command_at(self.mgmt_addr(), command)
    }

    /// Where to send StatsD datagrams.
    pub(crate) fn udp_addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// Where to send newline-terminated StatsD lines over TCP (same port number as UDP).
    pub(crate) fn tcp_addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The management port (`health`, `stats`, `counters`, ...).
    pub(crate) fn mgmt_addr(&self) -> SocketAddr {
        loopback(self.mgmt_port)
    }

    /// Where the graphite backend sends (`None` unless started with
    /// [`start_with_graphite`](Self::start_with_graphite)).
    pub(crate) fn graphite_addr(&self) -> Option<SocketAddr> {
        self.graphite
    }

    /// statsd's Unix stream socket (`<dir>/statsd.sock`): newline-terminated lines, as over
    /// TCP (an unterminated last line is dropped on close). The same path across
    /// [`restart`](Self::restart).
    pub(crate) fn unix_stream_path(&self) -> PathBuf {
        self.dir.path().join(STATSD_STREAM_SOCKET)
    }

    /// The Unix datagram socket (`<dir>/dsd.sock`, mode 666) whose datagrams the socat bridge
    /// forwards one for one to statsd's UDP port, like a DogStatsD Agent's
    /// `dogstatsd_socket`. The same path across [`restart`](Self::restart).
    pub(crate) fn unix_datagram_path(&self) -> PathBuf {
        self.dir.path().join(STATSD_DATAGRAM_SOCKET)
    }

    /// The private temp dir holding `config.js`, `statsd.log`, `socat.log` and both sockets.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of the current statsd (node) process (a new one after
    /// [`restart`](Self::restart)).
    pub(crate) fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The process id of the current socat bridge process.
    pub(crate) fn bridge_pid(&self) -> u32 {
        self.bridge.pid()
    }

    /// Everything statsd wrote to stdout/stderr so far (for assertion messages), across
    /// restarts: the stopped processes' logs first, then the running one's.
    pub(crate) fn log(&self) -> String {
        let mut log = self.archived_log.clone();
        log.push_str(&self.current_log());
        log
    }

    /// What the current socat bridge wrote to stderr (empty unless it complained).
    pub(crate) fn bridge_log(&self) -> String {
        read_text(&self.bridge_log_path)
    }

    /// The `DEBUG: ...` payloads of the log, in order.
    fn debug_payloads(&self) -> Vec<String> {
        let log = self.log();
        complete_lines(&log)
            .into_iter()
            .filter_map(debug_payload)
            .map(str::to_owned)
            .collect()
    }

    /// Every metric line statsd received, exactly as it logged it (`dumpMessages`), in order.
    /// A datagram or TCP chunk holding several `\n`-separated lines gives one entry per
    /// non-empty line; a `\r` before the `\n` stays part of the line.
    pub(crate) fn received_lines(&self) -> Vec<String> {
        self.debug_payloads()
            .into_iter()
            .filter(|p| !p.starts_with("Bad line: "))
            .collect()
    }

    /// Statsd's complaints about lines it rejected, e.g. `Bad line: abc,c in msg "x:abc|c"`
    /// (the fields joined with `,`, then the whole line). One line can give several.
    pub(crate) fn bad_lines(&self) -> Vec<String> {
        self.debug_payloads()
            .into_iter()
            .filter(|p| p.starts_with("Bad line: "))
            .collect()
    }

    /// Polls until `pred(&received_lines)` holds or `timeout` passes; returns the lines either
    /// way (assert on them).
    pub(crate) fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        poll_read(timeout, || self.received_lines(), |lines| pred(lines))
    }

    /// Polls until `pred(self)` holds or `timeout` passes; returns whether it held. For example
    /// `statsd.wait_until(T, |s| s.counter_total("x") >= 3.0)`.
    pub(crate) fn wait_until(&self, timeout: Duration, pred: impl Fn(&Self) -> bool) -> bool {
        poll_until(timeout, || pred(self))
    }

    /// Waits until one more flush has completed than had when called, so that every line
    /// already in [`received_lines`](Self::received_lines) is included in
    /// [`flushes`](Self::flushes). Returns false on timeout.
    pub(crate) fn wait_for_next_flush(&self, timeout: Duration) -> bool {
        let seen = self.flushes().len();
        poll_until(timeout, || self.flushes().len() > seen)
    }

    /// Waits until `lines` (each as many times as listed, any order) have all been received
    /// and then for the flush after that, so the aggregates below are final for them.
    /// Returns false on timeout (the whole wait is bounded by `timeout`).
    pub(crate) fn wait_for_lines_flushed(&self, lines: &[&str], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let all_received = poll_until(timeout, || {
            let received = self.received_lines();
            contains_all(&received, lines)
        });
        all_received && self.wait_for_next_flush(deadline.saturating_duration_since(Instant::now()))
    }

    /// Every completed flush so far, oldest first.
    pub(crate) fn flushes(&self) -> Vec<StatsdFlush> {
        parse_flushes(&self.log())
    }

    /// Sum of the counter `name` over all flushes so far (sample rates applied: `1|c|@0.5`
    /// adds 2). `name` is the key after statsd's sanitising (tags: `name;k=v`).
    pub(crate) fn counter_total(&self, name: &str) -> f64 {
        self.flushes()
            .iter()
            .filter_map(|f| f.counters.get(name))
            .sum()
    }

    /// The gauge's value at the latest flush that had it.
    pub(crate) fn gauge(&self, name: &str) -> Option<f64> {
        self.flushes()
            .iter()
            .rev()
            .find_map(|f| f.gauges.get(name).copied())
    }

    /// Timer samples for `name` over all flushes, flush by flush (each flush's samples are
    /// sorted ascending by statsd). Sample rates do not change values, only counts.
    pub(crate) fn timer_values(&self, name: &str) -> Vec<f64> {
        self.flushes()
            .iter()
            .filter_map(|f| f.timers.get(name))
            .flatten()
            .copied()
            .collect()
    }

    /// Sum of the timer's counts over all flushes: each sample counts `1 / sample_rate`.
    pub(crate) fn timer_count_total(&self, name: &str) -> f64 {
        self.flushes()
            .iter()
            .filter_map(|f| f.timer_counts.get(name))
            .sum()
    }

    /// Union of the set's members over all flushes.
    pub(crate) fn set_members(&self, name: &str) -> BTreeSet<String> {
        self.flushes()
            .iter()
            .filter_map(|f| f.sets.get(name))
            .flatten()
            .cloned()
            .collect()
    }

    /// Every metric key seen in any flush (counters, gauges, timers and sets).
    pub(crate) fn flushed_keys(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for f in self.flushes() {
            keys.extend(f.counters.into_keys());
            keys.extend(f.gauges.into_keys());
            keys.extend(f.timers.into_keys());
            keys.extend(f.sets.into_keys());
        }
        keys
    }
}

/// [`EtsyStatsd::mgmt_command`] for the management port at `addr`.
fn mgmt_command_at(addr: SocketAddr, command: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(format!("{command}\n").as_bytes())?;
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut reply = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let wait = if reply.is_empty() {
            left
        } else {
            left.min(Duration::from_millis(200))
        };
        stream.set_read_timeout(Some(wait))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.ends_with(b"END\n\n")
                    || (command.trim() == "health" && reply.contains(&b'\n'))
                {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) && !reply.is_empty() =>
            {
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let _ = stream.write_all(b"quit\n");
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// Starts `node stats.js <config>` in `dir`, stdout and stderr to `log` (truncated).
fn spawn_statsd(node: &Path, config: &Path, dir: &Path, log: &Path) -> io::Result<Daemon> {
    Daemon::spawn(node, &[&etsy_statsd_script(), config], dir, log)
}

/// Ready = process alive, `server is up` logged, management port answers `health: up`,
/// UDP port bound, TCP port accepting, and the Unix stream socket exists and accepts.
fn wait_statsd_ready(
    daemon: &mut Daemon,
    port: u16,
    mgmt_port: u16,
    log_path: &Path,
    stream_socket: &Path,
) -> io::Result<()> {
    wait_ready(
        daemon,
        "Etsy statsd",
        POLL,
        |d| d,
        |d| {
            let up = read_text(log_path).contains("server is up")
                && mgmt_command_at(loopback(mgmt_port), "health")
                    .is_ok_and(|reply| reply.contains("health: up"))
                && udp_port_bound(port) != Some(false)
                && tcp_accepts(port)
                && stream_socket.exists()
                && UnixStream::connect(stream_socket).is_ok();
            if !up {
                return Ok(false);
            }
            // A port stolen between probing and binding makes node exit with EADDRINUSE.
            match d.exited() {
                None => Ok(true),
                Some(status) => Err(format!("exited with {status}")),
            }
        },
        |_| read_text(log_path),
    )
}

/// Starts `socat -u UNIX-RECV:<socket>,unlink-early,mode=666 UDP-SENDTO:127.0.0.1:<port>`:
/// each datagram received on `socket` goes out as one UDP datagram (boundaries kept, up to
/// [`BRIDGE_BUFFER`] bytes).
fn spawn_bridge(socket: &Path, port: u16, dir: &Path, log: &Path) -> io::Result<Daemon> {
    let socat = find_program("socat").ok_or_else(|| not_installed("socat", "not on PATH"))?;
    let recv = format!("UNIX-RECV:{},unlink-early,mode=666", path_str(socket)?);
    let send = format!("UDP-SENDTO:127.0.0.1:{port}");
    let buffer = BRIDGE_BUFFER.to_string();
    Daemon::spawn(
        &socat,
        &[
            Path::new("-u"),
            Path::new("-b"),
            Path::new(&buffer),
            Path::new(&recv),
            Path::new(&send),
        ],
        dir,
        log,
    )
}

/// Ready = socat alive, its socket file exists, and a datagram can be sent to it. The probe is
/// a lone `\n`: statsd counts it in `statsd.packets_received` but sees no metric line in it.
fn wait_bridge_ready(bridge: &mut Daemon, socket: &Path, log_path: &Path) -> io::Result<()> {
    wait_ready(
        bridge,
        "socat unixgram bridge",
        POLL,
        |b| b,
        |_| {
            Ok(socket.exists()
                && UnixDatagram::unbound().is_ok_and(|s| s.send_to(b"\n", socket).is_ok()))
        },
        |_| read_text(log_path),
    )
}

/// Whether `have` contains every entry of `want`, with multiplicity.
fn contains_all(have: &[String], want: &[&str]) -> bool {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for h in have {
        *counts.entry(h.as_str()).or_default() += 1;
    }
    want.iter().all(|w| {
        counts.get_mut(w).is_some_and(|c| {
            if *c == 0 {
                false
            } else {
                *c -= 1;
                true
            }
        })
    })
}

/// The message of a statsd logger line `<d> <Mon> <HH:MM:SS> - DEBUG: <message>` (node's
/// `util.log` format), or `None` for any other line (console dumps, flush lines, ...).
pub(crate) fn debug_payload(line: &str) -> Option<&str> {
    let (stamp, rest) = line.split_once(" - ")?;
    let mut parts = stamp.split(' ');
    let (day, month, time) = (parts.next()?, parts.next()?, parts.next()?);
    let stamp_ok = parts.next().is_none()
        && (1..=2).contains(&day.len())
        && day.bytes().all(|b| b.is_ascii_digit())
        && month.len() == 3
        && month.bytes().all(|b| b.is_ascii_alphabetic())
        && time.len() == 8
        && time.bytes().enumerate().all(|(i, b)| {
            if i == 2 || i == 5 {
                b == b':'
            } else {
                b.is_ascii_digit()
            }
        });
    if stamp_ok {
        rest.strip_prefix("DEBUG: ")
    } else {
        None
    }
}

/// Decodes `encodeURIComponent` output.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// JavaScript's `String(number)` to f64 (`Infinity`, `NaN`, `1e+21` included).
fn parse_js_number(s: &str) -> Option<f64> {
    match s {
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses the harness backend's flush blocks out of statsd's log; an unfinished block at the
/// end is left out.
pub(crate) fn parse_flushes(log: &str) -> Vec<StatsdFlush> {
    let mut flushes = Vec::new();
    let mut current: Option<StatsdFlush> = None;
    for line in complete_lines(log) {
        if let Some(ts) = line.strip_prefix("STATSD_HARNESS_FLUSH ") {
            current = Some(StatsdFlush {
                timestamp: ts.trim().parse().unwrap_or_default(),
                ..StatsdFlush::default()
            });
        } else if line.starts_with("STATSD_HARNESS_END ") {
            flushes.extend(current.take());
        } else if let Some(entry) = line.strip_prefix("STATSD_HARNESS ") {
            let Some(flush) = current.as_mut() else {
                continue;
            };
            let mut fields = entry.splitn(3, ' ');
            let (Some(kind), Some(key), Some(value)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let key = percent_decode(key);
            let numbers = || -> Vec<f64> {
                value
                    .split(',')
                    .filter(|v| !v.is_empty())
                    .filter_map(parse_js_number)
                    .collect()
            };
            match kind {
                "counter" => {
                    flush
                        .counters
                        .extend(parse_js_number(value).map(|v| (key, v)));
                }
                "gauge" => {
                    flush
                        .gauges
                        .extend(parse_js_number(value).map(|v| (key, v)));
                }
                "timer" => {
                    flush.timers.insert(key, numbers());
                }
                "timer_count" => {
                    flush
                        .timer_counts
                        .extend(parse_js_number(value).map(|v| (key, v)));
                }
                "set" => {
                    let members = value
                        .split(',')
                        .filter(|v| !v.is_empty())
                        .map(percent_decode)
                        .collect();
                    flush.sets.insert(key, members);
                }
                _ => {}
            }
        }
    }
    flushes
}

// ---------------------------------------------------------------------------------------------
// collectd

/// Statistics collectd's statsd plugin writes for a timer `NAME` (CSV series
/// `latency-NAME-<stat>`), with the plugin options this harness sets.
pub(crate) const COLLECTD_TIMER_STATS: [&str; 5] =
    ["average", "lower", "upper", "sum", "percentile-90"];

/// collectd 5.12 (`collectd -f`) with only the statsd plugin (UDP on 127.0.0.1), the csv
/// plugin and a log file; `Interval 1`. Strict plain StatsD: lines with `|#tags`, `|h`, `|d`
/// etc. are logged as `Unable to parse line` and dropped.
#[derive(Debug)]
pub(crate) struct Collectd {
    daemon: Daemon,
    port: u16,
    log_path: PathBuf,
    stdout_path: PathBuf,
    csv_dir: PathBuf,
    dir: TempDir,
}

impl Collectd {
    /// Starts collectd and waits until its statsd plugin listens.
    ///
    /// # Errors
    ///
    /// When collectd is not installed, or did not come up in 3 attempts with fresh ports; the
    /// error message includes its log.
    pub(crate) fn start() -> io::Result<Self> {
        if let Some(why) = collectd_missing() {
            return Err(not_installed("collectd", &why));
        }
        let collectd =
            find_program("collectd").ok_or_else(|| not_installed("collectd", "not on PATH"))?;
        with_retries(|| Self::try_start(&collectd))
    }

    fn try_start(program: &Path) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("collectd-").tempdir()?;
        let port = free_port(false, &[])?;
        let base = path_str(dir.path())?.to_owned();
        let log_path = dir.path().join("collectd.log");
        let stdout_path = dir.path().join("stdout.log");
        let csv_root = dir.path().join("csv");
        let config = dir.path().join("collectd.conf");
        let pid_file = dir.path().join("collectd.pid");
        let text = format!(
            r#"Hostname "test"
FQDNLookup false
Interval 1
BaseDir {base}
PIDFile {pid}
PluginDir {plugin_dir}
TypesDB {types_db}
AutoLoadPlugin false
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File {log}
  Timestamp true
</Plugin>
LoadPlugin statsd
<Plugin statsd>
  Host "127.0.0.1"
  Port "{port}"
  DeleteSets true
  TimerPercentile 90.0
  TimerLower true
  TimerUpper true
  TimerSum true
  TimerCount true
</Plugin>
LoadPlugin csv
<Plugin csv>
  DataDir {csv}
  StoreRates false
</Plugin>
"#,
            base = quoted(&base),
            pid = quoted(path_str(&pid_file)?),
            plugin_dir = quoted(COLLECTD_PLUGIN_DIR),
            types_db = quoted(COLLECTD_TYPES_DB),
            log = quoted(path_str(&log_path)?),
            csv = quoted(path_str(&csv_root)?),
        );
        fs::write(&config, text)?;
        let daemon = Daemon::spawn(
            program,
            &[
                Path::new("-f"),
                Path::new("-C"),
                &config,
                Path::new("-P"),
                &pid_file,
            ],
            dir.path(),
            &stdout_path,
        )?;
        let mut collectd = Self {
            daemon,
            port,
            log_path,
            stdout_path,
            csv_dir: csv_root.join("test").join("statsd"),
            dir,
        };
        collectd.wait_ready()?;
        Ok(collectd)
    }

    /// Ready = `statsd plugin: Listening on [127.0.0.1]:PORT.` and `entering read-loop`
    /// logged, process alive.
    fn wait_ready(&mut self) -> io::Result<()> {
        let listening = format!("statsd plugin: Listening on [127.0.0.1]:{}.", self.port);
        wait_ready(
            self,
            "collectd",
            POLL,
            |c| &mut c.daemon,
            |c| {
                let log = read_text(&c.log_path);
                if log.contains("statsd plugin: bind(2)")
                    || log.contains("statsd plugin: Unable to open listening sockets")
                {
                    return Err("its statsd plugin could not bind".to_owned());
                }
                Ok(log.contains(&listening) && log.contains("entering read-loop"))
            },
            Self::log,
        )
    }

    /// Where to send StatsD datagrams (collectd's statsd plugin has no TCP listener).
    pub(crate) fn udp_addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The private temp dir (config, logs, CSV files).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The directory with the statsd plugin's CSV files (`<type>-<name>[-<stat>]-YYYY-MM-DD`).
    pub(crate) fn csv_dir(&self) -> &Path {
        &self.csv_dir
    }

    /// The process id of collectd.
    pub(crate) fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// collectd's log file followed by its stdout/stderr (for assertion messages).
    pub(crate) fn log(&self) -> String {
        format!(
            "{}--- stdout/stderr ---\n{}",
            read_text(&self.log_path),
            read_text(&self.stdout_path)
        )
    }

    /// Log lines about lines the statsd plugin could not parse (`statsd plugin: Unable to
    /// parse line: "..."`) and value parse errors (`parse_value: ...`), in order.
    pub(crate) fn parse_errors(&self) -> Vec<String> {
        let log = read_text(&self.log_path);
        complete_lines(&log)
            .into_iter()
            .filter(|l| l.contains("Unable to parse line") || l.contains("parse_value: "))
            .map(str::to_owned)
            .collect()
    }

    /// The lines the statsd plugin rejected, unquoted from its `Unable to parse line: "..."`.
    pub(crate) fn unparsed_lines(&self) -> Vec<String> {
        const MARK: &str = "statsd plugin: Unable to parse line: \"";
        self.parse_errors()
            .iter()
            .filter_map(|l| {
                let start = l.find(MARK)? + MARK.len();
                let rest = &l[start..];
                Some(rest.strip_suffix('"').unwrap_or(rest).to_owned())
            })
            .collect()
    }

    /// The CSV files of one series (`series` is the file name without the date, e.g.
    /// `derive-requests` or `latency-db.query-average`), oldest first.
    fn series_files(&self, series: &str) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.csv_dir) else {
            return Vec::new();
        };
        let prefix = format!("{series}-");
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.strip_prefix(&prefix))
                    .is_some_and(is_date)
            })
            .collect();
        files.sort();
        files
    }

    /// Every value written so far for a series (see [`series_files`](Self::series_files) for
    /// names), in time order, `nan` rows included. Empty when the series does not exist (yet).
    pub(crate) fn csv_values(&self, series: &str) -> Vec<f64> {
        let mut values = Vec::new();
        for file in self.series_files(series) {
            let text = read_text(&file);
            for line in complete_lines(&text) {
                let Some((epoch, value)) = line.split_once(',') else {
                    continue;
                };
                if epoch == "epoch" {
                    continue;
                }
                if let Ok(v) = value.trim().parse::<f64>() {
                    values.push(v);
                }
            }
        }
        values
    }

    /// Names of all series written so far (CSV file names without the date).
    pub(crate) fn series(&self) -> BTreeSet<String> {
        let Ok(entries) = fs::read_dir(&self.csv_dir) else {
            return BTreeSet::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (series, date) = name.split_at_checked(name.len().checked_sub(11)?)?;
                (date.starts_with('-') && is_date(&date[1..])).then(|| series.to_owned())
            })
            .collect()
    }

    /// Counter `name` (series `derive-NAME`): collectd keeps a running total since it started
    /// (sample rates applied), written every interval, so the last value is the total.
    pub(crate) fn counter_values(&self, name: &str) -> Vec<f64> {
        self.csv_values(&format!("derive-{name}"))
    }

    /// Gauge `name` (series `gauge-NAME`), one value per interval.
    pub(crate) fn gauge_values(&self, name: &str) -> Vec<f64> {
        self.csv_values(&format!("gauge-{name}"))
    }

    /// Timer statistic `stat` (one of [`COLLECTD_TIMER_STATS`]) of timer `name` in **seconds**
    /// (series `latency-NAME-STAT`), leaving out the `nan` of intervals without samples.
    /// Quirk: collectd divides timer *values* by the sample rate (`10|ms|@0.25` counts as one
    /// 40 ms sample).
    pub(crate) fn timer_values(&self, name: &str, stat: &str) -> Vec<f64> {
        self.csv_values(&format!("latency-{name}-{stat}"))
            .into_iter()
            .filter(|v| !v.is_nan())
            .collect()
    }

    /// Number of samples of timer `name` per interval (series `gauge-NAME-count`; 0 when idle;
    /// sample rates are not applied).
    pub(crate) fn timer_count_values(&self, name: &str) -> Vec<f64> {
        self.csv_values(&format!("gauge-{name}-count"))
    }

    /// Distinct members of set `name` per interval (series `objects-NAME`).
    pub(crate) fn set_values(&self, name: &str) -> Vec<f64> {
        self.csv_values(&format!("objects-{name}"))
    }

    /// Polls until `series` has at least one value or `timeout` passes; returns its values
    /// (empty on timeout).
    pub(crate) fn wait_for_csv(&self, series: &str, timeout: Duration) -> Vec<f64> {
        poll_read(
            timeout,
            || self.csv_values(series),
            |values| !values.is_empty(),
        )
    }

    /// Polls until `pred(self)` holds or `timeout` passes; returns whether it held.
    pub(crate) fn wait_until(&self, timeout: Duration, pred: impl Fn(&Self) -> bool) -> bool {
        poll_until(timeout, || pred(self))
    }
}

/// `YYYY-MM-DD`.
fn is_date(s: &str) -> bool {
    s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

// ---------------------------------------------------------------------------------------------
// Sending

/// Sends each item as one UDP datagram to `addr` from a fresh socket bound to 127.0.0.1.
///
/// # Errors
///
/// When binding or sending fails.
pub(crate) fn send_udp(addr: SocketAddr, datagrams: &[&str]) -> io::Result<()> {
    let datagrams: Vec<&[u8]> = datagrams.iter().map(|d| d.as_bytes()).collect();
    process::send_udp(addr, &datagrams)
}

/// Writes `data` to a new TCP connection to `addr` and closes it (StatsD over TCP wants
/// newline-terminated lines; statsd ignores an unterminated last line).
///
/// # Errors
///
/// When connecting or writing fails.
pub(crate) fn send_tcp(addr: SocketAddr, data: &str) -> io::Result<()> {
    process::send_tcp(addr, data.as_bytes())
}
