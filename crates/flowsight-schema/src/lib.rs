//! The one flow schema of flowsight.
//!
//! Every flow field is declared exactly once, in the [`flow_schema!`] invocation below: its
//! column name, its kind (which fixes the Rust type, the Arrow type and the JSON rendering) and
//! its meaning. From that one list the macro generates:
//!
//! - [`FlowRecord`], the plain record decoders fill (no heap, `Copy`);
//! - [`FlowBatch`], the columnar batch (one `Vec` per field) that records are pushed into and
//!   that converts to an Arrow `RecordBatch` without copying ([`FlowBatch::into_record_batch`]);
//! - [`FIELDS`], the registry that the store, the API and the UI read;
//! - [`FlowRecord::write_json`], the goflow2 JSON layout users' dashboards already expect.
//!
//! Column names are goflow2's JSON names (`src_addr`, `bytes`, `sampler_address`,
//! `time_flow_start_ns`, ...) wherever goflow2 has one, so the same name is used in the store,
//! the JSON output, SQL and the API.
//!
//! ```
//! use flowsight_schema::{FlowBatch, FlowRecord, addr_from_ip};
//! let mut rec = FlowRecord::default();
//! rec.src_addr = addr_from_ip("192.0.2.1".parse().unwrap());
//! rec.bytes = 1500;
//! let mut batch = FlowBatch::default();
//! batch.push(&rec);
//! assert_eq!(batch.len(), 1);
//! let mut json = String::new();
//! rec.write_json(&mut json);
//! assert!(json.contains(r#""src_addr":"192.0.2.1""#));
//! ```

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub mod sym;

/// An IP address as stored: 16 bytes, IPv4 as IPv4-mapped IPv6 (`::ffff:a.b.c.d`), all zeros
/// when the field is absent (rendered as `""` in JSON, like goflow2's empty byte slices).
pub type Addr = [u8; 16];

/// The kind of a field: fixes its Rust type, Arrow type and JSON rendering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Unsigned 8-bit number.
    U8,
    /// Unsigned 16-bit number.
    U16,
    /// Unsigned 32-bit number.
    U32,
    /// Unsigned 64-bit number.
    U64,
    /// IP address ([`Addr`]); Arrow `FixedSizeBinary(16)`; JSON string.
    Addr,
    /// MAC address in the low 48 bits of a u64; JSON `"aa:bb:cc:dd:ee:ff"`.
    Mac,
    /// Export format ([`flow_type`] constants); JSON `"NETFLOW_V5"`, `"IPFIX"`, ...
    FlowType,
    /// Ethernet type; JSON `"IPv4"`, `"IPv6"`, `"ARP"` or the number as a string.
    EtherType,
    /// IP protocol number; JSON `"TCP"`, `"UDP"`, ... or the number as a string.
    Proto,
    /// Source prefix length; JSON renders the source network, `"71.0.0.0/9"`.
    SrcNet,
    /// Destination prefix length; JSON renders the destination network.
    DstNet,
    /// Text, held as a [`sym`] symbol (`u32`); Arrow `Dictionary(UInt32, Utf8)`; JSON string.
    Text,
    /// Latitude or longitude in 1e-5 degrees (`i32`, about 1 m); Arrow `Float64` degrees;
    /// JSON number.
    Coord,
}

/// Arrow-independent description of a column's physical type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Physical {
    /// `UInt8`
    UInt8,
    /// `UInt16`
    UInt16,
    /// `UInt32`
    UInt32,
    /// `UInt64`
    UInt64,
    /// `FixedSizeBinary(16)`
    Binary16,
    /// `Dictionary(UInt32, Utf8)`
    Utf8Dict,
    /// `Float64`
    Float64,
}

impl Kind {
    /// The physical column type of this kind.
    pub const fn physical(self) -> Physical {
        match self {
            Kind::U8 | Kind::FlowType | Kind::Proto | Kind::SrcNet | Kind::DstNet => {
                Physical::UInt8
            }
            Kind::U16 | Kind::EtherType => Physical::UInt16,
            Kind::U32 => Physical::UInt32,
            Kind::U64 | Kind::Mac => Physical::UInt64,
            Kind::Addr => Physical::Binary16,
            Kind::Text => Physical::Utf8Dict,
            Kind::Coord => Physical::Float64,
        }
    }
}

/// One entry of the field registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// Column name, identical to the JSON key (goflow2's name where goflow2 has the field).
    pub name: &'static str,
    /// How the field is typed and rendered.
    pub kind: Kind,
    /// Whether goflow2's JSON layout has this key (false: a flowsight addition).
    pub goflow2: bool,
    /// Whether enrichment fills it (JSON omits it while empty).
    pub enrichment: bool,
    /// What the field means, for docs, the API and the UI.
    pub description: &'static str,
}

/// Export format codes stored in the `type` column (goflow2's numbering, extended).
pub mod flow_type {
    /// Unknown format.
    pub const UNKNOWN: u8 = 0;
    /// sFlow version 5.
    pub const SFLOW_5: u8 = 1;
    /// NetFlow version 5.
    pub const NETFLOW_V5: u8 = 2;
    /// NetFlow version 9 (RFC 3954).
    pub const NETFLOW_V9: u8 = 3;
    /// IPFIX (RFC 7011).
    pub const IPFIX: u8 = 4;
    /// NetFlow version 1.
    pub const NETFLOW_V1: u8 = 5;
    /// NetFlow version 7 (Catalyst switches).
    pub const NETFLOW_V7: u8 = 6;

    /// The name used in JSON output.
    pub fn name(t: u8) -> &'static str {
        match t {
            SFLOW_5 => "SFLOW_5",
            NETFLOW_V5 => "NETFLOW_V5",
            NETFLOW_V9 => "NETFLOW_V9",
            IPFIX => "IPFIX",
            NETFLOW_V1 => "NETFLOW_V1",
            NETFLOW_V7 => "NETFLOW_V7",
            _ => "FLOWUNKNOWN",
        }
    }
}

