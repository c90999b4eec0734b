//! nfdump-style statistics (`-s STAT[/ORDER]`, `-n N`): flows grouped by one key, summed, and
//! ranked, with nfdump's columns (`ts,te,td,pr,val,fl,flP,pkt,pktP,byt,bytP,pps,bps,bpp`).

use crate::filter::Expr;
use crate::text::{Side, TextField};
use flowsight_schema::{FlowBatch, addr_to_ip, proto_name};
use rustc_hash::FxHashMap;
use std::collections::BinaryHeap;
use std::fmt::Write as _;

/// What flows are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatKey {
    /// Source address.
    SrcIp,
    /// Destination address.
    DstIp,
    /// Source and destination address (each flow counts for both).
    Ip,
    /// Source port.
    SrcPort,
    /// Destination port.
    DstPort,
    /// Either port.
    Port,
    /// IP protocol.
    Proto,
    /// Source AS.
    SrcAs,
    /// Destination AS.
    DstAs,
    /// Either AS.
    As,
    /// Input interface.
    InIf,
    /// Output interface.
    OutIf,
    /// Exporter.
    Router,
    /// Type of service.
    Tos,
    /// TCP flags.
    Flags,
    /// VLAN (input).
    Vlan,
    /// An enrichment text field (`srcgeo`, `dstasname`, `tenant`, ...).
    Text(TextField, Side),
}

impl std::fmt::Display for StatKey {
    /// The key as `-s` takes it (`srcip`, `dstgeo`, `inifname`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            StatKey::SrcIp => "srcip",
            StatKey::DstIp => "dstip",
            StatKey::Ip => "ip",
            StatKey::SrcPort => "srcport",
            StatKey::DstPort => "dstport",
            StatKey::Port => "port",
            StatKey::Proto => "proto",
            StatKey::SrcAs => "srcas",
            StatKey::DstAs => "dstas",
            StatKey::As => "as",
            StatKey::InIf => "inif",
            StatKey::OutIf => "outif",
            StatKey::Router => "router",
            StatKey::Tos => "tos",
            StatKey::Flags => "flags",
            StatKey::Vlan => "vlan",
            StatKey::Text(t, side) => {
                let pre = match (side, *t == TextField::IfName) {
                    (Side::Src, true) => "in",
                    (Side::Dst, true) => "out",
                    (Side::Src, false) => "src",
                    (Side::Dst, false) => "dst",
                    (Side::Both, _) => "",
                };
                return write!(f, "{pre}{}", t.word());
            }
        };
        f.write_str(s)
    }
}

/// How the rows are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// flows
    Flows,
    /// packets
    Packets,
    /// bytes
    Bytes,
    /// packets per second
    Pps,
    /// bits per second
    Bps,
    /// bytes per packet
    Bpp,
}

/// Parses `srcip/bytes` style specifications (order defaults to flows, as in nfdump).
pub fn parse_spec(spec: &str) -> Result<(StatKey, Order), String> {
    let (k, o) = spec.split_once('/').unwrap_or((spec, "flows"));
    let key = match k.to_ascii_lowercase().as_str() {
        "srcip" => StatKey::SrcIp,
        "dstip" => StatKey::DstIp,
        "ip" => StatKey::Ip,
        "srcport" => StatKey::SrcPort,
        "dstport" => StatKey::DstPort,
        "port" => StatKey::Port,
        "proto" => StatKey::Proto,
        "srcas" => StatKey::SrcAs,
        "dstas" => StatKey::DstAs,
        "as" => StatKey::As,
        "inif" => StatKey::InIf,
        "outif" => StatKey::OutIf,
        "router" => StatKey::Router,
        "tos" => StatKey::Tos,
        "flags" => StatKey::Flags,
        "vlan" => StatKey::Vlan,
        other => match crate::text::parse_key(other) {
            Some((f, side)) => StatKey::Text(f, side),
            None => {
                return Err(format!(
                    "unknown statistic `{other}`: use srcip, dstip, ip, srcport, dstport, port, proto, srcas, dstas, as, inif, outif, router, tos, flags, vlan, or an enrichment key: {}",
                    crate::text::key_names()
                ));
            }
        },
    };
    let order = match o.to_ascii_lowercase().as_str() {
        "flows" => Order::Flows,
        "packets" => Order::Packets,
        "bytes" => Order::Bytes,
        "pps" => Order::Pps,
        "bps" => Order::Bps,
        "bpp" => Order::Bpp,
        other => {
            return Err(format!(
                "unknown order `{other}`: use flows, packets, bytes, pps, bps or bpp"
            ));
        }
    };
    Ok((key, order))
}

/// One row of a statistic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The key, rendered as nfdump renders it.
    pub value: String,
    /// The key as a number (addresses as 128-bit, IPv4 mapped).
    pub raw: u128,
    /// Flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// First flow start (ns).
    pub first_ns: u64,
    /// Last flow end (ns).
    pub last_ns: u64,
}

/// `v` per second over `[first_ns, last_ns]`, 0 for an instantaneous span (as nfdump).
pub(crate) fn per_second(v: f64, first_ns: u64, last_ns: u64) -> u64 {
    let d = last_ns.saturating_sub(first_ns) as f64 / 1e9;
    if d > 0.0 { (v / d) as u64 } else { 0 }
}

impl Row {
    fn duration_s(&self) -> f64 {
        self.last_ns.saturating_sub(self.first_ns) as f64 / 1e9
    }
    /// Packets per second over the row's time span (0 if instantaneous).
    pub fn pps(&self) -> u64 {
        per_second(self.packets as f64, self.first_ns, self.last_ns)
    }
    /// Bits per second over the row's time span.
    pub fn bps(&self) -> u64 {
        per_second(self.bytes as f64 * 8.0, self.first_ns, self.last_ns)
    }
    /// Bytes per packet.
    pub fn bpp(&self) -> u64 {
        self.bytes.checked_div(self.packets).unwrap_or(0)
    }
}

