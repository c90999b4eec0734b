//! Zero-copy parsing of sampled packet headers (sFlow raw packet header records) down to
//! Ethernet / 802.1Q / MPLS / IPv4 / IPv6 / TCP / UDP / ICMP / ARP, and the inverse builder
//! used by the sFlow encoder.
//!
//! Written here rather than taken from `etherparse`: it fills [`FlowRecord`] columns directly,
//! stops at the first layer a truncated header does not cover (sampled headers are usually
//! cut at 128 bytes), and needs the builder side for the encoder anyway.

use crate::reader::{u16_at, u32_at};
use flowsight_schema::{Addr, FlowRecord, addr_from_v4, addr_is_v4};

/// Ethernet types.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IEEE 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service tag.
    pub const QINQ: u16 = 0x88a8;
    /// Legacy QinQ tag.
    pub const QINQ_OLD: u16 = 0x9100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MC: u16 = 0x8848;
}

/// Parses an Ethernet frame into `rec` (MACs, VLAN, MPLS top label, then L3/L4).
pub fn parse_ethernet(f: &[u8], rec: &mut FlowRecord) {
    if f.len() < 14 {
        return;
    }
    rec.dst_mac = mac48(&f[0..6]);
    rec.src_mac = mac48(&f[6..12]);
    let mut et = u16_at(f, 12).unwrap_or(0);
    let mut o = 14;
    // Up to two VLAN tags (802.1ad outer + 802.1Q inner); the outer one is the flow's VLAN.
    for _ in 0..2 {
        if et == ethertype::VLAN || et == ethertype::QINQ || et == ethertype::QINQ_OLD {
            let Some(tci) = u16_at(f, o) else { return };
            if rec.vlan_id == 0 {
                rec.vlan_id = tci & 0x0fff;
            }
            et = u16_at(f, o + 2).unwrap_or(0);
            o += 4;
        }
    }
    rec.etype = et;
    match et {
        ethertype::MPLS | ethertype::MPLS_MC => {
            let mut first = true;
            // Label stack entries: label(20) tc(3) S(1) ttl(8); stop at bottom of stack.
            for _ in 0..16 {
                let Some(e) = u32_at(f, o) else { return };
                if first {
                    rec.mpls_label = e >> 12;
                    first = false;
                }
                o += 4;
                if e & 0x100 != 0 {
                    break;
                }
            }
            // No next-protocol field in MPLS: guess from the IP version nibble.
            match f.get(o).map(|b| b >> 4) {
                Some(4) => {
                    rec.etype = ethertype::IPV4;
                    parse_ipv4(&f[o..], rec);
                }
                Some(6) => {
                    rec.etype = ethertype::IPV6;
                    parse_ipv6(&f[o..], rec);
                }
                _ => {}
            }
        }
        ethertype::IPV4 => parse_ipv4(&f[o..], rec),
        ethertype::IPV6 => parse_ipv6(&f[o..], rec),
        ethertype::ARP => parse_arp(&f[o..], rec),
        _ => {}
    }
}

fn mac48(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |a, &x| (a << 8) | x as u64)
}

/// Parses an IPv4 packet (RFC 791 header) and its transport header.
pub fn parse_ipv4(p: &[u8], rec: &mut FlowRecord) {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return;
    }
    let ihl = (p[0] & 0x0f) as usize * 4;
    rec.etype = ethertype::IPV4;
    rec.ip_tos = p[1];
    rec.fragment_id = u16_at(p, 4).unwrap_or(0) as u32;
    let ff = u16_at(p, 6).unwrap_or(0);
    rec.ip_flags = (ff >> 13) as u8;
    rec.fragment_offset = ff & 0x1fff;
    rec.ip_ttl = p[8];
    rec.proto = p[9];
    rec.src_addr = addr_from_v4(u32_at(p, 12).unwrap_or(0));
    rec.dst_addr = addr_from_v4(u32_at(p, 16).unwrap_or(0));
    // Only the first fragment carries the transport header.
    if rec.fragment_offset == 0 && ihl >= 20 && p.len() > ihl {
        parse_l4(&p[ihl..], rec);
    }
}

/// Parses an IPv6 packet (RFC 8200), skipping extension headers, and its transport header.
pub fn parse_ipv6(p: &[u8], rec: &mut FlowRecord) {
    if p.len() < 40 || p[0] >> 4 != 6 {
        return;
    }
    let w = u32_at(p, 0).unwrap_or(0);
    rec.etype = ethertype::IPV6;
    rec.ip_tos = (w >> 20) as u8;
    rec.ipv6_flow_label = w & 0x000f_ffff;
    rec.ip_ttl = p[7];
    rec.src_addr.copy_from_slice(&p[8..24]);
    rec.dst_addr.copy_from_slice(&p[24..40]);
    let mut nh = p[6];
    let mut o = 40;
    for _ in 0..8 {
        match nh {
            // Hop-by-hop, routing, destination options: length in 8-octet units after the
            // first 8.
            0 | 43 | 60 => {
                let (Some(&next), Some(&len)) = (p.get(o), p.get(o + 1)) else {
                    rec.proto = nh;
                    return;
                };
                nh = next;
                o += (len as usize + 1) * 8;
            }
            // Fragment header (RFC 8200 s4.5): next(1) res(1) offset<<3|M(2) id(4).
            44 => {
                let (Some(&next), Some(off), Some(id)) =
                    (p.get(o), u16_at(p, o + 2), u32_at(p, o + 4))
                else {
                    rec.proto = nh;
                    return;
                };
                rec.fragment_offset = off >> 3;
                rec.fragment_id = id;
                rec.ip_flags = (off & 1) as u8;
                nh = next;
                o += 8;
            }
            _ => break,
        }
    }
    rec.proto = nh;
    if rec.fragment_offset == 0 && p.len() > o {
        parse_l4(&p[o..], rec);
    }
}

