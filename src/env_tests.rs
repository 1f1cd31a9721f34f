use super::*;
use std::collections::HashMap;

fn env(vars: &[(&str, &str)]) -> DogStatsdEnv {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    dogstatsd(|name| map.get(name).cloned())
}

/// The source of an endpoint: `variable` set to `value`.
fn src(variable: &'static str, value: &str) -> (&'static str, String) {
    (variable, value.to_owned())
}

#[test]
fn the_endpoint_follows_the_official_clients_precedence() {
    assert_eq!(env(&[]).endpoint, ("udp://127.0.0.1:8125".into(), None));
    assert_eq!(
        env(&[("DD_AGENT_HOST", "agent")]).endpoint,
        (
            "udp://agent:8125".into(),
            Some(src("DD_AGENT_HOST", "agent"))
        )
    );
    assert_eq!(
        env(&[("DD_AGENT_HOST", "agent"), ("DD_DOGSTATSD_PORT", "9125")]).endpoint,
        (
            "udp://agent:9125".into(),
            Some(src("DD_AGENT_HOST", "agent"))
        )
    );
    assert_eq!(
        env(&[("DD_AGENT_HOST", "::1")]).endpoint.0,
        "udp://[::1]:8125"
    );
    assert_eq!(
        env(&[("DD_AGENT_HOST", "unix:///var/run/datadog/dsd.socket")])
            .endpoint
            .0,
        "unix:///var/run/datadog/dsd.socket"
    );
    assert_eq!(
        env(&[
            ("DD_DOGSTATSD_URL", "unixgram:///tmp/d.sock"),
            ("DD_AGENT_HOST", "agent")
        ])
        .endpoint,
        (
            "unixgram:///tmp/d.sock".into(),
            Some(src("DD_DOGSTATSD_URL", "unixgram:///tmp/d.sock"))
        )
    );
    assert_eq!(
        env(&[("DD_AGENT_HOST", "  ")]).endpoint.1,
        None,
        "blank counts as unset"
    );
}

#[test]
fn agent_host_may_carry_its_port_and_the_port_alone_applies_to_the_default_host() {
    assert_eq!(
        env(&[("DD_AGENT_HOST", "agent:9000")]).endpoint.0,
        "agent:9000"
    );
    assert_eq!(
        env(&[("DD_AGENT_HOST", "[::1]:9000")]).endpoint.0,
        "[::1]:9000"
    );
    assert_eq!(
        env(&[("DD_AGENT_HOST", "agent:9000"), ("DD_DOGSTATSD_PORT", "1")])
            .endpoint
            .0,
        "agent:9000"
    );
    assert_eq!(
        env(&[("DD_DOGSTATSD_PORT", "9125")]).endpoint,
        (
            "udp://127.0.0.1:9125".into(),
            Some(src("DD_DOGSTATSD_PORT", "9125"))
        )
    );
}

#[test]
fn a_malformed_port_is_reported_with_its_variable_and_value() {
    let e = env(&[("DD_AGENT_HOST", "agent"), ("DD_DOGSTATSD_PORT", "81x")]);
    assert_eq!(
        e.errors.first().cloned(),
        Some(EnvError {
            variable: "DD_DOGSTATSD_PORT",
            value: "81x".into(),
            reason: "not a port number (1-65535)"
        })
    );
}