/// A [`FlowBatch`] column's vector, by its Rust element type (see
/// [`FlowBatch::column_mut`]).
#[derive(Debug)]
pub enum ColumnMut<'a> {
    /// 8-bit numbers.
    U8(&'a mut Vec<u8>),
    /// 16-bit numbers.
    U16(&'a mut Vec<u16>),
    /// 32-bit numbers (and text symbols).
    U32(&'a mut Vec<u32>),
    /// 64-bit numbers.
    U64(&'a mut Vec<u64>),
    /// Coordinates.
    I32(&'a mut Vec<i32>),
    /// Addresses.
    Addr(&'a mut Vec<Addr>),
}

macro_rules! column_mut_from {
    ($($t:ty => $v:ident,)*) => { $(
        impl<'a> From<&'a mut Vec<$t>> for ColumnMut<'a> {
            fn from(v: &'a mut Vec<$t>) -> Self {
                ColumnMut::$v(v)
            }
        }
    )* };
}
column_mut_from! { u8 => U8, u16 => U16, u32 => U32, u64 => U64, i32 => I32, Addr => Addr, }

macro_rules! flow_schema {
    ($( $field:ident : $ty:ty = $kind:ident, $name:literal, $g2:literal, $enr:literal, $desc:literal; )*) => {
        /// One flow record. Generated from the field registry; see [`FIELDS`].
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct FlowRecord {
            $( #[doc = $desc] pub $field: $ty, )*
        }

        /// A columnar batch of flow records: one vector per registry field, all of equal
        /// length. Decoders push into it directly; it converts to Arrow without copying.
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct FlowBatch {
            $( #[doc = $desc] pub $field: Vec<$ty>, )*
        }

        /// The field registry, in column order.
        pub static FIELDS: &[FieldDef] = &[
            $( FieldDef { name: $name, kind: Kind::$kind, goflow2: $g2, enrichment: $enr, description: $desc }, )*
        ];

        impl FlowBatch {
            /// Appends one record. Enrichment columns stay unmaterialized (empty) until a
            /// record has a value there; see [`FlowBatch::materialize`].
            #[inline]
            pub fn push(&mut self, r: &FlowRecord) {
                let n = self.len();
                $(
                    if !$enr || !self.$field.is_empty() {
                        self.$field.push(r.$field);
                    } else if r.$field != <$ty>::default() {
                        self.$field.resize(n, <$ty>::default());
                        self.$field.push(r.$field);
                    }
                )*
            }

            /// The record at `i`, if any.
            pub fn get(&self, i: usize) -> Option<FlowRecord> {
                if i >= self.len() {
                    return None;
                }
                Some(FlowRecord { $(
                    $field: if $enr {
                        self.$field.get(i).copied().unwrap_or_default()
                    } else {
                        self.$field[i]
                    },
                )* })
            }

            /// Appends `n` copies of one record (the starting point of column-wise decoding).
            #[inline]
            pub fn push_repeat(&mut self, r: &FlowRecord, n: usize) {
                let len = self.len();
                $(
                    if !$enr || !self.$field.is_empty() || r.$field != <$ty>::default() {
                        // Only an enrichment column can lag (unmaterialized until now).
                        if $enr && self.$field.len() != len {
                            self.$field.resize(len, <$ty>::default());
                        }
                        // Whole blocks of copies, then cut back: a fixed-size copy is a
                        // few vector stores with no loop, where `extend`/`resize` spend
                        // ~4 instructions per value (decoders call this per data set of
                        // typically 3 - 30 records).
                        // 16 values, at most 128 bytes: copied inline, not by a memcpy call.
                        const B: usize = {
                            let b = 128 / std::mem::size_of::<$ty>();
                            if b == 0 { 1 } else if b > 16 { 16 } else { b }
                        };
                        if n < 4 {
                            // A block costs more than so few values one by one.
                            self.$field.extend(std::iter::repeat_n(r.$field, n));
                        } else {
                            let block = [r.$field; B];
                            let end = len + n;
                            self.$field.reserve(n + B);
                            while self.$field.len() < end {
                                self.$field.extend_from_slice(&block);
                            }
                            self.$field.truncate(end);
                        }
                    }
                )*
            }

            /// Reorders the records from row `start` on: they become the `(offset, len)`
            /// ranges of `ranges` (offsets from `start`) one after the other, which must
            /// cover those rows exactly once. Decoders use it to put records decoded out of
            /// order (one template at a time) back in arrival order. Each range is copied
            /// as a block, column by column (a gather through a row index cost more
            /// instructions, callgrind on generated dual-stack v9).
            pub fn reorder_tail(&mut self, start: usize, ranges: &[(usize, usize)]) {
                let len = self.len();
                if start >= len {
                    return;
                }
                let n = len - start;
                $(
                    // Unmaterialized enrichment columns stay empty; any other column holds
                    // every row (a lagging one is padded first, as `push` would).
                    if self.$field.len() > start {
                        self.$field.resize(len, <$ty>::default());
                        self.$field.reserve(n);
                        for &(off, k) in ranges {
                            let from = (start + off).min(len);
                            let to = (start + off + k).min(len);
                            self.$field.extend_from_within(from..to);
                        }
                        // The reordered copy replaces the original rows; a `ranges` that
                        // did not cover them exactly still leaves `len` rows.
                        self.$field.drain(start..len);
                        self.$field.resize(len, <$ty>::default());
                    }
                )*
            }

            /// Removes every record, keeping the allocations.
            pub fn clear(&mut self) {
                $( self.$field.clear(); )*
            }

            /// Reserves room for `n` more records (materialized columns only).
            pub fn reserve(&mut self, n: usize) {
                $( if !$enr || !self.$field.is_empty() { self.$field.reserve(n); } )*
            }

            /// Moves every record of `other` to the end of `self` (an enrichment column
            /// materialized on one side only is filled with defaults on the other).
            pub fn append(&mut self, other: &mut FlowBatch) {
                let (n, m) = (self.len(), other.len());
                $(
                    if $enr {
                        match (self.$field.is_empty(), other.$field.is_empty()) {
                            (true, true) => {}
                            (false, true) => self.$field.resize(n + m, <$ty>::default()),
                            (true, false) => {
                                self.$field.resize(n, <$ty>::default());
                                self.$field.append(&mut other.$field);
                            }
                            (false, false) => self.$field.append(&mut other.$field),
                        }
                        other.$field.clear();
                    } else {
                        self.$field.append(&mut other.$field);
                    }
                )*
            }

            /// The records at positions `idx`, in that order (columns left empty by a
            /// projected read, or unmaterialized, stay empty).
            pub fn take(&self, idx: &[u32]) -> FlowBatch {
                FlowBatch { $(
                    $field: if self.$field.is_empty() {
                        Vec::new()
                    } else {
                        idx.iter().map(|&i| self.$field[i as usize]).collect()
                    },
                )* }
            }

            /// Fills the columns named in `names` that are empty while the batch is not with
            /// default values (a file written before a column existed, or without it, reads
            /// as absent).
            pub fn fill_missing(&mut self, names: &[&str]) {
                let n = self.len();
                $(
                    if self.$field.len() != n && names.contains(&$name) {
                        self.$field.clear();
                        self.$field.resize(n, <$ty>::default());
                    }
                )*
            }

            /// Whether column `name` holds values for every row (always true for the base
            /// columns of a batch built by pushing; false for unmaterialized enrichment ones).
            pub fn has_column(&self, name: &str) -> bool {
                let n = self.len();
                $( if name == $name { return n > 0 && self.$field.len() == n; } )*
                false
            }

            /// Materializes the named enrichment columns (filled with defaults), so an
            /// enricher can write them by index. Unnamed ones stay as they are.
            pub fn materialize(&mut self, names: &[&str]) {
                self.fill_missing(names);
            }

            /// The storage of column `name`, to fill in place (a reader decoding a file's
            /// pages straight into the batch). Text columns are symbol numbers here, not
            /// text: a caller decoding values checks [`FieldDef::kind`] first.
            pub fn column_mut(&mut self, name: &str) -> Option<ColumnMut<'_>> {
                match name {
                    $( $name => Some(ColumnMut::from(&mut self.$field)), )*
                    _ => None,
                }
            }

            /// Shortens the batch to `len` records (drops the rest).
            pub fn truncate(&mut self, len: usize) {
                $( self.$field.truncate(len); )*
            }
        }

        impl FlowRecord {
            /// Writes the record as one goflow2-layout JSON object (no trailing newline).
            pub fn write_json(&self, out: &mut String) {
                out.push('{');
                let mut first = true;
                $(
                    // Enrichment fields only when set: without enrichment the record is
                    // goflow2's, not 32 empty keys longer.
                    if !$enr || self.$field != <$ty>::default() {
                        if !first { out.push(','); }
                        first = false;
                        out.push('"');
                        out.push_str($name);
                        out.push_str("\":");
                        json::$kind(out, self.$field, self);
                    }
                )*
                let _ = first;
                out.push('}');
            }
        }

        #[cfg(feature = "arrow")]
        impl FlowBatch {
            /// Converts into an Arrow `RecordBatch` with [`arrow_schema()`], moving the
            /// column vectors into Arrow buffers (no copy for numeric columns).
            pub fn into_record_batch(self) -> arrow_array::RecordBatch {
                let n = self.len();
                let FlowBatch { $( $field, )* } = self;
                // Unmaterialized enrichment columns are left out: without enrichment a file
                // costs nothing for them, and readers treat absent columns as empty.
                let mut present = Vec::with_capacity(FIELDS.len());
                let mut columns: Vec<arrow_array::ArrayRef> = Vec::with_capacity(FIELDS.len());
                $(
                    if !$enr || (n > 0 && $field.len() == n) {
                        present.push(true);
                        columns.push(arrow::$kind($field));
                    } else {
                        present.push(false);
                    }
                )*
                let schema = if present.iter().all(|&p| p) {
                    arrow::schema_ref()
                } else {
                    arrow::schema_subset(&present)
                };
                // The schema is generated from the same list as the columns, so lengths and
                // types always agree.
                #[allow(clippy::expect_used)]
                arrow_array::RecordBatch::try_new(schema, columns)
                    .expect("columns generated from the registry match its schema")
            }

            /// Builds a batch from an Arrow batch holding some or all of the registry's columns
            /// (found by name, so column order and extra columns do not matter). Columns absent
            /// from `rb` stay empty: a projected read only pays for the columns it asked for, and
            /// the caller must not touch the others. `flow_type` is always filled (zeros when
            /// absent) so that [`FlowBatch::len`] is right.
            pub fn from_record_batch(rb: &arrow_array::RecordBatch) -> Result<FlowBatch, String> {
                let mut b = FlowBatch::default();
                b.refill_from_record_batch(rb)?;
                Ok(b)
            }

            /// [`FlowBatch::from_record_batch`] into this batch, reusing its buffers: a scan
            /// converting batch after batch then allocates (and the kernel zeroes) no new
            /// memory per batch. Columns absent from `rb` are left empty.
            pub fn refill_from_record_batch(
                &mut self,
                rb: &arrow_array::RecordBatch,
            ) -> Result<(), String> {
                $(
                    match rb.column_by_name($name) {
                        Some(c) => arrow::from::$kind(c.as_ref(), $name, &mut self.$field)?,
                        None => self.$field.clear(),
                    }
                )*
                if self.flow_type.len() != rb.num_rows() {
                    self.flow_type.clear();
                    self.flow_type.resize(rb.num_rows(), 0);
                }
                Ok(())
            }
        }
    };
}

flow_schema! {
    flow_type: u8 = FlowType, "type", true, false,
        "Export format the record arrived in: NETFLOW_V1/V5/V7/V9, IPFIX or SFLOW_5.";
    time_received_ns: u64 = U64, "time_received_ns", true, false,
        "When the collector received the datagram, ns since the Unix epoch.";
    sequence_num: u32 = U32, "sequence_num", true, false,
        "Sequence number of the export packet (v5: flows, v9: packets, IPFIX: records, sFlow: datagrams).";
    sampling_rate: u64 = U64, "sampling_rate", true, false,
        "1-in-N packet sampling rate that applied to this record (0: unknown/unsampled).";
    sampler_address: Addr = Addr, "sampler_address", true, false,
        "Exporter address: the datagram's source for NetFlow/IPFIX, the agent address for sFlow.";
    time_flow_start_ns: u64 = U64, "time_flow_start_ns", true, false,
        "First packet of the flow, ns since the Unix epoch.";
    time_flow_end_ns: u64 = U64, "time_flow_end_ns", true, false,
        "Last packet of the flow, ns since the Unix epoch.";
    bytes: u64 = U64, "bytes", true, false,
        "Bytes counted by the exporter (not scaled by sampling_rate).";
    packets: u64 = U64, "packets", true, false,
        "Packets counted by the exporter (not scaled by sampling_rate).";
    src_addr: Addr = Addr, "src_addr", true, false, "Source IP address.";
    dst_addr: Addr = Addr, "dst_addr", true, false, "Destination IP address.";
    etype: u16 = EtherType, "etype", true, false, "Ethernet type of the flow: IPv4 (0x0800), IPv6 (0x86dd), ARP (0x0806).";
    proto: u8 = Proto, "proto", true, false, "IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, ...).";
    src_port: u16 = U16, "src_port", true, false, "Source transport port.";
    dst_port: u16 = U16, "dst_port", true, false, "Destination transport port.";
    in_if: u32 = U32, "in_if", true, false, "Input interface index (SNMP ifIndex).";
    out_if: u32 = U32, "out_if", true, false, "Output interface index (SNMP ifIndex).";
    src_mac: u64 = Mac, "src_mac", true, false, "Source MAC address.";
    dst_mac: u64 = Mac, "dst_mac", true, false, "Destination MAC address.";
    src_vlan: u16 = U16, "src_vlan", true, false, "VLAN id on the input side.";
    dst_vlan: u16 = U16, "dst_vlan", true, false, "VLAN id on the output side.";
    vlan_id: u16 = U16, "vlan_id", true, false, "802.1Q VLAN id seen in the packet.";
    ip_tos: u8 = U8, "ip_tos", true, false, "IPv4 type of service / IPv6 traffic class.";
    forwarding_status: u8 = U8, "forwarding_status", true, false, "Forwarding status (RFC 7270): 64 forwarded, 128 dropped, 192 consumed.";
    ip_ttl: u8 = U8, "ip_ttl", true, false, "IP time to live / hop limit.";
    ip_flags: u8 = U8, "ip_flags", true, false, "IPv4 flags as the 3 header bits: 2 DF, 1 MF (IPFIX fragmentFlags are shifted to match).";
    tcp_flags: u16 = U16, "tcp_flags", true, false, "Union of the TCP flags seen (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32, ECE 64, CWR 128).";
    icmp_type: u8 = U8, "icmp_type", true, false, "ICMP / ICMPv6 type.";
    icmp_code: u8 = U8, "icmp_code", true, false, "ICMP / ICMPv6 code.";
    ipv6_flow_label: u32 = U32, "ipv6_flow_label", true, false, "IPv6 flow label.";
    fragment_id: u32 = U32, "fragment_id", true, false, "IP fragment identification.";
    fragment_offset: u16 = U16, "fragment_offset", true, false, "IP fragment offset.";
    src_as: u32 = U32, "src_as", true, false, "Source autonomous system number.";
    dst_as: u32 = U32, "dst_as", true, false, "Destination autonomous system number.";
    next_hop: Addr = Addr, "next_hop", true, false, "IP next hop.";
    next_hop_as: u32 = U32, "next_hop_as", true, false, "AS number of the next hop (next adjacent AS).";
    src_net: u8 = SrcNet, "src_net", true, false, "Source prefix length; JSON shows the source network (addr/len).";
    dst_net: u8 = DstNet, "dst_net", true, false, "Destination prefix length; JSON shows the destination network.";
    bgp_next_hop: Addr = Addr, "bgp_next_hop", true, false, "BGP next hop.";
    mpls_label: u32 = U32, "mpls_label", false, false, "Top MPLS label (20 bits) of the flow's label stack, 0 if none.";
    flow_direction: u8 = U8, "flow_direction", false, false, "Flow direction (IPFIX IE 61): 0 ingress, 1 egress; 0 when the exporter does not say.";
    observation_domain_id: u32 = U32, "observation_domain_id", true, false, "IPFIX observation domain / NetFlow v9 source id / sFlow sub-agent id / v5 engine type<<8|id.";
    observation_point_id: u32 = U32, "observation_point_id", true, false, "IPFIX observation point id (IE 138).";
    src_country: u32 = Text, "src_country", false, true, "Source country, ISO 3166-1 alpha-2 (GeoIP enrichment).";
    dst_country: u32 = Text, "dst_country", false, true, "Destination country, ISO 3166-1 alpha-2 (GeoIP enrichment).";
    src_region: u32 = Text, "src_region", false, true, "Source region / subdivision name (GeoIP city database).";
    dst_region: u32 = Text, "dst_region", false, true, "Destination region / subdivision name (GeoIP city database).";
    src_city: u32 = Text, "src_city", false, true, "Source city (GeoIP city database).";
    dst_city: u32 = Text, "dst_city", false, true, "Destination city (GeoIP city database).";
    src_lat: i32 = Coord, "src_lat", false, true, "Source latitude in degrees (GeoIP city database; 0 when unknown).";
    src_lon: i32 = Coord, "src_lon", false, true, "Source longitude in degrees (GeoIP city database; 0 when unknown).";
    dst_lat: i32 = Coord, "dst_lat", false, true, "Destination latitude in degrees (GeoIP city database; 0 when unknown).";
    dst_lon: i32 = Coord, "dst_lon", false, true, "Destination longitude in degrees (GeoIP city database; 0 when unknown).";
    src_as_name: u32 = Text, "src_as_name", false, true, "Name of the source AS (ASN database).";
    dst_as_name: u32 = Text, "dst_as_name", false, true, "Name of the destination AS (ASN database).";
    src_net_name: u32 = Text, "src_net_name", false, true, "Name of the longest networks-file prefix holding the source address.";
    dst_net_name: u32 = Text, "dst_net_name", false, true, "Name of the longest networks-file prefix holding the destination address.";
    src_net_role: u32 = Text, "src_net_role", false, true, "Role of the source network (networks file).";
    dst_net_role: u32 = Text, "dst_net_role", false, true, "Role of the destination network (networks file).";
    src_net_site: u32 = Text, "src_net_site", false, true, "Site of the source network (networks file).";
    dst_net_site: u32 = Text, "dst_net_site", false, true, "Site of the destination network (networks file).";
    src_net_region: u32 = Text, "src_net_region", false, true, "Region of the source network (networks file).";
    dst_net_region: u32 = Text, "dst_net_region", false, true, "Region of the destination network (networks file).";
    src_net_tenant: u32 = Text, "src_net_tenant", false, true, "Tenant / customer of the source network (networks file).";
    dst_net_tenant: u32 = Text, "dst_net_tenant", false, true, "Tenant / customer of the destination network (networks file).";
    src_net_labels: u32 = Text, "src_net_labels", false, true, "User labels of the source network, `key=value` pairs joined by `,` (networks file).";
    dst_net_labels: u32 = Text, "dst_net_labels", false, true, "User labels of the destination network, `key=value` pairs joined by `,` (networks file).";
    src_internal: u8 = U8, "src_internal", false, true, "1 when the source address is in an internal network of the networks file, else 0.";
    dst_internal: u8 = U8, "dst_internal", false, true, "1 when the destination address is in an internal network of the networks file, else 0.";
    in_if_name: u32 = Text, "in_if_name", false, true, "Input interface name (exporter options data IE 82, or the static interface map).";
    out_if_name: u32 = Text, "out_if_name", false, true, "Output interface name (exporter options data IE 82, or the static interface map).";
    in_if_desc: u32 = Text, "in_if_desc", false, true, "Input interface description (exporter options data IE 83, or the static interface map).";
    out_if_desc: u32 = Text, "out_if_desc", false, true, "Output interface description (exporter options data IE 83, or the static interface map).";
    in_if_speed: u64 = U64, "in_if_speed", false, true, "Input interface speed in bits/s (static interface map; 0 when unknown).";
    out_if_speed: u64 = U64, "out_if_speed", false, true, "Output interface speed in bits/s (static interface map; 0 when unknown).";
}

impl FlowBatch {
    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        self.flow_type.len()
    }

    /// Whether the batch holds no record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.flow_type.is_empty()
    }

    /// Iterates over the records (copying each out of the columns).
    pub fn iter(&self) -> impl Iterator<Item = FlowRecord> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Writes every record as one JSON line (NDJSON).
    pub fn write_ndjson(&self, out: &mut String) {
        for r in self.iter() {
            r.write_json(out);
            out.push('\n');
        }
    }

    /// Sum of a numeric column over the batch, scaled by each record's sampling rate.
    pub fn scaled_totals(&self) -> (u64, u64) {
        let mut bytes = 0u64;
        let mut packets = 0u64;
        for i in 0..self.len() {
            let rate = self.sampling_rate[i].max(1);
            bytes = bytes.saturating_add(self.bytes[i].saturating_mul(rate));
            packets = packets.saturating_add(self.packets[i].saturating_mul(rate));
        }
        (bytes, packets)
    }
}

impl FlowRecord {
    /// Bytes scaled by the sampling rate: the estimate of the real traffic.
    pub fn scaled_bytes(&self) -> u64 {
        self.bytes.saturating_mul(self.sampling_rate.max(1))
    }

    /// Packets scaled by the sampling rate.
    pub fn scaled_packets(&self) -> u64 {
        self.packets.saturating_mul(self.sampling_rate.max(1))
    }

    /// The record as one JSON string (convenience over [`FlowRecord::write_json`]).
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(900);
        self.write_json(&mut s);
        s
    }
}

/// Looks a field up by column name.
pub fn field(name: &str) -> Option<&'static FieldDef> {
    FIELDS.iter().find(|f| f.name == name)
}

/// Stores an IPv4 address (host order u32) as an [`Addr`].
#[inline]
pub const fn addr_from_v4(v: u32) -> Addr {
    let b = v.to_be_bytes();
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, b[0], b[1], b[2], b[3],
    ]
}

