use super::constructors::env_value;
use super::*;

fn err(b: ExporterBuilder) -> String {
    match b.build() {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn every_invalid_setting_is_reported_by_build_with_what_is_wrong() {
    let b = || ExporterBuilder::statsd("127.0.0.1:8125");
    let table = [
        (
            ExporterBuilder::statsd("gopher://x:1"),
            "invalid endpoint \"gopher://x:1\": the scheme must be udp://, tcp://, unix:// or unixgram://",
        ),
        (
            b().with_flush_interval(Duration::ZERO),
            "the flush interval must be greater than zero",
        ),
        (
            b().with_maximum_payload_length(65_508),
            "maximum payload length 65508 is outside 64..=65507 for this transport",
        ),
        (
            b().with_histogram_max_samples(0),
            "invalid setting with_histogram_max_samples: must be within 1..=65536",
        ),
        (
            b().with_histogram_max_samples(65_537),
            "invalid setting with_histogram_max_samples: must be within 1..=65536",
        ),
        (
            b().with_set_max_members(0),
            "invalid setting with_set_max_members: must be within 1..=65536",
        ),
        (
            b().with_set_max_members(65_537),
            "invalid setting with_set_max_members: must be within 1..=65536",
        ),
        (
            b().with_write_timeout(Duration::ZERO),
            "invalid setting with_write_timeout: must not be zero",
        ),
    ];
    for (builder, want) in table {
        assert_eq!(err(builder), want);
    }
}

#[test]
fn setters_can_come_in_any_order() {
    // The payload limit is checked against the transport chosen last, in build.
    let a = ExporterBuilder::statsd("127.0.0.1:1")
        .with_maximum_payload_length(100_000)
        .with_remote_address("tcp://127.0.0.1:1");
    assert!(a.build().is_ok());
    let b = ExporterBuilder::statsd("tcp://127.0.0.1:1")
        .with_maximum_payload_length(100_000)
        .with_remote_address("127.0.0.1:1");
    assert!(b.build().is_err());
}

#[test]
fn a_host_that_does_not_resolve_yet_builds_and_a_malformed_one_does_not() {
    // DNS may not be ready when the process starts: the transport looks the name up later.
    for endpoint in [
        "no-such-host.invalid:8125",
        "tcp://no-such-host.invalid:2003",
    ] {
        assert!(
            ExporterBuilder::statsd(endpoint).build().is_ok(),
            "{endpoint}"
        );
        assert!(
            ExporterBuilder::statsd(endpoint)
                .build_statsd_client()
                .is_ok()
        );
    }
    assert!(
        ExporterBuilder::graphite("no-such-host.invalid")
            .build_client()
            .is_ok()
    );
    for (endpoint, reason) in [
        (":8125", "the host is empty"),
        (
            "no-such-host.invalid:0",
            "the port must be a number from 1 to 65535",
        ),
        (
            "no-such-host.invalid:x",
            "the port must be a number from 1 to 65535",
        ),
        (
            "udp://no-such-host.invalid/x:1",
            "expected host:port with no path",
        ),
    ] {
        assert_eq!(
            err(ExporterBuilder::statsd(endpoint)),
            format!("invalid endpoint {endpoint:?}: {reason}")
        );
    }
}

#[test]
fn settings_a_protocol_cannot_honour_are_refused_not_ignored() {
    let statsd = || ExporterBuilder::statsd("127.0.0.1:8125");
    let dd = || ExporterBuilder::dogstatsd("127.0.0.1:8125");
    let table = [
        (
            statsd().with_histogram_kind(HistogramKind::Distribution),
            "with_histogram_kind (Distribution)",
        ),
        (
            statsd().with_histogram_kind_for("x", HistogramKind::Distribution),
            "with_histogram_kind (Distribution)",
        ),
        (
            statsd().with_container_id("abc"),
            "with_container_id / with_origin_detection",
        ),
        (statsd().with_timestamps(true), "with_timestamps"),
        (
            dd().with_label_handling(LabelHandling::Drop),
            "with_label_handling",
        ),
    ];
    for (builder, setting) in table {
        assert!(
            err(builder).starts_with(&format!("invalid setting {setting}:")),
            "{setting}"
        );
    }
    assert!(
        dd().send_histograms_as_distributions(false)
            .with_timestamps(true)
            .with_container_id("c")
            .build()
            .is_ok()
    );
}

#[cfg(unix)]
#[test]
fn dogstatsd_unix_endpoints_default_to_the_agents_8192_byte_buffer() {
    let len = |b: ExporterBuilder| b.config().unwrap().max_payload_len;
    // The Agent's `dogstatsd_buffer_size`, over either Unix socket type...
    assert_eq!(len(ExporterBuilder::dogstatsd("unix:///tmp/a.sock")), 8192);
    assert_eq!(
        len(ExporterBuilder::dogstatsd("unixgram:///tmp/a.sock")),
        8192
    );
    // ...and for any datagram receiver on a Unix socket.
    assert_eq!(len(ExporterBuilder::statsd("unixgram:///tmp/a.sock")), 8192);
    // Plain StatsD over a Unix stream reads lines, as over TCP.
    assert_eq!(len(ExporterBuilder::statsd("unix:///tmp/a.sock")), 65_536);
    // One Ethernet MTU over UDP, large batches over TCP.
    assert_eq!(
        len(ExporterBuilder::dogstatsd("udp://127.0.0.1:8125")),
        1432
    );
    assert_eq!(len(ExporterBuilder::statsd("127.0.0.1:8125")), 1432);
    assert_eq!(len(ExporterBuilder::statsd("tcp://127.0.0.1:8125")), 65_536);
    assert_eq!(len(ExporterBuilder::graphite("127.0.0.1:2003")), 65_536);
    // A setting wins over every default, within the transport's limits.
    assert_eq!(
        len(ExporterBuilder::dogstatsd("unixgram:///tmp/a.sock")
            .with_maximum_payload_length(65_536)),
        65_536
    );
    let e = ExporterBuilder::dogstatsd("unixgram:///tmp/a.sock")
        .with_maximum_payload_length(70_000)
        .build()
        .err()
        .unwrap();
    assert_eq!(
        e.to_string(),
        "maximum payload length 70000 is outside 64..=65536 for this transport"
    );
}

#[test]
fn a_bad_environment_value_is_reported_with_its_variable() {
    let mut b = ExporterBuilder::dogstatsd("udp://127.0.0.1:8125");
    b.endpoint = "gopher://agent".into();
    b.endpoint_source = Some(("DD_DOGSTATSD_URL", "gopher://agent".into()));
    assert_eq!(
        err(b),
        "environment variable DD_DOGSTATSD_URL=\"gopher://agent\": the scheme must be udp://, tcp://, unix:// or unixgram://"
    );
    let mut b = ExporterBuilder::dogstatsd("udp://127.0.0.1:8125");
    b.env_errors.push(EnvError {
        variable: "DD_DOGSTATSD_PORT",
        value: "81x".into(),
        reason: "not a port number (1-65535)",
    });
    assert_eq!(
        err(b),
        "environment variable DD_DOGSTATSD_PORT=\"81x\": not a port number (1-65535)"
    );
    // An explicit address replaces the environment's, and its errors are not blamed on it.
    let mut b = ExporterBuilder::dogstatsd("udp://127.0.0.1:8125");
    b.endpoint_source = Some(("DD_AGENT_HOST", "agent".into()));
    assert!(err(b.with_remote_address("gopher://x")).starts_with("invalid endpoint"));
}

#[test]
fn global_labels_take_pairs_or_metrics_labels() {
    let b = ExporterBuilder::statsd("127.0.0.1:1")
        .with_global_labels([("a", "1")])
        .with_global_labels(vec![Label::new("b", "2")])
        .with_global_labels(vec![("c".to_string(), String::from("3"))]);
    let keys: Vec<&str> = b.global_labels.iter().map(Label::key).collect();
    assert_eq!(keys, ["a", "b", "c"]);
}

#[test]
fn graphite_refuses_sub_second_intervals_and_colliding_percentiles() {
    let g = || ExporterBuilder::graphite("127.0.0.1:2003");
    assert!(
        err(g().with_flush_interval(Duration::from_millis(500)))
            .starts_with("invalid setting with_flush_interval")
    );
    assert!(err(g().with_percentiles([0.125, 0.0125])).contains("same suffix"));
    assert!(
        g().with_percentiles([0.99, 0.99, 0.5]).build().is_ok(),
        "duplicates are merged"
    );
    assert!(err(g().with_percentiles([0.0])).contains("(0, 1]"));
}

#[test]
fn memory_bounds_are_validated_and_the_default_expiry_follows_long_intervals() {
    let statsd = || ExporterBuilder::statsd("127.0.0.1:8125");
    assert!(err(statsd().with_max_series(0)).starts_with("invalid setting with_max_series:"));
    assert!(
        err(statsd()
            .with_flush_interval(Duration::from_secs(60))
            .with_idle_timeout(Some(Duration::from_secs(59))))
        .starts_with("invalid setting with_idle_timeout:")
    );
    let idle = |b: ExporterBuilder| b.config().unwrap().idle_timeout;
    assert_eq!(idle(statsd()), Some(Duration::from_secs(600)));
    assert_eq!(
        idle(statsd().with_flush_interval(Duration::from_secs(3600))),
        Some(Duration::from_secs(7200)),
        "a long interval is not an error when the timeout was not chosen"
    );
    assert_eq!(idle(statsd().with_idle_timeout(None)), None);
}

#[test]
fn the_per_metric_series_limit_is_validated_and_defaults_to_at_most_half_the_total() {
    let statsd = || ExporterBuilder::statsd("127.0.0.1:8125");
    let per_metric = |b: ExporterBuilder| b.config().unwrap().max_series_per_metric;
    assert_eq!(per_metric(statsd()), 2_000);
    assert_eq!(per_metric(statsd().with_max_series(1_000)), 500);
    assert_eq!(per_metric(statsd().with_max_series(1)), 1);
    assert_eq!(
        per_metric(statsd().with_max_series(10).with_max_series_per_metric(10)),
        10
    );
    assert!(
        err(statsd().with_max_series_per_metric(0))
            .starts_with("invalid setting with_max_series_per_metric: must not be zero")
    );
    assert!(
        err(statsd()
            .with_max_series(100)
            .with_max_series_per_metric(101))
        .contains("not be more than the total")
    );
}

fn from_vars(vars: &[(&str, &str)]) -> ExporterBuilder {
    let map: std::collections::HashMap<&str, &str> = vars.iter().copied().collect();
    ExporterBuilder::from_settings(crate::env::detect(|name| {
        map.get(name).map(|v| (*v).to_owned())
    }))
}

#[test]
fn from_env_settings_yield_to_setters_and_a_bad_value_fails_the_build_by_name() {
    let b = from_vars(&[("STATSD_PORT", "9125"), ("STATSD_PREFIX", "envapp")]);
    assert_eq!(b.protocol, Protocol::Statsd);
    assert_eq!(b.prefix.as_deref(), Some("envapp"));
    assert_eq!(b.config().unwrap().endpoint.port, 9125);
    let b = b
        .with_prefix("explicit")
        .with_remote_address("udp://127.0.0.1:7000");
    assert_eq!(b.prefix.as_deref(), Some("explicit"), "a setter wins");
    assert_eq!(b.config().unwrap().endpoint.port, 7000);
    assert_eq!(
        err(from_vars(&[("STATSD_PROTOCOL", "http")])),
        "environment variable STATSD_PROTOCOL=\"http\": not a StatsD protocol (udp or tcp)"
    );
    let g = from_vars(&[
        ("GRAPHITE_HOST", "127.0.0.1"),
        ("GRAPHITE_PROTOCOL", "pickle"),
    ]);
    assert_eq!(g.protocol, Protocol::GraphitePickle);
    assert_eq!(g.config().unwrap().endpoint.port, 2004);
}

#[test]
fn an_empty_container_id_is_refused() {
    assert_eq!(
        err(ExporterBuilder::dogstatsd("127.0.0.1:8125").with_container_id(" ")),
        "invalid setting with_container_id: must not be empty"
    );
}

#[cfg(unix)]
#[test]
fn an_environment_value_that_is_not_utf8_is_reported_not_taken_as_unset() {
    use std::os::unix::ffi::OsStringExt as _;
    let raw = std::ffi::OsString::from_vec(b"81\xff25".to_vec());
    let value = env_value(Err(std::env::VarError::NotUnicode(raw)));
    assert_eq!(value.as_deref(), Some("81\u{fffd}25"));
    assert_eq!(env_value(Err(std::env::VarError::NotPresent)), None);
    // Such a port then fails the build, naming the variable.
    let settings =
        crate::env::detect(|name| (name == "STATSD_PORT").then(|| value.clone()).flatten());
    let error = ExporterBuilder::from_settings(settings)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("STATSD_PORT"), "{error}");
}

#[test]
fn an_explicit_address_sets_aside_a_malformed_port_variable_but_not_a_malformed_protocol() {
    let from = |name: &'static str, value: &'static str| {
        ExporterBuilder::from_settings(crate::env::detect(move |n| {
            (n == name).then(|| value.to_owned())
        }))
    };
    let b = from("STATSD_PORT", "abc");
    assert!(b.clone().build().is_err());
    assert!(b.with_remote_address("127.0.0.1:9125").config().is_ok());
    let b = from("STATSD_PROTOCOL", "http").with_remote_address("127.0.0.1:9125");
    let error = b.config().unwrap_err();
    assert!(error.to_string().contains("STATSD_PROTOCOL"), "{error}");
}

/// Builds `builder`, records `requests{route="/a"}` += 2, shuts down (the final flush) and
/// returns the first datagram `socket` receives.
fn first_datagram(builder: ExporterBuilder, socket: &std::net::UdpSocket) -> String {
    let (recorder, exporter) = builder
        .with_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("requests", "route" => "/a").increment(2);
    });
    guard.shutdown().unwrap();
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// A UDP socket on a free loopback port (reads time out after 10 s) and its `udp://` URL.
fn udp_listener() -> (std::net::UdpSocket, String) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let url = format!("udp://{}", socket.local_addr().unwrap());
    (socket, url)
}

