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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// Width of the key's values in bits.
    fn bits(&self) -> u32 {
        match self.field {
            AggField::SrcIp | AggField::DstIp | AggField::Router | AggField::NextHop => 128,
            AggField::SrcPort | AggField::DstPort | AggField::SrcVlan | AggField::DstVlan => 16,
            AggField::Proto | AggField::Tos => 8,
            AggField::SrcAs | AggField::DstAs | AggField::InIf | AggField::OutIf => 32,
            AggField::Text(..) => 32,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

/// A group's key: the key values packed MSB-first into 128-bit words in key order (see
/// [`Layout`]), unused words zero. Comparing two packed keys compares their values in key
/// order, which is the ties rule of [`AggAcc::finish`].
pub type Packed = [u128; MAX_KEYS];

/// Where each key's value sits in a packed key. Most aggregations fit one or two words
/// (`srcip,dstip` is two, `srcport,dstport,proto` one): the hash tables then hold 16 or 32
/// byte keys instead of 96, which is what makes large aggregations fast (half the memory
/// traffic, a third of the hashing).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Per key: word, shift, width in bits.
    slots: Vec<(usize, u32, u32)>,
    words: usize,
}

impl Layout {
    fn of(keys: &[AggKey]) -> Layout {
        let mut slots = Vec::with_capacity(keys.len());
        let (mut word, mut used) = (0usize, 0u32);
        for k in keys {
            let w = k.bits();
            if used + w > 128 {
                word += 1;
                used = 0;
            }
            slots.push((word, 128 - used - w, w));
            used += w;
        }
        Layout {
            words: if keys.is_empty() { 0 } else { word + 1 },
            slots,
        }
    }

    /// Words a packed key uses.
    pub fn words(&self) -> usize {
        self.words
    }

    /// The key values of a packed key, in key order.
    fn unpack(&self, k: &Packed) -> impl Iterator<Item = u128> + '_ {
        let k = *k;
        self.slots.iter().map(move |&(w, shift, bits)| {
            let v = k[w] >> shift;
            if bits == 128 {
                v
            } else {
                v & ((1u128 << bits) - 1)
            }
        })
    }
}

/// Groups keyed by `W`-word packed keys.
type Groups<const W: usize> = FxHashMap<[u128; W], Sums>;

#[derive(Debug, Clone)]
enum Maps {
    W1(Groups<1>),
    W2(Groups<2>),
    Wide(Groups<MAX_KEYS>),
}

fn widen<const W: usize>(k: &[u128; W]) -> Packed {
    let mut p = [0u128; MAX_KEYS];
    p[..W].copy_from_slice(k);
    p
}

/// An aggregation being accumulated.
#[derive(Debug, Clone)]
pub struct AggAcc {
    keys: Vec<AggKey>,
    layout: Layout,
    map: Maps,
}

impl AggAcc {
    /// An empty accumulator.
    pub fn new(keys: &[AggKey]) -> AggAcc {
        let layout = Layout::of(keys);
        let map = match layout.words {
            0 | 1 => Maps::W1(FxHashMap::default()),
            2 => Maps::W2(FxHashMap::default()),
            _ => Maps::Wide(FxHashMap::default()),
        };
        AggAcc {
            keys: keys.to_vec(),
            layout,
            map,
        }
    }

    #[inline]
    fn pack<const W: usize>(
        keys: &[AggKey],
        layout: &Layout,
        b: &FlowBatch,
        i: usize,
    ) -> [u128; W] {
        let mut k = [0u128; W];
        for (key, &(w, shift, _)) in keys.iter().zip(&layout.slots) {
            k[w] |= key.value(b, i) << shift;
        }
        k
    }

    /// The packed key of row `i` of `b`.
    #[inline]
    pub fn packed_key(&self, b: &FlowBatch, i: usize) -> Packed {
        Self::pack(&self.keys, &self.layout, b, i)
    }

    /// Adds row `i` of `b` (already known to match).
    #[inline]
    pub fn add_row(&mut self, b: &FlowBatch, i: usize) {
        let (keys, layout) = (&self.keys, &self.layout);
        match &mut self.map {
            Maps::W1(m) => m
                .entry(Self::pack(keys, layout, b, i))
                .or_insert(Sums::EMPTY),
            Maps::W2(m) => m
                .entry(Self::pack(keys, layout, b, i))
                .or_insert(Sums::EMPTY),
            Maps::Wide(m) => m
                .entry(Self::pack(keys, layout, b, i))
                .or_insert(Sums::EMPTY),
        }
        .add(b, i);
    }

