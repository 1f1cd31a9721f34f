//! An interval bigger than a flush part (the flusher sends about 128 KiB at a time, see
//! `PART_BYTES` in `src/flush/mod.rs`) must reach a real receiver whole: every counter and
//! gauge of it stored by Etsy statsd 0.9.0 with its exact value, read back from Etsy's flush
//! output, not from our own socket. Over TCP, so that the kernel loses nothing on the way
//! and any shortfall is ours. Etsy drops its current interval on SIGTERM, so it is stopped
//! only after everything was read back.
#![cfg(unix)]
#![allow(
    clippy::float_cmp,
    clippy::cast_precision_loss,
    reason = "every value is a small integer or a half, written and parsed exactly"
)]
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a receiver that cannot start must fail the test loudly"
)]

#[path = "support/receivers.rs"]
mod receivers;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use metrics_exporter_statsd_graphite::ExporterBuilder;
use receivers::{EtsyStatsd, require_etsy_statsd};

/// Counters and gauges each: about 300 KB of lines, more than two parts.
const SERIES: usize = 6_000;

#[test]
fn an_interval_of_several_flush_parts_is_stored_by_etsy_statsd_with_every_value_exact() {
    if !require_etsy_statsd() {
        return;
    }
    let statsd = EtsyStatsd::start().unwrap();
    let (recorder, exporter) = ExporterBuilder::statsd(format!("tcp://{}", statsd.tcp_addr()))
        .with_prefix("parts")
        .with_flush_interval(Duration::from_secs(3600))
        .with_max_series(2 * SERIES + 10)
        .with_max_series_per_metric(2 * SERIES + 10)
        .build()
        .unwrap();
    let guard = exporter.start().unwrap();
    metrics::with_local_recorder(&recorder, || {
        for i in 0..SERIES {
            let route = format!("route_{i:05}_with_a_name_long_enough_to_fill_parts");
            metrics::counter!("requests", "route" => route.clone()).increment(i as u64 + 1);
            metrics::gauge!("inflight", "route" => route).set(i as f64 + 0.5);
        }
    });
    guard.handle().flush().unwrap();
    let stats = guard.handle().stats();
    assert_eq!(stats.lines_sent, 2 * SERIES as u64, "{stats:?}");
    assert!(
        stats.bytes_sent > 2 * 128 * 1024,
        "the interval must span several parts: {stats:?}"
    );

    let name = |kind: &str, i: usize| {
        format!("parts.{kind}.route_{i:05}_with_a_name_long_enough_to_fill_parts")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let (counters, gauges) = loop {
        let (mut counters, mut gauges) = (BTreeMap::new(), BTreeMap::new());
        for f in statsd.flushes() {
            for (k, v) in f.counters {
                *counters.entry(k).or_insert(0.0) += v;
            }
            gauges.extend(f.gauges);
        }
        let ours = |m: &BTreeMap<String, f64>| m.keys().filter(|k| k.starts_with("parts.")).count();
        if (ours(&counters) >= SERIES && ours(&gauges) >= SERIES) || Instant::now() > deadline {
            break (counters, gauges);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut wrong = vec![];
    for i in 0..SERIES {
        let (c, g) = (name("requests", i), name("inflight", i));
        if counters.get(&c) != Some(&(i as f64 + 1.0)) {
            wrong.push(format!("{c}: {:?}", counters.get(&c)));
        }
        if gauges.get(&g) != Some(&(i as f64 + 0.5)) {
            wrong.push(format!("{g}: {:?}", gauges.get(&g)));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} series stored wrong or missing, first: {:?}",
        wrong.len(),
        2 * SERIES,
        &wrong[..wrong.len().min(5)]
    );
    let stats = guard.shutdown().unwrap();
    assert_eq!(stats.lines_dropped_send, 0, "{stats:?}");
    drop(statsd);
}
