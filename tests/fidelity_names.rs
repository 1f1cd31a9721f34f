//! Long and hostile names into the real carbon-cache, under both of its `TAG_HASH_FILENAMES`
//! settings: every series is stored with exactly its value, carbon logs no error (no `File
//! name too long`, no invalid line), and `names_shortened` counts exactly the series that
//! had to be shortened. Plain StatsD names go through Etsy statsd's Graphite backend too.
// The real-receiver harness (tests/support/receivers.rs) talks over Unix sockets.
#![cfg(unix)]
#![allow(
    clippy::float_cmp,
    reason = "every compared value is exactly representable"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]
#![allow(
    clippy::duplicate_mod,
    reason = "carbon.rs and receivers.rs each load the shared process helpers"
)]

#[path = "support/carbon.rs"]
mod carbon;
#[path = "support/receivers.rs"]
mod receivers;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use carbon::{Carbon, require_carbon, send_tcp};
use metrics_exporter_statsd_graphite::{ExporterBuilder, LabelHandling};
use receivers::{EtsyStatsd, require_etsy_statsd};

const WAIT: Duration = Duration::from_secs(20);

/// `<text[..keep]>-<16 hex of FNV-1a 64 of all of text>`, as the crate docs state it.
fn cut(text: &str, keep: usize) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{hash:016x}", &text[..keep])
}

/// A path component as carbon will get it: over 251 bytes, cut to 234 plus the hash.
fn component(text: &str) -> String {
    if text.len() > 251 {
        cut(text, 234)
    } else {
        text.to_owned()
    }
}

/// One counter of the corpus: name, labels, whether either carbon setting needs it
/// shortened (`(hashed, readable)`).
struct Case {
    name: String,
    labels: Vec<(String, String)>,
    shortened: (bool, bool),
}

fn case(name: String, labels: &[(&str, String)], shortened: (bool, bool)) -> Case {
    Case {
        name,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        shortened,
    }
}

/// The hostile corpus: long components (252 to 5000 bytes), a whole name past 2048 bytes,
/// many dots, unicode, long tag keys and values (with dots and `/`), a long tagged name.
fn corpus() -> Vec<Case> {
    let r = |c: &str, n: usize| c.repeat(n);
    vec![
        case(format!("p252.{}", r("a", 252)), &[], (true, true)),
        case(format!("p300.{}.leaf", r("b", 300)), &[], (true, true)),
        case(format!("p5000.{}", r("c", 5000)), &[], (true, true)),
        case(format!("p251.{}", r("d", 251)), &[], (false, false)),
        case(format!("shared.{}x", r("s", 300)), &[], (true, true)),
        case(format!("shared.{}y", r("s", 300)), &[], (true, true)),
        case(format!("uni.{}", r("\u{e9}", 300)), &[], (true, true)),
        case(
            "uni.\u{fc}n\u{ef}c\u{f6}d\u{e9}".to_owned(),
            &[],
            (false, false),
        ),
        case(
            format!("dots.{}", vec!["s"; 200].join(".")),
            &[],
            (false, false),
        ),
        case(vec![r("w", 251); 20].join("."), &[], (true, true)),
        case("t.value".to_owned(), &[("k", r("v", 300))], (false, true)),
        case(
            "t.key".to_owned(),
            &[(&r("k", 300), "v".to_owned())],
            (false, true),
        ),
        case("t.huge".to_owned(), &[("k", r("v", 3000))], (true, true)),
        case(
            "t.two".to_owned(),
            &[
                ("a", r("x", 260)),
                ("b", r("y", 260)),
                ("c", "1".to_owned()),
            ],
            (false, true),
        ),
        case(
            "t.uni".to_owned(),
            &[("k", r("\u{43a}\u{43b}\u{44e}\u{447}", 100))],
            (false, true),
        ),
        case("t.dots".to_owned(), &[("k", r("a.b.", 80))], (false, true)),
        case("t.slash".to_owned(), &[("k", r("/x", 150))], (false, true)),
        case(r("n", 300), &[("k", "v".to_owned())], (false, true)),
        case(
            "t.short".to_owned(),
            &[("k", "v".to_owned())],
            (false, false),
        ),
    ]
}