/// A computed statistic: the top rows and the totals they are a share of.
#[derive(Debug, Clone)]
pub struct Stat {
    /// Key.
    pub key: StatKey,
    /// Ranked rows (at most the requested number).
    pub rows: Vec<Row>,
    /// Flows, packets, bytes over every matching flow (for the percent columns).
    pub totals: (u64, u64, u64),
    /// Flows, packets, bytes of the values left out of `rows` (the "other" bucket). For a
    /// two-sided key (`ip`, `port`, ...) a flow counts once per side, as in the rows.
    pub other: (u64, u64, u64),
}

/// The raw values of key `k` for flow `i` (two for a two-sided key).
pub(crate) fn key_values(b: &FlowBatch, i: usize, k: StatKey, out: &mut Vec<u128>) {
    let a = |x: &[u8; 16]| u128::from_be_bytes(*x);
    match k {
        StatKey::SrcIp => out.push(a(&b.src_addr[i])),
        StatKey::DstIp => out.push(a(&b.dst_addr[i])),
        StatKey::Ip => {
            out.push(a(&b.src_addr[i]));
            out.push(a(&b.dst_addr[i]));
        }
        StatKey::SrcPort => out.push(b.src_port[i] as u128),
        StatKey::DstPort => out.push(b.dst_port[i] as u128),
        StatKey::Port => {
            out.push(b.src_port[i] as u128);
            out.push(b.dst_port[i] as u128);
        }
        StatKey::Proto => out.push(b.proto[i] as u128),
        StatKey::SrcAs => out.push(b.src_as[i] as u128),
        StatKey::DstAs => out.push(b.dst_as[i] as u128),
        StatKey::As => {
            out.push(b.src_as[i] as u128);
            out.push(b.dst_as[i] as u128);
        }
        StatKey::InIf => out.push(b.in_if[i] as u128),
        StatKey::OutIf => out.push(b.out_if[i] as u128),
        StatKey::Router => out.push(a(&b.sampler_address[i])),
        StatKey::Tos => out.push(b.ip_tos[i] as u128),
        StatKey::Flags => out.push(b.tcp_flags[i] as u128),
        StatKey::Vlan => out.push(b.src_vlan[i] as u128),
        StatKey::Text(f, Side::Src) => out.push(f.get(b, i, true) as u128),
        StatKey::Text(f, Side::Dst) => out.push(f.get(b, i, false) as u128),
        StatKey::Text(f, Side::Both) => {
            out.push(f.get(b, i, true) as u128);
            out.push(f.get(b, i, false) as u128);
        }
    }
    // Like nfdump, a two-sided key counts the flow once per side, also when both sides are
    // equal (an ICMP flow with ports 0/0 counts twice under port 0).
}

fn render(k: StatKey, v: u128) -> String {
    match k {
        StatKey::SrcIp | StatKey::DstIp | StatKey::Ip | StatKey::Router => {
            addr_to_ip(&v.to_be_bytes()).map_or_else(|| "0.0.0.0".to_string(), |ip| ip.to_string())
        }
        StatKey::Proto => proto_name(v as u8).map_or_else(|| v.to_string(), str::to_string),
        StatKey::Flags => {
            let mut s = String::new();
            for (bit, c) in [(32, 'U'), (16, 'A'), (8, 'P'), (4, 'R'), (2, 'S'), (1, 'F')] {
                s.push(if v as u16 & bit != 0 { c } else { '.' });
            }
            s
        }
        StatKey::Text(..) => crate::text::show(v as u32),
        _ => v.to_string(),
    }
}

/// A port with its IANA service name, for tables (`443/https`).
fn with_service(k: StatKey, r: &Row) -> String {
    match k {
        StatKey::SrcPort | StatKey::DstPort | StatKey::Port => {
            match flowsight_enrich::services::port_name(0, r.raw as u16) {
                Some(n) => format!("{}/{n}", r.value),
                None => r.value.clone(),
            }
        }
        _ => r.value.clone(),
    }
}

/// The columns a statistic on `key` reads.
pub fn key_columns(key: StatKey) -> Vec<&'static str> {
    match key {
        StatKey::SrcIp => &["src_addr"][..],
        StatKey::DstIp => &["dst_addr"],
        StatKey::Ip => &["src_addr", "dst_addr"],
        StatKey::SrcPort => &["src_port"],
        StatKey::DstPort => &["dst_port"],
        StatKey::Port => &["src_port", "dst_port"],
        StatKey::Proto => &["proto"],
        StatKey::SrcAs => &["src_as"],
        StatKey::DstAs => &["dst_as"],
        StatKey::As => &["src_as", "dst_as"],
        StatKey::InIf => &["in_if"],
        StatKey::OutIf => &["out_if"],
        StatKey::Router => &["sampler_address"],
        StatKey::Tos => &["ip_tos"],
        StatKey::Flags => &["tcp_flags"],
        StatKey::Vlan => &["src_vlan"],
        StatKey::Text(f, side) => {
            let (a, b) = f.columns();
            return match side {
                Side::Src => vec![a],
                Side::Dst => vec![b],
                Side::Both => vec![a, b],
            };
        }
    }
    .to_vec()
}

/// Columns every statistic reads besides its key.
pub const VALUE_COLUMNS: &[&str] = &["packets", "bytes", "time_flow_start_ns", "time_flow_end_ns"];

