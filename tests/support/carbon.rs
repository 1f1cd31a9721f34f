//! Real Graphite receivers for integration tests: carbon-cache (Debian `graphite-carbon` 1.1.7,
//! whisper storage read back with `whisper-fetch`) and carbon-c-relay 3.7.3 (a line relay that
//! writes every received line to a capture file and forwards it to carbon). Each instance runs
//! in the foreground as a child process, bound to 127.0.0.1 on free ports, with its config,
//! logs and data in a private temp dir, and is stopped by PID when dropped (also when the test
//! panics): SIGTERM, then SIGKILL if it has not exited after 5 s.
//!
//! Install the receivers with `scripts/install-receivers.sh`. Use from a test file with
//! `#[path = "support/carbon.rs"] mod carbon;` and start each test with
//! `if !carbon::require_carbon() { return; }` (or `require_carbon_relay`): that skips locally
//! when a receiver is missing and fails under CI.
#![allow(dead_code, reason = "each test binary uses a different subset")]

#[path = "process.rs"]
mod process;

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use process::{
    Daemon, START_ATTEMPTS, complete_lines, find_program, free_port, free_tcp_port, loopback,
    not_installed, path_str, read_text, require, tcp_accepts, udp_port_bound, wait_ready,
    with_retries,
};
#[allow(unused_imports, reason = "each test binary uses a different subset")]
pub(crate) use process::{is_ci, send_tcp, send_udp};

/// How often the polling helpers look again.
const POLL: Duration = Duration::from_millis(50);
/// How far back [`Carbon::points`] reads: the whole retention (`1s:1h`).
const FETCH_WINDOW_SECS: u64 = 3600;

// ---------------------------------------------------------------------------------------------
// Availability

/// Whether the tests that need carbon-cache may run: `carbon-cache` and `whisper-fetch` are
/// installed. When one is missing it returns `false` (the caller skips the test) after printing
/// how to install it, except under CI, where it panics.
///
/// # Panics
///
/// Under CI (see [`is_ci`]) when carbon-cache or whisper-fetch is missing.
pub(crate) fn require_carbon() -> bool {
    require("carbon-cache", carbon_missing())
}

/// Like [`require_carbon`], for carbon-c-relay (tests using [`CarbonRelay`] usually need
/// carbon as well: call both).
///
/// # Panics
///
/// Under CI (see [`is_ci`]) when carbon-c-relay is missing.
pub(crate) fn require_carbon_relay() -> bool {
    require("carbon-c-relay", relay_missing())
}

fn carbon_missing() -> Option<String> {
    for program in ["carbon-cache", "whisper-fetch"] {
        if find_program(program).is_none() {
            return Some(format!("`{program}` not found on PATH"));
        }
    }
    None
}

