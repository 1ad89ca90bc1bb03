#!/usr/bin/env bash
# Runs every check CI runs: formatting, clippy with warnings as errors, and all tests.
# Installs what the tests need when it is missing, so it works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A fresh clone gains nothing from incremental caches, and they cost gigabytes of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

disk() { echo "== disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free ($1)"; }
disk "start"

if ! rustup component list --installed 2>/dev/null | grep -q '^rustfmt'; then
  rustup component add rustfmt
fi
if ! rustup component list --installed 2>/dev/null | grep -q '^clippy'; then
  rustup component add clippy
fi

# The store suite runs against a real redis-server (Debian package).
if ! command -v redis-server >/dev/null 2>&1; then
  echo "== installing redis-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq redis-server >/dev/null
fi

# The demo test runs the curl command `mcpgate demo` prints.
if ! command -v curl >/dev/null 2>&1; then
  echo "== installing curl"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq curl >/dev/null
fi

# The authorization-server tests run a real OpenID provider (oidc-provider on Node).
if ! command -v node >/dev/null 2>&1; then
  echo "== installing nodejs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
# npm packages the tests run: the IdP, and third-party MCP servers the gateway runs on stdio.
for dir in crates/mcpgate-test-support/idp crates/mcpgate-cli/tests/interop; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "== npm ci ($dir)"
    # From inside the directory: npm 11 no longer reads the lockfile of a --prefix directory.
    (cd "$dir" && npm ci --no-audit --no-fund)
  fi
done

# A real browser for one interop test: Debian's Chromium, driven by playwright-core.
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

# The Python MCP SDK for the interop tests, in a venv of its own (pinned in requirements.txt).
interop=crates/mcpgate-cli/tests/interop
if [ ! -x "$interop/.venv/bin/python" ] || [ "$interop/requirements.txt" -nt "$interop/.venv/installed" ]; then
  echo "== python venv ($interop/.venv)"
  rm -rf "$interop/.venv"
  if ! python3 -m venv "$interop/.venv" >/dev/null 2>&1; then
    # Debian keeps venv's pip apart, in python3-venv.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$interop/.venv"
    python3 -m venv "$interop/.venv"
  fi
  "$interop/.venv/bin/pip" install -q --disable-pip-version-check -r "$interop/requirements.txt"
  touch "$interop/.venv/installed"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== module cycles"
python3 scripts/module-cycles.py

echo "== the library without its default features (a JWT-only user: no SQLite C code, no Redis, no authorization server)"
cargo check -q -p mcpgate --no-default-features
if cargo tree -p mcpgate --no-default-features -e normal | grep -E "rusqlite|redis"; then
  echo "rusqlite or redis is built without the sqlite/redis features" >&2
  exit 1
fi

echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "== fuzz targets, briefly (scripts/fuzz.sh SECONDS runs each longer)"
./scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
# The fuzz build (nightly, sanitizers) shares nothing with the tests' build; on a small disk
# make room for them (the corpus under target/ stays).
if [ "$(df --output=avail -k . | tail -1)" -lt $((12 * 1024 * 1024)) ]; then
  echo "== little disk left: removing fuzz/target"
  rm -rf fuzz/target
fi
disk "after fuzzing"

echo "== doc tests"
# nextest does not run doc tests; run them first so the suite's summary closes the output.
cargo test --workspace --all-features --doc

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-features --no-fail-fast
else
  cargo test --workspace --all-features --no-fail-fast
fi
