#![no_main]
//! NetFlow v1/v5/v7: the first input byte picks the version.
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&v, rest)) = data.split_first() else { return };
    let version = [1u8, 5, 7][v as usize % 3];
    common::feed(rest, &[0, version]);
});
