//! DELTA_BINARY_PACKED page bodies (Parquet `Encodings.md`, "Delta Encoding"), written
//! straight from a column's values: the time, sequence, byte and packet columns.
//!
//! Why not arrow-rs's encoder: it cost ~67 instructions a value, 16% of a flush file's
//! instructions (callgrind, `examples/write_once.rs 524288 zstd1`: 209 M of 1 321 M for six
//! columns), in generic bit-packing and level bookkeeping. Here a block's deltas, their
//! minimum and each miniblock's width are one pass over 128 values, and a miniblock is packed
//! through a 128-bit accumulator, 8 bytes at a time.
//!
//! Layout, as arrow-rs writes it: blocks of 128 values in 4 miniblocks of 32. The header
//! holds the block size, the miniblock count, the value count and the first value (ULEB128,
//! the first value zig-zagged); each block holds its minimum delta (zig-zag ULEB128), one
//! bit-width byte per miniblock, then the miniblocks: each value's delta minus the minimum,
//! packed least significant bit first. A last block's unused miniblocks have width 0 and no
//! bytes; its last miniblock is padded with zeros to 32 values.

use crate::textcol::varint;

/// Values per block (a multiple of 128, `Encodings.md`).
const BLOCK: usize = 128;
/// Miniblocks per block.
const MINIBLOCKS: usize = 4;
/// Values per miniblock (a multiple of 32).
const MINI: usize = BLOCK / MINIBLOCKS;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Appends the encoding of `values` to `out`. The values are the column's physical ones:
/// for an INT32 column (`wide` false) the low 32 bits, sign-extended, and every delta is
/// taken in 32-bit arithmetic as readers of INT32 columns take it; for INT64, in 64-bit.
pub(crate) fn encode(out: &mut Vec<u8>, values: &[i64], wide: bool) {
    varint(out, BLOCK as u64);
    varint(out, MINIBLOCKS as u64);
    varint(out, values.len() as u64);
    varint(out, zigzag(values.first().copied().unwrap_or(0)));
    let mut deltas = [0i64; BLOCK];
    let mut packed = [0u64; BLOCK];
    let mut i = 1;
    while i < values.len() {
        let n = (values.len() - i).min(BLOCK);
        let (cur, prev) = (&values[i..i + n], &values[i - 1..i - 1 + n]);
        if wide {
            for ((d, &c), &p) in deltas.iter_mut().zip(cur).zip(prev) {
                *d = c.wrapping_sub(p);
            }
        } else {
            for ((d, &c), &p) in deltas.iter_mut().zip(cur).zip(prev) {
                *d = i64::from((c as i32).wrapping_sub(p as i32));
            }
        }
        let min = minimum(&deltas[..n]);
        varint(out, zigzag(min));
        if wide {
            for (o, &d) in packed.iter_mut().zip(&deltas[..n]) {
                *o = d.wrapping_sub(min) as u64;
            }
        } else {
            for (o, &d) in packed.iter_mut().zip(&deltas[..n]) {
                *o = u64::from((d as i32).wrapping_sub(min as i32) as u32);
            }
        }
        // The last block's padding packs as zeros.
        packed[n..].fill(0);
        let used = n.div_ceil(MINI);
        let mut widths = [0u8; MINIBLOCKS];
        for (w, m) in widths.iter_mut().zip(packed.chunks_exact(MINI)).take(used) {
            let any = m.iter().fold(0u64, |a, &v| a | v);
            *w = (64 - any.leading_zeros()) as u8;
        }
        out.extend_from_slice(&widths);
        for (&w, m) in widths.iter().zip(packed.chunks_exact(MINI)).take(used) {
            pack32(out, m, u32::from(w));
        }
        i += n;
    }
}

/// The smallest of `v` (not empty), in eight lanes so that it vectorizes.
fn minimum(v: &[i64]) -> i64 {
    let mut lanes = [i64::MAX; 8];
    let (chunks, rest) = v.as_chunks::<8>();
    for c in chunks {
        for k in 0..8 {
            lanes[k] = if c[k] < lanes[k] { c[k] } else { lanes[k] };
        }
    }
    rest.iter().chain(&lanes).fold(i64::MAX, |a, &b| a.min(b))
}

