//! Service names of well-known ports (IANA registry, shipped in the binary) and protocol
//! names, for display.

use rustc_hash::FxHashMap;
use std::sync::LazyLock;

static TEXT: &str = include_str!("../data/services.txt");

static TABLE: LazyLock<FxHashMap<(u8, u16), &'static str>> = LazyLock::new(|| {
    let mut m = FxHashMap::default();
    for l in TEXT.lines().filter(|l| !l.starts_with('#')) {
        let mut w = l.split_whitespace();
        let (Some(port), Some(proto), Some(name)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        let proto = match proto {
            "tcp" => 6,
            "udp" => 17,
            "sctp" => 132,
            _ => continue,
        };
        if let Ok(port) = port.parse::<u16>() {
            m.insert((proto, port), name);
        }
    }
    m
});

/// The service name of `port` for IP protocol `proto` (6 TCP, 17 UDP, 132 SCTP); for other
/// protocols, the TCP name, else the UDP name.
///
/// ```
/// assert_eq!(flowsight_enrich::services::port_name(6, 443), Some("https"));
/// assert_eq!(flowsight_enrich::services::port_name(17, 53), Some("domain"));
/// assert_eq!(flowsight_enrich::services::port_name(6, 65001), None);
/// ```
pub fn port_name(proto: u8, port: u16) -> Option<&'static str> {
    let t = &*TABLE;
    match proto {
        6 | 17 | 132 => t.get(&(proto, port)).copied(),
        _ => t.get(&(6, port)).or_else(|| t.get(&(17, port))).copied(),
    }
}

/// Number of (protocol, port) names known.
pub fn len() -> usize {
    TABLE.len()
}