/// Records the corpus (counter `i` gets `1000 + i`) and two histograms of one sample (7.0),
/// one plainly long, one with a long tag value; flushes once; returns the stats.
fn send_corpus(builder: ExporterBuilder) -> metrics_exporter_statsd_graphite::ExporterStats {
    let (recorder, exporter) = builder
        .with_prefix("fid")
        .with_aligned_timestamps(false)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    metrics::with_local_recorder(&recorder, || {
        for (i, c) in (1000u64..).zip(corpus()) {
            let labels: Vec<metrics::Label> = c
                .labels
                .iter()
                .map(|(k, v)| metrics::Label::new(k.clone(), v.clone()))
                .collect();
            metrics::counter!(c.name, labels).increment(i);
        }
        metrics::histogram!(format!("hist.{}", "h".repeat(400))).record(7.0);
        metrics::histogram!("hist.tagged", "k" => "v".repeat(300)).record(7.0);
    });
    guard.handle().flush().expect("flush");
    guard.shutdown().expect("shutdown")
}

/// Every whisper file of ours and its points, once carbon has written `files` of them.
fn stored(carbon: &Carbon, files: usize) -> BTreeMap<PathBuf, Vec<(u64, f64)>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let all: BTreeMap<PathBuf, Vec<(u64, f64)>> = carbon
            .wsp_files()
            .into_iter()
            .map(|f| {
                let points = carbon.points_at(&f);
                (f, points)
            })
            .collect();
        let done = all.len() >= files && all.values().all(|p| !p.is_empty());
        if done || Instant::now() > deadline {
            return all;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn long_names_are_stored_exactly(hashed: bool, pickle: bool) {
    let carbon = Carbon::start_with_tag_hash_filenames(hashed).expect("carbon starts");
    let builder = if pickle {
        ExporterBuilder::graphite_pickle(carbon.pickle_addr().to_string())
    } else {
        ExporterBuilder::graphite(format!("tcp://{}", carbon.line_addr()))
    };
    let stats = send_corpus(builder.with_graphite_tag_hash_filenames(hashed));
    let corpus = corpus();
    let series = corpus.len() + 2 * 9;
    let files = stored(&carbon, series);
    let context = format!("{files:#?}\n{}", carbon.log());

    // One file per series, each with one point: every counter's own value once, and the
    // two summaries (count 1, every other statistic 7).
    assert_eq!(files.len(), series, "{context}");
    let mut values: Vec<f64> = files
        .values()
        .map(|p| {
            assert_eq!(p.len(), 1, "{context}");
            p[0].1
        })
        .collect();
    values.sort_by(f64::total_cmp);
    let mut want: Vec<f64> = (1000u32..).take(corpus.len()).map(f64::from).collect();
    want.extend([1.0; 2]);
    want.extend([7.0; 16]);
    want.sort_by(f64::total_cmp);
    assert_eq!(values, want, "{context}");

    // Exact names, where the rule is simple to state.
    let point = |series: &str| {
        let p = carbon.points(series);
        assert_eq!(p.len(), 1, "{series}: {context}");
        p[0].1
    };
    assert_eq!(
        point(&format!("fid.p252.{}", component(&"a".repeat(252)))),
        1000.0
    );
    assert_eq!(
        point(&format!("fid.p300.{}.leaf", component(&"b".repeat(300)))),
        1001.0
    );
    assert_eq!(
        point(&format!("fid.p5000.{}", component(&"c".repeat(5000)))),
        1002.0
    );
    assert_eq!(point(&format!("fid.p251.{}", "d".repeat(251))), 1003.0);
    assert_eq!(
        point(&format!("fid.uni.{}", component(&"_".repeat(300)))),
        1006.0
    );
    let dir = format!("fid.hist.{}", component(&"h".repeat(400)));
    assert_eq!(point(&format!("{dir}.count")), 1.0);
    assert_eq!(point(&format!("{dir}.p999")), 7.0);
    if hashed {
        assert_eq!(point(&format!("fid.t.value;k={}", "v".repeat(300))), 1010.0);
        // 3013 bytes, 2038 allowed: the value keeps 2025 bytes, 17 of them the hash.
        assert_eq!(
            point(&format!("fid.t.huge;k={}", cut(&"v".repeat(3000), 2008))),
            1012.0
        );
    } else {
        // `fid_DOT_t_DOT_value;k=` is 22 bytes, 241 allowed: 219 for the value, 17 of them
        // the hash.
        assert_eq!(
            point(&format!("fid.t.value;k={}", cut(&"v".repeat(300), 202))),
            1010.0
        );
    }

    assert_eq!(
        carbon.log_errors(),
        Vec::<String>::new(),
        "{}",
        carbon.log()
    );
    let want_shortened = corpus
        .iter()
        .filter(|c| if hashed { c.shortened.0 } else { c.shortened.1 })
        .count()
        + 1 // the long histogram
        + usize::from(!hashed); // the tagged histogram
    assert_eq!(stats.names_shortened, want_shortened as u64, "{stats:?}");
    assert_eq!(stats.lines_sent, series as u64, "{stats:?}");
    assert_eq!(stats.lines_dropped_too_long, 0, "{stats:?}");
    assert_eq!(stats.values_dropped_unnamed, 0, "{stats:?}");
}

#[test]
fn long_names_over_tcp_are_stored_exactly_by_a_carbon_with_hashed_tag_files() {
    if !require_carbon() {
        return;
    }
    long_names_are_stored_exactly(true, false);
}

#[test]
fn long_names_over_tcp_are_stored_exactly_by_a_carbon_with_readable_tag_files() {
    if !require_carbon() {
        return;
    }
    long_names_are_stored_exactly(false, false);
}

#[test]
fn long_names_as_pickle_are_stored_exactly_by_a_carbon_with_hashed_tag_files() {
    if !require_carbon() {
        return;
    }
    long_names_are_stored_exactly(true, true);
}

#[test]
fn long_names_as_pickle_are_stored_exactly_by_a_carbon_with_readable_tag_files() {
    if !require_carbon() {
        return;
    }
    long_names_are_stored_exactly(false, true);
}

/// The premise, checked: what carbon does with a name we no longer send.
#[test]
fn carbon_loses_a_component_over_255_bytes_and_logs_file_name_too_long() {
    if !require_carbon() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let now = carbon::unix_now();
    let line = format!("raw.{} 1 {now}\nraw.ok 2 {now}\n", "a".repeat(256));
    send_tcp(carbon.line_addr(), line.as_bytes()).expect("sends");
    let ok = carbon.wait_for_points("raw.ok", WAIT, |p| !p.is_empty());
    assert_eq!(ok.len(), 1, "{}", carbon.log());
    let deadline = Instant::now() + WAIT;
    while carbon.log_errors().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let errors = carbon.log_errors().join("\n");
    assert!(errors.contains("File name too long"), "{}", carbon.log());
    assert_eq!(carbon.wsp_files(), [PathBuf::from("raw/ok.wsp")]);
}

/// Plain StatsD names through Etsy statsd's Graphite backend into carbon: statsd adds its
/// own short components (`statsd.counters.`, `.count`), ours are at most 251 bytes. With
/// DogStatsD-style tags, an empty-valued label is left out, so carbon gets no bare tag.
#[test]
fn long_plain_statsd_names_reach_carbon_through_etsy_statsds_graphite_backend() {
    let have_statsd = require_etsy_statsd();
    let have_carbon = require_carbon();
    if !(have_statsd && have_carbon) {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let statsd = EtsyStatsd::start_with_graphite(carbon.line_addr()).expect("statsd starts");
    let (recorder, exporter) = ExporterBuilder::statsd(format!("tcp://{}", statsd.tcp_addr()))
        .with_label_handling(LabelHandling::DogStatsd)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    let long = [
        (format!("etsy.{}", "a".repeat(300)), 11u32),
        (format!("etsy.{}.x", "b".repeat(5000)), 12),
        (format!("etsy.{}", "c".repeat(251)), 13),
    ];
    metrics::with_local_recorder(&recorder, || {
        for (name, v) in &long {
            metrics::counter!(name.clone()).increment(u64::from(*v));
        }
        metrics::counter!("etsy.empty", "route" => "").increment(14);
        metrics::counter!("etsy.tagged", "env" => "prod").increment(15);
    });
    guard.handle().flush().expect("flush");
    let stats = guard.shutdown().expect("shutdown");
    assert_eq!(stats.names_shortened, 2, "{stats:?}");

    let count = |series: &str| {
        let points = carbon.wait_for_points(series, WAIT, |p| !p.is_empty());
        points.iter().map(|p| p.1).sum::<f64>()
    };
    let path = |name: &str| {
        let parts: Vec<String> = name.split('.').map(component).collect();
        format!("statsd.counters.{}.count", parts.join("."))
    };
    for (name, v) in &long {
        assert_eq!(
            count(&path(name)),
            f64::from(*v),
            "{name:.40}: {:?}\n{}\n{}",
            carbon.wsp_files(),
            carbon.log(),
            statsd.log()
        );
    }
    assert_eq!(count("statsd.counters.etsy.empty.count"), 14.0);
    assert_eq!(count("statsd.counters.etsy.tagged.count;env=prod"), 15.0);
    assert_eq!(statsd.bad_lines(), Vec::<String>::new());
    assert_eq!(
        carbon.log_errors(),
        Vec::<String>::new(),
        "{}",
        carbon.log()
    );
}