fn relay_missing() -> Option<String> {
    find_program("carbon-c-relay")
        .is_none()
        .then(|| "`carbon-c-relay` not found on PATH".to_owned())
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

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds after a slot's start that [`wait_for_room_in_slot`] also waits out: the aligned
/// tick at the boundary has run by then, even on a loaded machine.
pub(crate) const TICK_SETTLE: u64 = 3;

/// Polls the wall clock (no sleep for timing) until at least `margin` whole seconds are left
/// before the next multiple of `slot`, and the slot is at least [`TICK_SETTLE`] seconds old:
/// a record-and-flush that starts now and takes less than `margin` stays inside one aligned
/// slot, with no tick of the exporter's in between.
///
/// # Panics
///
/// When the clock does not move for `margin + TICK_SETTLE + 2` seconds.
pub(crate) fn wait_for_room_in_slot(slot: u64, margin: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(margin + TICK_SETTLE + 2);
    // When the wait ends on a boundary, the aligned tick fires there too, and one that runs
    // late (after the explicit flush) re-sends the slot's counter totals and its gauges: CI
    // once counted 24 lines sent for 21, two counters and a gauge more, with every stored
    // value still right.
    while unix_now() % slot >= slot - margin || unix_now() % slot < TICK_SETTLE {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock does not move"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

// ---------------------------------------------------------------------------------------------
// Carbon series names and whisper paths

/// Graphite 1.1's normalised form of a series name: a tagged name `name;k=v;...` gets its tags
/// sorted as carbon sorts them (a repeated key keeps its last value, as carbon's dict does); a plain name is
/// returned unchanged. A tag without `=` is kept as is (carbon itself rejects such names).
pub(crate) fn normalise_series(series: &str) -> String {
    let mut parts = series.split(';');
    let name = parts.next().unwrap_or_default();
    let mut tags: Vec<(&str, &str)> = Vec::new();
    let mut has_tags = false;
    for part in parts {
        has_tags = true;
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        tags.retain(|(key, _)| *key != k);
        tags.push((k, v));
    }
    if !has_tags {
        return series.to_owned();
    }
    // Carbon (`TaggedSeries.format`) sorts the `;k=v` strings themselves, not the keys:
    // `;k2=…` comes before `;k=…` since `2` sorts before `=`.
    let mut parts: Vec<String> = tags.iter().map(|(k, v)| format!(";{k}={v}")).collect();
    parts.sort();
    let mut out = name.to_owned();
    for part in parts {
        out.push_str(&part);
    }
    out
}

/// Where carbon (`ENABLE_TAGS = False`, `TAG_HASH_FILENAMES = False`) stores `series`, relative
/// to its whisper dir: `a/b/c.wsp` for `a.b.c` (empty segments skipped), and
/// `_tagged/<h[0:3]>/<h[3:6]>/<normalised name with . as _DOT_>.wsp` for a tagged name, `h`
/// being the SHA-256 hex digest of the normalised name.
pub(crate) fn wsp_relative_path(series: &str) -> PathBuf {
    wsp_relative_path_with(series, false)
}

/// As [`wsp_relative_path`], for a carbon with `TAG_HASH_FILENAMES = hashed`: with `true` a
/// tagged name's file is `_tagged/<h[0:3]>/<h[3:6]>/<h>.wsp`. Plain names do not depend on it.
pub(crate) fn wsp_relative_path_with(series: &str, hashed: bool) -> PathBuf {
    if series.contains(';') {
        let norm = normalise_series(series);
        let h = sha256_hex(norm.as_bytes());
        let mut p = PathBuf::from("_tagged");
        p.push(&h[0..3]);
        p.push(&h[3..6]);
        if hashed {
            p.push(format!("{h}.wsp"));
        } else {
            p.push(format!("{}.wsp", norm.replace('.', "_DOT_")));
        }
        p
    } else {
        let mut p: PathBuf = series.split('.').filter(|s| !s.is_empty()).collect();
        p.set_extension("wsp");
        // `set_extension` would replace a dot in the last segment; there is none (split above).
        p
    }
}

/// SHA-256 (FIPS 180-4) of `data` as lowercase hex.
#[allow(
    clippy::many_single_char_names,
    clippy::too_many_lines,
    reason = "written as in the standard, round constants included"
)]
fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a_2f98,
        0x7137_4491,
        0xb5c0_fbcf,
        0xe9b5_dba5,
        0x3956_c25b,
        0x59f1_11f1,
        0x923f_82a4,
        0xab1c_5ed5,
        0xd807_aa98,
        0x1283_5b01,
        0x2431_85be,
        0x550c_7dc3,
        0x72be_5d74,
        0x80de_b1fe,
        0x9bdc_06a7,
        0xc19b_f174,
        0xe49b_69c1,
        0xefbe_4786,
        0x0fc1_9dc6,
        0x240c_a1cc,
        0x2de9_2c6f,
        0x4a74_84aa,
        0x5cb0_a9dc,
        0x76f9_88da,
        0x983e_5152,
        0xa831_c66d,
        0xb003_27c8,
        0xbf59_7fc7,
        0xc6e0_0bf3,
        0xd5a7_9147,
        0x06ca_6351,
        0x1429_2967,
        0x27b7_0a85,
        0x2e1b_2138,
        0x4d2c_6dfc,
        0x5338_0d13,
        0x650a_7354,
        0x766a_0abb,
        0x81c2_c92e,
        0x9272_2c85,
        0xa2bf_e8a1,
        0xa81a_664b,
        0xc24b_8b70,
        0xc76c_51a3,
        0xd192_e819,
        0xd699_0624,
        0xf40e_3585,
        0x106a_a070,
        0x19a4_c116,
        0x1e37_6c08,
        0x2748_774c,
        0x34b0_bcb5,
        0x391c_0cb3,
        0x4ed8_aa4a,
        0x5b9c_ca4f,
        0x682e_6ff3,
        0x748f_82ee,
        0x78a5_636f,
        0x84c8_7814,
        0x8cc7_0208,
        0x90be_fffa,
        0xa450_6ceb,
        0xbef9_a3f7,
        0xc671_78f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09_e667,
        0xbb67_ae85,
        0x3c6e_f372,
        0xa54f_f53a,
        0x510e_527f,
        0x9b05_688c,
        0x1f83_d9ab,
        0x5be0_cd19,
    ];
    let bit_len = u64::try_from(data.len())
        .unwrap_or(u64::MAX)
        .wrapping_mul(8);
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut hex = String::with_capacity(64);
    for x in h {
        let _ = write!(hex, "{x:08x}");
    }
    hex
}