#[test]
fn dd_entity_id_from_the_environment_is_on_the_wire_as_the_dd_internal_entity_id_tag() {
    let (socket, url) = udp_listener();
    let vars: std::collections::HashMap<&str, &str> = [
        ("DD_DOGSTATSD_URL", url.as_str()),
        ("DD_ENTITY_ID", "3c6a1b1e-6f2b-4c1e-9d1a-1f0e2d3c4b5a"),
    ]
    .into_iter()
    .collect();
    let lookup = |name: &str| vars.get(name).map(|v| (*v).to_owned());
    // Both environment paths: `dogstatsd_from_env` and `from_env`.
    let builders = [
        ExporterBuilder::from_settings(crate::env::dogstatsd(lookup).into()),
        ExporterBuilder::from_settings(crate::env::detect(lookup)),
    ];
    for builder in builders {
        assert_eq!(
            first_datagram(builder, &socket),
            "requests:2|c|#dd.internal.entity_id:3c6a1b1e-6f2b-4c1e-9d1a-1f0e2d3c4b5a,route:/a"
        );
    }
}

#[test]
fn a_telemetry_prefix_with_no_name_in_it_fails_the_build() {
    for prefix in ["", ".", ".."] {
        let error = ExporterBuilder::statsd("127.0.0.1:8125")
            .with_telemetry_prefix(prefix)
            .config()
            .unwrap_err();
        assert!(
            error.to_string().contains("with_telemetry_prefix"),
            "{prefix:?}: {error}"
        );
    }
    assert!(
        ExporterBuilder::statsd("127.0.0.1:8125")
            .with_telemetry_prefix("client.stats")
            .config()
            .is_ok()
    );
}

