//! Reading flow export datagrams out of packet captures (pcap and pcapng): link layers,
//! IPv4/IPv6, UDP payloads, and TCP streams reassembled into IPFIX messages.
//!
//! Classic pcap is parsed here (so a damaged record can be skipped by resynchronizing on the
//! next sane header); pcapng goes through `pcap-file`.
//!
//! ```no_run
//! let bytes = std::fs::read("export.pcap").unwrap();
//! for p in flowsight_capture::payloads(&bytes).unwrap() {
//!     println!("{} bytes from {}", p.data.len(), p.src);
//! }
//! ```
use flowsight_wire::IpfixStream;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why a capture cannot be read at all (damage inside a readable file is a [`CaptureIssue`]).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file does not start like a pcap or pcapng file.
    #[error(
        "not a pcap or pcapng file (magic {0:#010x}); capture export traffic with `tshark -i lo -f 'udp port 2055' -w FILE.pcap` or tcpdump"
    )]
    NotACapture(u32),
    /// The file is shorter than any header.
    #[error("file is {0} bytes long: too short for a pcap or pcapng header")]
    TooShort(usize),
    /// The pcapng section header is unreadable.
    #[error("reading the pcapng section header: {0}")]
    Pcapng(String),
}

type Result<T> = std::result::Result<T, CaptureError>;

/// Every flow export payload of a capture (UDP datagrams and IPFIX messages from TCP), in
/// order, ignoring damage (use [`read_frames`] and [`Extractor`] to see it).
pub fn payloads(bytes: &[u8]) -> Result<Vec<Payload>> {
    let (frames, _) = read_frames(bytes)?;
    let mut ex = Extractor::default();
    let mut issues = Vec::new();
    Ok(frames
        .iter()
        .flat_map(|f| ex.extract(f, &mut issues))
        .collect())
}

/// One captured frame.
#[derive(Debug)]
pub struct Frame {
    /// Index of the frame in the file (1-based, like tshark).
    pub number: u64,
    /// Byte offset of the frame's record in the file.
    pub offset: u64,
    /// Capture time, Unix ns.
    pub ts_ns: u64,
    /// Link type (pcap LINKTYPE_*).
    pub linktype: u32,
    /// Captured bytes.
    pub data: Vec<u8>,
}

/// A problem with the file itself, with where it is.
#[derive(Debug)]
pub struct CaptureIssue {
    /// Byte offset in the file.
    pub offset: u64,
    /// What is wrong.
    pub message: String,
}

/// Reads every frame of a pcap or pcapng file. Damage in a classic pcap is reported and
/// skipped by resynchronizing on the next plausible record header; damage in pcapng ends
/// the read (reported).
pub fn read_frames(bytes: &[u8]) -> Result<(Vec<Frame>, Vec<CaptureIssue>)> {
    if bytes.len() < 4 {
        return Err(CaptureError::TooShort(bytes.len()));
    }
    let magic = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    match magic {
        0x0a0d_0d0a => read_pcapng(bytes),
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 => read_pcap(bytes),
        _ => Err(CaptureError::NotACapture(magic)),
    }
}

