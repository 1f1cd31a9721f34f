//! Fidelity of labels sent as DogStatsD-style tags in plain StatsD mode
//! (`LabelHandling::DogStatsd`, `name:1|c|#k:v`) through real Etsy statsd 0.9.0 (UDP) and its
//! graphite backend into a real carbon-cache (`TAG_HASH_FILENAMES = False`: readable file
//! names of at most 255 bytes), read back from the whisper files.
//!
//! What happens on the way, and why every character class is in the corpus: Etsy splits the
//! line at `|#` and the tags at `,`, replaces the *first* `;` of each tag with `_` and its
//! first `:` with `=`, joins the tags to the key with `;`, then sanitises the whole key
//! (whitespace to `_`, `/` to `-`, anything but `[A-Za-z0-9_.;=-]` dropped; `stats.js`,
//! `handlePacket` and `sanitizeKeyName`). Its graphite backend splits the key at `;` and puts
//! the namespace and the stat before the tags (`backends/graphite.js`, `format`). Carbon then
//! rejects a tag with an empty key or value, a key with `;!^=`, a value starting with `~`
//! (`carbon/util.py`, `TaggedSeries.validateTagAndValue`, `parse_carbon`), replaces a tag
//! called `name` by the metric name, and fails to store a readable file name over 255 bytes.
//! So every label must arrive exactly as the exporter rendered it, or two of the exporter's
//! series could meet in one carbon series (or one vanish) without the exporter knowing.
// The real-receiver harness (tests/support/receivers.rs) talks over Unix sockets.
#![cfg(unix)]
#![allow(
    clippy::float_cmp,
    reason = "every compared value is a small integer, written and parsed exactly"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]
#![allow(
    clippy::duplicate_mod,
    reason = "carbon.rs and receivers.rs each load process.rs; it holds no state, only helpers"
)]
#![allow(
    clippy::print_stderr,
    reason = "the stored-vs-recorded figures are printed for the report"
)]

#[path = "support/carbon.rs"]
mod carbon;
#[path = "support/receivers.rs"]
mod receivers;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use carbon::{Carbon, require_carbon};
use metrics_exporter_statsd_graphite::{ExporterBuilder, LabelHandling};
use receivers::{ETSY_TIMER_STATS, EtsyStatsd, require_etsy_statsd};

const WAIT: Duration = Duration::from_secs(20);

/// A value too long for a readable tagged file name, and one sharing its first 280 bytes.
fn long(tail: char) -> String {
    let mut s = "x".repeat(280);
    s.extend(std::iter::repeat_n(tail, 20));
    s
}

/// One counter of the corpus: its name, its labels, what it adds, and the tags carbon must
/// store it under (`None` for a value the exporter must shorten, checked by its form).
struct Case {
    name: &'static str,
    labels: Vec<(String, String)>,
    delta: u64,
    tags: Option<&'static str>,
}

fn case(name: &'static str, labels: &[(&str, &str)], delta: u64, tags: &'static str) -> Case {
    Case {
        name,
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        delta,
        tags: Some(tags),
    }
}

/// The hostile corpus. Pairs that clean up alike (`et.merge`, `et.merge_key`) must be merged
/// by the exporter into one series carrying the sum.
fn corpus() -> Vec<Case> {
    let mut cases = vec![
        case("et.semi", &[("k", "a;b;c")], 1, ";k=a_b_c"),
        case("et.equals", &[("k=x", "v=w")], 2, ";k_x=v=w"),
        case(
            "et.tilde",
            &[("k", "~lead"), ("m", "in~side")],
            3,
            ";k=_lead;m=in_side",
        ),
        case("et.tildekey", &[("~k", "v")], 4, ";_k=v"),
        case("et.slash", &[("a/b", "/api/v1")], 5, ";a-b=-api-v1"),
        case("et.dot", &[("a.b", "x.y")], 6, ";a.b=x.y"),
        case("et.colon", &[("a:b", "c:d:")], 7, ";a_b=c_d_"),
        case("et.separators", &[("k,#|", "a,b#c|d")], 8, ";k___=a_b_c_d"),
        case("et.space", &[("my key", "a b\tc")], 9, ";my_key=a_b_c"),
        case(
            "et.unicode",
            &[("r\u{e9}gion", "\u{e9}t\u{e9}")],
            10,
            ";r_gion=_t_",
        ),
        case("et.emoji", &[("k", "\u{1F600}")], 11, ";k=_"),
        case("et.emojikey", &[("\u{1F600}", "v")], 12, ";_=v"),
        case(
            "et.punct",
            &[("k", "a!b@c$d%e^f&g*h(i)j+k")],
            13,
            ";k=a_b_c_d_e_f_g_h_i_j_k",
        ),
        case("et.name", &[("name", "x")], 14, ";name_=x"),
        case("et.emptykey", &[("", "v"), ("k", "w")], 15, ";k=w"),
        case("et.emptyvalue", &[("e", ""), ("k", "w")], 16, ";k=w"),
        // Two keys of one series that clean up alike: the later wins.
        case("et.samekey", &[("a b", "1"), ("a_b", "2")], 17, ";a_b=2"),
        case("et.merge", &[("k", "a b")], 18, ";k=a_b"),
        case("et.merge", &[("k", "a;b")], 19, ";k=a_b"),
        case("et.merge", &[("k", "a_b")], 20, ";k=a_b"),
        case("et.merge_key", &[("a~b", "v")], 21, ";a_b=v"),
        case("et.merge_key", &[("a:b", "v")], 22, ";a_b=v"),
    ];
    for (name, tail) in [("et.long", 'y'), ("et.long", 'z')] {
        cases.push(Case {
            name,
            labels: vec![("k".to_owned(), long(tail))],
            delta: 23,
            tags: None,
        });
    }
    cases
}

