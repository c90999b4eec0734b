//! A column chunk's pages, read with one `pread` and decompressed into buffers that a scan
//! worker keeps from chunk to chunk and file to file.
//!
//! Why not arrow-rs's `SerializedPageReader`: it allocates every page's buffer, and the
//! decompressed copy, anew; the kernel zeroes those fresh pages. That was 7-15% of a
//! filtered top-N's samples in `clear_page` alone (perf, `flowsight query -s dstport/flows
//! 'proto tcp and dst net 10.0.0.0/8'` over 10 M flows). Its page-header reader is private,
//! so the headers are parsed here: a Thrift compact-protocol struct (Thrift's
//! `doc/specs/thrift-compact-protocol.md`) with these fields of `parquet.thrift`:
//!
//! ```text
//! PageHeader           { 1: i32 type (DATA_PAGE 0, INDEX_PAGE 1, DICTIONARY_PAGE 2,
//!                           DATA_PAGE_V2 3), 2: i32 uncompressed_page_size,
//!                        3: i32 compressed_page_size, 4: i32 crc,
//!                        5: DataPageHeader, 6: IndexPageHeader,
//!                        7: DictionaryPageHeader, 8: DataPageHeaderV2 }
//! DataPageHeader       { 1: i32 num_values, 2: Encoding encoding,
//!                        3: Encoding definition_level_encoding,
//!                        4: Encoding repetition_level_encoding, 5: Statistics }
//! DictionaryPageHeader { 1: i32 num_values, 2: Encoding encoding, 3: bool is_sorted }
//! DataPageHeaderV2     { 1: i32 num_values, 2: i32 num_nulls, 3: i32 num_rows,
//!                        4: Encoding encoding, 5: i32 definition_levels_byte_length,
//!                        6: i32 repetition_levels_byte_length,
//!                        7: bool is_compressed = true, 8: Statistics }
//! ```
//!
//! Fields not listed (statistics, CRC, newer additions) are skipped, with nesting bounded.
//! The CRC is not checked (arrow-rs does not by default either). Codecs: UNCOMPRESSED, ZSTD
//! and LZ4_RAW, what the store writes; the callers leave chunks of any other to arrow-rs
//! ([`codec_supported`]).

use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::ColumnChunkMetaData;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Whether this module reads chunks compressed with `c`.
pub(crate) fn codec_supported(c: Compression) -> bool {
    matches!(
        c,
        Compression::UNCOMPRESSED | Compression::ZSTD(_) | Compression::LZ4_RAW
    )
}

/// No page is believed larger than this uncompressed, whatever a damaged header says: the
/// store writes pages of about a megabyte.
const MAX_PAGE: usize = 256 << 20;

/// The kinds of page (`PageType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageKind {
    Data,
    Dictionary,
    DataV2,
}

/// A page of the chunk: its header's facts and where its body is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageRef {
    pub(crate) kind: PageKind,
    pub(crate) num_values: usize,
    pub(crate) encoding: Encoding,
    /// v1 pages: how their definition levels are encoded.
    pub(crate) def_level_encoding: Encoding,
    /// v2 pages: nulls among the values.
    pub(crate) num_nulls: usize,
    /// v2 pages: level bytes before the values (never compressed).
    levels: usize,
    /// v2 pages: whether the values are compressed.
    compressed_values: bool,
    start: usize,
    len: usize,
    uncompressed: usize,
}

#[derive(Debug, Clone, Copy, Default)]
enum Codec {
    #[default]
    None,
    Zstd,
    Lz4Raw,
}

/// Bytes of a chunk read at a time: a few of the store's pages (about 160 KB each
/// uncompressed), so a worker's buffers stay small. Fresh memory is what costs here: the
/// kernel zeroes every page of it, and reading whole chunks (1.5 MB each, six columns,
/// grown by doubling) made that a tenth of a statistic's time (perf, `clear_page_erms`).
const WINDOW: usize = 256 << 10;

/// Header bytes read for a page whose header is not in the window yet (headers with
/// statistics are tens of bytes; a longer one is read again with the whole window).
const HEADER: usize = 4 << 10;

