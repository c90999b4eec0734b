//! Bounds-checked big-endian reads. Every read returns `None` past the end, so hostile lengths
//! can never index out of bounds.

#[inline]
pub(crate) fn u8_at(b: &[u8], o: usize) -> Option<u8> {
    b.get(o).copied()
}

#[inline]
pub(crate) fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    let s = b.get(o..o.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

#[inline]
pub(crate) fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    let s = b.get(o..o.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

#[inline]
pub(crate) fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    let s = b.get(o..o.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

/// Reads an unsigned big-endian integer of any length 0..=8 (RFC 7011 s6.2 reduced-size
/// encoding); longer fields keep their last 8 bytes.
#[inline(always)]
pub(crate) fn uint_be(s: &[u8]) -> u64 {
    match s.len() {
        1 => s[0] as u64,
        2 => u16::from_be_bytes([s[0], s[1]]) as u64,
        4 => u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64,
        8 => u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]),
        _ => {
            let start = s.len().saturating_sub(8);
            s[start..]
                .iter()
                .fold(0u64, |acc, &x| (acc << 8) | x as u64)
        }
    }
}
