//! The builder as the environment configures it: every variable's error, what later setters
//! set aside and what they do not, and the off switch.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::Duration;

use super::ExporterBuilder;
use crate::env_origin::Scope;

/// `from_env` over `vars` instead of the process environment.
fn from_env(vars: &[(&str, &str)]) -> ExporterBuilder {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = |name: &str| map.get(name).cloned();
    ExporterBuilder::from_settings_in(crate::env::detect(lookup), Scope::Detect, lookup)
}

fn build_error(builder: ExporterBuilder) -> String {
    match builder.build() {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// The variables set, the bad one, and its value as set.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn every_variable_with_a_bad_value_fails_the_build_naming_the_variable_and_its_raw_value() {
    let table: &[Case<'_>] = &[
        (&[("STATSD_URL", "gopher://s")], "STATSD_URL", "gopher://s"),
        (&[("STATSD_HOST", "s/x")], "STATSD_HOST", "s/x"),
        (&[("STATSD_HOST", "s:99999")], "STATSD_HOST", "s:99999"),
        (&[("STATSD_PORT", " 81x ")], "STATSD_PORT", " 81x "),
        (&[("STATSD_PORT", "0")], "STATSD_PORT", "0"),
        (&[("STATSD_PROTOCOL", "HTTP")], "STATSD_PROTOCOL", "HTTP"),
        (
            &[("GRAPHITE_URL", "gopher://c")],
            "GRAPHITE_URL",
            "gopher://c",
        ),
        (&[("GRAPHITE_HOST", "c/x")], "GRAPHITE_HOST", "c/x"),
        (
            &[("GRAPHITE_HOST", "c"), ("GRAPHITE_PORT", "99999")],
            "GRAPHITE_PORT",
            "99999",
        ),
        (
            &[("GRAPHITE_HOST", "c"), ("GRAPHITE_PROTOCOL", "Amqp")],
            "GRAPHITE_PROTOCOL",
            "Amqp",
        ),
        (
            &[("DD_DOGSTATSD_URL", "gopher://a")],
            "DD_DOGSTATSD_URL",
            "gopher://a",
        ),
        (&[("DD_AGENT_HOST", "a/x")], "DD_AGENT_HOST", "a/x"),
        (
            &[("DD_AGENT_HOST", "a"), ("DD_DOGSTATSD_PORT", "8l25")],
            "DD_DOGSTATSD_PORT",
            "8l25",
        ),
        (&[("DD_DOGSTATSD_PORT", "-1")], "STATSD", ""),
        (
            &[("DD_AGENT_HOST", "a"), ("DD_CARDINALITY", "Medium")],
            "DD_CARDINALITY",
            "Medium",
        ),
        (
            &[("DD_AGENT_HOST", "a"), ("DATADOG_CARDINALITY", "x")],
            "DATADOG_CARDINALITY",
            "x",
        ),
        (&[("STATSD_ENABLED", "maybe")], "STATSD_ENABLED", "maybe"),
        (
            &[("DD_AGENT_HOST", "a"), ("STATSD_ENABLED", "nope")],
            "STATSD_ENABLED",
            "nope",
        ),
    ];
    for (vars, variable, value) in table {
        if *variable == "STATSD" {
            // DD_DOGSTATSD_PORT alone picks no protocol: from_env ignores it (the record
            // says so); dogstatsd_from_env reads it.
            assert!(from_env(vars).config().is_ok());
            let map: HashMap<&str, &str> = vars.iter().copied().collect();
            let lookup = |n: &str| map.get(n).map(|v| (*v).to_owned());
            let b = ExporterBuilder::from_settings_in(
                crate::env::dogstatsd_settings(lookup),
                Scope::DogStatsd,
                lookup,
            );
            assert_eq!(
                build_error(b),
                "environment variable DD_DOGSTATSD_PORT=\"-1\": not a port number (1-65535)"
            );
            continue;
        }
        let error = build_error(from_env(vars));
        assert!(
            error.starts_with(&format!("environment variable {variable}={value:?}: ")),
            "{vars:?}: {error}"
        );
    }
}

#[test]
fn dd_external_env_fails_the_build_naming_its_raw_value() {
    // Read from the process environment (only with origin detection), so checked through
    // its pure reader; the builder maps it as every other variable.
    let error = crate::env::external_data(|_| Some("|\u{7}|".into())).unwrap_err();
    assert_eq!(
        (error.variable, error.value.as_str()),
        ("DD_EXTERNAL_ENV", "|\u{7}|")
    );
}

#[test]
fn with_remote_address_sets_aside_only_the_endpoint_variables_it_replaces() {
    for (vars, variable) in [
        (
            &[("DD_AGENT_HOST", "a"), ("DD_CARDINALITY", "medium")][..],
            "DD_CARDINALITY",
        ),
        (
            &[
                ("DD_AGENT_HOST", "a"),
                ("DD_DOGSTATSD_PORT", "x"),
                ("DD_CARDINALITY", "medium"),
            ][..],
            "DD_CARDINALITY",
        ),
        (
            &[("STATSD_PORT", "x"), ("STATSD_ENABLED", "maybe")][..],
            "STATSD_ENABLED",
        ),
        (&[("STATSD_PROTOCOL", "http")][..], "STATSD_PROTOCOL"),
    ] {
        let error = build_error(from_env(vars).with_remote_address("127.0.0.1:9125"));
        assert!(error.contains(variable), "{vars:?}: {error}");
    }
    for vars in [
        &[("DD_AGENT_HOST", "a"), ("DD_DOGSTATSD_PORT", "x")][..],
        &[("STATSD_HOST", "s/x")][..],
        &[("GRAPHITE_URL", "gopher://c")][..],
    ] {
        let b = from_env(vars).with_remote_address("127.0.0.1:9125");
        assert!(b.config().is_ok(), "{vars:?}");
    }
}

#[test]
fn statsd_enabled_reads_every_spelling_of_on_and_off_in_any_case() {
    for value in ["false", "0", "no", "off", "OFF", " False "] {
        assert_eq!(
            from_env(&[("STATSD_ENABLED", value)]).enabled(),
            (false, Some("STATSD_ENABLED")),
            "{value}"
        );
    }
    for value in ["true", "1", "yes", "on", "ON", "Yes"] {
        assert_eq!(
            from_env(&[("STATSD_ENABLED", value)]).enabled(),
            (true, Some("STATSD_ENABLED")),
            "{value}"
        );
    }
    assert_eq!(from_env(&[("STATSD_ENABLED", "")]).enabled(), (true, None));
    assert_eq!(from_env(&[]).enabled(), (true, None));
    assert_eq!(
        build_error(from_env(&[("STATSD_ENABLED", "disabled")])),
        "environment variable STATSD_ENABLED=\"disabled\": not a switch (true, 1, yes, on; false, 0, no, off)"
    );
}

#[test]
fn with_enabled_replaces_statsd_enabled_a_malformed_value_included() {
    let b = from_env(&[("STATSD_ENABLED", "off")]).with_enabled(true);
    assert_eq!(b.enabled(), (true, Some("with_enabled")));
    let b = from_env(&[("STATSD_ENABLED", "on")]).with_enabled(false);
    assert_eq!(b.enabled(), (false, Some("with_enabled")));
    let b = from_env(&[("STATSD_ENABLED", "maybe")]).with_enabled(true);
    assert!(b.config().is_ok());
}

/// A loopback receiver, and the builder of a StatsD exporter sending to it.
fn receiver() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let address = socket.local_addr().unwrap().to_string();
    (socket, address)
}

