//! The store's number and address columns decoded from their pages straight into a
//! [`FlowBatch`].
//!
//! arrow-rs builds a fresh Arrow array per column and batch (new buffers the kernel zeroes,
//! then zero-filled and copied again into the batch): a third of a statistic's time over
//! 10 M flows went to page faults, memset and memmove, plus arrow-rs's decoders (perf,
//! `flowsight query -s proto/flows`). Here batches end where pages do, so a page is
//! decoded straight into the batch's own vector (reused from batch to batch and file to
//! file); a page a batch takes only part of is decoded into the column's buffer first.
//!
//! What is decoded (Parquet `Encodings.md`):
//!
//! - INT32, INT64 and 16-byte FIXED_LEN_BYTE_ARRAY values, required (no levels);
//! - PLAIN, dictionary (PLAIN dictionary page, RLE_DICTIONARY or PLAIN_DICTIONARY data
//!   pages: a bit width and the RLE/bit-packing hybrid) and, for integers,
//!   DELTA_BINARY_PACKED and BYTE_STREAM_SPLIT;
//! - data pages v1 and v2, read and decompressed by [`crate::chunk`] into buffers kept
//!   from file to file.
//!
//! [`supported`] decides from a file's metadata, before anything is read, whether every
//! column asked for is of these; otherwise the caller reads the file through arrow-rs.
//! A page that then breaks its chunk's promise is a damaged file (an error), not a fallback:
//! rows already handed out cannot be taken back.

use crate::chunk::{Chunk, PageKind, PageRef};
use crate::dictkeys::{hybrid, uleb128};
use flowsight_schema::{Addr, ColumnMut, FlowBatch, Physical};
use parquet::basic::{Encoding, Type as PhysicalType};
use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use std::fs::File;
use std::sync::Arc;

/// Most rows per batch handed out (batches end where pages do, ~20 000 rows in the store's
/// files): a batch's columns stay in L2 while a statistic runs over them.
pub(crate) const BATCH_ROWS: usize = 32 * 1024;

/// Whether column chunk `cc` holds values this module decodes into a column of registry
/// type `physical`.
fn chunk_supported(cc: &ColumnChunkMetaData, physical: Physical) -> bool {
    let d = cc.column_descr();
    if d.max_def_level() != 0 || d.max_rep_level() != 0 {
        return false;
    }
    let int = match (d.physical_type(), physical) {
        (PhysicalType::INT32, Physical::UInt8 | Physical::UInt16 | Physical::UInt32)
        | (PhysicalType::INT64, Physical::UInt64) => true,
        (PhysicalType::FIXED_LEN_BYTE_ARRAY, Physical::Binary16) if d.type_length() == 16 => false,
        _ => return false,
    };
    crate::chunk::codec_supported(cc.compression())
        && cc.encodings().all(|e| match e {
        Encoding::PLAIN
        | Encoding::PLAIN_DICTIONARY
        | Encoding::RLE_DICTIONARY
        // The level encoding, listed even where a required column has no levels.
        | Encoding::RLE => true,
        Encoding::DELTA_BINARY_PACKED | Encoding::BYTE_STREAM_SPLIT => int,
        _ => false,
    })
}

/// Whether every leaf in `leaves` of row groups `groups` can be read here, given the
/// registry type of each leaf (`None`: not a registry column, or not one decoded here).
pub(crate) fn supported(
    meta: &ParquetMetaData,
    groups: &[usize],
    leaves: &[(usize, Option<Physical>)],
) -> bool {
    leaves.iter().all(|&(leaf, physical)| {
        physical.is_some_and(|p| {
            groups.iter().all(|&g| {
                meta.row_groups()
                    .get(g)
                    .and_then(|rg| rg.columns().get(leaf))
                    .is_some_and(|cc| chunk_supported(cc, p))
            })
        })
    })
}

/// Decoded values of one page (or one dictionary).
#[derive(Debug)]
enum Values {
    /// Integers of either width, as their bits (INT32 zero-extended).
    Ints(Vec<u64>),
    Addrs(Vec<Addr>),
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Ints(v) => v.len(),
            Values::Addrs(v) => v.len(),
        }
    }

    fn clear(&mut self) {
        match self {
            Values::Ints(v) => v.clear(),
            Values::Addrs(v) => v.clear(),
        }
    }
}

/// One column of the file: its chunk in the current row group, that group's dictionary
/// and the page being handed out.
pub(crate) struct Column {
    /// Registry name (the batch column filled).
    name: &'static str,
    leaf: usize,
    physical: PhysicalType,
    /// Nanoseconds per stored unit of a time column (1 for anything else).
    scale: u64,
    chunk: Chunk,
    /// Whether `chunk` holds the current row group's (set by [`Column::start_group`]).
    open: bool,
    dict: Values,
    page: Values,
    /// Values of `page` already handed out.
    at: usize,
    /// The next page, its header read and its values not (see [`Column::ready`]).
    pending: Option<PageRef>,
    /// Scratch: dictionary indices, and a delta page's last miniblocks padded for
    /// unaligned loads.
    indices: Vec<u32>,
    padded: Vec<u8>,
}

/// A scan worker's buffers, kept from file to file.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The batch handed out.
    pub(crate) batch: FlowBatch,
    /// Columns being read (the first `n` of them, for a file reading `n`).
    pub(crate) cols: Vec<Column>,
    /// The key column's indices over the whole file, and the batch's share of them.
    pub(crate) file_keys: Vec<u32>,
    pub(crate) keys: crate::scan::DictKeys,
    /// The key column's chunk (the other columns each have theirs).
    pub(crate) chunk: Chunk,
}

