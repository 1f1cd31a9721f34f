#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Installs the real receivers the interop tests need (apt + npm, when missing), then:
# formatting, clippy (pedantic, -D warnings), every test and doctest, the docs with
# -D warnings, a build of the benches (timings are never gated on: the machine is noisy), and
# every encoder's fuzz target for FUZZ_SECONDS (default 20) each.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "receivers (Etsy statsd, collectd, carbon)"
bash scripts/install-receivers.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --all-targets --all-features -- -D warnings

step "cargo test (unit, integration, interop, doctests)"
cargo test --all-features

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

step "cargo bench --no-run"
cargo bench --no-run

step "fuzz every encoder for a bounded time (cargo fuzz on stable)"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash scripts/fuzz.sh
