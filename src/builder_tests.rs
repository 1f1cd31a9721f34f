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
            ExporterBuilder::statsd("no-such-host.invalid:8125"),
            "cannot resolve \"no-such-host.invalid\"",
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
fn an_unresolvable_host_keeps_the_resolver_error_as_its_source() {
    let e = ExporterBuilder::statsd("no-such-host.invalid:1")
        .build()
        .err()
        .unwrap();
    assert!(std::error::Error::source(&e).is_some());
}
