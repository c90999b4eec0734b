//! The wire layer's one error type.

use std::net::IpAddr;

/// Export formats the wire layer knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Format {
    /// Cisco NetFlow version 1.
    NetflowV1,
    /// Cisco NetFlow version 5.
    NetflowV5,
    /// Cisco NetFlow version 7.
    NetflowV7,
    /// NetFlow version 9, RFC 3954.
    NetflowV9,
    /// IPFIX, RFC 7011.
    Ipfix,
    /// sFlow version 5.
    Sflow5,
}

impl Format {
    /// Short lowercase name (`v5`, `ipfix`, ...), used in summaries and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Format::NetflowV1 => "netflow_v1",
            Format::NetflowV5 => "netflow_v5",
            Format::NetflowV7 => "netflow_v7",
            Format::NetflowV9 => "netflow_v9",
            Format::Ipfix => "ipfix",
            Format::Sflow5 => "sflow_v5",
        }
    }

    /// Every format, in a stable order.
    pub const ALL: [Format; 6] = [
        Format::NetflowV1,
        Format::NetflowV5,
        Format::NetflowV7,
        Format::NetflowV9,
        Format::Ipfix,
        Format::Sflow5,
    ];
}

/// What went wrong decoding one datagram. Every variant names where: the format, the byte
/// offset in the datagram and, when known, the exporter and template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The datagram is too short for what its headers announce.
    #[error(
        "{format:?} from {exporter}: truncated at offset {offset}: need {need} bytes for {what}, {have} left"
    )]
    Truncated {
        /// Format being decoded.
        format: Format,
        /// Exporter address.
        exporter: IpAddr,
        /// Byte offset in the datagram.
        offset: usize,
        /// Bytes needed.
        need: usize,
        /// Bytes left.
        have: usize,
        /// What was being read.
        what: &'static str,
    },
    /// The first bytes are no flow export format flowsight knows.
    #[error(
        "from {exporter}: unknown export version {version} (expected NetFlow 1/5/7/9, IPFIX 10 or sFlow 5)"
    )]
    UnknownVersion {
        /// Exporter address.
        exporter: IpAddr,
        /// Version field read at offset 0.
        version: u32,
    },
    /// A length or count field is impossible.
    #[error("{format:?} from {exporter}: bad {what} {value} at offset {offset}")]
    BadLength {
        /// Format being decoded.
        format: Format,
        /// Exporter address.
        exporter: IpAddr,
        /// Byte offset in the datagram.
        offset: usize,
        /// Which field.
        what: &'static str,
        /// Its value.
        value: usize,
    },
    /// A template definition was rejected (too many fields, zero-length records, limits).
    #[error(
        "{format:?} from {exporter} domain {domain}: template {template_id} at offset {offset} rejected: {reason}"
    )]
    BadTemplate {
        /// Format being decoded.
        format: Format,
        /// Exporter address.
        exporter: IpAddr,
        /// Observation domain / source id.
        domain: u32,
        /// Template id.
        template_id: u16,
        /// Byte offset in the datagram.
        offset: usize,
        /// Why.
        reason: &'static str,
    },
}

impl DecodeError {
    /// A short stable label for metrics (`truncated`, `unknown_version`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::UnknownVersion { .. } => "unknown_version",
            DecodeError::BadLength { .. } => "bad_length",
            DecodeError::BadTemplate { .. } => "bad_template",
        }
    }
}
