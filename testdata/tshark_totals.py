#!/usr/bin/env python3
"""Compute NAME.totals.json for a golden capture with independent decoders.

The counts come from tshark's own NetFlow/IPFIX ("cflow") and sFlow
dissectors (tshark -T pdml, parsed with xml.etree) and, when --nfdump-file is
given, from nfdump's summary of the same export data collected by nfcapd or
sfcapd (`nfdump -r FILE -I`). No flowsight code is involved.

usage:
  tshark_totals.py CAPTURE.pcap --format netflow_v5|netflow_v1|netflow_v7|netflow_v9|ipfix|sflow_v5
                   --transport udp|tcp --port PORT --tool "COMMAND"
                   [--nfdump-file NFCAPD_FILE] -o OUT.json
  tshark_totals.py --dst-port-of CAPTURE.pcap     (print the UDP/TCP destination port of packet 1)
"""
import argparse
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

REC_RE = re.compile(r"^(Flow \d+|pdu \d+/\d+)$")


def tshark_pdml(pcap, transport, port, proto):
    cmd = ["tshark", "-n", "-r", pcap, "-d", "%s.port==%d,%s" % (transport, port, proto), "-T", "pdml"]
    if transport == "tcp":
        cmd[1:1] = ["-o", "tcp.desegment_tcp_streams:TRUE"]
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    return ET.fromstring(out)


def fields(elem):
    """All descendant <field> elements (depth first)."""
    for f in elem.iter("field"):
        yield f


def num(f):
    return int(f.get("show"), 0)


