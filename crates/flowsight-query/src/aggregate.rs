//! nfdump-style aggregation (`-A srcip,dstport`, `-A srcip4/24`): flows grouped by any set of
//! fields, addresses optionally masked to a prefix.

use crate::stats::Sums;
use crate::text::TextField;
use flowsight_schema::{FlowBatch, addr_to_ip, proto_name};
use rustc_hash::FxHashMap;

/// Names of the one-sided enrichment keys, as shown in headers.
const TEXT_LABELS: &[&str] = &[
    "srcgeo",
    "dstgeo",
    "srccountry",
    "dstcountry",
    "srccity",
    "dstcity",
    "srcregion",
    "dstregion",
    "srcasname",
    "dstasname",
    "srcnet",
    "dstnet",
    "srcnetname",
    "dstnetname",
    "srcrole",
    "dstrole",
    "srcnetrole",
    "dstnetrole",
    "srcsite",
    "dstsite",
    "srcnetsite",
    "dstnetsite",
    "srcnetregion",
    "dstnetregion",
    "srctenant",
    "dsttenant",
    "srccustomer",
    "dstcustomer",
    "srcnettenant",
    "dstnettenant",
    "inifname",
    "outifname",
    "srcifname",
    "dstifname",
];

/// Most keys in one aggregation.
pub const MAX_KEYS: usize = 6;

/// A field flows can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggField {
    /// `srcip`
    SrcIp,
    /// `dstip`
    DstIp,
    /// `srcport`
    SrcPort,
    /// `dstport`
    DstPort,
    /// `proto`
    Proto,
    /// `srcas`
    SrcAs,
    /// `dstas`
    DstAs,
    /// `inif`
    InIf,
    /// `outif`
    OutIf,
    /// `router` (exporter)
    Router,
    /// `tos`
    Tos,
    /// `srcvlan`
    SrcVlan,
    /// `dstvlan`
    DstVlan,
    /// `nexthop`
    NextHop,
    /// An enrichment text field, source (true) or destination side (`srcgeo`, `dsttenant`).
    Text(TextField, bool),
}

/// One aggregation key: a field and, for addresses, a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggKey {
    /// The field.
    pub field: AggField,
    /// Prefix length in the 128-bit (IPv4-mapped) space, for addresses.
    pub mask_bits: Option<u8>,
    name: &'static str,
    shown_bits: Option<u8>,
}

impl AggKey {
    /// The columns reading this key needs.
    pub fn columns(&self) -> Vec<&'static str> {
        vec![match self.field {
            AggField::Text(f, src) => {
                let (a, b) = f.columns();
                if src { a } else { b }
            }
            AggField::SrcIp => "src_addr",
            AggField::DstIp => "dst_addr",
            AggField::SrcPort => "src_port",
            AggField::DstPort => "dst_port",
            AggField::Proto => "proto",
            AggField::SrcAs => "src_as",
            AggField::DstAs => "dst_as",
            AggField::InIf => "in_if",
            AggField::OutIf => "out_if",
            AggField::Router => "sampler_address",
            AggField::Tos => "ip_tos",
            AggField::SrcVlan => "src_vlan",
            AggField::DstVlan => "dst_vlan",
            AggField::NextHop => "next_hop",
        }]
    }

    /// The key's name as the user wrote it (column headers).
    pub fn name(&self) -> String {
        match self.shown_bits {
            Some(b) => format!("{}/{b}", self.name),
            None => self.name.to_string(),
        }
    }

    #[inline]
    fn value(&self, b: &FlowBatch, i: usize) -> u128 {
        let a = |x: &[u8; 16]| u128::from_be_bytes(*x);
        let v = match self.field {
            AggField::SrcIp => a(&b.src_addr[i]),
            AggField::DstIp => a(&b.dst_addr[i]),
            AggField::SrcPort => u128::from(b.src_port[i]),
            AggField::DstPort => u128::from(b.dst_port[i]),
            AggField::Proto => u128::from(b.proto[i]),
            AggField::SrcAs => u128::from(b.src_as[i]),
            AggField::DstAs => u128::from(b.dst_as[i]),
            AggField::InIf => u128::from(b.in_if[i]),
            AggField::OutIf => u128::from(b.out_if[i]),
            AggField::Router => a(&b.sampler_address[i]),
            AggField::Tos => u128::from(b.ip_tos[i]),
            AggField::SrcVlan => u128::from(b.src_vlan[i]),
            AggField::DstVlan => u128::from(b.dst_vlan[i]),
            AggField::NextHop => a(&b.next_hop[i]),
            AggField::Text(f, src) => u128::from(f.get(b, i, src)),
        };
        match self.mask_bits {
            Some(0) => 0,
            Some(bits) => v & (u128::MAX << (128 - u32::from(bits))),
            None => v,
        }
    }

    fn render(&self, v: u128) -> String {
        match self.field {
            AggField::SrcIp | AggField::DstIp | AggField::Router | AggField::NextHop => {
                let ip = addr_to_ip(&v.to_be_bytes())
                    .map_or_else(|| "0.0.0.0".to_string(), |ip| ip.to_string());
                match self.shown_bits {
                    Some(b) => format!("{ip}/{b}"),
                    None => ip,
                }
            }
            AggField::Proto => proto_name(v as u8).map_or_else(|| v.to_string(), str::to_string),
            AggField::Text(..) => crate::text::show(v as u32),
            _ => v.to_string(),
        }
    }
}

