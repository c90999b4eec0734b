#!/usr/bin/env python3
"""Tiny stdlib pcap helpers used by regen.sh (no decoding of flow protocols).

  pcap_replay.py IFACE FILE.pcap [--speed N]
      Send every Ethernet frame of a classic pcap out of IFACE with an
      AF_PACKET raw socket (root only), keeping inter-packet gaps divided by
      N (default 20; 0 = as fast as possible). Used to feed fprobe, which can
      only capture live, from one end of a veth pair.

  pcap_replay.py udp-payloads FILE.pcap HOST:PORT [--dport P]
      Re-send the UDP payloads of a classic pcap (optionally only those to
      destination port P) as UDP datagrams to HOST:PORT, paced. Used to feed
      the reference collector (nfcapd/sfcapd) with exactly what was captured.

  pcap_replay.py tcp-ipfix FILE.pcap HOST:PORT --dport P
      Reassemble the client->server TCP stream to port P (in sequence order),
      cut it into IPFIX messages by the 16-bit length in each message header,
      and send each message as one UDP datagram to HOST:PORT (nfcapd has no
      TCP listener).
"""
import socket
import struct
import sys
import time


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        e = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        e = ">"
    else:
        sys.exit("%s: not a classic pcap file (pcapng? write it with -F pcap)" % path)
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(e + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        yield linktype, sec + frac / (1e9 if nano else 1e6), data[off:off + incl]
        off += incl


def l3(linktype, frame):
    """Return (ethertype, l3 bytes) for Ethernet (1), raw (101) or Linux SLL (113) frames."""
    if linktype == 1:
        et, off = struct.unpack("!H", frame[12:14])[0], 14
        while et in (0x8100, 0x88A8):
            et, off = struct.unpack("!H", frame[off + 2:off + 4])[0], off + 4
        return et, frame[off:]
    if linktype == 113:
        return struct.unpack("!H", frame[14:16])[0], frame[16:]
    if linktype == 101:
        return (0x0800 if frame[0] >> 4 == 4 else 0x86DD), frame
    sys.exit("unsupported linktype %d" % linktype)


def transport(linktype, frame):
    """Return (proto, sport, dport, l4 header+payload) or None."""
    et, p = l3(linktype, frame)
    if et == 0x0800:
        ihl = (p[0] & 15) * 4
        tot = struct.unpack("!H", p[2:4])[0]
        proto, body = p[9], p[ihl:tot]
    elif et == 0x86DD:
        plen = struct.unpack("!H", p[4:6])[0]
        proto, body = p[6], p[40:40 + plen]
    else:
        return None
    if proto not in (6, 17) or len(body) < 8:
        return None
    sport, dport = struct.unpack("!HH", body[:4])
    return proto, sport, dport, body


def hostport(s):
    h, p = s.rsplit(":", 1)
    return h.strip("[]"), int(p)


def opt(args, name, default=None, conv=int):
    if name in args:
        i = args.index(name)
        v = args[i + 1]
        del args[i:i + 2]
        return conv(v)
    return default


def cmd_iface(args):
    speed = opt(args, "--speed", 20.0, float)
    iface, path = args
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    first = None
    start = time.monotonic()
    n = 0
    for lt, ts, frame in read_pcap(path):
        if lt != 1:
            sys.exit("need an Ethernet pcap")
        if first is None:
            first = ts
        if speed > 0:
            due = start + (ts - first) / speed
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
        s.send(frame)
        n += 1
    print("replayed %d frames on %s" % (n, iface))


def cmd_udp(args):
    dport = opt(args, "--dport")
    path, dst = args
    dst = hostport(dst)
    s = socket.socket(socket.AF_INET6 if ":" in dst[0] else socket.AF_INET, socket.SOCK_DGRAM)
    n = 0
    for lt, _ts, frame in read_pcap(path):
        t = transport(lt, frame)
        if not t or t[0] != 17 or (dport is not None and t[2] != dport):
            continue
        ulen = struct.unpack("!H", t[3][4:6])[0]
        s.sendto(t[3][8:ulen], dst)
        n += 1
        time.sleep(0.005)
    print("sent %d UDP payloads to %s:%d" % (n, *dst))


def cmd_tcp_ipfix(args):
    dport = opt(args, "--dport")
    path, dst = args
    dst = hostport(dst)
    segs = {}
    for lt, _ts, frame in read_pcap(path):
        t = transport(lt, frame)
        if not t or t[0] != 6 or t[2] != dport:
            continue
        body = t[3]
        seq = struct.unpack("!I", body[4:8])[0]
        hl = (body[12] >> 4) * 4
        if len(body) > hl:
            segs.setdefault(seq, body[hl:])
    stream = b""
    expect = None
    for seq in sorted(segs):  # one short connection: no sequence wrap handling needed
        data = segs[seq]
        if expect is not None and seq < expect:  # retransmission overlap
            data = data[expect - seq:]
        stream += data
        expect = seq + len(segs[seq])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    off = n = 0
    while off + 16 <= len(stream):
        ver, ln = struct.unpack("!HH", stream[off:off + 4])
        if ver != 10 or ln < 16:
            sys.exit("stream out of sync at offset %d (version %d)" % (off, ver))
        s.sendto(stream[off:off + ln], dst)
        off += ln
        n += 1
        time.sleep(0.005)
    print("sent %d IPFIX messages (%d stream bytes, %d left over) to %s:%d"
          % (n, len(stream), len(stream) - off, *dst))


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    if a[0] == "udp-payloads":
        cmd_udp(a[1:])
    elif a[0] == "tcp-ipfix":
        cmd_tcp_ipfix(a[1:])
    else:
        cmd_iface(a)


if __name__ == "__main__":
    main()
