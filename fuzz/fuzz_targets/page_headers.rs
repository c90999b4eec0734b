#![no_main]
//! Parquet page headers (Thrift compact protocol) as the store parses them when it reads
//! its own files' pages: any bytes; never a panic, never more bytes taken than given.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    flowsight_store::fuzz_page_header(data);
});
