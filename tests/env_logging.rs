//! `from_env` against the real process environment: the one info line that says what it
//! chose and which variables it ignored, and the `STATSD_ENABLED` off switch through
//! `install`.
//!
//! Each test runs itself again as a child process with the variables set (so the test never
//! changes its own environment, and the child may install a global recorder); the child
//! captures its events with a thread-local `tracing` subscriber, as tests/logging.rs does
//! with a global one.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup must fail the test loudly"
)]

#[path = "support/log_capture.rs"]
mod log_capture;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use log_capture::{Capture, shown};
use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterStats};

/// Set in the child, to the name of the test it runs.
const CHILD: &str = "ENV_LOGGING_CHILD";

/// Runs `f` with events captured; returns its result and the lines shown (INFO and above).
fn captured<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    let capture = Capture::default();
    let result = tracing::subscriber::with_default(capture.clone(), f);
    let lines = shown(&capture.take())
        .into_iter()
        .map(|e| e.text.clone())
        .collect();
    (result, lines)
}

/// In the parent: runs test `name` again in a child with `vars` set and checks it passed.
/// In the child: `true`, so the test runs its child half.
fn in_child(name: &str, vars: &[(&str, &str)]) -> bool {
    if std::env::var(CHILD).as_deref() == Ok(name) {
        return true;
    }
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, name);
    // Only `vars`: none of the runner's own.
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy();
        if ["DD_", "DATADOG_", "STATSD_", "GRAPHITE_"]
            .iter()
            .any(|p| var.starts_with(p))
        {
            command.env_remove(&*var);
        }
    }
    command.envs(vars.iter().copied());
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "child {name} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The child ran the test, not zero tests.
    assert!(String::from_utf8_lossy(&output.stdout).contains("1 passed"));
    false
}

fn receiver() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let port = socket.local_addr().unwrap().port().to_string();
    (socket, port)
}

#[test]
fn from_env_logs_once_which_protocol_and_endpoint_it_chose_and_what_it_ignored() {
    let (socket, port) = receiver();
    let vars = [
        ("DD_AGENT_HOST", "127.0.0.1"),
        ("DD_DOGSTATSD_PORT", port.as_str()),
        ("DD_TAGS", "team:a"),
        ("STATSD_HOST", "statsd.invalid"),
        ("STATSD_PREFIX", "svc"),
    ];
    if !in_child(
        "from_env_logs_once_which_protocol_and_endpoint_it_chose_and_what_it_ignored",
        &vars,
    ) {
        let mut buf = [0u8; 512];
        let len = socket.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"requests:1|c|#team:a");
        return;
    }
    let (guard, lines) = captured(|| ExporterBuilder::from_env().install().unwrap());
    let port = std::env::var("DD_DOGSTATSD_PORT").unwrap();
    assert_eq!(
        lines,
        [format!(
            "message=metrics exporter configured from the environment; protocol=\"DogStatsD\"; \
             endpoint=udp://127.0.0.1:{port}; from=\"DD_AGENT_HOST, DD_DOGSTATSD_PORT\"; \
             tags_from=\"DD_TAGS\"; also_from=\"none\"; \
             ignored=\"STATSD_HOST (DD_AGENT_HOST wins), STATSD_PREFIX (DD_AGENT_HOST wins)\"; "
        )]
    );
    metrics::counter!("requests").increment(1);
    guard.shutdown().unwrap();
}

#[test]
fn statsd_enabled_off_installs_a_recorder_that_sends_nothing_and_starts_nothing() {
    let (socket, port) = receiver();
    let host = format!("127.0.0.1:{port}");
    let vars = [("STATSD_HOST", host.as_str()), ("STATSD_ENABLED", "Off")];
    if !in_child(
        "statsd_enabled_off_installs_a_recorder_that_sends_nothing_and_starts_nothing",
        &vars,
    ) {
        let mut buf = [0u8; 512];
        assert!(socket.recv(&mut buf).is_err(), "nothing arrives");
        return;
    }
    let (guard, lines) = captured(|| ExporterBuilder::from_env().install().unwrap());
    assert_eq!(
        lines,
        [
            "message=metrics exporter disabled: recording and sending nothing; by=\"STATSD_ENABLED\"; "
        ]
    );
    metrics::counter!("requests").increment(1);
    metrics::histogram!("latency").record(1.0);
    let handle = guard.handle();
    handle.set("users").insert("alice");
    handle.flush().unwrap();
    #[cfg(target_os = "linux")]
    {
        // No flusher thread (`metrics-exporter-flusher`, 15 characters as the kernel keeps it).
        let threads: Vec<String> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).unwrap())
            .collect();
        assert!(
            threads.iter().all(|t| !t.starts_with("metrics-export")),
            "{threads:?}"
        );
    }
    assert_eq!(guard.shutdown(), Ok(ExporterStats::default()));
}

#[test]
fn a_malformed_statsd_enabled_fails_install_naming_the_variable_and_value() {
    if !in_child(
        "a_malformed_statsd_enabled_fails_install_naming_the_variable_and_value",
        &[("STATSD_ENABLED", "disable")],
    ) {
        return;
    }
    let error = ExporterBuilder::from_env().install().unwrap_err();
    assert_eq!(
        error.to_string(),
        "environment variable STATSD_ENABLED=\"disable\": not a switch (true, 1, yes, on; false, 0, no, off)"
    );
}
