use super::{Bad, Dialect, Kind, parse_line};

fn ok(dialect: Dialect, line: &str) -> (Kind, String, usize) {
    match parse_line(dialect, line.as_bytes()) {
        Ok(p) => (p.kind, p.series, p.values),
        Err(bad) => panic!("{line:?} flagged: {bad}"),
    }
}

fn bad(dialect: Dialect, line: &str) -> Bad {
    match parse_line(dialect, line.as_bytes()) {
        Ok(p) => panic!("{line:?} parsed as {p:?}"),
        Err(bad) => bad,
    }
}

#[test]
fn statsd_lines_of_every_type_parse() {
    use Dialect::Statsd;
    assert_eq!(
        ok(Statsd, "gorets:1|c"),
        (Kind::Counter, "gorets|c".into(), 1)
    );
    assert_eq!(ok(Statsd, "gorets:1|c|@0.1").0, Kind::Counter);
    assert_eq!(
        ok(Statsd, "gorets:|c").0,
        Kind::Counter,
        "empty counts as 1"
    );
    assert_eq!(ok(Statsd, "gaugor:333|g").0, Kind::Gauge);
    assert_eq!(ok(Statsd, "gaugor:-10|g").0, Kind::Gauge);
    assert_eq!(ok(Statsd, "gaugor:+4|g").0, Kind::Gauge);
    assert_eq!(ok(Statsd, "glork:320|ms|@0.1").0, Kind::Timer);
    assert_eq!(ok(Statsd, "glork:0.25|h").0, Kind::Histogram);
    assert_eq!(ok(Statsd, "uniques:765|s").0, Kind::Set);
    assert_eq!(ok(Statsd, "uniques:user-a|s").0, Kind::Set);
    assert_eq!(ok(Statsd, "a.b-c_d.e:1.5e3|ms").0, Kind::Timer);
    assert_eq!(
        ok(Statsd, "key:1|c:3|c"),
        (Kind::Counter, "key|c".into(), 2)
    );
    assert_eq!(
        ok(Statsd, "req:1|c|#route:/a,env:prod"),
        (Kind::Counter, "req|c|#env:prod,route:/a".into(), 1)
    );
}

#[test]
fn statsd_malformed_lines_are_flagged_with_the_reason() {
    use Dialect::Statsd;
    assert_eq!(bad(Statsd, "gorets"), Bad::MissingValue);
    assert_eq!(bad(Statsd, ":1|c"), Bad::MissingName);
    assert_eq!(bad(Statsd, "gorets:1"), Bad::MissingType);
    assert_eq!(bad(Statsd, "gorets:1|"), Bad::MissingType);
    assert_eq!(bad(Statsd, "gorets:1|x"), Bad::UnknownType("x".into()));
    assert_eq!(bad(Statsd, "gorets:1|d"), Bad::UnknownType("d".into()));
    assert!(matches!(
        bad(Statsd, "gorets:abc|c"),
        Bad::Value {
            why: "not a number",
            ..
        }
    ));
    assert!(matches!(
        bad(Statsd, "gorets:NaN|g"),
        Bad::Value {
            why: "not finite",
            ..
        }
    ));
    assert!(matches!(
        bad(Statsd, "g:inf|g"),
        Bad::Value {
            why: "not finite",
            ..
        }
    ));
    assert!(matches!(bad(Statsd, "t:-1|ms"), Bad::Value { value, .. } if value == "-1"));
    assert!(matches!(bad(Statsd, "s:|s"), Bad::Value { .. }));
    assert_eq!(bad(Statsd, "c:1|c|@"), Bad::Rate("@".into()));
    assert_eq!(bad(Statsd, "c:1|c|@2"), Bad::Rate("@2".into()));
    assert_eq!(bad(Statsd, "c:1|c|@x"), Bad::Rate("@x".into()));
    assert_eq!(bad(Statsd, "c:1|c|zz"), Bad::UnknownField("zz".into()));
    assert_eq!(bad(Statsd, "my key:1|c"), Bad::WhitespaceInName);
    assert!(matches!(
        bad(Statsd, "c:1|c|#a,,b"),
        Bad::Tag {
            why: "empty tag (stray comma)",
            ..
        }
    ));
    assert!(
        matches!(bad(Statsd, "c:1|c:x|c"), Bad::Value { .. }),
        "every sample is checked"
    );
    assert_eq!(parse_line(Statsd, b"c:\xff|c"), Err(Bad::NotUtf8));
}