/// Parses `srcip,dstport` / `srcip4/24,dstip6/64` (nfdump's `-A` syntax).
pub fn parse_keys(spec: &str) -> Result<Vec<AggKey>, String> {
    let mut out = Vec::new();
    for raw in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let lower = raw.to_ascii_lowercase();
        let (base, bits) = match lower.split_once('/') {
            Some((b, n)) => (
                b.to_string(),
                Some(
                    n.parse::<u8>()
                        .map_err(|_| format!("`{raw}`: the prefix length must be a number"))?,
                ),
            ),
            None => (lower.clone(), None),
        };
        let (name, v4) = if let Some(b) = base.strip_suffix('4') {
            (b.to_string(), Some(true))
        } else if let Some(b) = base.strip_suffix('6') {
            (b.to_string(), Some(false))
        } else {
            (base.clone(), None)
        };
        let (field, label): (AggField, &'static str) = match name.as_str() {
            "srcip" => (AggField::SrcIp, "srcip"),
            "dstip" => (AggField::DstIp, "dstip"),
            "srcport" => (AggField::SrcPort, "srcport"),
            "dstport" => (AggField::DstPort, "dstport"),
            "proto" => (AggField::Proto, "proto"),
            "srcas" => (AggField::SrcAs, "srcas"),
            "dstas" => (AggField::DstAs, "dstas"),
            "inif" => (AggField::InIf, "inif"),
            "outif" => (AggField::OutIf, "outif"),
            "router" => (AggField::Router, "router"),
            "tos" => (AggField::Tos, "tos"),
            "srcvlan" => (AggField::SrcVlan, "srcvlan"),
            "dstvlan" => (AggField::DstVlan, "dstvlan"),
            "nexthop" => (AggField::NextHop, "nexthop"),
            other => match crate::text::parse_key(other) {
                // Both-sided text keys (`geo`) are statistics only: a group needs one value.
                Some((f, side)) if side != crate::text::Side::Both => {
                    let label = TEXT_LABELS
                        .iter()
                        .find(|l| **l == other)
                        .copied()
                        .unwrap_or("text");
                    (AggField::Text(f, side == crate::text::Side::Src), label)
                }
                _ => {
                    return Err(format!(
                        "unknown aggregation key `{raw}`: use srcip, dstip, srcport, dstport, proto, srcas, dstas, inif, outif, router, tos, srcvlan, dstvlan, nexthop, or an enrichment key with its side ({}); mask addresses as srcip4/24 or dstip6/64",
                        crate::text::key_names()
                    ));
                }
            },
        };
        let is_addr = matches!(
            field,
            AggField::SrcIp | AggField::DstIp | AggField::Router | AggField::NextHop
        );
        let mask_bits = match (bits, v4) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(format!(
                    "`{raw}`: say which family the mask is for: {name}4/N or {name}6/N"
                ));
            }
            (None, Some(_)) if !is_addr => {
                return Err(format!("`{raw}`: only addresses take a 4/6 suffix"));
            }
            (None, Some(_)) => None,
            (Some(n), Some(true)) if n <= 32 => Some(96 + n),
            (Some(n), Some(false)) if n <= 128 => Some(n),
            (Some(_), Some(v4)) => {
                return Err(format!(
                    "`{raw}`: the prefix length must be at most {}",
                    if v4 { 32 } else { 128 }
                ));
            }
        };
        if !is_addr && bits.is_some() {
            return Err(format!("`{raw}`: only addresses can be masked"));
        }
        out.push(AggKey {
            field,
            mask_bits,
            name: label,
            shown_bits: bits,
        });
    }
    if out.is_empty() {
        return Err("no aggregation key given: e.g. -A srcip,dstport".into());
    }
    if out.len() > MAX_KEYS {
        return Err(format!("at most {MAX_KEYS} aggregation keys"));
    }
    Ok(out)
}