    /// Folds in a partial accumulator of the same keys.
    pub fn merge(&mut self, other: AggAcc) {
        fn into<const W: usize>(a: &mut Groups<W>, b: Groups<W>) {
            for (k, o) in b {
                a.entry(k).or_insert(Sums::EMPTY).merge(&o);
            }
        }
        match (&mut self.map, other.map) {
            (Maps::W1(a), Maps::W1(b)) => into(a, b),
            (Maps::W2(a), Maps::W2(b)) => into(a, b),
            (Maps::Wide(a), Maps::Wide(b)) => into(a, b),
            // Same keys give the same layout: unreachable, but never panic.
            (_, other) => {
                for (k, o) in Self::entries_of(other) {
                    self.merge_packed(&k, &o);
                }
            }
        }
    }

    /// Adds the sums of one packed group.
    pub fn merge_packed(&mut self, k: &Packed, s: &Sums) {
        match &mut self.map {
            Maps::W1(m) => m.entry([k[0]]).or_insert(Sums::EMPTY),
            Maps::W2(m) => m.entry([k[0], k[1]]).or_insert(Sums::EMPTY),
            Maps::Wide(m) => m.entry(*k).or_insert(Sums::EMPTY),
        }
        .merge(s);
    }

    /// The sums of one packed group, if it has flows.
    pub fn get_packed(&self, k: &Packed) -> Option<&Sums> {
        match &self.map {
            Maps::W1(m) => m.get(&[k[0]]),
            Maps::W2(m) => m.get(&[k[0], k[1]]),
            Maps::Wide(m) => m.get(k),
        }
    }

    /// Groups held.
    pub fn len(&self) -> usize {
        match &self.map {
            Maps::W1(m) => m.len(),
            Maps::W2(m) => m.len(),
            Maps::Wide(m) => m.len(),
        }
    }

    /// Whether no flow was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The keys' layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    fn entries_of(map: Maps) -> Vec<(Packed, Sums)> {
        fn all<const W: usize>(m: Groups<W>) -> Vec<(Packed, Sums)> {
            m.into_iter().map(|(k, s)| (widen(&k), s)).collect()
        }
        match map {
            Maps::W1(m) => all(m),
            Maps::W2(m) => all(m),
            Maps::Wide(m) => all(m),
        }
    }

    /// The `n` first groups in `order` (ties by key), packed, unsorted beyond that: a
    /// selection, not a sort of every group.
    pub fn top_packed(&self, order: AggOrder, n: usize) -> Vec<(Packed, Sums)> {
        fn pick<const W: usize>(m: &Groups<W>, order: AggOrder, n: usize) -> Vec<(Packed, Sums)> {
            let mut v: Vec<([u128; W], Sums)> = m.iter().map(|(k, s)| (*k, *s)).collect();
            select(&mut v, order, n);
            v.iter().map(|(k, s)| (widen(k), *s)).collect()
        }
        match &self.map {
            Maps::W1(m) => pick(m, order, n),
            Maps::W2(m) => pick(m, order, n),
            Maps::Wide(m) => pick(m, order, n),
        }
    }

    /// Rows in `order` (ties by key), at most `n`.
    pub fn finish(self, order: AggOrder, n: Option<usize>) -> Vec<AggRow> {
        fn pick<const W: usize>(
            m: Groups<W>,
            order: AggOrder,
            n: Option<usize>,
        ) -> Vec<(Packed, Sums)> {
            let mut v: Vec<([u128; W], Sums)> = m.into_iter().collect();
            select(&mut v, order, n.unwrap_or(usize::MAX));
            v.iter().map(|(k, s)| (widen(k), *s)).collect()
        }
        let top = match self.map {
            Maps::W1(m) => pick(m, order, n),
            Maps::W2(m) => pick(m, order, n),
            Maps::Wide(m) => pick(m, order, n),
        };
        render_rows(&self.keys, &self.layout, top)
    }
}

/// Renders packed groups (already in order) as rows.
pub fn render_rows(keys: &[AggKey], layout: &Layout, groups: Vec<(Packed, Sums)>) -> Vec<AggRow> {
    groups
        .into_iter()
        .map(|(k, s)| AggRow {
            key: keys
                .iter()
                .zip(layout.unpack(&k))
                .map(|(key, x)| key.render(x))
                .collect(),
            flows: s.flows,
            packets: s.packets,
            bytes: s.bytes,
            first_ns: s.first_ns,
            last_ns: s.last_ns,
        })
        .collect()
}

