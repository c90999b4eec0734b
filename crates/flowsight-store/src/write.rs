//! Atomic Parquet file writes.

use crate::files::{FileKind, FileMeta, file_name, partition_dir};
use crate::{Store, StoreError, io_err};
use crate::{intcol, textcol};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;
use flowsight_schema::FlowBatch;
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Compression of a file's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// None (costs more than lz4 to write: the disk takes 4-8x the bytes).
    None,
    /// LZ4 (raw block format).
    Lz4,
    /// zstd at a level (1 writes about as fast as lz4 and is smaller).
    Zstd(i32),
}

/// How files are encoded.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Rows per Parquet row group (the unit a time-range read can skip).
    pub row_group_rows: usize,
    /// Compression of flush files: written on the hot path, and final when they are large
    /// (compaction only rewrites small ones).
    pub flush_codec: Codec,
    /// zstd level for compacted files.
    pub zstd_level: i32,
    /// `fsync` files and directories (off only in benchmarks of the encoder itself).
    pub sync: bool,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            row_group_rows: 1 << 20,
            flush_codec: Codec::Zstd(1),
            zstd_level: 3,
            sync: true,
        }
    }
}

fn properties(kind: FileKind, opts: &WriteOptions, start_ns_per_unit: u64) -> WriterProperties {
    let zstd = |l: i32| Compression::ZSTD(ZstdLevel::try_new(l).unwrap_or_default());
    let compression = match (kind, opts.flush_codec) {
        (FileKind::Flush, Codec::None) => Compression::UNCOMPRESSED,
        (FileKind::Flush, Codec::Lz4) => Compression::LZ4_RAW,
        (FileKind::Flush, Codec::Zstd(l)) => zstd(l),
        (FileKind::Compacted | FileKind::Rollup, _) => zstd(opts.zstd_level),
    };
    let mut b = WriterProperties::builder()
        .set_compression(compression)
        .set_max_row_group_row_count(Some(opts.row_group_rows))
        .set_created_by(format!("flowsight {}", env!("CARGO_PKG_VERSION")))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        // Dictionary encoding hashes every value: on flush files (the hot path) it cost
        // ~35% more instructions for ~4% smaller files after zstd (callgrind, write_once
        // example, 262 144 generated flows). Compaction, off the hot path, keeps it.
        .set_dictionary_enabled(kind != FileKind::Flush);
    // Columns that are nearly unique per row gain nothing from a dictionary and pay for
    // building one, in compacted files too.
    for c in [
        "time_received_ns",
        "time_flow_start_ns",
        "time_flow_end_ns",
        "bytes",
        "sequence_num",
    ] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    // Flush files too use one for these low-cardinality numbers (interfaces, prefix lengths,
    // AS numbers, TCP flags, ethertype, TOS, TTL): as dictionary indices they cost a few bits
    // a row. write_once, 262 144 generated flows, zstd 1: 18.9 -> 17.6 bytes/flow for 3% more
    // instructions (callgrind, arrow-rs's encoder). With `intcol`'s cheaper dictionaries,
    // adding flags, ethertype, TOS and TTL: 17.35 -> 17.11 bytes/flow for 2% more
    // instructions. MACs made files larger (0.59 -> 0.84 bytes a row each).
    for c in [
        "in_if",
        "out_if",
        "src_net",
        "dst_net",
        "src_as",
        "dst_as",
        "tcp_flags",
        "etype",
        "ip_tos",
        "ip_ttl",
    ] {
        b = b.set_column_dictionary_enabled(ColumnPath::from(c), true);
    }
    // Times are nearly sorted within a file: stored as bit-packed deltas (Parquet
    // DELTA_BINARY_PACKED) they leave zstd a fraction of the bytes. write_once, 262 144
    // generated flows, zstd 1: 20.1 -> 18.9 bytes/flow, instructions unchanged (callgrind).
    for c in ["time_received_ns", "time_flow_start_ns", "time_flow_end_ns"] {
        b = b.set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED);
    }
    // Sequence numbers climb by small steps too: 0.16 -> 0.06 bytes a row.
    b = b.set_column_encoding(
        ColumnPath::from("sequence_num"),
        Encoding::DELTA_BINARY_PACKED,
    );
    // The columns every statistic reads (times, packets, bytes) and the address keys are
    // decompressed by every query: as zstd pages that was 35% of `-s srcip/bytes` over 10 M
    // flows (perf). Counters as bit-packed deltas need no codec (zstd kept only ~20% of
    // their bytes: 2.9 vs 2.3 bytes a row for bytes); addresses take LZ4, which
    // decompresses several times faster than zstd. Start times stay zstd: LZ4 kept 3.7 of
    // their 5.0 delta-packed bytes a row, zstd 2.6, and without those 1.1 bytes IPFIX files
    // stay under half of nfcapd's (35.6 bytes/flow) at ~25 ms more per 10 M flows queried.
    // bench/query.py, 10 M generated flows: queries ~2x faster.
    for c in ["bytes", "packets"] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(c), false)
            .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED)
            .set_column_compression(ColumnPath::from(c), Compression::UNCOMPRESSED);
    }
    for c in ["src_addr", "dst_addr"] {
        b = b.set_column_compression(ColumnPath::from(c), Compression::LZ4_RAW);
    }
    // Start times in ms (NetFlow v5/v9, IPFIX's millisecond fields) take 20 bits a row
    // fewer than in ns: bit-packed, they are as small without zstd as with it (2.52 vs 2.47
    // bytes a row, pyarrow, 10.6 M v9 flows from bench/ingest.py), and decode 3x faster
    // than zstd-compressed ns (2.2 vs 7.1 ns a row).
    if start_ns_per_unit == 1_000_000 {
        b = b.set_column_compression(
            ColumnPath::from("time_flow_start_ns"),
            Compression::UNCOMPRESSED,
        );
    }
    // Ports as one byte stream per byte of the value (BYTE_STREAM_SPLIT) under zstd: the two
    // high streams are zeros, which zstd skips over. Smaller than PLAIN (1.60 vs 1.69 bytes a
    // row on bench/query.py's flows) and decoded about twice as fast (pyarrow; zstd has half
    // as many literal bytes to produce).
    for c in ["src_port", "dst_port"] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(c), false)
            .set_column_encoding(ColumnPath::from(c), Encoding::BYTE_STREAM_SPLIT);
    }
    // MACs (48 bits in an INT64) the same way: their two high streams are zeros and the
    // vendor bytes nearly constant, so zstd has a third of the PLAIN bytes to match. PLAIN
    // MACs were the largest zstd input of a flush file (16 of ~30 bytes a row) and 19% of
    // its instructions; split: `write_once 524288 zstd1` 756.6 M -> 716.5 M instructions
    // for +0.2 bytes a flow (8 838 288 -> 8 942 021 bytes). A dictionary saved as much
    // for +0.42, LZ4 twice as much for +1.9. Compacted files (off the hot path) keep a
    // dictionary where at most half the rows are distinct, as before.
    for c in ["src_mac", "dst_mac"] {
        b = b
            .set_column_dictionary_enabled(ColumnPath::from(c), kind != FileKind::Flush)
            .set_column_encoding(ColumnPath::from(c), Encoding::BYTE_STREAM_SPLIT);
    }
    // The protocol, which most filters test, as a few bits of dictionary index a row
    // instead of 4 zstd-compressed bytes: 0.12 -> 0.26 bytes a row on disk.
    b = b
        .set_column_dictionary_enabled(ColumnPath::from("proto"), true)
        .set_column_compression(ColumnPath::from("proto"), Compression::UNCOMPRESSED);
    // Min/max of addresses cost a byte comparison per value and rarely prune anything
    // (addresses are spread over every file); time and number columns keep theirs, which
    // time-range reads (and DuckDB, DataFusion) prune row groups with.
    for f in flowsight_schema::FIELDS {
        if f.kind == flowsight_schema::Kind::Addr {
            b = b.set_column_statistics_enabled(ColumnPath::from(f.name), EnabledStatistics::None);
        }
        // Enrichment text (countries, AS names, tags): no min/max (string comparisons per
        // value). Their dictionaries come from `textcol`, whatever these properties say.
        if f.kind == flowsight_schema::Kind::Text {
            b = b.set_column_statistics_enabled(ColumnPath::from(f.name), EnabledStatistics::None);
        }
    }
    b.build()
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A name part unique across processes and restarts: pid, time, per-process counter.
fn unique_id(now_ns: u64) -> String {
    format!(
        "{:x}{:x}{:x}",
        std::process::id(),
        now_ns,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// Writes `batch` to a new file of `kind` in the partition of `now_ns`: to a hidden
/// temporary first, synced, then renamed into place, so readers and crashes only ever see
/// whole files.
pub(crate) fn write_file(
    store: &Store,
    batch: FlowBatch,
    now_ns: u64,
    kind: FileKind,
    opts: &WriteOptions,
) -> Result<Option<FileMeta>, StoreError> {
    let dir = store.flows_dir().join(partition_dir(now_ns));
    write_in(&dir, &Prepared::new(batch), now_ns, kind, opts, &mut |_| {
        Ok(())
    })
}

/// A batch converted for writing, kept whole so a failed write can be retried as is.
#[derive(Debug, Clone)]
pub struct Prepared {
    rbs: Vec<arrow_array::RecordBatch>,
    rows: usize,
    min_start: u64,
    max_start: u64,
}

impl Prepared {
    /// Converts `batch` (without copying its columns).
    pub fn new(batch: FlowBatch) -> Prepared {
        Prepared::from_batches(vec![batch])
    }

    /// Converts several batches bound for one file, without concatenating them: the file
    /// is written batch after batch, so the collector never copies its buffered flows into
    /// one large batch first.
    pub fn from_batches(batches: Vec<FlowBatch>) -> Prepared {
        let mut p = Prepared {
            rbs: Vec::with_capacity(batches.len()),
            rows: 0,
            min_start: u64::MAX,
            max_start: 0,
        };
        // One file has one schema: every batch gets the enrichment columns any of them has
        // (workers may differ, e.g. only one saw an exporter's interface names).
        let mut batches: Vec<FlowBatch> = batches.into_iter().filter(|b| !b.is_empty()).collect();
        let mut wanted: Vec<&str> = Vec::new();
        for b in &batches {
            for f in flowsight_schema::FIELDS.iter().filter(|f| f.enrichment) {
                if b.has_column(f.name) && !wanted.contains(&f.name) {
                    wanted.push(f.name);
                }
            }
        }
        if !wanted.is_empty() {
            for b in &mut batches {
                b.materialize(&wanted);
            }
        }
        for b in &batches {
            for &t in &b.time_flow_start_ns {
                p.min_start = p.min_start.min(t);
                p.max_start = p.max_start.max(t);
            }
        }
        // Times as Parquet timestamps in ms where every value of the file is whole ms, else
        // ns: NetFlow v9's ms times then take ~20 bits a row fewer than as ns.
        let scales: [u64; 3] = [
            exact_scale(batches.iter().map(|b| b.time_received_ns.as_slice())),
            exact_scale(batches.iter().map(|b| b.time_flow_start_ns.as_slice())),
            exact_scale(batches.iter().map(|b| b.time_flow_end_ns.as_slice())),
        ];
        for mut b in batches {
            for (col, scale) in [
                (&mut b.time_received_ns, scales[0]),
                (&mut b.time_flow_start_ns, scales[1]),
                (&mut b.time_flow_end_ns, scales[2]),
            ] {
                divide(col, scale);
            }
            p.rows += b.len();
            p.rbs.push(as_timestamps(b.into_record_batch(), &scales));
        }
        if p.rows == 0 {
            p.min_start = 0;
        }
        p
    }

    /// Wraps an Arrow batch of another table (rollups) with its time range.
    pub(crate) fn from_record_batch(rb: arrow_array::RecordBatch, min: u64, max: u64) -> Prepared {
        Prepared {
            rows: rb.num_rows(),
            rbs: vec![rb],
            min_start: min,
            max_start: max,
        }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
}

/// Writes `rbs` as one Parquet file: arrow-rs encodes every column but the enrichment text
/// ones, which [`textcol`] encodes from their dictionary keys (see there why).
fn encode(
    f: File,
    schema: SchemaRef,
    rbs: &[RecordBatch],
    mut props: WriterProperties,
    row_group_rows: usize,
) -> Result<File, ParquetError> {
    let codec = textcol::chunk_codec(props.compression(&ColumnPath::from("src_country")));
    let pschema = ArrowSchemaConverter::new().convert(&schema)?;
    add_encoded_arrow_schema_to_metadata(&schema, &mut props);
    let props = Arc::new(props);
    let mut fw = SerializedFileWriter::new(f, pschema.root_schema_ptr(), props.clone())?;
    let factory = ArrowRowGroupWriterFactory::new(&fw, schema.clone());
    for (gi, group) in row_groups(rbs, row_group_rows.max(1)).iter().enumerate() {
        let writers = factory.create_column_writers(gi)?;
        let mut rg = fw.next_row_group()?;
        for (ci, (field, mut w)) in schema.fields().iter().zip(writers).enumerate() {
            let arrays: Vec<&ArrayRef> = group.iter().map(|rb| rb.column(ci)).collect();
            if textcol::handles(field.data_type())
                && let Some(descr) = pschema.columns().get(ci)
                && let Some(c) = textcol::encode(descr.clone(), &arrays, codec)?
            {
                rg.append_column(&c.bytes, c.close)?;
                continue;
            }
            // Addresses: dictionary or PLAIN pages from the value buffers, where no
            // statistics are asked (arrow-rs does those). In compacted files too: arrow-rs
            // never dictionary-encodes a FIXED_LEN_BYTE_ARRAY column in Parquet 1.0 files
            // (`has_dictionary_support`), so they had none before.
            if textcol::handles_fixed(field.data_type())
                && let Some(descr) = pschema.columns().get(ci)
                && let path = descr.path()
                && props.statistics_enabled(path) == EnabledStatistics::None
                && let Some(c) = textcol::encode_fixed(
                    descr.clone(),
                    &arrays,
                    textcol::chunk_codec(props.compression(path)),
                )?
            {
                rg.append_column(&c.bytes, c.close)?;
                continue;
            }
            // Unsigned numbers left to the default encoding or asking for
            // DELTA_BINARY_PACKED or BYTE_STREAM_SPLIT: see `intcol` and `delta` why.
            if intcol::handles(field.data_type())
                && let Some(descr) = pschema.columns().get(ci)
                && let path = descr.path()
                && let encoding = props.encoding(path)
                && let delta = encoding == Some(Encoding::DELTA_BINARY_PACKED)
                && let split = encoding == Some(Encoding::BYTE_STREAM_SPLIT)
                && (delta || split || encoding.is_none())
                && let Some(c) = intcol::encode(
                    descr.clone(),
                    &arrays,
                    intcol::Wanted {
                        codec: textcol::chunk_codec(props.compression(path)),
                        dictionary: props.dictionary_enabled(path),
                        statistics: props.statistics_enabled(path) != EnabledStatistics::None,
                        delta,
                        split,
                    },
                )?
            {
                rg.append_column(&c.bytes, c.close)?;
                continue;
            }
            for a in arrays {
                for leaf in compute_leaves(field, a)? {
                    w.write(&leaf)?;
                }
            }
            w.close()?.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
    }
    fw.into_inner()
}

/// 1 000 000 (ns per ms) when every value is a whole millisecond, else 1 (ns); 0 where a
/// value does not fit a Parquet timestamp (i64 ns: after the year 2262), which keeps the
/// column as plain numbers.
///
/// No microseconds: start times whole in µs (IPFIX at 1 M flows/s) took 3.77 bytes a row
/// as bit-packed µs deltas, which zstd cannot shrink (their bit widths are not whole
/// bytes), against 2.81 as ns deltas under zstd (pyarrow, one flush file of 1.6 M flows
/// from 10 M generated IPFIX flows with nanosecond fields). Milliseconds pay: 2.51 bytes a row with no codec at all.
fn exact_scale<'a>(cols: impl Iterator<Item = &'a [u64]>) -> u64 {
    // A constant divisor (a multiply, not a division, per value) and chunks of 64: a few
    // branches per chunk on the common path.
    let mut ms = true;
    for col in cols {
        for c in col.chunks(64) {
            if c.iter().fold(0, |a, &t| a | t) > i64::MAX as u64 {
                return 0;
            }
            if ms && !c.iter().all(|&t| t % 1_000_000 == 0) {
                ms = false;
            }
        }
    }
    if ms { 1_000_000 } else { 1 }
}

/// `col` in the unit [`exact_scale`] chose: ms divides, ns (1) and plain numbers (0) stay.
fn divide(col: &mut [u64], scale: u64) {
    if scale == 1_000_000 {
        // A constant divisor: the compiler multiplies instead of dividing.
        col.iter_mut().for_each(|t| *t /= 1_000_000);
    }
}

/// `rb` with its time columns (already divided by `scales`, see
/// [`flowsight_schema::arrow::TIME_COLUMNS`]) typed as UTC timestamps of that unit. The value
/// buffers are shared, not copied.
fn as_timestamps(rb: RecordBatch, scales: &[u64; 3]) -> RecordBatch {
    use arrow_array::types::{TimestampMillisecondType, TimestampNanosecondType};
    use arrow_array::{Array, PrimitiveArray, UInt64Array};
    use arrow_buffer::ScalarBuffer;
    use arrow_schema::{DataType, Schema, TimeUnit};
    let schema = rb.schema();
    let mut fields = schema.fields().to_vec();
    let mut columns = rb.columns().to_vec();
    for (name, &scale) in flowsight_schema::arrow::TIME_COLUMNS.iter().zip(scales) {
        let Ok(i) = schema.index_of(name) else {
            continue;
        };
        let Some(u) = columns[i].as_any().downcast_ref::<UInt64Array>() else {
            continue;
        };
        if scale == 0 || u.null_count() > 0 {
            continue;
        }
        let values: ScalarBuffer<i64> = ScalarBuffer::new(u.values().inner().clone(), 0, u.len());
        let (unit, array): (TimeUnit, ArrayRef) = match scale {
            1_000_000 => (
                TimeUnit::Millisecond,
                Arc::new(
                    PrimitiveArray::<TimestampMillisecondType>::new(values, None)
                        .with_timezone("UTC"),
                ),
            ),
            _ => (
                TimeUnit::Nanosecond,
                Arc::new(
                    PrimitiveArray::<TimestampNanosecondType>::new(values, None)
                        .with_timezone("UTC"),
                ),
            ),
        };
        fields[i] = Arc::new(
            fields[i]
                .as_ref()
                .clone()
                .with_data_type(DataType::Timestamp(unit, Some("UTC".into()))),
        );
        columns[i] = array;
    }
    let schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    // Same lengths, and each replaced column has its field's new type.
    RecordBatch::try_new(schema, columns).unwrap_or(rb)
}

/// Splits `rbs` into row groups of at most `max` rows (slices share the buffers).
fn row_groups(rbs: &[RecordBatch], max: usize) -> Vec<Vec<RecordBatch>> {
    let mut groups = vec![Vec::new()];
    let mut in_group = 0;
    for rb in rbs {
        let mut off = 0;
        while off < rb.num_rows() {
            if in_group == max {
                groups.push(Vec::new());
                in_group = 0;
            }
            let n = (rb.num_rows() - off).min(max - in_group);
            if let Some(g) = groups.last_mut() {
                g.push(rb.slice(off, n));
            }
            off += n;
            in_group += n;
        }
    }
    groups.retain(|g| !g.is_empty());
    groups
}

pub(crate) fn write_in(
    dir: &Path,
    batch: &Prepared,
    now_ns: u64,
    kind: FileKind,
    opts: &WriteOptions,
    before_rename: &mut dyn FnMut(&str) -> Result<(), StoreError>,
) -> Result<Option<FileMeta>, StoreError> {
    if batch.rows() == 0 {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let rows = batch.rows() as u64;
    let (min, max) = (batch.min_start, batch.max_start);
    let name = file_name(kind, min, max, rows, &unique_id(now_ns));
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(&name);
    let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    let schema = match batch.rbs.first() {
        Some(rb) => rb.schema(),
        None => flowsight_schema::arrow::schema_ref(),
    };
    // The unit `Prepared::from_batches` chose for the start times (1: not a timestamp).
    let start_ns_per_unit =
        flowsight_schema::arrow::stored_ns_per_unit(&schema, "time_flow_start_ns");
    let perr = |e: parquet::errors::ParquetError| StoreError::Parquet {
        path: tmp.clone(),
        message: e.to_string(),
    };
    let res = (|| {
        let f = encode(
            f,
            schema,
            &batch.rbs,
            properties(kind, opts, start_ns_per_unit),
            opts.row_group_rows,
        )
        .map_err(perr)?;
        if opts.sync {
            f.sync_all().map_err(io_err("sync", &tmp))?;
        }
        Ok(f.metadata().map(|m| m.len()).unwrap_or(0))
    })();
    let size = match res {
        Ok(s) => s,
        Err(e) => {
            // Never leave a partial temporary behind (a full disk must not fill further).
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    if let Err(e) = before_rename(&name) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &path).map_err(io_err("rename into place", &path))?;
    if opts.sync {
        sync_dir(dir)?;
    }
    let partition_ns = now_ns / 3_600_000_000_000 * 3_600_000_000_000;
    Ok(Some(FileMeta {
        path,
        kind,
        min_start: min,
        max_start: max,
        rows,
        partition_ns,
        size,
    }))
}

#[cfg(test)]
mod tests {
    use super::exact_scale;

    #[test]
    fn exact_scale_is_ms_when_every_value_is_whole_ms_else_ns() {
        let ms: Vec<u64> = (0..200)
            .map(|i| 1_795_341_600_000_000_000 + i * 1_000_000)
            .collect();
        let mut us = ms.clone();
        // Past the first chunk of 64, in the second slice.
        us[130] += 5_000;
        let mut ns = us.clone();
        ns[199] += 1;
        let scale = |parts: &[&[u64]]| exact_scale(parts.iter().copied());
        assert_eq!(scale(&[&ms]), 1_000_000);
        // Whole microseconds are kept in ns (see exact_scale why).
        assert_eq!(scale(&[&ms[..100], &us[100..]]), 1);
        assert_eq!(scale(&[&ms, &us, &ns]), 1);
        // A time past the year 2262 does not fit an i64 timestamp.
        assert_eq!(scale(&[&ms, &[u64::MAX - 999_999]]), 0);
        assert_eq!(scale(&[]), 1_000_000);
    }
}
