//! The `tower` request-metrics layer end to end: real HTTP/1.1 requests over loopback to an
//! axum app wrapped in the layer, our exporter sending to a UDP receiver, exact lines checked.
//!
//! Each test runs on a current-thread runtime, so the server's tasks are polled on the test's
//! own thread and a thread-local recorder (`set_default_local_recorder`) sees everything they
//! record: the tests need no global recorder and run in parallel.
#![allow(
    clippy::unwrap_used,
    reason = "tests: a failed setup must fail the test loudly"
)]

#[path = "support/loopback.rs"]
mod loopback;

use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Request, Response, StatusCode};
use axum::routing::get;
use loopback::UdpReceiver;
use metrics_exporter_statsd_graphite::{
    ExporterBuilder, HistogramKind, RequestMetricsLayer, RouteSource,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_layer::Layer;
use tower_service::Service;

const MAX: Duration = Duration::from_secs(10);

/// How a user plugs axum's matched route in (the crate docs show the same closure).
fn matched_path(request: &Request<Body>) -> Option<Arc<str>> {
    let path = request.extensions().get::<MatchedPath>()?;
    Some(Arc::from(path.as_str()))
}

fn app<R>(layer: RequestMetricsLayer<R>) -> Router
where
    R: RouteSource<Body> + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/users/{id}",
            get(|| async { "a user" }).post(|| async { StatusCode::CREATED }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                "slow"
            }),
        )
        .route("/fail", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .layer(layer)
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Ends with the test's runtime.
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// One HTTP/1.1 request on its own connection; returns the response's status code. The
/// server records before it writes the response, so once we have read it, it is recorded.
async fn request(addr: SocketAddr, method: &str, path: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response);
    // "HTTP/1.1 200 OK"
    response.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Serves `layer` around the test app, sends `requests` (method, path, expected status), then
/// shuts the exporter down (a final flush) and returns every line received.
async fn run<R>(
    builder: ExporterBuilder,
    rx: &mut UdpReceiver,
    layer: RequestMetricsLayer<R>,
    requests: &[(&str, &str, u16)],
) -> Vec<String>
where
    R: RouteSource<Body> + Send + Sync + 'static,
{
    let (recorder, exporter) = builder
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let local = metrics::set_default_local_recorder(&recorder);
    let addr = serve(app(layer)).await;
    for &(method, path, status) in requests {
        assert_eq!(request(addr, method, path).await, status, "{method} {path}");
    }
    drop(local);
    let stats = guard.shutdown_async().await.unwrap();
    received(rx, stats.lines_sent)
}

/// Every non-empty line received, once all `sent` have arrived (or `MAX` passed). Waiting
/// for a count, not for a quiet spell, keeps a loaded machine from cutting the wait short.
fn received(rx: &mut UdpReceiver, sent: u64) -> Vec<String> {
    let lines = |l: &[String]| {
        l.iter()
            .filter(|l| !l.is_empty())
            .cloned()
            .collect::<Vec<_>>()
    };
    let all = rx.wait_for(MAX, |l| lines(l).len() as u64 >= sent);
    lines(&all)
}

fn dogstatsd(rx: &UdpReceiver) -> ExporterBuilder {
    ExporterBuilder::dogstatsd(rx.endpoint()).with_histogram_kind(HistogramKind::Timer)
}

/// The millisecond values of the DogStatsD timer lines named `name` with exactly `tags`
/// (one flush packs a series' samples into one multi-value line, `name:1.5:2|ms|#...`).
fn timer_values(lines: &[String], name: &str, tags: &str) -> Vec<f64> {
    let suffix = format!("|ms|#{tags}");
    lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(':')?
                .strip_suffix(&suffix)
        })
        .flat_map(|values| values.split(':').map(|v| v.parse::<f64>().unwrap()))
        .collect()
}

fn sorted_counters(lines: &[String]) -> Vec<String> {
    let mut counters: Vec<String> = lines.iter().filter(|l| l.contains("|c")).cloned().collect();
    counters.sort();
    counters
}

