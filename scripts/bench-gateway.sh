#!/usr/bin/env bash
# The gateway's cost: `tools/call echo` (bench/echo.lua) through `mcpgate serve` (resource mode,
# JWT verified, cached) to the resource_server example (--no-auth) against the same server
# directly, and through nginx from Debian doing the same plain reverse-proxy hop (HTTP/1.1
# keepalive to the upstream, no auth) — what a user would compare with — alternating in one
# run: median latency at 1 connection, throughput at 16, the CPU time each proxy spends per
# request at 16 (user + system, from /proc, over the whole round), and the gateway's idle RSS.
# Usage: scripts/bench-gateway.sh [rounds] [seconds-per-round]
# With BASELINE=<git revision>, that revision's gateway runs too, beside this one, in the same
# rounds (before/after a change, side by side). BASELINE_ENV="VAR=value …" runs the baseline with
# that environment; without BASELINE, the baseline is this revision's gateway (one build, two
# settings, e.g. BASELINE_ENV=TOKIO_WORKER_THREADS=1).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-10}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx-light || apt-get install -y -qq nginx; }

. scripts/bench-gateway-setup.sh
compare=${BASELINE:-${BASELINE_ENV:+this revision}}
[ -n "${BASELINE:-}" ] || [ -z "$compare" ] || cp "$work/mcpgate-current" "$work/mcpgate-baseline"
gateway_config 18280 "$work/gateway.toml"
RUST_LOG=warn "$work/mcpgate-current" serve --config "$work/gateway.toml" >/dev/null 2>&1 &
gateway_pid=$!
if [ -n "$compare" ]; then
  gateway_config 18282 "$work/baseline.toml"
  env ${BASELINE_ENV:-} RUST_LOG=warn "$work/mcpgate-baseline" serve --config "$work/baseline.toml" >/dev/null 2>&1 &
  baseline_pid=$!
fi
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream mcp { server 127.0.0.1:18281; keepalive 32; }
  server {
    listen 127.0.0.1:18283;
    location /mcp {
      proxy_pass http://mcp;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The upstream's own authority, as the gateway sends it (it checks Host).
      proxy_set_header Host 127.0.0.1:18281;
      proxy_buffering off;
    }
  }
}
NGINX
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' &
nginx_master=$!
sleep 1
nginx_worker=$(pgrep -P "$nginx_master" | head -1)
echo "gateway idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$gateway_pid/status)"

cpu_ticks() { # pid -> user + system clock ticks so far
  awk '{print $14 + $15}' "/proc/$1/stat"
}
run() { # port connections token [pid] -> "req/s median-latency-us cpu-us-per-request"
  local before=0 after=0
  [ -z "${4:-}" ] || before=$(cpu_ticks "$4")
  TOKEN="$3" wrk -t1 -c"$2" -d"${secs}s" --latency -s bench/echo.lua "http://127.0.0.1:$1/mcp" >"$work/out"
  [ -z "${4:-}" ] || after=$(cpu_ticks "$4")
  grep -q "unexpected responses: 0" "$work/out" || { cat "$work/out" >&2; echo "errors in run" >&2; exit 1; }
  local rps lat requests
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/out")
  lat=$(awk '$1 == "50%" {v=$2; if (v ~ /ms$/) {sub(/ms/, "", v); v*=1000} else if (v ~ /us$/) {sub(/us/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v*=1000000}; print v}' "$work/out")
  requests=$(awk '/requests in/ {print $1}' "$work/out")
  echo "$rps $lat $(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$requests" 'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
}
run 18280 1 "$token" >/dev/null # warm-up: JWKS fetch, connections
run 18281 1 "" >/dev/null
run 18283 1 "" >/dev/null
if [ -n "$compare" ]; then
  # The baseline's tokens name its own URL as audience.
  "$bin/examples/bench_token" "$issuer" http://127.0.0.1:18282/mcp "$work/jwks-b.json" "$work/token-b"
  base_token=$(cat "$work/token-b")
  run 18282 1 "$base_token" >/dev/null
  bl_lat=(); bl_rps=()
fi

gw_lat=(); di_lat=(); gw_rps=(); di_rps=(); ng_lat=(); ng_rps=(); gw_cpu=(); ng_cpu=(); bl_cpu=()
for i in $(seq "$rounds"); do
  read -r _ gl _ < <(run 18280 1 "$token"); read -r _ dl _ < <(run 18281 1 ""); read -r _ nl _ < <(run 18283 1 "")
  read -r gr _ gc < <(run 18280 16 "$token" "$gateway_pid"); read -r dr _ _ < <(run 18281 16 "")
  read -r nr _ nc < <(run 18283 16 "" "$nginx_worker")
  gw_lat+=("$gl"); di_lat+=("$dl"); gw_rps+=("$gr"); di_rps+=("$dr"); ng_lat+=("$nl"); ng_rps+=("$nr")
  gw_cpu+=("$gc"); ng_cpu+=("$nc")
  echo "round $i: latency@1 gateway ${gl}us nginx ${nl}us direct ${dl}us; throughput@16 gateway $gr nginx $nr direct $dr req/s;" \
    "cpu per request gateway ${gc}us nginx ${nc}us"
  if [ -n "$compare" ]; then
    read -r _ bl _ < <(run 18282 1 "$base_token"); read -r br _ bc < <(run 18282 16 "$base_token" "$baseline_pid")
    bl_lat+=("$bl"); bl_rps+=("$br"); bl_cpu+=("$bc")
    echo "round $i: baseline $compare ${BASELINE_ENV:-} latency@1 ${bl}us; throughput@16 $br req/s; cpu per request ${bc}us"
  fi
done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
gl=$(median "${gw_lat[@]}"); dl=$(median "${di_lat[@]}"); gr=$(median "${gw_rps[@]}"); dr=$(median "${di_rps[@]}")
echo "median: latency@1 gateway ${gl}us direct ${dl}us (added $(awk -v g="$gl" -v d="$dl" 'BEGIN {print g-d}')us);" \
  "throughput@16 gateway $gr direct $dr req/s (ratio $(awk -v g="$gr" -v d="$dr" 'BEGIN {printf "%.3f", g/d}'))"
echo "median: cpu per request@16 gateway $(median "${gw_cpu[@]}")us nginx $(median "${ng_cpu[@]}")us"
nl=$(median "${ng_lat[@]}"); nr=$(median "${ng_rps[@]}")
echo "median: nginx latency@1 ${nl}us (added $(awk -v n="$nl" -v d="$dl" 'BEGIN {print n-d}')us);" \
  "throughput@16 nginx $nr req/s (ratio to direct $(awk -v n="$nr" -v d="$dr" 'BEGIN {printf "%.3f", n/d}'))"
if [ -n "$compare" ]; then
  bl=$(median "${bl_lat[@]}"); br=$(median "${bl_rps[@]}")
  echo "median: baseline $compare ${BASELINE_ENV:-} latency@1 ${bl}us, throughput@16 $br req/s, cpu per request $(median "${bl_cpu[@]}")us;" \
    "this revision vs baseline: throughput ratio $(awk -v g="$gr" -v b="$br" 'BEGIN {printf "%.3f", g/b}')," \
    "latency $(awk -v g="$gl" -v b="$bl" 'BEGIN {printf "%+d", g-b}')us"
fi
echo "gateway RSS after the run: $(awk '/VmRSS/ {print $2, $3}' /proc/$gateway_pid/status)"