/// Stores any IP address as an [`Addr`].
pub fn addr_from_ip(ip: IpAddr) -> Addr {
    match ip {
        IpAddr::V4(v4) => addr_from_v4(u32::from(v4)),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The IP address held in an [`Addr`]; `None` when absent (all zeros).
pub fn addr_to_ip(a: &Addr) -> Option<IpAddr> {
    if *a == [0u8; 16] {
        return None;
    }
    let v6 = Ipv6Addr::from(*a);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

/// Whether the address is IPv4 (mapped).
pub fn addr_is_v4(a: &Addr) -> bool {
    a[..10] == [0u8; 10] && a[10] == 0xff && a[11] == 0xff
}

/// Common IP protocol names (IANA "Assigned Internet Protocol Numbers").
pub fn proto_name(p: u8) -> Option<&'static str> {
    Some(match p {
        0 => "HOPOPT",
        1 => "ICMP",
        2 => "IGMP",
        4 => "IPIP",
        6 => "TCP",
        8 => "EGP",
        17 => "UDP",
        27 => "RDP",
        41 => "IPv6",
        43 => "IPv6-Route",
        44 => "IPv6-Frag",
        46 => "RSVP",
        47 => "GRE",
        50 => "ESP",
        51 => "AH",
        58 => "ICMPv6",
        59 => "IPv6-NoNxt",
        60 => "IPv6-Opts",
        88 => "EIGRP",
        89 => "OSPF",
        103 => "PIM",
        112 => "VRRP",
        115 => "L2TP",
        132 => "SCTP",
        137 => "MPLS-in-IP",
        _ => return None,
    })
}

/// Ethernet type names used in JSON.
pub fn etype_name(e: u16) -> Option<&'static str> {
    Some(match e {
        0x0800 => "IPv4",
        0x0806 => "ARP",
        0x86dd => "IPv6",
        0x8100 => "802.1Q",
        0x8847 => "MPLS",
        0x88a8 => "802.1ad",
        _ => return None,
    })
}

/// Formats a MAC address held in the low 48 bits of `m`.
pub fn format_mac(m: u64, out: &mut String) {
    let b = m.to_be_bytes();
    let _ = write!(
        out,
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[2], b[3], b[4], b[5], b[6], b[7]
    );
}

/// Masks `a` to its first `len` bits and renders `network/len`.
fn format_net(a: &Addr, len: u8, out: &mut String) {
    if addr_is_v4(a) {
        let v = u32::from_be_bytes([a[12], a[13], a[14], a[15]]);
        let len = len.min(32);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        let _ = write!(out, "{}/{}", Ipv4Addr::from(v & mask), len);
    } else {
        let v = u128::from_be_bytes(*a);
        let len = len.min(128);
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - len)
        };
        let _ = write!(out, "{}/{}", Ipv6Addr::from(v & mask), len);
    }
}