/// Flows, packets and bytes summed over a set of flows, and the time they span: the running
/// sums of a statistic's key, an aggregation's group, or a query's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sums {
    /// Flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// First flow start, ns (`u64::MAX` when empty).
    pub first_ns: u64,
    /// Last flow end, ns.
    pub last_ns: u64,
}

impl Sums {
    /// No flow yet.
    pub const EMPTY: Sums = Sums {
        flows: 0,
        packets: 0,
        bytes: 0,
        first_ns: u64::MAX,
        last_ns: 0,
    };

    /// Adds one flow of these counts and times.
    #[inline(always)]
    fn add_flow(&mut self, packets: u64, bytes: u64, first_ns: u64, last_ns: u64) {
        self.flows += 1;
        self.packets += packets;
        self.bytes += bytes;
        self.first_ns = self.first_ns.min(first_ns);
        self.last_ns = self.last_ns.max(last_ns);
    }

    /// Adds flow `i` of `b`.
    #[inline]
    pub fn add(&mut self, b: &FlowBatch, i: usize) {
        self.add_flow(
            b.packets[i],
            b.bytes[i],
            b.time_flow_start_ns[i],
            b.time_flow_end_ns[i],
        );
    }

    /// Adds other sums (a partial result of the same set's other part).
    #[inline]
    pub fn merge(&mut self, o: &Sums) {
        self.flows += o.flows;
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.first_ns = self.first_ns.min(o.first_ns);
        self.last_ns = self.last_ns.max(o.last_ns);
    }
}

/// Sums by the value of a key of at most 16 bits: indexed by any `u16` without a check.
type DenseTable = [Sums; 1 << 16];

/// An empty [`DenseTable`], built on the heap (2.6 MB: more than a thread's stack).
fn dense_table() -> Box<DenseTable> {
    match vec![Sums::EMPTY; 1 << 16].into_boxed_slice().try_into() {
        Ok(t) => t,
        Err(_) => unreachable!("a vector of 65 536 entries fits a table of 65 536"),
    }
}

/// The indices of the rows `sel` selects, into `picked`, found without branches: a filter
/// keeping rows at random made a row loop mispredict on every other row (perf, filtered
/// `-s dstport`).
fn pick<'a>(sel: &[bool], picked: &'a mut Vec<u32>) -> &'a [u32] {
    picked.clear();
    // No filter (or one every row passes): the indices without the loop's chain of
    // dependent stores (13% of `-s srcip/bytes`'s fold, perf).
    if sel.iter().all(|&s| s) {
        picked.extend(0..sel.len() as u32);
        return picked;
    }
    picked.resize(sel.len(), 0);
    let mut n = 0;
    for (i, &s) in sel.iter().enumerate() {
        picked[n] = i as u32;
        n += usize::from(s);
    }
    picked.truncate(n);
    picked
}

/// The columns a fold sums, cut to one length with the keys (at most `rows`), so that one
/// comparison checks a row against all of them: per-column bounds checks were most of the
/// fold loops' instructions (a copy of the port loop over the bench's rows: 10.3 -> 8.2 ns
/// a selected row).
struct Cols<'a, K> {
    keys: &'a [K],
    packets: &'a [u64],
    bytes: &'a [u64],
    first: &'a [u64],
    last: &'a [u64],
}

impl<'a, K> Cols<'a, K> {
    fn new(b: &'a FlowBatch, keys: &'a [K], rows: usize) -> Cols<'a, K> {
        let n = rows
            .min(keys.len())
            .min(b.packets.len())
            .min(b.bytes.len())
            .min(b.time_flow_start_ns.len())
            .min(b.time_flow_end_ns.len());
        Cols {
            keys: &keys[..n],
            packets: &b.packets[..n],
            bytes: &b.bytes[..n],
            first: &b.time_flow_start_ns[..n],
            last: &b.time_flow_end_ns[..n],
        }
    }
}

/// Rows ahead of the one summed whose sums the port and address-dictionary folds ask the
/// memory for.
const PREFETCH_AHEAD: usize = 16;

/// Asks for the cache line holding `x`, without waiting for it (a hint: no effect on what
/// the program computes).
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: PREFETCHT0 (SSE, in every x86-64 CPU) only hints the cache: it never faults and
    // reads nothing into the program, whatever the address; here it is a valid reference.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (x as *const T).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// A statistic being accumulated: feed it batches (from any number of files or threads),
/// merge partial ones, then [`StatAcc::finish`].
#[derive(Debug, Clone)]
pub struct StatAcc {
    key: StatKey,
    // Keyed by the raw value; the per-key sums are kept small (no rendered string) so the
    // table stays in cache: this loop is most of a statistic's cost.
    acc: FxHashMap<u128, Sums>,
    totals: (u64, u64, u64),
    keys: Vec<u128>,
    // Keys of at most 16 bits (ports, protocols, flags) are summed in a table indexed by
    // the key (`touched` lists the keys in it), folded into `acc` when read: no hashing
    // per row, nor per batch (a batch can hold tens of thousands of ports).
    dense: Option<Box<DenseTable>>,
    touched: Vec<u16>,
    // Scratch: the rows of a batch that are selected.
    picked: Vec<u32>,
    // Address keys read as their file's dictionary: sums per dictionary index (`dict`, the
    // indices in it listed in `dict_touched`), folded into `acc` by value when another
    // dictionary comes or when read. One hash lookup per distinct address and file instead
    // of one per row: that lookup was a third of `-s srcip/bytes` (perf).
    dict: Vec<Sums>,
    dict_touched: Vec<u32>,
    dict_values: Vec<u128>,
    dict_generation: u64,
}

