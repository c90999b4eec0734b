// Shared by the fuzz targets: feed one input as several datagrams (split on the marker
// "FSFZ") to one decoder, so template state carries across packets as in a real collector.
use flowsight_schema::FlowBatch;
use flowsight_wire::{Decoder, DecoderConfig, TemplateLimits};

pub fn decoder() -> Decoder {
    // Small limits so the fuzzer reaches the eviction and rejection paths quickly.
    Decoder::new(DecoderConfig {
        templates: TemplateLimits { max_per_exporter: 64, max_total: 128, max_fields: 128, idle_timeout_ns: 10_000_000_000 },
        pending_max_bytes: 64 * 1024,
        max_counter_records: 1024,
        ..DecoderConfig::default()
    })
}

pub fn feed(data: &[u8], prefix: &[u8]) -> (Decoder, FlowBatch) {
    let mut dec = decoder();
    let mut out = FlowBatch::default();
    let exporter = "192.0.2.1".parse().unwrap_or(std::net::IpAddr::from([192, 0, 2, 1]));
    let at = |i: usize| 1_700_000_000_000_000_000 + i as u64 * 1_000_000_000;
    let pkts: Vec<Vec<u8>> = split(data)
        .map(|part| {
            let mut pkt = prefix.to_vec();
            pkt.extend_from_slice(part);
            pkt
        })
        .collect();
    for (i, pkt) in pkts.iter().enumerate() {
        let _ = dec.decode(exporter, at(i), pkt, &mut out);
        // Bounded memory whatever the input.
        assert!(dec.template_count() <= 128);
        assert!(out.len() <= 4 * 1024 * 1024);
    }
    // The same datagrams in one `decode_many` (data sets decoded in runs across datagrams)
    // must give the very same records.
    let mut many = decoder();
    let mut out_many = FlowBatch::default();
    many.decode_many(
        pkts.iter().enumerate().map(|(i, p)| (exporter, at(i), p.as_slice())),
        &mut out_many,
        |_, _, _| {},
    );
    assert!(out == out_many, "decode_many differs from decode");
    (dec, out)
}

pub fn split(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.windows(4).position(|w| w == b"FSFZ") {
            Some(p) => {
                let (a, b) = rest.split_at(p);
                rest = &b[4..];
                Some(a)
            }
            None => Some(std::mem::take(&mut rest)),
        }
    })
}