/// Series merged in the corpus: two into `et.merge` and one into `et.merge_key`.
const MERGES: u64 = 3;

/// FNV-1a 64 of `bytes`, as the crate docs' "Long names" define the shortening suffix.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h: u64, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether `stored` is `original` shortened: a non-empty cut of it, `-` and the 16 hex digits
/// of its hash.
fn is_shortened(stored: &str, original: &str) -> bool {
    stored
        .strip_suffix(&format!("-{:016x}", fnv1a64(original.as_bytes())))
        .is_some_and(|cut| !cut.is_empty() && original.starts_with(cut))
}

/// Whether the series is one of Etsy's own (`statsd.statsd.*`, `statsd.counters.statsd.*`...).
fn etsy_own(series: &str) -> bool {
    [
        "statsd.",
        "counters.statsd.",
        "gauges.statsd.",
        "timers.statsd.",
    ]
    .iter()
    .any(|p| {
        series
            .strip_prefix("statsd.")
            .is_some_and(|s| s.starts_with(p))
    })
}

fn sum(points: &[(u64, f64)]) -> f64 {
    points.iter().map(|p| p.1).sum()
}

/// The series carbon must hold for the exact-tag cases, with the summed count of each.
fn wanted_counts(cases: &[Case]) -> Vec<(String, f64)> {
    let mut wanted: Vec<(String, f64)> = Vec::new();
    for c in cases {
        let Some(tags) = c.tags else { continue };
        let series = format!("statsd.counters.{}.count{tags}", c.name);
        #[allow(clippy::cast_precision_loss, reason = "small deltas")]
        let delta = c.delta as f64;
        match wanted.iter_mut().find(|(s, _)| *s == series) {
            Some(slot) => slot.1 += delta,
            None => wanted.push((series, delta)),
        }
    }
    wanted
}

