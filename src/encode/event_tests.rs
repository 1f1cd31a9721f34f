//! Exact bytes of DogStatsD events and service checks, and a property test that what we
//! write parses back, with the Datadog Agent's own algorithm (re-stated below), to what was
//! given.

use proptest::prelude::*;

use super::*;

#[path = "../../tests/support/agent_events.rs"]
mod agent_events;
use agent_events::{parse_event, parse_service_check};

fn event(e: &Event) -> String {
    let mut out = Vec::new();
    e.encode(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn check(c: &ServiceCheck) -> String {
    let mut out = Vec::new();
    c.encode(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn events_have_exact_bytes_for_every_field_and_utf8_lengths_in_bytes() {
    let table = [
        (Event::new("t", ""), "_e{1,0}:t|"),
        (Event::new("Deploy", "done"), "_e{6,4}:Deploy|done"),
        // Lengths are bytes: é is 2, 🚀 is 4.
        (Event::new("café", "🚀 up"), "_e{5,7}:café|🚀 up"),
        // `|` inside title or text is fine: the Agent cuts them by length.
        (Event::new("a|b", "c|d|e"), "_e{3,5}:a|b|c|d|e"),
        // A newline goes as `\n`, counted as two bytes.
        (
            Event::new("two\nlines", "x\ny\nz"),
            "_e{10,7}:two\\nlines|x\\ny\\nz",
        ),
        (
            Event::new("t", "x")
                .with_timestamp(1_700_000_000)
                .with_hostname("web-1")
                .with_aggregation_key("deploys")
                .with_priority(EventPriority::Low)
                .with_source_type("jenkins")
                .with_alert_type(AlertType::Warning)
                .with_tag("env", "prod")
                .with_tag("az", "eu-1"),
            "_e{1,1}:t|x|d:1700000000|h:web-1|k:deploys|p:low|s:jenkins|t:warning|#az:eu-1,env:prod",
        ),
        (
            Event::new("t", "x").with_priority(EventPriority::Normal),
            "_e{1,1}:t|x|p:normal",
        ),
        (
            Event::new("t", "x").with_alert_type(AlertType::Error),
            "_e{1,1}:t|x|t:error",
        ),
        (
            Event::new("t", "x").with_alert_type(AlertType::Info),
            "_e{1,1}:t|x|t:info",
        ),
        // Fields the Agent cuts at `|` lose it, and newlines; an empty field is not sent.
        (
            Event::new("t", "x")
                .with_hostname("a|b\nc")
                .with_source_type("")
                .with_tag("k", "v|w"),
            "_e{1,1}:t|x|h:a_b_c|#k:v_w",
        ),
    ];
    for (e, want) in table {
        assert_eq!(event(&e), want, "{e:?}");
    }
}

#[test]
fn an_event_without_a_title_is_refused_and_writes_nothing() {
    let mut out = b"kept".to_vec();
    assert_eq!(
        Event::new("", "text").encode(&mut out),
        Err(EncodeError::EmptyTitle)
    );
    assert_eq!(out, b"kept");
}

#[test]
fn service_checks_have_exact_bytes_for_every_status_and_field() {
    let table = [
        (
            ServiceCheck::new("app.ok", ServiceCheckStatus::Ok),
            "_sc|app.ok|0",
        ),
        // An empty message is not sent (found by the fuzz target).
        (
            ServiceCheck::new("app.ok", ServiceCheckStatus::Ok).with_message(""),
            "_sc|app.ok|0",
        ),
        (
            ServiceCheck::new("app.ok", ServiceCheckStatus::Warning),
            "_sc|app.ok|1",
        ),
        (
            ServiceCheck::new("app.ok", ServiceCheckStatus::Critical),
            "_sc|app.ok|2",
        ),
        (
            ServiceCheck::new("app.ok", ServiceCheckStatus::Unknown),
            "_sc|app.ok|3",
        ),
        (
            ServiceCheck::new("db up", ServiceCheckStatus::Ok)
                .with_timestamp(1_700_000_000)
                .with_hostname("db-1")
                .with_tag("role", "primary")
                .with_message("all good"),
            "_sc|db_up|0|d:1700000000|h:db-1|#role:primary|m:all good",
        ),
        // The message is last; the Agent splits at every `|` and unescapes nothing.
        (
            ServiceCheck::new("x", ServiceCheckStatus::Critical).with_message("a | b\nc m:d"),
            "_sc|x|2|m:a ¦ b\\nc m:d",
        ),
    ];
    for (c, want) in table {
        assert_eq!(check(&c), want, "{c:?}");
    }
}

#[test]
fn a_service_check_whose_name_has_nothing_left_is_refused_and_writes_nothing() {
    let mut out = Vec::new();
    let c = ServiceCheck::new("..", ServiceCheckStatus::Ok);
    assert_eq!(c.encode(&mut out), Err(EncodeError::EmptyName));
    assert!(out.is_empty());
}

proptest! {
    #[test]
    fn any_event_parses_back_to_its_title_and_text_with_one_line(
        title in "\\PC{1,40}|[a|\\n\u{e9}\u{1F680}]{1,12}",
        text in "\\PC{0,80}|[a|\\n\u{e9}\u{1F680}]{0,20}",
        host in proptest::option::of("[a-z|\\n]{0,8}"),
    ) {
        let mut e = Event::new(title.clone(), text.clone()).with_alert_type(AlertType::Info);
        if let Some(h) = &host {
            e = e.with_hostname(h.clone());
        }
        let mut line = Vec::new();
        e.encode(&mut line).unwrap();
        prop_assert!(!line.contains(&b'\n'), "one datagram line");
        let parsed = parse_event(&line).expect("the Agent's parser accepts it");
        // A literal `\n` typed by the user reads back as a newline, as with every client.
        prop_assert_eq!(parsed.title, title.replace("\\n", "\n"));
        prop_assert_eq!(parsed.text, text.replace("\\n", "\n"));
        let mut want = Vec::new();
        if let Some(h) = host.filter(|h| !h.is_empty()) {
            want.push(("h:".to_owned(), h.replace(['|', '\n'], "_")));
        }
        want.push(("t:".to_owned(), "info".to_owned()));
        prop_assert_eq!(parsed.fields, want);
    }

    #[test]
    fn any_service_check_message_stays_one_field_of_one_line(message in "\\PC{0,60}|[a|\\n:m]{0,20}") {
        let c = ServiceCheck::new("svc", ServiceCheckStatus::Warning).with_message(message.clone());
        let mut line = Vec::new();
        c.encode(&mut line).unwrap();
        prop_assert!(!line.contains(&b'\n'));
        let view = parse_service_check(&line).expect("the Agent's parser accepts it");
        prop_assert_eq!((view.title.as_str(), view.text.as_str()), ("svc", "1"));
        let sent = message.replace('\n', "\\n").replace('|', "\u{a6}");
        // One field, or none for an empty message.
        let want: Vec<(String, String)> =
            Some(("m:".to_owned(), sent)).filter(|(_, m)| !m.is_empty()).into_iter().collect();
        prop_assert_eq!(view.fields, want, "the message is one field");
    }
}