/// JSON renderers, one per [`Kind`], named like the kinds so the macro can call them.
#[allow(non_snake_case)]
mod json {
    use super::*;

    pub(crate) fn U8(out: &mut String, v: u8, _: &FlowRecord) {
        let _ = write!(out, "{v}");
    }
    pub(crate) fn U16(out: &mut String, v: u16, _: &FlowRecord) {
        let _ = write!(out, "{v}");
    }
    pub(crate) fn U32(out: &mut String, v: u32, _: &FlowRecord) {
        let _ = write!(out, "{v}");
    }
    pub(crate) fn U64(out: &mut String, v: u64, _: &FlowRecord) {
        let _ = write!(out, "{v}");
    }
    pub(crate) fn Addr(out: &mut String, v: super::Addr, _: &FlowRecord) {
        out.push('"');
        if let Some(ip) = addr_to_ip(&v) {
            let _ = write!(out, "{ip}");
        }
        out.push('"');
    }
    pub(crate) fn Mac(out: &mut String, v: u64, _: &FlowRecord) {
        out.push('"');
        format_mac(v, out);
        out.push('"');
    }
    pub(crate) fn FlowType(out: &mut String, v: u8, _: &FlowRecord) {
        out.push('"');
        out.push_str(flow_type::name(v));
        out.push('"');
    }
    pub(crate) fn EtherType(out: &mut String, v: u16, _: &FlowRecord) {
        match etype_name(v) {
            Some(n) => {
                let _ = write!(out, "\"{n}\"");
            }
            None => {
                let _ = write!(out, "\"{v}\"");
            }
        }
    }
    pub(crate) fn Proto(out: &mut String, v: u8, _: &FlowRecord) {
        match proto_name(v) {
            Some(n) => {
                let _ = write!(out, "\"{n}\"");
            }
            None => {
                let _ = write!(out, "\"{v}\"");
            }
        }
    }
    pub(crate) fn SrcNet(out: &mut String, v: u8, r: &FlowRecord) {
        out.push('"');
        format_net(&r.src_addr, v, out);
        out.push('"');
    }
    pub(crate) fn DstNet(out: &mut String, v: u8, r: &FlowRecord) {
        out.push('"');
        format_net(&r.dst_addr, v, out);
        out.push('"');
    }
    pub(crate) fn Text(out: &mut String, v: u32, _: &FlowRecord) {
        json_string(out, sym::resolve(v));
    }
    pub(crate) fn Coord(out: &mut String, v: i32, _: &FlowRecord) {
        let _ = write!(out, "{}", coord_degrees(v));
    }
}