/// Columns for `want` (registry name, leaf, physical type, ns per unit of a time column),
/// reusing the buffers of `cols` (a [`Scratch`]'s).
pub(crate) fn columns(
    cols: &mut Vec<Column>,
    want: impl Iterator<Item = (&'static str, usize, PhysicalType, u64)>,
) -> &mut [Column] {
    let mut n = 0;
    for (name, leaf, physical, scale) in want {
        match cols.get_mut(n) {
            Some(c) => c.reuse(name, leaf, physical, scale),
            None => cols.push(Column::new(name, leaf, physical, scale)),
        }
        n += 1;
    }
    &mut cols[..n]
}

/// A damaged page: what the error says, for the quarantine warning.
pub(crate) type PageError = String;

impl std::fmt::Debug for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Column")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Column {
    pub(crate) fn new(
        name: &'static str,
        leaf: usize,
        physical: PhysicalType,
        scale: u64,
    ) -> Column {
        let empty = || {
            if physical == PhysicalType::FIXED_LEN_BYTE_ARRAY {
                Values::Addrs(Vec::new())
            } else {
                Values::Ints(Vec::new())
            }
        };
        Column {
            name,
            leaf,
            physical,
            scale,
            chunk: Chunk::default(),
            open: false,
            dict: empty(),
            page: empty(),
            at: 0,
            pending: None,
            indices: Vec::new(),
            padded: Vec::new(),
        }
    }

    /// This column's buffers for another one (the next file's): a scan reuses them, so
    /// its memory is not handed back and faulted in again, file after file.
    pub(crate) fn reuse(
        &mut self,
        name: &'static str,
        leaf: usize,
        physical: PhysicalType,
        scale: u64,
    ) {
        let fixed = physical == PhysicalType::FIXED_LEN_BYTE_ARRAY;
        if fixed != matches!(self.page, Values::Addrs(_)) {
            *self = Column::new(name, leaf, physical, scale);
            return;
        }
        self.name = name;
        self.leaf = leaf;
        self.physical = physical;
        self.scale = scale;
        self.open = false;
        self.dict.clear();
        self.page.clear();
        self.at = 0;
        self.pending = None;
    }

    /// Starts row group `g` of `file` (`file_len` bytes).
    pub(crate) fn start_group(
        &mut self,
        file: &Arc<File>,
        file_len: u64,
        meta: &ParquetMetaData,
        g: usize,
    ) -> Result<(), PageError> {
        let cc = meta
            .row_groups()
            .get(g)
            .and_then(|rg| rg.columns().get(self.leaf))
            .ok_or_else(|| format!("column {} missing from row group {g}", self.name))?;
        self.open = false;
        self.chunk
            .open(file, file_len, cc)
            .map_err(|e| format!("column {}: {e}", self.name))?;
        self.open = true;
        self.dict.clear();
        self.page.clear();
        self.at = 0;
        self.pending = None;
        Ok(())
    }

    /// Values this column can hand out before it decodes another page: what is left of
    /// the decoded one, else the next page's count (its header is read, its values not).
    /// A batch of this many rows takes the page whole, decoded straight into the batch.
    pub(crate) fn ready(&mut self) -> Result<usize, PageError> {
        if self.at < self.page.len() {
            return Ok(self.page.len() - self.at);
        }
        if self.pending.is_none() {
            self.load()
                .map_err(|e| format!("column {}: {e}", self.name))?;
        }
        Ok(self.pending.as_ref().map_or(0, |p| p.num_values))
    }

    /// Row offsets within the row group where this column's data pages start after the
    /// current position, and where the last ends, into `out` (from the headers only).
    pub(crate) fn page_starts(&mut self, out: &mut Vec<usize>) -> Result<(), PageError> {
        let mut counts = Vec::new();
        self.chunk
            .page_counts(&mut counts)
            .map_err(|e| format!("column {}: {e}", self.name))?;
        out.clear();
        let mut at = 0usize;
        out.push(at);
        for c in counts {
            at = at.saturating_add(c);
            out.push(at);
        }
        Ok(())
    }

    /// Passes over the next `k` values: pages wholly inside them are not decompressed.
    pub(crate) fn skip(&mut self, mut k: usize) -> Result<(), PageError> {
        let name = self.name;
        let ctx = |e: PageError| format!("column {name}: {e}");
        while k > 0 {
            if self.at < self.page.len() {
                let d = k.min(self.page.len() - self.at);
                self.at += d;
                k -= d;
                continue;
            }
            if self.pending.is_none() {
                self.load().map_err(ctx)?;
            }
            let Some(p) = self.pending.take() else {
                return Err(ctx("no page".into()));
            };
            if p.num_values <= k {
                k -= p.num_values;
                continue;
            }
            self.page_from(&p).map_err(ctx)?;
        }
        Ok(())
    }

    /// Decodes page `p` into the column's page buffer, to be handed out from `at` 0.
    fn page_from(&mut self, p: &PageRef) -> Result<(), PageError> {
        self.page.clear();
        self.at = 0;
        let o = match &mut self.page {
            Values::Ints(v) => Out::Ints(v),
            Values::Addrs(v) => Out::Addrs(v),
        };
        let data = self.chunk.values(p)?;
        decode(
            p,
            data,
            o,
            self.physical,
            &self.dict,
            &mut self.indices,
            &mut self.padded,
        )
    }

    /// Replaces the batch's column with the next `n` values.
    pub(crate) fn take(&mut self, n: usize, b: &mut FlowBatch) -> Result<(), PageError> {
        let name = self.name;
        let mut out = b
            .column_mut(name)
            .ok_or_else(|| format!("column {name} is not in the schema"))?;
        clear(&mut out);
        let mut have = 0;
        let ctx = |e: PageError| format!("column {name}: {e}");
        while have < n {
            if self.at == self.page.len() {
                if self.pending.is_none() {
                    self.load().map_err(ctx)?;
                }
                let Some(p) = self.pending.take() else {
                    return Err(ctx("no page".into()));
                };
                // A page the batch takes whole goes straight into the batch's column: one of
                // the page's own type, or a narrow one (ports, protocols) where the encoding
                // needs no 64-bit pass. Otherwise it is decoded into `page` and copied.
                let narrow = matches!(
                    p.encoding,
                    Encoding::PLAIN
                        | Encoding::BYTE_STREAM_SPLIT
                        | Encoding::RLE_DICTIONARY
                        | Encoding::PLAIN_DICTIONARY
                );
                let direct = p.num_values <= n - have
                    && match &out {
                        ColumnMut::U64(_) => matches!(self.page, Values::Ints(_)),
                        ColumnMut::Addr(_) => matches!(self.page, Values::Addrs(_)),
                        ColumnMut::U8(_) | ColumnMut::U16(_) | ColumnMut::U32(_) => narrow,
                        ColumnMut::I32(_) => false,
                    };
                if !direct {
                    self.page_from(&p).map_err(ctx)?;
                } else {
                    let data = self.chunk.values(&p).map_err(ctx)?;
                    let (phys, dict, idx, pad) = (
                        self.physical,
                        &self.dict,
                        &mut self.indices,
                        &mut self.padded,
                    );
                    let done = match &mut out {
                        ColumnMut::U64(v) => {
                            decode(&p, data, Out::Ints(v), phys, dict, idx, pad).map(|()| true)
                        }
                        ColumnMut::Addr(v) => {
                            decode(&p, data, Out::Addrs(v), phys, dict, idx, pad).map(|()| true)
                        }
                        ColumnMut::U8(v) => decode_narrow(&p, data, *v, dict, idx),
                        ColumnMut::U16(v) => decode_narrow(&p, data, *v, dict, idx),
                        ColumnMut::U32(v) => decode_narrow(&p, data, *v, dict, idx),
                        ColumnMut::I32(_) => Ok(false),
                    };
                    if !done.map_err(ctx)? {
                        return Err(ctx(format!("page encoded {} not decoded", p.encoding)));
                    }
                    have += p.num_values;
                    continue;
                }
            }
            let k = (n - have).min(self.page.len() - self.at);
            if !append(&self.page, self.at, k, &mut out) {
                return Err(ctx("values of another type than the column's".into()));
            }
            self.at += k;
            have += k;
        }
        // Times stored in ms or µs become the batch's ns (a foreign file's out-of-range
        // values wrap rather than panic).
        if self.scale != 1
            && let ColumnMut::U64(v) = &mut out
        {
            let scale = self.scale;
            v.iter_mut().for_each(|t| *t = t.wrapping_mul(scale));
        }
        Ok(())
    }

    /// Reads page headers up to the next data page with values, into `pending` (taking a
    /// dictionary page on the way).
    fn load(&mut self) -> Result<(), PageError> {
        if !self.open {
            return Err("read before its row group".into());
        }
        loop {
            let p = self
                .chunk
                .next_page()?
                .ok_or("fewer values than the row group's rows")?;
            match p.kind {
                PageKind::Dictionary => {
                    if self.dict.len() != 0 {
                        return Err("second dictionary page".into());
                    }
                    if !matches!(p.encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY) {
                        return Err(format!("dictionary page encoded {}", p.encoding));
                    }
                    let buf = self.chunk.values(&p)?;
                    let out = match &mut self.dict {
                        Values::Ints(v) => Out::Ints(v),
                        Values::Addrs(v) => Out::Addrs(v),
                    };
                    plain(buf, self.physical, p.num_values, out)?;
                    continue;
                }
                PageKind::DataV2 if p.num_nulls != 0 => {
                    return Err("nulls in a required column".into());
                }
                PageKind::Data | PageKind::DataV2 => {}
            }
            if p.num_values > 0 {
                self.pending = Some(p);
                return Ok(());
            }
        }
    }
}

