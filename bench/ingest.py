#!/usr/bin/env python3
"""Highest zero-loss ingest rate of `flowsight serve` and of nfcapd, side by side.

`flowsight generate` writes DURATION seconds of NetFlow v9 or IPFIX traffic (deterministic
seed, timestamps at 1M flows/s) to a capture once; for each rate, `flowsight replay` sends it
at that rate (a lean sender: it only paces and hands runs of equal-size datagrams to the
kernel as UDP GSO sends, so it takes little of the CPU the collectors need; the collectors
receive the same datagrams either way) to one collector at a time; the collector is then stopped
(SIGTERM flushes both) and what it stored is compared with the generator's ground truth:
flowsight through `flowsight query`, nfcapd (LZ4 files, -y) through `nfdump -I`. Also reports
serve's peak RSS (VmHWM), bytes per stored flow and the sender's CPU.

Buffers: serve runs with its defaults, a 32 MiB socket buffer (SO_RCVBUFFORCE) and a 256 MiB
receive queue. nfcapd gets `-B` of the same total, 288 MiB (--nfcapd-buffer), so both have the
same memory to ride out a stall; nfcapd asks with SO_RCVBUF, which the kernel caps at
net.core.rmem_max, so the script raises that sysctl for the run (and puts it back), as an
operator running nfcapd would. Buffers hide a deficit only up to their size: 288 MiB holds
about 2 million flows, so at 1.5 M flows/s and 10 s a run, zero loss means a collector kept at
least ~85% of the pace throughout. The rate counted as zero-loss is the rate the sender achieved,
which falls below the offered one when the sender runs short of CPU.
With --sender-nice -10 the sender runs ahead of any collector thread (for both collectors),
so the offered rate is the one sent, as if the sender ran on another machine: the collector
then gets the CPU that is left, and keeps up or loses.

With --enrich-config FILE (a flowsight.toml with an [enrich] section), a third collector,
`flowsight+enrich`, runs serve with that configuration, so the cost of enrichment shows as
the difference in zero-loss rate in the same run. --collectors picks which ones run.

Usage: bench/ingest.py [--format v9|ipfix] [--duration 5] [--rates 250000,500000,...]
                       [--enrich-config bench/enrich.toml] [--collectors flowsight,flowsight+enrich,nfcapd]
                       [--nfcapd-buffer 288] [--sender-nice -10] [--ipv6-share 0]
                       [--ipfix-time ms|ns] [--keep-captures]
Needs the release binary (cargo build --release) and nfdump (apt-get install -y nfdump).
"""
import argparse, json, os, shutil, signal, socket, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "flowsight")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


CAPTURE = {}
# Captures this invocation generated (2 - 3 GB each at these rates): removed at the end
# unless --keep-captures, so a sweep does not fill the disk. Existing ones are reused.
MADE = []
NFCAPD_BUFFER = 288 << 20
# `nice` value the sender runs at (--sender-nice); 0 leaves it as any other process.
SENDER_NICE = 0
# --ipv6-share passed to the generator (None: its default).
IPV6_SHARE = None
# --ipfix-time passed to the generator for IPFIX (its default: ms).
IPFIX_TIME = "ms"
RMEM_MAX = "/proc/sys/net/core/rmem_max"


def raise_rmem_max(n):
    """Lets an SO_RCVBUF request of n bytes through; returns the old value to restore."""
    old = int(open(RMEM_MAX).read())
    if old >= n:
        return None
    try:
        with open(RMEM_MAX, "w") as f:
            f.write(str(n))
        return old
    except OSError as e:
        print(f"warning: cannot raise {RMEM_MAX} to {n} ({e}); nfcapd gets a {old}-byte socket "
              f"buffer: run as root or `sysctl -w net.core.rmem_max={n}`", file=sys.stderr)
        return None


