//! Integer columns (the schema's unsigned numbers left to Parquet's default encoding: flags,
//! TOS, VLANs, interfaces, AS numbers, prefix lengths, MACs...) written as column chunks
//! straight from the arrays' value buffers.
//!
//! Why not arrow-rs's encoder: most of these columns are constant in a flush file (an
//! exporter that does not send VLANs, MPLS labels or ICMP codes gives zeros), and arrow-rs
//! still encodes every value (PLAIN, 4 or 8 bytes a row, in mini-batches with level
//! bookkeeping) and zstd compresses the lot; its dictionary encoder hashes every value in a
//! general interner. Together that was about a third of a flush writer's samples (perf,
//! `bench/ingest.py` v9 at 1.2 M flows/s: `Interner::intern` 5.5% of serve, `write_slice`
//! 3.9%, `write_mini_batch` 3.6%).
//!
//! Here a chunk is one of (Parquet `Encodings.md`):
//! - constant: a dictionary of one value and data pages that are each one RLE run of key 0,
//!   a few bytes whatever the row count;
//! - dictionary (when the column asks for one and its distinct values fit a dictionary page):
//!   the distinct values PLAIN, then `RLE_DICTIONARY` keys, as [`textcol`](crate::textcol)
//!   writes them;
//! - BYTE_STREAM_SPLIT data pages when the column asks for that encoding (ports, MACs);
//! - otherwise PLAIN data pages of the values, compressed with the file's codec.
//!
//! Chunk statistics (min/max, no nulls) are kept where the properties ask for them: readers
//! (DuckDB, DataFusion) prune row groups with them.

use crate::textcol::{self, Chunk, IdTable, TableKey};
use arrow_array::cast::AsArray;
use arrow_array::types::{UInt8Type, UInt16Type, UInt32Type, UInt64Type};
use arrow_array::{Array, ArrayRef, ArrowPrimitiveType, UInt64Array};
use arrow_buffer::ScalarBuffer;
use arrow_schema::DataType;
use parquet::basic::{Compression, Encoding, Type as PhysicalType};
use parquet::errors::ParquetError;
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::schema::types::ColumnDescPtr;
use std::sync::Arc;

/// Largest dictionary page written (arrow-rs's default `dictionary_page_size_limit`).
const DICTIONARY_BYTES: usize = 1 << 20;

/// Whether `dt` is a type [`encode`] handles.
pub(crate) fn handles(dt: &DataType) -> bool {
    matches!(
        dt,
        DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Timestamp(_, None | Some(_))
    )
}

/// How the caller's properties want the column written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted {
    /// The file's codec for this column (see [`textcol::chunk_codec`]).
    pub codec: Compression,
    /// A dictionary when the values fit one (constant chunks always get one).
    pub dictionary: bool,
    /// Chunk min/max statistics.
    pub statistics: bool,
    /// DELTA_BINARY_PACKED pages (the column asks for that encoding), whatever the values.
    pub delta: bool,
    /// BYTE_STREAM_SPLIT pages (the column asks for that encoding) unless the chunk is
    /// constant or dictionary-encoded.
    pub split: bool,
}

/// Encodes the integer column made of `arrays` (one row group's slices, in order). `None`
/// when an array does not fit (nulls, mixed types, a physical type other than the value's):
/// the caller then uses arrow-rs's encoder.
pub(crate) fn encode(
    descr: ColumnDescPtr,
    arrays: &[&ArrayRef],
    want: Wanted,
) -> Result<Option<Chunk>, ParquetError> {
    match arrays.first().map(|a| a.data_type()) {
        Some(DataType::UInt8) => typed::<UInt8Type>(descr, arrays, want),
        Some(DataType::UInt16) => typed::<UInt16Type>(descr, arrays, want),
        Some(DataType::UInt32) => typed::<UInt32Type>(descr, arrays, want),
        Some(DataType::UInt64) => typed::<UInt64Type>(descr, arrays, want),
        // The store's times (never negative, see `write::as_timestamps`): their bits as u64
        // order and encode as the i64 values do.
        Some(DataType::Timestamp(..)) => {
            let mut bits: Vec<ArrayRef> = Vec::with_capacity(arrays.len());
            for a in arrays {
                let data = a.to_data();
                if a.null_count() > 0 || data.buffers().len() != 1 {
                    return Ok(None);
                }
                let values =
                    ScalarBuffer::<u64>::new(data.buffers()[0].clone(), data.offset(), a.len());
                bits.push(Arc::new(UInt64Array::new(values, None)));
            }
            let refs: Vec<&ArrayRef> = bits.iter().collect();
            typed::<UInt64Type>(descr, &refs, want)
        }
        _ => Ok(None),
    }
}