/// Where a page's values go: a column's page buffer, or the batch's column itself.
enum Out<'a> {
    Ints(&'a mut Vec<u64>),
    Addrs(&'a mut Vec<Addr>),
}

impl Out<'_> {
    fn len(&self) -> usize {
        match self {
            Out::Ints(v) => v.len(),
            Out::Addrs(v) => v.len(),
        }
    }
}

/// Appends the values of page `p` (its bytes after any levels: `data`) to `out`: exactly
/// `p.num_values` of them, or an error.
fn decode(
    p: &PageRef,
    data: &[u8],
    mut out: Out<'_>,
    physical: PhysicalType,
    dict: &Values,
    indices: &mut Vec<u32>,
    tail: &mut Vec<u8>,
) -> Result<(), PageError> {
    let before = out.len();
    let n = p.num_values;
    match (p.encoding, &mut out) {
        (Encoding::PLAIN, _) => plain(data, physical, n, out.reborrow())?,
        (Encoding::BYTE_STREAM_SPLIT, Out::Ints(v)) => byte_stream_split(data, physical, n, v)?,
        (Encoding::DELTA_BINARY_PACKED, Out::Ints(v)) => delta(data, n, v, tail)?,
        (Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY, _) => {
            dictionary(data, n, dict, indices, out.reborrow())?
        }
        (e, _) => return Err(format!("data page encoded {e}")),
    }
    let got = out.len() - before;
    if got != n {
        return Err(format!("page holds {got} values, its header says {n}"));
    }
    Ok(())
}

impl Out<'_> {
    fn reborrow(&mut self) -> Out<'_> {
        match self {
            Out::Ints(v) => Out::Ints(v),
            Out::Addrs(v) => Out::Addrs(v),
        }
    }
}

