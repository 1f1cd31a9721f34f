//! The events and service checks fuzz target: whatever the title, text, fields, tags and
//! message, the encoder writes one line that the Datadog Agent reads back (the algorithm of
//! `tests/support/agent_events.rs`) to what was given, cleaned only where the Agent could not
//! take it, or refuses an empty title or name.

use arbitrary::Arbitrary;
use metrics_exporter_statsd_graphite::{
    AlertType, EncodeError, Event, EventPriority, ServiceCheck, ServiceCheckStatus,
};

use crate::Text;

#[path = "../../tests/support/agent_events.rs"]
mod agent_events;

/// One event and one service check, from libFuzzer's bytes.
#[derive(Debug, Arbitrary)]
pub struct EventInput {
    title: Text,
    text: Text,
    hostname: Option<Text>,
    aggregation_key: Option<Text>,
    source_type: Option<Text>,
    timestamp: Option<u64>,
    flags: u8,
    tags: Vec<(Text, Text)>,
    name: Text,
    message: Option<Text>,
}

/// `value` as the Agent gets a field we clean: `|` and control characters as `_`.
fn cleaned(value: &str) -> String {
    value
        .chars()
        .map(|c| if c == '|' || c.is_control() { '_' } else { c })
        .collect()
}

/// Checks the fields the Agent read (`#` tags: no empty tag, nothing that splits them).
fn check_fields(fields: &[(String, String)], want: &[(&str, Option<String>)]) {
    // A field with nothing left is not sent.
    let expected: Vec<(String, String)> = want
        .iter()
        .filter_map(|(k, v)| Some(((*k).to_owned(), v.clone().filter(|v| !v.is_empty())?)))
        .collect();
    let got: Vec<(String, String)> = fields.iter().filter(|(k, _)| k != "#").cloned().collect();
    assert_eq!(got, expected, "fields");
    for (_, tags) in fields.iter().filter(|(k, _)| k == "#") {
        for tag in tags.split(',') {
            assert!(!tag.is_empty(), "an empty tag in {tags:?}");
        }
    }
}

pub fn events(input: &EventInput) {
    let (title, text) = (input.title.get(), input.text.get());
    let hostname = input.hostname.as_ref().map(Text::get);
    let key = input.aggregation_key.as_ref().map(Text::get);
    let source = input.source_type.as_ref().map(Text::get);
    let mut e = Event::new(title.clone(), text.clone());
    e.timestamp = input.timestamp;
    e.hostname.clone_from(&hostname);
    e.aggregation_key.clone_from(&key);
    e.source_type.clone_from(&source);
    e.priority = [None, Some(EventPriority::Normal), Some(EventPriority::Low)]
        [usize::from(input.flags % 3)];
    e.alert_type = [
        None,
        Some(AlertType::Error),
        Some(AlertType::Warning),
        Some(AlertType::Info),
        Some(AlertType::Success),
    ][usize::from(input.flags / 3 % 5)];
    for (k, v) in &input.tags {
        e = e.with_tag(k.get(), v.get());
    }
    let mut line = Vec::new();
    match e.encode(&mut line) {
        Err(EncodeError::EmptyTitle) => assert!(title.is_empty() && line.is_empty()),
        Err(other) => panic!("unexpected {other:?}"),
        Ok(()) => {
            assert!(!line.contains(&b'\n'), "one line");
            let view = agent_events::parse_event(&line).expect("the Agent reads it");
            assert_eq!(view.title, title.replace("\\n", "\n"));
            assert_eq!(view.text, text.replace("\\n", "\n"));
            let priority = e.priority.map(|p| match p {
                EventPriority::Low => "low".to_owned(),
                _ => "normal".to_owned(),
            });
            let alert = e.alert_type.map(|a| {
                match a {
                    AlertType::Error => "error",
                    AlertType::Warning => "warning",
                    AlertType::Info => "info",
                    _ => "success",
                }
                .to_owned()
            });
            check_fields(
                &view.fields,
                &[
                    ("d:", input.timestamp.map(|t| t.to_string())),
                    ("h:", hostname.as_deref().map(cleaned)),
                    ("k:", key.as_deref().map(cleaned)),
                    ("p:", priority),
                    ("s:", source.as_deref().map(cleaned)),
                    ("t:", alert),
                ],
            );
        }
    }
    service_check(input);
}

fn service_check(input: &EventInput) {
    let name = input.name.get();
    let message = input.message.as_ref().map(Text::get);
    let statuses = [
        ServiceCheckStatus::Ok,
        ServiceCheckStatus::Warning,
        ServiceCheckStatus::Critical,
        ServiceCheckStatus::Unknown,
    ];
    let mut c = ServiceCheck::new(name.clone(), statuses[usize::from(input.flags % 4)]);
    c.timestamp = input.timestamp;
    c.message.clone_from(&message);
    for (k, v) in &input.tags {
        c = c.with_tag(k.get(), v.get());
    }
    let mut line = Vec::new();
    match c.encode(&mut line) {
        Err(EncodeError::EmptyName) => {
            assert!(line.is_empty());
            assert!(name.split('.').all(str::is_empty), "{name:?} refused");
        }
        Err(other) => panic!("unexpected {other:?}"),
        Ok(()) => {
            assert!(!line.contains(&b'\n'), "one line");
            let view = agent_events::parse_service_check(&line).expect("the Agent reads it");
            assert_eq!(view.text, (input.flags % 4).to_string());
            let sent = message.map(|m| m.replace('\n', "\\n").replace('|', "\u{a6}"));
            check_fields(
                &view.fields,
                &[("d:", input.timestamp.map(|t| t.to_string())), ("m:", sent)],
            );
        }
    }
}