#[test]
fn reconnect_delays_default_to_100_ms_capped_at_10_s() {
    let config = ExporterBuilder::statsd("tcp://127.0.0.1:8125")
        .config()
        .unwrap();
    assert_eq!(config.reconnect_delay, Duration::from_millis(100));
    assert_eq!(config.max_reconnect_delay, Duration::from_secs(10));
}

#[test]
fn a_zero_reconnect_delay_or_a_cap_below_it_fails_the_build_naming_the_setter() {
    let tcp = || ExporterBuilder::statsd("tcp://127.0.0.1:8125");
    let table = [
        (
            tcp().with_reconnect_delay(Duration::ZERO),
            "invalid setting with_reconnect_delay: must not be zero",
        ),
        (
            tcp().with_max_reconnect_delay(Duration::from_millis(99)),
            "invalid setting with_max_reconnect_delay: must be at least the reconnect delay (with_reconnect_delay)",
        ),
        (
            tcp()
                .with_reconnect_delay(Duration::from_secs(11))
                .with_max_reconnect_delay(Duration::from_secs(10)),
            "invalid setting with_max_reconnect_delay: must be at least the reconnect delay (with_reconnect_delay)",
        ),
        (
            tcp()
                .with_max_reconnect_delay(Duration::ZERO)
                .with_reconnect_delay(Duration::ZERO),
            "invalid setting with_reconnect_delay: must not be zero",
        ),
    ];
    for (builder, want) in table {
        assert_eq!(err(builder), want);
    }
}

