//! The send spread into the real carbon-cache: a tick sent well into its slot (in a later
//! second than the slot's first) is still stored at the slot's aligned timestamp.
#![allow(
    clippy::float_cmp,
    reason = "every compared value is exactly representable"
)]
#![allow(
    clippy::expect_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]

#[path = "support/carbon.rs"]
mod carbon;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carbon::{Carbon, require_carbon};
use metrics_exporter_statsd_graphite::ExporterBuilder;

/// Four-second slots; seed 0's delay in a 2 s spread is 1.766 s (pinned by the unit tests), so
/// its ticks go out in each slot's second second.
const INTERVAL: Duration = Duration::from_secs(4);
const SPREAD: Duration = Duration::from_secs(2);
const DELAY_MS: u128 = 1_766;

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
}

#[test]
fn a_spread_tick_sent_late_in_its_slot_is_stored_at_the_slots_aligned_timestamp() {
    if !require_carbon() {
        return;
    }
    let carbon = Carbon::start().expect("carbon starts");
    let (recorder, exporter) = ExporterBuilder::graphite(format!("tcp://{}", carbon.line_addr()))
        .with_prefix("it")
        .with_flush_interval(INTERVAL)
        .with_send_spread(SPREAD)
        .with_send_spread_seed(0)
        .build()
        .expect("builds");
    let guard = exporter.start().expect("starts");
    metrics::with_local_recorder(&recorder, || metrics::counter!("spread").increment(3));
    // When the first tick is seen to have gone out (a few ms after it did, at most).
    let deadline = Instant::now() + INTERVAL + SPREAD + Duration::from_secs(5);
    while guard.handle().stats().lines_sent == 0 {
        assert!(Instant::now() < deadline, "no tick");
        std::thread::sleep(Duration::from_millis(2));
    }
    let seen_ms = unix_ms();

    let points = carbon.wait_for_points("it.spread", Duration::from_secs(15), |p| {
        p.iter().any(|&(_, v)| v == 3.0)
    });
    let (ts, _) = *points
        .iter()
        .find(|&&(_, v)| v == 3.0)
        .unwrap_or_else(|| panic!("{points:?}\n{}", carbon.log()));
    assert_eq!(ts % INTERVAL.as_secs(), 0, "aligned: {points:?}");
    let slot_ms = u128::from(ts) * 1000;
    // The tick went out the host's delay into the slot: in a later second than the one
    // stored, which an unaligned timestamp would have been.
    assert!(
        seen_ms >= slot_ms + DELAY_MS,
        "seen {seen_ms} ms, slot {slot_ms} ms: {points:?}"
    );
    // The slot holds the increment; no other second of it has a point.
    let in_slot: Vec<_> = points
        .iter()
        .filter(|&&(t, _)| (ts..ts + INTERVAL.as_secs()).contains(&t))
        .collect();
    assert_eq!(in_slot, [&(ts, 3.0)], "{points:?}");
    guard.shutdown().expect("final flush");
}
