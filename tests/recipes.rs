//! The production recipes of `docs/production.md`, run for real.
//!
//! Each test reads the page, takes its `<!-- recipe: NAME -->` blocks, rewrites only
//! addresses, ports and paths (to free loopback ports and temp dirs), runs them against the
//! real receiver (carbon-c-relay in front of carbon-cache, Etsy statsd, a Unix datagram socket
//! standing in for the Datadog Agent) and checks what arrives, the statistics and the log
//! lines the page promises. Where the page configures the exporter through the environment,
//! the test re-executes its own binary with the page's variables (`RECIPE_CHILD` set), as the
//! supervisor would start the service: the child installs the exporter from the environment,
//! takes commands on stdin (`record`, `flush`, which prints its statistics) and stops on
//! `SIGTERM`, sent with the `kill` command, as systemd and Kubernetes do.
//!
//! The page's Rust blocks are compiled as doctests (`src/lib.rs` includes the page as the
//! `production` module); here the child runs the same calls, and the test checks that the
//! page's blocks still make exactly those calls.
#![cfg(unix)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed setup must fail the test loudly"
)]
#![allow(
    clippy::float_cmp,
    reason = "the values are small integers and 42, written and parsed exactly"
)]
#![allow(
    clippy::duplicate_mod,
    reason = "carbon.rs and receivers.rs each load process.rs; it holds no state, only helpers"
)]

#[path = "support/carbon.rs"]
mod carbon;
#[path = "support/receivers.rs"]
mod receivers;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use carbon::{Carbon, CarbonRelay, require_carbon, require_carbon_relay};
use metrics_exporter_statsd_graphite::ExporterBuilder;
use receivers::{EtsyStatsd, require_etsy_statsd};

const MAX: Duration = Duration::from_secs(20);
/// The page, read at run time (not `include_str!`): what is tested is what is on disk.
const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/production.md");
/// Set in the child's environment to the recipe it runs.
const CHILD_MARKER: &str = "RECIPE_CHILD";
/// The test that is the child when re-executed.
const CHILD_TEST: &str = "a_recipe_child_runs_only_when_the_test_binary_is_re_executed";

// ---------------------------------------------------------------------------------------------
// The page

fn page() -> String {
    fs::read_to_string(PAGE).expect("docs/production.md is readable")
}

/// The fenced block right after `<!-- recipe: NAME -->` (its body, without the fences).
fn recipe(name: &str) -> String {
    let page = page();
    let marker = format!("<!-- recipe: {name} -->");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/production.md has no `{marker}`"));
    assert_eq!(
        page.matches(&marker).count(),
        1,
        "`{marker}` appears more than once"
    );
    let rest = page[at + marker.len()..].trim_start();
    assert!(
        rest.starts_with("```"),
        "`{marker}` is not right before a fenced block"
    );
    let body = &rest[rest.find('\n').expect("a fence line") + 1..];
    let end = body.find("\n```").expect("the block is closed");
    body[..=end].to_owned()
}