/// Degrees of a [`Kind::Coord`] value.
pub fn coord_degrees(v: i32) -> f64 {
    v as f64 / 1e5
}

/// The [`Kind::Coord`] value of `deg` degrees (clamped to ±180).
pub fn coord_from_degrees(deg: f64) -> i32 {
    if deg.is_finite() {
        (deg.clamp(-180.0, 180.0) * 1e5).round() as i32
    } else {
        0
    }
}

/// Writes `s` as a JSON string literal (quotes, backslashes and control characters escaped).
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Arrow conversion, one function per [`Kind`].
#[cfg(feature = "arrow")]
#[allow(non_snake_case)]
pub mod arrow {
    use super::{FIELDS, Physical};
    use arrow_array::types::UInt32Type;
    use arrow_array::{
        Array, ArrayRef, DictionaryArray, FixedSizeBinaryArray, Float64Array, LargeStringArray,
        StringArray, StringViewArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
    };
    use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
    use std::collections::HashMap;
    use std::sync::{Arc, OnceLock};

    /// The Arrow type of a physical column type.
    pub fn data_type(p: Physical) -> DataType {
        match p {
            Physical::UInt8 => DataType::UInt8,
            Physical::UInt16 => DataType::UInt16,
            Physical::UInt32 => DataType::UInt32,
            Physical::UInt64 => DataType::UInt64,
            Physical::Binary16 => DataType::FixedSizeBinary(16),
            Physical::Utf8Dict => {
                DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
            }
            Physical::Float64 => DataType::Float64,
        }
    }

