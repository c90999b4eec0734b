//! Writes export datagrams as a classic pcap (Ethernet / IPv4 or IPv6 / UDP, or TCP segments
//! for IPFIX over TCP), so captures can be made without a network and replayed later.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

/// A classic (microsecond) little-endian pcap writer.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    w: W,
    ip_id: u16,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header (LINKTYPE_ETHERNET, snaplen 65535).
    pub fn new(mut w: W) -> io::Result<Self> {
        w.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        w.write_all(&2u16.to_le_bytes())?;
        w.write_all(&4u16.to_le_bytes())?;
        w.write_all(&0i32.to_le_bytes())?;
        w.write_all(&0u32.to_le_bytes())?;
        w.write_all(&65_535u32.to_le_bytes())?;
        w.write_all(&1u32.to_le_bytes())?;
        Ok(PcapWriter { w, ip_id: 1 })
    }

    /// One UDP datagram from `src` to `dst` at `ts_ns` (Unix ns).
    pub fn write_udp(
        &mut self,
        ts_ns: u64,
        src: SocketAddr,
        dst: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut l4 = Vec::with_capacity(8 + payload.len());
        l4.extend_from_slice(&src.port().to_be_bytes());
        l4.extend_from_slice(&dst.port().to_be_bytes());
        l4.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        l4.extend_from_slice(&[0, 0]); // checksum optional over IPv4; receivers ignore it here
        l4.extend_from_slice(payload);
        self.write_ip(ts_ns, src.ip(), dst.ip(), 17, &l4)
    }

    /// One TCP segment (ACK|PSH) carrying `payload` at sequence number `seq`.
    pub fn write_tcp(
        &mut self,
        ts_ns: u64,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        payload: &[u8],
    ) -> io::Result<()> {
        let mut l4 = Vec::with_capacity(20 + payload.len());
        l4.extend_from_slice(&src.port().to_be_bytes());
        l4.extend_from_slice(&dst.port().to_be_bytes());
        l4.extend_from_slice(&seq.to_be_bytes());
        l4.extend_from_slice(&1u32.to_be_bytes()); // ack
        l4.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        l4.extend_from_slice(payload);
        self.write_ip(ts_ns, src.ip(), dst.ip(), 6, &l4)
    }

    fn write_ip(
        &mut self,
        ts_ns: u64,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        l4: &[u8],
    ) -> io::Result<()> {
        let mut f = Vec::with_capacity(14 + 40 + l4.len());
        f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // loopback MACs
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&0x0800u16.to_be_bytes());
                let start = f.len();
                f.extend_from_slice(&[0x45, 0]);
                f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                f.extend_from_slice(&self.ip_id.to_be_bytes());
                f.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
                let c = flowsight_wire::packet::checksum(&f[start..start + 20]);
                f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
                self.ip_id = self.ip_id.wrapping_add(1);
            }
            _ => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
                    IpAddr::V6(v) => v.octets(),
                };
                f.extend_from_slice(&0x86ddu16.to_be_bytes());
                f.extend_from_slice(&[0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&v6(src));
                f.extend_from_slice(&v6(dst));
            }
        }
        f.extend_from_slice(l4);
        self.w
            .write_all(&((ts_ns / 1_000_000_000) as u32).to_le_bytes())?;
        self.w
            .write_all(&(((ts_ns % 1_000_000_000) / 1000) as u32).to_le_bytes())?;
        self.w.write_all(&(f.len() as u32).to_le_bytes())?;
        self.w.write_all(&(f.len() as u32).to_le_bytes())?;
        self.w.write_all(&f)
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.flush()?;
        Ok(self.w)
    }
}