/// 32 values of `w` bits (each below `2^w`), least significant bit first: `4 * w` bytes.
#[inline]
fn pack32(out: &mut Vec<u8>, values: &[u64], w: u32) {
    if w == 0 {
        return;
    }
    if w <= 32 {
        // `bits` < 32 before each shift, so a 64-bit accumulator holds a value of <= 32 bits.
        let (mut acc, mut bits) = (0u64, 0u32);
        for &v in values {
            acc |= v << bits;
            bits += w;
            if bits >= 32 {
                out.extend_from_slice(&(acc as u32).to_le_bytes());
                acc >>= 32;
                bits -= 32;
            }
        }
        out.extend_from_slice(&acc.to_le_bytes()[..(bits / 8) as usize]);
        return;
    }
    let (mut acc, mut bits) = (0u128, 0u32);
    for &v in values {
        // `bits` < 64 here, so the value's `w` <= 64 bits fit the 128-bit accumulator.
        acc |= u128::from(v) << bits;
        bits += w;
        if bits >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            bits -= 64;
        }
    }
    // 32 * w bits in all: whole bytes are left.
    out.extend_from_slice(&(acc as u64).to_le_bytes()[..(bits / 8) as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_page_bytes() {
        let mut out = Vec::new();
        // Values 7, 5, 3, 4, 4 (INT64).
        encode(&mut out, &[7, 5, 3, 4, 4], true);
        assert_eq!(
            out,
            vec![
                0x80,
                0x01, // block size 128 (ULEB128)
                0x04, // 4 miniblocks
                0x05, // 5 values
                0x0e, // first value 7, zig-zag 14
                0x03, // minimum delta -2, zig-zag 3
                // widths: deltas -2 -2 1 0 minus -2 are 0 0 3 2, at most 3: 2 bits; the
                // block's three other miniblocks are unused
                0x02,
                0x00,
                0x00,
                0x00,
                // 0, 0, 3, 2 at 2 bits LSB first, then 28 zeros of padding: 8 bytes
                0b1011_0000,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ]
        );
    }

    #[test]
    fn one_value_is_the_header_alone() {
        let mut out = Vec::new();
        encode(&mut out, &[-3], true);
        // 128, 4 miniblocks, 1 value, first -3 zig-zagged (5); no block.
        assert_eq!(out, vec![0x80, 0x01, 0x04, 0x01, 0x05]);
    }

    #[test]
    fn int32_deltas_wrap_in_32_bits() {
        let mut out = Vec::new();
        // u32::MAX then 0 as INT32 bits: -1 then 0, a delta of +1 in 32-bit arithmetic.
        encode(&mut out, &[-1, 0], false);
        assert_eq!(
            out,
            vec![
                0x80, 0x01, 0x04, 0x02, // header: 128, 4, 2 values
                0x01, // first value -1, zig-zag 1
                0x02, // minimum delta 1, zig-zag 2
                0x00, 0x00, 0x00, 0x00, // all deltas equal the minimum: width 0, no bytes
            ]
        );
    }

    #[test]
    fn pages_decode_to_the_values() {
        // The store's reader (`pages::delta`) gives back every value: random walks with
        // small and huge steps, INT32 and INT64, lengths around block and miniblock edges.
        let mut next = crate::xorshift(0x9e37_79b9_7f4a_7c15);
        for wide in [false, true] {
            for n in [2usize, 31, 32, 33, 127, 128, 129, 130, 1000, 20_000] {
                let mut v: Vec<i64> = Vec::with_capacity(n);
                let mut cur = 0i64;
                for i in 0..n {
                    let r = next();
                    cur = match i % 5 {
                        0 => r as i64,
                        1 => cur.wrapping_add((r % 1000) as i64),
                        2 => cur,
                        _ => cur.wrapping_sub((r % 3) as i64),
                    };
                    v.push(if wide { cur } else { i64::from(cur as i32) });
                }
                let mut page = Vec::new();
                encode(&mut page, &v, wide);
                let mut got = Vec::new();
                crate::pages::delta(&page, n, &mut got, &mut Vec::new()).unwrap();
                let mask = if wide { u64::MAX } else { u64::from(u32::MAX) };
                let want: Vec<u64> = v.iter().map(|&x| x as u64 & mask).collect();
                let got: Vec<u64> = got.iter().map(|&x| x & mask).collect();
                assert_eq!(got, want, "{n} values, wide {wide}");
            }
        }
    }
}
