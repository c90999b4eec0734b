#!/usr/bin/env python3
"""How fast the portal's dashboard panels answer over 10M stored flows.

`flowsight serve` (release build, embedded store, enrichment from --config when given)
receives FLOWS generated IPFIX flows at RATE flows/s (no loss, checked), then every panel's
API request - the URLs app.js issues for its overview, top items, geo map, flow explorer and
exporters pages over the default range (the last hour, resolved to Unix seconds as the
portal does) - is timed over HTTP:

- cold: the first request after the flows arrived (nothing cached);
- warm: the median of RUNS more (a dashboard's live refresh: per-file results cached, only
  new files scanned).

Also reports the bytes the portal's first load transfers (index.html and every asset it
loads). Usage: bench/portal.py [--flows 10000000] [--rate 400000] [--runs 5]
[--config bench/enrich.toml] [--keep DIR]. Needs `cargo build --release`.
"""
import argparse, json, os, re, socket, statistics, subprocess, tempfile, time, urllib.parse, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "flowsight")

FLOW_COLUMNS = ("time_flow_start_ns,time_flow_end_ns,src_addr,src_port,dst_addr,dst_port,proto,"
                "bytes,packets,sampler_address,in_if,out_if,tcp_flags,src_country,dst_country")


def panels(since, until):
    """(panel, path): what app.js requests for each page over the last hour (it resolves the
    range to Unix seconds once per load and per refresh, as here)."""
    r = f"since={since}&until={until}"
    return [
        ("overview: traffic over time by protocol (bps)", f"/api/v1/timeseries?dimension=proto&metric=bps&k=8&{r}"),
        ("overview: headlines + top talkers", f"/api/v1/top?dimension=srcip&metric=bytes&limit=5&{r}"),
        ("overview: top listeners", f"/api/v1/top?dimension=dstip&metric=bytes&limit=5&{r}"),
        ("overview: top ports", f"/api/v1/top?dimension=dstport&metric=bytes&limit=5&{r}"),
        ("top: talkers", f"/api/v1/top?dimension=srcip&metric=bytes&limit=25&{r}"),
        ("top: listeners", f"/api/v1/top?dimension=dstip&metric=bytes&limit=25&{r}"),
        ("top: conversations", f"/api/v1/top?dimension=srcip%2Cdstip&metric=bytes&limit=25&{r}"),
        ("top: ports", f"/api/v1/top?dimension=dstport&metric=bytes&limit=25&{r}"),
        ("top: protocols", f"/api/v1/top?dimension=proto&metric=bytes&limit=25&{r}"),
        ("top: source ASes", f"/api/v1/top?dimension=srcas&metric=bytes&limit=25&{r}"),
        ("top: destination ASes", f"/api/v1/top?dimension=dstas&metric=bytes&limit=25&{r}"),
        ("top: source countries", f"/api/v1/top?dimension=srcgeo&metric=bytes&limit=25&{r}"),
        ("top: exporters", f"/api/v1/top?dimension=router&metric=bytes&limit=25&{r}"),
        ("top: input interfaces", f"/api/v1/top?dimension=inif&metric=bytes&limit=25&{r}"),
        ("geo: countries (map and table)", f"/api/v1/top?dimension=srcgeo&metric=bytes&limit=300&{r}"),
        ("flows: first page", f"/api/v1/flows?limit=100&columns={FLOW_COLUMNS}&{r}"),
        ("exporters: list", "/api/v1/exporters"),
        ("exporters: traffic per exporter", f"/api/v1/top?dimension=router&metric=bytes&limit=1000&{r}"),
    ]