#[test]
fn unified_service_tags_and_the_entity_id_become_global_labels() {
    let e = env(&[
        ("DD_ENV", "prod"),
        ("DD_SERVICE", "api"),
        ("DD_VERSION", "1.2"),
        ("DD_ENTITY_ID", "pod-uid"),
    ]);
    let tags: Vec<(String, String)> = e
        .labels
        .iter()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    assert_eq!(
        tags,
        [
            ("env", "prod"),
            ("service", "api"),
            ("version", "1.2"),
            ("dd.internal.entity_id", "pod-uid")
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
}

fn settings(vars: &[(&str, &str)]) -> EnvSettings {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    detect(|name| map.get(name).cloned())
}

#[test]
fn the_protocol_follows_which_variables_are_set() {
    let p = |vars: &[(&str, &str)]| settings(vars).protocol;
    assert_eq!(p(&[]), Protocol::Statsd);
    assert_eq!(p(&[("STATSD_HOST", "s")]), Protocol::Statsd);
    assert_eq!(p(&[("GRAPHITE_HOST", "g")]), Protocol::Graphite);
    assert_eq!(
        p(&[("GRAPHITE_HOST", "g"), ("GRAPHITE_PROTOCOL", "Pickle")]),
        Protocol::GraphitePickle
    );
    assert_eq!(
        p(&[("GRAPHITE_HOST", "g"), ("DD_AGENT_HOST", "agent")]),
        Protocol::DogStatsd,
        "the Datadog variables win: an Agent is there"
    );
    assert_eq!(
        p(&[("DD_ENV", "prod")]),
        Protocol::Statsd,
        "tags alone name no Agent"
    );
}

#[test]
fn statsd_variables_give_host_port_protocol_and_prefix_as_python_clients_read_them() {
    let s = settings(&[
        ("STATSD_HOST", "statsd.internal"),
        ("STATSD_PORT", "9125"),
        ("STATSD_PROTOCOL", "tcp"),
        ("STATSD_PREFIX", "myapp"),
    ]);
    assert_eq!(
        s.endpoint,
        (
            "tcp://statsd.internal:9125".into(),
            Some(src("STATSD_HOST", "statsd.internal"))
        )
    );
    assert_eq!(s.prefix.as_deref(), Some("myapp"));
    assert_eq!(s.errors, []);
    assert_eq!(
        settings(&[]).endpoint,
        ("udp://127.0.0.1:8125".into(), None)
    );
    assert_eq!(
        settings(&[("STATSD_PORT", "9000")]).endpoint,
        (
            "udp://127.0.0.1:9000".into(),
            Some(src("STATSD_PORT", "9000"))
        )
    );
    assert_eq!(
        settings(&[("STATSD_HOST", "::1")]).endpoint.0,
        "udp://[::1]:8125"
    );
    assert_eq!(
        settings(&[
            ("STATSD_URL", "unix:///run/statsd.sock"),
            ("STATSD_HOST", "x")
        ])
        .endpoint,
        (
            "unix:///run/statsd.sock".into(),
            Some(src("STATSD_URL", "unix:///run/statsd.sock"))
        )
    );
}

#[test]
fn graphite_variables_default_to_plaintext_over_tcp_and_pickle_moves_the_port() {
    assert_eq!(
        settings(&[("GRAPHITE_HOST", "carbon"), ("GRAPHITE_PREFIX", "svc")]),
        EnvSettings {
            protocol: Protocol::Graphite,
            endpoint: (
                "tcp://carbon:2003".into(),
                Some(src("GRAPHITE_HOST", "carbon"))
            ),
            prefix: Some("svc".into()),
            labels: Vec::new(),
            cardinality: None,
            enabled: None,
            errors: Vec::new(),
        }
    );
    assert_eq!(
        settings(&[("GRAPHITE_HOST", "carbon"), ("GRAPHITE_PROTOCOL", "pickle")])
            .endpoint
            .0,
        "tcp://carbon:2004"
    );
    assert_eq!(
        settings(&[("GRAPHITE_HOST", "carbon"), ("GRAPHITE_PROTOCOL", "udp")])
            .endpoint
            .0,
        "udp://carbon:2003"
    );
}

#[test]
fn malformed_values_are_reported_with_their_variable_never_defaulted_silently() {
    let e = |vars: &[(&str, &str)]| {
        settings(vars)
            .errors
            .first()
            .map(|e| (e.variable, e.value.clone()))
    };
    assert_eq!(
        e(&[("STATSD_PROTOCOL", "http")]),
        Some(("STATSD_PROTOCOL", "http".into()))
    );
    assert_eq!(
        e(&[("STATSD_PORT", "99999")]),
        Some(("STATSD_PORT", "99999".into()))
    );
    assert_eq!(
        e(&[("GRAPHITE_HOST", "c"), ("GRAPHITE_PROTOCOL", "amqp")]),
        Some(("GRAPHITE_PROTOCOL", "amqp".into()))
    );
    assert_eq!(
        e(&[("STATSD_PROTOCOL", "pickle")]),
        Some(("STATSD_PROTOCOL", "pickle".into())),
        "pickle is Graphite's"
    );
}

#[test]
fn container_ids_are_found_in_the_cgroup_paths_of_common_runtimes() {
    let id = "3e0c5d5f6c2d4e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a";
    for text in [
        format!("0::/system.slice/docker-{id}.scope"),
        format!("12:pids:/docker/{id}\n11:cpu:/docker/{id}"),
        format!("0::/kubepods/besteffort/pod1234/cri-containerd-{id}.scope"),
        format!("0::/kubepods.slice/kubepods-pod.slice/crio-{id}.scope"),
    ] {
        assert_eq!(
            container_id_from_cgroup(&text).as_deref(),
            Some(id),
            "{text}"
        );
    }
    assert_eq!(
        container_id_from_cgroup("0::/user.slice/user-0.slice/session-1.scope"),
        None
    );
    assert_eq!(container_id_from_cgroup(""), None);
}

#[test]
fn container_ids_are_found_in_mountinfo_under_a_private_cgroup_namespace() {
    let id = "3e0c5d5f6c2d4e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a";
    let text = format!(
        "681 660 254:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n\
         682 660 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw"
    );
    assert_eq!(container_id_from_mountinfo(&text).as_deref(), Some(id));
    assert_eq!(
        container_id_from_mountinfo("22 1 254:1 / / rw - ext4 /dev/vda1 rw"),
        None
    );
}

#[test]
fn the_cardinality_comes_from_dd_cardinality_then_datadog_cardinality() {
    assert_eq!(env(&[]).cardinality, None);
    assert_eq!(
        env(&[("DD_CARDINALITY", "low")]).cardinality,
        Some(Cardinality::Low)
    );
    assert_eq!(
        env(&[("DATADOG_CARDINALITY", "HIGH")]).cardinality,
        Some(Cardinality::High)
    );
    assert_eq!(
        env(&[
            ("DD_CARDINALITY", "orchestrator"),
            ("DATADOG_CARDINALITY", "none")
        ])
        .cardinality,
        Some(Cardinality::Orchestrator)
    );
    // Where datadog-go ignores an invalid value, we refuse it, naming the variable.
    let bad = env(&[("DATADOG_CARDINALITY", "medium")]);
    assert_eq!(bad.cardinality, None);
    assert_eq!(
        bad.errors.first().cloned(),
        Some(EnvError {
            variable: "DATADOG_CARDINALITY",
            value: "medium".into(),
            reason: "not a tag cardinality (none, low, orchestrator or high)",
        })
    );
}

#[test]
fn external_data_is_sanitised_as_datadog_go_does_and_refused_when_nothing_is_left() {
    let read = |value: &'static str| {
        external_data(move |n| (n == "DD_EXTERNAL_ENV").then(|| value.to_owned()))
    };
    assert_eq!(read(""), Ok(None));
    assert_eq!(
        read("it-false,cn-app,pu-1"),
        Ok(Some("it-false,cn-app,pu-1".into()))
    );
    assert_eq!(read("a|b\u{1}c"), Ok(Some("abc".into())));
    assert_eq!(read("|\u{7}|").unwrap_err().variable, "DD_EXTERNAL_ENV");
}

#[test]
fn statsd_host_may_carry_its_port_as_dd_agent_host_does() {
    assert_eq!(
        settings(&[("STATSD_HOST", "statsd:9125")]).endpoint,
        (
            "udp://statsd:9125".into(),
            Some(src("STATSD_HOST", "statsd:9125"))
        )
    );
    assert_eq!(
        settings(&[("STATSD_HOST", "statsd:9125"), ("STATSD_PORT", "1")])
            .endpoint
            .0,
        "udp://statsd:9125",
        "the host's own port wins"
    );
    assert_eq!(
        settings(&[("STATSD_HOST", "[::1]:9125"), ("STATSD_PROTOCOL", "tcp")])
            .endpoint
            .0,
        "tcp://[::1]:9125"
    );
    assert_eq!(
        settings(&[("GRAPHITE_HOST", "carbon:2013")]).endpoint.0,
        "tcp://carbon:2013"
    );
}

#[test]
fn dd_tags_are_global_labels_separated_by_commas_or_else_whitespace() {
    let pairs = |vars: &[(&str, &str)]| -> Vec<(String, String)> {
        env(vars)
            .labels
            .iter()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect()
    };
    let owned = |want: &[(&str, &str)]| -> Vec<(String, String)> {
        want.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        pairs(&[("DD_TAGS", "team:a, region:eu-west:1 ,,canary")]),
        owned(&[("team", "a"), ("region", "eu-west:1"), ("canary", "")])
    );
    assert_eq!(
        pairs(&[("DD_TAGS", "team:a  region:eu")]),
        owned(&[("team", "a"), ("region", "eu")])
    );
    assert_eq!(
        pairs(&[("DATADOG_TAGS", "team:b")]),
        owned(&[("team", "b")])
    );
    assert_eq!(
        pairs(&[("DD_TAGS", "team:a"), ("DATADOG_TAGS", "team:b")]),
        owned(&[("team", "a")]),
        "DD_TAGS first, as the clients read them"
    );
    // A unified service tag's own variable comes later, so it wins in the encoders.
    assert_eq!(
        pairs(&[("DD_TAGS", "env:dev"), ("DD_ENV", "prod")]),
        owned(&[("env", "dev"), ("env", "prod")])
    );
}
