//! Sequence tracking per export scope: lost packets/records estimated from sequence numbers.
//!
//! What a sequence number counts differs per format, and getting it wrong reports losses
//! that are not there:
//! - NetFlow v5/v7: flows exported before this packet, per engine (Cisco v5 header).
//! - NetFlow v9: export packets, per source id (RFC 3954 s5.1, "Sequence Number").
//! - IPFIX: data records, per observation domain (RFC 7011 s3.1, "Sequence Number").
//! - sFlow v5: datagrams, per agent and sub-agent (sFlow v5 spec, "sample_datagram_v5").

use crate::error::Format;
use rustc_hash::FxHashMap;
use std::net::IpAddr;

/// The scope a sequence number is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SeqKey {
    /// Exporter address.
    pub exporter: IpAddr,
    /// Observation domain / source id / engine / sub-agent.
    pub domain: u32,
    /// Format (different formats from one exporter count separately).
    pub format: Format,
}

/// How an exporter numbers its packets. RFC 7011 s3.1 says an IPFIX sequence number counts
/// the data records sent *before* the message; some exporters (softflowd 1.1.0) count them
/// *through* the message, and may leave options records out. The tracker learns which, per
/// scope, from the first packets that line up, so neither convention reports false loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub enum Numbering {
    /// Not learned yet.
    #[default]
    Unknown,
    /// Sequence = units before this packet (the RFCs' and Cisco's definition).
    Before,
    /// Sequence = units up to and including this packet.
    Through,
}

/// Counters of one scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeqState {
    /// Last packet: (sequence, units counting options records, units without them); `None`
    /// until synchronized or after a packet whose unit count was unknown.
    pub last: Option<(u32, u32, u32)>,
    /// The numbering convention learned for this scope.
    pub numbering: Numbering,
    /// Units (packets or records, per format) estimated lost.
    pub lost: u64,
    /// Sequence numbers that went backwards (late or duplicated packets).
    pub reordered: u64,
    /// Jumps too large to be loss: exporter restarts.
    pub resets: u64,
}

/// What one observation found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqOutcome {
    /// First packet of the scope (or after a desynchronization): nothing to compare.
    First,
    /// Exactly as expected.
    InOrder,
    /// A gap of this many units.
    Lost(u64),
    /// The number went backwards.
    Reordered,
    /// A jump larger than the reset threshold: treated as an exporter restart.
    Reset,
}

/// Sequence state for every scope seen, bounded in size.
#[derive(Debug)]
pub struct SequenceTracker {
    map: FxHashMap<SeqKey, SeqState>,
    max_scopes: usize,
    /// Scopes not tracked because the table was full.
    pub untracked: u64,
}

impl SequenceTracker {
    /// A tracker holding at most `max_scopes` scopes.
    pub fn new(max_scopes: usize) -> Self {
        SequenceTracker {
            map: FxHashMap::default(),
            max_scopes,
            untracked: 0,
        }
    }

    /// Gaps above this many units are exporter restarts rather than loss.
    fn reset_threshold(format: Format) -> u32 {
        match format {
            Format::NetflowV9 | Format::Sflow5 => 100_000,
            _ => 50_000_000,
        }
    }

    /// Records that a packet with sequence number `seq` carried `units` units (packets or
    /// records, as the format counts them). `units == None` means the count is unknown (data
    /// sets whose template is missing), so the next packet resynchronizes instead of
    /// reporting a loss.
    pub fn observe(&mut self, key: SeqKey, seq: u32, units: Option<u32>) -> SeqOutcome {
        self.observe_records(key, seq, units.map(|u| (u, u)))
    }