/// An unsigned value and its Parquet physical type: INT32 for up to 32 bits, INT64 for 64
/// (Parquet `LogicalTypes.md`, "Unsigned integers": the bits, compared unsigned).
trait Value: Copy + Ord + Default + TableKey {
    const PHYSICAL: PhysicalType;
    /// Bytes of a PLAIN value.
    const WIDTH: usize;
    fn wide(self) -> u64;
    /// The physical value: for INT32 the 32 bits as i32 (sign-extended), for INT64 as i64.
    fn physical(self) -> i64;
    /// Writes the PLAIN value (little-endian) into `out` of exactly `WIDTH` bytes.
    fn plain(self, out: &mut [u8]);
    /// Chunk statistics; `old` also fills the deprecated min/max fields (signed orders only,
    /// as arrow-rs does).
    fn statistics(min: Self, max: Self, old: bool) -> Statistics;
}

macro_rules! int32_value {
    ($t:ty) => {
        impl Value for $t {
            const PHYSICAL: PhysicalType = PhysicalType::INT32;
            const WIDTH: usize = 4;
            #[inline]
            fn wide(self) -> u64 {
                u64::from(self)
            }
            #[inline]
            fn physical(self) -> i64 {
                i64::from(u32::from(self) as i32)
            }
            #[inline]
            fn plain(self, out: &mut [u8]) {
                out.copy_from_slice(&u32::from(self).to_le_bytes());
            }
            fn statistics(min: Self, max: Self, old: bool) -> Statistics {
                // The bits as i32, as arrow-rs stores unsigned statistics.
                Statistics::Int32(
                    ValueStatistics::new(
                        Some(u32::from(min) as i32),
                        Some(u32::from(max) as i32),
                        None,
                        Some(0),
                        false,
                    )
                    .with_backwards_compatible_min_max(old),
                )
            }
        }
    };
}
int32_value!(u8);
int32_value!(u16);
int32_value!(u32);

impl Value for u64 {
    const PHYSICAL: PhysicalType = PhysicalType::INT64;
    const WIDTH: usize = 8;
    #[inline]
    fn wide(self) -> u64 {
        self
    }
    #[inline]
    fn physical(self) -> i64 {
        self as i64
    }
    #[inline]
    fn plain(self, out: &mut [u8]) {
        out.copy_from_slice(&self.to_le_bytes());
    }
    fn statistics(min: Self, max: Self, old: bool) -> Statistics {
        Statistics::Int64(
            ValueStatistics::new(Some(min as i64), Some(max as i64), None, Some(0), false)
                .with_backwards_compatible_min_max(old),
        )
    }
}

fn typed<T>(
    descr: ColumnDescPtr,
    arrays: &[&ArrayRef],
    want: Wanted,
) -> Result<Option<Chunk>, ParquetError>
where
    T: ArrowPrimitiveType,
    T::Native: Value,
{
    if descr.physical_type() != <T::Native as Value>::PHYSICAL {
        return Ok(None);
    }
    let mut parts: Vec<&[T::Native]> = Vec::with_capacity(arrays.len());
    for a in arrays {
        let Some(p) = a.as_primitive_opt::<T>() else {
            return Ok(None);
        };
        if p.null_count() > 0 {
            return Ok(None);
        }
        // A slice's values are already its own window (row groups are slices).
        parts.push(p.values());
    }
    let rows: usize = parts.iter().map(|p| p.len()).sum();
    let Some((min, max)) = min_max(&parts) else {
        return Ok(None);
    };
    let stats = want
        .statistics
        .then(|| <T::Native as Value>::statistics(min, max, descr.sort_order().is_signed()));
    if want.delta {
        return delta_chunk(descr, &parts, rows, want.codec, stats).map(Some);
    }
    let mut plain = vec![0u8; <T::Native as Value>::WIDTH];
    if min == max {
        min.plain(&mut plain);
        return textcol::dict_chunk(descr, want.codec, plain, 1, Keys::Constant(rows), stats)
            .map(Some);
    }
    if want.dictionary
        && let Some((values, keys)) = dictionary(&parts, rows, min, max)
    {
        let mut plain = vec![0u8; values.len() * <T::Native as Value>::WIDTH];
        for (out, v) in plain
            .chunks_exact_mut(<T::Native as Value>::WIDTH)
            .zip(&values)
        {
            v.plain(out);
        }
        return textcol::dict_chunk(
            descr,
            want.codec,
            plain,
            values.len(),
            Keys::Slice(&keys),
            stats,
        )
        .map(Some);
    }
    if want.split {
        return split_chunk(descr, &parts, rows, want.codec, stats).map(Some);
    }
    plain_chunk(descr, &parts, rows, want.codec, stats).map(Some)
}

