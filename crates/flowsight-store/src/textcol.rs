//! Enrichment text columns written as dictionary-encoded Parquet column chunks straight from
//! the batch's own dictionary keys.
//!
//! Why not arrow-rs's encoder: given a `DictionaryArray` it still re-interns every row's
//! string (a hash and a compare per value) to build the Parquet dictionary, and with
//! dictionaries off it copies every string and zstd compresses the lot. With a full
//! enrichment setup (24 text columns) either way cost more than the rest of the flush file
//! together: 1.46 G (dictionary) or 1.81 G (plain + zstd) extra instructions for 262 144
//! flows, against 1.52 G for all other columns (callgrind, `examples/write_once.rs`). The
//! keys are already dense dictionary indices, so this writer only bit-packs them; strings are
//! touched once per distinct value.
//!
//! Layout (Parquet format, `Encodings.md` and `README.md` "Data Pages"): one dictionary page
//! (PLAIN byte arrays: 4-byte little-endian length, then the bytes), then data pages v1 of at
//! most [`PAGE_ROWS`] values, each holding the definition levels (RLE, 4-byte length prefix;
//! every value is present) and the keys (`RLE_DICTIONARY`: one byte of bit width, then the
//! RLE / bit-packed hybrid). Pages are compressed with the file's codec (zstd) or left
//! uncompressed.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt32Type;
use arrow_array::{Array, ArrayRef, DictionaryArray};
use arrow_schema::DataType;
use bytes::Bytes;
use parquet::basic::{Compression, Encoding, PageType};
use parquet::column::page::{CompressedPage, Page, PageWriteSpec, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, PageEncodingStats};
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::ColumnDescPtr;
use rustc_hash::FxHashMap;

pub(crate) use crate::intcol::Keys;

/// Values per data page: about 100 KiB of keys at 12 bits, small enough for readers to
/// skip pages, large enough that page headers cost nothing.
pub(crate) const PAGE_ROWS: usize = 65_536;

/// Whether `dt` is the type this writer handles: the schema's text columns.
pub(crate) fn handles(dt: &DataType) -> bool {
    matches!(dt, DataType::Dictionary(k, v) if **k == DataType::UInt32 && **v == DataType::Utf8)
}

/// An encoded column chunk: its bytes (offsets in `close` are relative to them) and the
/// metadata the row group writer splices in.
pub(crate) struct Chunk {
    pub bytes: Bytes,
    pub close: ColumnCloseResult,
}

/// Encodes the text column made of `arrays` (one row group's slices, in order). `None` when
/// an array does not fit the fast path (null keys or values, another key type): the caller
/// then uses arrow-rs's encoder, which handles anything.
pub(crate) fn encode(
    descr: ColumnDescPtr,
    arrays: &[&ArrayRef],
    codec: Compression,
) -> Result<Option<Chunk>, ParquetError> {
    let mut dicts: Vec<&DictionaryArray<UInt32Type>> = Vec::with_capacity(arrays.len());
    for a in arrays {
        let Some(d) = a.as_dictionary_opt::<UInt32Type>() else {
            return Ok(None);
        };
        if d.keys().null_count() > 0 || d.values().null_count() > 0 {
            return Ok(None);
        }
        if d.values().as_string_opt::<i32>().is_none() {
            return Ok(None);
        }
        dicts.push(d);
    }
    let Some(first) = dicts.first() else {
        return Ok(None);
    };
    let rows: usize = dicts.iter().map(|d| d.len()).sum();

    // One dictionary for the chunk. Batches of one flush usually share theirs (same Arc);
    // otherwise values are merged once per distinct value, never per row.
    let shared = dicts
        .iter()
        .all(|d| Arc::ptr_eq(d.values(), first.values()));
    let mut values: Vec<&str> = Vec::new();
    let mut keys: Vec<u32> = Vec::with_capacity(rows);
    if shared {
        values.extend(first.values().as_string::<i32>().iter().flatten());
        for d in &dicts {
            keys.extend_from_slice(d.keys().values());
        }
    } else {
        let mut ids: FxHashMap<&str, u32> = FxHashMap::default();
        for d in &dicts {
            let remap: Vec<u32> = d
                .values()
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(|s| {
                    *ids.entry(s).or_insert_with(|| {
                        values.push(s);
                        (values.len() - 1) as u32
                    })
                })
                .collect();
            for &k in d.keys().values() {
                // Keys index their dictionary (checked by `DictionaryArray`).
                keys.push(remap.get(k as usize).copied().unwrap_or(0));
            }
        }
    }
    if values.is_empty() {
        values.push("");
    }

    let mut plain = Vec::with_capacity(values.iter().map(|v| v.len() + 4).sum());
    for v in &values {
        plain.extend_from_slice(&(v.len() as u32).to_le_bytes());
        plain.extend_from_slice(v.as_bytes());
    }
    dict_chunk(descr, codec, plain, values.len(), Keys::Slice(&keys), None).map(Some)
}

