#!/usr/bin/env python3
"""Query speed of `flowsight query` against `nfdump` over the same flows.

A generated NetFlow v9 capture of 10M flows is replayed REPEAT times into both `flowsight
serve` (embedded store) and `nfcapd -y` (LZ4), at a rate both take without loss (checked);
then each query runs RUNS times on each side, the two sides taking turns (page cache warm,
like a dashboard refresh), and the median wall time is reported, with the ratio nfdump / flowsight. The two answers are
checked to be equal first.

Usage: bench/query.py [--flows 10000000] [--repeat 1] [--runs 3] [--rate 700000]
Needs the release binary (cargo build --release) and nfdump.
"""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "flowsight")

QUERIES = [
    ("-s srcip/bytes -n 10", ["-s", "srcip/bytes", "-n", "10"], None),
    ("-s dstport/flows -n 10 'proto tcp and dst net 10.0.0.0/8'",
     ["-s", "dstport/flows", "-n", "10"], "proto tcp and dst net 10.0.0.0/8"),
    ("-s proto/packets -n 10 'bytes > 10000'", ["-s", "proto/packets", "-n", "10"], "bytes > 10000"),
]


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def rows(csv):
    out = []
    for l in csv.splitlines()[1:]:
        c = l.split(",")
        if len(c) >= 10 and c[0] != "ts":
            out.append((c[4].strip(), int(c[5]), int(c[7]), int(c[9])))
    return out


def timed(cmd):
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=10_000_000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=700_000)
    ap.add_argument("--keep", help="reuse/keep the stores in this directory")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="query-bench-")
    fs_data, nf_dir = os.path.join(work, "fs"), os.path.join(work, "nfcapd")
    total = a.flows * a.repeat
    if not os.path.exists(os.path.join(work, "done")):
        os.makedirs(nf_dir, exist_ok=True)
        cap = os.path.join(work, "traffic.pcap")
        subprocess.run([BIN, "generate", "--out", cap, "--format", "v9", "--rate", "1000000",
                        "--flows", str(a.flows), "--seed", "11"], check=True, capture_output=True)
        fp, np_ = free_port(), free_port()
        serve = subprocess.Popen([BIN, "serve", "--data", fs_data, "--listen", f"netflow://127.0.0.1:{fp}",
                                  "--http", "127.0.0.1:0"], stderr=subprocess.DEVNULL,
                                 env={**os.environ, "RUST_LOG": "warn"})
        nfcapd = subprocess.Popen(["nfcapd", "-b", "127.0.0.1", "-p", str(np_), "-B", str(32 << 20), "-y",
                                   "-w", nf_dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        for i in range(a.repeat):
            for port in (fp, np_):
                subprocess.run([BIN, "replay", cap, "--target", f"127.0.0.1:{port}",
                                "--speed", str(a.rate / 1_000_000)], check=True, capture_output=True)
                print(f"replayed {i + 1}/{a.repeat} to port {port}", flush=True)
        time.sleep(2)
        for p in (serve, nfcapd):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=120)
        os.remove(cap)
        open(os.path.join(work, "done"), "w").close()
    fs_tot = json.loads(subprocess.run([BIN, "query", "--data", fs_data, "-s", "proto", "-o", "json"],
                                       check=True, capture_output=True, text=True).stdout)["totals"]["flows"]
    nf_out = subprocess.run(["nfdump", "-R", nf_dir, "-I"], check=True, capture_output=True, text=True).stdout
    nf_tot = int([l for l in nf_out.splitlines() if l.startswith("Flows:")][0].split(":")[1])
    print(f"stored flows: flowsight {fs_tot:,}, nfcapd {nf_tot:,} (sent {total:,})")
    if fs_tot != total or nf_tot != total:
        print("WARNING: a collector lost flows; the comparison is over different data")
    print(f"\n| query ({total / 1e6:.0f}M flows) | flowsight median s | nfdump median s | nfdump / flowsight |")
    print("| --- | --- | --- | --- |")
    for name, args, flt in QUERIES:
        f_cmd = [BIN, "query", "--data", fs_data, *args, "-o", "csv"] + ([flt] if flt else [])
        n_cmd = ["nfdump", "-R", nf_dir, *args, "-o", "csv", "-q"] + ([flt] if flt else [])
        _, fo = timed(f_cmd)
        _, no = timed(n_cmd)
        fr, nr = rows(fo), rows(no)
        same = sorted(r[1:] for r in fr) == sorted(r[1:] for r in nr)
        # Interleaved, so that a slow spell of the machine falls on both sides alike.
        fts, nts = [], []
        for _ in range(a.runs):
            fts.append(timed(f_cmd)[0])
            nts.append(timed(n_cmd)[0])
        ft, nt = statistics.median(fts), statistics.median(nts)
        print(f"| `{name}` | {ft:.3f} | {nt:.3f} | {nt / ft:.1f}x{'' if same else ' (ANSWERS DIFFER)'} |", flush=True)
    du = lambda p: sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(p) for f in fs)
    print(f"\ndisk: flowsight {du(os.path.join(fs_data, 'flows')) / max(fs_tot, 1):.1f} bytes/flow, "
          f"nfcapd (lz4) {du(nf_dir) / max(nf_tot, 1):.1f} bytes/flow")
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
