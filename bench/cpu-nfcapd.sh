#!/usr/bin/env bash
# CPU seconds nfcapd spends storing a capture replayed at a given rate: the peer's figure
# beside bench/cpu.sh's for `serve`, from the same capture and sender.
#
# Usage: bench/cpu-nfcapd.sh CAPTURE SPEED
#   CAPTURE  a capture of export datagrams (see bench/cpu.sh)
#   SPEED    replay speed relative to the capture's 1M flows/s timestamps
# Environment: NICE=-10 runs the sender at that nice value, as bench/cpu.sh does.
# nfcapd runs as bench/ingest.py starts it (LZ4 files, a 288 MiB socket buffer). Prints the
# sender's CPU, nfcapd's CPU seconds (all threads) and the flows it stored.
set -euo pipefail
CAP=$1 SPEED=$2
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/flowsight
command -v nfcapd >/dev/null || { echo "nfcapd missing: apt-get install -y nfdump" >&2; exit 1; }
PORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DATA=$(mktemp -d)
# As bench/ingest.py: nfcapd's -B is capped at net.core.rmem_max, so raise it for the run
# (root) and put it back after.
OLD_RMEM=$(cat /proc/sys/net/core/rmem_max)
trap 'rm -rf "$DATA"; echo "$OLD_RMEM" > /proc/sys/net/core/rmem_max 2>/dev/null || true' EXIT
if [ "$OLD_RMEM" -lt 301989888 ] && ! echo 301989888 > /proc/sys/net/core/rmem_max 2>/dev/null; then
  echo "warning: cannot raise net.core.rmem_max to 288 MiB (run as root): nfcapd gets a $OLD_RMEM-byte buffer" >&2
fi
nfcapd -w "$DATA" -p "$PORT" -b 127.0.0.1 -B 301989888 -y >/dev/null 2>&1 &
PID=$!
sleep 1
nice -n "${NICE:-0}" "$BIN" replay "$CAP" --target "127.0.0.1:$PORT" --speed "$SPEED" --summary-json 2>/dev/null |
  python3 -c "import json, sys; d = json.load(sys.stdin); print(f\"sender: {d['flows']} flows at {d['flows_per_s']:.0f}/s, {d['send_cpu_s']:.2f} CPU s sending\")"
sleep 2
python3 - "$PID" <<'PY'
import os, sys
pid, tick = sys.argv[1], os.sysconf("SC_CLK_TCK")
cpu = 0.0
for t in os.listdir(f"/proc/{pid}/task"):
    st = open(f"/proc/{pid}/task/{t}/stat").read()
    f = st[st.rindex(")") + 2:].split()
    cpu += (int(f[11]) + int(f[12])) / tick
print(f"nfcapd={cpu:.2f}")
PY
kill -TERM "$PID"
wait "$PID" 2>/dev/null || true
nfdump -R "$DATA" -I | grep -E '^Flows:' | head -1
