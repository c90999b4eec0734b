#![no_main]
//! sFlow v5 datagrams (version forced).
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (mut dec, _) = common::feed(data, &[0, 0, 0, 5]);
    assert!(dec.take_counters().len() <= 1024);
});
