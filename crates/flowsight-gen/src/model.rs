//! The background traffic model: internal clients talking to public services, with a
//! heavy-tailed choice of talkers and servers, a realistic application mix, IPv4 and IPv6,
//! and addresses from real-world prefixes (with their real origin AS) so enrichment has
//! something true to show.

use crate::rng::{Rng, Zipf};
use flowsight_schema::{Addr, FlowRecord, addr_from_ip, addr_from_v4};
use std::net::{IpAddr, Ipv6Addr};

/// The site's own AS number (private range) used for internal addresses.
pub const LOCAL_AS: u32 = 64_512;

/// Public prefixes and their origin AS (well-known allocations), used for servers.
/// (first address, prefix length, AS)
const V4_PREFIXES: &[([u8; 4], u8, u32)] = &[
    ([8, 8, 8, 0], 24, 15_169),     // Google Public DNS
    ([142, 250, 0, 0], 15, 15_169), // Google
    ([1, 1, 1, 0], 24, 13_335),     // Cloudflare DNS
    ([104, 16, 0, 0], 13, 13_335),  // Cloudflare
    ([9, 9, 9, 0], 24, 19_281),     // Quad9
    ([52, 0, 0, 0], 11, 16_509),    // Amazon
    ([23, 32, 0, 0], 11, 20_940),   // Akamai
    ([45, 57, 0, 0], 17, 2_906),    // Netflix
    ([20, 0, 0, 0], 11, 8_075),     // Microsoft
    ([157, 240, 0, 0], 16, 32_934), // Meta
    ([17, 0, 0, 0], 8, 714),        // Apple
    ([151, 101, 0, 0], 16, 54_113), // Fastly
    ([77, 88, 0, 0], 18, 13_238),   // Yandex
    ([129, 250, 0, 0], 16, 2_914),  // NTT
    ([51, 68, 0, 0], 16, 16_276),   // OVH
];

const V6_PREFIXES: &[(u16, u16, u32)] = &[
    (0x2001, 0x4860, 15_169), // Google
    (0x2606, 0x4700, 13_335), // Cloudflare
    (0x2a03, 0x2880, 32_934), // Meta
    (0x2620, 0x00fe, 19_281), // Quad9
    (0x2a00, 0x1450, 15_169), // Google (EU)
];

/// Well-known servers that are always in the pool, first (so they are among the top talkers).
const WELL_KNOWN: &[(&str, u32)] = &[
    ("8.8.8.8", 15_169),
    ("1.1.1.1", 13_335),
    ("9.9.9.9", 19_281),
    ("8.8.4.4", 15_169),
    ("1.0.0.1", 13_335),
    ("2001:4860:4860::8888", 15_169),
    ("2606:4700:4700::1111", 13_335),
    ("2620:fe::fe", 19_281),
];

/// A server: address, origin AS, prefix length.
#[derive(Clone, Copy, Debug)]
pub struct Server {
    /// Address.
    pub addr: Addr,
    /// Origin AS.
    pub asn: u32,
    /// Prefix length it was drawn from.
    pub len: u8,
    /// IPv6?
    pub v6: bool,
}

/// One application of the mix.
#[derive(Clone, Copy, Debug)]
struct App {
    proto: u8,
    port: u16, // 0: random high port
    weight: u32,
    /// packets: Pareto (min, shape, cap)
    pkts: (f64, f64, f64),
    /// bytes per packet range
    bpp: (u64, u64),
    /// reply/request volume ratio
    reply: f64,
    /// flow duration range, ms
    dur_ms: (u64, u64),
}

