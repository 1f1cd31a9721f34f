use super::*;
use std::collections::HashMap;

fn record(scope: Scope, vars: &[(&str, &str)]) -> EnvOrigin {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let lookup = |name: &str| map.get(name).cloned();
    let settings = match scope {
        Scope::Detect => crate::env::detect(lookup),
        Scope::DogStatsd => crate::env::dogstatsd_settings(lookup),
    };
    origin(scope, &settings, lookup)
}

fn detect(vars: &[(&str, &str)]) -> EnvOrigin {
    record(Scope::Detect, vars)
}

#[test]
fn nothing_set_is_statsd_to_the_defaults_with_nothing_ignored() {
    assert_eq!(
        detect(&[]),
        EnvOrigin {
            protocol: Protocol::Statsd,
            endpoint: "udp://127.0.0.1:8125".into(),
            from: vec![],
            tags_from: vec![],
            also_from: vec![],
            ignored: vec![],
        }
    );
}

#[test]
fn dd_agent_host_wins_over_statsd_host_and_says_so() {
    let r = detect(&[
        ("DD_AGENT_HOST", "10.0.0.5"),
        ("DD_DOGSTATSD_PORT", "8125"),
        ("DD_TAGS", "team:a"),
        ("STATSD_HOST", "statsd.internal"),
    ]);
    assert_eq!(r.protocol, Protocol::DogStatsd);
    assert_eq!(r.endpoint, "udp://10.0.0.5:8125");
    assert_eq!(r.from, ["DD_AGENT_HOST", "DD_DOGSTATSD_PORT"]);
    assert_eq!(r.tags_from, ["DD_TAGS"]);
    assert_eq!(r.ignored, ["STATSD_HOST (DD_AGENT_HOST wins)"]);
}

#[test]
fn dd_dogstatsd_url_wins_over_the_agent_host_and_port() {
    let r = detect(&[
        ("DD_DOGSTATSD_URL", "unixgram:///d.sock"),
        ("DD_AGENT_HOST", "agent"),
        ("DD_DOGSTATSD_PORT", "9"),
        ("GRAPHITE_HOST", "carbon"),
    ]);
    assert_eq!(r.from, ["DD_DOGSTATSD_URL"]);
    assert_eq!(
        r.ignored,
        [
            "DD_AGENT_HOST (DD_DOGSTATSD_URL wins)",
            "DD_DOGSTATSD_PORT (DD_DOGSTATSD_URL wins)",
            "GRAPHITE_HOST (DD_DOGSTATSD_URL wins)",
        ]
    );
}

#[test]
fn a_host_that_carries_its_port_sets_the_port_variable_aside() {
    let r = detect(&[("DD_AGENT_HOST", "agent:9000"), ("DD_DOGSTATSD_PORT", "1")]);
    assert_eq!(r.from, ["DD_AGENT_HOST"]);
    assert_eq!(
        r.ignored,
        ["DD_DOGSTATSD_PORT (DD_AGENT_HOST carries a port)"]
    );
    let r = detect(&[("STATSD_HOST", "statsd:9125"), ("STATSD_PORT", "1")]);
    assert_eq!(r.from, ["STATSD_HOST"]);
    assert_eq!(r.ignored, ["STATSD_PORT (STATSD_HOST carries a port)"]);
    let r = detect(&[("STATSD_HOST", "statsd"), ("STATSD_PORT", "9125")]);
    assert_eq!(r.from, ["STATSD_HOST", "STATSD_PORT"]);
    assert_eq!(r.ignored, Vec::<String>::new());
}

#[test]
fn dd_tags_and_dd_cardinality_win_over_their_datadog_twins() {
    let r = detect(&[
        ("DD_AGENT_HOST", "agent"),
        ("DD_TAGS", "a:1"),
        ("DATADOG_TAGS", "b:2"),
        ("DD_ENV", "prod"),
        ("DD_ENTITY_ID", "pod-1"),
        ("DD_CARDINALITY", "low"),
        ("DATADOG_CARDINALITY", "high"),
    ]);
    assert_eq!(r.tags_from, ["DD_TAGS", "DD_ENV", "DD_ENTITY_ID"]);
    assert_eq!(r.also_from, ["DD_CARDINALITY"]);
    assert_eq!(
        r.ignored,
        [
            "DATADOG_TAGS (DD_TAGS wins)",
            "DATADOG_CARDINALITY (DD_CARDINALITY wins)"
        ]
    );
    let r = detect(&[
        ("DD_AGENT_HOST", "agent"),
        ("DATADOG_TAGS", "b:2"),
        ("DATADOG_CARDINALITY", "high"),
    ]);
    assert_eq!(r.tags_from, ["DATADOG_TAGS"]);
    assert_eq!(r.also_from, ["DATADOG_CARDINALITY"]);
    assert_eq!(r.ignored, Vec::<String>::new());
}

