#!/usr/bin/env bash
# Flat at size (issue 18, item 4): /authorize, the refresh grant at /token and the MCP call path
# of examples/bench_authz on an empty store and, side by side in the same run, on one holding
# 1,000,000 registered clients and 100,000 live grants (bulk-loaded through the record owners),
# in alternating rounds (wrk -t2 -c16); then a sweep: 100,000 registrations that all expire at
# once, with the refresh grant's p99 in one-second windows before and while they are swept.
# Usage: scripts/bench-scale.sh [rounds] [seconds-per-round] [sqlite|redis|both]  (0 rounds: the sweep only)
# CLIENTS and GRANTS override the sizes (for a quick try).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
secs=${2:-5}
which=${3:-both}
clients=${CLIENTS:-1000000}
grants=${GRANTS:-100000}
expiring=${EXPIRING:-100000}
ttl=30 # seconds from the expiring registrations' writing to their expiry
settle=10 # seconds after the restart before windows count (the load's own log is checkpointed)
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v sqlite3 >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3; }
if [ "$which" != sqlite ] && ! command -v redis-server >/dev/null; then
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi

cargo build --release -q -p mcpgate --features bench-support --example bench_authz
bin=target/release/examples/bench_authz
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; [ -z "${KEEP:-}" ] || cp -r "$work" "$KEEP"; rm -rf "$work"' EXIT
export WRK_THREADS=2

# start NAME PORT STORE [ARGS…]: a bench_authz serving STORE, its files in $work/NAME.
start() {
  local name=$1 port=$2 store=$3
  shift 3
  mkdir -p "$work/$name"
  "$bin" --port "$port" --store "$store" --out "$work/$name" "$@" >"$work/$name/server.out" 2>&1 &
  echo $! >"$work/$name/pid"
}
wait_ready() { # NAME
  for _ in $(seq 3000); do grep -q '^ready' "$work/$1/server.out" 2>/dev/null && return; sleep 0.2; done
  cat "$work/$1/server.out" >&2
  exit 1
}
stop() { kill "$(cat "$work/$1/pid")" 2>/dev/null || true; wait "$(cat "$work/$1/pid")" 2>/dev/null || true; }

# p99 of wrk --latency output, in milliseconds.
p99() { awk '$1 == "99%" {v=$2; if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /us$/) {sub(/us/, "", v); v/=1000} else if (v ~ /s$/) {sub(/s/, "", v); v*=1000}; print v}' "$1"; }

# run NAME PORT ENDPOINT ROUND SECONDS -> "req/s p99-ms"
run() {
  local name=$1 port=$2 endpoint=$3 round=$4 duration=$5 out="$work/$1/wrk.out"
  export CLIENT_ID TOKEN TOKENS
  CLIENT_ID=$(cat "$work/$name/client_id")
  TOKEN=$(cat "$work/$name/access_token")
  TOKENS="$work/$name/tokens.$round"
  sed -n "$((round * 64 + 1)),$(((round + 1) * 64))p" "$work/$name/refresh_tokens" >"$TOKENS"
  case $endpoint in
    mcp) wrk -t2 -c16 -d"${duration}s" --latency -s bench/echo.lua "http://127.0.0.1:$port/mcp" >"$out" ;;
    *) wrk -t2 -c16 -d"${duration}s" --latency -s "bench/$endpoint.lua" "http://127.0.0.1:$port" >"$out" ;;
  esac
  grep -q "unexpected responses: 0" "$out" || { cat "$out" >&2; echo "errors in run ($name $endpoint)" >&2; exit 1; }
  echo "$(awk '/Requests\/sec/ {print $2}' "$out") $(p99 "$out")"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

