#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Installs the real receivers the interop tests need (apt + npm, when missing), then:
# formatting, clippy (pedantic, -D warnings), every test and doctest, every example, the docs with
# -D warnings, a publish dry run, a build of the benches (timings are never gated on: the machine is noisy), and
# every encoder's fuzz target for FUZZ_SECONDS (default 20) each.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "receivers (Etsy statsd, collectd, carbon)"
bash scripts/install-receivers.sh

step "module graph (no import cycles under src/)"
python3 scripts/modgraph.py

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --all-targets --all-features -- -D warnings

step "cargo test (unit, integration, interop, doctests)"
cargo test --all-features

step "run every example as the README does (each must exit 0 and print what it promises)"
run_example() {
    local expect="$1"; shift
    local out
    # --all-features: the build cargo test just made, no second one.
    out="$(timeout 300 cargo run -q --all-features --example "$@" 2>&1)" || { printf '%s\n' "$out"; echo "example $1 failed"; exit 1; }
    grep -q -- "$expect" <<<"$out" || { printf '%s\n' "$out"; echo "example $1 did not print: $expect"; exit 1; }
    echo "example $1: ok"
}
# The README's first command must stay small: 46 crates when it was split out (issue 14), 50
# before ref-cast and its derive (issue 15: the registry's address-first key; the derive reuses
# the syn that thiserror and tokio already build).
qs_crates="$(cargo tree -p quickstart -e normal,build --prefix none | sed 's/ (\*)$//' | sort -u | wc -l)"
[ "$qs_crates" -le 52 ] || { echo "cargo run -p quickstart now builds $qs_crates crates (was 52): keep it to the exporter's own dependencies"; exit 1; }
echo "quickstart builds $qs_crates crates"
# The README's first command, as written (its own package: the exporter's normal dependencies only).
out="$(timeout 300 cargo run -q -p quickstart 2>&1)" || { printf '%s\n' "$out"; echo "quickstart failed"; exit 1; }
grep -q -- "0 dropped" <<<"$out" || { printf '%s\n' "$out"; echo "quickstart did not print: 0 dropped"; exit 1; }
echo "quickstart (cargo run -p quickstart): ok"
run_example "0 dropped" quickstart
run_example "lines sent" layers
run_example "StatsD: " fanout_prometheus
run_example "gateway | PUT /metrics/job/example" fanout_pushgateway
run_example "route:/users/{id}" axum_app
run_example "lines sent in total" loadgen -- --seconds 1 --series 100
run_example "0 bad" tap -- --demo --seconds 3

step "cargo doc (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

step "cargo publish --dry-run (packages and builds the crate; no warning but the dry run's own)"
out="$(cargo publish --dry-run --allow-dirty 2>&1)" || { printf '%s\n' "$out"; echo "publish dry run failed"; exit 1; }
if grep '^warning' <<<"$out" | grep -v 'aborting upload due to dry run'; then
    printf '%s\n' "$out"; echo "publish dry run warned"; exit 1
fi
echo "publish dry run: clean"

step "cargo bench --no-run"
cargo bench --no-run

step "fuzz every encoder for a bounded time (cargo fuzz on stable)"
FUZZ_SECONDS="${FUZZ_SECONDS:-20}" bash scripts/fuzz.sh