impl StatAcc {
    /// An empty accumulator for `key`.
    pub fn new(key: StatKey) -> StatAcc {
        StatAcc {
            key,
            acc: FxHashMap::default(),
            totals: (0, 0, 0),
            keys: Vec::with_capacity(2),
            dense: None,
            touched: Vec::new(),
            picked: Vec::new(),
            dict: Vec::new(),
            dict_touched: Vec::new(),
            dict_values: Vec::new(),
            dict_generation: 0,
        }
    }

    /// The address column whose dictionary [`StatAcc::add_selected_dict`] takes for this
    /// key, if its key is one address column.
    pub fn dict_column(key: StatKey) -> Option<&'static str> {
        match key {
            StatKey::SrcIp => Some("src_addr"),
            StatKey::DstIp => Some("dst_addr"),
            StatKey::Router => Some("sampler_address"),
            _ => None,
        }
    }

    /// Like [`StatAcc::add_selected`], with the key column given as a dictionary: row `i`'s
    /// key is `values[keys[i]]`. `generation` names the dictionary: equal generations must
    /// come with equal `values` (the store's scan guarantees it). For keys without a
    /// [`StatAcc::dict_column`], the batch's own columns are used.
    pub fn add_selected_dict(
        &mut self,
        b: &FlowBatch,
        sel: &[bool],
        keys: &[u32],
        values: &[flowsight_schema::Addr],
        generation: u64,
    ) {
        if Self::dict_column(self.key).is_none() {
            return self.add_selected(b, sel);
        }
        let n = sel.len().min(b.len()).min(keys.len());
        let sel = &sel[..n];
        if generation != self.dict_generation || self.dict_values.len() != values.len() {
            self.settle_dict();
            self.dict_values.clear();
            self.dict_values
                .extend(values.iter().map(|v| u128::from_be_bytes(*v)));
            if self.dict.len() < values.len() {
                self.dict.resize(values.len(), Sums::EMPTY);
            }
            self.dict_generation = generation;
        }
        // The selected rows, then the sums with one bounds check per row for the columns
        // (as in `dense`): the row loop with a branch per row and a check per column was a
        // fifth of `-s srcip/bytes` (perf).
        let picked = pick(sel, &mut self.picked);
        let Cols {
            keys,
            packets,
            bytes,
            first,
            last,
        } = Cols::new(b, keys, n);
        let rows = keys.len();
        // Locals, so that the table's address and length stay in registers (through
        // `self` they were reloaded after every push onto the touched list).
        let (dict, touched) = (&mut self.dict[..], &mut self.dict_touched);
        let (mut flows, mut p_sum, mut b_sum) = (0, 0, 0);
        for (j, &i) in picked.iter().enumerate() {
            // As in `dense`: a few thousand addresses' sums are out of the nearer caches
            // once a batch's columns have passed through them (perf: a quarter of this
            // loop's samples on the load of a key's sums).
            if let Some(s) = picked
                .get(j + PREFETCH_AHEAD)
                .and_then(|&a| keys.get(a as usize))
                .and_then(|&k| dict.get(k as usize))
            {
                prefetch(s);
            }
            let i = i as usize;
            if i >= rows {
                break;
            }
            flows += 1;
            p_sum += packets[i];
            b_sum += bytes[i];
            let k = keys[i];
            let Some(s) = dict.get_mut(k as usize) else {
                continue;
            };
            if s.flows == 0 {
                touched.push(k);
            }
            s.add_flow(packets[i], bytes[i], first[i], last[i]);
        }
        self.totals.0 += flows;
        self.totals.1 += p_sum;
        self.totals.2 += b_sum;
    }

    fn add_totals(&mut self, b: &FlowBatch, sel: &[bool]) {
        for ((&s, &p), &y) in sel.iter().zip(&b.packets).zip(&b.bytes) {
            let s = u64::from(s);
            self.totals.0 += s;
            self.totals.1 += p * s;
            self.totals.2 += y * s;
        }
    }

    /// Moves the dictionary table's sums into the map.
    fn settle_dict(&mut self) {
        for k in self.dict_touched.drain(..) {
            let (Some(d), Some(&v)) = (
                self.dict.get_mut(k as usize),
                self.dict_values.get(k as usize),
            ) else {
                continue;
            };
            let s = std::mem::replace(d, Sums::EMPTY);
            self.acc.entry(v).or_insert(Sums::EMPTY).merge(&s);
        }
    }

    /// Adds the rows of `b` whose entry in `sel` is set (as [`StatAcc::add_row`] would,
    /// row by row), choosing the key's column once per batch rather than per row.
    pub fn add_selected(&mut self, b: &FlowBatch, sel: &[bool]) {
        let n = sel.len().min(b.len());
        let sel = &sel[..n];
        // Keys of one direct-table column count the totals in their own loop.
        match self.key {
            StatKey::SrcPort => return self.dense(b, sel, &b.src_port, true),
            StatKey::DstPort => return self.dense(b, sel, &b.dst_port, true),
            StatKey::Flags => return self.dense(b, sel, &b.tcp_flags, true),
            StatKey::Vlan => return self.dense(b, sel, &b.src_vlan, true),
            StatKey::Proto => return self.small(b, sel, &b.proto, true),
            StatKey::Tos => return self.small(b, sel, &b.ip_tos, true),
            _ => {}
        }
        self.add_totals(b, sel);
        let a = |x: &[u8; 16]| u128::from_be_bytes(*x);
        match self.key {
            StatKey::SrcIp => self.hashed(b, sel, |i| a(&b.src_addr[i])),
            StatKey::DstIp => self.hashed(b, sel, |i| a(&b.dst_addr[i])),
            StatKey::Ip => {
                self.hashed(b, sel, |i| a(&b.src_addr[i]));
                self.hashed(b, sel, |i| a(&b.dst_addr[i]));
            }
            StatKey::Router => self.hashed(b, sel, |i| a(&b.sampler_address[i])),
            StatKey::SrcPort
            | StatKey::DstPort
            | StatKey::Flags
            | StatKey::Vlan
            | StatKey::Proto
            | StatKey::Tos => {}
            StatKey::Port => {
                self.dense(b, sel, &b.src_port, false);
                self.dense(b, sel, &b.dst_port, false);
            }
            StatKey::SrcAs => self.hashed(b, sel, |i| u128::from(b.src_as[i])),
            StatKey::DstAs => self.hashed(b, sel, |i| u128::from(b.dst_as[i])),
            StatKey::As => {
                self.hashed(b, sel, |i| u128::from(b.src_as[i]));
                self.hashed(b, sel, |i| u128::from(b.dst_as[i]));
            }
            StatKey::InIf => self.hashed(b, sel, |i| u128::from(b.in_if[i])),
            StatKey::OutIf => self.hashed(b, sel, |i| u128::from(b.out_if[i])),
            StatKey::Text(..) => {
                for (i, _) in sel.iter().enumerate().filter(|(_, s)| **s) {
                    self.add_keys(b, i);
                }
            }
        }
    }

    #[inline]
    fn hashed(&mut self, b: &FlowBatch, sel: &[bool], key: impl Fn(usize) -> u128) {
        for (i, _) in sel.iter().enumerate().filter(|(_, s)| **s) {
            self.acc.entry(key(i)).or_insert(Sums::EMPTY).add(b, i);
        }
    }

    /// Sums the selected rows of `b` into the direct table by `keys` (a column of `b`),
    /// and into the totals when `totals`.
    #[inline]
    fn dense(&mut self, b: &FlowBatch, sel: &[bool], keys: &[u16], totals: bool) {
        let picked = pick(sel, &mut self.picked);
        // The table is one any u16 indexes without a check.
        let Cols {
            keys,
            packets,
            bytes,
            first,
            last,
        } = Cols::new(b, keys, sel.len());
        let rows = keys.len();
        // Locals, so that the table's address stays in a register (see `add_selected_dict`).
        let table: &mut DenseTable = self.dense.get_or_insert_with(dense_table);
        let touched = &mut self.touched;
        let (mut flows, mut p_sum, mut b_sum) = (0, 0, 0);
        for (j, &i) in picked.iter().enumerate() {
            // The sums of a row a few ahead are asked for now: a key's 40 bytes are a
            // cache miss at random in a 2.6 MB table (perf: 43% of the loop's samples sat on
            // that load; filtered `-s dstport` over 10 M flows 141 -> 134 ms).
            if let Some(&k) = picked
                .get(j + PREFETCH_AHEAD)
                .and_then(|&a| keys.get(a as usize))
            {
                prefetch(&table[usize::from(k)]);
            }
            let i = i as usize;
            if i >= rows {
                break;
            }
            let k = keys[i];
            let s = &mut table[usize::from(k)];
            if s.flows == 0 {
                touched.push(k);
            }
            s.add_flow(packets[i], bytes[i], first[i], last[i]);
            flows += 1;
            p_sum += packets[i];
            b_sum += bytes[i];
        }
        if totals {
            self.totals.0 += flows;
            self.totals.1 += p_sum;
            self.totals.2 += b_sum;
        }
    }

    /// [`StatAcc::dense`] for 8-bit keys, of which a batch has a few (protocols): the
    /// selected rows go to four interleaved tables, so that rows of the same key do not
    /// each wait for the previous one's sums to reach memory (`-s proto` spent ~3 ns a row
    /// in the plain loop; perf). The totals are summed from the tables when `totals`.
    fn small(&mut self, b: &FlowBatch, sel: &[bool], keys: &[u8], totals: bool) {
        const WAYS: usize = 4;
        let mut t = [[Sums::EMPTY; 256]; WAYS];
        // Only the selected rows: every row, its sums multiplied by 0 or 1, was a fifth of
        // `-s proto/packets 'bytes > 10000'` (perf).
        let picked = pick(sel, &mut self.picked);
        let Cols {
            keys,
            packets,
            bytes,
            first,
            last,
        } = Cols::new(b, keys, sel.len());
        let rows = keys.len();
        for (j, &i) in picked.iter().enumerate() {
            let i = i as usize;
            if i >= rows {
                break;
            }
            t[j % WAYS][usize::from(keys[i])].add_flow(packets[i], bytes[i], first[i], last[i]);
        }
        let table = self.dense.get_or_insert_with(dense_table);
        for k in 0..256u16 {
            for way in &t {
                let w = &way[usize::from(k)];
                if w.flows == 0 {
                    continue;
                }
                if totals {
                    self.totals.0 += w.flows;
                    self.totals.1 += w.packets;
                    self.totals.2 += w.bytes;
                }
                let d = &mut table[usize::from(k)];
                if d.flows == 0 {
                    self.touched.push(k);
                }
                d.merge(w);
            }
        }
    }

    /// Adds row `i` of `b` (already known to match).
    #[inline]
    pub fn add_row(&mut self, b: &FlowBatch, i: usize) {
        self.totals.0 += 1;
        self.totals.1 += b.packets[i];
        self.totals.2 += b.bytes[i];
        self.add_keys(b, i);
    }

    /// Adds row `i` of `b` to the sums of its key values (not to the totals).
    #[inline]
    fn add_keys(&mut self, b: &FlowBatch, i: usize) {
        self.keys.clear();
        key_values(b, i, self.key, &mut self.keys);
        for &k in &self.keys {
            self.acc.entry(k).or_insert(Sums::EMPTY).add(b, i);
        }
    }

    /// Adds every row of `b` matching `filter`.
    pub fn add(&mut self, b: &FlowBatch, filter: &Expr) {
        for i in 0..b.len() {
            if filter.matches(b, i) {
                self.add_row(b, i);
            }
        }
    }

    /// Folds another partial accumulator of the same key into this one.
    pub fn merge(&mut self, mut other: StatAcc) {
        self.totals.0 += other.totals.0;
        self.totals.1 += other.totals.1;
        self.totals.2 += other.totals.2;
        // Direct tables add up entry by entry: moving 65 536 ports through the map on both
        // sides (and growing it, in fresh memory) was a tenth of a filtered `-s dstport`
        // after its scan (perf).
        match (&mut self.dense, &other.dense) {
            (_, None) => {}
            (None, Some(_)) => {
                std::mem::swap(&mut self.dense, &mut other.dense);
                std::mem::swap(&mut self.touched, &mut other.touched);
            }
            (Some(mine), Some(theirs)) => {
                for k in other.touched.drain(..) {
                    let (o, s) = (&theirs[usize::from(k)], &mut mine[usize::from(k)]);
                    if s.flows == 0 {
                        self.touched.push(k);
                    }
                    s.merge(o);
                }
            }
        }
        self.settle_dict();
        other.settle_dict();
        for (k, o) in other.acc {
            self.acc.entry(k).or_insert(Sums::EMPTY).merge(&o);
        }
    }

    /// Folds a shared partial accumulator (a cached per-file one) into this one.
    pub fn merge_ref(&mut self, other: &StatAcc) {
        self.settle();
        self.totals.0 += other.totals.0;
        self.totals.1 += other.totals.1;
        self.totals.2 += other.totals.2;
        for (k, o) in other.entries() {
            self.acc.entry(k).or_insert(Sums::EMPTY).merge(o);
        }
    }

    /// Moves the direct and dictionary tables' sums into the map.
    fn settle(&mut self) {
        self.settle_dict();
        for k in self.touched.drain(..) {
            if let Some(d) = self.dense.as_mut().map(|t| &mut t[usize::from(k)]) {
                let s = std::mem::replace(d, Sums::EMPTY);
                self.acc
                    .entry(u128::from(k))
                    .or_insert(Sums::EMPTY)
                    .merge(&s);
            }
        }
    }

    /// Every key's sums: the map's, then the direct table's (a key may be in both).
    fn entries(&self) -> impl Iterator<Item = (u128, &Sums)> {
        let dense = self
            .touched
            .iter()
            .filter_map(|&k| Some((u128::from(k), &self.dense.as_ref()?[usize::from(k)])));
        let dict = self.dict_touched.iter().filter_map(|&k| {
            Some((
                *self.dict_values.get(k as usize)?,
                self.dict.get(k as usize)?,
            ))
        });
        self.acc
            .iter()
            .map(|(k, s)| (*k, s))
            .chain(dense)
            .chain(dict)
    }

    /// Flows, packets and bytes of every row added, and the time they span.
    pub fn sums(&self) -> Sums {
        let mut s = Sums::EMPTY;
        s.flows = self.totals.0;
        s.packets = self.totals.1;
        s.bytes = self.totals.2;
        for (_, v) in self.entries() {
            s.first_ns = s.first_ns.min(v.first_ns);
            s.last_ns = s.last_ns.max(v.last_ns);
        }
        s
    }

    /// Releases spare capacity (before the accumulator is kept for long).
    pub fn shrink_to_fit(&mut self) {
        self.settle();
        self.acc.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.dense = None;
        self.touched = Vec::new();
        self.picked = Vec::new();
        self.dict = Vec::new();
        self.dict_touched = Vec::new();
        self.dict_values = Vec::new();
        self.dict_generation = 0;
    }

    /// Distinct values so far.
    pub fn len(&self) -> usize {
        let only_dense = self.touched.iter();
        let only_dict = self.dict_touched.iter();
        self.acc.len()
            + only_dense
                .filter(|&&k| !self.acc.contains_key(&u128::from(k)))
                .count()
            + only_dict
                .filter_map(|&k| self.dict_values.get(k as usize))
                .filter(|v| !self.acc.contains_key(v))
                .count()
    }

    /// Whether no value was seen.
    pub fn is_empty(&self) -> bool {
        self.acc.is_empty() && self.touched.is_empty() && self.dict_touched.is_empty()
    }

    /// The top `n` rows by `order` (ties broken by the key, so output is stable).
    pub fn finish(mut self, order: Order, n: usize) -> Stat {
        self.settle_dict();
        // Keys of the direct table and of the map are then read where they are, unless
        // a key can be in both.
        if !self.acc.is_empty() {
            self.settle();
        }
        let key = self.key;
        let row = |k: u128, s: &Sums| Row {
            value: String::new(),
            raw: k,
            flows: s.flows,
            packets: s.packets,
            bytes: s.bytes,
            first_ns: s.first_ns,
            last_ns: s.last_ns,
        };
        let rank = |r: &Row| match order {
            Order::Flows => r.flows,
            Order::Packets => r.packets,
            Order::Bytes => r.bytes,
            Order::Pps => r.pps(),
            Order::Bps => r.bps(),
            Order::Bpp => r.bpp(),
        };
        // The best `n` in a heap whose top is the worst of them; the rest only summed
        // (no vector of every key: fresh memory is what a one-shot query pays most for).
        let mut top: BinaryHeap<Ranked> = BinaryHeap::with_capacity(n.min(1 << 16) + 1);
        let mut other = (0, 0, 0);
        let mut rest = |s: &Sums| {
            other = (other.0 + s.flows, other.1 + s.packets, other.2 + s.bytes);
        };
        let dense = self
            .touched
            .iter()
            .filter_map(|&k| Some((u128::from(k), self.dense.as_ref()?[usize::from(k)])));
        for (k, s) in self.acc.iter().map(|(k, s)| (*k, *s)).chain(dense) {
            let r = Ranked(rank(&row(k, &s)), k, s);
            if top.len() < n {
                top.push(r);
            } else if top.peek().is_some_and(|worst| r < *worst) {
                if let Some(out) = top.pop() {
                    rest(&out.2);
                }
                top.push(r);
            } else {
                rest(&r.2);
            }
        }
        Stat {
            key,
            rows: top
                .into_sorted_vec()
                .into_iter()
                .map(|Ranked(_, k, s)| {
                    let mut r = row(k, &s);
                    r.value = render(key, k);
                    r
                })
                .collect(),
            totals: self.totals,
            other,
        }
    }
}