#[test]
fn reconnect_delays_are_checked_in_build_so_setter_order_does_not_matter() {
    // A delay above the default cap is fine once the cap is raised, in either order.
    let delay = Duration::from_secs(20);
    let cap = Duration::from_secs(60);
    for builder in [
        ExporterBuilder::statsd("tcp://127.0.0.1:8125")
            .with_reconnect_delay(delay)
            .with_max_reconnect_delay(cap),
        ExporterBuilder::statsd("tcp://127.0.0.1:8125")
            .with_max_reconnect_delay(cap)
            .with_reconnect_delay(delay),
    ] {
        let config = builder.config().unwrap();
        assert_eq!(
            (config.reconnect_delay, config.max_reconnect_delay),
            (delay, cap)
        );
    }
    let equal = ExporterBuilder::statsd("tcp://127.0.0.1:8125")
        .with_reconnect_delay(Duration::from_secs(1))
        .with_max_reconnect_delay(Duration::from_secs(1))
        .config()
        .unwrap();
    assert_eq!(
        equal.max_reconnect_delay,
        Duration::from_secs(1),
        "a cap equal to the delay is allowed"
    );
}

/// The constant wire parts (name, then what follows the type) the builder's encoder gives
/// `key`.
fn rendered(builder: &ExporterBuilder, key: &metrics::Key) -> String {
    let mut out = crate::encode::Rendered::default();
    builder.encoder().unwrap().render(key, &mut out);
    format!(
        "{}{}",
        String::from_utf8(out.name().to_vec()).unwrap(),
        String::from_utf8(out.tail().to_vec()).unwrap()
    )
}