/// The text quoted after `<!-- log: NAME -->` (the first backtick span following it), with
/// runs of whitespace as one space, split at each `...` (what varies) into the fixed parts.
fn log_fragments(name: &str) -> Vec<String> {
    let page = page();
    let marker = format!("<!-- log: {name} -->");
    let at = page
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/production.md has no `{marker}`"));
    let rest = &page[at + marker.len()..];
    let open = rest.find('`').expect("a quoted log text") + 1;
    let len = rest[open..].find('`').expect("a closed quote");
    let text = rest[open..open + len]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    text.split("...")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `// <what is sent>` comment of the line of a Rust block with `call` (on that line, or
/// alone on the next one): the line the page says the call sends.
fn sent_comment(block: &str, call: &str) -> String {
    let mut lines = block.lines().skip_while(|l| !l.contains(call));
    let line = lines
        .next()
        .unwrap_or_else(|| panic!("the block has no `{call}`:\n{block}"));
    line.split_once("// ")
        .map(|(_, c)| c)
        .or_else(|| lines.next().and_then(|l| l.trim().strip_prefix("// ")))
        .map_or_else(
            || panic!("`{call}` has no `// <what is sent>` comment"),
            |c| c.trim().to_owned(),
        )
}

/// The builder chain of a Rust block, from `ExporterBuilder::` to `.install()`, without
/// whitespace: e.g. `ExporterBuilder::from_env()` or `ExporterBuilder::graphite("...")
/// .with_prefix("myapp")`.
fn builder_chain(block: &str) -> String {
    let start = block.find("ExporterBuilder::").expect("a builder");
    let len = block[start..].find(".install()").expect("install()");
    block[start..start + len]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// What every recipe's `main` must do at the end: wait for SIGTERM, then the final flush.
fn assert_stops_on_sigterm_with_a_final_flush(block: &str) {
    let term = block
        .find("signal(SignalKind::terminate())")
        .expect("the recipe waits for SIGTERM");
    let shutdown = block
        .find("exporter.shutdown_async().await")
        .expect("the recipe shuts the exporter down");
    assert!(term < shutdown, "SIGTERM is awaited before the shutdown");
}

/// The `host:port` token after `keyword` in a carbon-c-relay config.
fn relay_address<'a>(config: &'a str, keyword: &str) -> &'a str {
    let at = config
        .find(keyword)
        .unwrap_or_else(|| panic!("no `{keyword}`"));
    config[at + keyword.len()..]
        .split_whitespace()
        .find(|t| {
            t.rsplit_once(':')
                .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        })
        .unwrap_or_else(|| panic!("no address after `{keyword}`"))
}

/// `KEY = value` settings of an ini-style block.
fn ini(block: &str) -> BTreeMap<String, String> {
    block
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The `- name:` / `value:` pairs of a Deployment's container `env:`.
fn deployment_env(yaml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = None;
    for line in yaml.lines().map(str::trim) {
        if let Some(n) = line.strip_prefix("- name: ") {
            name = Some(n.trim().to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("value: "), name.take()) {
            out.push((n, v.trim().trim_matches('"').to_owned()));
        }
    }
    out.retain(|(n, _)| n.starts_with("DD_"));
    out
}

/// The value of the first `key: value` line of a YAML block.
fn yaml_value<'a>(yaml: &'a str, key: &str) -> &'a str {
    yaml.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .unwrap_or_else(|| panic!("no `{key}`"))
        .trim()
}

// ---------------------------------------------------------------------------------------------
// The child: the service, as the page's Rust blocks write it

/// The recipe's metrics calls, as the page's Rust blocks make them.
fn record(recipe: &str) {
    match recipe {
        "k8s" => {
            metrics::counter!("orders.created", "route" => "/orders").increment(1);
        }
        "systemd" => {
            metrics::counter!("jobs.done").increment(1);
            metrics::histogram!("jobs.duration").record(0.25);
        }
        other => panic!("no recipe {other}"),
    }
}

#[allow(
    clippy::print_stdout,
    reason = "the child reports to the test on stdout"
)]
fn run_child(recipe: &str) {
    tracing::subscriber::set_global_default(LineLog { to_memory: false }).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let builder = match recipe {
            "k8s" => ExporterBuilder::dogstatsd_from_env(),
            _ => ExporterBuilder::from_env(),
        };
        let exporter = builder.install().unwrap();
        let handle = exporter.handle();
        let mut term = signal(SignalKind::terminate()).unwrap();
        let (tx, mut commands) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::stdin().lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        println!("ready");
        let mut open = true;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                command = commands.recv(), if open => match command.as_deref() {
                    Some("record") => {
                        record(recipe);
                        // Acknowledged, so the test's next step (a SIGTERM) cannot overtake it.
                        println!("recorded");
                    }
                    Some("flush") => {
                        let result = handle.flush_async().await;
                        println!("stats {:?} {:?}", result.is_ok(), handle.stats());
                    }
                    Some(other) => panic!("unknown command {other}"),
                    None => open = false,
                },
            }
        }
        let last = exporter.shutdown_async().await;
        println!("final {last:?}");
    });
}

/// Writes every event as `LEVEL field=value; ...`, the message first: to stderr (the child),
/// or to [`MEMORY_LOG`] (the relay test, whose exporter runs in the test process).
struct LineLog {
    to_memory: bool,
}

static MEMORY_LOG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}; ");
        } else {
            let _ = write!(self.0, "{}={value:?}; ", field.name());
        }
    }
}

