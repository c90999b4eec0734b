//! `Decoder::decode_many` decodes consecutive data sets of one template together, across
//! datagrams. Whatever the mix of formats, exporters, template changes, sampling options and
//! broken datagrams, it must give exactly what `decode` gives one datagram at a time: the
//! same records in the same order, the same per-datagram outcomes and the same counters.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use flowsight_schema::{FlowBatch, FlowRecord, addr_from_v4};
use flowsight_wire::{
    Decoder, ExportEncoder, IpfixEncoder, LegacyEncoder, SflowEncoder, V9Encoder,
};
use proptest::prelude::*;
use std::net::IpAddr;

const T0: u64 = 1_700_000_000_000_000_000;

/// Records from a xorshift stream: IPv4 and IPv6 (two templates per encoder), ICMP and
/// TCP/UDP, and the given sampling rate (a change makes the encoders send options data).
fn records(seed: u64, n: usize, rate: u64) -> Vec<FlowRecord> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v6 = x.is_multiple_of(4);
            let addr = |v: u64| {
                if v6 {
                    let mut a = [0u8; 16];
                    a[0] = 0x20;
                    a[1] = 0x01;
                    a[8..].copy_from_slice(&v.to_be_bytes());
                    a
                } else {
                    addr_from_v4(v as u32)
                }
            };
            FlowRecord {
                src_addr: addr(x >> 3),
                dst_addr: addr(x >> 17),
                proto: [6, 17, 1, 58][(x >> 40) as usize % 4],
                src_port: (x >> 8) as u16,
                dst_port: (x >> 24) as u16 % 3 * 443,
                bytes: x >> 44,
                packets: 1 + (x >> 58),
                in_if: (x >> 5) as u32 & 7,
                sampling_rate: rate,
                time_flow_start_ns: T0 - 5_000_000_000 - (x >> 36),
                time_flow_end_ns: T0 - 1_000_000_000,
                ..FlowRecord::default()
            }
        })
        .collect()
}

/// An IPFIX message with a template set (id 300, the given layout) and a data set of it:
/// a redefinition when the layout differs from the last one.
fn ipfix_redefinition(fields: &[(u16, u16)], rows: usize, fill: u8) -> Vec<u8> {
    let mut t = vec![1, 44]; // template id 300
    t.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (ie, len) in fields {
        t.extend_from_slice(&ie.to_be_bytes());
        t.extend_from_slice(&len.to_be_bytes());
    }
    let rec_len: usize = fields.iter().map(|&(_, l)| l as usize).sum();
    let data: Vec<u8> = (0..rows * rec_len)
        .map(|i| fill.wrapping_add(i as u8))
        .collect();
    let mut m = vec![0, 10, 0, 0];
    m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    m.extend_from_slice(&7u32.to_be_bytes());
    m.extend_from_slice(&9u32.to_be_bytes());
    for (id, body) in [(2u16, &t), (300u16, &data)] {
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        m.extend_from_slice(body);
    }
    let n = m.len() as u16;
    m[2..4].copy_from_slice(&n.to_be_bytes());
    m
}

/// What a datagram in the stream is made of.
#[derive(Clone, Debug)]
enum Event {
    V9 {
        exporter: u8,
        recs: usize,
        rate: u64,
    },
    Ipfix {
        exporter: u8,
        recs: usize,
        rate: u64,
    },
    V5 {
        recs: usize,
    },
    Sflow {
        recs: usize,
    },
    /// IPFIX template 300 with one of two layouts, then records of it.
    Redefine {
        layout: bool,
        rows: usize,
    },
    /// Data for template 300 alone (whatever its layout is by then).
    Data300 {
        rows: usize,
    },
    /// The previous datagram cut short.
    Truncated {
        keep: usize,
    },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0u8..2, 1usize..30, prop::sample::select(vec![0u64, 100, 1000]))
            .prop_map(|(exporter, recs, rate)| Event::V9 { exporter, recs, rate }),
        4 => (0u8..2, 1usize..30, prop::sample::select(vec![0u64, 100, 1000]))
            .prop_map(|(exporter, recs, rate)| Event::Ipfix { exporter, recs, rate }),
        1 => (1usize..30).prop_map(|recs| Event::V5 { recs }),
        1 => (1usize..10).prop_map(|recs| Event::Sflow { recs }),
        1 => (any::<bool>(), 0usize..6).prop_map(|(layout, rows)| Event::Redefine { layout, rows }),
        2 => (1usize..6).prop_map(|rows| Event::Data300 { rows }),
        1 => (0usize..200).prop_map(|keep| Event::Truncated { keep }),
    ]
}

