//! Rollup tables: flows summed per time bucket over the dimensions overviews group by
//! (exporter, interfaces, protocol, address family, ASes), so dashboards and long ranges read
//! thousands of rows instead of millions (the idea of Akvorado's `flows_1m0s/5m0s/1h0m0s`).
//!
//! ```text
//! DIR/rollup_1m/date=.../hour=.../r-<min bucket>-<max bucket>-<rows>-<id>.parquet  (per flush)
//! DIR/rollup_5m/...  DIR/rollup_1h/...   (from the 1-minute files of each finished hour)
//! ```
//!
//! A flow counts in the bucket of its start time. One key may have rows in several files
//! (flows flushed at different times, late exporters): readers sum them.

use crate::files::{FileKind, partition_dir, partition_files, partitions_in};
use crate::write::{Prepared, WriteOptions, write_in};
use crate::{Store, StoreError, TimeRange, io_err};
use arrow_array::{
    Array, ArrayRef, FixedSizeBinaryArray, RecordBatch, UInt8Array, UInt16Array, UInt32Array,
    UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use flowsight_schema::{Addr, FlowBatch};
use rustc_hash::FxHashMap;
use std::sync::{Arc, OnceLock};

/// A rollup granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// One minute.
    M1,
    /// Five minutes.
    M5,
    /// One hour.
    H1,
}

impl Tier {
    /// Bucket width, ns.
    pub fn bucket_ns(self) -> u64 {
        match self {
            Tier::M1 => 60_000_000_000,
            Tier::M5 => 300_000_000_000,
            Tier::H1 => 3_600_000_000_000,
        }
    }

    /// Directory under the data directory.
    pub fn dir(self) -> &'static str {
        match self {
            Tier::M1 => "rollup_1m",
            Tier::M5 => "rollup_5m",
            Tier::H1 => "rollup_1h",
        }
    }

    /// The tier whose buckets suit a time range of `span_ns` (about 1 000 points at most
    /// where possible).
    pub fn for_span(span_ns: u64) -> Tier {
        if span_ns <= 12 * 3_600_000_000_000 {
            Tier::M1
        } else if span_ns <= 4 * 86_400_000_000_000 {
            Tier::M5
        } else {
            Tier::H1
        }
    }
}

/// The dimensions of a rollup row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    /// Bucket start, ns.
    pub bucket_ns: u64,
    /// Exporter.
    pub sampler_address: Addr,
    /// Input interface.
    pub in_if: u32,
    /// Output interface.
    pub out_if: u32,
    /// IP protocol.
    pub proto: u8,
    /// Ethernet type (address family).
    pub etype: u16,
    /// Source AS.
    pub src_as: u32,
    /// Destination AS.
    pub dst_as: u32,
}

fn ifs_as(in_if: u32, out_if: u32, src_as: u32, dst_as: u32) -> u128 {
    u128::from(in_if)
        | u128::from(out_if) << 32
        | u128::from(src_as) << 64
        | u128::from(dst_as) << 96
}

fn rest(proto: u8, etype: u16, sampler: u64) -> u64 {
    u64::from(proto) | u64::from(etype) << 8 | sampler << 24
}

/// What a rollup row sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupSums {
    /// Flows.
    pub flows: u64,
    /// Packets as exported.
    pub packets: u64,
    /// Bytes as exported.
    pub bytes: u64,
    /// Packets scaled by each flow's sampling rate.
    pub scaled_packets: u64,
    /// Bytes scaled by each flow's sampling rate.
    pub scaled_bytes: u64,
}

impl RollupSums {
    fn add(&mut self, o: &RollupSums) {
        self.flows += o.flows;
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.scaled_packets = self.scaled_packets.saturating_add(o.scaled_packets);
        self.scaled_bytes = self.scaled_bytes.saturating_add(o.scaled_bytes);
    }
}