/// One column chunk, read through a window, and the buffer its pages are decompressed into.
#[derive(Default)]
pub(crate) struct Chunk {
    file: Option<Arc<File>>,
    /// Where the chunk starts in the file, and its length.
    base: u64,
    end: usize,
    /// Bytes `win..win + win_len` of the chunk (the buffer is never shrunk, so its memory
    /// is zeroed once).
    raw: Vec<u8>,
    win: usize,
    win_len: usize,
    /// Where the next page header starts.
    pos: usize,
    codec: Codec,
    /// A page's decompressed bytes (kept as long as the longest page so far).
    body: Vec<u8>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("end", &self.end)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl Chunk {
    /// Starts on chunk `cc` of `file` (`file_len` bytes long), replacing the one before.
    pub(crate) fn open(
        &mut self,
        file: &Arc<File>,
        file_len: u64,
        cc: &ColumnChunkMetaData,
    ) -> Result<(), String> {
        self.codec = match cc.compression() {
            Compression::UNCOMPRESSED => Codec::None,
            Compression::ZSTD(_) => Codec::Zstd,
            Compression::LZ4_RAW => Codec::Lz4Raw,
            c => return Err(format!("chunk compressed with {c}")),
        };
        let (start, len) = cc.byte_range();
        if start.checked_add(len).is_none_or(|e| e > file_len) {
            return Err(format!(
                "chunk at {start} of {len} bytes beyond the file's {file_len}"
            ));
        }
        self.end = usize::try_from(len).map_err(|_| "chunk too large")?;
        self.file = Some(Arc::clone(file));
        self.base = start;
        self.win = 0;
        self.win_len = 0;
        self.pos = 0;
        Ok(())
    }

    /// Chunk bytes `at..at + len` (within the chunk), read into the window if they are
    /// not in it; `want` more are read along if the chunk has them.
    fn bytes(&mut self, at: usize, len: usize, want: usize) -> Result<&[u8], String> {
        let in_window = at >= self.win && at + len <= self.win + self.win_len;
        if !in_window {
            let n = len.max(want).min(self.end - at);
            if n < len {
                return Err(format!(
                    "{len} bytes at {at} beyond the chunk's {}",
                    self.end
                ));
            }
            if n > MAX_PAGE + WINDOW {
                return Err(format!("a read of {n} bytes"));
            }
            at_least(&mut self.raw, n)?;
            let file = self
                .file
                .as_ref()
                .ok_or("chunk read before it was opened")?;
            file.read_exact_at(&mut self.raw[..n], self.base + at as u64)
                .map_err(|e| format!("reading {n} bytes at {}: {e}", self.base + at as u64))?;
            self.win = at;
            self.win_len = n;
        }
        let from = at - self.win;
        Ok(&self.raw[from..from + len])
    }

    /// The next data or dictionary page's header (index pages are skipped); `None` at the
    /// chunk's end.
    pub(crate) fn next_page(&mut self) -> Result<Option<PageRef>, String> {
        loop {
            if self.pos >= self.end {
                return Ok(None);
            }
            let at = self.pos;
            let left = self.end - at;
            // The header from what is in the window (or a short read); a header cut short
            // there is read again with the whole window.
            let short = HEADER.min(left);
            let mut parsed = parse_header(self.bytes(at, short, WINDOW)?);
            if parsed.is_err() && short < left {
                let n = WINDOW.min(left);
                parsed = parse_header(self.bytes(at, n, n)?);
            }
            let (h, used) =
                parsed.map_err(|e| format!("page header at byte {at} of the chunk: {e}"))?;
            let start = at + used;
            if h.compressed > self.end - start {
                return Err(format!(
                    "page at byte {at} of the chunk claims {} bytes, {} are left",
                    h.compressed,
                    self.end - start
                ));
            }
            self.pos = start + h.compressed;
            let kind = match h.kind {
                0 => PageKind::Data,
                2 => PageKind::Dictionary,
                3 => PageKind::DataV2,
                1 => continue,
                k => return Err(format!("page type {k} at byte {at} of the chunk")),
            };
            if kind == PageKind::DataV2 && h.levels > h.compressed.min(h.uncompressed) {
                return Err(format!(
                    "page at byte {at}: {} level bytes in a page of {}",
                    h.levels, h.compressed
                ));
            }
            return Ok(Some(PageRef {
                kind,
                num_values: h.num_values,
                encoding: h.encoding,
                def_level_encoding: h.def_level_encoding,
                num_nulls: h.num_nulls,
                levels: h.levels,
                compressed_values: h.compressed_values,
                start,
                len: h.compressed,
                uncompressed: h.uncompressed,
            }));
        }
    }

    /// The value counts of the data pages from the current one on, into `out` (the
    /// position is left where it is; headers only, nothing is decompressed).
    pub(crate) fn page_counts(&mut self, out: &mut Vec<usize>) -> Result<(), String> {
        let pos = self.pos;
        let mut r = Ok(());
        loop {
            match self.next_page() {
                Ok(Some(p)) if p.kind != PageKind::Dictionary => out.push(p.num_values),
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        self.pos = pos;
        r
    }

    /// Page `p`'s bytes after any v2 levels, decompressed: for v1 pages the levels (if the
    /// column has any) and the values, for dictionary pages the values.
    pub(crate) fn values(&mut self, p: &PageRef) -> Result<&[u8], String> {
        let (skip, want) = match p.kind {
            PageKind::DataV2 => (p.levels, p.uncompressed - p.levels),
            _ => (0, p.uncompressed),
        };
        if matches!(self.codec, Codec::None) || (p.kind == PageKind::DataV2 && !p.compressed_values)
        {
            let raw = self.bytes(p.start, p.len, WINDOW)?;
            return Ok(&raw[skip..]);
        }
        if want > MAX_PAGE {
            return Err(format!("page of {want} bytes uncompressed"));
        }
        at_least(&mut self.body, want)?;
        // (The window and the decompressed page are separate buffers; `bytes` borrows the
        // whole chunk, so the window is read first and taken apart from `body` here.)
        self.bytes(p.start, p.len, WINDOW)?;
        let from = p.start - self.win;
        let src = &self.raw[from + skip..from + p.len];
        let out = &mut self.body[..want];
        let got = match self.codec {
            Codec::Zstd => {
                let d = match &mut self.zstd {
                    Some(d) => d,
                    None => self.zstd.insert(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| format!("zstd decompressor: {e}"))?,
                    ),
                };
                d.decompress_to_buffer(src, out)
                    .map_err(|e| format!("zstd: {e}"))?
            }
            Codec::Lz4Raw => {
                lz4_flex::block::decompress_into(src, out).map_err(|e| format!("lz4: {e}"))?
            }
            Codec::None => 0,
        };
        if got != want {
            return Err(format!(
                "page decompressed to {got} bytes, its header says {want}"
            ));
        }
        Ok(&self.body[..want])
    }
}

/// Makes `buf` at least `n` bytes long (it never shrinks, so its memory is zeroed once),
/// or says there is no memory for it.
fn at_least(buf: &mut Vec<u8>, n: usize) -> Result<(), String> {
    if buf.len() < n {
        buf.try_reserve(n - buf.len())
            .map_err(|_| format!("no memory for {n} bytes"))?;
        buf.resize(n, 0);
    }
    Ok(())
}

/// What a page header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    kind: i32,
    uncompressed: usize,
    compressed: usize,
    num_values: usize,
    encoding: Encoding,
    def_level_encoding: Encoding,
    num_nulls: usize,
    levels: usize,
    compressed_values: bool,
}

/// Thrift compact-protocol field types.
const T_TRUE: u8 = 1;
const T_FALSE: u8 = 2;
const T_BYTE: u8 = 3;
const T_I16: u8 = 4;
const T_I32: u8 = 5;
const T_I64: u8 = 6;
const T_DOUBLE: u8 = 7;
const T_BINARY: u8 = 8;
const T_LIST: u8 = 9;
const T_SET: u8 = 10;
const T_MAP: u8 = 11;
const T_STRUCT: u8 = 12;
const T_UUID: u8 = 13;

/// Deepest nesting skipped (statistics are two levels down): a damaged header cannot
/// recurse without end.
const MAX_DEPTH: u32 = 16;

/// A reader over a Thrift compact-protocol buffer.
struct Thrift<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Thrift<'_> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self.buf.get(self.at).ok_or("header cut short")?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint longer than 10 bytes".into())
    }

    /// A zig-zag varint.
    fn int(&mut self) -> Result<i64, String> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn i32(&mut self, ty: u8) -> Result<i32, String> {
        if ty != T_I32 {
            return Err(format!("field of type {ty} where an i32 belongs"));
        }
        i32::try_from(self.int()?).map_err(|_| "i32 out of range".into())
    }

    /// A non-negative i32 as a size.
    fn size(&mut self, ty: u8) -> Result<usize, String> {
        usize::try_from(self.i32(ty)?).map_err(|_| "negative size".into())
    }

    fn encoding(&mut self, ty: u8) -> Result<Encoding, String> {
        Ok(match self.i32(ty)? {
            0 => Encoding::PLAIN,
            2 => Encoding::PLAIN_DICTIONARY,
            3 => Encoding::RLE,
            #[allow(deprecated)]
            4 => Encoding::BIT_PACKED,
            5 => Encoding::DELTA_BINARY_PACKED,
            6 => Encoding::DELTA_LENGTH_BYTE_ARRAY,
            7 => Encoding::DELTA_BYTE_ARRAY,
            8 => Encoding::RLE_DICTIONARY,
            9 => Encoding::BYTE_STREAM_SPLIT,
            e => return Err(format!("unknown encoding {e}")),
        })
    }

    /// The next field's id and type, `None` at the struct's end.
    fn field(&mut self, last: &mut i16) -> Result<Option<(i16, u8)>, String> {
        let b = self.byte()?;
        if b == 0 {
            return Ok(None);
        }
        let ty = b & 0x0f;
        let delta = b >> 4;
        let id = if delta == 0 {
            i16::try_from(self.int()?).map_err(|_| "field id out of range")?
        } else {
            last.checked_add(i16::from(delta))
                .ok_or("field id out of range")?
        };
        *last = id;
        Ok(Some((id, ty)))
    }

    /// Skips a value of type `ty` (a field's; in a list, booleans take a byte).
    fn skip(&mut self, ty: u8, depth: u32, in_list: bool) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("nested too deep".into());
        }
        match ty {
            T_TRUE | T_FALSE if !in_list => {}
            T_TRUE | T_FALSE | T_BYTE => {
                self.byte()?;
            }
            T_I16 | T_I32 | T_I64 => {
                self.varint()?;
            }
            T_DOUBLE => self.advance(8)?,
            T_UUID => self.advance(16)?,
            T_BINARY => {
                let n = usize::try_from(self.varint()?).map_err(|_| "binary too long")?;
                self.advance(n)?;
            }
            T_LIST | T_SET => {
                let h = self.byte()?;
                let n = match h >> 4 {
                    15 => usize::try_from(self.varint()?).map_err(|_| "list too long")?,
                    n => usize::from(n),
                };
                // Each element takes at least a byte (a list of that many cannot be longer
                // than the header), so a damaged count ends at the buffer's end.
                for _ in 0..n {
                    self.skip(h & 0x0f, depth + 1, true)?;
                }
            }
            T_MAP => {
                let n = usize::try_from(self.varint()?).map_err(|_| "map too long")?;
                if n > 0 {
                    let kv = self.byte()?;
                    for _ in 0..n {
                        self.skip(kv >> 4, depth + 1, true)?;
                        self.skip(kv & 0x0f, depth + 1, true)?;
                    }
                }
            }
            T_STRUCT => {
                let mut last = 0;
                while let Some((_, t)) = self.field(&mut last)? {
                    self.skip(t, depth + 1, false)?;
                }
            }
            t => return Err(format!("unknown field type {t}")),
        }
        Ok(())
    }

    fn advance(&mut self, n: usize) -> Result<(), String> {
        if self.buf.len() - self.at < n {
            return Err("header cut short".into());
        }
        self.at += n;
        Ok(())
    }
}