def capture(fmt, duration):
    """A capture of `duration` s of traffic at 1M flows/s (virtual time), made once."""
    key = (fmt, duration)
    if key not in CAPTURE:
        # The generator's default is a dual-stack network (20% IPv6); --ipv6-share 0 is an
        # IPv4-only exporter, whose full datagrams all have one size.
        share = "" if IPV6_SHARE is None else f"-v6share{IPV6_SHARE:g}"
        # IPFIX captures carry their time unit in the name (before session 29 the
        # generator sent ns, and such a capture must not be taken for an ms one).
        unit = f"-{IPFIX_TIME}" if fmt == "ipfix" else ""
        path = os.path.join(tempfile.gettempdir(), f"ingest-{fmt}{unit}{share}-{duration}.pcap")
        if not os.path.exists(path):
            MADE.append(path)
            extra = [] if IPV6_SHARE is None else ["--ipv6-share", str(IPV6_SHARE)]
            if fmt == "ipfix":
                extra += ["--ipfix-time", IPFIX_TIME]
            subprocess.run([BIN, "generate", "--out", path, "--format", fmt, "--rate", "1000000",
                            "--flows", str(duration * 1_000_000), "--seed", "7", *extra],
                           check=True, capture_output=True)
        CAPTURE[key] = path
    return CAPTURE[key]