#[test]
fn an_explicit_global_label_beats_the_same_key_from_the_environment_on_both_env_paths() {
    let vars: std::collections::HashMap<&str, &str> = [
        ("DD_AGENT_HOST", "127.0.0.1"),
        ("DD_ENV", "prod"),
        ("DD_SERVICE", "api"),
    ]
    .into_iter()
    .collect();
    let lookup = |name: &str| vars.get(name).map(|v| (*v).to_owned());
    let key = metrics::Key::from_name("requests");
    for builder in [
        ExporterBuilder::from_settings(crate::env::dogstatsd(lookup).into()),
        ExporterBuilder::from_settings(crate::env::detect(lookup)),
    ] {
        assert_eq!(builder.protocol, Protocol::DogStatsd);
        assert_eq!(
            rendered(&builder, &key),
            "requests|#env:prod,service:api",
            "the environment's tags apply when nothing overrides them"
        );
        assert_eq!(
            rendered(&builder.with_global_labels([("env", "staging")]), &key),
            "requests|#env:staging,service:api",
            "the label set in code wins over DD_ENV; the other tag stays"
        );
    }
}

#[test]
fn for_a_global_label_given_twice_the_later_value_wins_in_every_protocol() {
    let twice = |b: ExporterBuilder| {
        b.with_global_labels([("env", "first"), ("region", "eu")])
            .with_global_labels([("env", "second")])
    };
    let in_one_call = |b: ExporterBuilder| b.with_global_labels([("env", "a"), ("env", "b")]);
    let key = metrics::Key::from_name("requests");
    let dd = || ExporterBuilder::dogstatsd("127.0.0.1:8125");
    let statsd = || ExporterBuilder::statsd("127.0.0.1:8125");
    let graphite = || ExporterBuilder::graphite("127.0.0.1:2003");
    assert_eq!(
        rendered(&twice(dd()), &key),
        "requests|#env:second,region:eu"
    );
    assert_eq!(rendered(&in_one_call(dd()), &key), "requests|#env:b");
    assert_eq!(rendered(&twice(statsd()), &key), "second.eu.requests");
    assert_eq!(rendered(&in_one_call(statsd()), &key), "b.requests");
    assert_eq!(
        rendered(&twice(graphite()), &key),
        "requests;env=second;region=eu"
    );
    assert_eq!(rendered(&in_one_call(graphite()), &key), "requests;env=b");
}

#[test]
fn a_metrics_own_label_beats_a_global_label_and_an_environment_label_with_its_key() {
    let lookup = |name: &str| match name {
        "DD_AGENT_HOST" => Some("127.0.0.1".to_owned()),
        "DD_ENV" => Some("prod".to_owned()),
        _ => None,
    };
    let key = metrics::Key::from_parts("requests", vec![Label::new("env", "canary")]);
    let from_env = ExporterBuilder::from_settings(crate::env::detect(lookup));
    assert_eq!(rendered(&from_env, &key), "requests|#env:canary");
    assert_eq!(
        rendered(&from_env.with_global_labels([("env", "staging")]), &key),
        "requests|#env:canary"
    );
}