def cflow_totals(root):
    t = {"datagrams": 0, "flows": 0, "packets": 0, "bytes": 0, "flows_ipv4": 0, "flows_ipv6": 0,
         "templates": 0, "options_templates": 0, "options_records": 0, "versions": set(),
         "malformed": 0, "sampling_rate": set()}
    interval = space = None
    for pkt in root.iter("packet"):
        for p in pkt.iter("proto"):
            if p.get("name") == "_ws.malformed":
                t["malformed"] += 1
            if p.get("name") != "cflow":
                continue
            t["datagrams"] += 1
            for f in fields(p):
                name, show = f.get("name"), f.get("show") or ""
                if name == "cflow.version":
                    t["versions"].add(num(f))
                elif name == "cflow.samplerate":  # v5 header: 14-bit interval, 0 = unsampled
                    t["sampling_rate"].add(num(f) or 1)
                elif name in ("cflow.sampling_interval", "cflow.sampler_random_interval"):
                    t["sampling_rate"].add(num(f) or 1)
                elif name == "cflow.sampling_packet_interval":
                    interval = num(f)
                elif name == "cflow.sampling_packet_space" and interval:
                    t["sampling_rate"].add((interval + num(f)) // interval)
                elif name == "" and show.startswith("Template (Id"):
                    t["templates"] += 1
                elif name == "" and show.startswith("Options Template (Id"):
                    t["options_templates"] += 1
                elif name == "" and REC_RE.match(show):
                    pk = [num(x) for x in f.iter("field") if x.get("name") == "cflow.packets"]
                    oc = [num(x) for x in f.iter("field") if x.get("name") == "cflow.octets"]
                    names = {x.get("name") for x in f.iter("field")}
                    if not pk and not oc:
                        t["options_records"] += 1
                        continue
                    t["flows"] += 1
                    t["packets"] += sum(pk)
                    t["bytes"] += sum(oc)
                    if any("v6" in n and "addr" in n for n in names if n):
                        t["flows_ipv6"] += 1
                    else:
                        t["flows_ipv4"] += 1
    t["versions"] = sorted(t["versions"])
    rates = sorted(t.pop("sampling_rate"))
    # not reported by the exporter: all our NetFlow/IPFIX configurations are unsampled
    t["sampling_rate"] = (rates[0] if len(rates) == 1 else rates) if rates else 1
    return t


def sflow_totals(root):
    t = {"datagrams": 0, "flows": 0, "packets": 0, "bytes": 0, "counter_samples": 0,
         "scaled_packets": 0, "scaled_bytes": 0, "sampling_rate": set(), "versions": set(),
         "malformed": 0}
    for pkt in root.iter("packet"):
        for p in pkt.iter("proto"):
            if p.get("name") == "_ws.malformed":
                t["malformed"] += 1
            if p.get("name") != "sflow":
                continue
            t["datagrams"] += 1
            rate = None
            for f in fields(p):
                name = f.get("name")
                if name == "sflow_245.version":
                    t["versions"].add(num(f))
                elif name == "sflow_245.sampletype":
                    st = num(f) & 0xFFF
                    if st in (1, 3):
                        t["flows"] += 1
                        t["packets"] += 1
                    elif st in (2, 4):
                        t["counter_samples"] += 1
                elif name == "sflow.flow_sample.sampling_rate":
                    rate = num(f)
                    t["sampling_rate"].add(rate)
                    t["scaled_packets"] += rate
                elif name == "sflow_245.header.frame_length":
                    t["bytes"] += num(f)
                    t["scaled_bytes"] += num(f) * (rate or 1)
    t["versions"] = sorted(t["versions"])
    rates = sorted(t.pop("sampling_rate"))
    t["sampling_rate"] = rates[0] if len(rates) == 1 else rates
    return t


def nfdump_summary(path):
    out = subprocess.run(["nfdump", "-r", path, "-I"], check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout
    vals = dict(re.findall(r"^(\w+): (\d+)$", out, re.M))
    return {"flows": int(vals["Flows"]), "packets": int(vals["Packets"]), "bytes": int(vals["Bytes"]),
            "tool": "nfcapd/sfcapd fed with the captured export payloads; nfdump -r FILE -I"}


def dst_port_of(pcap):
    out = subprocess.run(["tshark", "-n", "-r", pcap, "-c", "1", "-T", "fields", "-e", "udp.dstport",
                          "-e", "tcp.dstport"], check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    return next(x for x in out.split() if x)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--dst-port-of":
        print(dst_port_of(sys.argv[2]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--format", required=True,
                    choices=["netflow_v1", "netflow_v5", "netflow_v7", "netflow_v9", "ipfix", "sflow_v5"])
    ap.add_argument("--transport", choices=["udp", "tcp"], default="udp")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--nfdump-file")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()

    sflow = a.format == "sflow_v5"
    root = tshark_pdml(a.pcap, a.transport, a.port, "sflow" if sflow else "cflow")
    t = sflow_totals(root) if sflow else cflow_totals(root)
    if t["malformed"]:
        print("WARNING: tshark reports %d malformed packets in %s" % (t["malformed"], a.pcap))
    if t["datagrams"] == 0:
        sys.exit("tshark decoded no %s in %s" % ("sFlow" if sflow else "NetFlow/IPFIX", a.pcap))

    res = {"format": a.format, "transport": a.transport, "export_port": a.port,
           "datagrams": t.pop("datagrams"), "flows": t.pop("flows"),
           "packets": t.pop("packets"), "bytes": t.pop("bytes")}
    res["sampling_rate"] = t.pop("sampling_rate")
    res.update(t)
    res["tool"] = a.tool
    ver = subprocess.run(["tshark", "--version"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True).stdout
    res["decoder"] = "tshark %s (-d %s.port==%d,%s -T pdml)" % (
        re.search(r"\d+\.\d+\.\d+", ver).group(0),
        a.transport, a.port, "sflow" if sflow else "cflow")
    if a.nfdump_file:
        res["nfdump"] = nfdump_summary(a.nfdump_file)
        n = res["nfdump"]
        if (n["flows"], n["packets"], n["bytes"]) != (res["flows"], res["packets"], res["bytes"]):
            print("NOTE: nfdump (%d flows, %d packets, %d bytes) != tshark (%d, %d, %d)"
                  % (n["flows"], n["packets"], n["bytes"], res["flows"], res["packets"], res["bytes"]))
    with open(a.output, "w") as f:
        json.dump(res, f, indent=2)
        f.write("\n")
    print("%s: %d datagrams, %d flows, %d packets, %d bytes%s" % (
        a.output.rsplit("/", 1)[-1], res["datagrams"], res["flows"], res["packets"], res["bytes"],
        "" if "nfdump" not in res else " | nfdump: %d flows, %d packets, %d bytes"
        % (res["nfdump"]["flows"], res["nfdump"]["packets"], res["nfdump"]["bytes"])))


if __name__ == "__main__":
    main()
