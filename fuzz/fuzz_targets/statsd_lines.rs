//! Fuzzes the public StatsD/DogStatsD line encoder: no panic, a refusal writes nothing, and a
//! written line reads back as exactly one metric of the type asked for (see
//! `fuzz/src/lines.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics_exporter_statsd_graphite_fuzz::{LineInput, lines};

fuzz_target!(|input: LineInput| lines(&input));