#[test]
fn tag_hash_filenames_is_refused_where_no_carbon_file_name_depends_on_it() {
    use crate::LabelHandling;
    let statsd = || ExporterBuilder::statsd("127.0.0.1:8125");
    let refused = "invalid setting with_graphite_tag_hash_filenames: Graphite, or plain StatsD with LabelHandling::DogStatsd tags only";
    assert_eq!(
        err(ExporterBuilder::dogstatsd("127.0.0.1:8125").with_graphite_tag_hash_filenames(false)),
        refused
    );
    assert_eq!(
        err(statsd().with_graphite_tag_hash_filenames(false)),
        refused
    );
    let etsy_tags = statsd()
        .with_label_handling(LabelHandling::DogStatsd)
        .with_graphite_tag_hash_filenames(false);
    assert!(etsy_tags.config().is_ok());
    assert!(
        ExporterBuilder::graphite("127.0.0.1:2003")
            .with_graphite_tag_hash_filenames(false)
            .config()
            .is_ok()
    );
}

#[test]
fn dd_cardinality_from_the_environment_is_on_the_wire_and_an_invalid_one_fails_the_build() {
    let (socket, url) = udp_listener();
    let vars: std::collections::HashMap<&str, &str> = [
        ("DD_DOGSTATSD_URL", url.as_str()),
        ("DD_CARDINALITY", "orchestrator"),
    ]
    .into_iter()
    .collect();
    let lookup = |name: &str| vars.get(name).map(|v| (*v).to_owned());
    let builder = ExporterBuilder::from_settings(crate::env::detect(lookup))
        .with_external_data("it-false,cn-app");
    assert_eq!(
        first_datagram(builder, &socket),
        "requests:2|c|#route:/a|e:it-false,cn-app|card:orchestrator"
    );
    // A later setter wins over the environment.
    let b = ExporterBuilder::from_settings(crate::env::detect(lookup))
        .with_cardinality(Cardinality::Low);
    assert_eq!(b.cardinality, Some(Cardinality::Low));

    let bad = ExporterBuilder::from_settings(
        crate::env::dogstatsd(|n| (n == "DD_CARDINALITY").then(|| "sometimes".to_owned())).into(),
    );
    let error = bad.build().unwrap_err();
    assert!(
        matches!(
            error,
            crate::BuildError::InvalidEnvironment {
                variable: "DD_CARDINALITY",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn external_data_and_cardinality_are_refused_where_the_protocol_has_no_such_field() {
    let setters: [fn(ExporterBuilder) -> ExporterBuilder; 2] = [
        |b| b.with_external_data("it-false"),
        |b| b.with_cardinality(Cardinality::High),
    ];
    for set in setters {
        for b in [
            ExporterBuilder::statsd("127.0.0.1:8125"),
            ExporterBuilder::graphite("127.0.0.1:2003"),
        ] {
            let error = set(b).build().unwrap_err().to_string();
            assert!(
                error.contains("with_external_data") || error.contains("with_cardinality"),
                "{error}"
            );
        }
    }
    let empty = ExporterBuilder::dogstatsd("127.0.0.1:8125").with_external_data("|\n");
    assert!(
        empty
            .build()
            .unwrap_err()
            .to_string()
            .contains("with_external_data")
    );
}

#[test]
fn a_host_from_the_environment_keeps_its_variable_for_the_transports_warning() {
    for variable in ["STATSD_HOST", "DD_AGENT_HOST", "GRAPHITE_HOST"] {
        let env = |name: &str| (name == variable).then(|| "agent.invalid".to_owned());
        let config = ExporterBuilder::from_settings(crate::env::detect(env))
            .config()
            .expect("a host that does not resolve yet builds");
        assert_eq!(config.endpoint.host, "agent.invalid");
        assert_eq!(config.endpoint_source, Some(variable));
        assert!(config.addrs.is_empty(), "resolved at build");
    }
    // Replaced in code: no variable to blame.
    let env = |name: &str| (name == "STATSD_HOST").then(|| "agent.invalid".to_owned());
    let config = ExporterBuilder::from_settings(crate::env::detect(env))
        .with_remote_address("other.invalid:8125")
        .config()
        .unwrap();
    assert_eq!(config.endpoint_source, None);
}