    /// The Arrow schema of a [`super::FlowBatch`], with each field's description and JSON
    /// name in its metadata.
    pub fn schema() -> Schema {
        Schema::new(
            FIELDS
                .iter()
                .map(|f| {
                    let mut md = HashMap::new();
                    md.insert("description".to_string(), f.description.to_string());
                    md.insert("kind".to_string(), format!("{:?}", f.kind));
                    // Enrichment columns may be absent from a file: nullable, so engines
                    // merging files of both kinds (DataFusion, DuckDB union_by_name) accept it.
                    Field::new(f.name, data_type(f.kind.physical()), f.enrichment).with_metadata(md)
                })
                .collect::<Vec<_>>(),
        )
    }

    /// The time columns: ns since the epoch in a [`super::FlowBatch`], Parquet timestamps
    /// (UTC) in the store's files: ms where a file's values are whole ms, else ns (files
    /// written before session 29 may also hold µs).
    pub const TIME_COLUMNS: [&str; 3] =
        ["time_received_ns", "time_flow_start_ns", "time_flow_end_ns"];

    /// Nanoseconds per unit of a timestamp type; `None` for other types.
    pub fn ns_per_unit(dt: &DataType) -> Option<u64> {
        match dt {
            DataType::Timestamp(TimeUnit::Second, _) => Some(1_000_000_000),
            DataType::Timestamp(TimeUnit::Millisecond, _) => Some(1_000_000),
            DataType::Timestamp(TimeUnit::Microsecond, _) => Some(1_000),
            DataType::Timestamp(TimeUnit::Nanosecond, _) => Some(1),
            _ => None,
        }
    }

    /// Nanoseconds per stored unit of column `name` of `schema`: 1 where it is not a
    /// timestamp (plain ns numbers, as files from before timestamps hold) or is absent.
    pub fn stored_ns_per_unit(schema: &Schema, name: &str) -> u64 {
        schema
            .field_with_name(name)
            .ok()
            .and_then(|f| ns_per_unit(f.data_type()))
            .unwrap_or(1)
    }

    /// The values of a number column as u64, a timestamp column's in ns (see
    /// [`TIME_COLUMNS`]).
    pub fn u64_values(a: &dyn Array, out: &mut Vec<u64>) -> Result<(), String> {
        from::U64(a, "column", out)
    }

    /// [`schema()`] with the time columns as UTC timestamps in ns, the types SQL sees
    /// whatever unit each file stores.
    pub fn sql_schema() -> Schema {
        let s = schema();
        Schema::new_with_metadata(
            s.fields()
                .iter()
                .map(|f| {
                    if TIME_COLUMNS.contains(&f.name().as_str()) {
                        Arc::new(f.as_ref().clone().with_data_type(DataType::Timestamp(
                            TimeUnit::Nanosecond,
                            Some("UTC".into()),
                        )))
                    } else {
                        f.clone()
                    }
                })
                .collect::<Vec<_>>(),
            s.metadata().clone(),
        )
    }

    /// Shared instance of [`schema()`].
    pub fn schema_ref() -> SchemaRef {
        static S: OnceLock<SchemaRef> = OnceLock::new();
        S.get_or_init(|| Arc::new(schema())).clone()
    }

    /// The schema of the fields flagged in `present` (registry order).
    pub fn schema_subset(present: &[bool]) -> SchemaRef {
        let full = schema_ref();
        let fields: Vec<_> = full
            .fields()
            .iter()
            .zip(present)
            .filter(|(_, p)| **p)
            .map(|(f, _)| f.clone())
            .collect();
        Arc::new(Schema::new(fields))
    }

    /// Copies Arrow columns back into registry column vectors, one function per kind; each
    /// returns an error naming the column when its type is not the registry's.
    pub mod from {
        use super::*;

        fn mismatch(a: &dyn Array, name: &str, want: &str) -> String {
            format!(
                "column `{name}` is {} where the schema has {want}",
                a.data_type()
            )
        }

        macro_rules! primitive {
            ($($kind:ident: $t:ty = $arr:ty;)*) => { $(
                pub(crate) fn $kind(a: &dyn Array, name: &str, out: &mut Vec<$t>) -> Result<(), String> {
                    let p = a
                        .as_any()
                        .downcast_ref::<$arr>()
                        .ok_or_else(|| mismatch(a, name, stringify!($t)))?;
                    out.clear();
                    out.extend_from_slice(p.values());
                    Ok(())
                }
            )* };
        }
        primitive! {
            U8: u8 = UInt8Array;
            U16: u16 = UInt16Array;
            U32: u32 = UInt32Array;
            Mac: u64 = UInt64Array;
            FlowType: u8 = UInt8Array;
            EtherType: u16 = UInt16Array;
            Proto: u8 = UInt8Array;
            SrcNet: u8 = UInt8Array;
            DstNet: u8 = UInt8Array;
        }

        /// Numbers; a timestamp column of any unit (the store writes times as Parquet
        /// timestamps in ms or ns) becomes ns.
        pub(crate) fn U64(a: &dyn Array, name: &str, out: &mut Vec<u64>) -> Result<(), String> {
            out.clear();
            if let Some(p) = a.as_any().downcast_ref::<UInt64Array>() {
                out.extend_from_slice(p.values());
                return Ok(());
            }
            // Every timestamp unit is an i64 value buffer: one read for all of them.
            let data = a.to_data();
            let (Some(scale), [buf]) = (ns_per_unit(a.data_type()), data.buffers()) else {
                return Err(mismatch(a, name, "u64"));
            };
            let values =
                arrow_buffer::ScalarBuffer::<i64>::new(buf.clone(), data.offset(), a.len());
            // Times before 1970 are not flows' times: they read as 0, as a missing time does.
            out.extend(
                values
                    .iter()
                    .map(|&v| u64::try_from(v).unwrap_or(0).saturating_mul(scale)),
            );
            Ok(())
        }

        pub(crate) fn Addr(
            a: &dyn Array,
            name: &str,
            out: &mut Vec<super::super::Addr>,
        ) -> Result<(), String> {
            let p = a
                .as_any()
                .downcast_ref::<FixedSizeBinaryArray>()
                .filter(|p| p.value_length() == 16)
                .ok_or_else(|| mismatch(a, name, "FixedSizeBinary(16)"))?;
            out.clear();
            out.reserve(p.len());
            // A slice's value buffer is its own window: one pass over whole 16-byte values.
            if p.null_count() == 0
                && let Some(data) = p.value_data().get(..p.len() * 16)
            {
                out.extend(data.chunks_exact(16).map(|c| {
                    let mut x = [0u8; 16];
                    x.copy_from_slice(c);
                    x
                }));
                return Ok(());
            }
            // `value(i)` honours the array's offset (a sliced array shares its parent's buffer).
            for i in 0..p.len() {
                let mut x = [0u8; 16];
                x.copy_from_slice(p.value(i));
                out.push(x);
            }
            Ok(())
        }

