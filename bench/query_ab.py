#!/usr/bin/env python3
"""Two flowsight builds, each on a store it wrote, against nfdump, in turns.

For each of bench/query.py's queries: RUNS rounds of (build A on store A, nfdump on store
A's nfcapd files, build B on store B, nfdump on store B's files); prints the medians and
the ratios. The stores are bench/query.py --keep directories (fs/ and nfcapd/ inside).

Usage: bench/query_ab.py A_BINARY A_KEEP_DIR B_BINARY B_KEEP_DIR [RUNS]
"""
import statistics, subprocess, sys, time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from query import QUERIES  # noqa: E402


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def main():
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    sides = {"A": (sys.argv[1], sys.argv[2]), "B": (sys.argv[3], sys.argv[4])}
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 15
    print("| query | A s | B s | nfdump s (A / B files) | A ratio | B ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, args, flt in QUERIES:
        extra = [flt] if flt else []
        res = {k: [] for k in ("A", "B", "nf-A", "nf-B")}
        for _ in range(runs):
            for k, (binary, keep) in sides.items():
                res[k].append(timed([binary, "query", "--data", f"{keep}/fs", *args, *extra]))
                res["nf-" + k].append(timed(["nfdump", "-R", f"{keep}/nfcapd", *args, *extra]))
        m = {k: statistics.median(v) for k, v in res.items()}
        print(f"| `{name}` | {m['A']:.3f} | {m['B']:.3f} | {m['nf-A']:.3f} / {m['nf-B']:.3f} "
              f"| {m['nf-A'] / m['A']:.1f}x | {m['nf-B'] / m['B']:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
