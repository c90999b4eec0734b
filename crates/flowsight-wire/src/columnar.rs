//! Column-at-a-time decoding of fixed-length template records (the common case, and the hot
//! path): every row of a data set is first filled with the message defaults, then each
//! template field is decoded for all rows in one tight loop writing straight into its column.
//! Records-at-a-time would touch ~45 column vectors per record; this touches one per loop.

use crate::ie::{Scratch, Target, apply, finalize, mac_of};
use crate::reader::uint_be;
use crate::template::{Plan, SamplingTable};
use crate::templated::MsgHeader;
use flowsight_schema::{FlowBatch, FlowRecord, addr_from_v4, addr_is_v4};

/// One data set's share of a [`Run`]: its records, and what its message header and the
/// exporter's state gave them when it arrived.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Segment {
    pub rows: usize,
    /// Arrival rank among the data sets held in the decoder's runs (see
    /// `templated::flush_runs`).
    pub arrival: u64,
    pub hdr: MsgHeader,
    /// The domain's sampling rate from options data (0: unknown).
    pub sampling_rate: u64,
    /// systemInitTimeMilliseconds from options data, for IPFIX sysUpTime fields.
    pub sys_init: Option<u64>,
}

impl Segment {
    /// A data set of `rows` records under `hdr`, with the exporter's options state now.
    pub(crate) fn new(hdr: &MsgHeader, rows: usize, sampling: &SamplingTable) -> Segment {
        Segment {
            rows,
            arrival: 0,
            hdr: *hdr,
            sampling_rate: sampling
                .rate(hdr.exporter, hdr.domain, crate::template::ANY_SAMPLER)
                .unwrap_or(0),
            sys_init: sampling.sys_init(hdr.exporter, hdr.domain),
        }
    }
}

/// The data sets of one template (one exporter, domain and template id) that arrived
/// since the run began, with at most other templates' runs of the same exporter in between
/// (see `templated::MAX_RUNS`; their records are put back in arrival order after), decoded
/// together: the per-set cost (filling ~45 columns, dispatching every template field) is
/// paid once per run instead of once per set, which is most of the cost when sets hold a
/// few records each. The records are copied here back to back.
#[derive(Debug)]
pub(crate) struct Run {
    pub key: crate::template::TemplateKey,
    /// The template as it was when the run began, and the cache generation then: any
    /// change to the templates since ends the run.
    pub plan: std::sync::Arc<Plan>,
    pub generation: u64,
    pub len: usize,
    pub body: Vec<u8>,
    pub segs: Vec<Segment>,
}

impl Run {
    /// Records held.
    pub(crate) fn rows(&self) -> usize {
        self.body.len() / self.len.max(1)
    }

    /// Decodes every record held into `out`, in arrival order, and empties the run. With
    /// `placed`, each segment's `(arrival, first row from the run's start, rows)` is
    /// appended to it.
    pub(crate) fn flush(
        &mut self,
        sampling: &SamplingTable,
        out: &mut FlowBatch,
        placed: Option<&mut Vec<(u64, usize, usize)>>,
    ) -> usize {
        let start = out.len();
        let n = decode_run(&self.plan, self.len, &self.segs, &self.body, sampling, out);
        if let Some(placed) = placed {
            for (seg, rows) in seg_rows(&self.segs, start, n) {
                placed.push((seg.arrival, rows.start - start, rows.len()));
            }
        }
        self.body.clear();
        self.segs.clear();
        n
    }
}

/// The defaults every record of a data set starts from: what the message header and the
/// exporter's options data say.
pub(crate) fn base_record(hdr: &MsgHeader, sampling_rate: u64) -> FlowRecord {
    FlowRecord {
        flow_type: match hdr.proto {
            crate::template::TemplateProto::V9 => flowsight_schema::flow_type::NETFLOW_V9,
            crate::template::TemplateProto::Ipfix => flowsight_schema::flow_type::IPFIX,
        },
        time_received_ns: hdr.received_ns,
        sampler_address: flowsight_schema::addr_from_ip(hdr.exporter),
        observation_domain_id: hdr.domain,
        sequence_num: hdr.seq,
        sampling_rate,
        ..FlowRecord::default()
    }
}

