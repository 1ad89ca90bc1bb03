#!/usr/bin/env bash
# Throughput of the authorization server's endpoints on SQLite (or the store given), measured
# with wrk at 16 connections: /register, /authorize (to the consent page) and the refresh_token
# grant at /token, in alternating rounds. Prints each round and the medians.
# Usage: scripts/bench-authz.sh [rounds] [seconds-per-round] [store-url]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

cargo build --release -q -p mcpgate --features bench-support --example bench_authz
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
store=${3:-sqlite://$work/bench.db}
port=18090

# A refresh token works once: every round gets its own 64 grants.
target/release/examples/bench_authz --port "$port" --store "$store" --out "$work" --grants $((64 * rounds)) \
  >"$work/server.out" 2>&1 &
for _ in $(seq 100); do grep -q ready "$work/server.out" 2>/dev/null && break; sleep 0.2; done
grep -q ready "$work/server.out" || { cat "$work/server.out" >&2; exit 1; }
export CLIENT_ID TOKENS WRK_THREADS=2
CLIENT_ID=$(cat "$work/client_id")

run() { # script -> requests/s
  wrk -t2 -c16 -d"${secs}s" -s "bench/$1.lua" "http://127.0.0.1:$port" >"$work/out"
  grep -q "unexpected responses: 0" "$work/out" || { cat "$work/out" >&2; echo "errors in run" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$work/out"
}

declare -A results
for i in $(seq "$rounds"); do
  line="round $i:"
  TOKENS="$work/refresh_tokens.$i"
  sed -n "$(( (i - 1) * 64 + 1 )),$(( i * 64 ))p" "$work/refresh_tokens" >"$TOKENS"
  for endpoint in register authorize refresh; do
    r=$(run "$endpoint")
    results[$endpoint]+="$r "
    line+=" $endpoint $r req/s"
  done
  echo "$line"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "median (store $store): register $(median ${results[register]}) req/s," \
  "authorize $(median ${results[authorize]}) req/s, refresh $(median ${results[refresh]}) req/s"
