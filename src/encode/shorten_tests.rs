//! Exact bytes of every shortening rule, through the functions and through the encoders that
//! use them. Expected hashes were computed with an independent FNV-1a implementation.

use metrics::Key;

use super::*;
use crate::encode::test_util::{datagrams, labels};
use crate::encode::{
    CounterMode, DogStatsdEncoder, GraphiteEncoder, GraphiteTags, HistogramKind, HistogramRules,
    LabelHandling, Rendered, SlotCarry, StatsdEncoder,
};
use crate::encode::{EncodeTally, FlushContext, PayloadWriter};

const CX: FlushContext = FlushContext::at(1_700_000_000);

fn graphite(hashed: bool) -> GraphiteEncoder {
    GraphiteEncoder::new(
        None,
        vec![],
        GraphiteTags::Tagged,
        CounterMode::Delta,
        0,
        &[0.5, 0.9, 0.99, 0.999],
        hashed,
    )
}

fn render_graphite(e: &GraphiteEncoder, name: &str, l: &[(&str, &str)]) -> Rendered {
    let mut r = Rendered::default();
    e.render(&Key::from_parts(name.to_owned(), labels(l)), &mut r);
    r
}

/// The series as one string: name then tags, as it goes on the line.
fn series(r: &Rendered) -> String {
    format!(
        "{}{}",
        String::from_utf8(r.name().to_vec()).unwrap(),
        String::from_utf8(r.tail().to_vec()).unwrap()
    )
}

fn rules() -> HistogramRules {
    HistogramRules {
        default: HistogramKind::Timer,
        by_prefix: Vec::new(),
    }
}

fn statsd(labels: LabelHandling) -> StatsdEncoder {
    StatsdEncoder::new(None, labels, vec![], rules())
}

fn text(r: &[u8]) -> String {
    String::from_utf8(r.to_vec()).unwrap()
}

#[test]
fn fnv1a_matches_the_published_test_vectors() {
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
}

#[test]
fn a_component_of_251_bytes_is_kept_and_one_of_252_is_cut_with_the_hash_of_all_of_it() {
    let e = graphite(true);
    let r = render_graphite(&e, &"a".repeat(251), &[]);
    assert_eq!(series(&r), "a".repeat(251));
    assert!(!r.shortened);

    let r = render_graphite(&e, &"a".repeat(252), &[]);
    assert_eq!(series(&r), format!("{}-f1051270b402f171", "a".repeat(234)));
    assert_eq!(r.name().len(), 251);
    assert!(r.shortened);
}

#[test]
fn components_of_300_and_10000_bytes_are_cut_to_251_with_their_own_hash() {
    let e = graphite(true);
    for (len, hash) in [(300, "ee7717eba7a17e21"), (10_000, "765b13e7190bac75")] {
        let r = render_graphite(&e, &format!("pre.{}.leaf", "a".repeat(len)), &[]);
        assert_eq!(
            series(&r),
            format!("pre.{}-{hash}.leaf", "a".repeat(234)),
            "{len}"
        );
    }
}

#[test]
fn a_cut_never_splits_a_multi_byte_character() {
    // `é` is two bytes; byte 234, where the cut would fall, is its second byte.
    let long = format!("{}{}", "x".repeat(233), "\u{e9}".repeat(20));
    let out = shorten_text(long.as_bytes(), COMPONENT_LIMIT);
    assert_eq!(text(&out), format!("{}-9c52442639148c67", "x".repeat(233)));
    assert_eq!(out.len(), 250);
}

#[test]
fn two_long_names_sharing_a_prefix_stay_distinct() {
    let e = graphite(true);
    let a = render_graphite(&e, &format!("{}a", "p".repeat(300)), &[]);
    let b = render_graphite(&e, &format!("{}b", "p".repeat(300)), &[]);
    assert_eq!(series(&a), format!("{}-4a6bc1b0aefca05c", "p".repeat(234)));
    assert_eq!(series(&b), format!("{}-4a6bc4b0aefca575", "p".repeat(234)));
}

#[test]
fn shortening_is_stable_across_calls_and_encoders() {
    let name = format!("svc.{}.x", "q".repeat(5000));
    let first = render_graphite(&graphite(true), &name, &[]);
    for _ in 0..3 {
        assert_eq!(render_graphite(&graphite(true), &name, &[]), first);
        assert_eq!(render_graphite(&graphite(false), &name, &[]), first);
    }
}