/// Decodes the `len`-byte records of `body`, which holds the records of `segs` back to
/// back (whole records only: padding is never copied in, RFC 7011 s3.3.1).
pub(crate) fn decode_run(
    plan: &Plan,
    len: usize,
    segs: &[Segment],
    body: &[u8],
    sampling: &SamplingTable,
    out: &mut FlowBatch,
) -> usize {
    let Some(first) = segs.first() else {
        return 0;
    };
    let n = segs
        .iter()
        .map(|s| s.rows)
        .sum::<usize>()
        .min(body.len() / len.max(1));
    if n == 0 {
        return 0;
    }
    let body = &body[..n * len];
    let start = out.len();
    let base = base_record(&first.hdr, first.sampling_rate);
    out.push_repeat(&base, n);
    // What differs from set to set within a run: the header's values. A record with no time
    // at all carries its message's export time (see `ie::finalize`).
    for (seg, rows) in seg_rows(segs, start, n) {
        if seg.hdr.received_ns != base.time_received_ns {
            out.time_received_ns[rows.clone()].fill(seg.hdr.received_ns);
        }
        if seg.hdr.seq != base.sequence_num {
            out.sequence_num[rows.clone()].fill(seg.hdr.seq);
        }
        if seg.sampling_rate != base.sampling_rate {
            out.sampling_rate[rows.clone()].fill(seg.sampling_rate);
        }
        out.time_flow_start_ns[rows.clone()].fill(seg.hdr.export_ns);
        out.time_flow_end_ns[rows].fill(seg.hdr.export_ns);
    }

    // Loops over rows for one field: `$col` is the column, `$v` the raw field bytes. Each
    // row's read is length-checked once, so a field a hostile template cuts short leaves
    // the default.
    macro_rules! each_raw {
        ($col:ident, $off:expr, $sl:expr, |$v:ident| $e:expr) => {{
            let (off, sl) = ($off, $sl);
            for (dst, r) in out.$col[start..].iter_mut().zip(body.chunks_exact(len)) {
                if let Some($v) = r.get(off..off + sl) {
                    *dst = $e;
                }
            }
        }};
    }
    // Fixed-size reads: `$x` is the field's `$n` bytes as an array.
    macro_rules! each_n {
        ($col:ident, $off:expr, $n:literal, |$x:ident| $e:expr) => {{ fill::<_, $n>(&mut out.$col[start..], body, $off, len, |$x| $e) }};
    }
    // Unsigned integers, with one loop per encoded length (RFC 7011 s6.2 allows reduced
    // sizes) so the inner loop has no length switch; `$x` is the value as u64.
    macro_rules! each {
        ($col:ident, $off:expr, $sl:expr, |$x:ident| $e:expr) => {{
            let (off, sl) = ($off, $sl);
            match sl {
                1 => each_n!($col, off, 1, |b| {
                    let $x = b[0] as u64;
                    $e
                }),
                2 => each_n!($col, off, 2, |b| {
                    let $x = u16::from_be_bytes(*b) as u64;
                    $e
                }),
                4 => each_n!($col, off, 4, |b| {
                    let $x = u32::from_be_bytes(*b) as u64;
                    $e
                }),
                8 => each_n!($col, off, 8, |b| {
                    let $x = u64::from_be_bytes(*b);
                    $e
                }),
                _ => each_raw!($col, off, sl, |v| {
                    let $x = uint_be(v);
                    $e
                }),
            }
        }};
    }
    // Addresses: IPv4 (4 bytes) or IPv6 (16); any other length reads as no address, as
    // in `ie::addr_of`.
    macro_rules! each_addr {
        ($col:ident, $off:expr, $sl:expr) => {{
            match $sl {
                4 => each_n!($col, $off, 4, |b| addr_from_v4(u32::from_be_bytes(*b))),
                16 => each_n!($col, $off, 16, |b| *b),
                _ => out.$col[start..].fill([0; 16]),
            }
        }};
    }
    for st in &plan.direct {
        let (o, l) = (st.off as usize, st.len as usize);
        use Target as T;
        match st.target {
            T::Bytes => each!(bytes, o, l, |x| x),
            T::Packets => each!(packets, o, l, |x| x),
            T::Proto => each!(proto, o, l, |x| x as u8),
            T::Tos => each!(ip_tos, o, l, |x| x as u8),
            T::TcpFlags => each!(tcp_flags, o, l, |x| x as u16),
            T::SrcPort => each!(src_port, o, l, |x| x as u16),
            T::DstPort => each!(dst_port, o, l, |x| x as u16),
            T::SrcAddr => each_addr!(src_addr, o, l),
            T::DstAddr => each_addr!(dst_addr, o, l),
            T::SrcMask => each!(src_net, o, l, |x| x as u8),
            T::DstMask => each!(dst_net, o, l, |x| x as u8),
            T::InIf => each!(in_if, o, l, |x| x as u32),
            T::OutIf => each!(out_if, o, l, |x| x as u32),
            T::NextHop => each_addr!(next_hop, o, l),
            T::BgpNextHop => each_addr!(bgp_next_hop, o, l),
            T::SrcAs => each!(src_as, o, l, |x| x as u32),
            T::DstAs => each!(dst_as, o, l, |x| x as u32),
            T::NextHopAs => each!(next_hop_as, o, l, |x| x as u32),
            T::FlowLabel => each!(ipv6_flow_label, o, l, |x| (x & 0x000f_ffff) as u32),
            T::IcmpTypeCode => {
                each!(icmp_type, o, l, |x| (x >> 8) as u8);
                each!(icmp_code, o, l, |x| x as u8);
            }
            T::IcmpType => each!(icmp_type, o, l, |x| x as u8),
            T::IcmpCode => each!(icmp_code, o, l, |x| x as u8),
            // MACs are 6 bytes (RFC 7012 s5.10.1); any other length gives 0, as `mac_of`.
            T::SrcMac if l == 6 => each_n!(src_mac, o, 6, |b| mac6(b)),
            T::DstMac if l == 6 => each_n!(dst_mac, o, 6, |b| mac6(b)),
            T::SrcMac => each_raw!(src_mac, o, l, |v| mac_of(v)),
            T::DstMac => each_raw!(dst_mac, o, l, |v| mac_of(v)),
            T::Vlan => {
                each!(src_vlan, o, l, |x| x as u16 & 0x0fff);
                // vlanId also stands for dot1qVlanId when the template has none before it:
                // the value just decoded, where the column is still unset.
                let (src, vid) = (&out.src_vlan[start..], &mut out.vlan_id[start..]);
                for (v, s) in vid.iter_mut().zip(src) {
                    if *v == 0 {
                        *v = *s;
                    }
                }
            }
            T::PostVlan => each!(dst_vlan, o, l, |x| x as u16 & 0x0fff),
            T::Dot1qVlan => each!(vlan_id, o, l, |x| x as u16 & 0x0fff),
            T::Direction => each!(flow_direction, o, l, |x| x as u8),
            // The top label entry (RFC 3032 s2.1): label in the high 20 of 24 bits.
            T::Mpls if l == 3 => each_n!(mpls_label, o, 3, |b| {
                u32::from_be_bytes([0, b[0], b[1], b[2]]) >> 4
            }),
            T::Mpls => each_raw!(mpls_label, o, l, |v| if v.len() >= 3 {
                (uint_be(&v[..3]) >> 4) as u32
            } else {
                0
            }),
            T::FwdStatus => each_raw!(forwarding_status, o, l, |v| v.first().copied().unwrap_or(0)),
            T::Ttl => each!(ip_ttl, o, l, |x| x as u8),
            T::FragFlags => each!(ip_flags, o, l, |x| (x as u8) >> 5),
            T::FragId => each!(fragment_id, o, l, |x| x as u32),
            T::FragOffset => each!(fragment_offset, o, l, |x| x as u16),
            T::EtherType => each!(etype, o, l, |x| x as u16),
            T::ObsPoint => each!(observation_point_id, o, l, |x| x as u32),
            // Not direct targets: handled below.
            _ => {}
        }
    }

    // Times, sampling and totals depend on each set's header: one segment at a time.
    if !plan.scratch.is_empty() {
        for (seg, rows) in seg_rows(segs, start, n) {
            let seg_body = &body[(rows.start - start) * len..(rows.end - start) * len];
            scratch_fields(plan, len, seg, seg_body, rows.start, sampling, out);
        }
    }

    // Ethernet type from the address family, ICMP type/code from the port, per row (the
    // same rules as `ie::finalize_l3`, without building a record per row).
    if !plan.has_etype {
        // ipVersion (IE 60) decides only for rows without addresses.
        let ipv = plan
            .scratch
            .iter()
            .rev() // a repeated field: the last one counts, as record-wise
            .find(|s| s.target == Target::IpVersion)
            .copied();
        let rows = out.etype[start..]
            .iter_mut()
            .zip(&out.src_addr[start..])
            .zip(&out.dst_addr[start..]);
        for (i, ((et, src), dst)) in rows.enumerate() {
            *et = if *src == [0; 16] && *dst == [0; 16] {
                // The field's own bytes: a hostile template may give it length 0.
                let at = |s: crate::template::Step| {
                    let o = i * len + s.off as usize;
                    uint_be(&body[o..o + s.len as usize])
                };
                match ipv.filter(|s| s.len > 0).map(at) {
                    Some(4) => 0x0800,
                    Some(6) => 0x86dd,
                    _ => 0,
                }
            } else if addr_is_v4(src) || addr_is_v4(dst) {
                0x0800
            } else {
                0x86dd
            };
        }
    }
    for row in start..start + n {
        let p = out.proto[row];
        if p == 1 || p == 58 {
            if !plan.has_icmp {
                let port = out.dst_port[row];
                out.icmp_type[row] = (port >> 8) as u8;
                out.icmp_code[row] = port as u8;
            } else if out.dst_port[row] == 0 && crate::ie::icmp_type_in_port(p, out.flow_type[row])
            {
                out.dst_port[row] = (out.icmp_type[row] as u16) << 8 | out.icmp_code[row] as u16;
            }
        }
    }
    n
}

