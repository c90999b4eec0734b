//! An address column's dictionary and per-row indices, decoded from its pages.
//!
//! A statistic keyed by an address sums per dictionary index and looks each distinct
//! address up once per file instead of once per row (the lookup was a third of
//! `flowsight query -s srcip/bytes`). arrow-rs 59 can hand a `FIXED_LEN_BYTE_ARRAY`
//! column out as an Arrow dictionary, but decodes its dictionary page as length-prefixed
//! byte arrays ("eof decoding byte array"), so these pages are decoded here:
//!
//! - the dictionary page: PLAIN, 16 bytes a value (Parquet `Encodings.md`, "Plain");
//! - data pages: RLE_DICTIONARY, a bit-width byte and then the indices as an RLE/bit-packing
//!   hybrid (`Encodings.md`, "Dictionary Encoding" and "Run Length Encoding / Bit-Packing
//!   Hybrid"); v1 pages carry their definition levels first (4-byte length, hybrid), v2
//!   pages count their nulls.
//!
//! Anything else (another encoding, a null, an index beyond the dictionary) returns `None`
//! and the caller reads the column as plain values through arrow-rs instead.

use crate::chunk::{Chunk, PageKind};
use flowsight_schema::Addr;
use parquet::basic::{Encoding, Type as PhysicalType};
use parquet::file::metadata::ParquetMetaData;
use std::fs::File;
use std::sync::Arc;

/// Appends to `keys` the index of every row of column `col` in row groups `groups` (in that
/// order), into `values`, which gets each group's dictionary appended (indices are offset
/// accordingly, so one file-wide list serves all groups). `None` if a chunk is not a
/// null-free, dictionary-encoded column of 16-byte values. `file` is `file_len` bytes long;
/// `chunk` holds each chunk's bytes in turn.
pub(crate) fn read(
    (file, file_len): (&Arc<File>, u64),
    meta: &ParquetMetaData,
    groups: &[usize],
    col: usize,
    keys: &mut Vec<u32>,
    values: &mut Vec<Addr>,
    chunk: &mut Chunk,
) -> Option<()> {
    let mut levels = Vec::new();
    // All at once: grown page by page, the indices' vector doubled (and faulted in fresh
    // memory) several times per file.
    let rows: i64 = groups
        .iter()
        .filter_map(|&g| Some(meta.row_groups().get(g)?.num_rows()))
        .sum();
    keys.reserve(usize::try_from(rows).ok()?);
    for &g in groups {
        let rg = meta.row_groups().get(g)?;
        let cc = rg.columns().get(col)?;
        let descr = cc.column_descr();
        if descr.physical_type() != PhysicalType::FIXED_LEN_BYTE_ARRAY
            || descr.type_length() != 16
            || descr.max_rep_level() != 0
        {
            return None;
        }
        let max_def = descr.max_def_level();
        let rows = usize::try_from(rg.num_rows()).ok()?;
        let first_key = keys.len();
        let base = values.len();
        let mut dict_len = None;
        chunk.open(file, file_len, cc).ok()?;
        while let Some(p) = chunk.next_page().ok()? {
            let n = p.num_values;
            match p.kind {
                PageKind::Dictionary => {
                    let buf = chunk.values(&p).ok()?;
                    if dict_len.is_some()
                        || !matches!(p.encoding, Encoding::PLAIN | Encoding::PLAIN_DICTIONARY)
                        || buf.len() != n.checked_mul(16)?
                        || base.checked_add(n)? > u32::MAX as usize
                    {
                        return None;
                    }
                    values.extend(
                        buf.chunks_exact(16)
                            .map(|c| <Addr>::try_from(c).unwrap_or_default()),
                    );
                    dict_len = Some(n);
                    continue;
                }
                // v2: the levels are not part of `values`; nulls are counted.
                PageKind::DataV2 if p.num_nulls != 0 => return None,
                PageKind::Data if max_def > 0 && p.def_level_encoding != Encoding::RLE => {
                    return None;
                }
                PageKind::Data | PageKind::DataV2 => {}
            }
            let buf = chunk.values(&p).ok()?;
            let mut at = 0;
            if p.kind == PageKind::Data && max_def > 0 {
                // v1: definition levels first, as a 4-byte length and the hybrid.
                let len = u32::from_le_bytes(buf.get(..4)?.try_into().ok()?) as usize;
                let lv = buf.get(4..4usize.checked_add(len)?)?;
                let width = bit_width(u32::from(max_def.unsigned_abs()));
                levels.clear();
                hybrid(lv, width, n, &mut levels)?;
                if levels
                    .iter()
                    .any(|&l| l != u32::from(max_def.unsigned_abs()))
                {
                    return None;
                }
                at = 4 + len;
            }
            indices(buf.get(at..)?, p.encoding, n, base, dict_len?, keys)?;
        }
        if keys.len() - first_key != rows {
            return None;
        }
    }
    Some(())
}