#[test]
fn dogstatsd_lines_of_every_type_parse() {
    use Dialect::Dogstatsd as D;
    assert_eq!(
        ok(D, "page.views:1|c"),
        (Kind::Counter, "page.views|c".into(), 1)
    );
    assert_eq!(ok(D, "fuel:-5|g|#shell,env:prod").0, Kind::Gauge);
    assert_eq!(ok(D, "t:12.5|ms|@0.5").0, Kind::Timer);
    assert_eq!(ok(D, "h:1|h").0, Kind::Histogram);
    assert_eq!(
        ok(D, "lat:1.5:2:3.25|d"),
        (Kind::Distribution, "lat|d".into(), 3)
    );
    assert_eq!(ok(D, "lat:21::22|d").2, 2, "the Agent skips empty values");
    assert_eq!(ok(D, "users:alice|s").0, Kind::Set);
    assert_eq!(
        ok(D, "req:1|c|#route:/a,env:staging:east").1,
        "req|c|#env:staging:east,route:/a"
    );
    // Fields after the type in any order, as the Agent matches them by prefix.
    assert_eq!(
        ok(
            D,
            "req:1|c|T1700000000|#a:b|@0.5|c:ci-abc|e:it-false|card:low"
        )
        .0,
        Kind::Counter
    );
    assert_eq!(ok(D, "_e{5,4}:title|text|p:low|t:info|#a:b").0, Kind::Event);
    assert_eq!(
        ok(D, "_e{3,1}:hé|a|#x:y").0,
        Kind::Event,
        "lengths are in bytes"
    );
    assert_eq!(
        ok(D, "_sc|db.ok|0|d:1700000000|h:web1|#a:b|m:all good|really").0,
        Kind::ServiceCheck
    );
}

#[test]
fn dogstatsd_malformed_lines_are_flagged_with_the_reason() {
    use Dialect::Dogstatsd as D;
    assert_eq!(bad(D, "page.views"), Bad::MissingValue);
    assert_eq!(bad(D, "page.views:1"), Bad::MissingType);
    assert_eq!(bad(D, "page.views:1|q"), Bad::UnknownType("q".into()));
    assert!(matches!(
        bad(D, "x:|c"),
        Bad::Value {
            why: "empty value",
            ..
        }
    ));
    assert!(matches!(bad(D, "x:1:zz|d"), Bad::Value { value, .. } if value == "zz"));
    assert!(matches!(bad(D, "x:a:b|s"), Bad::Value { .. }));
    assert!(matches!(
        bad(D, "x:1|c|#"),
        Bad::Tag {
            why: "empty tag list",
            ..
        }
    ));
    assert!(matches!(
        bad(D, "x:1|c|#a,"),
        Bad::Tag {
            why: "empty tag (stray comma)",
            ..
        }
    ));
    assert!(matches!(
        bad(D, "x:1|c|#:v"),
        Bad::Tag {
            why: "empty key",
            ..
        }
    ));
    assert!(matches!(bad(D, "x:1|c|#k:"), Bad::Tag { tag, .. } if tag == "k:"));
    assert!(matches!(
        bad(D, "x:1|c|#a b"),
        Bad::Tag {
            why: "whitespace or control character",
            ..
        }
    ));
    assert!(matches!(
        bad(D, "x:1|c|Tsoon"),
        Bad::Timestamp {
            why: "want whole unix seconds",
            ..
        }
    ));
    assert!(matches!(
        bad(D, "x:1|c|T0"),
        Bad::Timestamp {
            why: "must be positive",
            ..
        }
    ));
    assert!(matches!(
        bad(D, "x:1|d|T1700000000"),
        Bad::Timestamp {
            why: "only counts and gauges carry one",
            ..
        }
    ));
    assert_eq!(bad(D, "x:1|c|@1.5"), Bad::Rate("@1.5".into()));
    assert_eq!(bad(D, "x:1|c|zz"), Bad::UnknownField("zz".into()));
    assert_eq!(bad(D, "x:1|c|c:"), Bad::UnknownField("c:".into()));
    assert_eq!(
        bad(D, "_e{5,4}:title|tex"),
        Bad::Event("text shorter than its length")
    );
    assert_eq!(
        bad(D, "_e{4,4}:title|text"),
        Bad::Event("title length does not match")
    );
    assert_eq!(
        bad(D, "_e{x,4}:title|text"),
        Bad::Event("lengths are not two numbers")
    );
    assert_eq!(
        bad(D, "_e{5,4}:title|text|p:urgent"),
        Bad::UnknownField("p:urgent".into())
    );
    assert_eq!(
        bad(D, "_sc|db.ok|7"),
        Bad::ServiceCheck("status must be 0, 1, 2 or 3")
    );
    assert_eq!(bad(D, "_sc||0"), Bad::ServiceCheck("empty name"));
}