/// Each segment with its rows in `out` (from `start`), never past the run's `n` records,
/// whatever the segments claim.
fn seg_rows(
    segs: &[Segment],
    start: usize,
    n: usize,
) -> impl Iterator<Item = (&Segment, std::ops::Range<usize>)> {
    let mut at = start;
    segs.iter().map(move |seg| {
        let r = seg.rows.min(start + n - at);
        let rows = at..at + r;
        at += r;
        (seg, rows)
    })
}

/// The template's scratch fields (times, sampling, totals, post-MACs) of one segment:
/// column-wise when every one is a time computable on its own, else record by record.
fn scratch_fields(
    plan: &Plan,
    len: usize,
    seg: &Segment,
    body: &[u8],
    start: usize,
    sampling: &SamplingTable,
    out: &mut FlowBatch,
) {
    let (hdr, sys_init) = (&seg.hdr, seg.sys_init);
    if columnar_scratch(plan, len, hdr, sys_init, body, start, out) {
        return;
    }
    let exporter = hdr.exporter;
    for (i, r) in body.chunks_exact(len).enumerate() {
        let mut sc = Scratch {
            have_bytes: plan.has_bytes,
            have_packets: plan.has_packets,
            have_icmp: true, // ICMP and etype are fixed up column-wise below
            have_etype: true,
            ..Scratch::default()
        };
        let mut rec = FlowRecord::default();
        for st in &plan.scratch {
            let o = st.off as usize;
            apply(&mut rec, &mut sc, st.target, &r[o..o + st.len as usize]);
        }
        let row = start + i;
        if let Some(rate) = sc.own_sampling_rate() {
            out.sampling_rate[row] = rate;
        } else if let Some(id) = sc.sampler_id
            && let Some(rate) = sampling.rate(exporter, hdr.domain, id)
        {
            out.sampling_rate[row] = rate;
        }
        // Let the shared finalize compute times/totals/MACs on a scratch record.
        rec.bytes = out.bytes[row];
        rec.packets = out.packets[row];
        rec.src_mac = out.src_mac[row];
        rec.dst_mac = out.dst_mac[row];
        finalize(&mut rec, &sc, hdr.export_ns, hdr.uptime_ms, sys_init);
        out.time_flow_start_ns[row] = rec.time_flow_start_ns;
        out.time_flow_end_ns[row] = rec.time_flow_end_ns;
        out.bytes[row] = rec.bytes;
        out.packets[row] = rec.packets;
        out.src_mac[row] = rec.src_mac;
        out.dst_mac[row] = rec.dst_mac;
    }
}