/// A dictionary-encoded column chunk: one dictionary page of `num_values` PLAIN values
/// (`plain`), then data pages of at most [`PAGE_ROWS`] `keys` (indices into it), with chunk
/// `statistics` when given.
pub(crate) fn dict_chunk(
    descr: ColumnDescPtr,
    codec: Compression,
    plain: Vec<u8>,
    num_values: usize,
    keys: Keys<'_>,
    statistics: Option<Statistics>,
) -> Result<Chunk, ParquetError> {
    let rows = match keys {
        Keys::Slice(k) => k.len(),
        Keys::Constant(n) => n,
    };
    let mut sink = TrackedWrite::new(Vec::<u8>::new());
    let mut tally = Tally::default();
    // Every column of a file needs an offset index once one has (arrow-rs's metadata writer
    // expects them all), and readers use it to skip pages: `Tally` keeps it.
    {
        let mut pw = SerializedPageWriter::new(&mut sink);
        let n = plain.len();
        let page = Page::DictionaryPage {
            buf: compress(codec, plain)?,
            num_values: num_values as u32,
            encoding: Encoding::PLAIN,
            is_sorted: false,
        };
        tally.dictionary(&pw.write_page(CompressedPage::new(page, n))?);

        let width = bit_width(num_values.max(1) as u32 - 1);
        let def = descr.max_def_level();
        let mut body = Vec::new();
        for (pi, first) in (0..rows).step_by(PAGE_ROWS).enumerate() {
            let count = (rows - first).min(PAGE_ROWS);
            body.clear();
            all_present(&mut body, count, def);
            body.push(width);
            match keys {
                Keys::Slice(k) => hybrid(&mut body, &k[first..first + count], width),
                Keys::Constant(_) => rle_run(&mut body, count, 0, width),
            }
            let n = body.len();
            let page = Page::DataPage {
                buf: compress(codec, std::mem::take(&mut body))?,
                num_values: count as u32,
                encoding: Encoding::RLE_DICTIONARY,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            };
            tally.data(
                &pw.write_page(CompressedPage::new(page, n))?,
                pi * PAGE_ROWS,
            );
        }
    }
    tally.finish(
        sink,
        descr,
        codec,
        rows,
        Encoding::RLE_DICTIONARY,
        statistics,
    )
}

/// Sizes and page locations of a column chunk, added up page by page.
#[derive(Default)]
pub(crate) struct Tally {
    uncompressed: u64,
    compressed: u64,
    data_offset: Option<i64>,
    data_pages: i32,
    locations: Vec<PageLocation>,
}

impl Tally {
    fn dictionary(&mut self, spec: &PageWriteSpec) {
        self.uncompressed += spec.uncompressed_size as u64;
        self.compressed += spec.compressed_size as u64;
    }

