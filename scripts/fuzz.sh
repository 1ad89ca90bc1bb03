#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 60), from its seed corpus
# (fuzz/seeds/<target>, committed) and its working corpus (target/fuzz-corpus/<target>, kept
# between runs on one machine). Installs the nightly toolchain and cargo-fuzz when missing.
# A crash, a failed property or a leak stops it with the input saved under fuzz/artifacts/.
# Prints one line per target: its runs, and how many inputs its corpus grew to.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "== installing the nightly toolchain (cargo-fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

targets=$(cd fuzz && cargo +nightly fuzz list)
echo "== building the fuzz targets"
(cd fuzz && cargo +nightly fuzz build)
for target in $targets; do
  corpus="target/fuzz-corpus/$target"
  mkdir -p "$corpus"
  log="target/fuzz-corpus/$target.log"
  # -rss_limit_mb: the router targets hold a tokio runtime and an in-memory store.
  if ! (cd fuzz && cargo +nightly fuzz run "$target" "../$corpus" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1) >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz target $target FAILED (log: $log)"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz: $target ran $runs inputs in ${seconds}s, corpus $(ls "$corpus" | wc -l) inputs, no failure"
done