/// The smallest and largest value; `None` without rows.
fn min_max<N: Value>(parts: &[&[N]]) -> Option<(N, N)> {
    // Lanes the compiler turns into vector min/max on baseline x86-64 (SSE2): 32 for
    // bytes, halves and words (8 lanes stayed scalar for u8 and u32: ~9 instructions a
    // value in callgrind, against 0.3 for u8, 1.0 for u16 and 4.8 for u32 with 32); 8 for
    // u64, which SSE2 cannot compare in vectors (32 lanes were twice as slow there).
    if <N as Value>::WIDTH == 8 {
        min_max_lanes::<N, 8>(parts)
    } else {
        min_max_lanes::<N, 32>(parts)
    }
}

fn min_max_lanes<N: Value, const L: usize>(parts: &[&[N]]) -> Option<(N, N)> {
    let first = parts.iter().find_map(|p| p.first().copied())?;
    let (mut lo, mut hi) = ([first; L], [first; L]);
    for p in parts {
        let (chunks, rest) = p.as_chunks::<L>();
        for c in chunks {
            for k in 0..L {
                lo[k] = if c[k] < lo[k] { c[k] } else { lo[k] };
                hi[k] = if c[k] > hi[k] { c[k] } else { hi[k] };
            }
        }
        for &v in rest {
            lo[0] = lo[0].min(v);
            hi[0] = hi[0].max(v);
        }
    }
    let lo = lo.into_iter().fold(first, N::min);
    let hi = hi.into_iter().fold(first, N::max);
    Some((lo, hi))
}

/// The keys of a dictionary-encoded chunk.
pub(crate) enum Keys<'a> {
    /// One per row.
    Slice(&'a [u32]),
    /// `rows` keys, all 0 (a one-value dictionary).
    Constant(usize),
}

/// The distinct values of `parts` (all within `min..=max`) in order of appearance and each
/// row's index into them; `None` when they would not fit a dictionary page, or more than half
/// the rows are distinct (a dictionary then saves little over PLAIN and costs a lookup a
/// row).
fn dictionary<N: Value>(parts: &[&[N]], rows: usize, min: N, max: N) -> Option<(Vec<N>, Vec<u32>)> {
    let limit = (rows / 2)
        .max(1)
        .min(DICTIONARY_BYTES / <N as Value>::WIDTH);
    let mut keys: Vec<u32> = Vec::with_capacity(rows);
    let span = max.wide() - min.wide();
    if span < DIRECT_SPAN {
        // A small range (flags, TOS, prefix lengths, interfaces, protocols): ids straight
        // from a table indexed by the value's offset, no hashing.
        let base = min.wide();
        let mut ids = vec![u32::MAX; span as usize + 1];
        let mut values: Vec<N> = Vec::new();
        for p in parts {
            for &v in *p {
                let slot = &mut ids[(v.wide() - base) as usize];
                if *slot == u32::MAX {
                    if values.len() == limit {
                        return None;
                    }
                    *slot = values.len() as u32;
                    values.push(v);
                }
                keys.push(*slot);
            }
        }
        return Some((values, keys));
    }
    let mut table = IdTable::new(256);
    for p in parts {
        if !table.push_keys(p.iter().copied(), limit, &mut keys) {
            return None;
        }
    }
    Some((table.values, keys))
}

/// Value ranges below this many get a direct table in [`dictionary`] (256 KiB of ids).
const DIRECT_SPAN: u64 = 1 << 16;

/// PLAIN data pages of the values, walking `parts` as one stream.
fn plain_chunk<N: Value>(
    descr: ColumnDescPtr,
    parts: &[&[N]],
    rows: usize,
    codec: Compression,
    stats: Option<Statistics>,
) -> Result<Chunk, ParquetError> {
    let w = <N as Value>::WIDTH;
    let mut values = Stream::new(parts);
    textcol::plain_chunk(descr, codec, rows, w, stats, |body, n| {
        values.take(n, |run| {
            let at = body.len();
            body.resize(at + run.len() * w, 0);
            for (out, v) in body[at..].chunks_exact_mut(w).zip(run) {
                v.plain(out);
            }
        });
    })
}

