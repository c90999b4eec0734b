//! Template engine behaviour (RFC 7011 s8, RFC 3954 s5-6): scoping, data before templates,
//! withdrawal, redefinition, expiry, limits under floods, snapshots, sampling from options,
//! time variants and sequence loss.

#![allow(clippy::unwrap_used)] // test helpers panic on purpose

use flowsight_schema::{FlowBatch, FlowRecord, addr_from_ip};
use flowsight_wire::{
    Decoder, DecoderConfig, ExportEncoder, IpfixEncoder, TemplateLimits, V9Encoder,
};
use std::net::IpAddr;

const T0: u64 = 1_700_000_000_000_000_000;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Builds IPFIX messages: header, then sets appended with `set`.
struct Msg(Vec<u8>);

impl Msg {
    fn new(seq: u32, domain: u32) -> Msg {
        let mut v = vec![0, 10, 0, 0];
        v.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&domain.to_be_bytes());
        Msg(v)
    }
    fn set(mut self, id: u16, body: &[u8]) -> Msg {
        self.0.extend_from_slice(&id.to_be_bytes());
        self.0
            .extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        self.0.extend_from_slice(body);
        self
    }
    fn done(mut self) -> Vec<u8> {
        let n = self.0.len() as u16;
        self.0[2..4].copy_from_slice(&n.to_be_bytes());
        self.0
    }
}

/// Template record: id, then (ie, len) pairs.
fn tmpl(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut v = id.to_be_bytes().to_vec();
    v.extend_from_slice(&(fields.len() as u16).to_be_bytes());
    for (ie, len) in fields {
        v.extend_from_slice(&ie.to_be_bytes());
        v.extend_from_slice(&len.to_be_bytes());
    }
    v
}

/// Template 256: sourceIPv4Address, octetDeltaCount(4).
fn t256() -> Vec<u8> {
    tmpl(256, &[(8, 4), (1, 4)])
}

fn rec256(src: [u8; 4], bytes: u32) -> Vec<u8> {
    let mut v = src.to_vec();
    v.extend_from_slice(&bytes.to_be_bytes());
    v
}

fn run(dec: &mut Decoder, from: &str, pkt: &[u8]) -> FlowBatch {
    let mut b = FlowBatch::default();
    let _ = dec.decode(ip(from), T0, pkt, &mut b);
    b
}

#[test]
fn data_before_template_is_held_then_decoded() {
    let mut dec = Decoder::default();
    let data = Msg::new(0, 1).set(256, &rec256([10, 0, 0, 1], 77)).done();
    assert_eq!(run(&mut dec, "10.0.0.1", &data).len(), 0);
    assert_eq!(dec.pending_sets(), 1);
    let t = Msg::new(1, 1).set(2, &t256()).done();
    let b = run(&mut dec, "10.0.0.1", &t);
    assert_eq!(b.len(), 1, "held data decoded when its template arrives");
    assert_eq!(b.bytes[0], 77);
    assert_eq!(dec.stats().pending_decoded_sets, 1);
    assert_eq!(dec.pending_sets(), 0);
}

#[test]
fn templates_are_scoped_by_exporter_and_domain() {
    let mut dec = Decoder::default();
    run(&mut dec, "10.0.0.1", &Msg::new(0, 1).set(2, &t256()).done());
    // Same template id, other exporter: unknown there.
    let d = Msg::new(0, 1).set(256, &rec256([1, 1, 1, 1], 5)).done();
    assert_eq!(run(&mut dec, "10.0.0.2", &d).len(), 0);
    // Same exporter, other domain: unknown too.
    let d2 = Msg::new(0, 2).set(256, &rec256([1, 1, 1, 1], 5)).done();
    assert_eq!(run(&mut dec, "10.0.0.1", &d2).len(), 0);
    // Same exporter and domain: decoded.
    let d3 = Msg::new(0, 1).set(256, &rec256([1, 1, 1, 1], 5)).done();
    assert_eq!(run(&mut dec, "10.0.0.1", &d3).len(), 1);
    assert_eq!(dec.stats().unknown_template_sets, 2);
}