    /// Like [`SequenceTracker::observe`] for IPFIX, where `units` is (data records including
    /// options records, data records without them): exporters differ in which they count.
    pub fn observe_records(
        &mut self,
        key: SeqKey,
        seq: u32,
        units: Option<(u32, u32)>,
    ) -> SeqOutcome {
        let len = self.map.len();
        let st = match self.map.get_mut(&key) {
            Some(st) => st,
            None => {
                if len >= self.max_scopes {
                    self.untracked += 1;
                    return SeqOutcome::First;
                }
                self.map.entry(key).or_default()
            }
        };
        let cur = units.unwrap_or((0, 0));
        let outcome = match st.last {
            None => SeqOutcome::First,
            Some((last_seq, last_all, last_flows)) => {
                let diff = seq.wrapping_sub(last_seq);
                let before = diff == last_all || diff == last_flows;
                let through = diff == cur.0 || diff == cur.1;
                let in_order = match st.numbering {
                    Numbering::Before => before,
                    Numbering::Through => through,
                    Numbering::Unknown => {
                        if before && !through {
                            st.numbering = Numbering::Before;
                        } else if through && !before {
                            st.numbering = Numbering::Through;
                        }
                        before || through
                    }
                };
                // What the next number should have been, by the convention in use.
                let expected = match st.numbering {
                    Numbering::Through => cur.1,
                    _ => last_all,
                };
                if in_order {
                    SeqOutcome::InOrder
                } else if diff >= 1 << 31 || diff < expected {
                    st.reordered += 1;
                    // Keep the reference: a late packet does not move the stream back.
                    return SeqOutcome::Reordered;
                } else if diff - expected > Self::reset_threshold(key.format) {
                    st.resets += 1;
                    SeqOutcome::Reset
                } else {
                    let gap = (diff - expected) as u64;
                    st.lost += gap;
                    SeqOutcome::Lost(gap)
                }
            }
        };
        st.last = units.map(|(a, f)| (seq, a, f));
        outcome
    }

    /// The state of one scope.
    pub fn get(&self, key: &SeqKey) -> Option<&SeqState> {
        self.map.get(key)
    }

    /// Every scope and its counters.
    pub fn iter(&self) -> impl Iterator<Item = (&SeqKey, &SeqState)> {
        self.map.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(format: Format) -> SeqKey {
        SeqKey {
            exporter: "192.0.2.1".parse().unwrap(),
            domain: 7,
            format,
        }
    }

    #[test]
    fn counts_gaps_reorders_and_resets() {
        let mut t = SequenceTracker::new(10);
        let k = key(Format::Ipfix);
        assert_eq!(t.observe(k, 100, Some(10)), SeqOutcome::First);
        assert_eq!(t.observe(k, 110, Some(5)), SeqOutcome::InOrder);
        // 115 expected, 120 arrives: 5 records lost.
        assert_eq!(t.observe(k, 120, Some(1)), SeqOutcome::Lost(5));
        assert_eq!(t.observe(k, 118, Some(1)), SeqOutcome::Reordered);
        // 120 + 1 expected: in order again.
        assert_eq!(t.observe(k, 121, Some(1)), SeqOutcome::InOrder);
        assert_eq!(t.observe(k, 900_000_000, Some(1)), SeqOutcome::Reset);
        let st = t.get(&k).unwrap();
        assert_eq!((st.lost, st.reordered, st.resets), (5, 1, 1));
    }

    #[test]
    fn wraps_around_u32() {
        let mut t = SequenceTracker::new(10);
        let k = key(Format::NetflowV9);
        t.observe(k, u32::MAX, Some(1));
        assert_eq!(t.observe(k, 0, Some(1)), SeqOutcome::InOrder);
        assert_eq!(t.observe(k, 3, Some(1)), SeqOutcome::Lost(2));
    }

    #[test]
    fn learns_softflowd_through_numbering() {
        // softflowd 1.1.0 IPFIX: sequence = records through this message, options excluded.
        let mut t = SequenceTracker::new(10);
        let k = key(Format::Ipfix);
        assert_eq!(t.observe_records(k, 20, Some((21, 20))), SeqOutcome::First);
        assert_eq!(
            t.observe_records(k, 47, Some((27, 27))),
            SeqOutcome::InOrder
        );
        assert_eq!(
            t.observe_records(k, 61, Some((14, 14))),
            SeqOutcome::InOrder
        );
        assert_eq!(t.get(&k).unwrap().numbering, Numbering::Through);
        // A lost message of 10 records, then one of 5: 15 past the last, 5 expected.
        assert_eq!(t.observe_records(k, 76, Some((5, 5))), SeqOutcome::Lost(10));
    }

    #[test]
    fn unknown_unit_count_resynchronizes() {
        let mut t = SequenceTracker::new(10);
        let k = key(Format::Ipfix);
        t.observe(k, 10, None);
        assert_eq!(t.observe(k, 999, Some(1)), SeqOutcome::First);
    }

    #[test]
    fn bounded_scopes() {
        let mut t = SequenceTracker::new(1);
        t.observe(key(Format::Ipfix), 1, Some(1));
        t.observe(key(Format::NetflowV9), 1, Some(1));
        assert_eq!(t.untracked, 1);
        assert_eq!(t.iter().count(), 1);
    }
}