    pub(crate) fn data(&mut self, spec: &PageWriteSpec, first_row: usize) {
        self.dictionary(spec);
        self.data_offset.get_or_insert(spec.offset as i64);
        self.locations.push(PageLocation {
            offset: spec.offset as i64,
            compressed_page_size: spec.bytes_written as i32,
            first_row_index: first_row as i64,
        });
        self.data_pages += 1;
    }

    /// The chunk written to `sink`: data pages of `data` encoding, after a PLAIN dictionary
    /// page when that encoding is `RLE_DICTIONARY`.
    pub(crate) fn finish(
        self,
        sink: TrackedWrite<Vec<u8>>,
        descr: ColumnDescPtr,
        codec: Compression,
        rows: usize,
        data: Encoding,
        statistics: Option<Statistics>,
    ) -> Result<Chunk, ParquetError> {
        let dictionary = data == Encoding::RLE_DICTIONARY;
        // The encodings the chunk uses: levels are RLE; a dictionary page is PLAIN.
        let mut encodings = match data {
            Encoding::PLAIN | Encoding::RLE_DICTIONARY => vec![Encoding::PLAIN, Encoding::RLE],
            other => vec![Encoding::RLE, other],
        };
        let mut stats = Vec::new();
        if dictionary {
            encodings.push(data);
            stats.push(PageEncodingStats {
                page_type: PageType::DICTIONARY_PAGE,
                encoding: Encoding::PLAIN,
                count: 1,
            });
        }
        stats.push(PageEncodingStats {
            page_type: PageType::DATA_PAGE,
            encoding: data,
            count: self.data_pages,
        });
        let bytes = Bytes::from(sink.into_inner()?);
        let mut metadata = ColumnChunkMetaData::builder(descr);
        if let Some(s) = statistics {
            metadata = metadata.set_statistics(s);
        }
        let metadata = metadata
            .set_compression(codec)
            .set_encodings(encodings)
            .set_page_encoding_stats(stats)
            .set_dictionary_page_offset(dictionary.then_some(0))
            .set_total_compressed_size(self.compressed as i64)
            .set_total_uncompressed_size(self.uncompressed as i64)
            .set_num_values(rows as i64)
            .set_data_page_offset(self.data_offset.unwrap_or(0))
            .build()?;
        Ok(Chunk {
            close: ColumnCloseResult {
                bytes_written: bytes.len() as u64,
                rows_written: rows as u64,
                metadata,
                bloom_filter: None,
                column_index: None,
                offset_index: Some(OffsetIndexMetaData {
                    page_locations: self.locations,
                    unencoded_byte_array_data_bytes: None,
                }),
            },
            bytes,
        })
    }
}

/// Whether `dt` is a type [`encode_fixed`] handles: the schema's addresses.
pub(crate) fn handles_fixed(dt: &DataType) -> bool {
    matches!(dt, DataType::FixedSizeBinary(16))
}

/// Encodes an address column (`FixedSizeBinary(16)`): dictionary-encoded when at most half
/// its rows are distinct (see [`address_dictionary`]), else as PLAIN data pages straight
/// from the arrays' value buffers: a PLAIN fixed-length byte array is exactly those bytes (Parquet
/// `Encodings.md`, "Plain"). arrow-rs's encoder instead builds a `Bytes` handle per value (an
/// atomic increment and decrement each), which was ~17% of a flush writer's time (perf,
/// `bench/ingest.py` at 800 000 flows/s). No statistics (the caller checks the column has
/// none configured). `None` when an array has nulls: the caller falls back to arrow-rs.
pub(crate) fn encode_fixed(
    descr: ColumnDescPtr,
    arrays: &[&ArrayRef],
    codec: Compression,
) -> Result<Option<Chunk>, ParquetError> {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(arrays.len());
    for a in arrays {
        let Some(f) = a.as_fixed_size_binary_opt() else {
            return Ok(None);
        };
        if f.null_count() > 0 || f.value_length() != 16 {
            return Ok(None);
        }
        // A slice's value buffer is already its own window (row groups are slices).
        let w = f.value_length() as usize;
        let Some(bytes) = f.value_data().get(..f.len() * w) else {
            return Ok(None);
        };
        parts.push(bytes);
    }
    let rows: usize = arrays.iter().map(|a| a.len()).sum();
    if let Some((plain, keys)) = address_dictionary(&parts, rows) {
        let distinct = plain.len() / 16;
        return dict_chunk(descr, codec, plain, distinct, Keys::Slice(&keys), None).map(Some);
    }
    // Walk the arrays' bytes as one stream cut into pages of PAGE_ROWS values.
    let mut parts = parts.into_iter();
    let mut rest: &[u8] = parts.next().unwrap_or_default();
    plain_chunk(descr, codec, rows, 16, None, |body, n| {
        let mut want = n * 16;
        while want > 0 {
            if rest.is_empty() {
                match parts.next() {
                    Some(p) => rest = p,
                    None => break,
                }
                continue;
            }
            let take = want.min(rest.len());
            body.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            want -= take;
        }
    })
    .map(Some)
}