/// The batch types INT32 values are narrowed into: their low bits, as arrow-rs narrows a
/// Parquet INT32 into UInt8, UInt16 or UInt32.
trait Narrow: Copy + Default {
    const BYTES: usize;
    fn low(x: u64) -> Self;
    /// Sets byte `k` (below `BYTES`).
    fn with_byte(self, b: u8, k: usize) -> Self;
}

macro_rules! narrow {
    ($($t:ty),*) => { $(
        impl Narrow for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn low(x: u64) -> $t {
                x as $t
            }
            #[inline(always)]
            fn with_byte(self, b: u8, k: usize) -> $t {
                self | (<$t>::from(b) << (8 * k))
            }
        }
    )* };
}
narrow!(u8, u16, u32);

/// Appends the values of INT32 page `p` (bytes `data`) to a narrow batch column, for the
/// encodings that need no 64-bit pass (PLAIN, BYTE_STREAM_SPLIT: only the streams of the
/// bytes kept are read; dictionaries). `Ok(false)`, nothing appended, for the others.
/// Straight into the batch: through the 64-bit page buffer and a second narrowing pass,
/// the ports and protocols of a filtered `-s dstport` cost ~8% more (perf).
fn decode_narrow<T: Narrow>(
    p: &PageRef,
    data: &[u8],
    out: &mut Vec<T>,
    dict: &Values,
    indices: &mut Vec<u32>,
) -> Result<bool, PageError> {
    let n = p.num_values;
    let before = out.len();
    match p.encoding {
        Encoding::PLAIN => {
            let bytes = data
                .get(..n.checked_mul(4).ok_or("page too large")?)
                .ok_or_else(|| format!("{n} values of 4 bytes in a page of {}", data.len()))?;
            out.extend(
                bytes
                    .chunks_exact(4)
                    .map(|c| T::low(u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))),
            );
        }
        Encoding::BYTE_STREAM_SPLIT => {
            if data.len() < n.checked_mul(4).ok_or("page too large")? {
                return Err(format!("{n} values of 4 bytes in a page of {}", data.len()));
            }
            out.resize(before + n, T::default());
            let dst = &mut out[before..];
            for (k, stream) in data.chunks_exact(n.max(1)).enumerate().take(T::BYTES) {
                for (o, &b) in dst.iter_mut().zip(stream) {
                    *o = o.with_byte(b, k);
                }
            }
        }
        Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY => {
            let Values::Ints(d) = dict else {
                return Err("dictionary of another type".into());
            };
            dictionary_indices(data, n, d.len(), indices)?;
            out.extend(indices.iter().map(|&i| T::low(d[i as usize])));
        }
        _ => return Ok(false),
    }
    let got = out.len() - before;
    if got != n {
        return Err(format!("page holds {got} values, its header says {n}"));
    }
    Ok(true)
}

/// The `n` indices of a dictionary data page (a bit width, then the RLE/bit-packing
/// hybrid) into `indices`, each checked against a dictionary of `dict_len` values.
fn dictionary_indices(
    data: &[u8],
    n: usize,
    dict_len: usize,
    indices: &mut Vec<u32>,
) -> Result<(), PageError> {
    let (&width, rest) = data.split_first().ok_or("empty dictionary page")?;
    if width > 32 {
        return Err(format!("dictionary index width {width}"));
    }
    indices.clear();
    hybrid(rest, u32::from(width), n, indices).ok_or("damaged index runs")?;
    // One pass to check (it vectorizes), one to look up (the caller's).
    let max = indices.iter().fold(0, |m, &i| m.max(i));
    if !indices.is_empty() && max as usize >= dict_len {
        return Err(format!("index {max} beyond a dictionary of {dict_len}"));
    }
    Ok(())
}

/// A dictionary data page: a bit width, then the indices as the RLE/bit-packing hybrid.
fn dictionary(
    data: &[u8],
    n: usize,
    dict: &Values,
    indices: &mut Vec<u32>,
    out: Out<'_>,
) -> Result<(), PageError> {
    dictionary_indices(data, n, dict.len(), indices)?;
    match (dict, out) {
        (Values::Ints(d), Out::Ints(p)) => {
            p.extend(indices.iter().map(|&i| d[i as usize]));
        }
        (Values::Addrs(d), Out::Addrs(p)) => {
            p.extend(indices.iter().map(|&i| d[i as usize]));
        }
        _ => return Err("dictionary of another type".into()),
    }
    Ok(())
}

fn clear(out: &mut ColumnMut<'_>) {
    match out {
        ColumnMut::U8(v) => v.clear(),
        ColumnMut::U16(v) => v.clear(),
        ColumnMut::U32(v) => v.clear(),
        ColumnMut::U64(v) => v.clear(),
        ColumnMut::I32(v) => v.clear(),
        ColumnMut::Addr(v) => v.clear(),
    }
}

/// Appends values `at..at + k` of `page` to `out`, narrowed to the column's type the way
/// arrow-rs narrows a Parquet INT32 into UInt8/UInt16/UInt32 (the low bits). `false` for
/// values of another kind than the column's (`supported` rules that out; never filled in).
fn append(page: &Values, at: usize, k: usize, out: &mut ColumnMut<'_>) -> bool {
    match (page, out) {
        (Values::Ints(p), ColumnMut::U8(v)) => v.extend(p[at..at + k].iter().map(|&x| x as u8)),
        (Values::Ints(p), ColumnMut::U16(v)) => v.extend(p[at..at + k].iter().map(|&x| x as u16)),
        (Values::Ints(p), ColumnMut::U32(v)) => v.extend(p[at..at + k].iter().map(|&x| x as u32)),
        (Values::Ints(p), ColumnMut::U64(v)) => v.extend_from_slice(&p[at..at + k]),
        (Values::Addrs(p), ColumnMut::Addr(v)) => v.extend_from_slice(&p[at..at + k]),
        _ => return false,
    }
    true
}

