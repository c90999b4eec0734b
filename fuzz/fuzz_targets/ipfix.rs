#![no_main]
//! IPFIX messages (version forced), and the same bytes as a TCP stream through the framer.
mod common;
use flowsight_wire::IpfixStream;
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::feed(data, &[0, 10]);
    let mut s = IpfixStream::new();
    for chunk in data.chunks(97) {
        s.push(chunk);
        loop {
            match s.next_message() {
                Ok(Some(m)) => assert!(m.len() >= 16),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(s.buffered() <= 65_535 + 97);
    }
});