#[test]
fn a_whole_name_over_the_bound_is_cut_and_its_last_component_still_fits() {
    let name = vec!["c".repeat(251); 10].join(".");
    let r = render_graphite(&graphite(true), &name, &[]);
    // 2048 less the 10 bytes kept for `.count` (`_DOT_count` in readable file names).
    assert_eq!(r.name().len(), 2038);
    assert_eq!(series(&r), format!("{}-35be69bb64b9a391", &name[..2021]));
    assert!(r.name().split(|&b| b == b'.').all(|c| c.len() <= 251));
}

#[test]
fn a_whole_name_cut_deep_in_a_component_moves_the_cut_back_so_that_component_fits() {
    // Components start at 21, 273, ... 1785: the cut at 2021 would leave 236 bytes of the
    // component at 1785, 253 with the hash.
    let name = format!("{}.{}", "a".repeat(20), vec!["c".repeat(251); 9].join("."));
    let r = render_graphite(&graphite(true), &name, &[]);
    let last = r.name().split(|&b| b == b'.').next_back().unwrap();
    assert_eq!(last.len(), 251);
    assert_eq!(r.name().len(), 2019 + 17);
    assert_eq!(&r.name()[..2019], &name.as_bytes()[..2019]);
}

#[test]
fn histogram_summary_leaves_always_fit_after_a_shortened_name() {
    let e = graphite(true);
    let r = render_graphite(&e, &"h".repeat(300), &[]);
    let mut samples = vec![1.0, 2.0];
    let (d, _) = datagrams(65_000, |w, t| {
        e.histogram(&r, &mut samples, 2, &mut SlotCarry::default(), &CX, w, t);
    });
    let lines: Vec<&str> = d.iter().flat_map(|p| p.lines()).collect();
    assert_eq!(lines.len(), 9);
    let dir = format!("{}-0e8934f306ff03d5", "h".repeat(234));
    for (line, leaf) in lines.iter().zip([
        "count", "sum", "min", "max", "mean", "p50", "p90", "p99", "p999",
    ]) {
        let path = line.split(' ').next().unwrap();
        assert_eq!(path, format!("{dir}.{leaf}"));
    }
}

#[test]
fn with_hashed_tag_files_tags_are_kept_until_the_whole_name_passes_its_bound() {
    let e = graphite(true);
    let r = render_graphite(&e, "m", &[("k", &"v".repeat(300))]);
    assert_eq!(series(&r), format!("m;k={}", "v".repeat(300)));
    assert!(!r.shortened);
    let r = render_graphite(&e, "m", &[("k", &"v".repeat(3000))]);
    assert_eq!(
        series(&r),
        format!("m;k={}-c43513e300c89385", "v".repeat(2017))
    );
    assert_eq!(r.name().len() + r.tail().len(), 2038);
}

#[test]
fn with_readable_tag_files_the_longest_value_is_cut_just_enough_for_the_file_name() {
    let e = graphite(false);
    // Stored as `m;a=<y>;b=<x>` + `.wsp`: 507 bytes, 241 allowed (251 less `_DOT_count`).
    // The longest value is the second in key order: it alone is cut.
    let r = render_graphite(&e, "m", &[("a", &"y".repeat(200)), ("b", &"x".repeat(300))]);
    assert_eq!(
        series(&r),
        format!(
            "m;a={};b={}-e78ddf9f1ba85555",
            "y".repeat(200),
            "x".repeat(17)
        )
    );
    assert!(r.shortened);
}

#[test]
fn with_readable_tag_files_each_dot_counts_as_the_five_bytes_of_dot_escape() {
    let e = graphite(false);
    let r = render_graphite(&e, "m", &[("k", &"ab.".repeat(100))]);
    assert_eq!(
        series(&r),
        format!("m;k={}ab-444050f720e9fe41", "ab.".repeat(31))
    );
    let stored = series(&r).replace('.', "_DOT_");
    assert_eq!(stored.len(), 240);
}

#[test]
fn with_readable_tag_files_long_keys_are_cut_once_values_cannot_be() {
    let e = graphite(false);
    let r = render_graphite(&e, "m", &[(&"k".repeat(300), "v")]);
    assert_eq!(
        series(&r),
        format!("m;{}-1f2d4d02dcfcfcf1=v", "k".repeat(220))
    );
}