        pub(crate) fn Coord(a: &dyn Array, name: &str, out: &mut Vec<i32>) -> Result<(), String> {
            let p = a
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| mismatch(a, name, "Float64"))?;
            out.clear();
            out.extend(
                p.values()
                    .iter()
                    .map(|&d| super::super::coord_from_degrees(d)),
            );
            Ok(())
        }

        /// Text columns: a dictionary interns only its distinct values; plain string arrays
        /// (another writer's file) intern every row.
        pub(crate) fn Text(a: &dyn Array, name: &str, out: &mut Vec<u32>) -> Result<(), String> {
            use arrow_array::types::Int32Type;
            *out = if let Some(d) = a.as_any().downcast_ref::<DictionaryArray<UInt32Type>>() {
                dictionary(d, name)?
            } else if let Some(d) = a.as_any().downcast_ref::<DictionaryArray<Int32Type>>() {
                dictionary(d, name)?
            } else {
                strings(a, name)?
            };
            Ok(())
        }

        /// Symbols of a dictionary column: its values interned once, then one index per row
        /// (null or out-of-range keys read as empty).
        fn dictionary<K: arrow_array::types::ArrowDictionaryKeyType>(
            d: &DictionaryArray<K>,
            name: &str,
        ) -> Result<Vec<u32>, String> {
            use arrow_buffer::ArrowNativeType as _;
            let syms = strings(d.values().as_ref(), name)?;
            let keys = d.keys();
            Ok((0..keys.len())
                .map(|i| {
                    if keys.is_null(i) {
                        return 0;
                    }
                    keys.value(i)
                        .to_usize()
                        .and_then(|k| syms.get(k).copied())
                        .unwrap_or(0)
                })
                .collect())
        }