/// Fuzzing entry (not an API): decodes `page` as a dictionary data page of `n` indices
/// into a dictionary of `dict_len` values after `base` others, and checks what a caller
/// relies on: on success exactly `n` indices, each in `base..base + dict_len`; on failure
/// nothing appended.
#[doc(hidden)]
pub fn fuzz_indices(page: &[u8], n: usize, base: usize, dict_len: usize) {
    let mut keys = vec![7];
    match indices(page, Encoding::RLE_DICTIONARY, n, base, dict_len, &mut keys) {
        Some(()) => {
            assert_eq!(keys.len(), n + 1);
            let (lo, hi) = (base as u64, (base + dict_len) as u64);
            assert!(keys[1..].iter().all(|&k| (lo..hi).contains(&u64::from(k))));
        }
        None => assert_eq!(keys, [7]),
    }
}

/// Decodes one data page's `n` dictionary indices (a bit-width byte, then the hybrid),
/// checks each against the dictionary's `dict_len` values and appends it plus `base`.
fn indices(
    buf: &[u8],
    encoding: Encoding,
    n: usize,
    base: usize,
    dict_len: usize,
    keys: &mut Vec<u32>,
) -> Option<()> {
    if !matches!(
        encoding,
        Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY
    ) {
        return None;
    }
    let (&width, rest) = buf.split_first()?;
    if width > 32 {
        return None;
    }
    let start = keys.len();
    // One pass to check (vectorizes): an index beyond the dictionary is a damaged page.
    let limit = dict_len as u32;
    if hybrid(rest, u32::from(width), n, keys).is_none()
        || keys[start..]
            .iter()
            .fold(false, |bad, &k| bad | (k >= limit))
    {
        keys.truncate(start);
        return None;
    }
    let added = keys.get_mut(start..)?;
    let base = base as u32;
    if base != 0 {
        for k in added {
            *k += base;
        }
    }
    Some(())
}

/// Bits needed for values up to `max`.
fn bit_width(max: u32) -> u32 {
    32 - max.leading_zeros()
}

/// Decodes `n` values of `width` bits from an RLE/bit-packing hybrid run sequence into `out`
/// (`Encodings.md`): each run starts with a ULEB128 header; an odd header is a bit-packed
/// run of `header >> 1` groups of 8 values (LSB first), an even one repeats the next
/// `ceil(width / 8)` little-endian bytes `header >> 1` times.
pub(crate) fn hybrid(buf: &[u8], width: u32, n: usize, out: &mut Vec<u32>) -> Option<()> {
    let end = out.len().checked_add(n)?;
    out.reserve(n);
    let mask = if width == 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << width) - 1
    };
    let value_bytes = width.div_ceil(8) as usize;
    let mut at = 0;
    while out.len() < end {
        let (header, used) = uleb128(buf.get(at..)?)?;
        at += used;
        let count = usize::try_from(header >> 1).ok()?;
        let want = end - out.len();
        if header & 1 == 1 {
            let values = count.checked_mul(8)?;
            let bytes = count.checked_mul(width as usize)?;
            // The run's bytes must be there; loads may read past them into the page's
            // next bytes (masked off), which keeps short runs on the one-load path.
            buf.get(at..at.checked_add(bytes)?)?;
            unpack(buf.get(at..)?, width, mask, values.min(want), out);
            at += bytes;
        } else {
            if count == 0 {
                return None;
            }
            let mut v = [0u8; 4];
            v[..value_bytes].copy_from_slice(buf.get(at..at + value_bytes)?);
            at += value_bytes;
            let v = u32::from_le_bytes(v);
            if u64::from(v) > mask {
                return None;
            }
            out.extend(std::iter::repeat_n(v, count.min(want)));
        }
    }
    Some(())
}

/// Appends the first `n` values of `width` bits packed LSB first in `data` (which holds
/// at least `n * width` bits; bytes after them are ignored).
#[inline]
fn unpack(data: &[u8], width: u32, mask: u64, n: usize, out: &mut Vec<u32>) {
    let w = width as usize;
    if w == 0 {
        out.extend(std::iter::repeat_n(0, n));
        return;
    }
    // Whole groups of 8 values (`w` bytes each) whose every 8-byte load stays inside
    // `data`: unpacked by a loop made for their width.
    let room = data.len().saturating_sub(8);
    let groups = (n / 8).min(if data.len() >= 8 { room / w.max(1) } else { 0 });
    let done = groups * 8;
    if groups > 0 {
        let start = out.len();
        out.resize(start + done, 0);
        unpack_groups(data, w, &mut out[start..]);
    }
    // The rest value by value (the bytes after the data read as zeros).
    for j in done..n {
        let bit = j * w;
        let (byte, shift) = (bit / 8, bit % 8);
        let mut b = [0u8; 8];
        let tail = data.get(byte..).unwrap_or_default();
        let len = tail.len().min(8);
        b[..len].copy_from_slice(&tail[..len]);
        out.push(((u64::from_le_bytes(b) >> shift) & mask) as u32);
    }
}

