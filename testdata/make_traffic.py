#!/usr/bin/env python3
"""Write the deterministic input pcap for the golden exporter captures.

Output: testdata/input/traffic.pcap (classic pcap, LINKTYPE_ETHERNET, usec).
Only the standard library is used and the RNG seed is fixed, so the file is
byte-for-byte reproducible.

Mix (see README.md): IPv4 and IPv6 TCP connections (SYN, SYN/ACK, ACK, PSH/ACK
data both ways, FIN/ACK teardown), UDP (DNS 53, NTP 123, high-port to
high-port), ICMP echo, ICMPv6 echo, one 802.1Q VLAN-tagged TCP connection and
one VLAN-tagged UDP exchange, spread over ~60 s of capture time.
"""
import os
import random
import struct
import sys

SEED = 20240601
T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z, fixed capture start
SPAN = 58.0            # seconds over which flows start

rng = random.Random(SEED)


# --------------------------------------------------------------- checksums
def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def ip6(a: str) -> bytes:
    # minimal inet_pton for IPv6 (stdlib socket works too, but keep it pure)
    import ipaddress
    return ipaddress.IPv6Address(a).packed


def is_v6(a: str) -> bool:
    return ":" in a


def mac(i: int) -> bytes:
    return bytes([0x02, 0x00, 0x5E, 0x10, (i >> 8) & 0xFF, i & 0xFF])



# --------------------------------------------------------------- builders
def l4_with_csum(proto, src, dst, l4: bytearray, csum_off: int) -> bytes:
    if is_v6(src):
        pseudo = ip6(src) + ip6(dst) + struct.pack("!IxxxB", len(l4), proto)
    else:
        pseudo = ip4(src) + ip4(dst) + struct.pack("!xBH", proto, len(l4))
    struct.pack_into("!H", l4, csum_off, 0)
    c = csum(pseudo + bytes(l4))
    if proto == 17 and c == 0:
        c = 0xFFFF
    struct.pack_into("!H", l4, csum_off, c)
    return bytes(l4)


def ip_packet(src, dst, proto, l4: bytes, ttl=64, ident=0, tos=0) -> (int, bytes):
    """Return (ethertype, ip packet)."""
    if is_v6(src):
        nh = 58 if proto == 1 else proto
        hdr = struct.pack("!IHBB", (6 << 28) | (tos << 20), len(l4), nh, ttl)
        return 0x86DD, hdr + ip6(src) + ip6(dst) + l4
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(l4), ident,
                                0x4000, ttl, proto, 0, ip4(src), ip4(dst)))
    struct.pack_into("!H", hdr, 10, csum(bytes(hdr)))
    return 0x0800, bytes(hdr) + l4


def ether(src_mac, dst_mac, ethertype, payload, vlan=None) -> bytes:
    if vlan is not None:
        return dst_mac + src_mac + struct.pack("!HHH", 0x8100, vlan, ethertype) + payload
    return dst_mac + src_mac + struct.pack("!H", ethertype) + payload


def payload_bytes(n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


packets = []  # (timestamp, frame)
flow_count = 0  # unidirectional 5-tuples, for information only


class Host:
    def __init__(self, addr, idx):
        self.addr = addr
        self.mac = mac(idx)


_host_idx = [0]


def host(addr):
    _host_idx[0] += 1
    return Host(addr, _host_idx[0])


def emit(t, src: Host, dst: Host, proto, l4, vlan=None, ttl=64, ident=None):
    if ident is None:
        ident = rng.randrange(1, 65535)
    et, pkt = ip_packet(src.addr, dst.addr, proto, l4, ttl=ttl, ident=ident)
    packets.append((t, ether(src.mac, dst.mac, et, pkt, vlan)))


def tcp_seg(src, dst, sport, dport, seq, ack, flags, data=b"", win=64240):
    FL = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10}
    f = 0
    for ch in flags:
        f |= FL[ch]
    opts = b""
    if "S" in flags:
        opts = struct.pack("!BBH", 2, 4, 1460 if not is_v6(src) else 1440) + b"\x01\x03\x03\x07"
    off = (20 + len(opts)) // 4
    seg = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF,
                                ack & 0xFFFFFFFF, off << 4, f, win, 0, 0) + opts + data)
    return l4_with_csum(6, src, dst, seg, 16)


def udp_dgram(src, dst, sport, dport, data):
    d = bytearray(struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data)
    return l4_with_csum(17, src, dst, d, 6)