        fn strings(a: &dyn Array, name: &str) -> Result<Vec<u32>, String> {
            use super::super::sym::intern;
            let any = a.as_any();
            if let Some(s) = any.downcast_ref::<StringArray>() {
                return Ok((0..s.len())
                    .map(|i| if s.is_null(i) { 0 } else { intern(s.value(i)) })
                    .collect());
            }
            if let Some(s) = any.downcast_ref::<LargeStringArray>() {
                return Ok((0..s.len())
                    .map(|i| if s.is_null(i) { 0 } else { intern(s.value(i)) })
                    .collect());
            }
            if let Some(s) = any.downcast_ref::<StringViewArray>() {
                return Ok((0..s.len())
                    .map(|i| if s.is_null(i) { 0 } else { intern(s.value(i)) })
                    .collect());
            }
            Err(mismatch(a, name, "Dictionary(UInt32, Utf8)"))
        }
    }

    pub(crate) fn U8(v: Vec<u8>) -> ArrayRef {
        Arc::new(UInt8Array::from(v))
    }
    pub(crate) fn U16(v: Vec<u16>) -> ArrayRef {
        Arc::new(UInt16Array::from(v))
    }
    pub(crate) fn U32(v: Vec<u32>) -> ArrayRef {
        Arc::new(UInt32Array::from(v))
    }
    pub(crate) fn U64(v: Vec<u64>) -> ArrayRef {
        Arc::new(UInt64Array::from(v))
    }
    pub(crate) fn Addr(v: Vec<super::Addr>) -> ArrayRef {
        // The same allocation seen as bytes: `[u8; 16]` has the alignment of `u8`, and the
        // length and capacity in bytes do not change, so the cast cannot fail.
        let flat: Vec<u8> = bytemuck::allocation::try_cast_vec(v)
            .unwrap_or_else(|(_, v)| v.into_iter().flatten().collect());
        Arc::new(FixedSizeBinaryArray::new(
            16,
            arrow_buffer::Buffer::from_vec(flat),
            None,
        ))
    }
    pub(crate) fn Mac(v: Vec<u64>) -> ArrayRef {
        U64(v)
    }
    pub(crate) fn FlowType(v: Vec<u8>) -> ArrayRef {
        U8(v)
    }
    pub(crate) fn EtherType(v: Vec<u16>) -> ArrayRef {
        U16(v)
    }
    pub(crate) fn Proto(v: Vec<u8>) -> ArrayRef {
        U8(v)
    }
    pub(crate) fn SrcNet(v: Vec<u8>) -> ArrayRef {
        U8(v)
    }
    pub(crate) fn DstNet(v: Vec<u8>) -> ArrayRef {
        U8(v)
    }
    pub(crate) fn Coord(v: Vec<i32>) -> ArrayRef {
        Arc::new(Float64Array::from_iter_values(
            v.into_iter().map(super::coord_degrees),
        ))
    }

    /// A text column as a dictionary holding only the symbols the batch uses, so files carry
    /// small dictionaries whatever the size of the process's symbol table. An all-empty
    /// column (no enrichment configured) costs one pass over the keys.
    pub(crate) fn Text(mut v: Vec<u32>) -> ArrayRef {
        let values: Vec<&str> = if v.iter().all(|&x| x == 0) {
            vec![""]
        } else {
            let r = super::sym::Resolver::new();
            // Fx: the symbols are small integers, SipHash's DoS resistance buys nothing here.
            let mut remap: rustc_hash::FxHashMap<u32, u32> = rustc_hash::FxHashMap::default();
            let mut values = Vec::new();
            let (mut last_in, mut last_out) = (u32::MAX, 0u32);
            for x in v.iter_mut() {
                if *x != last_in {
                    last_in = *x;
                    last_out = *remap.entry(*x).or_insert_with(|| {
                        values.push(r.get(last_in));
                        (values.len() - 1) as u32
                    });
                }
                *x = last_out;
            }
            values
        };
        let keys = UInt32Array::from(v);
        let values: ArrayRef = Arc::new(StringArray::from(values));
        // Keys index `values` by construction.
        #[allow(clippy::expect_used)]
        Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, values).expect("keys in range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorder_tail_moves_whole_ranges_and_keeps_the_head() {
        let mut b = FlowBatch::default();
        for i in 0..6u64 {
            b.push(&FlowRecord {
                bytes: i,
                src_port: 100 + i as u16,
                ..FlowRecord::default()
            });
        }
        // Row 0 stays; rows 1.. become rows 4-5, then 1-3 (offsets from row 1).
        b.reorder_tail(1, &[(3, 2), (0, 3)]);
        assert_eq!(b.bytes, vec![0, 4, 5, 1, 2, 3]);
        assert_eq!(b.src_port, vec![100, 104, 105, 101, 102, 103]);
        // Unmaterialized enrichment columns stay so.
        assert!(b.src_country.is_empty());
        // Ranges that miss rows leave defaults, never a ragged batch.
        b.reorder_tail(4, &[(1, 1)]);
        assert_eq!(b.bytes, vec![0, 4, 5, 1, 3, 0]);
        assert_eq!(b.src_port.len(), 6);
    }

    #[test]
    fn push_repeat_appends_exactly_n_copies_around_block_sizes() {
        let a = sample();
        let mut b = FlowRecord {
            src_port: 7,
            src_addr: addr_from_ip("2001:db8::1".parse().unwrap()),
            ..FlowRecord::default()
        };
        let mut batch = FlowBatch::default();
        let mut want = Vec::new();
        // Counts below, at and above the 8- and 16-value blocks the copies are made of.
        for (k, n) in [0usize, 1, 7, 8, 9, 15, 16, 17, 33].into_iter().enumerate() {
            let r = if k % 2 == 0 { a } else { b };
            batch.push_repeat(&r, n);
            want.extend(std::iter::repeat_n(r, n));
        }
        // A materialized enrichment column lags until a record with a value arrives.
        b.src_country = 3;
        batch.push_repeat(&b, 3);
        want.extend(std::iter::repeat_n(b, 3));
        assert_eq!(batch.len(), want.len());
        assert_eq!(batch.src_country.len(), want.len());
        for (i, r) in want.iter().enumerate() {
            assert_eq!(batch.get(i).as_ref(), Some(r), "row {i}");
        }
    }

    fn sample() -> FlowRecord {
        // The seed's goflow2 sample record (shared/seeds/002), field by field.
        FlowRecord {
            flow_type: flow_type::NETFLOW_V5,
            bytes: 73,
            dst_addr: addr_from_ip("221.43.87.148".parse().unwrap()),
            dst_as: 51751,
            dst_net: 30,
            dst_port: 12977,
            etype: 0x0800,
            next_hop: addr_from_ip("36.206.171.217".parse().unwrap()),
            packets: 146,
            proto: 6,
            sampler_address: addr_from_ip("10.1.46.97".parse().unwrap()),
            sequence_num: 10298,
            src_addr: addr_from_ip("71.58.124.245".parse().unwrap()),
            src_as: 40904,
            src_net: 9,
            src_port: 60524,
            time_flow_end_ns: 1705009598286792700,
            time_flow_start_ns: 1705009466286792700,
            time_received_ns: 1705009779286981600,
            ..FlowRecord::default()
        }
    }

    #[test]
    fn json_matches_goflow2_seed_record() {
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        // Values as they appear in the seed's sample record.
        assert_eq!(v["type"], "NETFLOW_V5");
        assert_eq!(v["proto"], "TCP");
        assert_eq!(v["etype"], "IPv4");
        assert_eq!(v["src_addr"], "71.58.124.245");
        assert_eq!(v["src_net"], "71.0.0.0/9");
        assert_eq!(v["dst_net"], "221.43.87.148/30");
        assert_eq!(v["src_mac"], "00:00:00:00:00:00");
        assert_eq!(v["bgp_next_hop"], "");
        assert_eq!(v["next_hop"], "36.206.171.217");
        assert_eq!(v["bytes"], 73);
        assert_eq!(v["time_flow_start_ns"], 1705009466286792700u64);
        assert_eq!(v["sequence_num"], 10298);
    }

    #[test]
    fn json_has_every_key_of_the_seed_record() {
        // Keys of the sample record in shared/seeds/002 (goflow2's JSON layout).
        let seed_keys = [
            "bgp_next_hop",
            "bytes",
            "dst_addr",
            "dst_as",
            "dst_mac",
            "dst_net",
            "dst_port",
            "dst_vlan",
            "etype",
            "forwarding_status",
            "fragment_id",
            "fragment_offset",
            "icmp_code",
            "icmp_type",
            "in_if",
            "ip_flags",
            "ip_tos",
            "ip_ttl",
            "ipv6_flow_label",
            "next_hop",
            "next_hop_as",
            "observation_domain_id",
            "observation_point_id",
            "out_if",
            "packets",
            "proto",
            "sampler_address",
            "sampling_rate",
            "sequence_num",
            "src_addr",
            "src_as",
            "src_mac",
            "src_net",
            "src_port",
            "src_vlan",
            "tcp_flags",
            "time_flow_end_ns",
            "time_flow_start_ns",
            "time_received_ns",
            "type",
            "vlan_id",
        ];
        let v: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        for k in seed_keys {
            assert!(v.get(k).is_some(), "missing key {k}");
            assert!(field(k).is_some_and(|f| f.goflow2), "registry lacks {k}");
        }
    }

    #[test]
    fn ipv6_and_mac_rendering() {
        let mut r = FlowRecord {
            src_addr: addr_from_ip("2001:db8::1".parse().unwrap()),
            src_net: 32,
            src_mac: 0x0011_2233_4455,
            proto: 58,
            etype: 0x86dd,
            ..FlowRecord::default()
        };
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["src_addr"], "2001:db8::1");
        assert_eq!(v["src_net"], "2001:db8::/32");
        assert_eq!(v["src_mac"], "00:11:22:33:44:55");
        assert_eq!(v["proto"], "ICMPv6");
        assert_eq!(v["etype"], "IPv6");
        r.proto = 253;
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["proto"], "253");
    }

    #[test]
    fn batch_round_trip_and_arrow() {
        let mut b = FlowBatch::default();
        b.push(&sample());
        let mut r2 = sample();
        r2.bytes = 5;
        r2.sampling_rate = 10;
        b.push(&r2);
        assert_eq!(b.get(1), Some(r2));
        assert_eq!(b.scaled_totals(), (73 + 50, 146 + 1460));
        let rb = b.clone().into_record_batch();
        assert_eq!(rb.num_rows(), 2);
        // Enrichment columns nobody filled are not materialized, nor written.
        assert_eq!(
            rb.num_columns(),
            FIELDS.iter().filter(|f| !f.enrichment).count()
        );
        let mut e = b.clone();
        e.materialize(&["dst_country"]);
        e.dst_country[1] = sym::intern("US");
        let back = FlowBatch::from_record_batch(&e.clone().into_record_batch()).unwrap();
        assert_eq!(back.get(1).unwrap().dst_country, sym::intern("US"));
        assert_eq!(back.get(0).unwrap().dst_country, 0);
        assert!(back.src_country.is_empty());
        // Appending batches with and without a materialized column keeps rows aligned.
        let mut all = b.clone();
        let mut e2 = e.clone();
        all.append(&mut e2);
        assert_eq!(all.dst_country.len(), 4);
        assert_eq!(all.get(3).unwrap().dst_country, sym::intern("US"));
        let mut r = sample();
        r.src_city = sym::intern("Paris");
        all.push(&r);
        assert_eq!(
            (all.src_city.len(), all.get(4).unwrap().src_city),
            (5, sym::intern("Paris"))
        );
        all.push(&sample());
        assert_eq!(all.src_city.len(), 6);
        let rb = b.into_record_batch();
        let src = rb
            .column_by_name("src_addr")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::FixedSizeBinaryArray>()
            .unwrap();
        assert_eq!(
            src.value(0),
            &addr_from_ip("71.58.124.245".parse().unwrap())[..]
        );
        let bytes = rb
            .column_by_name("bytes")
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::UInt64Array>()
            .unwrap();
        assert_eq!(bytes.value(1), 5);
    }

    #[test]
    fn registry_names_are_unique() {
        let mut names: Vec<_> = FIELDS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }
}