#[test]
fn withdrawal_and_withdraw_all() {
    let mut dec = Decoder::default();
    let both = [t256(), tmpl(300, &[(8, 4)])].concat();
    run(&mut dec, "10.0.0.1", &Msg::new(0, 1).set(2, &both).done());
    assert_eq!(dec.template_count(), 2);
    // RFC 7011 s8.1: template id 256 with field count 0 withdraws it.
    run(
        &mut dec,
        "10.0.0.1",
        &Msg::new(0, 1).set(2, &[1, 0, 0, 0]).done(),
    );
    assert_eq!(dec.template_count(), 1);
    let d = Msg::new(0, 1).set(256, &rec256([1, 1, 1, 1], 5)).done();
    assert_eq!(
        run(&mut dec, "10.0.0.1", &d).len(),
        0,
        "withdrawn template no longer decodes"
    );
    // Template id 2 with count 0: all data templates of the domain.
    run(
        &mut dec,
        "10.0.0.1",
        &Msg::new(0, 1).set(2, &[0, 2, 0, 0]).done(),
    );
    assert_eq!(dec.template_count(), 0);
    assert_eq!(dec.stats().templates_withdrawn, 2);
}

#[test]
fn redefinition_changes_the_layout() {
    let mut dec = Decoder::default();
    run(&mut dec, "10.0.0.1", &Msg::new(0, 1).set(2, &t256()).done());
    // Same id, now octets first (8 bytes) then the address.
    run(
        &mut dec,
        "10.0.0.1",
        &Msg::new(0, 1).set(2, &tmpl(256, &[(1, 8), (8, 4)])).done(),
    );
    let mut rec = 999u64.to_be_bytes().to_vec();
    rec.extend_from_slice(&[10, 9, 8, 7]);
    let b = run(&mut dec, "10.0.0.1", &Msg::new(0, 1).set(256, &rec).done());
    assert_eq!(b.bytes[0], 999);
    assert_eq!(b.src_addr[0], addr_from_ip(ip("10.9.8.7")));
    assert_eq!(dec.stats().templates_redefined, 1);
}

#[test]
fn idle_templates_expire() {
    let cfg = DecoderConfig {
        templates: TemplateLimits {
            idle_timeout_ns: 60_000_000_000,
            ..TemplateLimits::default()
        },
        ..DecoderConfig::default()
    };
    let mut dec = Decoder::new(cfg);
    let mut b = FlowBatch::default();
    dec.decode(
        ip("10.0.0.1"),
        T0,
        &Msg::new(0, 1).set(2, &t256()).done(),
        &mut b,
    )
    .unwrap();
    let d = Msg::new(0, 1).set(256, &rec256([1, 1, 1, 1], 5)).done();
    dec.decode(ip("10.0.0.1"), T0 + 30_000_000_000, &d, &mut b)
        .unwrap();
    assert_eq!(b.len(), 1, "still valid after 30 s");
    dec.decode(ip("10.0.0.1"), T0 + 61_000_000_000, &d, &mut b)
        .unwrap();
    assert_eq!(b.len(), 1, "expired after 61 s without a refresh");
    assert_eq!(dec.stats().templates_expired, 1);
}

#[test]
fn template_flood_is_bounded() {
    let cfg = DecoderConfig {
        templates: TemplateLimits {
            max_per_exporter: 100,
            max_total: 150,
            ..TemplateLimits::default()
        },
        pending_max_bytes: 10_000,
        ..DecoderConfig::default()
    };
    let mut dec = Decoder::new(cfg);
    // Two exporters each announce 60 000 distinct templates, 100 per message.
    for exporter in ["10.0.0.1", "10.0.0.2"] {
        for chunk in 0..600u16 {
            let body: Vec<u8> = (0..100u16)
                .flat_map(|i| tmpl(256 + chunk * 100 + i, &[(8, 4), (1, 4)]))
                .collect();
            run(&mut dec, exporter, &Msg::new(0, 1).set(2, &body).done());
        }
    }
    assert_eq!(
        dec.template_count(),
        150,
        "capped per exporter and in total"
    );
    assert!(dec.stats().templates_rejected > 0);
    // A flood of data for unknown templates stays within the pending byte budget.
    for i in 0..10_000u32 {
        let d = Msg::new(i, 9).set(300, &[0u8; 100]).done();
        run(&mut dec, "10.0.0.3", &d);
    }
    assert!(dec.pending_sets() * 100 <= 10_000);
    assert!(dec.stats().pending_dropped_sets >= 9_900);
}