/// The value groups are ranked by, and whether descending.
#[inline]
pub fn rank(order: AggOrder, s: &Sums) -> (u64, bool) {
    use crate::stats::per_second;
    match order {
        AggOrder::Tstart => (s.first_ns, false),
        AggOrder::Tend => (s.last_ns, false),
        AggOrder::Flows => (s.flows, true),
        AggOrder::Packets => (s.packets, true),
        AggOrder::Bytes => (s.bytes, true),
        AggOrder::Pps => (per_second(s.packets as f64, s.first_ns, s.last_ns), true),
        AggOrder::Bps => (
            per_second(s.bytes as f64 * 8.0, s.first_ns, s.last_ns),
            true,
        ),
        AggOrder::Bpp => (s.bytes.checked_div(s.packets).unwrap_or(0), true),
    }
}

/// Whether group `a` comes before group `b` in `order` (ties by packed key).
#[inline]
pub fn ordering<K: Ord>(order: AggOrder, a: (&K, &Sums), b: (&K, &Sums)) -> std::cmp::Ordering {
    let (ra, desc) = rank(order, a.1);
    let (rb, _) = rank(order, b.1);
    let o = if desc { rb.cmp(&ra) } else { ra.cmp(&rb) };
    o.then_with(|| a.0.cmp(b.0))
}

/// Keeps the first `n` of `v` in `order`, sorted.
fn select<K: Ord>(v: &mut Vec<(K, Sums)>, order: AggOrder, n: usize) {
    let cmp = |a: &(K, Sums), b: &(K, Sums)| ordering(order, (&a.0, &a.1), (&b.0, &b.1));
    if n < v.len() {
        if n == 0 {
            v.clear();
            return;
        }
        v.select_nth_unstable_by(n - 1, cmp);
        v.truncate(n);
    }
    v.sort_unstable_by(cmp);
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

    /// Packed keys of one, two and more words group and order (ties by key values in key
    /// order) exactly as a plain map of the unpacked values does.
    #[test]
    fn packed_keys_group_and_order_like_plain_keys() {
        use std::collections::BTreeMap;
        let mut b = FlowBatch::default();
        let mut x: u64 = 7;
        for _ in 0..3000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = x >> 33;
            b.push(&FlowRecord {
                src_addr: addr_from_ip(format!("10.0.{}.{}", r % 3, (r >> 2) % 5).parse().unwrap()),
                dst_addr: addr_from_ip(format!("2001:db8::{:x}", (r >> 5) % 7).parse().unwrap()),
                src_port: (r >> 8) as u16 % 4,
                dst_port: 65535 - (r >> 10) as u16 % 3,
                proto: [6, 17, 1][(r >> 12) as usize % 3],
                bytes: 100 * ((r >> 14) % 4),
                packets: 1,
                time_flow_start_ns: 5,
                time_flow_end_ns: 6,
                ..FlowRecord::default()
            });
        }
        for (spec, words) in [
            ("srcport,dstport,proto", 1),
            ("srcip,dstip", 2),
            ("srcport,dstip,proto", 3),
            ("dstport,srcip4/24,dstip6/64,proto,srcport", 4),
        ] {
            let keys = parse_keys(spec).unwrap();
            let mut acc = AggAcc::new(&keys);
            let mut plain: BTreeMap<Vec<u128>, (u64, u64)> = BTreeMap::new();
            for i in 0..b.len() {
                acc.add_row(&b, i);
                let k: Vec<u128> = keys.iter().map(|k| k.value(&b, i)).collect();
                let e = plain.entry(k).or_default();
                e.0 += 1;
                e.1 += b.bytes[i];
            }
            assert_eq!(acc.layout().words(), words, "{spec}");
            // Bytes descending, then key values ascending in key order.
            let mut want: Vec<(Vec<u128>, (u64, u64))> = plain.into_iter().collect();
            want.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(&b.0)));
            let want: Vec<(Vec<String>, u64, u64)> = want
                .into_iter()
                .take(25)
                .map(|(k, (f, by))| {
                    (
                        keys.iter().zip(k).map(|(key, v)| key.render(v)).collect(),
                        f,
                        by,
                    )
                })
                .collect();
            let got: Vec<(Vec<String>, u64, u64)> = acc
                .finish(AggOrder::Bytes, Some(25))
                .into_iter()
                .map(|r| (r.key, r.flows, r.bytes))
                .collect();
            assert_eq!(got, want, "{spec}");
        }
    }
}