/// PLAIN values: little-endian INT32 / INT64, or 16-byte values back to back.
fn plain(buf: &[u8], physical: PhysicalType, n: usize, out: Out<'_>) -> Result<(), PageError> {
    let width = match physical {
        PhysicalType::INT32 => 4,
        PhysicalType::INT64 => 8,
        _ => 16,
    };
    let bytes = buf
        .get(..n.checked_mul(width).ok_or("page too large")?)
        .ok_or_else(|| format!("{n} values of {width} bytes in a page of {}", buf.len()))?;
    match out {
        Out::Ints(v) if width == 4 => v.extend(
            bytes
                .chunks_exact(4)
                .map(|c| u64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        ),
        Out::Ints(v) if width == 8 => v.extend(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())),
        ),
        Out::Addrs(v) if width == 16 => v.extend(
            bytes
                .chunks_exact(16)
                .map(|c| <Addr>::try_from(c).unwrap_or_default()),
        ),
        _ => return Err("plain values of another type".into()),
    }
    Ok(())
}

/// Fills `out` with one miniblock's values, `w` bits each in `data` (which holds them and
/// 16 bytes more), each added to `min_delta` and to the value before (`last` first);
/// returns the last value.
fn miniblock(w: usize, data: &[u8], min_delta: u64, last: u64, out: &mut [u64]) -> u64 {
    // One copy of the loop per bit width, so that every shift and offset within a group of
    // 8 values is a constant (perf: the loop with variable shifts took ~1.1 ns a value).
    macro_rules! widths {
        ($($w:literal)*) => {
            match w {
                $( $w => unpack_deltas::<$w>(data, min_delta, last, out), )*
                _ => last,
            }
        };
    }
    widths!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29
        30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58
        59 60 61 62 63 64)
}

/// [`miniblock`] for width `W`.
#[inline(always)]
fn unpack_deltas<const W: usize>(data: &[u8], min_delta: u64, last: u64, out: &mut [u64]) -> u64 {
    let mask = if W == 64 { u64::MAX } else { (1u64 << W) - 1 };
    // Value `bit` bits in: one unaligned load (two words' worth beyond 56 bits).
    let value = |bit: usize| -> u64 {
        let at = bit / 8;
        if W <= 56 {
            let mut x = [0u8; 8];
            x.copy_from_slice(&data[at..at + 8]);
            (u64::from_le_bytes(x) >> (bit % 8)) & mask
        } else {
            let mut x = [0u8; 16];
            x.copy_from_slice(&data[at..at + 16]);
            ((u128::from_le_bytes(x) >> (bit % 8)) as u64) & mask
        }
    };
    // A local sum (a closure's captured one went through memory: ~5 cycles a value).
    let mut acc = last;
    let mut groups = out.chunks_exact_mut(8);
    let mut base = 0;
    for g in &mut groups {
        // 8 values take exactly W bytes: within a group every offset is a constant.
        for (t, o) in g.iter_mut().enumerate() {
            acc = acc.wrapping_add(min_delta.wrapping_add(value(base + t * W)));
            *o = acc;
        }
        base += 8 * W;
    }
    for (t, o) in groups.into_remainder().iter_mut().enumerate() {
        acc = acc.wrapping_add(min_delta.wrapping_add(value(base + t * W)));
        *o = acc;
    }
    acc
}

/// BYTE_STREAM_SPLIT (`Encodings.md`, "Byte Stream Split"): byte `k` of value `i` is at
/// `k * n + i`, one stream per byte of the type (4 for INT32, 8 for INT64).
fn byte_stream_split(
    buf: &[u8],
    physical: PhysicalType,
    n: usize,
    out: &mut Vec<u64>,
) -> Result<(), PageError> {
    let width = if physical == PhysicalType::INT64 {
        8
    } else {
        4
    };
    let bytes = n.checked_mul(width).ok_or("page too large")?;
    let data = buf
        .get(..bytes)
        .ok_or_else(|| format!("{n} values of {width} bytes in a page of {}", buf.len()))?;
    let start = out.len();
    out.resize(start + n, 0);
    let dst = &mut out[start..];
    // Stream by stream: each pass reads one stream in order and is vectorizable.
    for (k, stream) in data.chunks_exact(n.max(1)).enumerate().take(width) {
        let shift = 8 * k as u32;
        for (o, &b) in dst.iter_mut().zip(stream) {
            *o |= u64::from(b) << shift;
        }
    }
    Ok(())
}