fn read_pcap(b: &[u8]) -> Result<(Vec<Frame>, Vec<CaptureIssue>)> {
    if b.len() < 24 {
        return Err(CaptureError::TooShort(b.len()));
    }
    let magic = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let le = magic == 0xa1b2_c3d4 || magic == 0xa1b2_3c4d;
    let nanos = magic == 0xa1b2_3c4d || magic == 0x4d3c_b2a1;
    let rd = |o: usize| -> u32 {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    let snaplen = rd(16).clamp(64, 262_144) as usize;
    let linktype = rd(20) & 0x0fff_ffff;
    let mut frames = Vec::new();
    let mut issues = Vec::new();
    let mut o = 24usize;
    let mut number = 0u64;
    let header_ok = |o: usize, near_secs: Option<u32>| -> bool {
        if o + 16 > b.len() {
            return false;
        }
        let incl = rd(o + 8) as usize;
        let orig = rd(o + 12) as usize;
        let frac = rd(o + 4);
        let close = near_secs.is_none_or(|t| rd(o).abs_diff(t) < 7 * 86_400);
        incl <= snaplen && incl <= orig && o + 16 + incl <= b.len() && frac < 1_000_000_000 && close
    };
    // While resynchronizing, a candidate header must also be followed by another sane
    // header (or the end of the file), so bytes inside a frame are not taken for one.
    let resync_ok = |o: usize, near: Option<u32>| -> bool {
        if !header_ok(o, near) {
            return false;
        }
        let next = o + 16 + rd(o + 8) as usize;
        next == b.len() || header_ok(next, Some(rd(o)))
    };
    let mut last_secs: Option<u32> = None;
    let plausible = |o: usize| header_ok(o, None);
    while o < b.len() {
        if b.len() - o < 16 {
            issues.push(CaptureIssue {
                offset: o as u64,
                message: format!("truncated record header: {} bytes left of 16", b.len() - o),
            });
            break;
        }
        if !plausible(o) {
            let incl = rd(o + 8);
            let start = o;
            // Resynchronize: the next offset where a record header looks sane.
            let next = (o + 1..b.len().saturating_sub(15)).find(|&p| resync_ok(p, last_secs));
            let msg = if o + 16 + incl as usize > b.len() && incl as usize <= snaplen {
                format!("record of {incl} bytes runs past the end of the file (truncated capture)")
            } else {
                format!("damaged record header (captured length {incl})")
            };
            issues.push(CaptureIssue {
                offset: start as u64,
                message: match next {
                    Some(p) => format!("{msg}; skipped {} bytes to the next record", p - start),
                    None => msg,
                },
            });
            match next {
                Some(p) => {
                    o = p;
                    continue;
                }
                None => break,
            }
        }
        last_secs = Some(rd(o));
        let secs = rd(o) as u64;
        let frac = rd(o + 4) as u64;
        let incl = rd(o + 8) as usize;
        number += 1;
        frames.push(Frame {
            number,
            offset: o as u64,
            ts_ns: secs * 1_000_000_000 + if nanos { frac } else { frac * 1000 },
            linktype,
            data: b[o + 16..o + 16 + incl].to_vec(),
        });
        o += 16 + incl;
    }
    Ok((frames, issues))
}

fn read_pcapng(b: &[u8]) -> Result<(Vec<Frame>, Vec<CaptureIssue>)> {
    use pcap_file::pcapng::{Block, PcapNgReader};
    let mut reader = PcapNgReader::new(b).map_err(|e| CaptureError::Pcapng(e.to_string()))?;
    let mut frames = Vec::new();
    let mut issues = Vec::new();
    let mut number = 0u64;
    // Interface link types and timestamp resolutions, in IDB order.
    let mut ifaces: Vec<u32> = Vec::new();
    loop {
        let offset = (b.len() - reader.get_ref().len()) as u64;
        let Some(block) = reader.next_block() else {
            break;
        };
        let block = match block {
            Ok(bl) => bl,
            Err(e) => {
                issues.push(CaptureIssue {
                    offset,
                    message: format!("damaged pcapng block: {e}; the rest of the file is skipped"),
                });
                break;
            }
        };
        match block {
            Block::InterfaceDescription(idb) => ifaces.push(u32::from(idb.linktype)),
            Block::EnhancedPacket(epb) => {
                number += 1;
                frames.push(Frame {
                    number,
                    offset,
                    ts_ns: epb.timestamp.as_nanos() as u64,
                    linktype: ifaces.get(epb.interface_id as usize).copied().unwrap_or(1),
                    data: epb.data.to_vec(),
                });
            }
            Block::SimplePacket(spb) => {
                number += 1;
                frames.push(Frame {
                    number,
                    offset,
                    ts_ns: 0,
                    linktype: ifaces.first().copied().unwrap_or(1),
                    data: spb.data.to_vec(),
                });
            }
            _ => {}
        }
    }
    Ok((frames, issues))
}

/// A flow export payload found in a frame.
#[derive(Debug)]
pub struct Payload {
    /// Frame number it came from (for TCP: the frame completing the message).
    pub frame: u64,
    /// File offset of that frame.
    pub offset: u64,
    /// Capture time.
    pub ts_ns: u64,
    /// IP source address: the exporter.
    pub src: IpAddr,
    /// The datagram (UDP) or one IPFIX message (TCP).
    pub data: Vec<u8>,
}

/// A TCP connection: (src, sport, dst, dport).
type StreamKey = (IpAddr, u16, IpAddr, u16);

/// Extracts UDP payloads and reassembled TCP IPFIX messages from frames.
#[derive(Default, Debug)]
pub struct Extractor {
    streams: HashMap<StreamKey, (Option<u32>, IpfixStream)>,
    /// Frames that were not IP/UDP/TCP, fragments, or otherwise skipped.
    pub skipped: u64,
}

impl Extractor {
    /// Payloads carried by one frame (zero or more).
    pub fn extract(&mut self, f: &Frame, issues: &mut Vec<CaptureIssue>) -> Vec<Payload> {
        let Some(ip) = l3(f.linktype, &f.data) else {
            self.skipped += 1;
            return Vec::new();
        };
        let Some((src, dst, proto, l4)) = parse_ip(ip) else {
            self.skipped += 1;
            return Vec::new();
        };
        let mk = |data: Vec<u8>| Payload {
            frame: f.number,
            offset: f.offset,
            ts_ns: f.ts_ns,
            src,
            data,
        };
        match proto {
            17 if l4.len() >= 8 => vec![mk(l4[8..].to_vec())],
            6 if l4.len() >= 20 => {
                let sport = u16::from_be_bytes([l4[0], l4[1]]);
                let dport = u16::from_be_bytes([l4[2], l4[3]]);
                let seq = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
                let hl = ((l4[12] >> 4) as usize * 4).max(20);
                let flags = l4[13];
                let payload = l4.get(hl..).unwrap_or(&[]);
                let key = (src, sport, dst, dport);
                let entry = self
                    .streams
                    .entry(key)
                    .or_insert_with(|| (None, IpfixStream::new()));
                if flags & 0x02 != 0 {
                    // SYN: the stream starts after it.
                    *entry = (Some(seq.wrapping_add(1)), IpfixStream::new());
                    return Vec::new();
                }
                if payload.is_empty() {
                    return Vec::new();
                }
                let next = entry.0.get_or_insert(seq);
                if seq != *next {
                    // Retransmission (already seen) or a hole (lost segment): skip.
                    if seq.wrapping_sub(*next) < 1 << 31 {
                        issues.push(CaptureIssue {
                            offset: f.offset,
                            message: format!(
                                "frame {}: TCP stream {}:{} -> {}:{} misses {} bytes; stream resynchronized",
                                f.number,
                                src,
                                sport,
                                dst,
                                dport,
                                seq.wrapping_sub(*next)
                            ),
                        });
                        entry.1 = IpfixStream::new();
                        *next = seq;
                    } else {
                        return Vec::new();
                    }
                }
                *next = seq.wrapping_add(payload.len() as u32);
                entry.1.push(payload);
                let mut out = Vec::new();
                loop {
                    match entry.1.next_message() {
                        Ok(Some(m)) => out.push(mk(m)),
                        Ok(None) => break,
                        Err(e) => {
                            issues.push(CaptureIssue {
                                offset: f.offset,
                                message: format!("frame {}: {e}; stream reset", f.number),
                            });
                            entry.1 = IpfixStream::new();
                            break;
                        }
                    }
                }
                out
            }
            _ => {
                self.skipped += 1;
                Vec::new()
            }
        }
    }
}

/// The IP packet inside a frame of the given link type.
fn l3(linktype: u32, d: &[u8]) -> Option<&[u8]> {
    match linktype {
        // LINKTYPE_ETHERNET, with up to two VLAN tags.
        1 => {
            let mut et = u16::from_be_bytes([*d.get(12)?, *d.get(13)?]);
            let mut o = 14;
            while et == 0x8100 || et == 0x88a8 {
                et = u16::from_be_bytes([*d.get(o + 2)?, *d.get(o + 3)?]);
                o += 4;
            }
            (et == 0x0800 || et == 0x86dd).then(|| d.get(o..)).flatten()
        }
        // LINKTYPE_NULL / LOOP: 4-byte address family.
        0 | 108 => d.get(4..),
        // LINKTYPE_RAW, IPV4, IPV6.
        101 | 228 | 229 => Some(d),
        // LINKTYPE_LINUX_SLL (16-byte header), SLL2 (20 bytes).
        113 => d.get(16..),
        276 => d.get(20..),
        _ => None,
    }
}

/// (src, dst, protocol, transport bytes) of an unfragmented IPv4/IPv6 packet.
fn parse_ip(p: &[u8]) -> Option<(IpAddr, IpAddr, u8, &[u8])> {
    match p.first()? >> 4 {
        4 => {
            let ihl = (p[0] & 0xf) as usize * 4;
            let total = u16::from_be_bytes([*p.get(2)?, *p.get(3)?]) as usize;
            let ff = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]);
            if ff & 0x3fff != 0 {
                return None; // fragment: reassembly is not supported
            }
            let src = Ipv4Addr::new(*p.get(12)?, p[13], p[14], p[15]);
            let dst = Ipv4Addr::new(*p.get(16)?, p[17], p[18], p[19]);
            let end = total.min(p.len());
            Some((src.into(), dst.into(), p[9], p.get(ihl..end)?))
        }
        6 => {
            let plen = u16::from_be_bytes([*p.get(4)?, *p.get(5)?]) as usize;
            let mut a = [0u8; 16];
            a.copy_from_slice(p.get(8..24)?);
            let src = Ipv6Addr::from(a);
            a.copy_from_slice(p.get(24..40)?);
            let dst = Ipv6Addr::from(a);
            let end = (40 + plen).min(p.len());
            Some((src.into(), dst.into(), p[6], p.get(40..end)?))
        }
        _ => None,
    }
}
