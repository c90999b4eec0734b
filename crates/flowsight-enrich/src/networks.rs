//! The networks file: CIDR prefixes with a name, role, site, region, tenant and user labels;
//! the longest prefix holding an address wins.
//!
//! One prefix per line, then `key=value` pairs (values with spaces in double quotes); `#`
//! starts a comment:
//!
//! ```text
//! # prefix          attributes
//! 10.0.0.0/8        name=corp role=internal site=par1 region=eu tenant=acme
//! 10.1.0.0/16       name=office site=par1 env=prod          # env: a user label
//! 192.0.2.0/24      name="customer B" tenant=beta
//! 203.0.113.0/24    name=partner internal=no
//! ```
//!
//! Known keys are `name`, `role`, `site`, `region`, `tenant` (alias `customer`) and
//! `internal` (`yes`/`no`, default `yes`: addresses in the file are internal unless said
//! otherwise); any other key is a user label, kept as `key=value` in `*_net_labels`.

use crate::EnrichError;
use flowsight_schema::{Addr, sym};
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What the networks file says of an address, as symbols.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetInfo {
    /// Network name.
    pub name: u32,
    /// Role.
    pub role: u32,
    /// Site.
    pub site: u32,
    /// Region.
    pub region: u32,
    /// Tenant / customer.
    pub tenant: u32,
    /// User labels, `k=v,k=v`.
    pub labels: u32,
    /// 1 when internal.
    pub internal: u8,
}

/// One parsed entry, for explanations (`flowsight geo lookup`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetEntry {
    /// The prefix as written (normalized).
    pub prefix: String,
    /// Line of the file.
    pub line: usize,
    /// The attributes.
    pub info: NetInfo,
}

/// Longest-prefix-match table over the networks file.
#[derive(Debug, Default)]
pub struct Networks {
    /// Per prefix length (over the 128-bit IPv4-mapped space), masked address -> entry.
    by_len: Vec<(u8, FxHashMap<u128, usize>)>,
    entries: Vec<NetEntry>,
    path: PathBuf,
}

fn mask(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - len as u32))
    }
}

fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut has = false;
    for c in line.chars() {
        match c {
            '"' => {
                in_q = !in_q;
                has = true;
            }
            c if c.is_whitespace() && !in_q => {
                if has {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if in_q {
        return Err("unterminated double quote".into());
    }
    if has {
        out.push(cur);
    }
    Ok(out)
}

/// Parses `a.b.c.d/len` or `x::/len` into (the 128-bit mapped address, the mapped length).
pub fn parse_cidr(s: &str) -> Result<(u128, u8), String> {
    let (a, l) = s.split_once('/').ok_or_else(|| {
        format!(
            "`{s}` is not a CIDR prefix (expected ADDRESS/LENGTH, like 10.0.0.0/8 or 2001:db8::/32)"
        )
    })?;
    let ip: IpAddr = a
        .parse()
        .map_err(|_| format!("`{a}` in `{s}` is not an IP address"))?;
    let len: u8 = l
        .parse()
        .map_err(|_| format!("`{l}` in `{s}` is not a prefix length"))?;
    let (max, off) = match ip {
        IpAddr::V4(_) => (32u8, 96u8),
        IpAddr::V6(_) => (128, 0),
    };
    if len > max {
        return Err(format!("prefix length {len} in `{s}` is longer than {max}"));
    }
    let v = u128::from_be_bytes(flowsight_schema::addr_from_ip(ip));
    let full = len + off;
    if mask(v, full) != v {
        return Err(format!(
            "`{s}` has host bits set; did you mean {}?",
            display_prefix(mask(v, full), full)
        ));
    }
    Ok((v, full))
}

fn display_prefix(v: u128, len: u8) -> String {
    let a: Addr = v.to_be_bytes();
    match flowsight_schema::addr_to_ip(&a) {
        Some(IpAddr::V4(v4)) if flowsight_schema::addr_is_v4(&a) => {
            format!("{v4}/{}", len.saturating_sub(96))
        }
        Some(ip) => format!("{ip}/{len}"),
        None => format!("::/{len}"),
    }
}

impl Networks {
    /// Reads and checks a networks file: an invalid CIDR, an unknown `internal` value or a
    /// prefix given twice is an error naming the line.
    pub fn load(path: &Path) -> Result<Networks, EnrichError> {
        let text = std::fs::read_to_string(path).map_err(|source| EnrichError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Networks::parse(&text, path)
    }

    /// Parses the text of a networks file (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Networks, EnrichError> {
        let err = |line: usize, msg: String| EnrichError::Line {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let mut n = Networks {
            path: path.to_path_buf(),
            ..Networks::default()
        };
        let mut seen: FxHashMap<(u128, u8), usize> = FxHashMap::default();
        let mut lens: FxHashMap<u8, FxHashMap<u128, usize>> = FxHashMap::default();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let body = raw.split('#').next().unwrap_or("");
            let words = split_words(body).map_err(|m| err(line, m))?;
            let Some((first, rest)) = words.split_first() else {
                continue;
            };
            let (v, len) = parse_cidr(first).map_err(|m| err(line, m))?;
            if let Some(prev) = seen.insert((v, len), line) {
                return Err(err(
                    line,
                    format!("prefix {first} is already given on line {prev}; keep one of them"),
                ));
            }
            let mut info = NetInfo {
                internal: 1,
                ..NetInfo::default()
            };
            let mut labels = Vec::new();
            for w in rest {
                let (k, val) = w.split_once('=').ok_or_else(|| {
                    err(
                        line,
                        format!("`{w}` is not key=value (like name=office or site=par1)"),
                    )
                })?;
                match k {
                    "name" => info.name = sym::intern(val),
                    "role" => info.role = sym::intern(val),
                    "site" => info.site = sym::intern(val),
                    "region" => info.region = sym::intern(val),
                    "tenant" | "customer" => info.tenant = sym::intern(val),
                    "internal" => {
                        info.internal = match val {
                            "yes" | "true" | "1" => 1,
                            "no" | "false" | "0" => 0,
                            _ => {
                                return Err(err(
                                    line,
                                    format!("internal={val}: expected yes or no"),
                                ));
                            }
                        }
                    }
                    "" => return Err(err(line, format!("`{w}` has an empty key"))),
                    _ => labels.push(format!("{k}={val}")),
                }
            }
            if !labels.is_empty() {
                info.labels = sym::intern(&labels.join(","));
            }
            let idx = n.entries.len();
            n.entries.push(NetEntry {
                prefix: display_prefix(v, len),
                line,
                info,
            });
            lens.entry(len).or_default().insert(v, idx);
        }
        let mut by_len: Vec<_> = lens.into_iter().collect();
        by_len.sort_by_key(|e| std::cmp::Reverse(e.0));
        n.by_len = by_len;
        Ok(n)
    }

    /// The entry of the longest prefix holding `a`.
    pub fn lookup(&self, a: &Addr) -> Option<&NetEntry> {
        let v = u128::from_be_bytes(*a);
        for (len, m) in &self.by_len {
            if let Some(&i) = m.get(&mask(v, *len)) {
                return self.entries.get(i);
            }
        }
        None
    }

    /// Number of prefixes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file had no prefix.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The file this table was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowsight_schema::addr_from_ip;

    fn a(s: &str) -> Addr {
        addr_from_ip(s.parse().unwrap())
    }

    const FILE: &str = "\
# corporate networks
10.0.0.0/8        name=corp role=internal site=par1 region=eu tenant=acme
10.1.0.0/16       name=office site=par1 env=prod team=\"net ops\"   # labels
203.0.113.0/24    name=partner internal=no
2001:db8::/32     name=v6corp customer=acme
";

    #[test]
    fn longest_prefix_wins_and_labels_are_kept() {
        let n = Networks::parse(FILE, Path::new("nets.txt")).unwrap();
        assert_eq!(n.len(), 4);
        let e = n.lookup(&a("10.1.2.3")).unwrap();
        assert_eq!(sym::resolve(e.info.name), "office");
        assert_eq!(sym::resolve(e.info.labels), "env=prod,team=net ops");
        assert_eq!(e.line, 3);
        let e = n.lookup(&a("10.200.0.1")).unwrap();
        assert_eq!(sym::resolve(e.info.name), "corp");
        assert_eq!(sym::resolve(e.info.tenant), "acme");
        assert_eq!(e.info.internal, 1);
        let e = n.lookup(&a("203.0.113.9")).unwrap();
        assert_eq!(e.info.internal, 0);
        let e = n.lookup(&a("2001:db8:1::1")).unwrap();
        assert_eq!(sym::resolve(e.info.tenant), "acme");
        assert_eq!(e.prefix, "2001:db8::/32");
        assert!(n.lookup(&a("192.0.2.1")).is_none());
        // An IPv6 address whose low bits look like 10.1.2.3 is not in 10.0.0.0/8.
        assert!(n.lookup(&a("::10.1.2.3")).is_none());
    }

    #[test]
    fn bad_lines_are_rejected_with_their_number() {
        let cases = [
            (
                "10.0.0.0/8 name=a\n10.0.0.0/33 name=b\n",
                2,
                "longer than 32",
            ),
            ("\n\n10.0.0.300/8 name=a\n", 3, "not an IP address"),
            (
                "10.0.0.1/8 name=a\n",
                1,
                "host bits set; did you mean 10.0.0.0/8",
            ),
            (
                "10.0.0.0/8 name=a\n# c\n10.0.0.0/8 name=b\n",
                3,
                "already given on line 1",
            ),
            ("10.0.0.0 name=a\n", 1, "not a CIDR prefix"),
            ("10.0.0.0/8 office\n", 1, "not key=value"),
            ("10.0.0.0/8 internal=maybe\n", 1, "expected yes or no"),
            ("10.0.0.0/8 name=\"open\n", 1, "unterminated"),
        ];
        for (text, line, want) in cases {
            let e = Networks::parse(text, Path::new("nets.txt")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("nets.txt:{line}: ")), "{msg}");
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
    }
}
