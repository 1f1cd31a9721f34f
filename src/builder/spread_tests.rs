//! The send spread's checks and the host identity it hashes.

use std::time::Duration;

use super::{HOSTNAME_FILE, host_identity};
use crate::ExporterBuilder;
use crate::builder::constructors::env_var;
use crate::error::BuildError;
use crate::flush::{identity_seed, send_delay};

/// The message `build` gives for `builder`'s first invalid setting.
fn refusal(builder: ExporterBuilder) -> String {
    match builder.build() {
        Err(e @ BuildError::InvalidSetting { .. }) => e.to_string(),
        Err(e) => panic!("expected an invalid setting, got {e}"),
        Ok(_) => panic!("expected a refusal"),
    }
}

fn graphite() -> ExporterBuilder {
    ExporterBuilder::graphite("127.0.0.1:2003").with_flush_interval(Duration::from_secs(10))
}

#[test]
fn a_spread_longer_than_half_the_interval_is_refused_and_half_of_it_builds() {
    assert_eq!(
        refusal(graphite().with_send_spread(Duration::from_millis(5_001))),
        "invalid setting with_send_spread: must be at most half the flush interval, so each flush stays inside its aligned slot"
    );
    let spread = Duration::from_secs(5);
    let config = graphite()
        .with_send_spread(spread)
        .with_send_spread_seed(9)
        .config()
        .unwrap();
    assert_eq!(config.send_delay, send_delay(9, spread));
    assert!(config.send_delay < spread);
}

#[test]
fn a_spread_is_refused_where_ticks_are_not_aligned() {
    let not_aligned = "invalid setting with_send_spread: Graphite with aligned timestamps only: other flushes tick from the exporter's start, so hosts are spread already";
    let spread = Duration::from_secs(1);
    for builder in [
        ExporterBuilder::statsd("127.0.0.1:8125"),
        ExporterBuilder::dogstatsd("127.0.0.1:8125"),
        graphite().with_aligned_timestamps(false),
    ] {
        assert_eq!(refusal(builder.with_send_spread(spread)), not_aligned);
    }
    // Pickle ticks are aligned as plaintext's are.
    let config = ExporterBuilder::graphite_pickle("127.0.0.1:2004")
        .with_send_spread(spread)
        .with_send_spread_seed(1)
        .config()
        .unwrap();
    assert_eq!(config.send_delay, send_delay(1, spread));
}

#[test]
fn a_seed_without_a_spread_is_refused_and_no_spread_means_no_delay() {
    assert_eq!(
        refusal(graphite().with_send_spread_seed(3)),
        "invalid setting with_send_spread_seed: needs a send spread (with_send_spread)"
    );
    assert_eq!(graphite().config().unwrap().send_delay, Duration::ZERO);
    assert_eq!(
        graphite()
            .with_send_spread(Duration::ZERO)
            .config()
            .unwrap()
            .send_delay,
        Duration::ZERO
    );
}

#[test]
fn without_a_seed_the_delay_is_the_hash_of_this_hosts_name() {
    let spread = Duration::from_secs(5);
    let host = host_identity(
        std::fs::read_to_string(HOSTNAME_FILE).ok(),
        env_var("HOSTNAME"),
    )
    .unwrap_or_default();
    let config = graphite().with_send_spread(spread).config().unwrap();
    assert_eq!(
        config.send_delay,
        send_delay(identity_seed(host.as_bytes()), spread)
    );
}

#[test]
fn the_host_identity_is_the_kernels_hostname_then_the_hostname_variable_trimmed() {
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        host_identity(some("web-01\n"), some("other")),
        some("web-01")
    );
    assert_eq!(host_identity(some(" \n"), some(" pod-7 ")), some("pod-7"));
    assert_eq!(host_identity(None, some("pod-7")), some("pod-7"));
    assert_eq!(host_identity(None, some("")), None);
    assert_eq!(host_identity(None, None), None);
}