/// DELTA_BINARY_PACKED (`Encodings.md`, "Delta Encoding"): a header (values per block,
/// miniblocks per block, value count, first value, as ULEB128 with the first value
/// zig-zagged), then blocks: a zig-zag minimum delta, one bit-width byte per miniblock and
/// the miniblocks, each value a delta minus the minimum, packed LSB first. Every value is
/// one unaligned load (a page's last miniblocks are copied into `tail` with padding for
/// it). Arithmetic wraps, so INT32 columns come out right in the low 32 bits.
pub(crate) fn delta(
    page: &[u8],
    n: usize,
    out: &mut Vec<u64>,
    tail: &mut Vec<u8>,
) -> Result<(), PageError> {
    let body = page.len();
    let mut at = 0;
    let next = |at: &mut usize| -> Result<u64, PageError> {
        let (v, used) = uleb128(page.get(*at..).unwrap_or_default()).ok_or("damaged varint")?;
        *at += used;
        Ok(v)
    };
    let block = next(&mut at)?;
    let minis = next(&mut at)?;
    let total = next(&mut at)?;
    let first = unzigzag(next(&mut at)?);
    if minis == 0 || block == 0 || block % minis != 0 || (block / minis) % 8 != 0 {
        return Err(format!(
            "delta blocks of {block} values in {minis} miniblocks"
        ));
    }
    if total != n as u64 {
        return Err(format!("delta page counts {total} values, its header {n}"));
    }
    if n == 0 {
        return Ok(());
    }
    let per_mini = usize::try_from(block / minis).map_err(|_| "miniblock too large")?;
    let minis = usize::try_from(minis).map_err(|_| "too many miniblocks")?;
    // Each miniblock has a width byte: a page cannot hold more of them than bytes.
    if minis > body {
        return Err("more miniblocks than page bytes".into());
    }
    out.reserve(n);
    let mut last = first;
    out.push(last);
    let mut left = n - 1;
    while left > 0 {
        let min_delta = unzigzag(next(&mut at)?);
        let widths = page
            .get(at..at + minis)
            .ok_or("block ends in its bit widths")?;
        at += minis;
        for &w in widths {
            if left == 0 {
                break;
            }
            if w > 64 {
                return Err(format!("miniblock bit width {w}"));
            }
            let w = usize::from(w);
            let k = per_mini.min(left);
            // A full miniblock's bytes, except that the page's last may stop at its values.
            let full = per_mini.saturating_mul(w) / 8;
            let need = (k * w).div_ceil(8);
            if page.len() < at + need {
                return Err("miniblock beyond the page".into());
            }
            // The values' bytes and the 8 (or 16) after them that the last load reads: in
            // the page, except near its end, where they are copied and padded with zeros.
            let data = match page.get(at..at + need + 16) {
                Some(d) => d,
                None => {
                    tail.clear();
                    tail.extend_from_slice(&page[at..at + need]);
                    tail.resize(need + 16, 0);
                    &tail[..]
                }
            };
            let start = out.len();
            out.resize(start + k, 0);
            last = miniblock(w, data, min_delta, last, &mut out[start..]);
            at = at.saturating_add(full).min(page.len());
            left -= k;
        }
    }
    Ok(())
}

/// Fuzzing entry (not an API): decodes `page` as a DELTA_BINARY_PACKED page of `n` values
/// and checks what a caller relies on: on success exactly `n` values, on failure an error.
#[doc(hidden)]
pub fn fuzz_delta(page: &[u8], n: usize) {
    let mut out = Vec::new();
    if delta(page, n, &mut out, &mut Vec::new()).is_ok() {
        assert_eq!(out.len(), n);
    }
}