#[test]
fn with_readable_tag_files_every_summary_file_name_fits_255_bytes() {
    let e = graphite(false);
    let r = render_graphite(&e, "m.x", &[("k", &"v".repeat(300)), ("z", "1")]);
    let mut samples = vec![1.0];
    let (d, _) = datagrams(65_000, |w, t| {
        e.histogram(&r, &mut samples, 1, &mut SlotCarry::default(), &CX, w, t);
        e.counter(&r, 1, &mut SlotCarry::default(), &CX, w, t);
    });
    let longest = d
        .iter()
        .flat_map(|p| p.lines())
        .map(|l| l.split(' ').next().unwrap().replace('.', "_DOT_").len() + 4)
        .max();
    assert_eq!(longest, Some(255), "`.count` fills it exactly");
}

#[test]
fn with_readable_tag_files_too_many_long_tags_to_fit_are_not_sent() {
    let e = graphite(false);
    let long: Vec<(String, String)> = (0..20)
        .map(|i| (format!("{i:02}{}", "k".repeat(30)), "v".repeat(30)))
        .collect();
    let pairs: Vec<(&str, &str)> = long.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(!render_graphite(&e, "m", &pairs).sendable());
    // The default, hashed file names, has room for them.
    let r = render_graphite(&graphite(true), "m", &pairs);
    assert!(r.sendable() && !r.shortened);
}

#[test]
fn plain_statsd_names_get_the_same_component_limit_and_dogstatsd_names_do_not() {
    let key = Key::from_parts(format!("x.{}", "a".repeat(300)), labels(&[]));
    let mut r = Rendered::default();
    statsd(LabelHandling::FoldIntoName).render(&key, &mut r);
    assert_eq!(
        text(r.name()),
        format!("x.{}-ee7717eba7a17e21", "a".repeat(234))
    );
    assert!(r.shortened);

    let dd = DogStatsdEncoder::new(None, vec![], rules(), None, false);
    dd.render(&key, &mut r);
    assert_eq!(text(r.name()), format!("x.{}", "a".repeat(300)));
    assert!(!r.shortened);
}

#[test]
fn plain_statsd_folded_label_values_are_components_and_are_shortened_too() {
    let key = Key::from_parts("x", labels(&[("k", &"a".repeat(300))]));
    let mut r = Rendered::default();
    statsd(LabelHandling::FoldIntoName).render(&key, &mut r);
    assert_eq!(
        text(r.name()),
        format!("x.{}-ee7717eba7a17e21", "a".repeat(234))
    );
}

#[test]
fn plain_statsd_with_dogstatsd_tags_leaves_empty_valued_labels_out() {
    let e = statsd(LabelHandling::DogStatsd);
    let line = |l: &[(&str, &str)]| {
        let mut r = Rendered::default();
        e.render(&Key::from_parts("x", labels(l)), &mut r);
        let (d, _) = datagrams(1432, |w: &mut PayloadWriter, t: &mut EncodeTally| {
            e.counter(&r, 1, w, t);
        });
        d.concat()
    };
    assert_eq!(line(&[("route", "")]), "x:1|c");
    assert_eq!(line(&[]), "x:1|c");
    assert_eq!(line(&[("route", ""), ("a", "b")]), "x:1|c|#a:b");
}

#[test]
fn dogstatsd_keeps_an_empty_valued_label_as_a_bare_tag() {
    let e = DogStatsdEncoder::new(None, vec![], rules(), None, false);
    let mut r = Rendered::default();
    e.render(
        &Key::from_parts("x", labels(&[("route", ""), ("a", "b")])),
        &mut r,
    );
    let (d, _) = datagrams(1432, |w, t| e.counter(&r, 1, &CX, w, t));
    assert_eq!(d.concat(), "x:1|c|#a:b,route");
}

#[test]
fn tags_stay_sorted_by_key_after_their_keys_are_shortened() {
    // The longer key sorts second and is cut first: `kkk…-<hash>` then sorts before `kkk…k1`.
    let first = [vec![b'k'; 200], b"1".to_vec()].concat();
    let second = [vec![b'k'; 200], b"2".to_vec(), vec![b'x'; 20]].concat();
    let mut tags = vec![(first.clone(), b"v".to_vec()), (second, b"v".to_vec())];
    let mut name = b"m".to_vec();
    let changed = fit_tagged(TaggedBound::Readable, 0, &mut name, &mut tags);
    assert_eq!(changed, Some(true));
    assert_eq!(tags[1].0, first, "the uncut key now sorts last");
    assert!(
        tags[0].0.len() < 100,
        "the other was cut: {}",
        text(&tags[0].0)
    );
}