impl tracing::Subscriber for LineLog {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    #[allow(clippy::print_stderr, reason = "the child's log goes to stderr")]
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let line = format!("{} {}", event.metadata().level(), fields.0);
        if self.to_memory {
            // A failed assertion may have poisoned it; the flusher must still log.
            MEMORY_LOG
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(line);
        } else {
            eprintln!("{line}");
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn a_recipe_child_runs_only_when_the_test_binary_is_re_executed() {
    if let Ok(recipe) = std::env::var(CHILD_MARKER) {
        run_child(&recipe);
    }
}

/// The service process, seen from the test.
struct Service {
    child: Child,
    stdin: ChildStdin,
    stdout: mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
}

impl Service {
    /// Starts the test binary as the service of `recipe`, with exactly `vars` of the
    /// variables the exporter reads (the test's own `DD_*`, `STATSD_*`, ... are removed).
    fn start(recipe: &str, vars: &[(String, String)]) -> Self {
        let mut service = Self::spawn(recipe, vars);
        service.expect("ready");
        service
    }

    /// As [`start`](Self::start), without waiting for the service to be ready.
    fn spawn(recipe: &str, vars: &[(String, String)]) -> Self {
        let stderr = tempfile::NamedTempFile::new().unwrap();
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"]);
        for (key, _) in std::env::vars() {
            if ["DD_", "DATADOG_", "STATSD_", "GRAPHITE_"]
                .iter()
                .any(|p| key.starts_with(p))
            {
                command.env_remove(key);
            }
        }
        command.envs(vars.iter().map(|(k, v)| (k, v)));
        let mut child = command
            .env(CHILD_MARKER, recipe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(stderr.path()).unwrap())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Waits for the service to exit by itself; returns its status and everything it wrote.
    fn exit(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + MAX;
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(Instant::now() < deadline, "the service did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout: Vec<String> = self.stdout.try_iter().collect();
        (exit, format!("{}\n{}", stdout.join("\n"), self.log()))
    }

    /// The next stdout line starting with `prefix` (the rest of it).
    fn expect(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + MAX;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    // The harness's `test NAME ... ` may start the line.
                    let line = line.rsplit(" ... ").next().unwrap_or_default();
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(e) => panic!(
                    "the service printed no `{prefix}` ({e}); its log:\n{}",
                    self.log()
                ),
            }
        }
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").unwrap();
    }

    /// `record`, waiting until the service has recorded: a SIGTERM sent right after a bare
    /// `send` could reach it first (seen in CI: the final flush had nothing to send).
    fn record(&mut self) {
        self.send("record");
        self.expect("recorded");
    }

    /// `flush`, then the statistics the service printed after it.
    fn flush(&mut self) -> (bool, BTreeMap<String, u64>) {
        self.send("flush");
        let line = self.expect("stats ");
        let (ok, stats) = line.split_once(' ').unwrap();
        (ok == "true", parse_stats(stats))
    }

    fn log(&self) -> String {
        fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Asserts that the service logged a line at `level` with every fragment.
    fn assert_logged(&self, level: &str, fragments: &[String]) {
        let lines: Vec<String> = self.log().lines().map(str::to_owned).collect();
        assert_logged(&lines, level, fragments);
    }

    /// Stops the service as systemd and Kubernetes do (`kill -TERM`); returns its final
    /// statistics (from `shutdown_async`, `None` if that failed) and its exit status.
    fn terminate(mut self) -> (Option<BTreeMap<String, u64>>, ExitStatus, String) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -TERM failed");
        let last = self.expect("final ");
        let deadline = Instant::now() + MAX;
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(Instant::now() < deadline, "the service did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let final_stats = last
            .strip_prefix("Ok(")
            .and_then(|s| s.strip_suffix(')'))
            .map(parse_stats);
        (final_stats, exit, self.log())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ExporterStats { flushes: 1, lines_sent: 3, .. }` as a map.
fn parse_stats(debug: &str) -> BTreeMap<String, u64> {
    let inner = debug
        .trim()
        .strip_prefix("ExporterStats {")
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or_else(|| panic!("not ExporterStats: {debug}"));
    inner
        .split(',')
        .filter_map(|f| f.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().parse().unwrap()))
        .collect()
}

/// The counters every recipe promises stay 0 when healthy.
const DROPS: [&str; 9] = [
    "lines_dropped_send",
    "lines_dropped_shutdown",
    "payloads_dropped",
    "lines_dropped_too_long",
    "values_dropped_invalid",
    "values_dropped_unnamed",
    "values_dropped_collision",
    "series_dropped",
    "flush_panics",
];

fn assert_healthy(stats: &BTreeMap<String, u64>, zero_too: &[&str]) {
    for field in DROPS.iter().chain(zero_too) {
        assert_eq!(stats[*field], 0, "{field} in {stats:?}");
    }
    for field in ["flushes", "lines_sent", "payloads_sent", "bytes_sent"] {
        assert!(stats[field] > 0, "{field} in {stats:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The recipes

#[test]
fn the_kubernetes_recipe_delivers_to_the_agents_socket_and_bridges_an_agent_restart() {
    let deployment = recipe("k8s-deployment");
    let rust = recipe("k8s-rust");
    assert_eq!(
        builder_chain(&rust),
        "ExporterBuilder::dogstatsd_from_env()"
    );
    assert_stops_on_sigterm_with_a_final_flush(&rust);
    let expected_line = sent_comment(&rust, "metrics::counter!(\"orders.created\"");
    assert!(
        rust.contains(r#"metrics::counter!("orders.created", "route" => "/orders").increment(1);"#)
    );

    // The socket the pod sees is in the host directory the Agent's socket is in.
    let mount = yaml_value(&deployment, "mountPath:");
    let host = yaml_value(&deployment, "path:").trim_end_matches('/');
    assert_eq!(
        mount, host,
        "the pod mounts the Agent's directory at the same path"
    );
    let vars = deployment_env(&deployment);
    let url = &vars
        .iter()
        .find(|(k, _)| k == "DD_DOGSTATSD_URL")
        .unwrap()
        .1;
    let socket = url
        .strip_prefix("unixgram://")
        .expect("a Unix datagram endpoint");
    let file = socket
        .strip_prefix(&format!("{mount}/"))
        .expect("the socket is in the mounted directory");

    // The Agent: a datagram socket in a temp dir standing for the host directory.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(file);
    let path_text = path.to_str().unwrap().to_owned();
    let rewritten: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.clone(), v.replace(mount, dir.path().to_str().unwrap())))
        .collect();
    let agent = UnixDatagram::bind(&path).unwrap();
    agent.set_read_timeout(Some(MAX)).unwrap();

    let mut service = Service::start("k8s", &rewritten);
    service.record();
    let (ok, stats) = service.flush();
    assert!(ok, "{}", service.log());
    assert_healthy(&stats, &["send_errors", "connects", "lines_possibly_lost"]);
    let startup = [
        log_fragments("startup"),
        vec!["DD_DOGSTATSD_URL".to_owned()],
    ]
    .concat();
    service.assert_logged("INFO", &startup);
    let mut buf = vec![0; 9000];
    let n = agent.recv(&mut buf).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]), expected_line);
    assert_eq!(stats["lines_sent"], 1);

    // The Agent restarts: its socket is gone for a while.
    drop(agent);
    fs::remove_file(&path).unwrap();
    service.record();
    service.record();
    let (_, down) = service.flush();
    assert!(down["send_errors"] > 0, "{down:?}");
    assert_eq!(down["lines_sent"], stats["lines_sent"], "{down:?}");
    let unix_down: Vec<String> = log_fragments("unix-down")
        .iter()
        .map(|f| f.replace("/var/run/datadog/dsd.socket", &path_text))
        .collect();
    service.assert_logged("WARN", &unix_down);

    // Back: what was recorded meanwhile arrives, summed.
    let agent = UnixDatagram::bind(&path).unwrap();
    agent.set_read_timeout(Some(MAX)).unwrap();
    let deadline = Instant::now() + MAX;
    let back = loop {
        std::thread::sleep(Duration::from_millis(300));
        let (_, now) = service.flush();
        if now["lines_sent"] > stats["lines_sent"] || Instant::now() > deadline {
            break now;
        }
    };
    let n = agent.recv(&mut buf).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&buf[..n]),
        expected_line.replacen(":1|c", ":2|c", 1)
    );
    assert_eq!(back["lines_dropped_send"], 0, "{back:?}");
    service.assert_logged("INFO", &log_fragments("up"));

    service.record();
    let (last, exit, log) = service.terminate();
    assert!(exit.success(), "{log}");
    let last = last.unwrap_or_else(|| panic!("the final flush failed: {log}"));
    assert_eq!(last["lines_dropped_shutdown"], 0, "{last:?}");
    assert_eq!(last["lines_sent"], back["lines_sent"] + 1, "{last:?}");
    let n = agent.recv(&mut buf).unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]), expected_line);
}

#[test]
fn the_systemd_recipe_sends_to_statsd_from_its_environment_and_flushes_on_sigterm() {
    if !require_etsy_statsd() {
        return;
    }
    let unit = recipe("systemd-unit");
    let rust = recipe("systemd-rust");
    assert_eq!(builder_chain(&rust), "ExporterBuilder::from_env()");
    assert_stops_on_sigterm_with_a_final_flush(&rust);
    let counter_line = sent_comment(&rust, "metrics::counter!(\"jobs.done\")");
    let timer_line = sent_comment(&rust, "metrics::histogram!(\"jobs.duration\")");
    assert!(rust.contains(r#"metrics::counter!("jobs.done").increment(1);"#));
    assert!(rust.contains(r#"metrics::histogram!("jobs.duration").record(0.25);"#));

    let settings = ini(&unit);
    assert_eq!(settings["KillSignal"], "SIGTERM");
    let stop: u64 = settings["TimeoutStopSec"].parse().unwrap();
    assert!(
        stop > 5,
        "TimeoutStopSec= is longer than the 5 s shutdown timeout"
    );
    let statsd = EtsyStatsd::start().unwrap();
    let rewritten = unit_vars(&unit, statsd.udp_addr().port());
    let var = |name: &str| {
        rewritten
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(var("STATSD_PROTOCOL").as_deref(), Some("udp"));
    assert!(unit.contains("Environment=STATSD_HOST=127.0.0.1\n"));
    let prefix = var("STATSD_PREFIX").unwrap();
    let counter = format!("{prefix}.jobs.done");
    let timer = format!("{prefix}.jobs.duration");

    let mut service = Service::start("systemd", &rewritten);
    service.record();
    let (ok, stats) = service.flush();
    assert!(ok, "{}", service.log());
    assert_healthy(&stats, &["send_errors", "connects", "lines_possibly_lost"]);
    assert_eq!(stats["lines_sent"], 2, "{stats:?}");
    assert_eq!(stats["payloads_sent"], 1, "{stats:?}");
    let startup = [log_fragments("startup"), vec!["STATSD_PORT".to_owned()]].concat();
    service.assert_logged("INFO", &startup);

    // The last interval goes out only with the final flush that SIGTERM starts.
    service.record();
    let (last, exit, log) = service.terminate();
    assert!(exit.success(), "{log}");
    let last = last.unwrap_or_else(|| panic!("the final flush failed: {log}"));
    assert_healthy(&last, &["send_errors", "connects", "lines_possibly_lost"]);
    assert_eq!(last["lines_sent"], 4, "{last:?}");

    assert!(
        statsd.wait_until(MAX, |s| s.counter_total(&counter) >= 2.0),
        "{}",
        statsd.log()
    );
    assert!(statsd.wait_for_next_flush(MAX));
    assert_eq!(statsd.counter_total(&counter), 2.0);
    assert_eq!(statsd.timer_values(&timer), [250.0, 250.0]);
    let mut received = statsd.received_lines();
    received.sort();
    let mut shown = vec![
        counter_line.clone(),
        counter_line,
        timer_line.clone(),
        timer_line,
    ];
    shown.sort();
    assert_eq!(
        received, shown,
        "the lines the page shows, from both flushes"
    );
    assert!(statsd.bad_lines().is_empty());
    drop(statsd);
}

/// The relay recipe's settings, once the page's four blocks are checked to agree: the app
/// sends where the relay listens, the relay forwards where carbon-cache listens, carbon's
/// precision is the flush interval, and the builder has no other setting.
struct RelayRecipe {
    config: String,
    /// The relay's listen address and its forward target, as the page writes them.
    listen: String,
    forward: String,
    prefix: String,
    interval: u64,
    /// Where the page says the counter and the gauge go (`path value <ts>`): path and value.
    counter_sent: (String, f64),
    gauge_sent: (String, f64),
}

/// `path value <ts>` as path and value.
fn path_value(sent: &str) -> (String, f64) {
    let (path, value) = sent.split_once(' ').unwrap();
    (
        path.to_owned(),
        value.trim_end_matches(" <ts>").parse().unwrap(),
    )
}

/// Waits until carbon stores `expected` in `slot` of `path`, and asserts it does.
fn assert_slot(carbon: &Carbon, path: &str, slot: u64, expected: u32, context: &str) {
    let expected = f64::from(expected);
    let at_slot = |p: &[(u64, f64)]| p.iter().find(|p| p.0 == slot).map(|p| p.1);
    let points = carbon.wait_for_points(path, Duration::from_secs(40), |p| {
        at_slot(p) == Some(expected)
    });
    assert_eq!(at_slot(&points), Some(expected), "{points:?}\n{context}");
}

/// What the test process logged so far.
fn memory_log() -> Vec<String> {
    MEMORY_LOG
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

/// Asserts that one of `lines` is at `level` and has every fragment.
fn assert_logged(lines: &[String], level: &str, fragments: &[String]) {
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(level) && fragments.iter().all(|f| l.contains(f))),
        "no {level} line with {fragments:?}: {lines:?}"
    );
}

fn relay_recipe() -> RelayRecipe {
    let relay_conf = recipe("relay-conf");
    let carbon_conf = ini(&recipe("carbon-conf"));
    let schemas = ini(&recipe("carbon-schemas"));
    let rust = recipe("relay-rust");
    assert_stops_on_sigterm_with_a_final_flush(&rust);

    // The builder: exactly the endpoint, prefix and flush interval.
    let chain = builder_chain(&rust);
    let endpoint = chain
        .strip_prefix("ExporterBuilder::graphite(\"tcp://")
        .and_then(|s| s.split_once("\")"))
        .map(|(e, _)| e)
        .expect("a Graphite plaintext builder over TCP");
    let prefix = chain
        .split_once(".with_prefix(\"")
        .and_then(|(_, s)| s.split_once('"'))
        .map(|(p, _)| p)
        .expect("a prefix");
    let interval: u64 = chain
        .split_once(".with_flush_interval(Duration::from_secs(")
        .and_then(|(_, s)| s.split_once(')'))
        .map(|(n, _)| n.parse().unwrap())
        .expect("a flush interval");
    assert_eq!(
        chain,
        format!(
            "ExporterBuilder::graphite(\"tcp://{endpoint}\").with_prefix(\"{prefix}\")\
             .with_flush_interval(Duration::from_secs({interval}))"
        ),
        "the builder has no other setting"
    );
    let counter_sent = sent_comment(&rust, "metrics::counter!(\"orders.created\")");
    let gauge_sent = sent_comment(&rust, "metrics::gauge!(\"queue.depth\")");
    assert!(rust.contains(r#"metrics::counter!("orders.created").increment(1);"#));
    assert!(rust.contains(r#"metrics::gauge!("queue.depth").set(42.0);"#));

    // The three files agree: the app sends where the relay listens, the relay forwards
    // where carbon-cache listens, and carbon's precision is the flush interval.
    let listen = relay_address(&relay_conf, "listen");
    let forward = relay_address(&relay_conf, "forward");
    assert_eq!(
        listen.rsplit_once(':').unwrap().1,
        endpoint.rsplit_once(':').unwrap().1
    );
    assert_eq!(
        forward,
        format!(
            "{}:{}",
            carbon_conf["LINE_RECEIVER_INTERFACE"], carbon_conf["LINE_RECEIVER_PORT"]
        )
    );
    let precision = schemas["retentions"].split(':').next().unwrap();
    assert_eq!(precision, format!("{interval}s"));
    let pattern = schemas["pattern"]
        .trim_start_matches('^')
        .replace("\\.", ".");
    assert!(format!("{prefix}.orders.created").starts_with(&pattern));

    RelayRecipe {
        listen: listen.to_owned(),
        forward: forward.to_owned(),
        config: relay_conf,
        prefix: prefix.to_owned(),
        interval,
        counter_sent: path_value(&counter_sent),
        gauge_sent: path_value(&gauge_sent),
    }
}

/// The unit's `Environment=` variables, with `STATSD_HOST` and `STATSD_PORT` pointed at
/// 127.0.0.1:`port`.
fn unit_vars(unit: &str, port: u16) -> Vec<(String, String)> {
    unit.lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            let v = match k {
                "STATSD_HOST" => "127.0.0.1".to_owned(),
                "STATSD_PORT" => port.to_string(),
                _ => v.to_owned(),
            };
            (k.to_owned(), v)
        })
        .collect()
}

#[test]
fn during_a_statsd_outage_the_systemd_recipe_counts_the_refusals_and_logs_nothing() {
    // A loopback port nobody listens on: the kernel refuses each datagram.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut service = Service::start("systemd", &unit_vars(&recipe("systemd-unit"), port));
    let mut before = BTreeMap::new();
    let mut stats = BTreeMap::new();
    for round in 0..4 {
        service.record();
        let (_, now) = service.flush();
        if round == 0 {
            before = now.clone();
        }
        stats = now;
    }
    // UDP cannot tell: lines still count as sent, and the refusals are counted.
    assert!(stats["lines_sent"] > before["lines_sent"], "{stats:?}");
    assert!(stats["send_errors"] > 0, "{stats:?}");
    assert!(stats["lines_possibly_lost"] > 0, "{stats:?}");
    for field in DROPS {
        assert_eq!(stats[field], 0, "{field} in {stats:?}");
    }
    let log = service.log();
    assert!(
        !log.lines()
            .any(|l| l.starts_with("WARN") || l.starts_with("ERROR")),
        "{log}"
    );
    let (last, exit, log) = service.terminate();
    assert!(exit.success(), "{log}");
    assert!(last.is_some(), "{log}");
}

#[test]
fn a_malformed_variable_in_the_systemd_unit_fails_the_start_naming_the_variable_and_its_value() {
    let unit = recipe("systemd-unit");
    let page = page();
    assert!(page.contains("A malformed variable (`STATSD_PORT=99999`"));
    let mut vars = unit_vars(&unit, 8125);
    for (k, v) in &mut vars {
        if k == "STATSD_PORT" {
            *v = "99999".to_owned();
        }
    }
    let (exit, output) = Service::spawn("systemd", &vars).exit();
    assert!(!exit.success(), "{output}");
    assert!(
        !output.lines().any(|l| l.ends_with("ready")),
        "it never ran: {output}"
    );
    assert!(
        output.contains("STATSD_PORT") && output.contains("99999"),
        "{output}"
    );
}

/// Waits until the clock is away from a slot's last second; returns the carbon slot (the
/// time aligned down to `interval`) a flush started now sends its points to.
fn slot_now(interval: u64) -> u64 {
    while carbon::unix_now() % interval >= interval - 1 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let now = carbon::unix_now();
    now - now % interval
}

/// carbon-cache, the relay with the page's config in front of it, and the page's exporter
/// (built, not started) sending to the relay.
fn relay_setup(
    recipe: &RelayRecipe,
) -> (
    Carbon,
    CarbonRelay,
    metrics_exporter_statsd_graphite::ExporterRecorder,
    metrics_exporter_statsd_graphite::Exporter,
) {
    let carbon = Carbon::start().unwrap();
    let carbon_line = carbon.line_addr().to_string();
    let relay = CarbonRelay::start_with_config(|port| {
        recipe
            .config
            .replace(&recipe.listen, &format!("127.0.0.1:{port}"))
            .replace(&recipe.forward, &carbon_line)
    })
    .unwrap();
    let (recorder, exporter) = ExporterBuilder::graphite(format!("tcp://{}", relay.addr()))
        .with_prefix(&recipe.prefix)
        .with_flush_interval(Duration::from_secs(recipe.interval))
        .build()
        .unwrap();
    (carbon, relay, recorder, exporter)
}

#[test]
fn the_relay_recipe_stores_the_points_hides_a_carbon_restart_and_bridges_a_relay_restart() {
    if !require_carbon() || !require_carbon_relay() {
        return;
    }
    let recipe = relay_recipe();
    let interval = recipe.interval;
    let (mut carbon, relay, recorder, exporter) = relay_setup(&recipe);
    // The only test whose exporter runs in this process: it alone installs a subscriber.
    tracing::subscriber::set_global_default(LineLog { to_memory: true }).unwrap();
    let guard = exporter.start().unwrap();
    let handle = guard.handle();
    let slot_now = || slot_now(interval);
    let count = |n: u32| {
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("orders.created").increment(u64::from(n));
        });
    };
    // Counts `n` and flushes; returns the slot the counter's point goes to.
    let count_and_flush = |n: u32| {
        count(n);
        let slot = slot_now();
        handle.flush().unwrap();
        slot
    };
    metrics::with_local_recorder(&recorder, || {
        metrics::gauge!("queue.depth").set(42.0);
    });
    let mut counted = BTreeMap::new();
    *counted.entry(count_and_flush(1)).or_insert(0_u32) += 1;
    let stats = handle.stats();
    let healthy = (stats.connects, stats.lines_sent, stats.send_errors);
    assert_eq!(healthy, (1, 2, 0), "{stats:?}");
    assert_eq!(stats.resolve_failures, 0, "{stats:?}");
    assert_eq!(
        stats.lines_possibly_lost + stats.lines_dropped_send,
        0,
        "{stats:?}"
    );

    let ((counter_path, counter_value), (gauge_path, gauge_value)) =
        (recipe.counter_sent, recipe.gauge_sent);
    // (A periodic flush may add the idle counter's 0 and the gauge again, in a later slot.)
    let points = carbon.wait_for_points(&counter_path, MAX, |p| !p.is_empty());
    let stored: Vec<_> = points.iter().filter(|p| p.1 != 0.0).collect();
    assert_eq!(stored.len(), 1, "{points:?}\n{}", relay.log());
    assert_eq!(stored[0].1, counter_value);
    assert_eq!(stored[0].0 % interval, 0, "aligned to the flush interval");
    let points = carbon.wait_for_points(&gauge_path, MAX, |p| !p.is_empty());
    assert!(points.iter().all(|p| p.1 == gauge_value), "{points:?}");

    // carbon-cache restarts behind the relay: the exporter sees nothing of it. The relay
    // learns of it from a failed write (what it had just written may be lost), then queues.
    carbon.stop();
    let mut last_slot = 0;
    for n in [2, 4, 8] {
        last_slot = count_and_flush(n);
        *counted.entry(last_slot).or_insert(0) += n;
        std::thread::sleep(Duration::from_secs(2));
    }
    let during = handle.stats();
    let unseen = (
        during.send_errors,
        during.connects,
        during.lines_possibly_lost,
    );
    assert_eq!(unseen, (0, 1, 0), "{during:?}");
    assert!(during.lines_sent > stats.lines_sent, "{during:?}");
    carbon.start_again().unwrap();
    // What the relay queued arrives: the last flush sent its slot's total (a second flush
    // into a carbon slot sends everything counted in the slot, since carbon keeps the last).
    assert_slot(
        &carbon,
        &counter_path,
        last_slot,
        counted[&last_slot],
        &relay.log(),
    );

    // The relay itself goes away: the exporter keeps the counter in its cell, warns once,
    // and reconnects when the relay is back.
    let mut relay = relay;
    relay.stop();
    let before = handle.stats();
    count(16);
    let _ = handle.flush();
    let down = handle.stats();
    assert!(down.send_errors > before.send_errors, "{down:?}");
    assert_eq!(down.lines_sent, before.lines_sent, "{down:?}");
    assert_logged(&memory_log(), "WARN", &log_fragments("stream-down"));
    relay.start_again().unwrap();
    let deadline = Instant::now() + MAX;
    let (slot, back) = loop {
        std::thread::sleep(Duration::from_millis(300));
        let slot = slot_now();
        let _ = handle.flush();
        let now = handle.stats();
        if now.lines_sent > down.lines_sent {
            break (slot, now);
        }
        assert!(Instant::now() < deadline, "never reconnected: {now:?}");
    };
    assert_eq!(back.connects, 2, "{back:?}");
    assert_eq!(back.lines_dropped_send, 0, "{back:?}");
    *counted.entry(slot).or_insert(0) += 16;
    assert_slot(&carbon, &counter_path, slot, counted[&slot], &relay.log());
    assert_logged(&memory_log(), "INFO", &log_fragments("up"));

    let last = guard.shutdown().unwrap();
    assert_eq!(last.lines_dropped_shutdown, 0, "{last:?}");
    assert_eq!(last.send_errors, back.send_errors, "{last:?}");
    assert!(carbon.log_errors().is_empty(), "{:?}", carbon.log_errors());
    assert_unresolved_host_warns_as_the_page_says();
}

/// The relay recipe's note on a host that does not resolve yet: one warning, in the page's
/// words. The host is a 64-byte label under `.invalid`, which the resolver refuses before
/// sending any DNS query (tests/endpoints.rs).
fn assert_unresolved_host_warns_as_the_page_says() {
    let host = format!("{}.invalid", "a".repeat(64));
    let (recorder, exporter) = ExporterBuilder::graphite(format!("tcp://{host}:2003"))
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || metrics::counter!("kept").increment(1));
    let deadline = Instant::now() + MAX;
    while guard.handle().stats().resolve_failures == 0 {
        let _ = guard.handle().flush();
        assert!(Instant::now() < deadline, "the host was never looked up");
    }
    let stats = guard.handle().stats();
    assert_eq!(
        (stats.lines_sent, stats.lines_dropped_send),
        (0, 0),
        "{stats:?}"
    );
    let fragments = log_fragments("resolve");
    assert_logged(&memory_log(), "WARN", &fragments);
    assert!(
        memory_log().iter().any(|l| l.contains(&host)),
        "the warning names the host"
    );
    drop(guard);
}
