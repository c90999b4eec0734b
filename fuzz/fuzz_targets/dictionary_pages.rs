#![no_main]
//! Dictionary-index data pages (RLE/bit-packing hybrid) as the store decodes them for
//! address keys: any bytes, any page size, dictionary size and offset; never a panic, and
//! every index returned inside the dictionary.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((head, page)) = data.split_first_chunk::<4>() else {
        return;
    };
    let n = usize::from(u16::from_le_bytes([head[0], head[1]]));
    let dict_len = usize::from(head[2]) * 64 + 1;
    let base = usize::from(head[3]) * 1000;
    flowsight_store::fuzz_indices(page, n, base, dict_len);
});
