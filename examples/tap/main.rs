//! A debugging receiver: listens like a StatsD, DogStatsD or Graphite server, prints every line
//! it receives, flags the ones a real receiver would reject (and says why), and prints a
//! summary every few seconds. Point your app at it to see exactly what it sends.
//!
//! ```text
//! cargo run --example tap                                     # StatsD on udp://127.0.0.1:8125
//! cargo run --example tap -- --protocol graphite --listen tcp://127.0.0.1:2003
//! cargo run --example tap -- --protocol dogstatsd --listen unix:///tmp/dsd.socket
//! cargo run --example tap -- --demo --seconds 3               # plus this crate's exporter, sending to it
//! ```
//!
//! Options (all optional):
//! - `--listen URL`: `udp://host:port` (default `udp://127.0.0.1:8125`; with `--demo`, a free
//!   port), `tcp://host:port`, `unix:///path` (stream), `unixgram:///path` (datagram);
//! - `--protocol statsd|dogstatsd|graphite` (statsd): whose rules the lines are checked by;
//! - `--framing auto|lines|length-prefixed` (auto) for stream sockets: auto reads DogStatsD
//!   over a Unix stream as the Agent does (a 4-byte little-endian length before each
//!   payload) and everything else as `\n`-terminated lines;
//! - `--summary-secs N` (10): the interval of the summaries (lines, bytes, bad lines, distinct
//!   series, lines per type);
//! - `--seconds T`: stop after T seconds and print the totals (default: run until Ctrl-C,
//!   which prints the totals too);
//! - `--quiet`: print only bad lines and summaries;
//! - `--demo`: also install this crate's exporter for the protocol, pointed at the tap, and
//!   record a few metrics every 100 ms (flushed every second).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool reports on stdout, usage errors on stderr"
)]
#![cfg_attr(
    test,
    allow(
        dead_code,
        reason = "main and its helpers are not compiled into the test harness"
    )
)]

mod events;
mod frame;
mod listen;
mod parse;
mod tally;

#[cfg(test)]
mod loopback_tests;

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use metrics_exporter_statsd_graphite::{ExporterBuilder, ExporterGuard};

use frame::Framing;
use listen::{Bound, Endpoint, Stop, serve};
use parse::Dialect;
use tally::{Echo, Tap};

const USAGE: &str = "usage: tap [--listen udp://127.0.0.1:8125|tcp://..|unix:///path|unixgram:///path] \
    [--protocol statsd|dogstatsd|graphite] [--framing auto|lines|length-prefixed] \
    [--summary-secs N] [--seconds T] [--quiet] [--demo]";

/// `--framing` as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FramingChoice {
    Auto,
    Lines,
    LengthPrefixed,
}

#[derive(Debug)]
struct Args {
    listen: Option<Endpoint>,
    dialect: Dialect,
    framing: FramingChoice,
    summary: Duration,
    seconds: Option<Duration>,
    echo: Echo,
    demo: bool,
}

fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    match value.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{flag}: want a positive number of seconds, got `{value}`"
        )),
    }
}

