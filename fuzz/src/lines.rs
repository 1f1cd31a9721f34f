//! The StatsD line encoder fuzz target: whatever the name, value, tags, fields and dialect,
//! [`MetricLine::encode`] either refuses (and writes nothing) or writes one line (two for the
//! Etsy negative-gauge pair) that reads back, the way the Agent and Etsy statsd split lines,
//! as exactly one metric of the type asked for, with the name, tags and fields given.

use arbitrary::Arbitrary;
use metrics_exporter_statsd_graphite::{
    Cardinality, Dialect, MetricLine, MetricType, MetricValue,
};

use crate::{Float, Text};

#[derive(Debug, Arbitrary)]
pub enum ArbLineValue {
    Integer(i64),
    Float(Float),
    GaugeDelta(Float),
    Text(Text),
}

#[derive(Debug, Arbitrary)]
pub struct LineInput {
    dogstatsd: bool,
    name: Text,
    value: ArbLineValue,
    kind: u8,
    rate: Option<Float>,
    tags: Vec<(Text, Text)>,
    container_id: Option<Text>,
    external_data: Option<Text>,
    cardinality: Option<u8>,
    timestamp: Option<u64>,
}

const KINDS: [(MetricType, &str); 6] = [
    (MetricType::Counter, "c"),
    (MetricType::Gauge, "g"),
    (MetricType::Timer, "ms"),
    (MetricType::Histogram, "h"),
    (MetricType::Distribution, "d"),
    (MetricType::Set, "s"),
];

const LEVELS: [Cardinality; 4] = [
    Cardinality::None,
    Cardinality::Low,
    Cardinality::Orchestrator,
    Cardinality::High,
];

pub fn lines(input: &LineInput) {
    let dialect = if input.dogstatsd { Dialect::DogStatsd } else { Dialect::Statsd };
    let name = input.name.get();
    let text = match &input.value {
        ArbLineValue::Text(t) => t.get(),
        _ => String::new(),
    };
    let value = match &input.value {
        ArbLineValue::Integer(v) => MetricValue::Integer(*v),
        ArbLineValue::Float(f) => MetricValue::Float(f.get()),
        ArbLineValue::GaugeDelta(f) => MetricValue::GaugeDelta(f.get()),
        ArbLineValue::Text(_) => MetricValue::Text(&text),
    };
    let (kind, symbol) = KINDS[usize::from(input.kind) % KINDS.len()];
    let owned: Vec<(String, String)> = input.tags.iter().map(|(k, v)| (k.get(), v.get())).collect();
    let tags: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let container = input.container_id.as_ref().map(Text::get);
    let external = input.external_data.as_ref().map(Text::get);
    let mut line = MetricLine::new(&name, value, kind).tags(&tags);
    if let Some(rate) = &input.rate {
        line = line.sample_rate(rate.get());
    }
    if let Some(id) = &container {
        line = line.container_id(id);
    }
    if let Some(data) = &external {
        line = line.external_data(data);
    }
    let card = input.cardinality.map(|c| LEVELS[usize::from(c) % LEVELS.len()]);
    if let Some(level) = card {
        line = line.cardinality(level);
    }
    if let Some(ts) = input.timestamp {
        line = line.timestamp(ts);
    }
    let mut out = b"before".to_vec();
    if line.encode(dialect, &mut out).is_err() {
        assert_eq!(out, b"before", "a refused line writes nothing");
        return;
    }
    let written = std::str::from_utf8(&out[6..]).expect("UTF-8");
    if dialect == Dialect::DogStatsd {
        // The Agent reads a line starting with `_e{` or `_sc` as an event or a service check.
        assert!(!written.starts_with("_e{") && !written.starts_with("_sc"), "{written:?}");
    }
    let body = written.strip_suffix('\n').expect("ends with a newline");
    let parts: Vec<&str> = body.split('\n').collect();
    let pair = parts.len() == 2;
    assert!(parts.len() == 1 || pair, "one line, or the Etsy pair: {written:?}");
    if pair {
        assert_eq!(dialect, Dialect::Statsd);
        assert_eq!(kind, MetricType::Gauge);
    }
    for (i, part) in parts.iter().enumerate() {
        // Both the Agent and Etsy statsd cut the name at the first `:` and the value at `|`.
        let (got_name, rest) = part.split_once(':').expect("a name and a value");
        assert_eq!(got_name, name, "{written:?}");
        let mut fields = rest.split('|');
        let got_value = fields.next().expect("a value");
        assert!(!got_value.is_empty() && !got_value.contains(':'), "one value: {written:?}");
        if pair && i == 0 {
            assert_eq!(got_value, "0");
        } else if let MetricValue::Text(t) = value {
            assert_eq!(got_value, t);
        }
        if kind != MetricType::Set || !matches!(value, MetricValue::Text(_)) {
            let v: f64 = got_value.parse().expect("a number");
            assert!(v.is_finite(), "{written:?}");
        }
        assert_eq!(fields.next(), Some(symbol), "{written:?}");
        let rate = input.rate.as_ref().map(|r| r.get());
        check_fields(fields, &tags, rate, container.as_deref(), external.as_deref(), card, input.timestamp, dialect);
    }
}

fn check_fields<'a>(
    fields: impl Iterator<Item = &'a str>,
    tags: &[(&str, &str)],
    rate: Option<f64>,
    container: Option<&str>,
    external: Option<&str>,
    card: Option<Cardinality>,
    timestamp: Option<u64>,
    dialect: Dialect,
) {
    let mut seen_tags = None;
    let (mut c, mut e, mut k, mut t) = (None, None, None, None);
    for field in fields {
        if field.starts_with('@') {
            let r: f64 = field[1..].parse().expect("a rate");
            assert!(r > 0.0 && r < 1.0 && !field.contains('e'), "{field}");
            // The written rate is the asked one rounded to 9 places, never further off.
            let asked = rate.expect("a rate was asked for");
            assert!((r - asked).abs() <= 0.5e-9 + 1e-15, "asked {asked}, wrote {field}");
        } else if let Some(list) = field.strip_prefix('#') {
            seen_tags = Some(list.to_owned());
        } else if let Some(v) = field.strip_prefix("card:") {
            k = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix("c:") {
            c = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix("e:") {
            e = Some(v.to_owned());
        } else if let Some(v) = field.strip_prefix('T') {
            // The Agent reads `|T` as an i64.
            let agent: i64 = v.parse().expect("a timestamp the Agent can read");
            t = Some(u64::try_from(agent).expect("a positive timestamp"));
        } else {
            panic!("an unknown field {field:?}");
        }
    }
    match seen_tags {
        None => assert!(tags.is_empty()),
        Some(list) => {
            let got: Vec<(&str, &str)> = list
                .split(',')
                .map(|tag| tag.split_once(':').unwrap_or((tag, "")))
                .collect();
            assert_eq!(got, tags);
        }
    }
    assert_eq!(c.as_deref(), container);
    assert_eq!(e.as_deref(), external);
    assert_eq!(k.as_deref(), card.map(Cardinality::as_str));
    assert_eq!(t, timestamp);
    if dialect == Dialect::Statsd {
        assert!(c.is_none() && e.is_none() && k.is_none() && t.is_none());
    }
}
