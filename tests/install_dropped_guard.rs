//! The global path as users of other exporters write it: `install()?;` as a statement, the
//! guard dropped at once. The exporter must keep exporting: a counter recorded after the drop
//! arrives at the next tick. One test per file: a process has one global recorder.
#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed setup must fail the test loudly"
)]

#[path = "support/loopback.rs"]
mod loopback;

use std::time::Duration;

use loopback::{UdpReceiver, counter_sum};
use metrics_exporter_statsd_graphite::ExporterBuilder;

#[test]
fn a_counter_recorded_after_the_guard_is_dropped_arrives() {
    let mut rx = UdpReceiver::new();
    // What `ExporterBuilder::...install()?;` does: the guard is dropped at the end of the
    // statement, with only the must_use warning allowed here.
    #[allow(
        unused_must_use,
        reason = "the statement form is what this test is about"
    )]
    {
        ExporterBuilder::statsd(rx.endpoint())
            .with_flush_interval(Duration::from_millis(50))
            .install()
            .unwrap();
    }
    metrics::counter!("after.drop").increment(3);
    let lines = rx.wait_for(Duration::from_secs(10), |l| {
        counter_sum(l, "after.drop") == 3
    });
    assert_eq!(counter_sum(&lines, "after.drop"), 3, "{lines:?}");
    // And it goes on: a later increment arrives at a later tick.
    metrics::counter!("after.drop").increment(4);
    let lines = rx.wait_for(Duration::from_secs(10), |l| {
        counter_sum(l, "after.drop") == 7
    });
    assert_eq!(counter_sum(&lines, "after.drop"), 7, "{lines:?}");
}