/// The datagrams of a stream of events, with their exporters.
fn datagrams(events: &[Event], seed: u64) -> Vec<(IpAddr, u64, Vec<u8>)> {
    let exporters = [IpAddr::from([192, 0, 2, 1]), IpAddr::from([192, 0, 2, 2])];
    let mut v9 = [
        V9Encoder::new(1, T0 - 3_600_000_000_000).template_every(3),
        V9Encoder::new(2, T0 - 7_200_000_000_000).template_every(5),
    ];
    let mut ipfix = [
        IpfixEncoder::new(1).template_every(4),
        IpfixEncoder::new(2).template_every(2),
    ];
    let mut v5 = LegacyEncoder::new(5, T0 - 3_600_000_000_000);
    let mut sflow = SflowEncoder::new(exporters[1]);
    let mut out: Vec<(IpAddr, u64, Vec<u8>)> = Vec::new();
    let layouts: [&[(u16, u16)]; 2] = [&[(8, 4), (1, 8), (7, 2)], &[(12, 4), (2, 4)]];
    for (i, e) in events.iter().enumerate() {
        let received = T0 + i as u64 * 1_000_000;
        let s = seed.wrapping_add(i as u64 * 7919);
        let mut p = Vec::new();
        let exporter = match e {
            Event::V9 {
                exporter,
                recs,
                rate,
            } => {
                v9[*exporter as usize].encode_datagram(T0, &records(s, *recs, *rate), &mut p);
                exporters[*exporter as usize]
            }
            Event::Ipfix {
                exporter,
                recs,
                rate,
            } => {
                ipfix[*exporter as usize].encode_datagram(T0, &records(s, *recs, *rate), &mut p);
                exporters[*exporter as usize]
            }
            Event::V5 { recs } => {
                v5.encode_datagram(T0, &records(s, *recs, 0), &mut p);
                exporters[0]
            }
            Event::Sflow { recs } => {
                ExportEncoder::encode_datagram(&mut sflow, T0, &records(s, *recs, 0), &mut p);
                exporters[1]
            }
            Event::Redefine { layout, rows } => {
                p = ipfix_redefinition(layouts[*layout as usize], *rows, s as u8);
                exporters[0]
            }
            Event::Data300 { rows } => {
                // Data set only: decoded with whatever template 300 is now (or held).
                let m = ipfix_redefinition(layouts[0], *rows, s as u8);
                let tset = u16::from_be_bytes([m[18], m[19]]) as usize;
                let mut d = m[..16].to_vec();
                d.extend_from_slice(&m[16 + tset..]);
                let n = d.len() as u16;
                d[2..4].copy_from_slice(&n.to_be_bytes());
                p = d;
                exporters[0]
            }
            Event::Truncated { keep } => {
                let (ex, _, last) = out.last().cloned().unwrap_or((exporters[0], 0, vec![0, 9]));
                p = last[..(*keep).min(last.len())].to_vec();
                ex
            }
        };
        out.push((exporter, received, p));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_many_equals_decode_one_at_a_time(
        events in prop::collection::vec(event(), 1..60),
        chunk in 1usize..70,
        seed in any::<u64>(),
    ) {
        let dgs = datagrams(&events, seed);

        let mut one = Decoder::default();
        let mut a = FlowBatch::default();
        let mut outcomes_a = Vec::new();
        let mut len_after = Vec::new();
        for (ex, ts, d) in &dgs {
            let before = a.len();
            let r = one.decode(*ex, *ts, d, &mut a);
            let flows = a.len() - before;
            outcomes_a.push((flows, r.map(|i| (i.format, i.flows)).map_err(|e| e.to_string())));
            len_after.push(a.len());
        }

        let mut many = Decoder::default();
        let mut b = FlowBatch::default();
        let mut outcomes_b = Vec::new();
        for c in dgs.chunks(chunk) {
            let before = outcomes_b.len();
            many.decode_many(
                c.iter().map(|(ex, ts, d)| (*ex, *ts, d.as_slice())),
                &mut b,
                |i, flows, r| {
                    assert_eq!(i, outcomes_b.len() - before);
                    outcomes_b.push((flows, r.map(|i| (i.format, i.flows)).map_err(|e| e.to_string())));
                },
            );
            // Everything handed over is decoded when decode_many returns.
            prop_assert_eq!(b.len(), len_after[outcomes_b.len() - 1]);
        }

        prop_assert_eq!(&outcomes_a, &outcomes_b);
        prop_assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            prop_assert_eq!(a.get(i), b.get(i), "record {}", i);
        }
        prop_assert_eq!(one.stats(), many.stats());
    }
}

/// `decode` keeps a datagram's records in their order, also on a decoder that ran
/// `decode_many` before (which leaves a closed run per template behind for reuse).
#[test]
fn decode_after_decode_many_keeps_datagram_order() {
    let ev = Event::V9 {
        exporter: 0,
        recs: 29,
        rate: 0,
    };
    let dgs = datagrams(&[ev.clone(), ev.clone(), ev], 5);
    let mut fresh = Decoder::default();
    let mut want = FlowBatch::default();
    for (ex, ts, d) in &dgs {
        let _ = fresh.decode(*ex, *ts, d, &mut want);
    }
    let mut mixed = Decoder::default();
    let mut got = FlowBatch::default();
    let first_two = dgs[..2].iter().map(|(ex, ts, d)| (*ex, *ts, d.as_slice()));
    mixed.decode_many(first_two, &mut got, |_, _, _| {});
    let before = got.len();
    let (ex, ts, d) = &dgs[2];
    let _ = mixed.decode(*ex, *ts, d, &mut got);
    assert_eq!(got.len(), want.len());
    // The last datagram's IPv4 and IPv6 records alternate more than once, so grouping them
    // by template would show.
    let changes = (before + 1..want.len())
        .filter(|&i| want.get(i).unwrap().etype != want.get(i - 1).unwrap().etype)
        .count();
    assert!(changes >= 2, "{changes} changes of address family");
    for i in before..got.len() {
        assert_eq!(got.get(i), want.get(i), "record {i}");
    }
}