def generate(port, fmt, rate, duration):
    cap = capture(fmt, duration * rate // 1_000_000 or 1)
    nice = ["nice", "-n", str(SENDER_NICE)] if SENDER_NICE else []
    out = subprocess.run([*nice, BIN, "replay", cap, "--target", f"127.0.0.1:{port}",
                          "--speed", str(rate / 1_000_000), "--summary-json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def du(path):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(d, f))
    return total


def run_flowsight(fmt, rate, duration, work, config=None):
    data = os.path.join(work, "fs")
    port = free_port()
    extra = ["--config", config] if config else []
    p = subprocess.Popen([BIN, "serve", "--data", data, "--listen", f"netflow://127.0.0.1:{port}",
                          "--http", "127.0.0.1:0"] + extra, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "RUST_LOG": "warn"})
    while True:
        line = p.stderr.readline()
        if not line:
            raise SystemExit("serve did not start")
        if line.startswith("flowsight: storing flows"):
            break
    truth = generate(port, fmt, rate, duration)
    time.sleep(1.0)
    hwm = 0
    with open(f"/proc/{p.pid}/status") as f:
        for l in f:
            if l.startswith("VmHWM:"):
                hwm = int(l.split()[1]) * 1024
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    out = subprocess.run([BIN, "query", "--data", data, "-s", "proto", "-o", "json"],
                         check=True, capture_output=True, text=True).stdout
    stored = json.loads(out)["totals"]["flows"]
    size = du(os.path.join(data, "flows"))
    return truth, stored, hwm, size, data


def run_nfcapd(fmt, rate, duration, work):
    d = os.path.join(work, "nfcapd")
    os.makedirs(d, exist_ok=True)
    port = free_port()
    p = subprocess.Popen(["nfcapd", "-b", "127.0.0.1", "-p", str(port), "-B", str(NFCAPD_BUFFER), "-y", "-w", d],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    truth = generate(port, fmt, rate, duration)
    time.sleep(1.0)
    hwm = 0
    with open(f"/proc/{p.pid}/status") as f:
        for l in f:
            if l.startswith("VmHWM:"):
                hwm = int(l.split()[1]) * 1024
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)
    out = subprocess.run(["nfdump", "-R", d, "-I"], check=True, capture_output=True, text=True).stdout
    stored = int([l for l in out.splitlines() if l.startswith("Flows:")][0].split(":")[1])
    return truth, stored, hwm, du(d), d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--format", default="v9")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rates", default="250000,500000,750000,1000000,1250000,1500000,2000000")
    ap.add_argument("--enrich-config", default=None)
    ap.add_argument("--collectors", default=None)
    ap.add_argument("--nfcapd-buffer", type=int, default=288, help="nfcapd -B, MiB")
    ap.add_argument("--sender-nice", type=int, default=0,
                    help="run the sender at this nice value (e.g. -10, as root) for every "
                         "collector: it then gets the CPU the offered rate needs first, "
                         "as if it ran on another machine, and the collector what is left")
    ap.add_argument("--ipv6-share", type=float, default=None,
                    help="share of IPv6 conversations in the generated traffic (generator "
                         "default 0.2); 0: an IPv4-only exporter, whose datagrams all have "
                         "one size, so the sender's GSO sends carry long runs")
    ap.add_argument("--ipfix-time", choices=["ms", "ns"], default="ms",
                    help="unit of the generated IPFIX flow times (generator default ms, as "
                         "exporters keep them; ns: flowStart/EndNanoseconds)")
    ap.add_argument("--keep-captures", action="store_true",
                    help="keep the captures generated (TMPDIR/ingest-FORMAT[-UNIT][-v6shareF]-N.pcap) for the next run")
    a = ap.parse_args()
    global NFCAPD_BUFFER, SENDER_NICE, IPV6_SHARE, IPFIX_TIME
    IPFIX_TIME = a.ipfix_time
    NFCAPD_BUFFER = a.nfcapd_buffer << 20
    SENDER_NICE = a.sender_nice
    IPV6_SHARE = a.ipv6_share
    old_rmem = raise_rmem_max(NFCAPD_BUFFER) if "nfcapd" in (a.collectors or "nfcapd") else None
    try:
        run(a)
    finally:
        if not a.keep_captures:
            for path in MADE:
                if os.path.exists(path):
                    os.remove(path)
        if old_rmem is not None:
            with open(RMEM_MAX, "w") as f:
                f.write(str(old_rmem))


def run(a):
    names = (a.collectors.split(",") if a.collectors else
             ["flowsight"] + (["flowsight+enrich"] if a.enrich_config else []) + ["nfcapd"])
    fns = {"flowsight": run_flowsight, "nfcapd": run_nfcapd,
           "flowsight+enrich": lambda f, r, d, w: run_flowsight(f, r, d, w, a.enrich_config)}
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: run cargo build --release")
    rates = [int(r) for r in a.rates.split(",")]
    best = {n: 0 for n in names}
    share = "generator default" if a.ipv6_share is None else f"{a.ipv6_share:g}"
    unit = f", times in {a.ipfix_time}" if a.format == "ipfix" else ""
    print(f"format {a.format}{unit}, {a.duration} s per rate, IPv6 share {share}")
    print("| collector | rate offered | flows sent | flows stored | lost | peak RSS | bytes/flow | sender CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for rate in rates:
        for name in names:
            fn = fns[name]
            work = tempfile.mkdtemp(prefix=f"ingest-{name}-")
            try:
                truth, stored, hwm, size, _ = fn(a.format, rate, a.duration, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
                # The next run starts on a quiet machine: the kernel's writeback of this
                # run's files (about 1 GB at these rates) otherwise takes CPU from it.
                os.sync()
                time.sleep(2)
            sent = truth["flows"]
            lost = sent - stored
            achieved = truth.get("flows_per_s", 0)
            if lost == 0:
                # The rate the stream really arrived at: a sender short of CPU falls behind
                # the offered rate, and the collector did not see the offered one.
                best[name] = max(best[name], min(rate, int(achieved)))
            print(f"| {name} | {rate:,} (sent at {achieved:,.0f}/s) | {sent:,} | {stored:,} | {lost:,} | "
                  f"{hwm / 2**20:.0f} MiB | {size / max(stored, 1):.1f} | {truth.get('send_cpu_s', 0):.2f} s |",
                  flush=True)
    print()
    print("highest zero-loss rate: " + ", ".join(f"{n} {best[n]:,} flows/s" for n in names))


if __name__ == "__main__":
    main()
