//! Fuzzes the DogStatsD event and service check encoders: no panic, one line, and what the
//! Datadog Agent reads back is what was given (see `fuzz/src/events.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics_exporter_statsd_graphite_fuzz::{EventInput, events};

fuzz_target!(|input: EventInput| events(&input));