/// Parses a `PageHeader` at the start of `buf`; returns it and the bytes it took.
fn parse_header(buf: &[u8]) -> Result<(Header, usize), String> {
    let mut t = Thrift { buf, at: 0 };
    let (mut kind, mut uncompressed, mut compressed) = (None, None, None);
    let mut h = Header {
        kind: -1,
        uncompressed: 0,
        compressed: 0,
        num_values: 0,
        encoding: Encoding::PLAIN,
        def_level_encoding: Encoding::RLE,
        num_nulls: 0,
        levels: 0,
        compressed_values: true,
    };
    // Which sub-header was there: 5, 7 or 8.
    let mut sub = 0;
    let mut last = 0;
    while let Some((id, ty)) = t.field(&mut last)? {
        match id {
            1 => kind = Some(t.i32(ty)?),
            2 => uncompressed = Some(t.size(ty)?),
            3 => compressed = Some(t.size(ty)?),
            5 | 7 | 8 if ty == T_STRUCT => {
                sub = id;
                let mut last = 0;
                while let Some((f, ty)) = t.field(&mut last)? {
                    match (id, f) {
                        (_, 1) => h.num_values = t.size(ty)?,
                        (5 | 7, 2) | (8, 4) => h.encoding = t.encoding(ty)?,
                        (5, 3) => h.def_level_encoding = t.encoding(ty)?,
                        (8, 2) => h.num_nulls = t.size(ty)?,
                        (8, 5 | 6) => {
                            h.levels = h
                                .levels
                                .checked_add(t.size(ty)?)
                                .ok_or("level lengths overflow")?;
                        }
                        (8, 7) if matches!(ty, T_TRUE | T_FALSE) => {
                            h.compressed_values = ty == T_TRUE;
                        }
                        _ => t.skip(ty, 1, false)?,
                    }
                }
            }
            _ => t.skip(ty, 0, false)?,
        }
    }
    h.kind = kind.ok_or("no page type")?;
    h.uncompressed = uncompressed.ok_or("no uncompressed size")?;
    h.compressed = compressed.ok_or("no compressed size")?;
    let expected = match h.kind {
        0 => 5,
        2 => 7,
        3 => 8,
        _ => sub,
    };
    if sub != expected {
        return Err(format!("page of type {} without its header", h.kind));
    }
    Ok((h, t.at))
}