fn unzigzag(v: u64) -> u64 {
    (v >> 1) ^ (v & 1).wrapping_neg()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::properties::{WriterProperties, WriterVersion};
    use parquet::schema::types::ColumnPath;

    fn decode(buf: &[u8], n: usize) -> Result<Vec<u64>, PageError> {
        let mut out = Vec::new();
        delta(buf, n, &mut out, &mut Vec::new()).map(|()| out)
    }

    #[test]
    fn delta_pages_decode_byte_by_byte() {
        // Encodings.md's first example, 1 2 3 4 5: every delta is the minimum.
        let page = [
            0x80, 0x01, // 128 values per block
            0x04, // 4 miniblocks per block
            0x05, // 5 values
            0x02, // first value 1 (zig-zag)
            0x02, // block: minimum delta 1 (zig-zag)
            0x00, 0x00, 0x00, 0x00, // bit widths: all deltas equal the minimum
        ];
        assert_eq!(decode(&page, 5).unwrap(), [1, 2, 3, 4, 5]);
        // Its second, 7 5 3 1 2 3 4 5: deltas -2 -2 -2 1 1 1 1, minimum -2, so 0 0 0 3 3 3 3
        // in 2 bits each.
        let mut page = vec![
            0x80, 0x01, // 128 values per block
            0x04, // 4 miniblocks per block
            0x08, // 8 values
            0x0e, // first value 7 (zig-zag)
            0x03, // minimum delta -2 (zig-zag)
            0x02, 0x00, 0x00, 0x00, // first miniblock 2 bits a value, unused ones 0
            0xc0, // 0, 0, 0 and 3, LSB first
            0xff, // 3, 3, 3, 3
        ];
        let neg = |v: i64| v as u64;
        let want = [7, 5, 3, 1, 2, 3, 4, 5].map(neg);
        // The miniblock as far as its values go, then padded to 32 values (8 bytes).
        assert_eq!(decode(&page, 8).unwrap(), want);
        page.extend_from_slice(&[0; 6]);
        assert_eq!(decode(&page, 8).unwrap(), want);
    }

    #[test]
    fn byte_stream_split_pages_decode_byte_by_byte() {
        // INT32 1, 0x0203, 0x04050607: one stream per byte, lowest first.
        let page = [
            0x01, 0x03, 0x07, // byte 0 of each value
            0x00, 0x02, 0x06, // byte 1
            0x00, 0x00, 0x05, // byte 2
            0x00, 0x00, 0x04, // byte 3
        ];
        let mut out = vec![9];
        byte_stream_split(&page, PhysicalType::INT32, 3, &mut out).unwrap();
        assert_eq!(out, [9, 1, 0x0203, 0x0405_0607]);
        // INT64: 8 streams; a page shorter than its values is an error.
        let mut out = Vec::new();
        let page: Vec<u8> = (1..=8).flat_map(|b| [b, 0]).collect();
        byte_stream_split(&page, PhysicalType::INT64, 2, &mut out).unwrap();
        assert_eq!(out, [0x0807_0605_0403_0201, 0]);
        assert!(byte_stream_split(&page[..15], PhysicalType::INT64, 2, &mut out).is_err());
    }

    #[test]
    fn hostile_delta_pages_are_errors_not_panics() {
        // 8 values announced, the page holds 5.
        let short = [0x80, 0x01, 0x04, 0x05, 0x02, 0x02, 0, 0, 0, 0];
        assert!(decode(&short, 8).is_err());
        // Miniblocks of 129 / 4 values.
        assert!(decode(&[0x81, 0x01, 0x04, 0x02, 0x02, 0x02, 0, 0, 0, 0], 2).is_err());
        // Zero miniblocks; a bit width of 65; a miniblock beyond the page.
        assert!(decode(&[0x80, 0x01, 0x00, 0x02, 0x02], 2).is_err());
        assert!(decode(&[0x80, 0x01, 0x04, 0x02, 0x02, 0x02, 65, 0, 0, 0, 0xff], 2).is_err());
        assert!(decode(&[0x80, 0x01, 0x04, 0x03, 0x02, 0x02, 8, 0, 0, 0, 0x01], 3).is_err());
        // A huge block size must not overflow the miniblock arithmetic.
        let mut huge = vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01, 0x02,
        ];
        huge.extend_from_slice(&[0x02, 0x00, 0x00]);
        assert!(decode(&huge, 2).is_ok_and(|v| v == [1, 2]) || decode(&huge, 2).is_err());
        // Widths of 64 bits take the wide path: deltas of u64::MAX wrap.
        let mut wide = vec![0x80, 0x01, 0x04, 0x03, 0x00, 0x00, 64, 0, 0, 0];
        wide.extend_from_slice(&[0xff; 16]);
        assert_eq!(decode(&wide, 3).unwrap(), [0, u64::MAX, u64::MAX - 1]);
    }

    /// `n` flows whose columns mix every shape the writer encodes differently: constants,
    /// few distinct values (dictionaries), sorted times (small deltas), full-range numbers
    /// (64-bit deltas).
    fn flows(n: usize, seed: u64) -> FlowBatch {
        let mut rnd = crate::xorshift(seed | 1);
        let mut b = FlowBatch::default();
        for i in 0..n as u64 {
            let r = flowsight_schema::FlowRecord {
                flow_type: 4,
                time_received_ns: 1_795_341_600_000_000_000 + i * 1_000,
                sequence_num: (i / 10) as u32,
                time_flow_start_ns: 1_795_341_600_000_000_000 + (rnd() % 60_000) * 1_000_000,
                time_flow_end_ns: rnd(),
                bytes: rnd() % 100_000,
                packets: rnd() % 100,
                src_addr: {
                    let mut a = [0u8; 16];
                    a[12..].copy_from_slice(&(rnd() % 500).to_be_bytes()[4..]);
                    a
                },
                dst_addr: rnd().to_le_bytes().repeat(2).try_into().unwrap_or_default(),
                proto: [6, 17, 1][(rnd() % 3) as usize],
                src_port: rnd() as u16,
                dst_port: [443, 80, 53][(rnd() % 3) as usize],
                in_if: (rnd() % 8) as u32,
                fragment_id: rnd() as u32,
                src_mac: rnd(),
                ip_tos: rnd() as u8,
                ..Default::default()
            };
            b.push(&r);
        }
        b
    }

    /// The file as arrow-rs reads it, and as `Column`s decode it, for every column
    /// `supported` accepts (which must be all of the base columns here).
    fn both_ways(props: WriterProperties, n: usize) -> (FlowBatch, FlowBatch) {
        let b = flows(n, 7);
        let rb = b.into_record_batch();
        let mut file = tempfile::tempfile().unwrap();
        let mut w =
            ArrowWriter::try_new(file.try_clone().unwrap(), rb.schema(), Some(props)).unwrap();
        // Several writes: page and row-group boundaries fall inside them.
        for at in (0..n).step_by(1_000) {
            w.write(&rb.slice(at, 1_000.min(n - at))).unwrap();
        }
        w.close().unwrap();
        use std::io::Seek;
        file.rewind().unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file.try_clone().unwrap()).unwrap();
        let meta = builder.metadata().clone();
        let mut arrow = FlowBatch::default();
        for rb in builder.build().unwrap() {
            arrow.append(&mut FlowBatch::from_record_batch(&rb.unwrap()).unwrap());
        }
        let schema = meta.file_metadata().schema_descr();
        let groups: Vec<usize> = (0..meta.num_row_groups()).collect();
        // Every integer column must be decoded here; addresses unless arrow-rs fell back
        // to DELTA_BYTE_ARRAY (it does for FIXED_LEN_BYTE_ARRAY dictionaries that overflow).
        let typed: Vec<_> = schema
            .columns()
            .iter()
            .enumerate()
            .map(|(l, c)| {
                (
                    l,
                    flowsight_schema::field(c.name()).map(|f| f.kind.physical()),
                )
            })
            .filter(|&(l, p)| {
                let ok = supported(&meta, &groups, &[(l, p)]);
                assert!(
                    ok || p == Some(Physical::Binary16),
                    "column {} not supported: {:?}",
                    schema.column(l).name(),
                    meta.row_group(0).column(l).encodings().collect::<Vec<_>>()
                );
                ok
            })
            .collect();
        assert!(supported(&meta, &groups, &typed));
        let file_len = file.metadata().unwrap().len();
        let file = Arc::new(file);
        let mut cols: Vec<Column> = typed
            .iter()
            .map(|&(l, _)| {
                let c = &schema.columns()[l];
                let name = flowsight_schema::field(c.name()).unwrap().name;
                Column::new(name, l, c.physical_type(), 1)
            })
            .collect();
        let mut ours = FlowBatch::default();
        let mut part = FlowBatch::default();
        for g in groups {
            let rows = meta.row_group(g).num_rows() as usize;
            for c in &mut cols {
                c.start_group(&file, file_len, &meta, g).unwrap();
            }
            let mut done = 0;
            let mut whole = false;
            while done < rows {
                // Batches of odd sizes, so they straddle pages, alternating with batches
                // that end where pages do (decoded straight into the batch).
                let mut k = (rows - done).min(777);
                whole = !whole;
                if whole {
                    k = rows - done;
                    for c in &mut cols {
                        k = k.min(c.ready().unwrap());
                    }
                }
                for c in &mut cols {
                    c.take(k, &mut part).unwrap();
                }
                ours.append(&mut part);
                done += k;
            }
            for c in &mut cols {
                assert!(
                    c.take(1, &mut part).is_err(),
                    "column {} has extra values",
                    c.name
                );
            }
        }
        assert_eq!(ours.len(), n);
        // Columns left to arrow-rs compare as read by it.
        let names: Vec<String> = typed
            .iter()
            .map(|&(l, _)| schema.column(l).name().to_string())
            .collect();
        for f in flowsight_schema::FIELDS.iter().filter(|f| !f.enrichment) {
            if !names.iter().any(|n| n == f.name) {
                let from = match f.name {
                    "src_addr" => &arrow.src_addr,
                    "dst_addr" => &arrow.dst_addr,
                    "sampler_address" => &arrow.sampler_address,
                    "next_hop" => &arrow.next_hop,
                    _ => &arrow.bgp_next_hop,
                };
                if let Some(ColumnMut::Addr(to)) = ours.column_mut(f.name) {
                    to.clone_from(from);
                }
            }
        }
        (arrow, ours)
    }

    fn ints(b: WriterPropertiesBuilder, enc: Encoding) -> WriterPropertiesBuilder {
        let mut b = b;
        for f in flowsight_schema::FIELDS {
            if !f.enrichment && f.kind.physical() != Physical::Binary16 {
                b = b
                    .set_column_dictionary_enabled(ColumnPath::from(f.name), false)
                    .set_column_encoding(ColumnPath::from(f.name), enc);
            }
        }
        b
    }

    use parquet::file::properties::WriterPropertiesBuilder;

    #[test]
    fn pages_decode_as_arrow_rs_reads_them() {
        let small = || {
            WriterProperties::builder()
                .set_data_page_row_count_limit(700)
                .set_write_batch_size(300)
                .set_max_row_group_row_count(Some(2_500))
        };
        let cases = [
            // arrow-rs's defaults: dictionaries, PLAIN where they are off, v1 pages.
            ("defaults", WriterProperties::builder().build()),
            (
                "delta, zstd, v2 pages, small pages and groups",
                ints(small(), Encoding::DELTA_BINARY_PACKED)
                    .set_writer_version(WriterVersion::PARQUET_2_0)
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build(),
            ),
            (
                "byte stream split, zstd, v2",
                ints(small(), Encoding::BYTE_STREAM_SPLIT)
                    .set_writer_version(WriterVersion::PARQUET_2_0)
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build(),
            ),
            (
                "plain, lz4, v1",
                ints(small(), Encoding::PLAIN)
                    .set_compression(Compression::LZ4_RAW)
                    .build(),
            ),
            (
                // Dictionaries that overflow fall back to PLAIN pages mid-chunk.
                "dictionaries spilling into plain pages",
                small()
                    .set_dictionary_page_size_limit(256)
                    .set_writer_version(WriterVersion::PARQUET_2_0)
                    .build(),
            ),
        ];
        for (what, props) in cases {
            let (arrow, ours) = both_ways(props, 6_543);
            for f in flowsight_schema::FIELDS.iter().filter(|f| !f.enrichment) {
                let i = (0..arrow.len()).find(|&i| {
                    let (a, o) = (arrow.get(i).unwrap(), ours.get(i).unwrap());
                    let (mut x, mut y) = (String::new(), String::new());
                    a.write_json(&mut x);
                    o.write_json(&mut y);
                    x != y
                });
                assert!(i.is_none(), "{what}: row {i:?} differs ({})", f.name);
            }
            assert_eq!(arrow, ours, "{what}");
        }
    }

    #[test]
    fn optional_and_other_encodings_are_left_to_arrow_rs() {
        let b = flows(100, 3);
        let rb = b.into_record_batch();
        let props = WriterProperties::builder()
            .set_dictionary_enabled(false)
            .set_encoding(Encoding::BYTE_STREAM_SPLIT)
            .build();
        let mut out = Vec::new();
        let mut w = ArrowWriter::try_new(&mut out, rb.schema(), Some(props)).unwrap();
        w.write(&rb).unwrap();
        w.close().unwrap();
        let meta = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out))
            .unwrap()
            .metadata()
            .clone();
        let schema = meta.file_metadata().schema_descr();
        let leaf = |name: &str| {
            schema
                .columns()
                .iter()
                .position(|c| c.name() == name)
                .unwrap()
        };
        // Byte-stream-split numbers are read here, addresses are not.
        assert!(supported(
            &meta,
            &[0],
            &[(leaf("bytes"), Some(Physical::UInt64))]
        ));
        assert!(!supported(
            &meta,
            &[0],
            &[(leaf("dst_addr"), Some(Physical::Binary16))]
        ));
        // Not a registry column / a type this module does not decode.
        assert!(!supported(&meta, &[0], &[(leaf("bytes"), None)]));
        assert!(supported(&meta, &[0], &[]));
    }
}
