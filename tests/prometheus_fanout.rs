//! Prometheus alongside StatsD: one `metrics-util` fanout feeds our exporter (StatsD over UDP
//! to a loopback receiver) and metrics-exporter-prometheus (its own HTTP listener on a free
//! loopback port). We scrape `/metrics` with a plain HTTP/1.1 GET and check that it holds the
//! same series with the same values our receiver got: counter totals (StatsD sends per-flush
//! deltas, Prometheus the running total), gauge values (StatsD's Etsy semantics applied), and
//! histogram counts and sums (StatsD timers in milliseconds, Prometheus in seconds).
//!
//! This is how a user of aioprometheus or metrics-exporter-prometheus keeps their Prometheus
//! scrape while adding StatsD or Graphite.
#![allow(
    clippy::float_cmp,
    reason = "every compared value is a small integer or an exact sum of the same doubles"
)]
#![allow(
    clippy::cast_precision_loss,
    reason = "counts and counter totals are small integers, exact in f64"
)]
#![allow(
    clippy::unwrap_used,
    reason = "the helpers set up listeners and parse pages: a failure must fail the test loudly"
)]

#[path = "support/loopback.rs"]
mod loopback;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use loopback::{UdpReceiver, counter_sum};
use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusRecorder};
use metrics_exporter_statsd_graphite::ExporterBuilder;
use metrics_util::layers::FanoutBuilder;
use tokio::runtime::Runtime;

const MAX: Duration = Duration::from_secs(10);

/// Starts metrics-exporter-prometheus's HTTP listener on a free loopback port, on `rt`.
///
/// Its builder takes an address, not a listener, and does not tell us the port it bound, so we
/// find a free port by binding port 0 and closing it, then hand it over. Another process may
/// take the port in between; the builder then fails to bind and we try another one.
fn prometheus_on_a_free_port(rt: &Runtime) -> (PrometheusRecorder, SocketAddr) {
    // `build` spawns its upkeep task and the listener on the current runtime.
    let _entered = rt.enter();
    for _ in 0..20 {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        match PrometheusBuilder::new().with_http_listener(addr).build() {
            Ok((recorder, listener)) => {
                rt.spawn(listener);
                return (recorder, addr);
            }
            Err(BuildError::FailedToCreateHTTPListener(_)) => {}
            Err(e) => panic!("cannot build the Prometheus exporter: {e}"),
        }
    }
    panic!("no free loopback port for the Prometheus listener after 20 tries");
}

/// `GET path` over HTTP/1.1 with `Connection: close`; returns the status line, the headers
/// (names lower-cased) and the body, checked against `Content-Length`.
fn http_get(addr: SocketAddr, path: &str) -> (String, BTreeMap<String, String>, String) {
    let deadline = Instant::now() + MAX;
    let mut stream = loop {
        match TcpStream::connect(addr) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("cannot connect to {addr}: {e}"),
        }
    };
    stream.set_read_timeout(Some(MAX)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut head = head.split("\r\n");
    let status = head.next().unwrap().to_owned();
    let headers: BTreeMap<String, String> = head
        .map(|h| {
            let (name, value) = h.split_once(':').unwrap();
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers["content-length"].parse().unwrap();
    assert_eq!(body.len(), length, "a truncated response: {response}");
    (status, headers, body.to_owned())
}

/// The samples of a Prometheus text page: `series -> value`, series written as on the page
/// (`name{label="value",...}`).
fn samples(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// A StatsD gauge's value after applying every `name:<v>|g` line in order, with Etsy's rule:
/// a signed value is a delta, an unsigned one sets the gauge.
fn etsy_gauge(lines: &[String], name: &str) -> f64 {
    let prefix = format!("{name}:");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix)?.strip_suffix("|g"))
        .fold(0.0, |gauge, v| {
            let parsed: f64 = v.parse().unwrap();
            if v.starts_with(['+', '-']) {
                gauge + parsed
            } else {
                parsed
            }
        })
}

/// The values of every `name:<v>|ms` line.
fn timer_values(lines: &[String], name: &str) -> Vec<f64> {
    let prefix = format!("{name}:");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix)?.strip_suffix("|ms"))
        .map(|v| v.parse().unwrap())
        .collect()
}

/// What one run of the scenario left behind: the StatsD lines received and the scraped page.
struct Scraped {
    lines: Vec<String>,
    page: String,
    status: String,
    content_type: String,
    samples: BTreeMap<String, f64>,
    lines_sent: u64,
}

impl Scraped {
    fn series(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in\n{}", self.page))
    }
}

