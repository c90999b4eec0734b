#![no_main]
//! NetFlow v9 packets (version field forced), templates carried across packets.
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::feed(data, &[0, 9]);
});