#[test]
#[allow(
    clippy::too_many_lines,
    reason = "one run through both receivers, read back and checked in one place"
)]
fn hostile_dogstatsd_style_tags_reach_carbon_through_etsy_statsd_exactly_as_the_exporter_rendered_them()
 {
    let have_statsd = require_etsy_statsd();
    let have_carbon = require_carbon();
    if !(have_statsd && have_carbon) {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let statsd = EtsyStatsd::start_with_graphite(carbon.line_addr()).expect("statsd starts");
    let (recorder, exporter) = ExporterBuilder::statsd(format!("udp://{}", statsd.udp_addr()))
        .with_label_handling(LabelHandling::DogStatsd)
        .with_graphite_tag_hash_filenames(false)
        .with_default_histogram_unit(metrics::Unit::Milliseconds)
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    let cases = corpus();
    let long_timer = long('t');
    metrics::with_local_recorder(&recorder, || {
        for c in &cases {
            let labels: Vec<metrics::Label> = c
                .labels
                .iter()
                .map(|(k, v)| metrics::Label::new(k.clone(), v.clone()))
                .collect();
            metrics::counter!(c.name, labels).increment(c.delta);
        }
        metrics::gauge!("et.gauge", "k" => "a;b", "name" => "g").set(5.0);
        metrics::histogram!("et.timer", "k" => "~x:y").record(12.0);
        metrics::histogram!("et.timer_long", "k" => long_timer.clone()).record(13.0);
    });
    guard.handle().flush().expect("flush");
    let stats = guard.shutdown().expect("shutdown");

    let counts = wanted_counts(&cases);
    let gauge = "statsd.gauges.et.gauge;k=a_b;name_=g";
    let timer = |stat: &str| format!("statsd.timers.et.timer.{stat};k=_x_y");
    let stored = |s: &str| carbon.points(s);
    let shortened = |prefix: &str, original: &str| -> Vec<String> {
        carbon
            .series()
            .into_iter()
            .filter(|s| {
                s.strip_prefix(prefix)
                    .is_some_and(|rest| is_shortened(rest, original))
            })
            .collect()
    };
    let longs = [long('y'), long('z')];
    let complete = || {
        counts.iter().all(|(s, v)| sum(&stored(s)) == *v)
            && !stored(gauge).is_empty()
            && sum(&stored(&timer("sum"))) == 12.0
            && longs
                .iter()
                .all(|l| shortened("statsd.counters.et.long.count;k=", l).len() == 1)
            && shortened("statsd.timers.et.timer_long.sum_squares_90;k=", &long_timer).len() == 1
    };
    let deadline = Instant::now() + WAIT;
    while !complete() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Anything late (a stray series, a rejected line) has time to show.
    std::thread::sleep(Duration::from_millis(1500));
    let received = statsd.received_lines();
    let context = || {
        format!(
            "Etsy received {received:#?}\ncarbon series {:#?}",
            carbon.series()
        )
    };

    // One whisper file per expected series, no other.
    let mut want: BTreeSet<String> = BTreeSet::new();
    for (series, _) in &counts {
        want.insert(series.clone());
        want.insert(series.replacen(".count;", ".rate;", 1));
    }
    want.insert(gauge.to_owned());
    want.extend(ETSY_TIMER_STATS.iter().map(|s| timer(s)));
    for l in &longs {
        for stat in ["count", "rate"] {
            want.extend(shortened(&format!("statsd.counters.et.long.{stat};k="), l));
        }
    }
    for stat in ETSY_TIMER_STATS {
        want.extend(shortened(
            &format!("statsd.timers.et.timer_long.{stat};k="),
            &long_timer,
        ));
    }
    let got: BTreeSet<String> = carbon
        .series()
        .into_iter()
        .filter(|s| !etsy_own(s))
        .collect();
    let exact = counts.iter().filter(|(s, v)| sum(&stored(s)) == *v).count();
    let missing: Vec<&String> = want.difference(&got).collect();
    let unexpected: Vec<&String> = got.difference(&want).collect();
    eprintln!(
        "FIGURES etsy-tags: recorded {} label sets ({} counters, 1 gauge, 2 timers) -> {} exporter series ({} merged, {} shortened); carbon stored {} of {} expected series ({} counter values exact), {} missing, {} unexpected",
        cases.len() + 3,
        cases.len(),
        stats.series,
        stats.series_merged,
        stats.names_shortened,
        want.len() - missing.len(),
        want.len(),
        exact,
        missing.len(),
        unexpected.len()
    );
    if !(missing.is_empty() && unexpected.is_empty()) {
        eprintln!("missing {missing:#?}\nunexpected {unexpected:#?}");
    }
    assert_eq!(
        carbon.log_errors(),
        Vec::<String>::new(),
        "carbon rejects nothing; {}",
        context()
    );
    assert_eq!(statsd.bad_lines(), Vec::<String>::new(), "{}", context());

    // Exact values.
    for (series, want) in &counts {
        assert_eq!(sum(&stored(series)), *want, "{series}; {}", context());
    }
    let gauge_points = stored(gauge);
    assert!(
        !gauge_points.is_empty() && gauge_points.iter().all(|p| p.1 == 5.0),
        "{gauge}: {gauge_points:?}; {}",
        context()
    );
    assert_eq!(sum(&stored(&timer("count"))), 1.0, "{}", context());
    assert_eq!(sum(&stored(&timer("sum"))), 12.0, "{}", context());
    for l in &longs {
        for stat in ["count", "rate"] {
            let found = shortened(&format!("statsd.counters.et.long.{stat};k="), l);
            assert_eq!(found.len(), 1, "{stat} of a long value; {}", context());
        }
        let file = shortened("statsd.counters.et.long.count;k=", l);
        assert_eq!(sum(&stored(&file[0])), 23.0, "{}", context());
    }
    for stat in ETSY_TIMER_STATS {
        let found = shortened(
            &format!("statsd.timers.et.timer_long.{stat};k="),
            &long_timer,
        );
        assert_eq!(
            found.len(),
            1,
            "timer {stat} of a long value; {}",
            context()
        );
    }

    assert_eq!(
        (missing, unexpected),
        (Vec::<&String>::new(), Vec::<&String>::new()),
        "{}",
        context()
    );
    assert_eq!(stats.series_merged, MERGES, "{stats:?}");
    assert_eq!(stats.names_shortened, 3, "{stats:?}");
}