/// Fills `out` (a multiple of 8 long) with values of `w` bits (1 to 32), 8 values per `w`
/// bytes of `data`, which holds every group and 8 bytes more. One copy of the loop per
/// width, so that every shift within a group is a constant (the loop with variable
/// shifts took ~1 ns a value; perf, dictionary indices of `-s dstport` with a filter).
fn unpack_groups(data: &[u8], w: usize, out: &mut [u32]) {
    macro_rules! widths {
        ($($w:literal)*) => {
            match w {
                $( $w => unpack_width::<$w>(data, out), )*
                _ => {}
            }
        };
    }
    widths!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31
        32)
}

#[inline(always)]
fn unpack_width<const W: usize>(data: &[u8], out: &mut [u32]) {
    let mask = if W == 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << W) - 1
    };
    for (g, o) in out.chunks_exact_mut(8).enumerate() {
        let base = g * W;
        for (t, v) in o.iter_mut().enumerate() {
            let bit = t * W;
            let at = base + bit / 8;
            let mut x = [0u8; 8];
            x.copy_from_slice(&data[at..at + 8]);
            *v = ((u64::from_le_bytes(x) >> (bit % 8)) & mask) as u32;
        }
    }
}

/// A ULEB128 integer and the bytes it took.
pub(crate) fn uleb128(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_decodes_rle_and_bit_packed_runs() {
        let buf = [
            // RLE run: header 5 << 1 = 10 (5 repeats), value 0x0203 in 2 bytes (width 10).
            0x0a, 0x03, 0x02, //
            // Bit-packed run: header (1 << 1) | 1 = 3 (one group of 8), 8 values of 10 bits
            // = 10 bytes: 0..=7 packed LSB first.
            0x03, 0x00, 0x04, 0x20, 0xc0, 0x00, 0x04, 0x14, 0x60, 0xc0, 0x01,
        ];
        let mut out = vec![99];
        hybrid(&buf, 10, 13, &mut out).unwrap();
        assert_eq!(
            out,
            [
                99, 0x203, 0x203, 0x203, 0x203, 0x203, 0, 1, 2, 3, 4, 5, 6, 7
            ]
        );
        // A run group's padding beyond the page's values is not returned.
        let mut out = Vec::new();
        hybrid(&buf, 10, 7, &mut out).unwrap();
        assert_eq!(out, [0x203, 0x203, 0x203, 0x203, 0x203, 0, 1]);
    }

    #[test]
    fn unpacking_matches_a_bit_by_bit_reading_at_every_width() {
        // Values of each width packed LSB first by hand, then read back whole groups,
        // a cut last group, and with the buffer ending right after the values.
        for width in 1..=32u32 {
            for n in [1usize, 7, 8, 9, 64, 203] {
                let vals: Vec<u32> = (0..n as u64)
                    .map(|i| ((i * 2_654_435_761 + 12_345) & ((1u64 << width) - 1)) as u32)
                    .collect();
                let mut buf = vec![0u8; (n * width as usize).div_ceil(8)];
                for (j, &v) in vals.iter().enumerate() {
                    for b in 0..width as usize {
                        if v >> b & 1 == 1 {
                            let bit = j * width as usize + b;
                            buf[bit / 8] |= 1 << (bit % 8);
                        }
                    }
                }
                let mask = (1u64 << width) - 1;
                let mut out = vec![5];
                unpack(&buf, width, mask, n, &mut out);
                assert_eq!(out[1..], vals[..], "width {width}, {n} values");
            }
        }
    }

    #[test]
    fn hostile_runs_are_refused_not_panics() {
        let mut out = Vec::new();
        // Header promises 8 groups of 10 bits, the buffer ends first.
        assert!(hybrid(&[0x11, 0x00], 10, 64, &mut out).is_none());
        // A zero-length RLE run would loop forever.
        assert!(hybrid(&[0x00, 0x01], 8, 1, &mut out).is_none());
        // Header varint never ends.
        assert!(hybrid(&[0xff; 12], 8, 1, &mut out).is_none());
        // Repeated value wider than the bit width.
        assert!(hybrid(&[0x02, 0x05], 2, 1, &mut out).is_none());
        // Index beyond the dictionary of 9 values; width byte beyond 32; an index in it,
        // offset by the dictionaries before (5 values).
        let mut keys = Vec::new();
        let mut one = |page: &[u8], base| {
            indices(page, Encoding::RLE_DICTIONARY, 1, base, 9, &mut keys).is_some()
        };
        assert!(!one(&[4, 0x02, 0x09], 0));
        assert!(!one(&[33, 0x02, 0x01], 0));
        assert!(one(&[4, 0x02, 0x08], 5));
        assert_eq!(keys, [13]);
        assert_eq!(uleb128(&[0xe5, 0x8e, 0x26]), Some((624_485, 3)));
    }
}
