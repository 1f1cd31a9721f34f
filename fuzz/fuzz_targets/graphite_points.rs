//! Fuzzes the pure Graphite encoder (`GraphitePoints`): no panic, and whatever the paths,
//! values and timestamps, each accepted point is one line carbon reads as exactly that point,
//! the pickle message holds exactly the same points, and a refusal has a reason (see
//! `tests/support/points_oracle.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics_exporter_statsd_graphite_fuzz::{PointsInput, graphite_points};

fuzz_target!(|input: PointsInput| graphite_points(&input));