/// Rows being summed for one tier.
#[derive(Debug, Clone)]
pub struct Rollup {
    tier: Tier,
    map: FxHashMap<Packed, RollupSums>,
    /// The exporters seen, indexed by [`Packed`]'s sampler index.
    samplers: Vec<Addr>,
    sampler_ids: FxHashMap<Addr, u32>,
}

/// A [`RollupKey`] in three words, the exporter as its index in `Rollup::samplers`. The
/// 48-byte key hashed field by field (ten chained FxHash steps) and a division per start
/// time were most of the ~34 ns a flow the store thread spent on the rollup (`cargo bench
/// -p flowsight-store --bench store -- rollup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Packed {
    /// in_if | out_if << 32 | src_as << 64 | dst_as << 96.
    ifs_as: u128,
    bucket_ns: u64,
    /// proto | etype << 8 | sampler index << 24.
    rest: u64,
}

fn schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        let u = |n: &str, t: DataType| Field::new(n, t, false);
        Arc::new(Schema::new(vec![
            u("bucket_ns", DataType::UInt64),
            u("sampler_address", DataType::FixedSizeBinary(16)),
            u("in_if", DataType::UInt32),
            u("out_if", DataType::UInt32),
            u("proto", DataType::UInt8),
            u("etype", DataType::UInt16),
            u("src_as", DataType::UInt32),
            u("dst_as", DataType::UInt32),
            u("flows", DataType::UInt64),
            u("packets", DataType::UInt64),
            u("bytes", DataType::UInt64),
            u("scaled_packets", DataType::UInt64),
            u("scaled_bytes", DataType::UInt64),
        ]))
    })
    .clone()
}

impl Rollup {
    /// An empty rollup of `tier`.
    pub fn new(tier: Tier) -> Rollup {
        Rollup {
            tier,
            map: FxHashMap::default(),
            samplers: Vec::new(),
            sampler_ids: FxHashMap::default(),
        }
    }

    /// The index of exporter `a` in `samplers`, added when new.
    fn sampler_id(&mut self, a: Addr) -> u64 {
        let next = self.samplers.len() as u32;
        let id = *self.sampler_ids.entry(a).or_insert(next);
        if id == next {
            self.samplers.push(a);
        }
        u64::from(id)
    }

    fn pack(&mut self, k: &RollupKey) -> Packed {
        let sid = self.sampler_id(k.sampler_address);
        Packed {
            ifs_as: ifs_as(k.in_if, k.out_if, k.src_as, k.dst_as),
            bucket_ns: k.bucket_ns,
            rest: rest(k.proto, k.etype, sid),
        }
    }

    fn unpack(&self, p: &Packed) -> RollupKey {
        RollupKey {
            bucket_ns: p.bucket_ns,
            // Every index in a key was handed out by `sampler_id`.
            sampler_address: self
                .samplers
                .get((p.rest >> 24) as usize)
                .copied()
                .unwrap_or_default(),
            in_if: p.ifs_as as u32,
            out_if: (p.ifs_as >> 32) as u32,
            src_as: (p.ifs_as >> 64) as u32,
            dst_as: (p.ifs_as >> 96) as u32,
            proto: p.rest as u8,
            etype: (p.rest >> 8) as u16,
        }
    }

    /// Rows.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds no row.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds every flow of `b` (which must hold the dimension, count and time columns).
    pub fn add_batch(&mut self, b: &FlowBatch) {
        let w = self.tier.bucket_ns();
        // The current bucket [lo, hi) and exporter: start times cluster and a batch comes
        // from one or a few exporters, so most flows need neither a division nor a lookup.
        let (mut lo, mut hi) = (1u64, 0u64);
        let mut last: Option<(Addr, u64)> = None;
        for i in 0..b.len() {
            let rate = b.sampling_rate[i].max(1);
            let t = b.time_flow_start_ns[i];
            if !(lo..hi).contains(&t) {
                lo = t / w * w;
                hi = lo.saturating_add(w);
            }
            let a = b.sampler_address[i];
            let sid = match last {
                Some((la, id)) if la == a => id,
                _ => {
                    let id = self.sampler_id(a);
                    last = Some((a, id));
                    id
                }
            };
            let k = Packed {
                ifs_as: ifs_as(b.in_if[i], b.out_if[i], b.src_as[i], b.dst_as[i]),
                bucket_ns: lo,
                rest: rest(b.proto[i], b.etype[i], sid),
            };
            self.map.entry(k).or_default().add(&RollupSums {
                flows: 1,
                packets: b.packets[i],
                bytes: b.bytes[i],
                scaled_packets: b.packets[i].saturating_mul(rate),
                scaled_bytes: b.bytes[i].saturating_mul(rate),
            });
        }
    }