/// Which clock a time field uses; higher wins when a template has several for one side,
/// as in [`crate::ie::finalize`] (absolute, then sysUpTime, then delta).
fn time_kind(t: Target) -> Option<(bool, u8)> {
    use Target as T;
    Some(match t {
        T::StartSec | T::StartMs | T::StartNtp => (true, 3),
        T::EndSec | T::EndMs | T::EndNtp => (false, 3),
        T::StartSysUp => (true, 2),
        T::EndSysUp => (false, 2),
        T::StartDeltaUs => (true, 1),
        T::EndDeltaUs => (false, 1),
        _ => return None,
    })
}

/// Decodes the time fields column-wise; returns false (doing nothing) when the template has
/// scratch fields this cannot handle, so the per-record path runs instead.
fn columnar_scratch(
    plan: &Plan,
    len: usize,
    hdr: &MsgHeader,
    sys_init: Option<u64>,
    body: &[u8],
    start: usize,
    out: &mut FlowBatch,
) -> bool {
    let mut best: [Option<(u8, crate::template::Step)>; 2] = [None, None];
    // Fields that only fill gaps, applied after the times (same rules as `ie::finalize`).
    let mut fallbacks: Vec<crate::template::Step> = Vec::new();
    for st in &plan.scratch {
        if matches!(
            st.target,
            Target::IpVersion
                | Target::PostSrcMac
                | Target::PostDstMac
                | Target::BytesTotal
                | Target::PacketsTotal
        ) {
            // A repeated field: the last one counts, as record-wise.
            fallbacks.retain(|f| f.target != st.target);
            fallbacks.push(*st);
            continue;
        }
        let Some((is_start, prio)) = time_kind(st.target) else {
            return false;
        };
        if prio == 2 && hdr.uptime_ms.is_none() && sys_init.is_none() {
            return false; // IPFIX sysUpTime without a known system init time
        }
        let side = &mut best[usize::from(!is_start)];
        if side.is_none_or(|(p, _)| prio >= p) {
            *side = Some((prio, *st));
        }
    }
    let export = hdr.export_ns;
    for (side, b) in best.iter().enumerate() {
        let Some((_, st)) = b else { continue };
        let (o, l) = (st.off as usize, st.len as usize);
        let col = if side == 0 {
            &mut out.time_flow_start_ns
        } else {
            &mut out.time_flow_end_ns
        };
        let dst = &mut col[start..];
        // One loop per clock and field length, so no row matches on either.
        macro_rules! each_time {
            (|$x:ident| $e:expr) => {
                match l {
                    4 => fill::<_, 4>(dst, body, o, len, |b| {
                        let $x = u32::from_be_bytes(*b) as u64;
                        $e
                    }),
                    8 => fill::<_, 8>(dst, body, o, len, |b| {
                        let $x = u64::from_be_bytes(*b);
                        $e
                    }),
                    _ => {
                        for (d, r) in dst.iter_mut().zip(body.chunks_exact(len)) {
                            let $x = uint_be(&r[o..o + l]);
                            *d = $e;
                        }
                    }
                }
            };
        }
        use Target as T;
        match st.target {
            T::StartSec | T::EndSec => each_time!(|x| x.saturating_mul(1_000_000_000)),
            T::StartMs | T::EndMs => each_time!(|x| x.saturating_mul(1_000_000)),
            T::StartNtp | T::EndNtp => each_time!(|x| crate::ie::ntp_to_ns(x)),
            T::StartSysUp | T::EndSysUp => match hdr.uptime_ms {
                Some(up) => each_time!(|x| crate::ie::sysup_to_ns(export, up, x as u32)),
                None => {
                    let init = sys_init.unwrap_or(0);
                    each_time!(|x| (init + (x as u32) as u64) * 1_000_000)
                }
            },
            _ => each_time!(|x| export.saturating_sub((x as u32) as u64 * 1000)),
        }
    }
    for st in &fallbacks {
        let (o, l) = (st.off as usize, st.len as usize);
        let rows = body.chunks_exact(len);
        match st.target {
            Target::PostSrcMac => {
                for (m, r) in out.src_mac[start..].iter_mut().zip(rows) {
                    if *m == 0 {
                        *m = mac_of(&r[o..o + l]);
                    }
                }
            }
            Target::PostDstMac => {
                for (m, r) in out.dst_mac[start..].iter_mut().zip(rows) {
                    if *m == 0 {
                        *m = mac_of(&r[o..o + l]);
                    }
                }
            }
            Target::BytesTotal if !plan.has_bytes => {
                for (b, r) in out.bytes[start..].iter_mut().zip(rows) {
                    *b = uint_be(&r[o..o + l]);
                }
            }
            Target::PacketsTotal if !plan.has_packets => {
                for (p, r) in out.packets[start..].iter_mut().zip(rows) {
                    *p = uint_be(&r[o..o + l]);
                }
            }
            // ipVersion only decides the etype of rows without addresses (see below).
            _ => {}
        }
    }
    // One side only: it stands for both.
    match (best[0].is_some(), best[1].is_some()) {
        (true, false) => {
            let (s, e) = (
                &out.time_flow_start_ns[start..],
                &mut out.time_flow_end_ns[start..],
            );
            e.copy_from_slice(s);
        }
        (false, true) => {
            let (e, s) = (
                &out.time_flow_end_ns[start..],
                &mut out.time_flow_start_ns[start..],
            );
            s.copy_from_slice(e);
        }
        _ => {}
    }
    true
}

/// A 6-byte MAC address as the low 48 bits of a u64.
#[inline(always)]
fn mac6(b: &[u8; 6]) -> u64 {
    u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
}

/// Writes `f(field)` into `col` for each row: the `N`-byte field at `off` of every
/// `len`-byte record of `body`. Out of line and generic so each instance is a small loop
/// with one length check per row; a field cut short leaves the default.
#[inline(never)]
fn fill<T, const N: usize>(
    col: &mut [T],
    body: &[u8],
    off: usize,
    len: usize,
    f: impl Fn(&[u8; N]) -> T,
) {
    // Checked once here, so the row loop has no bounds checks left (the chunks are all
    // `len` long).
    if off.checked_add(N).is_none_or(|end| end > len) {
        return;
    }
    for (dst, r) in col.iter_mut().zip(body.chunks_exact(len)) {
        if let Some(b) = r[off..].first_chunk::<N>() {
            *dst = f(b);
        }
    }
}