bench_store() { # KIND
  local kind=$1 empty_url loaded_url
  if [ "$kind" = redis ]; then
    for port in 16391 16392; do
      redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
        >"$work/redis-$port.log" 2>&1 &
    done
    sleep 0.5
    empty_url=redis://127.0.0.1:16391
    loaded_url=redis://127.0.0.1:16392
  else
    empty_url=sqlite://$work/empty.db
    loaded_url=sqlite://$work/loaded.db
  fi
  local tokens=$((64 * (rounds + 1)))
  start empty 18090 "$empty_url" --grants "$tokens"
  start loaded 18091 "$loaded_url" --grants "$tokens" --clients "$clients" --live-grants "$grants"
  wait_ready empty
  wait_ready loaded
  echo "$kind: $(grep '^loaded' "$work/loaded/server.out")"
  [ "$kind" = sqlite ] && echo "$kind: database $(du -sh "$work/loaded.db" | cut -f1), log $(du -sh "$work/loaded.db-wal" 2>/dev/null | cut -f1)"
  [ "$kind" = redis ] && echo "$kind: $(redis-cli -p 16392 dbsize) keys, $(redis-cli -p 16392 info memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"

  if [ "$rounds" -gt 0 ]; then
    declare -A rps p
    for endpoint in authorize refresh mcp; do run empty 18090 "$endpoint" "$rounds" 1 >/dev/null; run loaded 18091 "$endpoint" "$rounds" 1 >/dev/null; done # warm-up
    for i in $(seq 0 $((rounds - 1))); do
      local line="$kind round $((i + 1)):"
      for endpoint in authorize refresh mcp; do
        # Alternate which store goes first.
        local order="empty loaded"
        [ $((i % 2)) = 1 ] && order="loaded empty"
        for name in $order; do
          local port=18090
          [ "$name" = loaded ] && port=18091
          read -r r q < <(run "$name" "$port" "$endpoint" "$i" "$secs")
          rps[$name.$endpoint]+="$r "
          p[$name.$endpoint]+="$q "
          line+=" $endpoint/$name $r req/s p99 ${q} ms;"
        done
      done
      echo "$line"
    done
    for endpoint in authorize refresh mcp; do
      local e l
      # shellcheck disable=SC2086
      e=$(median ${rps[empty.$endpoint]})
      # shellcheck disable=SC2086
      l=$(median ${rps[loaded.$endpoint]})
      # shellcheck disable=SC2086
      echo "$kind median $endpoint: empty $e req/s (p99 $(median ${p[empty.$endpoint]}) ms)," \
        "loaded $l req/s (p99 $(median ${p[loaded.$endpoint]}) ms), ratio $(awk -v a="$l" -v b="$e" 'BEGIN {printf "%.3f", a / b}')"
    done
  fi
  stop empty

  # The sweep: the loaded store again, with registrations expiring together $ttl s after
  # they are written, swept (SQLite) every 5 s; Redis expires them itself.
  stop loaded
  # One window a second, each with 64 fresh refresh tokens: enough for a sweep of 400 rows a
  # second beyond the expiry.
  start sweep 18091 "$loaded_url" --grants $((64 * (ttl + 12 + expiring / 400))) --unconfirmed "$expiring" \
    --unconfirmed-ttl "$ttl" --sweep-every 5
  wait_ready sweep
  local from until before="" during="" w=0
  read -r from until < <(awk '$1 == "expiring" {print $2, $3}' "$work/sweep/server.out")
  local ready_at=$(($(date +%s%3N) + settle * 1000))
  # Windows until the last registration has expired, a sweep interval (and some) has passed
  # and, on SQLite, the sweep has deleted every expired row: a paced sweep goes on well after
  # the last expiry, and all of it is measured.
  swept() {
    [ "$kind" != sqlite ] || [ "$(sqlite3 "$work/loaded.db" \
      "SELECT count(*) FROM records WHERE expires_at IS NOT NULL AND expires_at <= $(date +%s%3N)")" = 0 ]
  }
  while [ "$(date +%s%3N)" -lt $((until + 8000)) ] || ! swept; do
    local began ended
    began=$(date +%s%3N)
    read -r r q < <(run sweep 18091 refresh "$w" 1)
    ended=$(date +%s%3N)
    if [ "$began" -lt "$ready_at" ]; then :; # settling after the restart and the load
    elif [ "$ended" -lt "$from" ]; then before+="$q "; else during+="$q "; fi
    w=$((w + 1))
  done
  echo "$kind: expired from $(((from - ready_at) / 1000)) s to $(((until - ready_at) / 1000)) s after the windows began; the last window ended $((($(date +%s%3N) - ready_at) / 1000)) s after"
  [ "$kind" = redis ] && echo "$kind: after the sweep $(redis-cli -p 16392 dbsize) keys"
  # shellcheck disable=SC2086
  local pb pa mb
  # shellcheck disable=SC2086
  pb=$(median $before)
  # shellcheck disable=SC2086
  mb=$(printf '%s\n' $before | sort -g | tail -1)
  # shellcheck disable=SC2086
  pa=$(printf '%s\n' $during | sort -g | tail -1)
  echo "$kind sweep of $expiring expired registrations: refresh p99 (ms) per 1 s window before: $before"
  echo "$kind sweep: while they expire and are swept: $during"
  echo "$kind sweep: worst window while swept ${pa} ms vs median before ${pb} ms (worst before ${mb} ms), ratio $(awk -v a="$pa" -v b="$pb" 'BEGIN {printf "%.2f", a / b}')"
  stop sweep
  if [ "$kind" = redis ]; then
    redis-cli -p 16391 shutdown nosave >/dev/null 2>&1 || true
    redis-cli -p 16392 shutdown nosave >/dev/null 2>&1 || true
  fi
}

case $which in
  both) bench_store sqlite; bench_store redis ;;
  sqlite | redis) bench_store "$which" ;;
  *) echo "usage: $0 [rounds] [seconds] [sqlite|redis|both]" >&2; exit 2 ;;
esac