#[test]
fn graphite_plain_and_tagged_points_parse() {
    use Dialect::Graphite as G;
    assert_eq!(
        ok(G, "a.b.c 1 1700000000"),
        (Kind::Point, "a.b.c".into(), 1)
    );
    assert_eq!(ok(G, "a.b.c -1.5e3 1700000000.5").0, Kind::Point);
    assert_eq!(ok(G, "a.b.c 1 -1").0, Kind::Point, "-1 means now");
    assert_eq!(
        ok(G, "  a.b.c\t1   1700000000  ").0,
        Kind::Point,
        "carbon strips and splits"
    );
    assert_eq!(
        ok(G, "disk.used;rack=a1;datacenter=dc1 42 1700000000").1,
        "disk.used;datacenter=dc1;rack=a1",
        "tags are sorted, as carbon does"
    );
    assert_eq!(ok(G, "q;route=/a=b 1 1700000000").1, "q;route=/a=b");
}

#[test]
fn graphite_malformed_lines_are_flagged_with_the_reason() {
    use Dialect::Graphite as G;
    assert_eq!(
        bad(G, "my path.x 1 1700000000"),
        Bad::WhitespaceInPath { fields: 4 }
    );
    assert_eq!(bad(G, "a.b"), Bad::MissingValue);
    assert!(matches!(
        bad(G, "a.b 1"),
        Bad::Timestamp { why: "missing", .. }
    ));
    assert!(matches!(
        bad(G, "a.b one 1700000000"),
        Bad::Value {
            why: "not a number",
            ..
        }
    ));
    assert!(matches!(
        bad(G, "a.b nan 1700000000"),
        Bad::Value {
            why: "not finite",
            ..
        }
    ));
    assert!(matches!(
        bad(G, "a.b 1 now"),
        Bad::Timestamp {
            why: "not a number",
            ..
        }
    ));
    assert!(matches!(
        bad(G, "a.b 1 -5"),
        Bad::Timestamp {
            why: "negative",
            ..
        }
    ));
    assert!(matches!(
        bad(G, "a.b 1 1700000000000"),
        Bad::Timestamp {
            why: "past 2106 (milliseconds?)",
            ..
        }
    ));
    assert!(matches!(
        bad(G, "a;k 1 1"),
        Bad::Tag {
            why: "want key=value",
            ..
        }
    ));
    assert!(matches!(
        bad(G, "a;=v 1 1"),
        Bad::Tag {
            why: "empty key",
            ..
        }
    ));
    assert!(matches!(
        bad(G, "a;k= 1 1"),
        Bad::Tag {
            why: "empty value",
            ..
        }
    ));
    assert!(matches!(
        bad(G, "a;k!=v 1 1"),
        Bad::Tag {
            why: "key holds `!` or `^`",
            ..
        }
    ));
    assert!(matches!(
        bad(G, "a;k=~v 1 1"),
        Bad::Tag {
            why: "value starts with `~`",
            ..
        }
    ));
    assert!(
        matches!(bad(G, "a;k=v; 1 1"), Bad::Tag { .. }),
        "an empty tag after `;`"
    );
    assert_eq!(bad(G, ";k=v 1 1"), Bad::MissingName);
    let long = format!("{} 1 1", "a".repeat(super::GRAPHITE_MAX_LINE));
    assert!(matches!(bad(G, &long), Bad::TooLong { max: 16_384, .. }));
}

#[test]
fn the_exporters_own_events_and_service_checks_parse_as_the_agent_reads_them() {
    use metrics_exporter_statsd_graphite::{
        AlertType, Event, EventPriority, ServiceCheck, ServiceCheckStatus,
    };
    let events = [
        Event::new("Deploy", "v1.2\nall green | 🚀")
            .with_timestamp(1_700_000_000)
            .with_hostname("web|1")
            .with_aggregation_key("deploys")
            .with_priority(EventPriority::Low)
            .with_source_type("ci")
            .with_alert_type(AlertType::Success)
            .with_tag("env", "prod,eu"),
        Event::new("café|x", ""),
    ];
    for e in events {
        let mut line = Vec::new();
        e.encode(&mut line).unwrap();
        let line = String::from_utf8(line).unwrap();
        assert_eq!(ok(Dialect::Dogstatsd, &line).0, Kind::Event, "{line}");
    }
    let checks = [
        ServiceCheck::new("db.reachable", ServiceCheckStatus::Critical)
            .with_timestamp(1_700_000_000)
            .with_hostname("db-1")
            .with_tag("role", "primary")
            .with_message("timeout | retry\nm:later"),
        ServiceCheck::new("x", ServiceCheckStatus::Unknown),
    ];
    for c in checks {
        let mut line = Vec::new();
        c.encode(&mut line).unwrap();
        let line = String::from_utf8(line).unwrap();
        assert_eq!(
            ok(Dialect::Dogstatsd, &line).0,
            Kind::ServiceCheck,
            "{line}"
        );
    }
}
