#!/usr/bin/env bash
# Time from `mcpgate serve` starting to its first `/readyz` 200, in proxy mode with a reachable
# identity provider (a static OpenID discovery document served on loopback) and a SQLite store:
# the median of N starts (the store file exists after the first).
# Usage: scripts/bench-startup.sh [starts]
set -euo pipefail
cd "$(dirname "$0")/.."
starts=${1:-20}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
cargo build --release -q -p mcpgate-cli --bin mcpgate

idp=18390 gateway=18391
mkdir -p "$work/idp/.well-known"
cat >"$work/idp/.well-known/openid-configuration" <<JSON
{"issuer": "http://127.0.0.1:$idp", "authorization_endpoint": "http://127.0.0.1:$idp/authorize",
 "token_endpoint": "http://127.0.0.1:$idp/token", "jwks_uri": "http://127.0.0.1:$idp/jwks",
 "response_types_supported": ["code"], "subject_types_supported": ["public"],
 "id_token_signing_alg_values_supported": ["RS256"]}
JSON
(cd "$work/idp" && exec python3 -m http.server "$idp" --bind 127.0.0.1 >/dev/null 2>&1) &
cat >"$work/mcpgate.toml" <<TOML
[server]
listen = "127.0.0.1:$gateway"
[upstream]
url = "http://127.0.0.1:18392/mcp"
[auth]
client_id = "gw"
client_secret_env = "IDP_SECRET"
scopes = ["mcp:read"]
[auth.oidc]
discovery_url = "http://127.0.0.1:$idp/.well-known/openid-configuration"
[store]
url = "sqlite://$work/gateway.db"
TOML
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$idp/" && break; sleep 0.1; done

python3 - target/release/mcpgate "$work/mcpgate.toml" "$gateway" "$starts" <<'PY'
import os, statistics, subprocess, sys, time, urllib.request
binary, config, port, starts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
env = dict(os.environ, IDP_SECRET="unused", RUST_LOG="warn",
           MCPGATE_SECRET="c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0NTY3OA")
times = []
for _ in range(starts):
    started = time.monotonic()
    gateway = subprocess.Popen([binary, "serve", "--config", config], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() - started > 10:
            sys.exit("not ready within 10 s")
        time.sleep(0.002)
    times.append((time.monotonic() - started) * 1000)
    gateway.terminate()
    gateway.wait()
times.sort()
print(f"/readyz 200 after: median {statistics.median(times):.0f} ms, "
      f"p90 {times[int(len(times) * 0.9) - 1]:.0f} ms, max {times[-1]:.0f} ms ({starts} starts)")
PY
