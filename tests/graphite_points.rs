//! `GraphitePoints`, the pure Graphite encoder: its bytes are exactly what `GraphiteClient`
//! sends for the same points (hostile paths included), and a real carbon-cache stores exactly
//! the points of a plaintext and of a pickle message it produced, written to carbon's sockets
//! by the test (read back from the whisper files). Carbon is installed by
//! `scripts/install-receivers.sh`; without it the carbon test is skipped locally and fails
//! under CI.
#![allow(
    clippy::float_cmp,
    reason = "every compared value is exactly representable"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test: anything unexpected must fail loudly"
)]

#[path = "support/carbon.rs"]
mod carbon;
#[path = "support/graphite_parser.rs"]
mod graphite_parser;
#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/pickle_parser.rs"]
mod pickle_parser;
#[path = "support/points_oracle.rs"]
mod points_oracle;
#[path = "fidelity_support/whisper.rs"]
mod whisper;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use carbon::{Carbon, require_carbon, send_tcp, unix_now};
use loopback::TcpReceiver;
use metrics_exporter_statsd_graphite::{EncodeError, ExporterBuilder, GraphitePoints};
use proptest::prelude::*;

const WAIT: Duration = Duration::from_secs(15);

/// Paths that must each become one line of one series, or be refused: separators, carbon's
/// own syntax, injections, unicode, names too long for carbon's files.
fn hostile_paths() -> Vec<String> {
    let mut paths: Vec<String> = [
        "plain.a.b",
        "with space/and\tslash",
        "inject 1 0\nevil.path 666",
        "crlf\r\nx",
        "a..b...c.",
        "tag;b=2;a=1",
        "tag;k=v w;e=;bare;name=n;~t=~v",
        "tag;k=a;b=c;k=last",
        "caf\u{e9}.\u{1F600};r\u{e9}gion=\u{e9}t\u{e9}",
        ";only=tags",
        "...",
        "",
        "\n",
    ]
    .map(str::to_owned)
    .to_vec();
    paths.push(format!("long.{}", "x".repeat(300)));
    paths.push(format!("long.tagged;k={}", "v".repeat(3000)));
    paths
}

fn values() -> [f64; 4] {
    [1.5, f64::NAN, -0.0, f64::INFINITY]
}

/// The pure encoder's batch for every hostile path with every value, and whether each point
/// was accepted.
fn pure(paths: &[String], ts: u64) -> (GraphitePoints, Vec<bool>) {
    let mut batch = GraphitePoints::new();
    let mut accepted = Vec::new();
    for path in paths {
        for value in values() {
            let result = batch.push(path, value, ts);
            match &result {
                Err(EncodeError::NotFinite) => assert!(!value.is_finite(), "{path:?} {value}"),
                Ok(()) | Err(EncodeError::EmptyPath) => {}
                Err(e) => panic!("{path:?} {value}: {e}"),
            }
            accepted.push(result.is_ok());
        }
    }
    (batch, accepted)
}

/// What `GraphiteClient` (plaintext or pickle) writes to a TCP receiver for the same points,
/// and whether it accepted each.
async fn client(paths: &[String], ts: u64, pickle: bool) -> (Vec<u8>, Vec<bool>) {
    let rx = TcpReceiver::new();
    let builder = if pickle {
        ExporterBuilder::graphite_pickle(rx.endpoint())
    } else {
        ExporterBuilder::graphite(rx.endpoint())
    };
    let mut client = builder.build_client().unwrap();
    let mut accepted = Vec::new();
    for path in paths {
        for value in values() {
            accepted.push(client.send_at(path, value, ts));
        }
    }
    let stats = client.close().await.unwrap();
    let want = stats.bytes_sent;
    let raw = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        while (rx.raw().len() as u64) < want && start.elapsed() < WAIT {
            std::thread::sleep(Duration::from_millis(5));
        }
        rx.raw()
    })
    .await
    .unwrap();
    (raw, accepted)
}

#[tokio::test]
async fn the_pure_encoder_writes_exactly_the_bytes_the_client_sends_for_the_same_points() {
    let paths = hostile_paths();
    let ts = 1_700_000_000;
    let (mut batch, accepted) = pure(&paths, ts);
    let mut pickle = Vec::new();
    batch.write_pickle(&mut pickle);

    let (sent, client_accepted) = client(&paths, ts, false).await;
    assert_eq!(accepted, client_accepted, "the same points are refused");
    assert_eq!(
        String::from_utf8_lossy(batch.plaintext()),
        String::from_utf8_lossy(&sent)
    );
    let (sent, client_accepted) = client(&paths, ts, true).await;
    assert_eq!(accepted, client_accepted);
    assert_eq!(pickle, sent, "pickle frames");

    // Each accepted point is one line, of three fields, whatever its path.
    let text = String::from_utf8(batch.plaintext().to_vec()).unwrap();
    assert_eq!(text.lines().count(), batch.len());
    assert_eq!(batch.len(), accepted.iter().filter(|a| **a).count());
    for line in text.lines() {
        assert_eq!(line.split(' ').count(), 3, "{line:?}");
        assert!(!line.contains('\r') && line.is_ascii(), "{line:?}");
    }
}

