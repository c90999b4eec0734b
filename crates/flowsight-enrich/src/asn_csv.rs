//! AS numbers and names from a range CSV: `start,end,asn,name` per line, addresses dotted
//! (`1.0.0.0,1.0.0.255,13335,"Cloudflare, Inc."`) or as integers (the `-num.csv` files), as
//! in the `@ip-location-db/asn` dataset. Names may be double-quoted with `""` escapes.

use crate::EnrichError;
use flowsight_schema::sym;
use rustc_hash::FxHashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// A sorted table of address ranges over the 128-bit (IPv4-mapped) space.
#[derive(Debug, Default)]
pub struct AsnRanges {
    starts: Vec<u128>,
    ends: Vec<u128>,
    asn: Vec<u32>,
    name: Vec<u32>,
    path: PathBuf,
}

fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(4);
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut in_q = false;
    while let Some(c) = chars.next() {
        match (c, in_q) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => in_q = !in_q,
            (',', false) => out.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if in_q {
        return Err("unterminated double quote".into());
    }
    out.push(cur);
    Ok(out)
}

fn parse_addr(s: &str, v6_hint: bool) -> Result<u128, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(u128::from_be_bytes(flowsight_schema::addr_from_ip(ip)));
    }
    let n: u128 = s
        .parse()
        .map_err(|_| format!("`{s}` is neither an IP address nor an integer address"))?;
    if !v6_hint && n <= u32::MAX as u128 {
        Ok(u128::from_be_bytes(flowsight_schema::addr_from_v4(
            n as u32,
        )))
    } else {
        Ok(n)
    }
}

impl AsnRanges {
    /// Reads a range CSV. A bad line is an error naming it; ranges must not overlap.
    pub fn load(path: &Path) -> Result<AsnRanges, EnrichError> {
        let text = std::fs::read_to_string(path).map_err(|source| EnrichError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // Integer files cannot say which family they hold; their name does (`-ipv6-`).
        let v6 = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains("ipv6"));
        AsnRanges::parse(&text, path, v6)
    }

    /// Parses CSV text (`v6_integers`: integer addresses are IPv6).
    pub fn parse(text: &str, path: &Path, v6_integers: bool) -> Result<AsnRanges, EnrichError> {
        let err = |line: usize, msg: String| EnrichError::Line {
            path: path.to_path_buf(),
            line,
            msg,
        };
        let mut rows: Vec<(u128, u128, u32, u32)> = Vec::new();
        let mut names: FxHashMap<String, u32> = FxHashMap::default();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let f = fields(l).map_err(|m| err(line_no, m))?;
            if f.len() < 3 {
                return Err(err(line_no, "expected start,end,asn[,name]".to_string()));
            }
            // A header line (start,end,...) is skipped.
            if line_no == 1 && f[2].trim().parse::<u32>().is_err() {
                continue;
            }
            let start = parse_addr(&f[0], v6_integers).map_err(|m| err(line_no, m))?;
            let end = parse_addr(&f[1], v6_integers).map_err(|m| err(line_no, m))?;
            if end < start {
                return Err(err(
                    line_no,
                    format!("range end {} is before its start {}", f[1], f[0]),
                ));
            }
            let asn: u32 = f[2]
                .trim()
                .parse()
                .map_err(|_| err(line_no, format!("`{}` is not an AS number", f[2])))?;
            let name = f.get(3).map(|s| s.trim()).unwrap_or("");
            let name = match names.get(name) {
                Some(&s) => s,
                None => {
                    let s = sym::intern(name);
                    names.insert(name.to_string(), s);
                    s
                }
            };
            rows.push((start, end, asn, name));
        }
        rows.sort_unstable_by_key(|r| r.0);
        let mut t = AsnRanges {
            path: path.to_path_buf(),
            ..AsnRanges::default()
        };
        for (s, e, a, n) in rows {
            // Overlaps (a source's own duplicates): the earlier start keeps its range.
            if t.ends.last().is_some_and(|&pe| s <= pe) {
                continue;
            }
            t.starts.push(s);
            t.ends.push(e);
            t.asn.push(a);
            t.name.push(n);
        }
        Ok(t)
    }

    /// (AS number, AS name symbol) of the range holding `a`.
    pub fn lookup(&self, a: u128) -> Option<(u32, u32)> {
        let i = self.starts.partition_point(|&s| s <= a).checked_sub(1)?;
        if a <= self.ends[i] {
            Some((self.asn[i], self.name[i]))
        } else {
            None
        }
    }

    /// Every AS number with its name (to name AS numbers the exporter sent).
    pub fn names(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.asn.iter().copied().zip(self.name.iter().copied())
    }

    /// Number of ranges.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether the file had no range.
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowsight_schema::addr_from_ip;

    fn a(s: &str) -> u128 {
        u128::from_be_bytes(addr_from_ip(s.parse().unwrap()))
    }

    #[test]
    fn dotted_and_integer_ranges() {
        // The first lines of @ip-location-db/asn's asn-ipv4.csv and asn-ipv4-num.csv.
        let dotted = "1.0.0.0,1.0.0.255,13335,\"Cloudflare, Inc.\"\n1.0.4.0,1.0.7.255,38803,Gtelecom Pty Ltd\n";
        let t = AsnRanges::parse(dotted, Path::new("asn-ipv4.csv"), false).unwrap();
        let (asn, name) = t.lookup(a("1.0.0.1")).unwrap();
        assert_eq!((asn, sym::resolve(name)), (13335, "Cloudflare, Inc."));
        assert_eq!(t.lookup(a("1.0.5.5")).unwrap().0, 38803);
        assert_eq!(t.lookup(a("1.0.1.0")), None);
        assert_eq!(t.lookup(a("0.255.255.255")), None);
        let num = "16777216,16777471,13335,\"Cloudflare, Inc.\"\n";
        let t = AsnRanges::parse(num, Path::new("asn-ipv4-num.csv"), false).unwrap();
        assert_eq!(t.lookup(a("1.0.0.200")).unwrap().0, 13335);
        // asn-ipv6-num.csv: 2001::/32 as integers.
        let v6 = "42540488161975842760550356425300246528,42540488241204005274814694018844196863,6939,Hurricane Electric LLC\n";
        let t = AsnRanges::parse(v6, Path::new("asn-ipv6-num.csv"), true).unwrap();
        assert_eq!(t.lookup(a("2001:0:1::1")).unwrap().0, 6939);
        assert_eq!(t.lookup(a("2001:1::1")), None);
    }

    #[test]
    fn bad_lines_name_their_number() {
        for (text, want) in [
            (
                "1.0.0.0,1.0.0.255,13335,a\n1.0.0.0,x,1,b\n",
                "2: `x` is neither",
            ),
            ("1.0.0.9,1.0.0.1,1,a\n", "1: range end"),
            ("1.0.0.0,1.0.0.1\n", "1: expected start,end,asn"),
            (
                "start,end,asn,name\n1.0.0.0,1.0.0.1,AS1,x\n",
                "2: `AS1` is not an AS number",
            ),
        ] {
            let e = AsnRanges::parse(text, Path::new("a.csv"), false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}