#[tokio::test(flavor = "current_thread")]
async fn each_request_is_counted_once_by_method_matched_route_and_status() {
    let mut rx = UdpReceiver::new();
    let layer = RequestMetricsLayer::new().with_route_source(matched_path);
    let lines = run(
        dogstatsd(&rx),
        &mut rx,
        layer,
        &[
            ("GET", "/users/7", 200),
            ("GET", "/users/8", 200),
            ("POST", "/users/7", 201),
            ("DELETE", "/users/7", 405),
            ("GET", "/fail", 500),
        ],
    )
    .await;
    assert_eq!(
        sorted_counters(&lines),
        [
            "http.requests:1|c|#method:DELETE,route:/users/{id},status:405",
            "http.requests:1|c|#method:GET,route:/fail,status:500",
            "http.requests:1|c|#method:POST,route:/users/{id},status:201",
            "http.requests:2|c|#method:GET,route:/users/{id},status:200",
        ],
        "{lines:#?}"
    );
    for (tags, count) in [
        ("method:GET,route:/users/{id},status:200", 2),
        ("method:POST,route:/users/{id},status:201", 1),
        ("method:DELETE,route:/users/{id},status:405", 1),
        ("method:GET,route:/fail,status:500", 1),
    ] {
        let values = timer_values(&lines, "http.request.duration", tags);
        assert_eq!(values.len(), count, "{tags}: {lines:#?}");
        assert!(
            values.iter().all(|ms| (0.0..1_000.0).contains(ms)),
            "{values:?}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_no_route_matched_is_labelled_unmatched_never_with_its_path() {
    let mut rx = UdpReceiver::new();
    let layer = RequestMetricsLayer::new().with_route_source(matched_path);
    let lines = run(
        dogstatsd(&rx),
        &mut rx,
        layer,
        &[("GET", "/no/such/page", 404), ("GET", "/another/one", 404)],
    )
    .await;
    assert_eq!(
        sorted_counters(&lines),
        ["http.requests:2|c|#method:GET,route:unmatched,status:404"],
        "{lines:#?}"
    );
    let values = timer_values(
        &lines,
        "http.request.duration",
        "method:GET,route:unmatched,status:404",
    );
    assert_eq!(values.len(), 2, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("such")), "{lines:#?}");
}

#[tokio::test(flavor = "current_thread")]
async fn the_duration_covers_the_handler_and_arrives_in_milliseconds() {
    let mut rx = UdpReceiver::new();
    let layer = RequestMetricsLayer::new().with_route_source(matched_path);
    let lines = run(dogstatsd(&rx), &mut rx, layer, &[("GET", "/slow", 200)]).await;
    let values = timer_values(
        &lines,
        "http.request.duration",
        "method:GET,route:/slow,status:200",
    );
    // The handler sleeps 50 ms; seconds would be 0.05, and a huge value a unit bug.
    assert!(
        values.len() == 1 && (50.0..5_000.0).contains(&values[0]),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn names_label_keys_and_the_unmatched_route_are_configurable() {
    let mut rx = UdpReceiver::new();
    let layer = RequestMetricsLayer::new()
        .with_prefix("api")
        .with_counter_name("hits")
        .with_histogram_name(String::from("latency"))
        .with_label_keys("verb", "endpoint", "code")
        .with_unmatched_route("none")
        .with_route_source(matched_path);
    let lines = run(
        dogstatsd(&rx),
        &mut rx,
        layer,
        &[("GET", "/users/1", 200), ("PUT", "/nowhere", 404)],
    )
    .await;
    assert_eq!(
        sorted_counters(&lines),
        [
            "api.hits:1|c|#code:200,endpoint:/users/{id},verb:GET",
            "api.hits:1|c|#code:404,endpoint:none,verb:PUT",
        ],
        "{lines:#?}"
    );
    assert_eq!(
        timer_values(&lines, "api.latency", "code:404,endpoint:none,verb:PUT").len(),
        1,
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn plain_statsd_folds_method_route_and_status_into_the_name() {
    let mut rx = UdpReceiver::new();
    let layer = RequestMetricsLayer::new().with_route_source(matched_path);
    let builder = ExporterBuilder::statsd(rx.endpoint()).with_prefix("svc");
    let lines = run(
        builder,
        &mut rx,
        layer,
        &[("GET", "/users/7", 200), ("GET", "/missing", 404)],
    )
    .await;
    // Label values in key order (method, route, status), each one sanitised segment.
    assert_eq!(
        sorted_counters(&lines),
        [
            "svc.http.requests.GET.unmatched.404:1|c",
            "svc.http.requests.GET.users__id.200:1|c",
        ],
        "{lines:#?}"
    );
    for name in [
        "svc.http.request.duration.GET.users__id.200:",
        "svc.http.request.duration.GET.unmatched.404:",
    ] {
        let timers = lines
            .iter()
            .filter(|l| l.starts_with(name) && l.ends_with("|ms"));
        assert_eq!(timers.count(), 1, "{name}: {lines:#?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn without_a_route_source_every_request_is_unmatched() {
    let mut rx = UdpReceiver::new();
    let lines = run(
        dogstatsd(&rx),
        &mut rx,
        RequestMetricsLayer::new(),
        &[("GET", "/users/7", 200), ("GET", "/missing", 404)],
    )
    .await;
    assert_eq!(
        sorted_counters(&lines),
        [
            "http.requests:1|c|#method:GET,route:unmatched,status:200",
            "http.requests:1|c|#method:GET,route:unmatched,status:404",
        ],
        "{lines:#?}"
    );
}

/// A service that always fails: no response, so no status code.
#[derive(Clone)]
struct Broken;

impl Service<Request<()>> for Broken {
    type Response = Response<()>;
    type Error = &'static str;
    type Future = Ready<Result<Response<()>, &'static str>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        ready(Err("backend down"))
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_inner_service_error_is_labelled_status_error_and_passed_through() {
    let mut rx = UdpReceiver::new();
    let (recorder, exporter) = dogstatsd(&rx).build().unwrap();
    let guard = exporter.start().unwrap();
    let local = metrics::set_default_local_recorder(&recorder);
    let mut service = RequestMetricsLayer::new()
        .with_route_source(|_: &Request<()>| Some("/backend"))
        .layer(Broken);
    let request = Request::builder()
        .method("PURGE")
        .uri("/x")
        .body(())
        .unwrap();
    assert_eq!(service.call(request).await.unwrap_err(), "backend down");
    drop(local);
    let stats = guard.shutdown_async().await.unwrap();
    let lines = received(&mut rx, stats.lines_sent);
    // An extension method is `other`: clients choose it, so it must not make new series.
    assert!(
        lines.contains(&"http.requests:1|c|#method:other,route:/backend,status:error".to_owned()),
        "{lines:#?}"
    );
    assert_eq!(
        timer_values(
            &lines,
            "http.request.duration",
            "method:other,route:/backend,status:error"
        )
        .len(),
        1,
        "{lines:#?}"
    );
}
