# Sourced by the gateway benchmarks: builds this revision's gateway ($work/mcpgate-current) and
# BASELINE's when set ($work/mcpgate-baseline),
# mints a JWT for the bench issuer, and starts the JWKS server and the upstream (resource_server
# --no-auth on 18281). Sets $work (a temporary directory, removed on exit), $bin, $token and
# $issuer; `gateway_config PORT FILE` writes a gateway config listening on PORT.
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; git worktree remove --force "$work/baseline" 2>/dev/null; rm -rf "$work"' EXIT

# The executable a build made (or found fresh), from cargo's own report.
built() { # cargo build arguments…
  cargo build --release -q --message-format=json "$@" |
    python3 -c 'import json, sys
paths = [m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable")]
print(paths[-1])'
}

cargo build --release -q -p mcpgate --example resource_server --example bench_token
cp "$(built -p mcpgate-cli --bin mcpgate)" "$work/mcpgate-current"
if [ -n "${BASELINE:-}" ]; then
  # In a target directory of its own: cargo names artifacts without their source path and
  # judges freshness by mtimes, so a baseline built in ours would later pass for this revision.
  git worktree add -q --detach "$work/baseline" "$BASELINE"
  cp "$(built --manifest-path "$work/baseline/Cargo.toml" --target-dir target/bench-baseline -p mcpgate-cli --bin mcpgate)" \
    "$work/mcpgate-baseline"
fi
bin=target/release

issuer=http://127.0.0.1:18299
"$bin/examples/bench_token" "$issuer" http://127.0.0.1:18280/mcp "$work/jwks.json" "$work/token"
token=$(cat "$work/token")
(cd "$work" && exec python3 -m http.server 18299 --bind 127.0.0.1 >/dev/null 2>&1) &
"$bin/examples/resource_server" --port 18281 --no-auth >/dev/null 2>&1 &

gateway_config() { # port file
  cat >"$2" <<TOML
[server]
listen = "127.0.0.1:$1"
[upstream]
url = "http://127.0.0.1:18281/mcp"
[auth]
mode = "resource"
[auth.resource]
jwks_uri = "$issuer/jwks.json"
issuer = "$issuer"
TOML
}