/// How aggregated rows are ordered (`-O`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOrder {
    /// First seen, ascending (the default).
    Tstart,
    /// Last seen, ascending.
    Tend,
    /// Flows, descending.
    Flows,
    /// Packets, descending.
    Packets,
    /// Bytes, descending.
    Bytes,
    /// Packets per second, descending.
    Pps,
    /// Bits per second, descending.
    Bps,
    /// Bytes per packet, descending.
    Bpp,
}

/// Parses `-O` values.
pub fn parse_order(s: &str) -> Result<AggOrder, String> {
    Ok(match s.to_ascii_lowercase().as_str() {
        "tstart" => AggOrder::Tstart,
        "tend" => AggOrder::Tend,
        "flows" => AggOrder::Flows,
        "packets" => AggOrder::Packets,
        "bytes" => AggOrder::Bytes,
        "pps" => AggOrder::Pps,
        "bps" => AggOrder::Bps,
        "bpp" => AggOrder::Bpp,
        other => {
            return Err(format!(
                "unknown order `{other}`: use tstart, tend, flows, packets, bytes, pps, bps or bpp"
            ));
        }
    })
}

/// One group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggRow {
    /// The key values, rendered, in key order.
    pub key: Vec<String>,
    /// Flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// First start, ns.
    pub first_ns: u64,
    /// Last end, ns.
    pub last_ns: u64,
}

impl AggRow {
    /// Duration, seconds.
    pub fn duration_s(&self) -> f64 {
        self.last_ns.saturating_sub(self.first_ns) as f64 / 1e9
    }
    /// Packets per second.
    pub fn pps(&self) -> u64 {
        crate::stats::per_second(self.packets as f64, self.first_ns, self.last_ns)
    }
    /// Bits per second.
    pub fn bps(&self) -> u64 {
        crate::stats::per_second(self.bytes as f64 * 8.0, self.first_ns, self.last_ns)
    }
    /// Bytes per packet.
    pub fn bpp(&self) -> u64 {
        self.bytes.checked_div(self.packets).unwrap_or(0)
    }
}

/// An aggregation being accumulated.
#[derive(Debug, Clone)]
pub struct AggAcc {
    keys: Vec<AggKey>,
    map: FxHashMap<[u128; MAX_KEYS], Sums>,
}

impl AggAcc {
    /// An empty accumulator.
    pub fn new(keys: &[AggKey]) -> AggAcc {
        AggAcc {
            keys: keys.to_vec(),
            map: FxHashMap::default(),
        }
    }