    /// Adds rows of a finer tier, re-bucketed to this one.
    pub fn add_rows(&mut self, rows: &[(RollupKey, RollupSums)]) {
        let w = self.tier.bucket_ns();
        for (k, s) in rows {
            let mut k = *k;
            k.bucket_ns = k.bucket_ns / w * w;
            let p = self.pack(&k);
            self.map.entry(p).or_default().add(s);
        }
    }

    /// The rows, sorted by key.
    pub fn rows(&self) -> Vec<(RollupKey, RollupSums)> {
        let mut v: Vec<_> = self.map.iter().map(|(k, s)| (self.unpack(k), *s)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    fn to_record_batch(&self) -> RecordBatch {
        let rows = self.rows();
        let col64 = |f: &dyn Fn(&(RollupKey, RollupSums)) -> u64| -> ArrayRef {
            Arc::new(UInt64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let col32 = |f: &dyn Fn(&(RollupKey, RollupSums)) -> u32| -> ArrayRef {
            Arc::new(UInt32Array::from(rows.iter().map(f).collect::<Vec<_>>()))
        };
        let addrs: Vec<u8> = rows.iter().flat_map(|(k, _)| k.sampler_address).collect();
        let columns: Vec<ArrayRef> = vec![
            col64(&|r| r.0.bucket_ns),
            Arc::new(FixedSizeBinaryArray::new(
                16,
                arrow_buffer::Buffer::from_vec(addrs),
                None,
            )),
            col32(&|r| r.0.in_if),
            col32(&|r| r.0.out_if),
            Arc::new(UInt8Array::from(
                rows.iter().map(|r| r.0.proto).collect::<Vec<_>>(),
            )),
            Arc::new(UInt16Array::from(
                rows.iter().map(|r| r.0.etype).collect::<Vec<_>>(),
            )),
            col32(&|r| r.0.src_as),
            col32(&|r| r.0.dst_as),
            col64(&|r| r.1.flows),
            col64(&|r| r.1.packets),
            col64(&|r| r.1.bytes),
            col64(&|r| r.1.scaled_packets),
            col64(&|r| r.1.scaled_bytes),
        ];
        // Built from the same list as the schema.
        #[allow(clippy::expect_used)]
        RecordBatch::try_new(schema(), columns).expect("rollup columns match their schema")
    }
}

fn rows_of(rb: &RecordBatch) -> Result<Vec<(RollupKey, RollupSums)>, String> {
    fn col<'a, T: 'static>(rb: &'a RecordBatch, n: &str) -> Result<&'a T, String> {
        rb.column_by_name(n)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| format!("rollup column `{n}` missing or of the wrong type"))
    }
    let b = col::<UInt64Array>(rb, "bucket_ns")?;
    let a = col::<FixedSizeBinaryArray>(rb, "sampler_address")?;
    let ii = col::<UInt32Array>(rb, "in_if")?;
    let oi = col::<UInt32Array>(rb, "out_if")?;
    let p = col::<UInt8Array>(rb, "proto")?;
    let e = col::<UInt16Array>(rb, "etype")?;
    let sa = col::<UInt32Array>(rb, "src_as")?;
    let da = col::<UInt32Array>(rb, "dst_as")?;
    let fl = col::<UInt64Array>(rb, "flows")?;
    let pk = col::<UInt64Array>(rb, "packets")?;
    let by = col::<UInt64Array>(rb, "bytes")?;
    let sp = col::<UInt64Array>(rb, "scaled_packets")?;
    let sb = col::<UInt64Array>(rb, "scaled_bytes")?;
    if a.value_length() != 16 {
        return Err("rollup column `sampler_address` is not 16 bytes wide".into());
    }
    let mut out = Vec::with_capacity(rb.num_rows());
    for i in 0..rb.num_rows() {
        let mut addr = [0u8; 16];
        addr.copy_from_slice(a.value(i));
        out.push((
            RollupKey {
                bucket_ns: b.value(i),
                sampler_address: addr,
                in_if: ii.value(i),
                out_if: oi.value(i),
                proto: p.value(i),
                etype: e.value(i),
                src_as: sa.value(i),
                dst_as: da.value(i),
            },
            RollupSums {
                flows: fl.value(i),
                packets: pk.value(i),
                bytes: by.value(i),
                scaled_packets: sp.value(i),
                scaled_bytes: sb.value(i),
            },
        ));
    }
    Ok(out)
}

impl Store {
    /// Writes a rollup file into its tier's partition of `now_ns` (atomic, like flow files).
    pub fn write_rollup(
        &self,
        r: &Rollup,
        now_ns: u64,
        opts: &WriteOptions,
    ) -> Result<Option<crate::FileMeta>, StoreError> {
        if r.is_empty() {
            return Ok(None);
        }
        let dir = self.root().join(r.tier.dir()).join(partition_dir(now_ns));
        let rows = r.rows();
        let min = rows.first().map_or(0, |x| x.0.bucket_ns);
        let max = rows.iter().map(|x| x.0.bucket_ns).max().unwrap_or(0);
        let p = Prepared::from_record_batch(r.to_record_batch(), min, max);
        write_in(&dir, &p, now_ns, FileKind::Rollup, opts, &mut |_| Ok(()))
    }

    /// Every row of `tier` whose bucket starts inside `range`, summed per key, sorted by key.
    /// Unreadable files are quarantined and skipped, as for flows.
    pub fn read_rollup(
        &self,
        tier: Tier,
        range: TimeRange,
    ) -> Result<Vec<(RollupKey, RollupSums)>, StoreError> {
        let mut acc = Rollup::new(tier);
        for (ns, dir) in partitions_in(&self.root().join(tier.dir()))? {
            for f in partition_files(&dir, ns)? {
                if !range.is_all() && !range.overlaps(f.min_start, f.max_start) {
                    continue;
                }
                match read_rollup_file(&f.path) {
                    Ok(rows) => {
                        let rows: Vec<_> = rows
                            .into_iter()
                            .filter(|(k, _)| range.contains(k.bucket_ns))
                            .collect();
                        acc.add_rows(&rows);
                    }
                    Err(why) if std::fs::metadata(&f.path).is_ok() => {
                        crate::scan::quarantine(self, &f.path, &why);
                    }
                    Err(_) => {}
                }
            }
        }
        Ok(acc.rows())
    }

    /// Builds the 5-minute and 1-hour rollups of every 1-minute partition whose hour ended
    /// before `now_ns` and that has not been rolled up yet (a marker file records it).
    /// Returns how many partitions were rolled up.
    pub fn roll_up_tiers(&self, now_ns: u64, opts: &WriteOptions) -> Result<usize, StoreError> {
        let mut done = 0;
        for (ns, dir) in partitions_in(&self.root().join(Tier::M1.dir()))? {
            let marker = dir.join(".tiers-done");
            if ns + Tier::H1.bucket_ns() > now_ns || marker.exists() {
                continue;
            }
            let mut rows = Vec::new();
            for f in partition_files(&dir, ns)? {
                match read_rollup_file(&f.path) {
                    Ok(r) => rows.extend(r),
                    Err(why) => {
                        crate::scan::quarantine(self, &f.path, &why);
                    }
                }
            }
            for tier in [Tier::M5, Tier::H1] {
                let mut r = Rollup::new(tier);
                r.add_rows(&rows);
                // Filed under the 1-minute partition's hour, so retention treats them alike.
                self.write_rollup(&r, ns, opts)?;
            }
            std::fs::write(&marker, b"").map_err(io_err("write marker", &marker))?;
            done += 1;
        }
        Ok(done)
    }
}

fn read_rollup_file(path: &std::path::Path) -> Result<Vec<(RollupKey, RollupSums)>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for rb in reader {
        out.extend(rows_of(&rb.map_err(|e| e.to_string())?)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowsight_schema::{FlowRecord, addr_from_v4};
    use std::collections::BTreeMap;

    #[test]
    fn keys_come_back_whole_through_the_packing() {
        let ends = RollupKey {
            bucket_ns: u64::MAX / 60_000_000_000 * 60_000_000_000,
            sampler_address: [0xff; 16],
            in_if: u32::MAX,
            out_if: u32::MAX - 1,
            proto: u8::MAX,
            etype: u16::MAX,
            src_as: u32::MAX - 2,
            dst_as: u32::MAX - 3,
        };
        let other = RollupKey {
            bucket_ns: 0,
            sampler_address: addr_from_v4(0x0a00_0001),
            in_if: 1,
            out_if: 0,
            proto: 6,
            etype: 0x0800,
            src_as: 0,
            dst_as: 15_169,
        };
        let sums = RollupSums {
            flows: 1,
            packets: 2,
            bytes: 3,
            scaled_packets: 4,
            scaled_bytes: 5,
        };
        let mut r = Rollup::new(Tier::M1);
        r.add_rows(&[(ends, sums), (other, sums), (ends, sums)]);
        let mut want = vec![
            (
                ends,
                RollupSums {
                    flows: 2,
                    packets: 4,
                    bytes: 6,
                    scaled_packets: 8,
                    scaled_bytes: 10,
                },
            ),
            (other, sums),
        ];
        want.sort_by_key(|(k, _)| *k);
        assert_eq!(r.rows(), want);
    }

    #[test]
    fn add_batch_sums_as_the_plain_definition_does() {
        // Flows across bucket boundaries (back and forth), from two exporters, one with
        // sampling: each sum must equal a straightforward per-flow grouping.
        let mut b = FlowBatch::default();
        let m = 60_000_000_000u64;
        for i in 0..5_000u64 {
            b.push(&FlowRecord {
                time_flow_start_ns: 1_700_000_000_000_000_000 + (i * 7_919 % 13) * m / 3 + i,
                sampler_address: addr_from_v4(0x0a00_0001 + (i / 700 % 2) as u32),
                in_if: (i % 3) as u32,
                out_if: (i % 5) as u32,
                proto: if i % 4 == 0 { 17 } else { 6 },
                etype: 0x0800,
                src_as: (i % 7) as u32,
                dst_as: 15_169,
                packets: i % 11 + 1,
                bytes: i * 40 + 60,
                sampling_rate: if i / 700 % 2 == 1 { 100 } else { 0 },
                ..FlowRecord::default()
            });
        }
        let mut want: BTreeMap<RollupKey, RollupSums> = BTreeMap::new();
        for i in 0..b.len() {
            let k = RollupKey {
                bucket_ns: b.time_flow_start_ns[i] - b.time_flow_start_ns[i] % m,
                sampler_address: b.sampler_address[i],
                in_if: b.in_if[i],
                out_if: b.out_if[i],
                proto: b.proto[i],
                etype: b.etype[i],
                src_as: b.src_as[i],
                dst_as: b.dst_as[i],
            };
            let rate = b.sampling_rate[i].max(1);
            let s = want.entry(k).or_default();
            s.flows += 1;
            s.packets += b.packets[i];
            s.bytes += b.bytes[i];
            s.scaled_packets += b.packets[i] * rate;
            s.scaled_bytes += b.bytes[i] * rate;
        }
        let mut r = Rollup::new(Tier::M1);
        r.add_batch(&b);
        assert_eq!(r.rows(), want.into_iter().collect::<Vec<_>>());
    }
}