/// A column chunk of PLAIN data pages of at most [`PAGE_ROWS`] values of `width` bytes:
/// `fill(body, n)` appends a page's next `n` values, in order. With chunk `statistics` when
/// given.
pub(crate) fn plain_chunk(
    descr: ColumnDescPtr,
    codec: Compression,
    rows: usize,
    width: usize,
    statistics: Option<Statistics>,
    mut fill: impl FnMut(&mut Vec<u8>, usize),
) -> Result<Chunk, ParquetError> {
    pages_chunk(
        descr,
        codec,
        rows,
        PAGE_ROWS,
        Encoding::PLAIN,
        statistics,
        |body, n| {
            body.reserve(n * width + 16);
            fill(body, n);
        },
    )
}

/// A column chunk of data pages in `encoding`, `page_rows` rows each (no dictionary):
/// `fill(body, n)` appends a page's `n` values, encoded.
pub(crate) fn pages_chunk(
    descr: ColumnDescPtr,
    codec: Compression,
    rows: usize,
    page_rows: usize,
    encoding: Encoding,
    statistics: Option<Statistics>,
    mut fill: impl FnMut(&mut Vec<u8>, usize),
) -> Result<Chunk, ParquetError> {
    let mut sink = TrackedWrite::new(Vec::<u8>::new());
    let mut tally = Tally::default();
    {
        let mut pw = SerializedPageWriter::new(&mut sink);
        let def = descr.max_def_level();
        let mut first_row = 0usize;
        while first_row < rows {
            let n = (rows - first_row).min(page_rows.max(1));
            // A fresh buffer per page: the compressor takes it.
            let mut body: Vec<u8> = Vec::new();
            all_present(&mut body, n, def);
            fill(&mut body, n);
            let len = body.len();
            let page = Page::DataPage {
                buf: compress(codec, body)?,
                num_values: n as u32,
                encoding,
                def_level_encoding: Encoding::RLE,
                rep_level_encoding: Encoding::RLE,
                statistics: None,
            };
            tally.data(&pw.write_page(CompressedPage::new(page, len))?, first_row);
            first_row += n;
        }
    }
    tally.finish(sink, descr, codec, rows, encoding, statistics)
}