#[test]
fn graphite_host_wins_over_the_statsd_variables() {
    let r = detect(&[
        ("GRAPHITE_HOST", "carbon"),
        ("GRAPHITE_PROTOCOL", "pickle"),
        ("STATSD_HOST", "statsd"),
        ("STATSD_PREFIX", "svc"),
    ]);
    assert_eq!(r.protocol, Protocol::GraphitePickle);
    assert_eq!(r.endpoint, "tcp://carbon:2004");
    assert_eq!(r.from, ["GRAPHITE_HOST"]);
    assert_eq!(r.also_from, ["GRAPHITE_PROTOCOL"]);
    assert_eq!(
        r.ignored,
        [
            "STATSD_HOST (GRAPHITE_HOST wins)",
            "STATSD_PREFIX (GRAPHITE_HOST wins)"
        ]
    );
    let r = detect(&[("GRAPHITE_URL", "tcp://c:1"), ("GRAPHITE_HOST", "carbon")]);
    assert_eq!(r.from, ["GRAPHITE_URL"]);
    assert_eq!(r.ignored, ["GRAPHITE_HOST (GRAPHITE_URL wins)"]);
}

#[test]
fn statsd_names_the_variables_that_pick_no_protocol_on_their_own() {
    let r = detect(&[
        ("STATSD_PORT", "9125"),
        ("STATSD_PROTOCOL", "tcp"),
        ("STATSD_ENABLED", "true"),
        ("GRAPHITE_PORT", "2003"),
        ("DD_DOGSTATSD_PORT", "8125"),
        ("DD_ENV", "prod"),
    ]);
    assert_eq!(r.protocol, Protocol::Statsd);
    assert_eq!(r.endpoint, "tcp://127.0.0.1:9125");
    assert_eq!(r.from, ["STATSD_PORT"]);
    assert_eq!(r.also_from, ["STATSD_PROTOCOL", "STATSD_ENABLED"]);
    assert_eq!(
        r.ignored,
        [
            "GRAPHITE_PORT (Graphite needs GRAPHITE_HOST or GRAPHITE_URL)",
            "DD_DOGSTATSD_PORT (DogStatsD needs DD_AGENT_HOST or DD_DOGSTATSD_URL)",
            "DD_ENV (DogStatsD needs DD_AGENT_HOST or DD_DOGSTATSD_URL)",
        ]
    );
}

#[test]
fn statsd_url_wins_over_statsd_host_and_port() {
    let r = detect(&[
        ("STATSD_URL", "tcp://s:1"),
        ("STATSD_HOST", "h"),
        ("STATSD_PORT", "2"),
    ]);
    assert_eq!(r.from, ["STATSD_URL"]);
    assert_eq!(
        r.ignored,
        [
            "STATSD_HOST (STATSD_URL wins)",
            "STATSD_PORT (STATSD_URL wins)"
        ]
    );
}

#[test]
fn empty_values_count_as_unset_and_are_not_named() {
    let r = detect(&[("DD_AGENT_HOST", "agent"), ("STATSD_HOST", " ")]);
    assert_eq!(r.ignored, Vec::<String>::new());
}

#[test]
fn dogstatsd_from_env_names_no_variable_it_does_not_read() {
    let r = record(
        Scope::DogStatsd,
        &[("STATSD_HOST", "statsd"), ("DD_ENV", "prod")],
    );
    assert_eq!(r.protocol, Protocol::DogStatsd);
    assert_eq!(r.endpoint, "udp://127.0.0.1:8125");
    assert_eq!(r.from, Vec::<&str>::new());
    assert_eq!(r.tags_from, ["DD_ENV"]);
    assert_eq!(r.ignored, Vec::<String>::new());
}

#[test]
fn a_replaced_endpoint_moves_its_variables_to_ignored() {
    let mut r = detect(&[("DD_AGENT_HOST", "agent"), ("DD_DOGSTATSD_PORT", "9")]);
    r.endpoint_replaced("udp://127.0.0.1:1");
    assert_eq!(r.endpoint, "udp://127.0.0.1:1");
    assert_eq!(r.from, ["with_remote_address"]);
    assert_eq!(
        r.ignored,
        [
            "DD_AGENT_HOST (with_remote_address wins)",
            "DD_DOGSTATSD_PORT (with_remote_address wins)"
        ]
    );
}