def icmp_echo(src, dst, typ, ident, seq, data):
    proto = 58 if is_v6(src) else 1
    m = bytearray(struct.pack("!BBHHH", typ, 0, 0, ident, seq) + data)
    if is_v6(src):
        return l4_with_csum(58, src, dst, m, 2)
    struct.pack_into("!H", m, 2, csum(bytes(m)))
    return bytes(m)


# --------------------------------------------------------------- flows
def tcp_conn(t, cli: Host, srv: Host, sport, dport, exchanges, vlan=None, rtt=0.02):
    """A full TCP connection: handshake, request/response exchanges, FIN teardown.

    exchanges: list of (client_bytes, server_bytes). Server responses larger
    than the MSS are split into several segments.
    """
    global flow_count
    flow_count += 2
    mss = 1400 if not is_v6(cli.addr) else 1380
    cs, ss = rng.getrandbits(32), rng.getrandbits(32)
    c, s = cli.addr, srv.addr
    P = lambda *a, **k: emit(*a, vlan=vlan, **k)
    P(t, cli, srv, 6, tcp_seg(c, s, sport, dport, cs, 0, "S"))
    t += rtt / 2
    P(t, srv, cli, 6, tcp_seg(s, c, dport, sport, ss, cs + 1, "SA"), ttl=56)
    t += rtt / 2
    cs += 1
    ss += 1
    P(t, cli, srv, 6, tcp_seg(c, s, sport, dport, cs, ss, "A"))
    for creq, sresp in exchanges:
        t += rng.uniform(0.001, 0.3)
        data = payload_bytes(creq)
        P(t, cli, srv, 6, tcp_seg(c, s, sport, dport, cs, ss, "PA", data))
        cs += creq
        t += rtt / 2
        left = sresp
        n = 0
        while left > 0:
            chunk = min(mss, left)
            left -= chunk
            fl = "PA" if left == 0 else "A"
            P(t, srv, cli, 6, tcp_seg(s, c, dport, sport, ss, cs, fl, payload_bytes(chunk)), ttl=56)
            ss += chunk
            n += 1
            t += 0.0005
            if n % 2 == 0:  # delayed ACK every second segment
                P(t, cli, srv, 6, tcp_seg(c, s, sport, dport, cs, ss, "A"))
        t += rtt / 2
        P(t, cli, srv, 6, tcp_seg(c, s, sport, dport, cs, ss, "A"))
    t += rng.uniform(0.05, 1.0)
    P(t, cli, srv, 6, tcp_seg(c, s, sport, dport, cs, ss, "FA"))
    t += rtt / 2
    P(t, srv, cli, 6, tcp_seg(s, c, dport, sport, ss, cs + 1, "FA"), ttl=56)
    t += rtt / 2
    P(t, cli, srv, 6, tcp_seg(c, s, sport, dport, cs + 1, ss + 1, "A"))
    return t


def udp_exchange(t, cli: Host, srv: Host, sport, dport, pairs, gap=0.05, vlan=None, rtt=0.015):
    global flow_count
    flow_count += 2
    for q, r in pairs:
        emit(t, cli, srv, 17, udp_dgram(cli.addr, srv.addr, sport, dport, payload_bytes(q)), vlan=vlan)
        if r:
            emit(t + rtt, srv, cli, 17, udp_dgram(srv.addr, cli.addr, dport, sport, payload_bytes(r)),
                 vlan=vlan, ttl=57)
        t += gap + rng.uniform(0, gap)
    return t


def udp_oneway(t, src: Host, dst: Host, sport, dport, sizes, gap=0.02):
    global flow_count
    flow_count += 1
    for n in sizes:
        emit(t, src, dst, 17, udp_dgram(src.addr, dst.addr, sport, dport, payload_bytes(n)))
        t += gap
    return t