/// The distinct addresses of `parts` (16-byte values, `rows` in all) as a PLAIN dictionary
/// page body, and each row's index into it; `None` when more than half the rows are
/// distinct, where a dictionary saves little over the plain values.
///
/// Why: exporters' flows share few addresses (an exporter's own, its next hops, the busy
/// hosts), and the plain column hands zstd 16 bytes a row to compress on the hot path and
/// to decompress for every query. Hashing a `u128` costs less than compressing it
/// (callgrind, `examples/write_once.rs`, see BENCHMARKS.md).
fn address_dictionary(parts: &[&[u8]], rows: usize) -> Option<(Vec<u8>, Vec<u32>)> {
    let limit = (rows / 2).max(1);
    let mut table = IdTable::<u128>::new(1024);
    let mut keys: Vec<u32> = Vec::with_capacity(rows);
    for p in parts {
        let values = p.chunks_exact(16).map(|v| {
            let mut a = [0u8; 16];
            a.copy_from_slice(v);
            u128::from_ne_bytes(a)
        });
        if !table.push_keys(values, limit, &mut keys) {
            return None;
        }
    }
    let mut plain = Vec::with_capacity(table.values.len().max(1) * 16);
    for v in &table.values {
        plain.extend_from_slice(&v.to_ne_bytes());
    }
    if plain.is_empty() {
        plain.extend_from_slice(&[0u8; 16]);
    }
    Some((plain, keys))
}

/// A value an [`IdTable`] can hold: `mix` folds it to 64 bits for the multiplicative hash.
pub(crate) trait TableKey: Copy + Eq {
    fn mix(self) -> u64;
}

impl TableKey for u128 {
    #[inline]
    fn mix(self) -> u64 {
        // Both halves: IPv4-mapped addresses differ only in the low one.
        (self as u64) ^ ((self >> 64) as u64).rotate_left(29)
    }
}

macro_rules! table_key {
    ($($t:ty),*) => {$(
        impl TableKey for $t {
            #[inline]
            fn mix(self) -> u64 {
                u64::from(self)
            }
        }
    )*};
}
table_key!(u8, u16, u32, u64);

/// Values to dense ids: open addressing with linear probing over a multiplicative hash. A
/// general-purpose map hashed IPv4-mapped addresses (12 constant bytes) into long probe
/// chains here: ~570 instructions an address (callgrind).
pub(crate) struct IdTable<K> {
    /// Id + 1 per slot, 0 for empty; the length is a power of two at most half full.
    slots: Vec<u32>,
    /// Each id's value.
    pub(crate) values: Vec<K>,
    /// The last value [`IdTable::push_keys`] looked up, and its id.
    last: Option<(K, u32)>,
}

impl<K: TableKey> IdTable<K> {
    /// An empty table of `slots` slots (a power of two).
    pub(crate) fn new(slots: usize) -> IdTable<K> {
        IdTable {
            slots: vec![0; slots.next_power_of_two().max(2)],
            values: Vec::new(),
            last: None,
        }
    }

    /// Appends the id of each of `values` to `keys`; `false` (stop) once more than `limit`
    /// values are distinct. Runs of one value (an exporter's own address, a quiet AS) skip
    /// the table.
    #[inline]
    pub(crate) fn push_keys(
        &mut self,
        values: impl Iterator<Item = K>,
        limit: usize,
        keys: &mut Vec<u32>,
    ) -> bool {
        for x in values {
            let id = match self.last {
                Some((l, id)) if l == x => id,
                _ => {
                    let id = self.id(x);
                    if self.values.len() > limit {
                        return false;
                    }
                    self.last = Some((x, id));
                    id
                }
            };
            keys.push(id);
        }
        true
    }

