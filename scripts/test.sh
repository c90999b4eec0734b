#!/usr/bin/env bash
# Runs flowsight's whole test suite. Installs what the tests need when it is missing:
# Debian packages for the real exporters and reference decoders the golden tests compare with,
# and Chromium with playwright-core for the portal's browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package that provides it
declare -A NEED=(
  [tshark]=tshark
  [tcpdump]=tcpdump
  [softflowd]=softflowd
  [fprobe]=fprobe
  [pmacctd]=pmacct
  [nfcapd]=nfdump
  [sfcapd]=nfdump-sflow
  [python3]=python3
  [openssl]=openssl
  [curl]=curl
  [chromium]=chromium
  [node]=nodejs
  [npm]=npm
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${NEED[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing missing Debian packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

# DuckDB (from PyPI, in a virtualenv beside the build) reads the store's Parquet files in
# the tests, as users' tools would: the files must not need flowsight to be read.
# openapi-spec-validator checks the API's OpenAPI document.
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "test.sh: installing python3-venv"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q python3-venv
fi
VENV="${CARGO_TARGET_DIR:-target}/test-venv"
if ! "$VENV/bin/python" -c 'import duckdb, openapi_spec_validator' >/dev/null 2>&1; then
  echo "test.sh: creating $VENV with duckdb and openapi-spec-validator"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q duckdb openapi-spec-validator
fi
export FLOWSIGHT_PYTHON="$(cd "$(dirname "$VENV")" && pwd)/$(basename "$VENV")/bin/python"

# The free GeoIP/ASN databases for the enrichment end-to-end test (npm registry, ~26 MB),
# fetched once beside the build and refreshed monthly.
GEO="${CARGO_TARGET_DIR:-target}/geo-data"
if [ ! -f "$GEO/geo-whois-asn-country.mmdb" ] || [ ! -f "$GEO/asn-ipv6.csv" ] \
  || [ -n "$(find "$GEO/geo-whois-asn-country.mmdb" -mtime +30 2>/dev/null)" ]; then
  echo "test.sh: fetching free GeoIP/ASN databases into $GEO"
  scripts/fetch-geo-data --no-city "$GEO" >/dev/null
fi
export FLOWSIGHT_GEO_DIR="$(cd "$GEO" && pwd)"

# The portal's browser test drives Debian's chromium with playwright-core (npm, pinned in
# tests/browser/package-lock.json), installed once beside the build.
NODE_DIR="${CARGO_TARGET_DIR:-target}/browser-node"
if [ ! -f "$NODE_DIR/node_modules/playwright-core/package.json" ] \
  || ! cmp -s tests/browser/package-lock.json "$NODE_DIR/package-lock.json"; then
  echo "test.sh: installing playwright-core into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  cp tests/browser/package.json tests/browser/package-lock.json "$NODE_DIR/"
  (cd "$NODE_DIR" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
export FLOWSIGHT_NODE_MODULES="$(cd "$NODE_DIR" && pwd)/node_modules"

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== fuzz targets compile (run them with: RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET)"
cargo check --manifest-path fuzz/Cargo.toml --locked --quiet
echo "== all tests passed (portal screenshots: ${CARGO_TARGET_DIR:-target}/portal-screenshots)"