def free_port(kind=socket.SOCK_DGRAM):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def get(base, path):
    t = time.perf_counter()
    with urllib.request.urlopen(base + path, timeout=120) as r:
        body = r.read()
    return time.perf_counter() - t, body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flows", type=int, default=10_000_000)
    ap.add_argument("--rate", type=int, default=400_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--config")
    ap.add_argument("--spread", type=int, default=0,
                    help="spread flow start times over this many seconds before now (in 100 "
                         "bursts), so the last-hour range cuts through files as on a collector "
                         "that has run for hours; 0: all flows start now")
    ap.add_argument("--keep")
    ap.add_argument("--settle", type=int, default=5,
                    help="seconds to wait after the last flow is stored before the first request "
                         "(compaction, and the background prewarm, run meanwhile)")
    ap.add_argument("--no-prewarm", action="store_true",
                    help="run serve with prewarm = false: first requests scan raw flows")
    a = ap.parse_args()
    work = a.keep or tempfile.mkdtemp(prefix="portal-bench-")
    os.makedirs(work, exist_ok=True)
    http = free_port(socket.SOCK_STREAM)
    cmd = [BIN, "serve", "--data", os.path.join(work, "data"), "--listen", "netflow://127.0.0.1:0",
           "--http", f"127.0.0.1:{http}"]
    config = a.config
    if a.no_prewarm:
        config = os.path.join(work, "serve.toml")
        base_cfg = open(os.path.join(ROOT, a.config)).read() if a.config else ""
        with open(config, "w") as f:
            f.write("prewarm = false\n" + base_cfg)
    if config:
        cmd += ["--config", config]
    srv = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    port = None
    while port is None:
        line = srv.stderr.readline()
        if not line:
            raise SystemExit("serve exited")
        m = re.search(r"listening on netflow://127\.0\.0\.1:(\d+)", line)
        if m:
            port = int(m.group(1))
    base = f"http://127.0.0.1:{http}"
    # Keep reading serve's log so it never blocks on a full pipe.
    import threading
    threading.Thread(target=lambda: [None for _ in srv.stderr], daemon=True).start()
    try:
        t0 = time.time()
        gen = [BIN, "generate", "--target", f"127.0.0.1:{port}", "--format", "ipfix",
               "--exporters", "4", "--rate", str(a.rate)]
        if a.spread:
            bursts = 100
            start = int(time.time()) - a.spread
            for i in range(bursts):
                n = a.flows // bursts + (a.flows % bursts if i == bursts - 1 else 0)
                subprocess.run(gen + ["--flows", str(n), "--seed", str(5 + i), "--start-time",
                                      str(start + i * a.spread // bursts)],
                               check=True, stderr=subprocess.DEVNULL)
        else:
            subprocess.run(gen + ["--flows", str(a.flows), "--seed", "5"], check=True,
                           stderr=subprocess.DEVNULL)
        # Wait until every flow is queryable.
        while True:
            _, b = get(base, "/api/v1/top?dimension=proto&limit=1&filter=" + urllib.parse.quote("any"))
            n = json.loads(b)["totals"]["flows"]
            if n >= a.flows or time.time() - t0 > 600:
                break
            time.sleep(1)
        if n != a.flows:
            raise SystemExit(f"stored {n} of {a.flows} flows: lower --rate")
        time.sleep(a.settle)  # let compaction (and prewarm) settle, as on a running collector
        now = int(time.time())
        files = sum(len(fs) for _, _, fs in os.walk(os.path.join(work, "data", "flows")))
        print(f"# {a.flows} flows ({'start times spread over %d s' % a.spread if a.spread else 'all starting now'}) "
              f"stored in {work} ({files} files); serve {base}; {a.runs} warm runs per panel")
        print("| panel | request | cold ms | warm ms (median) |")
        print("| --- | --- | --- | --- |")
        worst = 0.0
        for name, path in panels(now - 3600, now + 60):
            cold, _ = get(base, path)
            warm = statistics.median(get(base, path)[0] for _ in range(a.runs))
            worst = max(worst, warm)
            print(f"| {name} | `{path}` | {cold * 1000:.0f} | {warm * 1000:.1f} |")
        print(f"\nslowest warm panel: {worst * 1000:.1f} ms")
        # First load: the page and everything it references.
        _, page = get(base, "/")
        total = len(page)
        for src in re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.decode()):
            total += len(get(base, src)[1])
        print(f"first load (index.html and its assets, uncompressed): {total} bytes")
    finally:
        srv.terminate()
        srv.wait(timeout=60)


if __name__ == "__main__":
    main()