const APPS: &[App] = &[
    App {
        proto: 6,
        port: 443,
        weight: 35,
        pkts: (4.0, 1.2, 20_000.0),
        bpp: (200, 1400),
        reply: 6.0,
        dur_ms: (50, 120_000),
    },
    App {
        proto: 6,
        port: 80,
        weight: 8,
        pkts: (4.0, 1.3, 5_000.0),
        bpp: (200, 1400),
        reply: 5.0,
        dur_ms: (20, 30_000),
    },
    App {
        proto: 17,
        port: 443,
        weight: 10,
        pkts: (40.0, 1.1, 200_000.0),
        bpp: (1100, 1400),
        reply: 15.0,
        dur_ms: (1_000, 300_000),
    },
    App {
        proto: 17,
        port: 53,
        weight: 15,
        pkts: (1.0, 3.0, 2.0),
        bpp: (60, 120),
        reply: 2.5,
        dur_ms: (0, 50),
    },
    App {
        proto: 17,
        port: 123,
        weight: 3,
        pkts: (1.0, 5.0, 1.0),
        bpp: (76, 76),
        reply: 1.0,
        dur_ms: (0, 10),
    },
    App {
        proto: 6,
        port: 22,
        weight: 3,
        pkts: (10.0, 1.3, 50_000.0),
        bpp: (60, 300),
        reply: 1.5,
        dur_ms: (1_000, 600_000),
    },
    App {
        proto: 1,
        port: 0x0800,
        weight: 3,
        pkts: (1.0, 1.5, 20.0),
        bpp: (84, 98),
        reply: 1.0,
        dur_ms: (0, 20_000),
    },
    App {
        proto: 6,
        port: 0,
        weight: 8,
        pkts: (3.0, 1.2, 10_000.0),
        bpp: (60, 1400),
        reply: 3.0,
        dur_ms: (10, 60_000),
    },
    App {
        proto: 17,
        port: 0,
        weight: 5,
        pkts: (2.0, 1.5, 5_000.0),
        bpp: (60, 1200),
        reply: 1.0,
        dur_ms: (0, 30_000),
    },
];

/// The background traffic model.
#[derive(Clone, Debug)]
pub struct Model {
    servers: Vec<Server>,
    servers_v4: Vec<usize>,
    servers_v6: Vec<usize>,
    clients: usize,
    client_zipf: Zipf,
    server_zipf_v4: Zipf,
    server_zipf_v6: Zipf,
    app_total: u32,
    /// Share of conversations over IPv6 (0 for formats that cannot carry it).
    pub v6_share: f64,
}

impl Model {
    /// A model with `clients` internal hosts and `servers` public servers drawn from `rng`.
    pub fn new(rng: &mut Rng, clients: usize, servers: usize, v6_share: f64) -> Self {
        let mut pool: Vec<Server> = WELL_KNOWN
            .iter()
            .filter_map(|(a, asn)| {
                let ip: IpAddr = a.parse().ok()?;
                Some(Server {
                    addr: addr_from_ip(ip),
                    asn: *asn,
                    len: if ip.is_ipv4() { 24 } else { 32 },
                    v6: ip.is_ipv6(),
                })
            })
            .collect();
        let target = servers.max(pool.len() + 1);
        while pool.len() < target {
            if rng.chance(0.75) {
                let (base, len, asn) = V4_PREFIXES[rng.below(V4_PREFIXES.len() as u64) as usize];
                let host_bits = 32 - len as u32;
                let base = u32::from_be_bytes(base);
                let v = base | (rng.next_u64() as u32 & ((1u64 << host_bits) - 1) as u32) | 1;
                pool.push(Server {
                    addr: addr_from_v4(v),
                    asn,
                    len,
                    v6: false,
                });
            } else {
                let (a, b, asn) = V6_PREFIXES[rng.below(V6_PREFIXES.len() as u64) as usize];
                let r = rng.next_u64();
                let ip = Ipv6Addr::new(a, b, (r >> 48) as u16, 0, 0, 0, 0, (r as u16) | 1);
                pool.push(Server {
                    addr: ip.octets(),
                    asn,
                    len: 32,
                    v6: true,
                });
            }
        }
        let servers_v4: Vec<usize> = (0..pool.len()).filter(|&i| !pool[i].v6).collect();
        let servers_v6: Vec<usize> = (0..pool.len()).filter(|&i| pool[i].v6).collect();
        Model {
            client_zipf: Zipf::new(clients, 1.1),
            server_zipf_v4: Zipf::new(servers_v4.len(), 1.0),
            server_zipf_v6: Zipf::new(servers_v6.len(), 1.0),
            servers: pool,
            clients,
            servers_v4,
            servers_v6,
            app_total: APPS.iter().map(|a| a.weight).sum(),
            v6_share,
        }
    }

    /// Internal client `i`: 10.S.X.Y for IPv4, fd00:S::X:Y for IPv6 (dual stack).
    pub fn client_addr(i: usize, v6: bool) -> Addr {
        let i = i as u32 + 256;
        if v6 {
            Ipv6Addr::new(0xfd00, 0, (i >> 16) as u16, 0, 0, 0, 0, i as u16).octets()
        } else {
            addr_from_v4(0x0a00_0000 | (i & 0x00ff_ffff))
        }
    }

