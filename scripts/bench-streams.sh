#!/usr/bin/env bash
# Many idle event streams through the gateway: N MCP sessions (2025-11-25, `initialize` through
# `mcpgate serve` in resource mode to the resource_server example), each with its GET event
# stream open and idle. Reports the gateway's RSS and open files with them open, the latency of
# a stateless `tools/call` before and while they are (median of 200 calls), and the open files
# once they are closed (no leak: back to where they started).
# Usage: scripts/bench-streams.sh [streams]   (default 10000; raises the open-files limit, which
# needs root when the hard limit is lower)
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-10000}
ulimit -Hn 65536 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)"
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt $((streams * 2 + 1000)) ]; then
  echo "the open-files limit ($(ulimit -Sn)) is too low for $streams streams through one gateway" >&2
  exit 1
fi

. scripts/bench-gateway-setup.sh
gateway_config 18280 "$work/gateway.toml"
RUST_LOG=warn "$work/mcpgate-current" serve --config "$work/gateway.toml" >/dev/null 2>&1 &
gateway_pid=$!
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18280/healthz && break; sleep 0.1; done

python3 - "$gateway_pid" "$token" "$streams" <<'PY'
import asyncio, json, os, statistics, sys, time

pid, token, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
HOST, PORT = "127.0.0.1", 18280

def rss_mb():
    with open(f"/proc/{pid}/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
    return kb / 1024

def open_files():
    return len(os.listdir(f"/proc/{pid}/fd"))

def request(method, path, headers, body=b""):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{PORT}", f"Authorization: Bearer {token}",
             f"Content-Length: {len(body)}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

async def head(reader):
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    return status, headers

async def answer(reader):
    status, headers = await head(reader)
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    else:  # chunked: read to the last chunk
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status, headers

ECHO = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "echo", "arguments": {"text": "hi"},
    "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientCapabilities": {}}}}).encode()
ECHO_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"}

async def latency():
    reader, writer = await asyncio.open_connection(HOST, PORT)
    times = []
    for _ in range(200):
        started = time.perf_counter()
        writer.write(request("POST", "/mcp", ECHO_HEADERS, ECHO))
        status, _ = await answer(reader)
        assert status == 200, status
        times.append((time.perf_counter() - started) * 1e6)
    writer.close()
    return statistics.median(times)

INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}}).encode()
INITIALIZED = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

async def open_stream(limit):
    async with limit:
        reader, writer = await asyncio.open_connection(HOST, PORT)
        writer.write(request("POST", "/mcp", JSON_HEADERS, INIT))
        status, headers = await answer(reader)
        assert status == 200, status
        session = {"Mcp-Session-Id": headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
        writer.write(request("POST", "/mcp", {**JSON_HEADERS, **session}, INITIALIZED))
        status, _ = await answer(reader)
        assert status == 202, status
        # The event stream, on a connection of its own, left open and idle.
        stream_reader, stream_writer = await asyncio.open_connection(HOST, PORT)
        stream_writer.write(request("GET", "/mcp", {"Accept": "text/event-stream", **session}))
        status, _ = await head(stream_reader)
        assert status == 200, status
        writer.close()
        return stream_writer

async def main():
    files_before = open_files()
    before = await latency()
    print(f"before: gateway RSS {rss_mb():.0f} MB, {files_before} open files; tools/call median {before:.0f} us")
    started = time.monotonic()
    limit = asyncio.Semaphore(256)
    writers = await asyncio.gather(*(open_stream(limit) for _ in range(count)))
    opened = time.monotonic() - started
    await asyncio.sleep(2)
    during = await latency()
    print(f"with {count} idle streams (opened in {opened:.1f} s): gateway RSS {rss_mb():.0f} MB, "
          f"{open_files()} open files; tools/call median {during:.0f} us ({during / before:.2f}x)")
    for writer in writers:
        writer.close()
    await asyncio.sleep(3)
    print(f"after closing them: gateway RSS {rss_mb():.0f} MB, {open_files()} open files")

asyncio.run(main())
PY