#[test]
fn hostile_templates_are_rejected_without_panic() {
    let mut dec = Decoder::default();
    // Field count far beyond the set.
    let b = Msg::new(0, 1)
        .set(2, &[1, 0, 0xff, 0xff, 0, 8, 0, 4])
        .done();
    let mut out = FlowBatch::default();
    assert!(dec.decode(ip("10.0.0.1"), T0, &b, &mut out).is_err());
    // Template id below 256.
    let b = Msg::new(0, 1).set(2, &tmpl(5, &[(8, 4)])).done();
    assert!(dec.decode(ip("10.0.0.1"), T0, &b, &mut out).is_err());
    // Records of zero length would loop forever.
    let b = Msg::new(0, 1).set(2, &tmpl(400, &[(8, 0)])).done();
    assert!(dec.decode(ip("10.0.0.1"), T0, &b, &mut out).is_err());
    // Set length 0 / beyond the message.
    let mut m = Msg::new(0, 1).set(2, &t256()).done();
    m[18] = 0;
    m[19] = 0;
    assert!(dec.decode(ip("10.0.0.1"), T0, &m, &mut out).is_err());
    assert_eq!(dec.template_count(), 0);
    assert_eq!(dec.stats().errors, 4);
}

#[test]
fn snapshot_restores_templates_across_restarts() {
    let mut enc = IpfixEncoder::new(5);
    let recs = vec![
        FlowRecord {
            src_addr: addr_from_ip(ip("192.0.2.1")),
            dst_addr: addr_from_ip(ip("192.0.2.2")),
            bytes: 100,
            packets: 1,
            ..FlowRecord::default()
        };
        3
    ];
    let mut first = Vec::new();
    enc.encode_datagram(T0, &recs, &mut first);
    let mut dec = Decoder::default();
    run(&mut dec, "10.0.0.1", &first);
    let snap = serde_json::to_string(&dec.snapshot_templates()).unwrap();

    // "Restart": a new decoder restored from the snapshot decodes data-only messages.
    let mut second = Vec::new();
    enc.encode_datagram(T0, &recs, &mut second);
    let mut fresh = Decoder::default();
    assert_eq!(
        run(&mut fresh, "10.0.0.1", &second).len(),
        0,
        "no template, no flows"
    );
    let mut restored = Decoder::default();
    let n = restored.restore_templates(&serde_json::from_str(&snap).unwrap());
    assert_eq!(n, 3);
    assert_eq!(run(&mut restored, "10.0.0.1", &second).len(), 3);
}