    #[inline]
    fn slot(&self, x: K) -> usize {
        let h = x.mix().wrapping_mul(0x9e37_79b9_7f4a_7c15);
        // The high bits are the well-mixed ones.
        (h >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    /// The id of `x`, given the next free one if it is new.
    #[inline]
    pub(crate) fn id(&mut self, x: K) -> u32 {
        let mask = self.slots.len() - 1;
        let mut i = self.slot(x);
        loop {
            match self.slots[i] {
                0 => break,
                s => {
                    if self.values[s as usize - 1] == x {
                        return s - 1;
                    }
                }
            }
            i = (i + 1) & mask;
        }
        self.values.push(x);
        let id = self.values.len() as u32 - 1;
        self.slots[i] = id + 1;
        if self.values.len() * 2 > self.slots.len() {
            self.grow();
        }
        id
    }

    fn grow(&mut self) {
        self.slots = vec![0; self.slots.len() * 2];
        let mask = self.slots.len() - 1;
        for (id, &x) in self.values.iter().enumerate() {
            let mut i = self.slot(x);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = id as u32 + 1;
        }
    }
}

/// The codec these chunks use when `codec` is asked: zstd and LZ4 (raw blocks) as asked,
/// anything else uncompressed.
pub(crate) fn chunk_codec(codec: Compression) -> Compression {
    match codec {
        Compression::ZSTD(_) | Compression::LZ4_RAW => codec,
        _ => Compression::UNCOMPRESSED,
    }
}

thread_local! {
    /// One zstd context per writer thread and level: creating one per page allocated (and
    /// page-faulted) its tables for every page.
    static ZSTD: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

pub(crate) fn compress(codec: Compression, data: Vec<u8>) -> Result<Bytes, ParquetError> {
    let level = match codec {
        Compression::ZSTD(level) => level,
        // Parquet's LZ4_RAW is one LZ4 block, no frame (`Compression.md`).
        Compression::LZ4_RAW => return Ok(Bytes::from(lz4_flex::block::compress(&data))),
        _ => return Ok(Bytes::from(data)),
    };
    let level = level.compression_level();
    let err = |e: std::io::Error| ParquetError::External(Box::new(e));
    ZSTD.with(|z| {
        let mut z = z.borrow_mut();
        if z.as_ref().is_none_or(|(l, _)| *l != level) {
            *z = Some((level, zstd::bulk::Compressor::new(level).map_err(err)?));
        }
        match z.as_mut() {
            Some((_, c)) => c.compress(&data).map(Bytes::from).map_err(err),
            None => Ok(Bytes::from(data)),
        }
    })
}

/// The definition levels of a data page of `n` values that are all present: one RLE run of
/// the maximum level `def`, behind its 4-byte length. Nothing for a required column.
pub(crate) fn all_present(body: &mut Vec<u8>, n: usize, def: i16) {
    if def > 0 {
        let mut levels = Vec::with_capacity(8);
        rle_run(&mut levels, n, def as u32, bit_width(def as u32));
        body.extend_from_slice(&(levels.len() as u32).to_le_bytes());
        body.extend_from_slice(&levels);
    }
}

/// Bits needed for values up to `max`; at least 1 (some readers mishandle width 0).
fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()).max(1) as u8
}

pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// An RLE run: header `count << 1`, then the value in `ceil(width / 8)` little-endian bytes.
fn rle_run(out: &mut Vec<u8>, count: usize, value: u32, width: u8) {
    varint(out, (count as u64) << 1);
    out.extend_from_slice(&value.to_le_bytes()[..usize::from(width).div_ceil(8)]);
}

/// A bit-packed run of `values`: header `groups << 1 | 1`, then groups of 8 values packed
/// least significant bit first. A short last group is padded with zeros (allowed only at the
/// end of a page: readers stop at the page's value count).
fn bit_packed(out: &mut Vec<u8>, values: &[u32], width: u8) {
    varint(out, (values.len().div_ceil(8) as u64) << 1 | 1);
    let w = usize::from(width);
    // Room for every group plus one store's overhang, so each group is one fixed-size store
    // (see `pack8`) and no per-group growth check fails.
    out.reserve(values.len().div_ceil(8) * w + 16);
    // One loop per common width: shifts by constants (about a third fewer instructions
    // than by a width known only at run time).
    macro_rules! by_width {
        ($($n:literal)*) => {
            match w {
                $($n => pack_all::<$n>(out, values),)*
                _ => pack_all_any(out, values, w),
            }
        };
    }
    by_width!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);
}

fn pack_all<const W: usize>(out: &mut Vec<u8>, values: &[u32]) {
    pack_all_any(out, values, W);
}

#[inline(always)]
fn pack_all_any(out: &mut Vec<u8>, values: &[u32], w: usize) {
    let (groups, rest) = values.as_chunks::<8>();
    for g in groups {
        pack8(out, g, w);
    }
    if !rest.is_empty() {
        let mut g = [0u32; 8];
        g[..rest.len()].copy_from_slice(rest);
        pack8(out, &g, w);
    }
}

