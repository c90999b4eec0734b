#![no_main]
//! Any bytes, any format (auto-detected per datagram).
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::feed(data, &[]);
});