/// Records one of each kind through `builder`'s recorder, flushes and shuts down; returns
/// the final statistics and whether anything reached `socket`.
fn record_and_stop(builder: ExporterBuilder, socket: &UdpSocket) -> (crate::ExporterStats, bool) {
    let (recorder, exporter) = builder.build().unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("requests").increment(2);
        metrics::gauge!("depth").set(3.0);
        metrics::histogram!("latency").record(0.5);
    });
    let handle = guard.handle();
    handle.set("users").insert("alice");
    handle.flush().unwrap();
    let stats = guard.shutdown().unwrap();
    let mut buf = [0u8; 2048];
    (stats, socket.recv(&mut buf).is_ok())
}

#[test]
fn an_exporter_switched_off_by_statsd_enabled_sends_nothing_and_counts_nothing() {
    let (socket, address) = receiver();
    let (stats, arrived) = record_and_stop(
        from_env(&[("STATSD_HOST", &address), ("STATSD_ENABLED", "off")]),
        &socket,
    );
    assert!(!arrived);
    assert_eq!(stats, crate::ExporterStats::default());
    // The same exporter switched on sends (so the receiver above would have seen it).
    let (_, arrived) = record_and_stop(from_env(&[("STATSD_HOST", &address)]), &socket);
    assert!(arrived);
}

#[test]
fn an_exporter_built_with_enabled_false_resolves_nothing_and_sends_nothing() {
    let (socket, address) = receiver();
    let (stats, arrived) = record_and_stop(
        ExporterBuilder::statsd(address.as_str()).with_enabled(false),
        &socket,
    );
    assert!(!arrived);
    assert_eq!(stats, crate::ExporterStats::default());
    // No lookup: a host that cannot resolve builds.
    let (recorder, exporter) = ExporterBuilder::statsd("no-such-host.invalid:8125")
        .with_enabled(false)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    let counter = metrics::with_local_recorder(&recorder, || metrics::counter!("x"));
    counter.increment(1);
    assert!(guard.handle().flush().is_ok());
    assert_eq!(guard.shutdown(), Ok(crate::ExporterStats::default()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_disabled_guard_flushes_and_shuts_down_at_once_inside_a_runtime() {
    let (_recorder, exporter) = ExporterBuilder::statsd("127.0.0.1:1")
        .with_enabled(false)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    assert!(guard.handle().flush_async().await.is_ok());
    assert!(guard.handle().flush().is_ok());
    assert_eq!(
        guard.shutdown_async().await,
        Ok(crate::ExporterStats::default())
    );
}

#[test]
fn a_disabled_exporter_still_fails_on_a_malformed_variable() {
    let b = from_env(&[
        ("STATSD_ENABLED", "off"),
        ("DD_AGENT_HOST", "a"),
        ("DD_CARDINALITY", "x"),
    ]);
    assert_eq!(b.enabled(), (false, Some("STATSD_ENABLED")));
    assert_eq!(
        build_error(b),
        "environment variable DD_CARDINALITY=\"x\": not a tag cardinality (none, low, orchestrator or high)"
    );
}
