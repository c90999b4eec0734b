#![no_main]
//! DELTA_BINARY_PACKED data pages as the store decodes them for number columns: any bytes
//! and any value count; never a panic, and a success returns exactly the values announced.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((head, page)) = data.split_first_chunk::<2>() else {
        return;
    };
    flowsight_store::fuzz_delta(page, usize::from(u16::from_le_bytes(*head)));
});
