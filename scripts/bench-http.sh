#!/usr/bin/env bash
# What the bearer layer costs: the resource_server example with and without authentication,
# measured in one run, alternating: wrk -t1 -c16, MCP tools/call `echo` (stateless). Each round
# runs the protected server, then the unprotected one; its ratio is theirs, and the run's
# figure is the median of the rounds' ratios (the machine's drift between rounds cancels out).
# Usage: scripts/bench-http.sh [rounds] [seconds-per-round]
# With BASELINE_BIN=<a resource_server binary> (another build), that build runs too, in the same
# rounds, the order of the two builds alternating.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
secs=${2:-3}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

cargo build --release -q -p mcpgate --example bench_token
bin=target/release/examples
# The executable this build made, from cargo's own report: a binary another checkout built in
# this target directory may sit at the usual path and pass for fresh.
server=$(cargo build --release -q --message-format=json -p mcpgate --example resource_server |
  python3 -c 'import json, sys
print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable")][-1])')
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

issuer=http://127.0.0.1:18099
"$bin/bench_token" "$issuer" http://127.0.0.1:18081/mcp "$work/jwks.json" "$work/token"
(cd "$work" && exec python3 -m http.server 18099 --bind 127.0.0.1 >/dev/null 2>&1) &
builds=(current)
serve() { # binary auth-port no-auth-port
  # Both protected servers take the one token: its audience is the first one's URL.
  "$1" --port "$2" --jwks-uri "$issuer/jwks.json" --issuer "$issuer" --audience http://127.0.0.1:18081/mcp \
    >/dev/null 2>&1 &
  "$1" --port "$3" --no-auth >/dev/null 2>&1 &
}
serve "$server" 18081 18082
declare -A ports=([current]="18081 18082")
if [ -n "${BASELINE_BIN:-}" ]; then
  serve "$BASELINE_BIN" 18083 18084
  builds+=(baseline)
  ports[baseline]="18083 18084"
fi
sleep 1

run() { # port token -> requests/s
  TOKEN="$2" wrk -t1 -c16 -d"${secs}s" -s bench/echo.lua "http://127.0.0.1:$1/mcp" >"$work/out"
  grep -q "unexpected responses: 0" "$work/out" || { cat "$work/out" >&2; echo "errors in run" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$work/out"
}
token=$(cat "$work/token")
for build in "${builds[@]}"; do # warm-up: JWKS fetch, connection set-up
  read -r a n <<<"${ports[$build]}"
  run "$a" "$token" >/dev/null
  run "$n" "" >/dev/null
done

declare -A ratios
for i in $(seq "$rounds"); do
  order=("${builds[@]}")
  [ $((i % 2)) = 0 ] && [ "${#builds[@]}" = 2 ] && order=(baseline current)
  line="round $i:"
  for build in "${order[@]}"; do
    read -r a n <<<"${ports[$build]}"
    with=$(run "$a" "$token")
    without=$(run "$n" "")
    r=$(awk -v a="$with" -v n="$without" 'BEGIN {printf "%.3f", a/n}')
    ratios[$build]+="$r "
    line+=" $build auth $with req/s, no-auth $without req/s, ratio $r;"
  done
  echo "$line"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
for build in "${builds[@]}"; do
  # shellcheck disable=SC2086
  echo "median of per-round ratios ($build): $(median ${ratios[$build]})"
done
