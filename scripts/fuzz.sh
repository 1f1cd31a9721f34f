#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time on the stable toolchain, and exits
# non-zero if any of them crashes (a panic, or a broken wire-format property: the targets run
# the spec parsers of tests/support/ on everything the encoders write).
#
#   scripts/fuzz.sh                 # every target, FUZZ_SECONDS (default 35) each
#   FUZZ_SECONDS=300 scripts/fuzz.sh graphite
#
# Stable works because we build without a sanitizer (`-s none`): cargo-fuzz then passes only
# stable codegen flags (SanitizerCoverage through -Cpasses/-Cllvm-args), and libFuzzer itself
# comes from the libfuzzer-sys crate. Panics still abort, so libFuzzer reports them as
# crashes. Installs cargo-fuzz (from crates.io, about 2.5 minutes on 2 cores) if it is
# missing; the first build of the targets takes about as long again, later ones seconds.
#
# Corpora stay in fuzz/corpus/<target> (not committed), so each run continues where the last
# one on this machine stopped. A crash leaves its input in fuzz/artifacts/<target>/ and the
# command that replays it in the output.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-35}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(statsd dogstatsd dogstatsd_events statsd_lines graphite graphite_pickle graphite_points)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked
fi

for target in "${targets[@]}"; do
    cargo fuzz build --sanitizer none "$target"
done

failed=()
for target in "${targets[@]}"; do
    echo "fuzz.sh: $target for ${seconds}s"
    # -max_len: room for a few 10 kB names; -timeout: a single input never takes a second.
    # Progress lines are left out; the final stats, and a crash's message and input, stay.
    if ! cargo fuzz run --sanitizer none "$target" -- \
        -max_total_time="$seconds" -max_len=16384 -timeout=10 -print_final_stats=1 \
        2>&1 | sed -E '/^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|RELOAD)/d'; then
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashed: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, no crash"
