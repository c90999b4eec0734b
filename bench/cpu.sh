#!/usr/bin/env bash
# CPU seconds per thread of `flowsight serve` while it ingests a capture at a given rate:
# the cost of a change per flow, without the noise of a loss threshold.
#
# Usage: bench/cpu.sh CAPTURE SPEED [CONFIG]
#   CAPTURE  a capture of export datagrams (bench/ingest.py leaves /tmp/ingest-v9-N.pcap,
#            or: flowsight generate --out c.pcap --format v9 --rate 1000000 --flows 6000000)
#   SPEED    replay speed relative to the capture's 1M flows/s timestamps (0.5 = 500k/s)
#   CONFIG   a flowsight.toml (e.g. bench/enrich.toml); default none
# Prints CPU seconds by thread name, the total, and the flows stored and kernel drops.
set -euo pipefail
CAP=$1 SPEED=$2 CFG=${3:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/flowsight
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UDP=$(port) HTTP=$(port)
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
EXTRA=()
[ -n "$CFG" ] && EXTRA=(--config "$CFG")
cd "$ROOT"
RUST_LOG=warn "$BIN" serve --data "$DATA" --listen "netflow://127.0.0.1:$UDP" --http "127.0.0.1:$HTTP" "${EXTRA[@]}" 2>/dev/null &
PID=$!
until curl -sf "127.0.0.1:$HTTP/api/v1/health" >/dev/null; do sleep 0.2; done
"$BIN" replay "$CAP" --target "127.0.0.1:$UDP" --speed "$SPEED" >/dev/null 2>&1
sleep 2
python3 - "$PID" <<'PY'
import os, sys
pid, tick, tot = sys.argv[1], os.sysconf("SC_CLK_TCK"), {}
for t in os.listdir(f"/proc/{pid}/task"):
    st = open(f"/proc/{pid}/task/{t}/stat").read()
    name = st[st.index("(") + 1:st.rindex(")")].rstrip("0123456789-")
    f = st[st.rindex(")") + 2:].split()
    tot[name] = tot.get(name, 0) + (int(f[11]) + int(f[12])) / tick
print(" ".join(f"{k}={v:.2f}" for k, v in sorted(tot.items())), f"total={sum(tot.values()):.2f}")
PY
curl -s "127.0.0.1:$HTTP/metrics" | grep -E '^flowsight_(flows|kernel_drops)_total' | tr '\n' ' '
echo
kill "$PID"
wait "$PID" 2>/dev/null || true