def ping(t, cli: Host, srv: Host, count, size=56, rtt=0.012):
    global flow_count
    flow_count += 2
    v6 = is_v6(cli.addr)
    req, rep = (128, 129) if v6 else (8, 0)
    ident = rng.randrange(1, 65535)
    for i in range(count):
        data = payload_bytes(size)
        emit(t, cli, srv, 1, icmp_echo(cli.addr, srv.addr, req, ident, i + 1, data))
        emit(t + rtt, srv, cli, 1, icmp_echo(srv.addr, cli.addr, rep, ident, i + 1, data), ttl=117)
        t += 1.0
    return t


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "input", "traffic.pcap")
    if len(sys.argv) > 1:
        out = sys.argv[1]

    lan4 = [host("192.168.1.%d" % i) for i in (10, 11, 12, 23, 42)]
    lan4b = [host("10.0.0.%d" % i) for i in (5, 9)]
    lan6 = [host("fd00:1::%x" % i) for i in (0x10, 0x11)]
    gdns, cf, quad9 = host("8.8.8.8"), host("1.1.1.1"), host("9.9.9.9")
    web4 = [host(a) for a in ("93.184.216.34", "151.101.1.69", "140.82.121.4", "142.250.185.78")]
    ntp = host("162.159.200.1")
    gdns6, cf6 = host("2001:4860:4860::8888"), host("2606:4700:4700::1111")
    web6 = host("2a00:1450:4001:82b::200e")
    vlan_cli, vlan_srv = host("172.16.5.20"), host("172.16.5.1")

    def at():
        return T0 + rng.uniform(0.0, SPAN)

    # IPv4 TCP: 10 connections (20 flows)
    for i in range(10):
        cli = rng.choice(lan4)
        srv = rng.choice(web4 + [cf, gdns])
        dport = rng.choice([443, 443, 80])
        ex = [(rng.randint(80, 700), rng.randint(200, 9000)) for _ in range(rng.randint(1, 3))]
        tcp_conn(at(), cli, srv, rng.randint(40000, 60999), dport, ex)
    # IPv6 TCP: 3 connections (6 flows)
    for srv in (gdns6, cf6, web6):
        tcp_conn(at(), rng.choice(lan6), srv, rng.randint(40000, 60999), 443,
                 [(rng.randint(100, 600), rng.randint(1000, 6000))], rtt=0.03)
    # DNS over UDP v4 and v6 (queries + answers): 8 exchanges (16 flows)
    for srv in (gdns, cf, quad9, gdns, cf):
        udp_exchange(at(), rng.choice(lan4 + lan4b), srv, rng.randint(32768, 60999), 53,
                     [(rng.randint(30, 60), rng.randint(60, 300)) for _ in range(rng.randint(1, 3))])
    for srv in (gdns6, cf6):
        udp_exchange(at(), rng.choice(lan6), srv, rng.randint(32768, 60999), 53,
                     [(rng.randint(30, 60), rng.randint(60, 200))])
    # DNS over TCP (large answer) to 9.9.9.9
    tcp_conn(at(), lan4[0], quad9, 45123, 53, [(45, 2900)])
    # NTP (123 <-> 123), 2 exchanges (4 flows)
    udp_exchange(at(), lan4[1], ntp, 123, 123, [(48, 48)] * 4, gap=2.0)
    udp_exchange(at(), lan4b[0], ntp, 40123, 123, [(48, 48)])
    # random high ports: a QUIC-ish bidirectional stream and a one-way RTP-ish stream
    udp_exchange(at(), lan4[2], web4[3], 51515, 443,
                 [(rng.randint(60, 1250), rng.randint(60, 1250)) for _ in range(25)], gap=0.04)
    udp_oneway(at(), lan4b[0], lan4b[1], 16384, 5004, [172] * 120, gap=0.02)
    udp_oneway(at(), lan4[3], lan4[4], 50000 + rng.randint(0, 999), 33333,
               [rng.randint(20, 900) for _ in range(8)], gap=0.3)
    # ICMP echo v4 and v6 (4 + 4 flows)
    ping(at(), lan4[0], gdns, 4)
    ping(at(), lan4[4], cf, 3, size=32)
    ping(at(), lan6[0], gdns6, 4)
    ping(at(), lan6[1], cf6, 2)
    # 802.1Q VLAN 100: one TCP connection and one UDP syslog-ish exchange (4 flows)
    tcp_conn(at(), vlan_cli, vlan_srv, 52000, 22, [(36, 40), (120, 1200), (64, 64)], vlan=100)
    udp_exchange(at(), vlan_cli, vlan_srv, 514, 514, [(120, 0)] * 5, vlan=100)
    global flow_count
    flow_count -= 1  # the syslog exchange has no replies

    packets.sort(key=lambda p: p[0])
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, frame in packets:
            sec = int(t)
            usec = int(round((t - sec) * 1e6))
            if usec >= 1_000_000:
                sec, usec = sec + 1, usec - 1_000_000
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    total = sum(len(fr) for _, fr in packets)
    print("wrote %s: %d packets, %d frame bytes, ~%d unidirectional flows, %.1f s"
          % (out, len(packets), total, flow_count, packets[-1][0] - packets[0][0]))


if __name__ == "__main__":
    main()