fn parse_l4(t: &[u8], rec: &mut FlowRecord) {
    match rec.proto {
        6 => {
            rec.src_port = u16_at(t, 0).unwrap_or(0);
            rec.dst_port = u16_at(t, 2).unwrap_or(0);
            if t.len() >= 14 {
                // Flags byte plus the NS bit from the data-offset byte (RFC 3540).
                rec.tcp_flags = t[13] as u16 | ((t[12] as u16 & 1) << 8);
            }
        }
        17 | 132 => {
            rec.src_port = u16_at(t, 0).unwrap_or(0);
            rec.dst_port = u16_at(t, 2).unwrap_or(0);
        }
        // Same convention as NetFlow v5 exporters: type and code also in the destination
        // port, so port statistics agree across formats.
        1 | 58 if t.len() >= 2 => {
            rec.icmp_type = t[0];
            rec.icmp_code = t[1];
            rec.dst_port = (t[0] as u16) << 8 | t[1] as u16;
        }
        _ => {}
    }
}

/// ARP (RFC 826) for IPv4 over Ethernet: sender and target protocol addresses.
fn parse_arp(a: &[u8], rec: &mut FlowRecord) {
    if a.len() < 28 || u16_at(a, 2) != Some(ethertype::IPV4) || a[4] != 6 || a[5] != 4 {
        return;
    }
    rec.src_addr = addr_from_v4(u32_at(a, 14).unwrap_or(0));
    rec.dst_addr = addr_from_v4(u32_at(a, 24).unwrap_or(0));
}

fn put_mac(out: &mut Vec<u8>, m: u64) {
    out.extend_from_slice(&m.to_be_bytes()[2..]);
}

/// The Internet checksum (RFC 1071) of `b`, as IPv4 headers carry it.
pub fn checksum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Builds the headers of a packet that [`parse_ethernet`] decodes back into `rec`'s fields:
/// Ethernet, an 802.1Q tag if `vlan_id` is set, one MPLS label if `mpls_label` is set, then
/// ARP, IPv4 or IPv6 and the transport header (no payload).
pub fn build_frame(rec: &FlowRecord, out: &mut Vec<u8>) {
    put_mac(out, rec.dst_mac);
    put_mac(out, rec.src_mac);
    if rec.vlan_id != 0 {
        out.extend_from_slice(&ethertype::VLAN.to_be_bytes());
        out.extend_from_slice(&(rec.vlan_id & 0x0fff).to_be_bytes());
    }
    let v4 = addr_is_v4(&rec.src_addr) || addr_is_v4(&rec.dst_addr);
    if rec.etype == ethertype::ARP {
        out.extend_from_slice(&ethertype::ARP.to_be_bytes());
        // htype 1, ptype IPv4, hlen 6, plen 4, op 1 (request)
        out.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        put_mac(out, rec.src_mac);
        out.extend_from_slice(&rec.src_addr[12..]);
        put_mac(out, 0);
        out.extend_from_slice(&rec.dst_addr[12..]);
        return;
    }
    if rec.mpls_label != 0 {
        out.extend_from_slice(&ethertype::MPLS.to_be_bytes());
        // label, tc 0, bottom of stack, ttl 64
        out.extend_from_slice(&((rec.mpls_label << 12) | 0x100 | 64).to_be_bytes());
    } else {
        let et = if v4 { ethertype::IPV4 } else { ethertype::IPV6 };
        out.extend_from_slice(&et.to_be_bytes());
    }
    let l4 = l4_header(rec);
    if v4 {
        let start = out.len();
        let total = (20 + l4.len()) as u16;
        out.extend_from_slice(&[0x45, rec.ip_tos]);
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&(rec.fragment_id as u16).to_be_bytes());
        let ff = ((rec.ip_flags as u16 & 0x7) << 13) | (rec.fragment_offset & 0x1fff);
        out.extend_from_slice(&ff.to_be_bytes());
        out.extend_from_slice(&[rec.ip_ttl, rec.proto, 0, 0]);
        out.extend_from_slice(&rec.src_addr[12..]);
        out.extend_from_slice(&rec.dst_addr[12..]);
        let c = checksum(&out[start..start + 20]);
        out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
    } else {
        let w: u32 = (6 << 28) | ((rec.ip_tos as u32) << 20) | (rec.ipv6_flow_label & 0x000f_ffff);
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        out.extend_from_slice(&[rec.proto, rec.ip_ttl]);
        out.extend_from_slice(&rec.src_addr);
        out.extend_from_slice(&rec.dst_addr);
    }
    // Non-first IPv4 fragments carry no transport header (no IPv6 fragment header is built).
    if !v4 || rec.fragment_offset & 0x1fff == 0 {
        out.extend_from_slice(&l4);
    }
}