// ---------------------------------------------------------------------------------------------
// carbon-cache

/// carbon-cache (`carbon-cache --nodaemon start`) with a private `carbon.conf`: plaintext on
/// 127.0.0.1 over TCP and UDP on the same port, pickle and cache-query on two more TCP ports,
/// `ENABLE_TAGS = False` (no graphite-web to talk to), `TAG_HASH_FILENAMES = False` (readable
/// `_tagged/` file names), one schema `retentions = 1s:1h`, `MAX_CACHE_SIZE = inf`,
/// `WHISPER_AUTOFLUSH`, `LOG_CREATES`. Storage and logs live in the private temp dir.
///
/// With `--nodaemon` carbon logs everything (console, listener, creates, updates) to its
/// stdout, which goes to `carbon-<n>.out` in the temp dir (one file per process, `n` counting
/// restarts); `LOG_DIR` stays empty but is read too.
#[derive(Debug)]
pub(crate) struct Carbon {
    // Field order is drop order: the process stops before the temp dir goes.
    daemon: Daemon,
    program: PathBuf,
    whisper_fetch: PathBuf,
    line_port: u16,
    pickle_port: u16,
    query_port: u16,
    /// `TAG_HASH_FILENAMES` in its config.
    tag_hash_filenames: bool,
    config_path: PathBuf,
    pid_path: PathBuf,
    /// stdout/stderr files of every carbon process started so far, oldest first.
    outputs: Vec<PathBuf>,
    dir: TempDir,
}

impl Carbon {
    /// Starts carbon-cache and waits until all its listeners accept (about 0.5 s).
    ///
    /// # Errors
    ///
    /// When carbon or whisper-fetch is not installed, or carbon did not come up in 3 attempts
    /// with fresh ports; the error message includes its log.
    pub(crate) fn start() -> io::Result<Self> {
        Self::start_with_tag_hash_filenames(false)
    }

