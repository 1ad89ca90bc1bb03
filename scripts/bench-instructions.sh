#!/usr/bin/env bash
# Instructions the gateway executes per request: `tools/call echo` (bench/echo.lua's request)
# through `mcpgate serve` (resource mode, JWT verified, cached) to the resource_server example,
# with the gateway under callgrind. Instruction counts do not depend on what else the machine is
# doing, so a before/after comparison resolves what wrk's noise hides. Counters are zeroed after
# a warm-up and dumped after N keep-alive requests from one connection.
# Usage: [BASELINE=<git revision>] [KEEP=DIR] scripts/bench-instructions.sh [requests]
# With KEEP, the callgrind dumps are copied to DIR (for callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-2000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }

. scripts/bench-gateway-setup.sh

send() { # port token count
  python3 - "$@" <<'PY'
import http.client, json, sys
port, token, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "echo", "arguments": {"text": "hi"},
    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientCapabilities": {}}}})
headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
           "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo",
           "Authorization": "Bearer " + token}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
for _ in range(count):
    conn.request("POST", "/mcp", body, headers)
    answer = conn.getresponse()
    answer.read()
    if answer.status != 200:
        sys.exit(f"status {answer.status}")
PY
}

measure() { # name binary port -> instructions per request
  local name=$1 binary=$2 port=$3 tok
  gateway_config "$port" "$work/$name.toml"
  "$bin/examples/bench_token" "$issuer" "http://127.0.0.1:$port/mcp" "$work/jwks-$name.json" "$work/token-$name"
  tok=$(cat "$work/token-$name")
  RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$work/cg.$name" \
    "$binary" serve --config "$work/$name.toml" >/dev/null 2>"$work/valgrind.$name" &
  local pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break; sleep 0.5; done
  send "$port" "$tok" 50 # warm-up: the JWKS fetch, the upstream connection, the verify cache
  callgrind_control -z "$pid" >/dev/null 2>&1
  send "$port" "$tok" "$requests"
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true
  # The dump after zeroing is the file with the highest part number.
  local dump total
  dump=$(ls -v "$work/cg.$name".* 2>/dev/null | tail -1)
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
  if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$dump" "$KEEP/callgrind.$name"; fi
  awk -v t="$total" -v n="$requests" 'BEGIN {printf "%.0f", t / n}'
}

this=$(measure current "$work/mcpgate-current" 18280)
echo "this revision: $this instructions per request ($requests requests)"
if [ -n "${BASELINE:-}" ]; then
  base=$(measure baseline "$work/mcpgate-baseline" 18282)
  echo "baseline $BASELINE: $base instructions per request"
  echo "this revision vs baseline: $(awk -v a="$this" -v b="$base" 'BEGIN {printf "%+d instructions per request (%.3f×)", a - b, a / b}')"
fi
