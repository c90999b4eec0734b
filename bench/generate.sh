#!/usr/bin/env bash
# Highest send rate of `flowsight generate` per format (one core: the generator is one
# thread), into a bound UDP socket on loopback that never reads (the kernel drops what
# overflows: the sender's rate is what is measured, not a collector's).
# Usage: bench/generate.sh [FLOWS]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
FLOWS=${1:-3000000}
cargo build --release --quiet
BIN=${CARGO_TARGET_DIR:-target}/release/flowsight
python3 - "$BIN" "$FLOWS" <<'PY'
import json, socket, subprocess, sys
bin_, flows = sys.argv[1], sys.argv[2]
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("127.0.0.1", 0))
port = sink.getsockname()[1]
print(f"| format | flows | datagrams | seconds | flows/s |")
print(f"| --- | --- | --- | --- | --- |")
for fmt in ["v5", "v9", "ipfix", "sflow"]:
    out = subprocess.run([bin_, "generate", "--target", f"127.0.0.1:{port}", "--format", fmt,
                          "--rate", "max", "--flows", flows, "--seed", "1", "--summary=json"],
                         check=True, capture_output=True, text=True).stdout
    t = json.loads(out)
    print(f"| {fmt} | {t['flows']} | {t['datagrams']} | {t['elapsed_s']:.2f} | {t['flows_per_s']:,.0f} |")
PY