#[test]
fn v9_sampler_id_in_data_selects_the_options_rate() {
    // v9 options template: scope System, FLOW_SAMPLER_ID(48,1), SAMPLING_INTERVAL(34,4).
    let mut p = vec![
        0, 9, 0, 3, 0, 0, 0, 100, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    p.extend_from_slice(&[
        0, 1, 0, 24, 1, 1, 0, 4, 0, 8, 0, 1, 0, 4, 0, 48, 0, 1, 0, 34, 0, 4, 0, 0,
    ]);
    // options data: two samplers, id 1 -> 1:10, id 2 -> 1:1000 (set len 4 + 2*9 + 2 pad)
    p.extend_from_slice(&[
        1, 1, 0, 24, 0, 0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 0, 2, 0, 0, 3, 232, 0, 0,
    ]);
    // data template 256: IPV4_SRC_ADDR, IN_BYTES, FLOW_SAMPLER_ID
    p.extend_from_slice(&[0, 0, 0, 20, 1, 0, 0, 3, 0, 8, 0, 4, 0, 1, 0, 4, 0, 48, 0, 1]);
    let mut dec = Decoder::default();
    run(&mut dec, "10.0.0.1", &p);
    let mut d = vec![
        0, 9, 0, 2, 0, 0, 0, 100, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 2, 0, 0, 0, 0,
    ];
    d.extend_from_slice(&[
        1, 0, 0, 24, 10, 0, 0, 1, 0, 0, 0, 50, 2, 10, 0, 0, 2, 0, 0, 0, 60, 1, 0, 0,
    ]);
    let b = run(&mut dec, "10.0.0.1", &d);
    assert_eq!(b.sampling_rate, vec![1000, 10]);
}

/// (template fields, record bytes, expected start ns)
type TimeCase = (Vec<(u16, u16)>, Vec<u8>, u64);

#[test]
fn ipfix_time_variants() {
    let export_s = 1_700_000_000u64;
    let cases: Vec<TimeCase> = vec![
        // flowStartSeconds
        (
            vec![(150, 4)],
            (export_s as u32 - 10).to_be_bytes().to_vec(),
            (export_s - 10) * 1_000_000_000,
        ),
        // flowStartMilliseconds
        (
            vec![(152, 8)],
            (export_s * 1000 - 1500).to_be_bytes().to_vec(),
            export_s * 1_000_000_000 - 1_500_000_000,
        ),
        // flowStartMicroseconds (NTP format, s6.1.9)
        (
            vec![(154, 8)],
            (((export_s + 2_208_988_800) << 32) | 0x4000_0000)
                .to_be_bytes()
                .to_vec(),
            export_s * 1_000_000_000 + 250_000_000,
        ),
        // flowStartDeltaMicroseconds: 2 s before export time
        (
            vec![(158, 4)],
            2_000_000u32.to_be_bytes().to_vec(),
            (export_s - 2) * 1_000_000_000,
        ),
        // flowStartSysUpTime relative to systemInitTimeMilliseconds in the same record
        (
            vec![(22, 4), (160, 8)],
            [
                5_000u32.to_be_bytes().to_vec(),
                (export_s * 1000 - 60_000).to_be_bytes().to_vec(),
            ]
            .concat(),
            (export_s * 1000 - 55_000) * 1_000_000,
        ),
    ];
    for (fields, rec, want) in cases {
        let mut dec = Decoder::default();
        let m = Msg::new(0, 1)
            .set(2, &tmpl(256, &fields))
            .set(256, &rec)
            .done();
        let b = run(&mut dec, "10.0.0.1", &m);
        assert_eq!(b.time_flow_start_ns, vec![want], "fields {fields:?}");
    }
}

#[test]
fn sequence_gaps_are_counted_per_format_semantics() {
    let recs = vec![
        FlowRecord {
            src_addr: addr_from_ip(ip("192.0.2.1")),
            dst_addr: addr_from_ip(ip("192.0.2.2")),
            ..FlowRecord::default()
        };
        5
    ];
    // IPFIX: sequence counts records. Drop the second message (5 records).
    let mut enc = IpfixEncoder::new(1);
    let mut msgs = Vec::new();
    for _ in 0..3 {
        let mut m = Vec::new();
        enc.encode_datagram(T0, &recs, &mut m);
        msgs.push(m);
    }
    let mut dec = Decoder::default();
    run(&mut dec, "10.0.0.1", &msgs[0]);
    run(&mut dec, "10.0.0.1", &msgs[2]);
    let lost: u64 = dec.sequences().iter().map(|(_, s)| s.lost).sum();
    assert_eq!(lost, 5);
    // v9: sequence counts packets. Drop one packet.
    let mut enc = V9Encoder::new(1, T0 - 1_000_000_000_000);
    let mut pkts = Vec::new();
    for _ in 0..3 {
        let mut m = Vec::new();
        enc.encode_datagram(T0, &recs, &mut m);
        pkts.push(m);
    }
    let mut dec = Decoder::default();
    run(&mut dec, "10.0.0.1", &pkts[0]);
    run(&mut dec, "10.0.0.1", &pkts[2]);
    let lost: u64 = dec.sequences().iter().map(|(_, s)| s.lost).sum();
    assert_eq!(lost, 1);
}

/// Found by the netflow_v9 fuzz target: a zero-length ipVersion field (IE 60) as the last
/// field of a template made the etype fix-up read past the record.
#[test]
fn zero_length_fields_never_read_past_the_record() {
    // v9 header
    let mut p = vec![
        0, 9, 0, 2, 0, 0, 0, 1, 0x65, 0x53, 0xf1, 0x00, 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    // template 256: IN_BYTES(1) len 4, IP_PROTOCOL_VERSION(60) len 0
    p.extend_from_slice(&[0, 0, 0, 16, 1, 0, 0, 2, 0, 1, 0, 4, 0, 60, 0, 0]);
    // data set: two 4-byte records
    p.extend_from_slice(&[1, 0, 0, 12, 0, 0, 0, 7, 0, 0, 0, 9]);
    let mut dec = Decoder::default();
    let b = run(&mut dec, "10.0.0.1", &p);
    assert_eq!(b.bytes, vec![7, 9]);
    assert_eq!(b.etype, vec![0, 0]);
}

/// IPFIX IEs the decoder maps (RFC 7012 s5), each with lengths an exporter may use: the
/// standard one, reduced-size encodings (RFC 7011 s6.2) and odd ones a hostile or buggy
/// exporter sends.
const COLUMN_FIELDS: &[(u16, &[u16])] = &[
    (1, &[8, 4, 3, 2, 1]), // octetDeltaCount
    (2, &[8, 4, 2]),       // packetDeltaCount
    (4, &[1, 2]),          // protocolIdentifier
    (5, &[1]),             // ipClassOfService
    (6, &[1, 2]),          // tcpControlBits
    (7, &[2, 1]),          // sourceTransportPort
    (8, &[4, 3]),          // sourceIPv4Address
    (9, &[1]),             // sourceIPv4PrefixLength
    (10, &[4, 2]),         // ingressInterface
    (11, &[2]),            // destinationTransportPort
    (12, &[4]),            // destinationIPv4Address
    (13, &[1]),            // destinationIPv4PrefixLength
    (14, &[4, 2]),         // egressInterface
    (15, &[4]),            // ipNextHopIPv4Address
    (16, &[4, 2]),         // bgpSourceAsNumber
    (17, &[4, 2]),         // bgpDestinationAsNumber
    (18, &[4]),            // bgpNextHopIPv4Address
    (27, &[16, 4]),        // sourceIPv6Address
    (28, &[16]),           // destinationIPv6Address
    (31, &[4, 3]),         // flowLabelIPv6
    (32, &[2]),            // icmpTypeCodeIPv4
    (34, &[4, 2]),         // samplingInterval
    (48, &[1, 2]),         // samplerId
    (54, &[4, 2]),         // fragmentIdentification
    (56, &[6, 4, 8]),      // sourceMacAddress
    (57, &[6]),            // postDestinationMacAddress
    (58, &[2, 4]),         // vlanId
    (59, &[2]),            // postVlanId
    (60, &[1]),            // ipVersion
    (61, &[1]),            // flowDirection
    (62, &[16]),           // ipNextHopIPv6Address
    (70, &[3, 4, 2]),      // mplsTopLabelStackSection
    (80, &[6]),            // destinationMacAddress
    (81, &[6]),            // postSourceMacAddress
    (85, &[8, 4]),         // octetTotalCount
    (86, &[8]),            // packetTotalCount
    (88, &[2]),            // fragmentOffset
    (89, &[1, 4]),         // forwardingStatus
    (128, &[4]),           // bgpNextAdjacentAsNumber
    (138, &[4, 8]),        // observationPointId
    (139, &[2]),           // icmpTypeCodeIPv6
    (150, &[4]),           // flowStartSeconds
    (151, &[4]),           // flowEndSeconds
    (152, &[8]),           // flowStartMilliseconds
    (153, &[8]),           // flowEndMilliseconds
    (156, &[8]),           // flowStartNanoseconds
    (157, &[8]),           // flowEndNanoseconds
    (158, &[4]),           // flowStartDeltaMicroseconds
    (159, &[4]),           // flowEndDeltaMicroseconds
    (176, &[1]),           // icmpTypeIPv4
    (177, &[1]),           // icmpCodeIPv4
    (192, &[1]),           // ipTTL
    (197, &[1]),           // fragmentFlags
    (243, &[2]),           // dot1qVlanId
    (256, &[2]),           // ethernetType
    (22, &[4]),            // flowStartSysUpTime
    (21, &[4]),            // flowEndSysUpTime
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// A fixed-length template is decoded column at a time (the fast path); the same
    /// template with a trailing variable-length field goes record at a time through the
    /// per-field rules. Both must give the same flows for any record bytes.
    #[test]
    fn column_wise_decoding_equals_record_wise(
        picks in proptest::collection::vec((0..COLUMN_FIELDS.len(), 0usize..8), 1..24),
        rows in 1usize..6,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let fields: Vec<(u16, u16)> = picks
            .iter()
            .map(|&(i, l)| {
                let (ie, lens) = COLUMN_FIELDS[i];
                (ie, lens[l % lens.len()])
            })
            .collect();
        let rec_len: usize = fields.iter().map(|&(_, l)| l as usize).sum();
        // Record bytes from a xorshift stream; small values are likely too (ports 0,
        // protocol 1/58), so both branches of the ICMP and etype rules get exercised.
        let mut x = seed | 1;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let records: Vec<Vec<u8>> = (0..rows)
            .map(|_| {
                (0..rec_len)
                    .map(|_| {
                        let v = next();
                        if v % 3 == 0 { (v >> 8) as u8 % 2 * 57 + 1 } else { (v >> 8) as u8 }
                    })
                    .collect()
            })
            .collect();

        let fixed = {
            let mut body = Vec::new();
            records.iter().for_each(|r| body.extend_from_slice(r));
            Msg::new(1, 7).set(2, &tmpl(300, &fields)).set(300, &body).done()
        };
        let variable = {
            let mut with_var = fields.clone();
            with_var.push((82, 65535)); // interfaceName, variable length (RFC 7011 s7)
            let mut body = Vec::new();
            for r in &records {
                body.extend_from_slice(r);
                body.push(0); // empty string
            }
            Msg::new(1, 7).set(2, &tmpl(301, &with_var)).set(301, &body).done()
        };
        let b = run(&mut Decoder::default(), "192.0.2.9", &variable);
        // Column-wise into a batch that already holds rows (another exporter's, decoded
        // record-wise), as in the collector: the run's default fill and its field passes
        // must land on the rows after the `prev` already there, in every column.
        let mut a = run(&mut Decoder::default(), "192.0.2.10", &variable);
        let prev = a.len();
        let _ = Decoder::default().decode(ip("192.0.2.9"), T0, &fixed, &mut a);
        proptest::prop_assert_eq!(a.len(), prev + rows);
        proptest::prop_assert_eq!(b.len(), rows);
        for i in 0..rows {
            let (ra, rb): (FlowRecord, FlowRecord) = (a.get(prev + i).unwrap(), b.get(i).unwrap());
            if ra != rb {
                // Name only the fields that differ: a whole record is 80 fields long.
                let (da, db) = (format!("{ra:?}"), format!("{rb:?}"));
                let diff: Vec<String> = da
                    .split(", ")
                    .zip(db.split(", "))
                    .filter(|(x, y)| x != y)
                    .map(|(x, y)| format!("column-wise {x} / record-wise {y}"))
                    .collect();
                proptest::prop_assert!(false, "row {} of template {:?}: {:?}", i, fields, diff);
            }
        }
    }
}