fn l4_header(rec: &FlowRecord) -> Vec<u8> {
    let mut t = Vec::with_capacity(20);
    match rec.proto {
        6 => {
            t.extend_from_slice(&rec.src_port.to_be_bytes());
            t.extend_from_slice(&rec.dst_port.to_be_bytes());
            t.extend_from_slice(&[0; 8]); // seq, ack
            t.push(0x50 | ((rec.tcp_flags >> 8) as u8 & 1));
            t.push(rec.tcp_flags as u8);
            t.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]); // window, checksum, urgent
        }
        17 | 132 => {
            t.extend_from_slice(&rec.src_port.to_be_bytes());
            t.extend_from_slice(&rec.dst_port.to_be_bytes());
            t.extend_from_slice(&[0, 8, 0, 0]);
        }
        1 | 58 => {
            t.extend_from_slice(&[rec.icmp_type, rec.icmp_code, 0, 0, 0, 0, 0, 0]);
        }
        _ => {}
    }
    t
}

/// An IPv4 [`Addr`] from dotted bytes; a small helper for tests and the generator.
pub fn v4(a: u8, b: u8, c: u8, d: u8) -> Addr {
    addr_from_v4(u32::from_be_bytes([a, b, c, d]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vlan_tagged_tcp_over_ipv4() {
        #[rustfmt::skip]
        let frame: &[u8] = &[
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, // dst MAC
            0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, // src MAC
            0x81, 0x00, 0x00, 0x64,             // 802.1Q, VLAN 100
            0x08, 0x00,                         // ethertype IPv4
            0x45, 0x10, 0x00, 0x28,             // v4, IHL 5, TOS 0x10, total length 40
            0x12, 0x34, 0x40, 0x00,             // id 0x1234, DF, offset 0
            0x3f, 0x06, 0x00, 0x00,             // TTL 63, TCP, checksum (ignored)
            192, 0, 2, 1,                       // src 192.0.2.1
            198, 51, 100, 7,                    // dst 198.51.100.7
            0xc3, 0x50, 0x01, 0xbb,             // src port 50000, dst port 443
            0, 0, 0, 0, 0, 0, 0, 0,             // seq, ack
            0x50, 0x12,                         // data offset 5, flags SYN|ACK
        ];
        let mut r = FlowRecord::default();
        parse_ethernet(frame, &mut r);
        assert_eq!(r.dst_mac, 0x0011_2233_4455);
        assert_eq!(r.src_mac, 0x6677_8899_aabb);
        assert_eq!(r.vlan_id, 100);
        assert_eq!(r.etype, 0x0800);
        assert_eq!(r.ip_tos, 0x10);
        assert_eq!(r.fragment_id, 0x1234);
        assert_eq!(r.ip_flags, 2); // DF
        assert_eq!(r.ip_ttl, 63);
        assert_eq!(r.proto, 6);
        assert_eq!(r.src_addr, v4(192, 0, 2, 1));
        assert_eq!(r.dst_addr, v4(198, 51, 100, 7));
        assert_eq!((r.src_port, r.dst_port), (50000, 443));
        assert_eq!(r.tcp_flags, 0x12);
    }

    #[test]
    fn parses_ipv6_fragment_and_icmpv6() {
        let mut p = vec![0x60, 0x00, 0x00, 0x05, 0, 16, 44, 64];
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        // fragment header: next ICMPv6, reserved, offset 0 + M, id 77
        p.extend_from_slice(&[58, 0, 0x00, 0x01, 0, 0, 0, 77]);
        p.extend_from_slice(&[128, 0, 0, 0]); // echo request
        let mut r = FlowRecord::default();
        parse_ipv6(&p, &mut r);
        assert_eq!(r.ipv6_flow_label, 5);
        assert_eq!(r.proto, 58);
        assert_eq!(r.fragment_id, 77);
        assert_eq!(r.ip_flags, 1);
        assert_eq!((r.icmp_type, r.icmp_code), (128, 0));
        assert_eq!(r.dst_port, 128 << 8);
    }

    #[test]
    fn truncated_headers_never_panic() {
        let mut r = FlowRecord {
            proto: 6,
            src_addr: v4(10, 0, 0, 1),
            dst_addr: v4(10, 0, 0, 2),
            vlan_id: 5,
            mpls_label: 99,
            ..FlowRecord::default()
        };
        let mut f = Vec::new();
        build_frame(&r, &mut f);
        for n in 0..f.len() {
            parse_ethernet(&f[..n], &mut r);
        }
    }
}