/// A column's parts (one row group's arrays) read as one stream of values.
struct Stream<'a, N> {
    parts: std::slice::Iter<'a, &'a [N]>,
    rest: &'a [N],
}

impl<'a, N> Stream<'a, N> {
    fn new(parts: &'a [&'a [N]]) -> Self {
        Stream {
            parts: parts.iter(),
            rest: &[],
        }
    }

    /// Hands the next `n` values (fewer at the end) to `f`, a slice at a time.
    fn take(&mut self, mut n: usize, mut f: impl FnMut(&'a [N])) {
        while n > 0 {
            if self.rest.is_empty() {
                match self.parts.next() {
                    Some(p) => self.rest = p,
                    None => break,
                }
                continue;
            }
            let k = n.min(self.rest.len());
            f(&self.rest[..k]);
            self.rest = &self.rest[k..];
            n -= k;
        }
    }
}

/// BYTE_STREAM_SPLIT pages (Parquet `Encodings.md`, "Byte Stream Split"): byte k of every
/// value of a page, then byte k + 1 of every value, for the physical width (4 or 8 bytes).
/// Ports and MACs take it: their high streams are zeros, which zstd skips over. arrow-rs's
/// encoder went through its generic mini-batch writer (~90 instructions a port before zstd,
/// callgrind `write_once`); here each stream is one narrowing loop.
fn split_chunk<N: Value>(
    descr: ColumnDescPtr,
    parts: &[&[N]],
    rows: usize,
    codec: Compression,
    stats: Option<Statistics>,
) -> Result<Chunk, ParquetError> {
    let w = <N as Value>::WIDTH;
    // Streams past the value's own bytes are zeros (unsigned values widen with zeros).
    let own = std::mem::size_of::<N>();
    let mut values = Stream::new(parts);
    textcol::pages_chunk(
        descr,
        codec,
        rows,
        SPLIT_PAGE_ROWS,
        Encoding::BYTE_STREAM_SPLIT,
        stats,
        |body, n| {
            let at = body.len();
            body.resize(at + n * w, 0);
            let streams = &mut body[at..];
            let mut i = 0;
            values.take(n, |run| {
                for k in 0..own {
                    let s = &mut streams[k * n + i..k * n + i + run.len()];
                    for (o, v) in s.iter_mut().zip(run) {
                        *o = (v.wide() >> (8 * k)) as u8;
                    }
                }
                i += run.len();
            });
        },
    )
}

/// Values per BYTE_STREAM_SPLIT page: arrow-rs's default row-count limit, which ports had
/// when arrow-rs wrote them (zstd picks its parameters by page size).
const SPLIT_PAGE_ROWS: usize = 20_000;

/// Values per DELTA_BINARY_PACKED page: arrow-rs's default row-count limit, which these
/// columns had before. zstd picks its parameters by input size, and pages above 256 KB got
/// the coarser ones: with 65 536-row pages start times took 4.25 bytes a flow after zstd,
/// with 20 000-row pages 2.56 (`examples/write_once.rs 524288 zstd1`: 9.77 vs 8.95 MB).
const DELTA_PAGE_ROWS: usize = 20_000;

