use metrics::Key;

use super::*;
use crate::ExporterBuilder;
use crate::encode::test_util::{datagrams, labels};
use crate::encode::{Rendered, SeriesKind};

fn members(list: &[&str]) -> Vec<String> {
    list.iter().map(|m| (*m).to_owned()).collect()
}

/// The datagrams one interval of `set` (labels `pairs`) with `list` as members produces.
fn encode(
    builder: &ExporterBuilder,
    max: usize,
    pairs: &[(&str, &str)],
    list: &[&str],
) -> (Vec<String>, EncodeTally) {
    let encoder = builder.encoder().unwrap();
    let mut r = Rendered::default();
    let key = Key::from_parts("users", labels(pairs));
    encoder.render_series(SeriesKind::Set, &key, &mut r);
    let cx = FlushContext::at(1_700_000_000);
    datagrams(max, |w, t| encoder.set(&r, &members(list), &cx, w, t))
}

type Row<'a> = (ExporterBuilder, &'a [(&'a str, &'a str)], &'a str);

/// (A datagram's last line has no newline.)
#[test]
fn set_members_go_out_one_line_each_with_the_series_tags_as_each_protocol_writes_them() {
    let tagged = [("region", "eu")];
    let table: Vec<Row<'_>> = vec![
        (
            ExporterBuilder::statsd("127.0.0.1:8125"),
            &tagged,
            "users.eu:alice|s\nusers.eu:b\u{f6}b #1|s",
        ),
        (
            ExporterBuilder::statsd("127.0.0.1:8125").with_prefix("app"),
            &[],
            "app.users:alice|s\napp.users:b\u{f6}b #1|s",
        ),
        (
            ExporterBuilder::statsd("127.0.0.1:8125")
                .with_label_handling(crate::LabelHandling::DogStatsd),
            &tagged,
            "users:alice|s|#region:eu\nusers:b\u{f6}b #1|s|#region:eu",
        ),
        (
            ExporterBuilder::dogstatsd("127.0.0.1:8125")
                .with_global_labels([("env", "prod")])
                .with_timestamps(true),
            &tagged,
            "users:alice|s|#env:prod,region:eu\nusers:b\u{f6}b #1|s|#env:prod,region:eu",
        ),
        (
            ExporterBuilder::graphite("127.0.0.1:2003"),
            &tagged,
            "users;region=eu 2 1700000000",
        ),
    ];
    for (builder, pairs, want) in table {
        let (got, t) = encode(&builder, 1432, pairs, &["alice", "b\u{f6}b #1"]);
        assert_eq!(got.concat(), want);
        assert_eq!(t.too_long, 0);
    }
}

#[test]
fn an_empty_interval_is_no_line_for_statsd_and_a_zero_for_graphite() {
    let (got, _) = encode(&ExporterBuilder::statsd("127.0.0.1:8125"), 1432, &[], &[]);
    assert!(got.is_empty());
    let (got, _) = encode(&ExporterBuilder::graphite("127.0.0.1:2003"), 1432, &[], &[]);
    assert_eq!(got.concat(), "users 0 1700000000");
}

#[test]
fn a_member_whose_line_cannot_fit_a_payload_is_dropped_and_counted_alone() {
    let long = "x".repeat(100);
    let (got, t) = encode(
        &ExporterBuilder::statsd("127.0.0.1:8125"),
        64,
        &[],
        &["a", &long, "b"],
    );
    assert_eq!(got.concat(), "users:a|s\nusers:b|s");
    assert_eq!((t.lines, t.values, t.too_long), (2, 2, 1));
}

#[test]
fn a_set_shares_its_receivers_namespace_with_gauges_except_at_etsy_and_collectd() {
    use crate::encode::HistogramKind::Timer;
    let class = |b: &ExporterBuilder, kind| b.encoder().unwrap().name_class(kind, Timer);
    let statsd = ExporterBuilder::statsd("127.0.0.1:8125");
    for other in [
        SeriesKind::Counter,
        SeriesKind::Gauge,
        SeriesKind::Histogram,
    ] {
        assert_ne!(class(&statsd, SeriesKind::Set), class(&statsd, other));
    }
    for b in [
        ExporterBuilder::dogstatsd("127.0.0.1:8125"),
        ExporterBuilder::graphite("127.0.0.1:2003"),
    ] {
        assert_eq!(class(&b, SeriesKind::Set), class(&b, SeriesKind::Gauge));
        assert_eq!(class(&b, SeriesKind::Set), class(&b, SeriesKind::Counter));
    }
    let typed = ExporterBuilder::statsd("127.0.0.1:8125").with_type_prefixes(true);
    let mut r = Rendered::default();
    let key = Key::from_static_name("users");
    typed
        .encoder()
        .unwrap()
        .render_series(SeriesKind::Set, &key, &mut r);
    assert_eq!(r.name(), b"sets.users");
}