fn parse_args(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        listen: None,
        dialect: Dialect::Statsd,
        framing: FramingChoice::Auto,
        summary: Duration::from_secs(10),
        seconds: None,
        echo: Echo::All,
        demo: false,
    };
    while let Some(flag) = words.next() {
        let mut value = || words.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => args.listen = Some(Endpoint::parse(&value()?)?),
            "--protocol" => {
                args.dialect = match value()?.as_str() {
                    "statsd" => Dialect::Statsd,
                    "dogstatsd" => Dialect::Dogstatsd,
                    "graphite" => Dialect::Graphite,
                    other => return Err(format!("--protocol: unknown `{other}`")),
                }
            }
            "--framing" => {
                args.framing = match value()?.as_str() {
                    "auto" => FramingChoice::Auto,
                    "lines" => FramingChoice::Lines,
                    "length-prefixed" => FramingChoice::LengthPrefixed,
                    other => return Err(format!("--framing: unknown `{other}`")),
                }
            }
            "--summary-secs" => args.summary = seconds(&flag, &value()?)?,
            "--seconds" => args.seconds = Some(seconds(&flag, &value()?)?),
            "--quiet" => args.echo = Echo::Bad,
            "--demo" => args.demo = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// How a connection on `endpoint` is split into payloads.
fn framing(
    endpoint: &Endpoint,
    dialect: Dialect,
    choice: FramingChoice,
) -> Result<Framing, String> {
    if !endpoint.is_stream() {
        return match choice {
            FramingChoice::LengthPrefixed => {
                Err("--framing length-prefixed needs a stream socket (tcp:// or unix://)".into())
            }
            _ => Ok(Framing::Datagram),
        };
    }
    Ok(match choice {
        FramingChoice::Lines => Framing::Lines,
        FramingChoice::LengthPrefixed => Framing::LengthPrefixed,
        #[cfg(unix)]
        FramingChoice::Auto
            if dialect == Dialect::Dogstatsd && matches!(endpoint, Endpoint::Unix(_)) =>
        {
            Framing::LengthPrefixed
        }
        FramingChoice::Auto => Framing::Lines,
    })
}

/// This crate's exporter for `dialect`, sending to the tap at `endpoint` every second.
fn demo_builder(dialect: Dialect, endpoint: &Endpoint) -> ExporterBuilder {
    let to = endpoint.to_string();
    match dialect {
        Dialect::Statsd => ExporterBuilder::statsd(to),
        Dialect::Dogstatsd => ExporterBuilder::dogstatsd(to),
        Dialect::Graphite => ExporterBuilder::graphite(to),
    }
    .with_prefix("demo")
    .with_flush_interval(Duration::from_secs(1))
}

/// One round of the demo's metrics, through whatever recorder is current: 2 counter series, a
/// negative gauge (an Etsy-style `0` then `-3` in StatsD) and a histogram of 3 samples.
fn record_demo_round() {
    metrics::counter!("requests", "route" => "/a").increment(1);
    metrics::counter!("requests", "route" => "/b").increment(2);
    metrics::gauge!("queue_depth").set(-3.0);
    let latency = metrics::histogram!("latency");
    for seconds in [0.012, 0.0015, 0.25] {
        latency.record(seconds);
    }
}

/// The demo's recording thread and exporter.
struct Demo {
    running: Arc<AtomicBool>,
    recorder: JoinHandle<()>,
    guard: ExporterGuard,
}

impl Demo {
    fn start(dialect: Dialect, endpoint: &Endpoint) -> Result<Self, Box<dyn Error>> {
        let guard = demo_builder(dialect, endpoint).install()?;
        let running = Arc::new(AtomicBool::new(true));
        let flag = Arc::clone(&running);
        let recorder = std::thread::spawn(move || {
            // Relaxed: a stop flag; nothing else is published through it.
            while flag.load(Ordering::Relaxed) {
                record_demo_round();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Ok(Self {
            running,
            recorder,
            guard,
        })
    }

    /// Stops recording and shuts the exporter down (its final flush reaches the tap).
    fn finish(self) -> Result<(), Box<dyn Error>> {
        self.running.store(false, Ordering::Relaxed);
        let _ = self.recorder.join();
        let stats = self.guard.shutdown()?;
        println!(
            "demo: the exporter sent {} lines in {} payloads ({} bytes); {} send errors",
            stats.lines_sent, stats.payloads_sent, stats.bytes_sent, stats.send_errors
        );
        Ok(())
    }
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let listen = match (&args.listen, args.demo) {
        (Some(listen), _) => listen.clone(),
        (None, false) => Endpoint::parse("udp://127.0.0.1:8125")?,
        (None, true) => Endpoint::parse("udp://127.0.0.1:0")?,
    };
    let bound = Bound::bind(&listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let endpoint = bound.endpoint()?;
    let framing = framing(&endpoint, args.dialect, args.framing)?;
    let (protocol, framed) = (
        match args.dialect {
            Dialect::Statsd => "StatsD",
            Dialect::Dogstatsd => "DogStatsD",
            Dialect::Graphite => "Graphite plaintext",
        },
        match framing {
            Framing::Datagram => "one payload per datagram",
            Framing::Lines => "newline-terminated lines",
            Framing::LengthPrefixed => "4-byte little-endian length prefixes",
        },
    );
    println!(
        "tap: {protocol} on {endpoint} ({framed}); summary every {:.1}s",
        args.summary.as_secs_f64()
    );
    let tap = Arc::new(Tap::new(
        args.dialect,
        args.echo,
        Box::new(std::io::stdout()),
    ));
    let stop = Arc::new(Stop::default());
    let receiver = serve(bound, framing, Arc::clone(&tap), Arc::clone(&stop))?;
    let demo = if args.demo {
        match Demo::start(args.dialect, &endpoint) {
            Ok(demo) => Some(demo),
            Err(e) => {
                // Stop the receiver first: it removes its Unix socket file on the way out.
                stop.request();
                let _ = receiver.join();
                return Err(e);
            }
        }
    } else {
        None
    };

    let interrupted = watch_interrupt();
    let start = Instant::now();
    let deadline = args.seconds.map(|s| start + s);
    let mut next = start + args.summary;
    let mut last = start;
    while deadline.is_none_or(|d| Instant::now() < d) && !interrupted.load(Ordering::Relaxed) {
        let wake = deadline.map_or(next, |d| d.min(next));
        let nap = wake.saturating_duration_since(Instant::now());
        // Short naps, so Ctrl-C is seen within a tenth of a second.
        std::thread::sleep(nap.min(Duration::from_millis(100)));
        if Instant::now() >= next {
            tap.summary(&format!("{:.1}s", next.duration_since(start).as_secs_f64()));
            last = next;
            next += args.summary;
        }
    }
    if let Some(demo) = demo {
        demo.finish()?;
    }
    stop.request();
    let _ = receiver.join();
    let end = start.elapsed().as_secs_f64();
    if end - last.duration_since(start).as_secs_f64() > 0.05 {
        tap.summary(&format!("{end:.1}s"));
    }
    tap.total_summary(&format!("total over {end:.1}s"));
    Ok(())
}

/// Becomes true on Ctrl-C (SIGINT): the tap then stops as it does at the end of `--seconds`,
/// printing its totals and removing its Unix socket file.
fn watch_interrupt() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    let watcher = std::thread::Builder::new()
        .name("tap-ctrl-c".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            else {
                return;
            };
            if runtime.block_on(tokio::signal::ctrl_c()).is_ok() {
                set.store(true, Ordering::Relaxed);
            }
        });
    if let Err(e) = watcher {
        eprintln!("tap: cannot watch for Ctrl-C ({e}); stop it with --seconds");
    }
    flag
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("tap: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tap: {e}");
            ExitCode::FAILURE
        }
    }
}
