//! Process and port plumbing shared by the receiver harnesses (`receivers.rs`, `carbon.rs`):
//! finding installed programs, skipping or failing when they are missing, running a receiver
//! as a child process that is stopped by PID when dropped (SIGTERM, then SIGKILL if it has not
//! exited after 5 s), free loopback ports, readiness polling and sending test traffic.
//!
//! Not used by test files directly: each harness declares it with
//! `#[path = "process.rs"] mod process;` and re-exports what its tests use.
#![allow(dead_code, reason = "each harness uses a different subset")]

use std::env;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long a receiver may take to come up before the attempt counts as failed.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How many times a receiver is started with fresh ports before `start` gives up.
pub(crate) const START_ATTEMPTS: usize = 3;
/// How long a receiver gets after SIGTERM before it is killed with SIGKILL (carbon needs ~1–2 s
/// to flush its cache, carbon-c-relay ~2 s to drain its queues).
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often [`Daemon::stop`] looks whether the process has exited after SIGTERM.
const STOP_POLL: Duration = Duration::from_millis(20);

pub(crate) const INSTALL_HINT: &str =
    "run `scripts/install-receivers.sh` (as root) to install them";

// ---------------------------------------------------------------------------------------------
// Availability

/// True when running under CI: the environment variable `CI` is set, non-empty and not `false`.
pub(crate) fn is_ci() -> bool {
    env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false")
}

/// `true` when `missing` is `None`. Otherwise returns `false` (the caller skips the test) after
/// printing how to install `what`, except under CI (see [`is_ci`]), where it panics.
///
/// # Panics
///
/// Under CI when `missing` is `Some`.
#[allow(
    clippy::print_stderr,
    reason = "tells the person running the tests locally why a test did nothing"
)]
pub(crate) fn require(what: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else { return true };
    assert!(
        !is_ci(),
        "{what} is not installed ({why}); CI must {INSTALL_HINT} before running the tests"
    );
    eprintln!("SKIPPED: {what} is not installed ({why}); {INSTALL_HINT}");
    false
}

/// Looks `name` up on PATH, then in the usual system directories, sbin ones included
/// (collectd lives in /usr/sbin, which is not on every user's PATH).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(
            [
                "/usr/local/bin",
                "/usr/bin",
                "/usr/local/sbin",
                "/usr/sbin",
                "/sbin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

pub(crate) fn not_installed(what: &str, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{what} is not installed ({why}); {INSTALL_HINT}"),
    )
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// A child process that is stopped by PID when dropped: SIGTERM, up to [`STOP_TIMEOUT`] to exit,
/// then SIGKILL; always reaped.
#[derive(Debug)]
pub(crate) struct Daemon {
    child: Child,
}

impl Daemon {
    /// Starts `program` with `args` in `cwd`, stdin from /dev/null, stdout and stderr to
    /// `output` (truncated).
    pub(crate) fn spawn(
        program: &Path,
        args: &[&Path],
        cwd: &Path,
        output: &Path,
    ) -> io::Result<Self> {
        let out = File::create(output)?;
        let err = out.try_clone()?;
        let child = Command::new(program)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()?;
        Ok(Self { child })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the process has exited.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown state ({e})")),
        }
    }

    /// SIGTERM, up to [`STOP_TIMEOUT`] to exit, then SIGKILL; always reaped. Does nothing when
    /// the process has already exited (and been reaped).
    pub(crate) fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let pid = self.child.id().to_string();
        let termed = Command::new("kill")
            .args(["-TERM", &pid])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if self.exited().is_some() {
                    return;
                }
                thread::sleep(STOP_POLL);
            }
        }
        // Still running (or SIGTERM could not be sent): SIGKILL, then reap.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits up to [`START_TIMEOUT`] for a receiver to come up, looking every `poll`: fails with
/// its log (`log(state)`) as soon as its process (`daemon(state)`) has exited or
/// `ready(state)` gives `Err(why)`, succeeds once `ready(state)` gives `Ok(true)`.
///
/// # Errors
///
/// When the process exits, `ready` fails, or the timeout passes; the message names `what` and
/// includes the log.
pub(crate) fn wait_ready<T: ?Sized>(
    state: &mut T,
    what: &str,
    poll: Duration,
    daemon: fn(&mut T) -> &mut Daemon,
    mut ready: impl FnMut(&mut T) -> Result<bool, String>,
    log: impl Fn(&T) -> String,
) -> io::Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = daemon(state).exited() {
            return Err(start_error(
                what,
                &format!("exited with {status}"),
                &log(state),
            ));
        }
        match ready(state) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(why) => return Err(start_error(what, &why, &log(state))),
        }
        if Instant::now() >= deadline {
            return Err(start_error(what, "not ready in time", &log(state)));
        }
        thread::sleep(poll);
    }
}

