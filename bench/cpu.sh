#!/usr/bin/env bash
# CPU seconds per thread of `flowsight serve` while it ingests a capture at a given rate:
# the cost of a change per flow, without the noise of a loss threshold.
#
# Usage: bench/cpu.sh CAPTURE SPEED [CONFIG]
#   CAPTURE  a capture of export datagrams (bench/ingest.py --keep-captures leaves
#            TMPDIR/ingest-v9[-v6share0]-N.pcap, or: flowsight generate --out c.pcap
#            --format v9 --rate 1000000 --flows 18000000 --seed 7 --ipv6-share 0)
#   SPEED    replay speed relative to the capture's 1M flows/s timestamps (0.5 = 500k/s)
#   CONFIG   a flowsight.toml (e.g. bench/enrich.toml, or one holding `udp_gro = true`)
# Environment:
#   NICE=-10   run the sender at this nice value (as root), ahead of serve's threads, as
#              bench/ingest.py --sender-nice does
#   PERF=FILE  record serve with `perf record -g` into FILE while the capture plays; then
#              perf report -i FILE --no-children --sort comm,symbol
# Prints the sender's CPU, then serve's CPU seconds and minor page faults (thousands) by
# thread name and the total, then the flows stored and kernel drops.
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
if [ -n "${PERF:-}" ]; then
  perf record -e cpu-clock -F 2000 -g -p "$PID" -o "$PERF" 2>/dev/null &
  PERF_PID=$!
  sleep 0.5
fi
# The sender's CPU in its send loop (reading and counting the capture comes before it).
nice -n "${NICE:-0}" "$BIN" replay "$CAP" --target "127.0.0.1:$UDP" --speed "$SPEED" --summary-json 2>/dev/null |
  python3 -c "import json, sys; d = json.load(sys.stdin); print(f\"sender: {d['flows']} flows at {d['flows_per_s']:.0f}/s, {d['send_cpu_s']:.2f} CPU s sending\")"
sleep 2
if [ -n "${PERF:-}" ]; then
  kill -INT "$PERF_PID"
  wait "$PERF_PID" || true
fi
python3 - "$PID" <<'PY'
import os, sys
pid, tick, tot, flt = sys.argv[1], os.sysconf("SC_CLK_TCK"), {}, {}
for t in os.listdir(f"/proc/{pid}/task"):
    st = open(f"/proc/{pid}/task/{t}/stat").read()
    name = st[st.index("(") + 1:st.rindex(")")].rstrip("0123456789-")
    f = st[st.rindex(")") + 2:].split()
    tot[name] = tot.get(name, 0) + (int(f[11]) + int(f[12])) / tick
    flt[name] = flt.get(name, 0) + int(f[7])
print(" ".join(f"{k}={v:.2f}/{flt[k] // 1000}k" for k, v in sorted(tot.items()) if v >= 0.01),
      f"total={sum(tot.values()):.2f}")
PY
curl -s "127.0.0.1:$HTTP/metrics" | grep -E '^flowsight_(flows|kernel_drops)_total' | tr '\n' ' '
echo
kill "$PID"
wait "$PID" 2>/dev/null || true