    /// Adds row `i` of `b` (already known to match).
    #[inline]
    pub fn add_row(&mut self, b: &FlowBatch, i: usize) {
        let mut k = [0u128; MAX_KEYS];
        for (j, key) in self.keys.iter().enumerate() {
            k[j] = key.value(b, i);
        }
        self.map.entry(k).or_insert(Sums::EMPTY).add(b, i);
    }

    /// Folds in a partial accumulator of the same keys.
    pub fn merge(&mut self, other: AggAcc) {
        for (k, o) in other.map {
            self.map.entry(k).or_insert(Sums::EMPTY).merge(&o);
        }
    }

    /// Rows in `order` (ties by key), at most `n`.
    pub fn finish(self, order: AggOrder, n: Option<usize>) -> Vec<AggRow> {
        let mut v: Vec<([u128; MAX_KEYS], AggRow)> = self
            .map
            .into_iter()
            .map(|(k, s)| {
                (
                    k,
                    AggRow {
                        key: Vec::new(),
                        flows: s.flows,
                        packets: s.packets,
                        bytes: s.bytes,
                        first_ns: s.first_ns,
                        last_ns: s.last_ns,
                    },
                )
            })
            .collect();
        let rank = |r: &AggRow| -> (u64, bool) {
            match order {
                AggOrder::Tstart => (r.first_ns, false),
                AggOrder::Tend => (r.last_ns, false),
                AggOrder::Flows => (r.flows, true),
                AggOrder::Packets => (r.packets, true),
                AggOrder::Bytes => (r.bytes, true),
                AggOrder::Pps => (r.pps(), true),
                AggOrder::Bps => (r.bps(), true),
                AggOrder::Bpp => (r.bpp(), true),
            }
        };
        v.sort_by(|a, b| {
            let (ra, desc) = rank(&a.1);
            let (rb, _) = rank(&b.1);
            let o = if desc { rb.cmp(&ra) } else { ra.cmp(&rb) };
            o.then(a.0.cmp(&b.0))
        });
        if let Some(n) = n {
            v.truncate(n);
        }
        let keys = self.keys;
        v.into_iter()
            .map(|(k, mut r)| {
                r.key = keys.iter().zip(k).map(|(key, x)| key.render(x)).collect();
                r
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowsight_schema::{FlowRecord, addr_from_ip};

    #[test]
    fn keys_parse_like_nfdump() {
        let k = parse_keys("srcip4/24,dstport").unwrap();
        assert_eq!(k[0].name(), "srcip/24");
        assert_eq!(k[0].mask_bits, Some(120));
        assert_eq!(k[1].field, AggField::DstPort);
        assert!(parse_keys("srcip/24").unwrap_err().contains("srcip4/N"));
        assert!(parse_keys("srcip4/40").unwrap_err().contains("at most 32"));
        assert!(
            parse_keys("dstport4")
                .unwrap_err()
                .contains("only addresses")
        );
        assert!(
            parse_keys("colour")
                .unwrap_err()
                .contains("unknown aggregation key")
        );
    }

    #[test]
    fn masked_addresses_group_together() {
        let mut b = FlowBatch::default();
        for (ip, bytes) in [("10.1.2.3", 100u64), ("10.1.2.200", 50), ("10.1.3.1", 7)] {
            b.push(&FlowRecord {
                src_addr: addr_from_ip(ip.parse().unwrap()),
                bytes,
                packets: 1,
                time_flow_start_ns: 5,
                time_flow_end_ns: 6,
                ..FlowRecord::default()
            });
        }
        let keys = parse_keys("srcip4/24").unwrap();
        let mut acc = AggAcc::new(&keys);
        for i in 0..b.len() {
            acc.add_row(&b, i);
        }
        let rows = acc.finish(AggOrder::Bytes, None);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].key, vec!["10.1.2.0/24".to_string()]);
        assert_eq!((rows[0].flows, rows[0].bytes), (2, 150));
        assert_eq!(rows[1].key, vec!["10.1.3.0/24".to_string()]);
    }
}