pub(crate) fn start_error(what: &str, why: &str, log: &str) -> io::Error {
    io::Error::other(format!(
        "{what} did not start: {why}\n--- its log ---\n{log}"
    ))
}

/// Runs `attempt` up to [`START_ATTEMPTS`] times (each with new ports); returns the first
/// success or the last error.
pub(crate) fn with_retries<T>(mut attempt: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut last = None;
    for _ in 0..START_ATTEMPTS {
        match attempt() {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no start attempt was made")))
}

/// Polls `pred` every `poll` until it holds or `timeout` has passed; returns its last result.
pub(crate) fn poll_until(
    poll: Duration,
    timeout: Duration,
    mut pred: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(poll);
    }
}

/// Reads a value with `read` every `poll` until `done` holds on it or `timeout` has passed;
/// returns the last value read.
pub(crate) fn poll_read<T>(
    poll: Duration,
    timeout: Duration,
    mut read: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let value = read();
        if done(&value) || Instant::now() >= deadline {
            return value;
        }
        thread::sleep(poll);
    }
}

// ---------------------------------------------------------------------------------------------
// Ports

pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// A port that is free on 127.0.0.1 for UDP and (if `tcp_too`) also for TCP, different from
/// every port in `avoid`. The probe sockets are closed before returning, so the port can be
/// taken by someone else before the receiver binds it: the start functions retry on that.
pub(crate) fn free_port(tcp_too: bool, avoid: &[u16]) -> io::Result<u16> {
    for _ in 0..50 {
        let udp = UdpSocket::bind(loopback(0))?;
        let port = udp.local_addr()?.port();
        if avoid.contains(&port) {
            continue;
        }
        if !tcp_too || TcpListener::bind(loopback(port)).is_ok() {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "found no port free for both UDP and TCP on 127.0.0.1",
    ))
}

/// A TCP port free on 127.0.0.1, different from every port in `avoid`.
pub(crate) fn free_tcp_port(avoid: &[u16]) -> io::Result<u16> {
    for _ in 0..50 {
        let port = TcpListener::bind(loopback(0))?.local_addr()?.port();
        if !avoid.contains(&port) {
            return Ok(port);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "found no free TCP port on 127.0.0.1",
    ))
}

/// Whether some socket is bound to UDP 127.0.0.1:`port`, from /proc/net/udp. `None` when that
/// file cannot be read (then the caller relies on its other checks).
pub(crate) fn udp_port_bound(port: u16) -> Option<bool> {
    let table = fs::read_to_string("/proc/net/udp").ok()?;
    let wanted = format!("0100007F:{port:04X}");
    Some(
        table
            .lines()
            .skip(1)
            .any(|l| l.split_whitespace().nth(1) == Some(wanted.as_str())),
    )
}

/// Whether 127.0.0.1:`port` accepts a TCP connection within 200 ms.
pub(crate) fn tcp_accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&loopback(port), Duration::from_millis(200)).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Files

/// The file's text (lossy UTF-8), empty when it does not exist yet.
pub(crate) fn read_text(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The complete lines of a file that another process may be appending to: an unterminated last
/// line is left out, so a half-written line is never seen. `\r` is kept (only `\n` separates).
pub(crate) fn complete_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    lines.pop(); // "" after a final '\n', or a partial line
    lines
}

pub(crate) fn path_str(p: &Path) -> io::Result<&str> {
    p.to_str().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("temp path is not UTF-8: {}", p.display()),
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Sending

/// Sends each item as one UDP datagram to `addr` from a fresh socket bound to 127.0.0.1.
///
/// # Errors
///
/// When binding or sending fails.
pub(crate) fn send_udp(addr: SocketAddr, datagrams: &[&[u8]]) -> io::Result<()> {
    let socket = UdpSocket::bind(loopback(0))?;
    for d in datagrams {
        socket.send_to(d, addr)?;
    }
    Ok(())
}

/// Writes `data` to a new TCP connection to `addr` and closes it.
///
/// # Errors
///
/// When connecting or writing fails.
pub(crate) fn send_tcp(addr: SocketAddr, data: &[u8]) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.write_all(data)?;
    stream.flush()?;
    Ok(())
}