/// DELTA_BINARY_PACKED pages of the values (see [`delta`](crate::delta)).
fn delta_chunk<N: Value>(
    descr: ColumnDescPtr,
    parts: &[&[N]],
    rows: usize,
    codec: Compression,
    stats: Option<Statistics>,
) -> Result<Chunk, ParquetError> {
    let wide = <N as Value>::WIDTH == 8;
    let mut values = Stream::new(parts);
    // One page's values at a time, gathered across the parts (batches) they span.
    let mut page: Vec<i64> = Vec::new();
    textcol::pages_chunk(
        descr,
        codec,
        rows,
        DELTA_PAGE_ROWS,
        Encoding::DELTA_BINARY_PACKED,
        stats,
        |body, n| {
            page.clear();
            values.take(n, |run| page.extend(run.iter().map(|v| v.physical())));
            crate::delta::encode(body, &page, wide);
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_table_gives_dense_stable_ids_through_growth() {
        let mut t = IdTable::<u64>::new(256);
        // Values that differ only in high bits, and small ones, each seen twice.
        let xs: Vec<u64> = (0..5_000u64)
            .map(|i| if i % 2 == 0 { i << 40 } else { i })
            .collect();
        for (i, &x) in xs.iter().enumerate() {
            assert_eq!(t.id(x), i as u32);
        }
        for (i, &x) in xs.iter().enumerate().rev() {
            assert_eq!(t.id(x), i as u32);
        }
        assert_eq!(t.values, xs);
    }

    #[test]
    fn dictionary_keeps_first_appearance_order_across_parts() {
        let a: Vec<u16> = vec![7, 7, 3, 7];
        let b: Vec<u16> = vec![3, 9, 9, 9];
        let (values, keys) = dictionary(&[&a, &b], 8, 3, 9).unwrap();
        assert_eq!(values, vec![7, 3, 9]);
        assert_eq!(keys, vec![0, 0, 1, 0, 1, 2, 2, 2]);
        // Five distinct in eight rows: more than half, no dictionary.
        let c: Vec<u16> = vec![1, 2, 3, 4, 5, 5, 5, 5];
        assert!(dictionary(&[&c], 8, 1, 5).is_none());
        // The same through the hash table (a range too wide for a direct one).
        let a: Vec<u32> = vec![7 << 20, 7 << 20, 3, 7 << 20];
        let b: Vec<u32> = vec![3, 9 << 20, 9 << 20, 9 << 20];
        let (values, keys) = dictionary(&[&a, &b], 8, 3, 9 << 20).unwrap();
        assert_eq!(values, vec![7 << 20, 3, 9 << 20]);
        assert_eq!(keys, vec![0, 0, 1, 0, 1, 2, 2, 2]);
        let c: Vec<u32> = vec![
            1 << 20,
            2 << 20,
            3 << 20,
            4 << 20,
            5 << 20,
            5 << 20,
            5 << 20,
            5,
        ];
        assert!(dictionary(&[&c], 8, 5, 5 << 20).is_none());
    }

    #[test]
    fn min_max_equals_the_values_own_at_every_length_and_width() {
        // Lengths around the 8- and 32-lane chunks, in two parts; random values, then the
        // extremes placed in the middle and last rows.
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d);
        fn check<N: Value + std::fmt::Debug>(v: &[N]) {
            let (a, b) = v.split_at(v.len() / 3);
            let want = v.iter().min().copied().zip(v.iter().max().copied());
            assert_eq!(min_max(&[a, b]), want, "{} values", v.len());
        }
        for len in [0usize, 1, 7, 8, 9, 31, 32, 33, 64, 95, 200] {
            let r: Vec<u64> = (0..len).map(|_| next()).collect();
            check(&r.iter().map(|&v| v as u8).collect::<Vec<_>>());
            check(&r.iter().map(|&v| v as u16).collect::<Vec<_>>());
            check(&r.iter().map(|&v| v as u32).collect::<Vec<_>>());
            check(&r);
            // The maximum in the last row, which the remainder loop reads.
            if len > 0 {
                let mut e = r.clone();
                e[len - 1] = u64::MAX;
                e[len / 2] = 0;
                check(&e);
                check(&e.iter().map(|&v| v as u32).collect::<Vec<_>>());
            }
        }
    }

    #[test]
    fn split_pages_hold_each_byte_of_the_values_in_turn() {
        use parquet::basic::{LogicalType, Repetition};
        use parquet::schema::types::{ColumnDescriptor, ColumnPath, Type};
        let t = Type::primitive_type_builder("p", PhysicalType::INT32)
            .with_repetition(Repetition::REQUIRED)
            .with_logical_type(Some(LogicalType::integer(16, false)))
            .build()
            .unwrap();
        let descr = Arc::new(ColumnDescriptor::new(
            Arc::new(t),
            0,
            0,
            ColumnPath::from("p"),
        ));
        let (a, b): (Vec<u16>, Vec<u16>) = (vec![0x0102, 0xfffe], vec![0x0a0b]);
        let c = split_chunk(descr, &[&a, &b], 3, Compression::UNCOMPRESSED, None).unwrap();
        // One page, its body last: the low bytes of the three values, then the high bytes,
        // then the two zero streams of the INT32 physical type.
        assert!(
            c.bytes.ends_with(&[
                0x02, 0xfe, 0x0b, // byte 0 of each value
                0x01, 0xff, 0x0a, // byte 1
                0, 0, 0, // byte 2: zeros
                0, 0, 0, // byte 3: zeros
            ]),
            "{:02x?}",
            c.bytes
        );
    }

    #[test]
    fn min_max_spans_parts() {
        let a: Vec<u32> = vec![5, u32::MAX, 9];
        let b: Vec<u32> = vec![];
        let c: Vec<u32> = vec![2];
        assert_eq!(min_max(&[&a, &b, &c]), Some((2, u32::MAX)));
        assert_eq!(min_max::<u32>(&[&b]), None);
    }
}