/// Records the same metrics through a fanout into our StatsD exporter and Prometheus, with a
/// StatsD flush in the middle (so StatsD gets two counter deltas and Prometheus one running
/// total), then scrapes the page.
fn record_through_a_fanout_and_scrape() -> Scraped {
    let mut rx = UdpReceiver::new();
    let (to_statsd, exporter) = ExporterBuilder::statsd(rx.endpoint())
        .with_flush_interval(Duration::from_secs(3600)) // we flush explicitly
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (to_prometheus, addr) = prometheus_on_a_free_port(&rt);
    let fanout = FanoutBuilder::default()
        .add_recorder(to_statsd)
        .add_recorder(to_prometheus)
        .build();

    metrics::with_local_recorder(&fanout, || {
        metrics::describe_counter!("http.requests", "requests served");
        metrics::describe_histogram!("http.latency", Unit::Seconds, "time to serve a request");
        metrics::counter!("http.requests", "route" => "/a", "status" => "200").increment(3);
        metrics::counter!("http.requests", "route" => "/a", "status" => "500").increment(1);
        metrics::gauge!("in_flight").set(4.0);
        metrics::gauge!("in_flight").decrement(1.0);
        metrics::gauge!("temperature").set(-5.0);
        metrics::histogram!("http.latency").record(Duration::from_micros(12_500));
        metrics::histogram!("http.latency").record(Duration::from_millis(250));
    });
    guard.handle().flush().unwrap();
    metrics::with_local_recorder(&fanout, || {
        metrics::counter!("http.requests", "route" => "/a", "status" => "200").increment(2);
        metrics::gauge!("in_flight").set(7.0);
        metrics::histogram!("http.latency").record(Duration::from_millis(1));
    });
    guard.handle().flush().unwrap();
    let lines = rx.wait_for(MAX, |l| l.len() == 10);

    let (status, headers, page) = http_get(addr, "/metrics");
    Scraped {
        samples: samples(&page),
        lines,
        page,
        status,
        content_type: headers["content-type"].clone(),
        lines_sent: guard.shutdown().unwrap().lines_sent,
    }
}

#[test]
fn statsd_gets_its_exact_lines_while_prometheus_serves_the_same_metrics() {
    let scraped = record_through_a_fanout_and_scrape();
    let mut lines = scraped.lines.clone();
    lines.sort();
    assert_eq!(
        lines,
        [
            "http.latency:12.5|ms",
            "http.latency:1|ms",
            "http.latency:250|ms",
            "http.requests.a.200:2|c",
            "http.requests.a.200:3|c",
            "http.requests.a.500:1|c",
            "in_flight:3|g",
            "in_flight:7|g",
            "temperature:-5|g",
            "temperature:0|g",
        ]
    );
    assert_eq!(scraped.lines_sent, 10);
    assert_eq!(scraped.status, "HTTP/1.1 200 OK");
    assert_eq!(scraped.content_type, "text/plain");
    // Descriptions reach Prometheus through the fanout too.
    let page = &scraped.page;
    assert!(
        page.contains("# HELP http_requests requests served\n"),
        "{page}"
    );
    assert!(page.contains("# TYPE http_requests counter\n"), "{page}");
    assert!(page.contains("# TYPE in_flight gauge\n"), "{page}");
    assert!(page.contains("# TYPE http_latency summary\n"), "{page}");
}

#[test]
fn prometheus_counter_totals_equal_the_sum_of_the_statsd_deltas() {
    let scraped = record_through_a_fanout_and_scrape();
    for (statsd, prometheus, total) in [
        (
            "http.requests.a.200",
            r#"http_requests{route="/a",status="200"}"#,
            5.0,
        ),
        (
            "http.requests.a.500",
            r#"http_requests{route="/a",status="500"}"#,
            1.0,
        ),
    ] {
        assert_eq!(
            counter_sum(&scraped.lines, statsd) as f64,
            total,
            "{statsd}"
        );
        assert_eq!(scraped.series(prometheus), total, "{prometheus}");
    }
}

#[test]
fn prometheus_gauges_equal_the_statsd_gauges_under_etsy_semantics() {
    let scraped = record_through_a_fanout_and_scrape();
    // `in_flight` was sent as 3 then 7; `temperature` as `0|g` then the delta `-5|g`.
    for (name, value) in [("in_flight", 7.0), ("temperature", -5.0)] {
        assert_eq!(etsy_gauge(&scraped.lines, name), value, "{name}");
        assert_eq!(scraped.series(name), value, "{name}");
    }
}

#[test]
fn prometheus_histogram_count_and_sum_match_the_statsd_timer_lines() {
    let scraped = record_through_a_fanout_and_scrape();
    // One StatsD timer line per sample, in milliseconds; Prometheus counts and sums seconds.
    let timers = timer_values(&scraped.lines, "http.latency");
    assert_eq!(timers.len(), 3);
    assert_eq!(scraped.series("http_latency_count"), timers.len() as f64);
    let millis_total: f64 = timers.iter().sum();
    let seconds_total = scraped.series("http_latency_sum");
    assert!(
        (millis_total / 1000.0 - seconds_total).abs() < 1e-9,
        "{millis_total} ms vs {seconds_total} s"
    );
    // The summary's extremes are the same samples.
    assert_eq!(scraped.series(r#"http_latency{quantile="0"}"#), 0.001);
    assert_eq!(scraped.series(r#"http_latency{quantile="1"}"#), 0.25);
}