/// Fuzzing entry (not an API): parses `buf` as a page header and, where that succeeds,
/// checks what the reader relies on: it took no more bytes than it was given.
#[doc(hidden)]
pub fn fuzz_page_header(buf: &[u8]) {
    if let Ok((_, used)) = parse_header(buf) {
        assert!(used <= buf.len());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn data_page_v1_header_byte_by_byte() {
        let buf = [
            0x15, 0x00, // field 1 (delta 1, i32) type: zig-zag 0 = DATA_PAGE
            0x15, 0x80, 0x08, // field 2 (i32) uncompressed_page_size: zig-zag 1024 = 512
            0x15, 0xa0, 0x06, // field 3 (i32) compressed_page_size: zig-zag 800 = 400
            0x15, 0x8d, 0x01, // field 4 (i32) crc: zig-zag 141 = -71, skipped
            0x1c, // field 5 (struct) data_page_header:
            0x15, 0xc8, 0x01, //   field 1 (i32) num_values: zig-zag 200 = 100
            0x15, 0x0a, //   field 2 (i32) encoding: zig-zag 10 = 5, DELTA_BINARY_PACKED
            0x15, 0x06, //   field 3 (i32) definition_level_encoding: 3, RLE
            0x15, 0x06, //   field 4 (i32) repetition_level_encoding: 3, RLE
            0x1c, //   field 5 (struct) statistics, skipped:
            0x18, 0x02, 0xab, 0xcd, //     field 1 (binary) max: 2 bytes
            0x18, 0x00, //     field 2 (binary) min: empty
            0x00, //     end of statistics
            0x00, //   end of data_page_header
            0x00, // end of PageHeader
            0xee, // the page's first byte: not part of the header
        ];
        let (h, used) = parse_header(&buf).unwrap();
        assert_eq!(used, buf.len() - 1);
        assert_eq!(h.kind, 0);
        assert_eq!((h.uncompressed, h.compressed), (512, 400));
        assert_eq!(h.num_values, 100);
        assert_eq!(h.encoding, Encoding::DELTA_BINARY_PACKED);
        assert_eq!(h.def_level_encoding, Encoding::RLE);
    }

    #[test]
    fn dictionary_and_v2_headers_byte_by_byte() {
        let dict = [
            0x15, 0x04, // field 1 (i32) type: 2 = DICTIONARY_PAGE
            0x15, 0x20, // field 2 (i32) uncompressed_page_size: 16
            0x15, 0x20, // field 3 (i32) compressed_page_size: 16
            0x4c, // field 7 (delta 4, struct) dictionary_page_header:
            0x15, 0x02, //   field 1 (i32) num_values: 1
            0x15, 0x00, //   field 2 (i32) encoding: 0, PLAIN
            0x12, //   field 3 (bool false) is_sorted, skipped
            0x00, //   end
            0x00, // end
        ];
        let (h, used) = parse_header(&dict).unwrap();
        assert_eq!(used, dict.len());
        assert_eq!((h.kind, h.num_values, h.encoding), (2, 1, Encoding::PLAIN));
        let v2 = [
            0x15, 0x06, // field 1 (i32) type: 3 = DATA_PAGE_V2
            0x15, 0x28, // field 2 (i32) uncompressed_page_size: 20
            0x15, 0x1c, // field 3 (i32) compressed_page_size: 14
            0x0c, 0x10, // field 8 in the long form: type 12 (struct), then id zig-zag 16 = 8
            0x15, 0x14, //   field 1 (i32) num_values: 10
            0x15, 0x04, //   field 2 (i32) num_nulls: 2
            0x15, 0x14, //   field 3 (i32) num_rows: 10, skipped
            0x15, 0x10, //   field 4 (i32) encoding: 8, RLE_DICTIONARY
            0x15, 0x06, //   field 5 (i32) definition_levels_byte_length: 3
            0x15, 0x00, //   field 6 (i32) repetition_levels_byte_length: 0
            0x12, //   field 7 (bool false) is_compressed
            0x00, //   end
            0x00, // end
        ];
        let (h, used) = parse_header(&v2).unwrap();
        assert_eq!(used, v2.len());
        assert_eq!(h.kind, 3);
        assert_eq!((h.num_values, h.num_nulls, h.levels), (10, 2, 3));
        assert_eq!(h.encoding, Encoding::RLE_DICTIONARY);
        assert!(!h.compressed_values);
    }

    #[test]
    fn damaged_headers_are_errors() {
        // Cut short after the type.
        assert!(parse_header(&[0x15, 0x00]).is_err());
        // No sizes.
        assert!(parse_header(&[0x15, 0x00, 0x00]).is_err());
        // A data page without its data_page_header.
        assert!(parse_header(&[0x15, 0x00, 0x15, 0x02, 0x15, 0x02, 0x00]).is_err());
        // A negative size.
        assert!(parse_header(&[0x15, 0x00, 0x15, 0x01, 0x15, 0x02, 0x00]).is_err());
        // Structs nested deeper than allowed: field 9 (unknown, struct) over and over.
        let deep: Vec<u8> = [0x15, 0x00]
            .into_iter()
            .chain(std::iter::repeat_n(0x9c, 40))
            .collect();
        assert!(parse_header(&deep).unwrap_err().contains("deep"));
        // A list claiming 2^40 elements ends at the buffer's end, not in a long loop.
        let list = [0x15, 0x00, 0x99, 0xf5, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20];
        assert!(parse_header(&list).is_err());
        // An unknown field type (field 9, type 14).
        assert!(parse_header(&[0x9e, 0x00]).unwrap_err().contains("type 14"));
    }
}