    /// As [`start`](Self::start), with `TAG_HASH_FILENAMES = hashed` (`true` is carbon's own
    /// default: tagged series are stored under a hash of their name, see
    /// [`wsp_relative_path_with`]; [`series`](Self::series) then lists those hashes).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub(crate) fn start_with_tag_hash_filenames(hashed: bool) -> io::Result<Self> {
        if let Some(why) = carbon_missing() {
            return Err(not_installed("carbon-cache", &why));
        }
        let program = find_program("carbon-cache")
            .ok_or_else(|| not_installed("carbon-cache", "not on PATH"))?;
        let whisper_fetch = find_program("whisper-fetch")
            .ok_or_else(|| not_installed("whisper-fetch", "not on PATH"))?;
        with_retries(|| Self::try_start(&program, &whisper_fetch, hashed))
    }

    fn try_start(program: &Path, whisper_fetch: &Path, hashed: bool) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("carbon-").tempdir()?;
        let line_port = free_port(true, &[])?;
        let pickle_port = free_tcp_port(&[line_port])?;
        let query_port = free_tcp_port(&[line_port, pickle_port])?;
        let d = path_str(dir.path())?.to_owned();
        let config_path = dir.path().join("carbon.conf");
        fs::write(
            &config_path,
            format!(
                "[cache]
STORAGE_DIR    = {d}/storage/
LOCAL_DATA_DIR = {d}/storage/whisper/
WHITELISTS_DIR = {d}/storage/lists/
CONF_DIR       = {d}/
LOG_DIR        = {d}/log/
PID_DIR        = {d}/
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = 10000
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line_port}
ENABLE_UDP_LISTENER = True
UDP_RECEIVER_INTERFACE = 127.0.0.1
UDP_RECEIVER_PORT = {line_port}
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle_port}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query_port}
WHISPER_AUTOFLUSH = True
LOG_CREATES = True
LOG_LISTENER_CONN_SUCCESS = False
CARBON_METRIC_INTERVAL = 0
ENABLE_TAGS = False
TAG_HASH_FILENAMES = {hashed}
",
                hashed = if hashed { "True" } else { "False" },
            ),
        )?;
        fs::write(
            dir.path().join("storage-schemas.conf"),
            "[all]\npattern = .*\nretentions = 1s:1h\n",
        )?;
        // An empty aggregation config silences "storage-aggregation.conf not found".
        fs::write(dir.path().join("storage-aggregation.conf"), "")?;
        let pid_path = dir.path().join("carbon.pid");
        let output = dir.path().join("carbon-0.out");
        let daemon = spawn_carbon(program, &config_path, &pid_path, dir.path(), &output)?;
        let mut carbon = Self {
            daemon,
            program: program.to_owned(),
            whisper_fetch: whisper_fetch.to_owned(),
            line_port,
            pickle_port,
            query_port,
            tag_hash_filenames: hashed,
            config_path,
            pid_path,
            outputs: vec![output],
            dir,
        };
        carbon.wait_ready()?;
        Ok(carbon)
    }

    /// Ready = the line port accepts TCP and is bound for UDP, the pickle and query ports
    /// accept TCP, and the process is alive.
    fn wait_ready(&mut self) -> io::Result<()> {
        wait_ready(
            self,
            "carbon-cache",
            POLL,
            |c| &mut c.daemon,
            |c| {
                Ok(tcp_accepts(c.pickle_port)
                    && tcp_accepts(c.line_port)
                    && tcp_accepts(c.query_port)
                    && udp_port_bound(c.line_port) != Some(false))
            },
            Self::log,
        )
    }

    /// Stops carbon gracefully (SIGTERM: it writes its cache out first; takes ~1–2 s; SIGKILL
    /// after 5 s), then starts it again with the same config, ports and storage dir and waits
    /// until it is ready. Points carbon had received before the stop are on disk afterwards.
    /// [`log`](Self::log) covers every process since [`start`](Self::start), oldest first.
    ///
    /// # Errors
    ///
    /// When carbon does not come back up (e.g. someone else took a port in between; 3
    /// attempts). The value then has no running carbon, but can still be read and restarted.
    pub(crate) fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.start_again()
    }

    /// Stops carbon gracefully, as [`restart`](Self::restart) does, and leaves it stopped:
    /// its ports refuse connections until [`start_again`](Self::start_again). Points carbon
    /// had received are on disk afterwards and can still be read.
    pub(crate) fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts carbon again after [`stop`](Self::stop) (the second half of
    /// [`restart`](Self::restart)): same config, ports and storage dir; waits until it is
    /// ready.
    ///
    /// # Errors
    ///
    /// As [`restart`](Self::restart).
    pub(crate) fn start_again(&mut self) -> io::Result<()> {
        self.daemon.stop();
        let mut last = None;
        for attempt in 0..START_ATTEMPTS {
            if attempt > 0 {
                thread::sleep(Duration::from_millis(200));
            }
            // carbon refuses to start while the pid file names a live process; after a
            // SIGKILL the file is stale.
            let _ = fs::remove_file(&self.pid_path);
            let output = self
                .dir
                .path()
                .join(format!("carbon-{}.out", self.outputs.len()));
            self.outputs.push(output.clone());
            let started = spawn_carbon(
                &self.program,
                &self.config_path,
                &self.pid_path,
                self.dir.path(),
                &output,
            );
            match started {
                Ok(daemon) => self.daemon = daemon,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            }
            match self.wait_ready() {
                Ok(()) => return Ok(()),
                Err(e) => {
                    self.daemon.stop();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no restart attempt was made")))
    }

    /// Plaintext (`name value timestamp\n`) over TCP and UDP: same port number for both.
    pub(crate) fn line_addr(&self) -> SocketAddr {
        loopback(self.line_port)
    }

    /// Pickle receiver: frames of a 4-byte big-endian length and a pickled list of
    /// `(path, (timestamp, value))`.
    pub(crate) fn pickle_addr(&self) -> SocketAddr {
        loopback(self.pickle_port)
    }

    /// Carbon's cache-query port (pickle request/response protocol, used by graphite-web).
    pub(crate) fn query_addr(&self) -> SocketAddr {
        loopback(self.query_port)
    }

    /// The private temp dir (config, pid file, stdout logs, storage).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The whisper root (`storage/whisper` in the temp dir).
    pub(crate) fn whisper_dir(&self) -> PathBuf {
        self.dir.path().join("storage").join("whisper")
    }

    /// The process id of the current carbon-cache.
    pub(crate) fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The whisper file carbon stores `series` in (see [`wsp_relative_path_with`], for this
    /// carbon's `TAG_HASH_FILENAMES`); it need not exist yet.
    pub(crate) fn wsp_path(&self, series: &str) -> PathBuf {
        self.whisper_dir()
            .join(wsp_relative_path_with(series, self.tag_hash_filenames))
    }

    /// Every whisper file carbon has written, relative to its whisper dir, sorted.
    pub(crate) fn wsp_files(&self) -> Vec<PathBuf> {
        let root = self.whisper_dir();
        let mut files = Vec::new();
        walk_wsp(&root, &mut files);
        let mut out: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.strip_prefix(&root).ok().map(Path::to_path_buf))
            .collect();
        out.sort();
        out
    }

    /// Points stored for `series` (plain `a.b.c` or tagged `name;k=v;...`, tags in any order)
    /// over the last hour, as `(timestamp, value)` in time order, read with `whisper-fetch`;
    /// empty slots (`None`) are left out. Empty when the file does not exist (yet) or cannot
    /// be read. Only what carbon's writer has flushed is seen, not its in-memory cache.
    pub(crate) fn points(&self, series: &str) -> Vec<(u64, f64)> {
        self.points_at(&self.wsp_path(series))
    }

    /// As [`points`](Self::points), for a whisper file given by its path (absolute, or
    /// relative to the whisper dir, as [`wsp_files`](Self::wsp_files) lists them).
    pub(crate) fn points_at(&self, file: &Path) -> Vec<(u64, f64)> {
        let file = self.whisper_dir().join(file);
        if !file.is_file() {
            return Vec::new();
        }
        let from = unix_now().saturating_sub(FETCH_WINDOW_SECS - 1);
        let Ok(out) = Command::new(&self.whisper_fetch)
            .arg(format!("--from={from}"))
            .arg(&file)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        else {
            return Vec::new();
        };
        if !out.status.success() {
            return Vec::new();
        }
        parse_whisper_fetch(&String::from_utf8_lossy(&out.stdout))
    }

    /// Polls [`points`](Self::points) until `pred` holds on them or `timeout` passes (carbon's
    /// writer drains about once a second, so allow a few seconds); returns the last points read.
    pub(crate) fn wait_for_points(
        &self,
        series: &str,
        timeout: Duration,
        pred: impl Fn(&[(u64, f64)]) -> bool,
    ) -> Vec<(u64, f64)> {
        poll_read(timeout, || self.points(series), |points| pred(points))
    }

    /// Every series carbon has created a whisper file for, sorted: plain ones as `a.b.c`,
    /// tagged ones by their normalised name recovered from the readable file name
    /// (`_tagged/xxx/yyy/readable_DOT_tagged;env=prod.wsp` → `readable.tagged;env=prod`).
    /// Quirk: a tagged name that itself contained `_DOT_` is reported with a `.` there.
    pub(crate) fn series(&self) -> Vec<String> {
        let root = self.whisper_dir();
        let mut files = Vec::new();
        walk_wsp(&root, &mut files);
        let mut out: Vec<String> = files
            .iter()
            .filter_map(|f| {
                let rel = f.strip_prefix(&root).ok()?;
                let parts: Vec<&str> = rel.iter().map(|c| c.to_str()).collect::<Option<_>>()?;
                let (last, dirs) = parts.split_last()?;
                let stem = last.strip_suffix(".wsp")?;
                if dirs.len() == 3 && dirs[0] == "_tagged" && stem.contains(';') {
                    Some(stem.replace("_DOT_", "."))
                } else {
                    let mut name = dirs.join(".");
                    if !name.is_empty() {
                        name.push('.');
                    }
                    name.push_str(stem);
                    Some(name)
                }
            })
            .collect();
        out.sort();
        out
    }

    /// Log entries (a timestamped line plus any continuation lines, such as a traceback's)
    /// about input carbon refused or failed on: `invalid line`, `invalid pickle`,
    /// `Error decoding pickle`, `unsafe`, `invalid segment`, `Unhandled Error`, `Traceback`,
    /// and failures to store a point: `Error creating`, `Error writing`, `Errno` (such as
    /// `[Errno 36] File name too long`).
    pub(crate) fn log_errors(&self) -> Vec<String> {
        const MARKS: [&str; 10] = [
            "invalid line",
            "invalid pickle",
            "Error decoding pickle",
            "unsafe",
            "invalid segment",
            "Unhandled Error",
            "Traceback",
            "Error creating",
            "Error writing",
            "Errno",
        ];
        log_entries(&self.log())
            .into_iter()
            .filter(|e| MARKS.iter().any(|m| e.contains(m)))
            .collect()
    }

    /// Everything carbon logged: each process's stdout/stderr (oldest first), then any files
    /// under its `LOG_DIR` (empty with `--nodaemon`).
    pub(crate) fn log(&self) -> String {
        let mut text = String::new();
        for (i, output) in self.outputs.iter().enumerate() {
            if i > 0 {
                let _ = writeln!(text, "--- carbon-cache process {i} (after restart) ---");
            }
            let part = read_text(output);
            text.push_str(&part);
            if !part.is_empty() && !part.ends_with('\n') {
                text.push('\n');
            }
        }
        let mut logs: Vec<PathBuf> = fs::read_dir(self.dir.path().join("log"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file())
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        for file in logs {
            let _ = writeln!(text, "--- {} ---", file.display());
            text.push_str(&read_text(&file));
        }
        text
    }
}

fn spawn_carbon(
    program: &Path,
    config: &Path,
    pid_file: &Path,
    dir: &Path,
    output: &Path,
) -> io::Result<Daemon> {
    let config_arg = PathBuf::from(format!("--config={}", path_str(config)?));
    let pid_arg = PathBuf::from(format!("--pidfile={}", path_str(pid_file)?));
    Daemon::spawn(
        program,
        &[
            &config_arg,
            &pid_arg,
            Path::new("--nodaemon"),
            Path::new("start"),
        ],
        dir,
        output,
    )
}

/// `(timestamp, value)` from `whisper-fetch` output (`ts\tvalue` per line, `None` for empty
/// slots, which are skipped).
pub(crate) fn parse_whisper_fetch(text: &str) -> Vec<(u64, f64)> {
    text.lines()
        .filter_map(|l| {
            let (ts, value) = l.split_once('\t')?;
            let value = value.trim();
            if value == "None" {
                return None;
            }
            Some((ts.trim().parse().ok()?, value.parse().ok()?))
        })
        .collect()
}

/// Every `*.wsp` file under `dir`, recursively.
fn walk_wsp(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk_wsp(&path, out),
            Ok(t) if t.is_file() && path.extension().is_some_and(|e| e == "wsp") => out.push(path),
            _ => {}
        }
    }
}

/// Whether `line` starts with carbon's log timestamp `DD/MM/YYYY HH:MM:SS :: `.
fn starts_with_log_stamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() >= 23
        && b[..19].iter().enumerate().all(|(i, c)| match i {
            2 | 5 => *c == b'/',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            _ => c.is_ascii_digit(),
        })
        && &b[19..23] == b" :: "
}

/// Splits a carbon log into entries: a timestamped line plus the lines up to the next
/// timestamped one (tracebacks, Python warnings). Text before the first stamp is its own entry.
fn log_entries(log: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    for line in log.lines() {
        match entries.last_mut() {
            Some(last) if !starts_with_log_stamp(line) && !line.starts_with("--- ") => {
                last.push('\n');
                last.push_str(line);
            }
            _ => entries.push(line.to_owned()),
        }
    }
    entries
}

// ---------------------------------------------------------------------------------------------
// carbon-c-relay

/// carbon-c-relay 3.7.3 listening for graphite plaintext on 127.0.0.1 (TCP and UDP on the same
/// port), writing every received line to a capture file and forwarding it over TCP to a
/// carbon line port. Its self-statistics go to `/dev/null` (otherwise it would send
/// `carbon.relays.<host>.*` series every 60 s). Not a validator: it forwards junk lines too.
#[derive(Debug)]
pub(crate) struct CarbonRelay {
    // Field order is drop order: the process stops before the temp dir goes.
    daemon: Daemon,
    program: PathBuf,
    config_path: PathBuf,
    /// Whether readiness waits for the UDP listener too.
    udp: bool,
    port: u16,
    capture_path: PathBuf,
    log_path: PathBuf,
    output_path: PathBuf,
    dir: TempDir,
}

impl CarbonRelay {
    /// Starts carbon-c-relay forwarding to `carbon_line` (a carbon plaintext TCP address, see
    /// [`Carbon::line_addr`]) and waits until it listens (about 0.1 s). Carbon need not be up:
    /// the relay queues and reconnects.
    ///
    /// # Errors
    ///
    /// When carbon-c-relay is not installed or did not come up in 3 attempts with fresh ports;
    /// the error message includes its log.
    pub(crate) fn start(carbon_line: SocketAddr) -> io::Result<Self> {
        if let Some(why) = relay_missing() {
            return Err(not_installed("carbon-c-relay", &why));
        }
        let program = find_program("carbon-c-relay")
            .ok_or_else(|| not_installed("carbon-c-relay", "not on PATH"))?;
        let target = match carbon_line {
            SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
            SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
        };
        with_retries(|| {
            Self::try_start(&program, carbon_line.port(), true, |port, capture| {
                Ok(format!(
                    "listen
  type linemode
    127.0.0.1:{port} proto tcp
    127.0.0.1:{port} proto udp
  ;
cluster capture file {capture} ;
cluster carbon forward {target} proto tcp ;
cluster nowhere file /dev/null ;
statistics submit every 3600 seconds send to nowhere stop ;
match * send to capture carbon ;
",
                    capture = path_str(capture)?,
                ))
            })
        })
    }

    /// Starts carbon-c-relay with the configuration `config(port)` returns for a free
    /// loopback port `port` (TCP only: the config need not listen on UDP), and waits until it
    /// listens on `port`. Nothing is captured: [`captured_lines`](Self::captured_lines) stays
    /// empty unless the config writes to the capture file itself.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub(crate) fn start_with_config(config: impl Fn(u16) -> String) -> io::Result<Self> {
        if let Some(why) = relay_missing() {
            return Err(not_installed("carbon-c-relay", &why));
        }
        let program = find_program("carbon-c-relay")
            .ok_or_else(|| not_installed("carbon-c-relay", "not on PATH"))?;
        with_retries(|| Self::try_start(&program, 0, false, |port, _| Ok(config(port))))
    }

    /// One start attempt on a fresh port (never `avoid`), with the config
    /// `config(port, capture_path)`; ready once TCP accepts (and UDP is bound, with `udp`).
    fn try_start(
        program: &Path,
        avoid: u16,
        udp: bool,
        config: impl Fn(u16, &Path) -> io::Result<String>,
    ) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("carbon-relay-").tempdir()?;
        let port = free_port(true, &[avoid])?;
        let capture_path = dir.path().join("out.txt");
        let log_path = dir.path().join("relay.log");
        let output_path = dir.path().join("relay.out");
        let config_path = dir.path().join("relay.conf");
        fs::write(&config_path, config(port, &capture_path)?)?;
        let daemon = spawn_relay(program, &config_path, &log_path, dir.path(), &output_path)?;
        let mut relay = Self {
            daemon,
            program: program.to_owned(),
            config_path,
            udp,
            port,
            capture_path,
            log_path,
            output_path,
            dir,
        };
        relay.wait_ready()?;
        Ok(relay)
    }

    /// Stops the relay (SIGTERM, SIGKILL after 5 s) and leaves it stopped: its port refuses
    /// connections until [`start_again`](Self::start_again).
    pub(crate) fn stop(&mut self) {
        self.daemon.stop();
    }

    /// Starts the relay again after [`stop`](Self::stop), with the same config and port, and
    /// waits until it listens. Its log continues in the same file; stdout/stderr start afresh.
    ///
    /// # Errors
    ///
    /// When it does not come back up (e.g. someone else took the port in between).
    pub(crate) fn start_again(&mut self) -> io::Result<()> {
        self.daemon.stop();
        self.daemon = spawn_relay(
            &self.program,
            &self.config_path,
            &self.log_path,
            self.dir.path(),
            &self.output_path,
        )?;
        self.wait_ready()
    }

    /// Ready = `startup sequence complete` logged, TCP accepts, UDP bound (unless the config
    /// listens on TCP only), process alive.
    fn wait_ready(&mut self) -> io::Result<()> {
        wait_ready(
            self,
            "carbon-c-relay",
            POLL,
            |r| &mut r.daemon,
            |r| {
                Ok(read_text(&r.log_path).contains("startup sequence complete")
                    && tcp_accepts(r.port)
                    && (!r.udp || udp_port_bound(r.port) != Some(false)))
            },
            Self::log,
        )
    }

    /// Where to send graphite plaintext: TCP and UDP on the same port.
    pub(crate) fn addr(&self) -> SocketAddr {
        loopback(self.port)
    }

    /// The private temp dir (config, log, capture file).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of carbon-c-relay.
    pub(crate) fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// The complete lines the relay has written to its capture file so far, as relayed
    /// (`name value timestamp`; the relay rewrites e.g. `a..b.` to `a.b`). The relay writes
    /// with a short delay: poll with [`wait_for_captured`](Self::wait_for_captured).
    pub(crate) fn captured_lines(&self) -> Vec<String> {
        complete_lines(&read_text(&self.capture_path))
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// Polls [`captured_lines`](Self::captured_lines) until `pred` holds or `timeout` passes;
    /// returns the last lines read.
    pub(crate) fn wait_for_captured(
        &self,
        timeout: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        poll_read(timeout, || self.captured_lines(), |lines| pred(lines))
    }

    /// The relay's log file followed by its stdout/stderr.
    pub(crate) fn log(&self) -> String {
        format!(
            "{}--- stdout/stderr ---\n{}",
            read_text(&self.log_path),
            read_text(&self.output_path)
        )
    }
}

/// Runs carbon-c-relay with `config`, logging to `log` (`-l`, appended) and its
/// stdout/stderr to `output`.
fn spawn_relay(
    program: &Path,
    config: &Path,
    log: &Path,
    dir: &Path,
    output: &Path,
) -> io::Result<Daemon> {
    Daemon::spawn(
        program,
        &[
            Path::new("-f"),
            config,
            Path::new("-s"),
            Path::new("-l"),
            log,
        ],
        dir,
        output,
    )
}