/// Eight values of `w` bits: exactly `w` bytes. Written as one 8- or 16-byte store and cut
/// back to `w` bytes: a copy of a variable-length slice was a `memcpy` call per group (the
/// packing of dictionary keys cost ~11 instructions a key in callgrind, `write_once`).
#[inline(always)]
fn pack8(out: &mut Vec<u8>, g: &[u32; 8], w: usize) {
    if w <= 8 {
        // 8 × 8 bits fit one u64 (u128 shifts cost several instructions each).
        let mut acc = 0u64;
        for (k, &v) in g.iter().enumerate() {
            acc |= u64::from(v) << (k * w);
        }
        out.extend_from_slice(&acc.to_le_bytes());
        out.truncate(out.len() - (8 - w));
    } else if w <= 16 {
        // 8 × 16 bits fit one u128: no per-byte loop for the usual dictionary sizes.
        let mut acc = 0u128;
        for (k, &v) in g.iter().enumerate() {
            acc |= u128::from(v) << (k * w);
        }
        out.extend_from_slice(&acc.to_le_bytes());
        out.truncate(out.len() - (16 - w));
    } else {
        let (mut acc, mut bits) = (0u64, 0);
        for &v in g {
            acc |= u64::from(v) << bits;
            bits += w;
            while bits >= 8 {
                out.push(acc as u8);
                acc >>= 8;
                bits -= 8;
            }
        }
    }
}

/// Runs this long or longer become RLE runs; shorter ones are cheaper bit-packed.
const MIN_RUN: usize = 16;