/// Characters that mean something to carbon, graphite-web or a line reader, and some that
/// are only strange.
const HOSTILE: &[char] = &[
    'a',
    'Z',
    '0',
    '_',
    '-',
    '.',
    ';',
    '=',
    '~',
    '!',
    '^',
    ' ',
    '\n',
    '\r',
    '\t',
    '/',
    ':',
    '|',
    '*',
    '(',
    '"',
    '\\',
    '\0',
    '\u{e9}',
    '\u{1F600}',
    '\u{a0}',
    '\u{2028}',
];

fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::collection::vec(proptest::sample::select(HOSTILE), 0..40)
            .prop_map(|c| c.into_iter().collect::<String>()),
        1 => (proptest::sample::select(HOSTILE), 0..3000_usize)
            .prop_map(|(c, n)| std::iter::repeat_n(c, n).collect::<String>()),
        1 => any::<String>(),
    ]
}

fn any_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => proptest::sample::select(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.0]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_path_gives_one_line_carbon_reads_as_that_point_or_a_refusal_for_a_reason_it_has(
        points in proptest::collection::vec((hostile_text(), any_value(), any::<u64>()), 0..12),
        hashed in any::<bool>(),
    ) {
        if let Err(e) = points_oracle::check_points(&points, hashed) {
            prop_assert!(false, "{}", e);
        }
    }
}

/// The points of the carbon test: `(path as pushed, series as carbon stores it, value, seconds
/// before now)`.
fn carbon_points(kind: &str) -> Vec<(String, String, f64, u64)> {
    let p = |path: &str| path.replace("KIND", kind);
    vec![
        (p("gp.KIND.a"), p("gp.KIND.a"), 1.5, 30),
        (p("gp.KIND.a"), p("gp.KIND.a"), -2.25, 20),
        (p("gp.KIND.a"), p("gp.KIND.a"), 1e9, 10),
        (p("gp.KIND.b c/d"), p("gp.KIND.b_c_d"), 0.0, 30),
        (
            p("gp.KIND.inject 1 0\ngp.evil 666"),
            p("gp.KIND.inject_1_0_gp.evil_666"),
            7.0,
            30,
        ),
        (
            p("gp.KIND.tagged;host=a b;env=prod;name=x"),
            p("gp.KIND.tagged;env=prod;host=a_b;name_=x"),
            42.0,
            20,
        ),
    ]
}

fn stored(carbon: &Carbon, series: &str) -> Vec<(u64, f64)> {
    whisper::points(&carbon.wsp_path(series)).unwrap_or_default()
}

#[test]
fn carbon_stores_exactly_the_points_of_a_plaintext_and_a_pickle_message() {
    if !require_carbon() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let now = unix_now();
    let mut want: Vec<(String, Vec<(u64, f64)>)> = Vec::new();
    for (kind, pickle) in [("plain", false), ("pickle", true)] {
        let mut batch = GraphitePoints::with_tag_hash_filenames(false);
        for (path, series, value, ago) in carbon_points(kind) {
            batch.push(&path, value, now - ago).unwrap();
            match want.iter_mut().find(|(s, _)| *s == series) {
                Some((_, points)) => points.push((now - ago, value)),
                None => want.push((series, vec![(now - ago, value)])),
            }
        }
        assert_eq!(
            batch.push("gp.refused", f64::NAN, now),
            Err(EncodeError::NotFinite)
        );
        if pickle {
            let mut frames = Vec::new();
            batch.write_pickle(&mut frames);
            send_tcp(carbon.pickle_addr(), &frames).unwrap();
        } else {
            send_tcp(carbon.line_addr(), batch.plaintext()).unwrap();
        }
    }
    let deadline = Instant::now() + WAIT;
    while want.iter().any(|(s, p)| stored(&carbon, s) != *p) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    for (series, points) in &want {
        assert_eq!(
            stored(&carbon, series),
            *points,
            "{series}\n{}",
            carbon.log()
        );
        // The whisper reader agrees with carbon's own tool.
        assert_eq!(carbon.points(series), *points, "{series}");
    }
    let series: BTreeSet<String> = carbon.series().into_iter().collect();
    let expected: BTreeSet<String> = want.iter().map(|(s, _)| s.clone()).collect();
    assert_eq!(
        series, expected,
        "no other series: nothing split or injected"
    );
    assert!(carbon.log_errors().is_empty(), "{:?}", carbon.log_errors());
}