    /// One conversation: a request flow and, for most applications, its reply. `t_ns` is
    /// when the flow ended (absolute, ns); `exporters` picks which exporter saw it.
    pub fn conversation(&self, rng: &mut Rng, t_ns: u64, out: &mut Vec<FlowRecord>) -> usize {
        let client = self.client_zipf.sample(rng);
        let v6 = !self.servers_v6.is_empty() && rng.chance(self.v6_share);
        let server = if v6 {
            self.servers[self.servers_v6[self.server_zipf_v6.sample(rng)]]
        } else {
            self.servers[self.servers_v4[self.server_zipf_v4.sample(rng)]]
        };
        let mut pick = rng.below(self.app_total as u64) as u32;
        let app = APPS
            .iter()
            .find(|a| {
                if pick < a.weight {
                    true
                } else {
                    pick -= a.weight;
                    false
                }
            })
            .copied()
            .unwrap_or(APPS[0]);
        let proto = if app.proto == 1 && v6 { 58 } else { app.proto };
        let caddr = Self::client_addr(client, v6);
        let sport = rng.range(32_768, 60_999) as u16;
        let dport = match (app.port, proto) {
            (_, 1) => 0x0800,    // echo request
            (_, 58) => 128 << 8, // ICMPv6 echo request
            (0, _) => rng.range(1024, 65_535) as u16,
            (p, _) => p,
        };
        let pkts = rng
            .pareto(app.pkts.0, app.pkts.1, app.pkts.2)
            .round()
            .max(1.0) as u64;
        let bpp = rng.range(app.bpp.0, app.bpp.1);
        let dur = rng.range(app.dur_ms.0, app.dur_ms.1) * 1_000_000;
        let flags = if proto != 6 {
            0
        } else if pkts == 1 {
            0x02
        } else {
            0x1b
        };
        let nh = addr_from_v4(0x0aff_0001 + (client % 4) as u32);
        let req = FlowRecord {
            src_addr: caddr,
            dst_addr: server.addr,
            src_port: if proto == 1 || proto == 58 { 0 } else { sport },
            dst_port: dport,
            proto,
            packets: pkts,
            bytes: pkts * bpp,
            tcp_flags: flags,
            time_flow_start_ns: t_ns.saturating_sub(dur),
            time_flow_end_ns: t_ns,
            in_if: 1 + (client % 4) as u32,
            out_if: 10 + (server.asn % 2),
            src_as: LOCAL_AS,
            dst_as: server.asn,
            src_net: if v6 { 64 } else { 24 },
            dst_net: server.len,
            next_hop: if v6 { [0; 16] } else { nh },
            ip_tos: if app.port == 22 { 0x10 } else { 0 },
            ip_ttl: 64,
            src_mac: 0x0200_5e00_0000 | client as u64,
            dst_mac: 0x0200_5eff_0001,
            etype: if v6 { 0x86dd } else { 0x0800 },
            ..FlowRecord::default()
        };
        out.push(req);
        if app.reply <= 0.0 {
            return 1;
        }
        let rpkts = ((pkts as f64) * app.reply.sqrt()).round().max(1.0) as u64;
        let rbpp = ((bpp as f64) * app.reply.sqrt())
            .round()
            .clamp(40.0, 1500.0) as u64;
        let reply_dport = match proto {
            1 | 58 => 0, // echo reply: type 0 (IPv4) / 129 (IPv6) below
            _ => sport,
        };
        let rep = FlowRecord {
            src_addr: server.addr,
            dst_addr: caddr,
            src_port: if proto == 1 || proto == 58 { 0 } else { dport },
            dst_port: if proto == 58 { 129 << 8 } else { reply_dport },
            packets: rpkts,
            bytes: rpkts * rbpp,
            in_if: req.out_if,
            out_if: req.in_if,
            src_as: server.asn,
            dst_as: LOCAL_AS,
            src_net: server.len,
            dst_net: req.src_net,
            ip_ttl: 57,
            src_mac: 0x0200_5eff_0001,
            dst_mac: req.src_mac,
            ..req
        };
        out.push(rep);
        2
    }

    /// Number of servers in the pool.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Number of internal clients.
    pub fn client_count(&self) -> usize {
        self.clients
    }
}