/// A key's sums and rank in [`StatAcc::finish`], ordered best first: higher rank, then
/// the smaller key.
struct Ranked(u64, u128, Sums);

impl PartialEq for Ranked {
    fn eq(&self, o: &Ranked) -> bool {
        self.cmp(o) == std::cmp::Ordering::Equal
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Ranked) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Ranked {
    fn cmp(&self, o: &Ranked) -> std::cmp::Ordering {
        o.0.cmp(&self.0).then(self.1.cmp(&o.1))
    }
}

/// Computes statistic `key` over the flows of `b` matching `filter`, top `n` by `order`
/// (ties broken by the key, so output is stable).
pub fn compute(b: &FlowBatch, filter: &Expr, key: StatKey, order: Order, n: usize) -> Stat {
    let mut acc = StatAcc::new(key);
    acc.add(b, filter);
    acc.finish(order, n)
}

impl Stat {
    /// Share of the totals, in percent.
    fn pct(a: u64, t: u64) -> f64 {
        if t == 0 {
            0.0
        } else {
            a as f64 * 100.0 / t as f64
        }
    }

    /// An aligned table with percent-of-total columns and a summary line, for terminals.
    pub fn to_table(&self) -> String {
        let pct = Self::pct;
        let t = self.totals;
        let mut s = format!(
            "{:<40} {:>10} {:>7} {:>12} {:>7} {:>15} {:>7} {:>6}\n",
            "value", "flows", "flows%", "packets", "pkts%", "bytes", "bytes%", "bpp"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<40} {:>10} {:>6.1}% {:>12} {:>6.1}% {:>15} {:>6.1}% {:>6}",
                with_service(self.key, r),
                r.flows,
                pct(r.flows, t.0),
                r.packets,
                pct(r.packets, t.1),
                r.bytes,
                pct(r.bytes, t.2),
                r.bpp()
            );
        }
        let _ = writeln!(
            s,
            "Summary: total flows: {}, total packets: {}, total bytes: {}",
            t.0, t.1, t.2
        );
        s
    }

    /// nfdump's CSV layout: `ts,te,td,pr,val,fl,flP,pkt,pktP,byt,bytP,pps,bps,bpp` (protocols
    /// as numbers, as nfdump writes them there).
    pub fn to_csv(&self) -> String {
        let mut s = String::from("ts,te,td,pr,val,fl,flP,pkt,pktP,byt,bytP,pps,bps,bpp\n");
        let pct = Self::pct;
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{},{},{:.3},any,{},{},{:.1},{},{:.1},{},{:.1},{},{},{}",
                crate::utc_time(r.first_ns),
                crate::utc_time(r.last_ns),
                r.duration_s(),
                if self.key == StatKey::Proto {
                    r.raw.to_string()
                } else {
                    crate::csv_field(&r.value).into_owned()
                },
                r.flows,
                pct(r.flows, self.totals.0),
                r.packets,
                pct(r.packets, self.totals.1),
                r.bytes,
                pct(r.bytes, self.totals.2),
                r.pps(),
                r.bps(),
                r.bpp()
            );
        }
        s
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flowsight_schema::{Addr, FlowRecord, addr_from_ip};
    use std::net::{IpAddr, Ipv4Addr};

    fn batch(n: usize, seed: u64) -> FlowBatch {
        let mut x = seed | 1;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut b = FlowBatch::default();
        for _ in 0..n {
            let ip = |v: u64| addr_from_ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | v as u32)));
            let start = 1_000_000 * next(10_000);
            b.push(&FlowRecord {
                src_addr: ip(next(50)),
                dst_addr: ip(next(70)),
                sampler_address: ip(next(3)),
                src_port: next(70_000) as u16,
                dst_port: [53, 80, 443][next(3) as usize],
                proto: [6, 17, 1][next(3) as usize],
                ip_tos: next(4) as u8,
                tcp_flags: next(256) as u16,
                src_vlan: next(5) as u16,
                src_as: next(9) as u32,
                dst_as: next(9) as u32,
                in_if: next(4) as u32,
                out_if: next(4) as u32,
                packets: 1 + next(100),
                bytes: 40 + next(100_000),
                time_flow_start_ns: start,
                time_flow_end_ns: start + next(1_000_000_000),
                ..FlowRecord::default()
            });
        }
        b
    }

    #[test]
    fn batch_accumulation_equals_row_by_row() {
        let batches = [batch(5000, 7), batch(3000, 11), batch(17, 13)];
        for key in [
            StatKey::SrcIp,
            StatKey::DstIp,
            StatKey::Ip,
            StatKey::SrcPort,
            StatKey::DstPort,
            StatKey::Port,
            StatKey::Proto,
            StatKey::SrcAs,
            StatKey::DstAs,
            StatKey::As,
            StatKey::InIf,
            StatKey::OutIf,
            StatKey::Router,
            StatKey::Tos,
            StatKey::Flags,
            StatKey::Vlan,
        ] {
            let (mut rows, mut batched) = (StatAcc::new(key), StatAcc::new(key));
            for (bi, b) in batches.iter().enumerate() {
                let sel: Vec<bool> = (0..b.len()).map(|i| (i + bi) % 3 != 0).collect();
                for (i, _) in sel.iter().enumerate().filter(|(_, s)| **s) {
                    rows.add_row(b, i);
                }
                batched.add_selected(b, &sel);
            }
            assert!(rows.len() > 1, "{key}");
            assert_eq!(batched.len(), rows.len(), "{key}");
            assert_eq!(batched.sums(), rows.sums(), "{key}");
            // Partial accumulators (threads, cached files) merged either way.
            let (mut first, mut rest) = (StatAcc::new(key), StatAcc::new(key));
            for (bi, b) in batches.iter().enumerate() {
                let sel: Vec<bool> = (0..b.len()).map(|i| (i + bi) % 3 != 0).collect();
                if bi == 0 { &mut first } else { &mut rest }.add_selected(b, &sel);
            }
            let mut by_ref = first.clone();
            by_ref.merge_ref(&rest);
            first.merge(rest);
            for m in [first, by_ref] {
                assert_eq!(m.len(), rows.len(), "{key}");
                let (a, b) = (
                    m.finish(Order::Flows, 100_000),
                    rows.clone().finish(Order::Flows, 100_000),
                );
                assert_eq!(a.rows, b.rows, "{key}");
            }
            // The top 5 are the full list's first 5, and the rest is summed as "other".
            let (top, all) = (
                batched.clone().finish(Order::Packets, 5),
                rows.clone().finish(Order::Packets, 100_000),
            );
            assert_eq!(top.rows[..], all.rows[..5.min(all.rows.len())], "{key}");
            let rest = all.rows[top.rows.len()..].iter().fold((0, 0, 0), |o, r| {
                (o.0 + r.flows, o.1 + r.packets, o.2 + r.bytes)
            });
            assert_eq!(top.other, rest, "{key}");
            let (a, b) = (
                batched.finish(Order::Bytes, 100_000),
                rows.finish(Order::Bytes, 100_000),
            );
            assert_eq!(a.rows, b.rows, "{key}");
            assert_eq!(a.totals, b.totals, "{key}");
        }
    }

    /// A dictionary of `b`'s column: distinct values (first-seen order, then `extra`
    /// unused ones, as a file's dictionary may hold) and each row's index into them.
    pub(crate) fn dictionary(col: &[Addr], extra: usize) -> (Vec<u32>, Vec<Addr>) {
        let mut values: Vec<Addr> = Vec::new();
        let keys = col
            .iter()
            .map(|v| match values.iter().position(|x| x == v) {
                Some(k) => k as u32,
                None => {
                    values.push(*v);
                    values.len() as u32 - 1
                }
            })
            .collect();
        for e in 0..extra {
            values.push([0xfe, e as u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        }
        (keys, values)
    }

    #[test]
    fn dictionary_accumulation_equals_row_by_row() {
        let batches = [
            batch(5000, 7),
            batch(3000, 11),
            batch(17, 13),
            batch(900, 17),
        ];
        for key in [StatKey::SrcIp, StatKey::DstIp, StatKey::Router] {
            let col = |b: &FlowBatch| match key {
                StatKey::SrcIp => b.src_addr.clone(),
                StatKey::DstIp => b.dst_addr.clone(),
                _ => b.sampler_address.clone(),
            };
            // Batches 0 and 1 share one dictionary (one file's chunk read in two batches);
            // the others bring their own, then batch 0's comes back under a new generation.
            let (k01, v01) = dictionary(&[col(&batches[0]), col(&batches[1])].concat(), 3);
            let n0 = batches[0].len();
            let (k2, v2) = dictionary(&col(&batches[2]), 0);
            let (k3, v3) = dictionary(&col(&batches[3]), 200);
            let feeds: [(usize, &[u32], &[Addr], u64); 5] = [
                (0, &k01[..n0], &v01, 1),
                (1, &k01[n0..], &v01, 1),
                (2, &k2, &v2, 2),
                (3, &k3, &v3, 3),
                (0, &k01[..n0], &v01, 4),
            ];
            let (mut rows, mut dict, mut mixed) =
                (StatAcc::new(key), StatAcc::new(key), StatAcc::new(key));
            for (fi, &(bi, keys, values, generation)) in feeds.iter().enumerate() {
                let b = &batches[bi];
                let sel: Vec<bool> = (0..b.len()).map(|i| (i + fi) % 3 != 0).collect();
                for (i, _) in sel.iter().enumerate().filter(|(_, s)| **s) {
                    rows.add_row(b, i);
                }
                dict.add_selected_dict(b, &sel, keys, values, generation);
                // Files without a dictionary mixed in: the batch's own column.
                if fi % 2 == 0 {
                    mixed.add_selected(b, &sel);
                } else {
                    mixed.add_selected_dict(b, &sel, keys, values, generation);
                }
            }
            assert!(rows.len() > 1, "{key}");
            for acc in [&dict, &mixed] {
                assert_eq!(acc.len(), rows.len(), "{key}");
                assert_eq!(acc.sums(), rows.sums(), "{key}");
            }
            // Merged as partials of threads, and as a cached file's.
            let mut by_ref = StatAcc::new(key);
            by_ref.merge_ref(&dict);
            let mut merged = StatAcc::new(key);
            merged.merge(mixed);
            let want = rows.finish(Order::Bytes, 100_000);
            for acc in [dict, by_ref, merged] {
                let got = acc.finish(Order::Bytes, 100_000);
                assert_eq!(got.rows, want.rows, "{key}");
                assert_eq!(got.totals, want.totals, "{key}");
            }
        }
    }
}
