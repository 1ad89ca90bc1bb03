#!/usr/bin/env bash
# Throughput of the resource_server example with and without authentication, measured in one
# run, alternating: wrk, 16 connections, MCP tools/call `echo`. Prints each round and the
# medians. Usage: scripts/bench-http.sh [rounds] [seconds-per-round]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

cargo build --release -q -p mcpgate --example resource_server --example bench_token
bin=target/release/examples
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

issuer=http://127.0.0.1:18099
"$bin/bench_token" "$issuer" http://127.0.0.1:18081/mcp "$work/jwks.json" "$work/token"
(cd "$work" && exec python3 -m http.server 18099 --bind 127.0.0.1 >/dev/null 2>&1) &
"$bin/resource_server" --port 18081 --jwks-uri "$issuer/jwks.json" --issuer "$issuer" >/dev/null 2>&1 &
"$bin/resource_server" --port 18082 --no-auth >/dev/null 2>&1 &
sleep 1

run() { # port token -> requests/s
  TOKEN="$2" wrk -t2 -c16 -d"${secs}s" -s bench/echo.lua "http://127.0.0.1:$1/mcp" >"$work/out"
  grep -q "unexpected responses: 0" "$work/out" || { cat "$work/out" >&2; echo "errors in run" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$work/out"
}
run 18081 "$(cat "$work/token")" >/dev/null # warm-up: JWKS fetch, connection set-up
run 18082 "" >/dev/null

auth=(); noauth=()
for i in $(seq "$rounds"); do
  a=$(run 18081 "$(cat "$work/token")"); n=$(run 18082 "")
  auth+=("$a"); noauth+=("$n")
  echo "round $i: auth $a req/s, no-auth $n req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
ma=$(median "${auth[@]}"); mn=$(median "${noauth[@]}")
echo "median: auth $ma req/s, no-auth $mn req/s, ratio $(awk -v a="$ma" -v n="$mn" 'BEGIN {printf "%.3f", a/n}')"
