//! Fuzzes the dogstatsd encoder: no panic, and every wire-format property of
//! `tests/support/encoder_oracle.rs` holds for whatever names, labels and values come in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics_exporter_statsd_graphite_fuzz::{DogStatsdInput, dogstatsd};

fuzz_target!(|input: DogStatsdInput| dogstatsd(&input));
