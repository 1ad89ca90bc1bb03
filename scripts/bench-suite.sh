#!/usr/bin/env bash
# How long the test suite takes, two revisions side by side: each checked out in a worktree,
# dependencies built once in a shared target directory, then per round and revision our own
# crates cleaned and `cargo nextest run --workspace --all-features` timed (compile of our
# crates, link of every test binary, run). Node packages and the Python venv are linked from
# this checkout (run ./scripts/test.sh once first).
# Usage: scripts/bench-suite.sh BEFORE [AFTER=HEAD] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
before=${1:?usage: scripts/bench-suite.sh BEFORE [AFTER] [ROUNDS]} after=${2:-HEAD} rounds=${3:-2}
work=$(mktemp -d) root=$PWD
export CARGO_TARGET_DIR="$work/target" CARGO_INCREMENTAL=0 CARGO_TERM_COLOR=never
trap 'git -C "$root" worktree remove --force "$work/before" 2>/dev/null; git -C "$root" worktree remove --force "$work/after" 2>/dev/null; rm -rf "$work"' EXIT
for side in before after; do
  rev=${!side}
  git worktree add -q --detach "$work/$side" "$rev"
  # The test IdP's Node project moved with issue 15; link whichever the revision has.
  for idp in crates/mcpgate-test-support/idp crates/mcpgate/tests/idp; do
    [ -f "$work/$side/$idp/package.json" ] && ln -s "$root/crates/mcpgate-test-support/idp/node_modules" "$work/$side/$idp/node_modules"
  done
  interop=crates/mcpgate-cli/tests/interop
  ln -s "$root/$interop/node_modules" "$work/$side/$interop/node_modules"
  ln -s "$root/$interop/.venv" "$work/$side/$interop/.venv"
  (cd "$work/$side" && cargo nextest run --workspace --all-features --no-run >/dev/null 2>&1)
done
for round in $(seq "$rounds"); do
  for side in before after; do
    cd "$work/$side"
    packages=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json,sys; print(" ".join("-p " + p["name"] for p in json.load(sys.stdin)["packages"]))')
    # shellcheck disable=SC2086
    cargo clean -q $packages
    start=$(date +%s.%N)
    cargo nextest run --workspace --all-features --no-fail-fast >"$work/$side-$round.log" 2>&1 || true
    end=$(date +%s.%N)
    printf '%s (%s) round %s: %.0f s wall; %s\n' "$side" "${!side}" "$round" "$(echo "$end - $start" | bc)" \
      "$(grep -E '^ *Summary' "$work/$side-$round.log" | sed 's/^ *//')"
  done
done