/// The RLE / bit-packed hybrid encoding of `keys` (without length prefix). Literals are
/// always a contiguous range of `keys`, so they are packed in place, never copied.
fn hybrid(out: &mut Vec<u8>, keys: &[u32], width: u8) {
    let n = keys.len();
    let mut lit = 0; // literals pending: keys[lit..i]
    let mut i = 0;
    while i < n {
        // A run of MIN_RUN (16) or more equal keys holds a whole group of 8 that starts at a
        // multiple of 8: groups that are not constant are skipped whole (one vector compare
        // for 8 keys, where most keys of interfaces or AS numbers start no run at all).
        if i % 8 == 0 && i + 8 <= n {
            let g = &keys[i..i + 8];
            if g.iter().fold(false, |d, &k| d | (k != g[0])) {
                i += 8;
                continue;
            }
            // A constant group: its run starts where the keys before it stop matching.
            while i > lit && keys[i - 1] == g[0] {
                i -= 1;
            }
        }
        let v = keys[i];
        let mut j = i + 1;
        while j < n && keys[j] == v {
            j += 1;
        }
        if j - i >= MIN_RUN {
            // Bit-packed runs hold whole groups of 8: top the pending literals up from
            // this run, then the rest of the run (at least 9 values) is one RLE run.
            let fill = (8 - (i - lit) % 8) % 8;
            if i + fill > lit {
                bit_packed(out, &keys[lit..i + fill], width);
            }
            rle_run(out, j - i - fill, v, width);
            lit = j;
        }
        i = j;
    }
    if lit < n {
        bit_packed(out, &keys[lit..n], width);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_decodes_to_the_keys() {
        // Runs of 1 - 40 equal keys at every offset from the groups of 8 the encoder checks
        // first, at widths 1 - 20, decoded by the reader (`dictkeys::hybrid`).
        let mut next = crate::xorshift(0x2545_f491_4f6c_dd1d);
        for width in [1u8, 2, 3, 7, 8, 9, 15, 16, 17, 20] {
            let max = (1u64 << width) - 1;
            let mut keys: Vec<u32> = Vec::new();
            while keys.len() < 5_000 {
                let run = 1 + (next() % 40) as usize;
                let v = (next() & max) as u32;
                keys.extend(std::iter::repeat_n(v, run));
            }
            let mut out = Vec::new();
            hybrid(&mut out, &keys, width);
            let mut got = Vec::new();
            crate::dictkeys::hybrid(&out, u32::from(width), keys.len(), &mut got).unwrap();
            assert_eq!(got, keys, "width {width}");
        }
    }

    #[test]
    fn hybrid_bytes() {
        let mut out = Vec::new();
        // Width 3, keys 0..8 then 20 × 5.
        let mut keys: Vec<u32> = (0..8).collect();
        keys.extend(std::iter::repeat_n(5, 20));
        hybrid(&mut out, &keys, 3);
        assert_eq!(
            out,
            vec![
                0x03, // bit-packed header: 1 group << 1 | 1
                // 0..8 at 3 bits, LSB first: 000 001 010 011 100 101 110 111
                0b1000_1000,
                0b1100_0110,
                0b1111_1010,
                0x28, // RLE header: 20 << 1
                0x05, // value 5 in one byte
            ]
        );
    }

    #[test]
    fn short_tail_is_padded_and_run_tops_up_literals() {
        let mut out = Vec::new();
        // 3 literals, then a run of 17 ones: 5 of the run fill the group, 12 stay RLE.
        let mut keys = vec![2, 3, 2];
        keys.extend(std::iter::repeat_n(1, 17));
        keys.push(3);
        hybrid(&mut out, &keys, 2);
        assert_eq!(
            out,
            vec![
                0x03,        // 1 bit-packed group
                0b0110_1110, // 2, 3, 2, 1 (2 bits each, LSB first)
                0b0101_0101, // 1, 1, 1, 1
                0x18,        // RLE: 12 << 1
                0x01,        // value 1
                0x03,        // last group: 3 then 7 zeros of padding
                0b0000_0011,
                0b0000_0000,
            ]
        );
    }

    #[test]
    fn address_table_gives_dense_stable_ids_through_growth() {
        let mut t = IdTable::<u128>::new(1024);
        // IPv4-mapped (12 constant bytes) and IPv6 addresses, each seen twice.
        let addrs: Vec<u128> = (0..50_000u128)
            .map(|i| {
                if i % 5 == 0 {
                    0x2001_0db8 << 96 | i
                } else {
                    0xffff << 32 | i
                }
            })
            .collect();
        for (i, &a) in addrs.iter().enumerate() {
            assert_eq!(t.id(a), i as u32);
        }
        for (i, &a) in addrs.iter().enumerate().rev() {
            assert_eq!(t.id(a), i as u32);
        }
        assert_eq!(t.values, addrs);
        assert!(t.slots.len() >= 2 * addrs.len());
    }

    #[test]
    fn address_dictionary_gives_up_when_most_rows_are_distinct() {
        let bytes: Vec<u8> = (0..100u128).flat_map(|i| (i % 40).to_ne_bytes()).collect();
        let (plain, keys) = address_dictionary(&[&bytes[..800], &bytes[800..]], 100).unwrap();
        assert_eq!(plain.len(), 40 * 16);
        assert_eq!(keys[..3], [0, 1, 2]);
        assert_eq!(keys[40..43], [0, 1, 2]);
        let distinct: Vec<u8> = (0..100u128).flat_map(|i| i.to_ne_bytes()).collect();
        assert!(address_dictionary(&[&distinct], 100).is_none());
    }

    #[test]
    fn widths() {
        assert_eq!(bit_width(0), 1);
        assert_eq!(bit_width(1), 1);
        assert_eq!(bit_width(2), 2);
        assert_eq!(bit_width(255), 8);
        assert_eq!(bit_width(256), 9);
        let mut out = Vec::new();
        rle_run(&mut out, 300, 0x1ff, 9);
        // 600 as a varint, then 0x1ff in two bytes.
        assert_eq!(out, vec![0xd8, 0x04, 0xff, 0x01]);
    }
}
