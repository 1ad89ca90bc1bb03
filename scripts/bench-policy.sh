#!/usr/bin/env bash
# The policy's cost in the gateway: `tools/call echo` (bench/echo.lua) through two gateways of
# this revision before one upstream, one without [policy] and one with 100 rules (99 naming other
# tools with allow lists, a CEL condition on the way, the last deciding), alternating wrk rounds
# at 16 connections; medians and their ratio. Usage: scripts/bench-policy.sh [rounds] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-7}
secs=${2:-5}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

. scripts/bench-gateway-setup.sh
gateway_config 18280 "$work/plain.toml"
gateway_config 18282 "$work/policy.toml"
{
  echo "[policy]"
  for i in $(seq 0 96); do
    printf '[[policy.rules]]\ntools = ["tool_%s", "prefix_%s_*"]\nallow_groups = ["group_%s"]\n' "$i" "$i" "$i"
  done
  printf '[[policy.rules]]\ntools = ["*"]\nwhen = "caller.subject.endsWith(\x27@blocked\x27) && size(caller.scopes) == 0"\neffect = "deny"\n'
  printf '[[policy.rules]]\ntools = ["admin_*"]\nallow_users = ["root"]\n'
  printf '[[policy.rules]]\ntools = ["echo"]\n'
} >>"$work/policy.toml"
RUST_LOG=warn "$work/mcpgate-current" serve --config "$work/plain.toml" >/dev/null 2>&1 &
RUST_LOG=warn "$work/mcpgate-current" serve --config "$work/policy.toml" >"$work/policy.log" 2>&1 &
"$bin/examples/bench_token" "$issuer" http://127.0.0.1:18282/mcp "$work/jwks-p.json" "$work/token-p"
policy_token=$(cat "$work/token-p")
sleep 1

run() { # port token -> req/s
  TOKEN="$2" wrk -t1 -c16 -d"${secs}s" -s bench/echo.lua "http://127.0.0.1:$1/mcp" >"$work/out"
  grep -q "unexpected responses: 0" "$work/out" || { cat "$work/out" "$work/policy.log" >&2; echo "errors in run" >&2; exit 1; }
  awk '/Requests\/sec/ {print $2}' "$work/out"
}
run 18280 "$token" >/dev/null # warm-up
run 18282 "$policy_token" >/dev/null
plain=(); policy=(); ratios=()
for i in $(seq "$rounds"); do
  p=$(run 18280 "$token"); q=$(run 18282 "$policy_token")
  plain+=("$p"); policy+=("$q"); ratios+=("$(awk -v q="$q" -v p="$p" 'BEGIN {printf "%.3f", q/p}')")
  echo "round $i: without policy $p req/s, with 100 rules $q req/s (${ratios[-1]})"
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "median: without policy $(median "${plain[@]}") req/s, with 100 rules $(median "${policy[@]}") req/s;" \
  "median of per-round ratios $(median "${ratios[@]}")"
