//! The nfdump-style filter language, compiled to typed expressions (never to SQL strings).
//!
//! ```text
//! expr    := and ( ("or" | "||") and )*
//! and     := not ( ("and" | "&&") not )*
//! not     := ("not" | "!") not | "(" expr ")" | term
//! term    := "any" | "ipv4" | "inet" | "ipv6" | "inet6"
//!          | "proto" (tcp|udp|icmp|icmp6|gre|esp|ah|sctp|NUMBER)
//!          | [dir] ("ip" | "host") ADDR | [dir] ("ip" | "host") "in" "[" ADDR... "]"
//!          | [dir] "net" CIDR | [dir] "net" ADDR MASK
//!          | [dir] "port" [op] NUMBER | [dir] "port" "in" "[" NUMBER... "]"
//!          | [dir] "as" [op] NUMBER
//!          | ("in" | "out") "if" NUMBER | "if" NUMBER
//!          | "router" "ip" ADDR
//!          | "flags" LETTERS          (F S R P A U E C; X = all; every listed flag set)
//!          | "tos" [op] NUMBER | "vlan" NUMBER
//!          | ("packets"|"bytes"|"pps"|"bps"|"bpp"|"duration") [op] NUMBER[k|m|g]
//!          | [dir] ("geo" | "country") CC | [dir] ("city" | "region") VALUE
//!          | [dir] "as" "name" VALUE
//!          | [dir] "net" ("name" | "role" | "site" | "region" | "tenant") VALUE
//!          | [dir] ("tenant" | "customer" | "site" | "role") VALUE
//!          | [dir] ("internal" | "external")
//!          | ["in" | "out"] "if" "name" VALUE
//! dir     := "src" | "dst"        (no dir: source or destination)
//! VALUE   := WORD | "quoted text"  (compared exactly; country codes in any case)
//! op      := "=" | "==" | "eq" | "<" | "lt" | ">" | "gt" | "<=" | "le" | ">=" | "ge"
//! ```
//! `duration` is in milliseconds; k/m/g multiply by 1000, 1000², 1000³.

use crate::text::TextField;
use flowsight_schema::{Addr, FlowBatch, addr_from_ip, addr_to_ip, sym};
use rustc_hash::FxHashMap;
use std::fmt;
use std::net::IpAddr;

/// A filter that could not be parsed: where, what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter error at column {}: expected {expected}, found {found}", .pos + 1)]
pub struct FilterError {
    /// Byte offset of the offending token in the filter.
    pub pos: usize,
    /// Its length (at least 1).
    pub len: usize,
    /// What the grammar allows there.
    pub expected: String,
    /// What was there.
    pub found: String,
    /// The filter text.
    pub input: String,
}

impl FilterError {
    /// The filter, a caret line under the error, and the message: for terminals.
    pub fn render(&self) -> String {
        format!(
            "{}\n{}{}\n{}",
            self.input,
            " ".repeat(self.input[..self.pos.min(self.input.len())].chars().count()),
            "^".repeat(self.len.max(1)),
            self
        )
    }
}

/// Which address/port/AS of a flow a term looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Source only.
    Src,
    /// Destination only.
    Dst,
    /// Either.
    Any,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=`
    Eq,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
}

impl Op {
    fn test(self, a: u64, b: u64) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Lt => a < b,
            Op::Gt => a > b,
            Op::Le => a <= b,
            Op::Ge => a >= b,
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
        }
    }
}

/// Per-flow figures computed from several columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// packets
    Packets,
    /// bytes
    Bytes,
    /// packets per second
    Pps,
    /// bits per second
    Bps,
    /// bytes per packet
    Bpp,
    /// flow duration, ms
    Duration,
}

/// A compiled, typed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Matches every flow.
    Any,
    /// Both.
    And(Box<Expr>, Box<Expr>),
    /// Either.
    Or(Box<Expr>, Box<Expr>),
    /// Negation.
    Not(Box<Expr>),
    /// IP protocol number.
    Proto(u8),
    /// IPv6 (true) or IPv4 (false) flows.
    Family(bool),
    /// Address equal to one of a set.
    Addr(Dir, Vec<Addr>),
    /// Address inside a prefix (prefix length in the 128-bit space).
    Net(Dir, u128, u8),
    /// Port comparison.
    Port(Dir, Op, u16),
    /// Port in a set.
    PortIn(Dir, Vec<u16>),
    /// AS number comparison.
    As(Dir, Op, u32),
    /// Interface index (Src: input, Dst: output, Any: either).
    If(Dir, u32),
    /// Exporter address.
    Router(Addr),
    /// Every flag of the mask set.
    Flags(u16),
    /// Type of service comparison.
    Tos(Op, u8),
    /// VLAN id (input or output).
    Vlan(u16),
    /// Computed per-flow figure.
    Metric(Metric, Op, u64),
    /// Enrichment text equal to a symbol (the string is kept for display).
    Text(Dir, TextField, u32, String),
    /// Address in an internal (true) or external (false) network of the networks file.
    Internal(Dir, bool),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Op(Op),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Not,
    And,
    Or,
    Str(String),
    End,
}

struct Token {
    tok: Tok,
    pos: usize,
    len: usize,
}

fn lex(input: &str) -> Result<Vec<Token>, FilterError> {
    let b = input.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let two = input.get(i..i + 2).unwrap_or("");
        let (tok, len) = match (c, two) {
            (_, "&&") => (Tok::And, 2),
            (_, "||") => (Tok::Or, 2),
            (_, "==") => (Tok::Op(Op::Eq), 2),
            (_, "<=") => (Tok::Op(Op::Le), 2),
            (_, ">=") => (Tok::Op(Op::Ge), 2),
            (b'=', _) => (Tok::Op(Op::Eq), 1),
            (b'<', _) => (Tok::Op(Op::Lt), 1),
            (b'>', _) => (Tok::Op(Op::Gt), 1),
            (b'(', _) => (Tok::LParen, 1),
            (b')', _) => (Tok::RParen, 1),
            (b'[', _) => (Tok::LBracket, 1),
            (b']', _) => (Tok::RBracket, 1),
            (b',', _) => (Tok::Comma, 1),
            (b'!', _) => (Tok::Not, 1),
            (b'"', _) => {
                let end = input[i + 1..].find('"').ok_or_else(|| FilterError {
                    pos: i,
                    len: input.len() - i,
                    expected: "a closing \"".into(),
                    found: "the end of the filter".into(),
                    input: input.into(),
                })?;
                (Tok::Str(input[i + 1..i + 1 + end].to_string()), end + 2)
            }
            _ if c.is_ascii_alphanumeric() || c == b':' || c == b'.' => {
                let len = b[i..]
                    .iter()
                    .take_while(|&&x| x.is_ascii_alphanumeric() || b".:/_-".contains(&x))
                    .count();
                (Tok::Word(input[i..i + len].to_ascii_lowercase()), len)
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return Err(FilterError {
                    pos: i,
                    len: ch.len_utf8(),
                    expected: "a keyword, number, address, operator or parenthesis".into(),
                    found: format!("`{ch}`"),
                    input: input.into(),
                });
            }
        };
        out.push(Token { tok, pos: i, len });
        i += len;
    }
    out.push(Token {
        tok: Tok::End,
        pos: input.len(),
        len: 1,
    });
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    input: &'a str,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("`{w}`"),
        Tok::Op(o) => format!("`{}`", o.symbol()),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Not => "`!`".into(),
        Tok::And => "`&&`".into(),
        Tok::Or => "`||`".into(),
        Tok::Str(s) => format!("\"{s}\""),
        Tok::End => "the end of the filter".into(),
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }
    fn word(&self) -> Option<&str> {
        match self.peek() {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }
    fn err(&self, expected: &str) -> FilterError {
        let t = &self.toks[self.i];
        FilterError {
            pos: t.pos,
            len: t.len,
            expected: expected.into(),
            found: describe(&t.tok),
            input: self.input.into(),
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.word() == Some(w) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), FilterError> {
        if *self.peek() == t {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(what))
        }
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.and()?;
        while matches!(self.peek(), Tok::Or) || self.word() == Some("or") {
            self.i += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut e = self.not()?;
        while matches!(self.peek(), Tok::And) || self.word() == Some("and") {
            self.i += 1;
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }

    fn not(&mut self) -> Result<Expr, FilterError> {
        if matches!(self.peek(), Tok::Not) || self.word() == Some("not") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if matches!(self.peek(), Tok::LParen) {
            self.i += 1;
            let e = self.expr()?;
            self.expect(Tok::RParen, "`)` or `and`/`or`")?;
            return Ok(e);
        }
        self.term()
    }

    fn op(&mut self) -> Op {
        let op = match self.peek() {
            Tok::Op(o) => Some(*o),
            Tok::Word(w) => match w.as_str() {
                "eq" => Some(Op::Eq),
                "lt" => Some(Op::Lt),
                "gt" => Some(Op::Gt),
                "le" => Some(Op::Le),
                "ge" => Some(Op::Ge),
                _ => None,
            },
            _ => None,
        };
        if let Some(o) = op {
            self.i += 1;
            o
        } else {
            Op::Eq
        }
    }

    fn number(&mut self, max: u64, what: &str) -> Result<u64, FilterError> {
        let Some(w) = self.word() else {
            return Err(self.err(what));
        };
        let (digits, mult) = match w.as_bytes().last() {
            Some(b'k') => (&w[..w.len() - 1], 1_000u64),
            Some(b'm') => (&w[..w.len() - 1], 1_000_000),
            Some(b'g') => (&w[..w.len() - 1], 1_000_000_000),
            _ => (w, 1),
        };
        match digits.parse::<u64>().ok().and_then(|v| v.checked_mul(mult)) {
            Some(v) if v <= max => {
                self.i += 1;
                Ok(v)
            }
            _ => Err(self.err(what)),
        }
    }

    fn addr(&mut self) -> Result<Addr, FilterError> {
        match self.word().and_then(|w| w.parse::<IpAddr>().ok()) {
            Some(ip) => {
                self.i += 1;
                Ok(addr_from_ip(ip))
            }
            None => Err(self.err("an IPv4 or IPv6 address")),
        }
    }

    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, FilterError>,
    ) -> Result<Vec<T>, FilterError> {
        self.expect(Tok::LBracket, "`[` starting a list")?;
        let mut v = Vec::new();
        loop {
            match self.peek() {
                Tok::RBracket if !v.is_empty() => {
                    self.i += 1;
                    return Ok(v);
                }
                Tok::Comma => self.i += 1,
                _ => v.push(item(self)?),
            }
        }
    }

    fn term(&mut self) -> Result<Expr, FilterError> {
        let dir = if self.eat_word("src") {
            Dir::Src
        } else if self.eat_word("dst") {
            Dir::Dst
        } else {
            Dir::Any
        };
        let Some(w) = self.word().map(str::to_string) else {
            return Err(self.err("a filter term (proto, ip, net, port, as, if, flags, bytes, ...)"));
        };
        let directional = matches!(
            w.as_str(),
            "ip" | "host"
                | "net"
                | "port"
                | "as"
                | "geo"
                | "country"
                | "city"
                | "region"
                | "tenant"
                | "customer"
                | "site"
                | "role"
                | "internal"
                | "external"
        );
        if dir != Dir::Any && !directional {
            return Err(self.err(
                "ip, host, net, port, as, geo, city, region, tenant, site, role, internal or external after src/dst",
            ));
        }
        self.i += 1;
        Ok(match w.as_str() {
            "any" => Expr::Any,
            "ipv4" | "inet" => Expr::Family(false),
            "ipv6" | "inet6" => Expr::Family(true),
            "proto" => {
                let p = match self.word() {
                    Some("tcp") => Some(6),
                    Some("udp") => Some(17),
                    Some("icmp") => Some(1),
                    Some("icmp6") | Some("icmpv6") => Some(58),
                    Some("gre") => Some(47),
                    Some("esp") => Some(50),
                    Some("ah") => Some(51),
                    Some("sctp") => Some(132),
                    _ => None,
                };
                match p {
                    Some(p) => {
                        self.i += 1;
                        Expr::Proto(p)
                    }
                    None => Expr::Proto(self.number(
                        255,
                        "a protocol: tcp, udp, icmp, icmp6, gre, esp, ah, sctp or 0-255",
                    )? as u8),
                }
            }
            "ip" | "host" => {
                if self.eat_word("in") {
                    Expr::Addr(dir, self.list(|p| p.addr())?)
                } else {
                    Expr::Addr(dir, vec![self.addr()?])
                }
            }
            "net" => {
                let f = match self.word() {
                    Some("name") => Some(TextField::NetName),
                    Some("role") => Some(TextField::NetRole),
                    Some("site") => Some(TextField::NetSite),
                    Some("region") => Some(TextField::NetRegion),
                    Some("tenant") | Some("customer") => Some(TextField::NetTenant),
                    _ => None,
                };
                match f {
                    Some(f) => {
                        self.i += 1;
                        self.text(dir, f)?
                    }
                    None => self.net(dir)?,
                }
            }
            "geo" | "country" => self.text(dir, TextField::Country)?,
            "city" => self.text(dir, TextField::City)?,
            "region" => self.text(dir, TextField::Region)?,
            "tenant" | "customer" => self.text(dir, TextField::NetTenant)?,
            "site" => self.text(dir, TextField::NetSite)?,
            "role" => self.text(dir, TextField::NetRole)?,
            "internal" => Expr::Internal(dir, true),
            "external" => Expr::Internal(dir, false),
            "port" => {
                if self.eat_word("in") {
                    Expr::PortIn(
                        dir,
                        self.list(|p| Ok(p.number(65_535, "a port number 0-65535")? as u16))?,
                    )
                } else {
                    let op = self.op();
                    Expr::Port(
                        dir,
                        op,
                        self.number(65_535, "a port number 0-65535")? as u16,
                    )
                }
            }
            "as" if self.word() == Some("name") => {
                self.i += 1;
                self.text(dir, TextField::AsName)?
            }
            "as" => {
                let op = self.op();
                Expr::As(
                    dir,
                    op,
                    self.number(u32::MAX as u64, "an AS number")? as u32,
                )
            }
            "in" | "out" => {
                if !self.eat_word("if") {
                    return Err(self.err("`if` (in if N / out if N)"));
                }
                let d = if w == "in" { Dir::Src } else { Dir::Dst };
                if self.eat_word("name") {
                    return self.text(d, TextField::IfName);
                }
                Expr::If(
                    d,
                    self.number(u32::MAX as u64, "an interface index")? as u32,
                )
            }
            "if" if self.word() == Some("name") => {
                self.i += 1;
                self.text(Dir::Any, TextField::IfName)?
            }
            "if" => Expr::If(
                Dir::Any,
                self.number(u32::MAX as u64, "an interface index")? as u32,
            ),
            "router" => {
                if !self.eat_word("ip") {
                    return Err(self.err("`ip` (router ip ADDR)"));
                }
                Expr::Router(self.addr()?)
            }
            "flags" => {
                let Some(f) = self.word().map(str::to_string) else {
                    return Err(self.err("TCP flag letters (F S R P A U E C, X for all)"));
                };
                let mut mask = 0u16;
                for c in f.chars() {
                    mask |= match c {
                        'f' => 1,
                        's' => 2,
                        'r' => 4,
                        'p' => 8,
                        'a' => 16,
                        'u' => 32,
                        'e' => 64,
                        'c' => 128,
                        'x' => 0x3f,
                        _ => return Err(self.err("TCP flag letters (F S R P A U E C, X for all)")),
                    };
                }
                self.i += 1;
                Expr::Flags(mask)
            }
            "tos" => {
                let op = self.op();
                Expr::Tos(op, self.number(255, "a ToS value 0-255")? as u8)
            }
            "vlan" => Expr::Vlan(self.number(4095, "a VLAN id 0-4095")? as u16),
            "packets" | "bytes" | "pps" | "bps" | "bpp" | "duration" => {
                let m = match w.as_str() {
                    "packets" => Metric::Packets,
                    "bytes" => Metric::Bytes,
                    "pps" => Metric::Pps,
                    "bps" => Metric::Bps,
                    "bpp" => Metric::Bpp,
                    _ => Metric::Duration,
                };
                let op = self.op();
                Expr::Metric(
                    m,
                    op,
                    self.number(u64::MAX, "a number (k, m, g suffixes allowed)")?,
                )
            }
            _ => {
                self.i -= 1;
                return Err(
                    self.err("a filter term (proto, ip, net, port, as, if, flags, bytes, ...)")
                );
            }
        })
    }

    /// A text value: a word as typed (case kept) or a quoted string.
    fn text(&mut self, dir: Dir, f: TextField) -> Result<Expr, FilterError> {
        let t = &self.toks[self.i];
        let v = match &t.tok {
            Tok::Str(v) => v.clone(),
            Tok::Word(_) => self.input[t.pos..t.pos + t.len].to_string(),
            _ => {
                return Err(self.err(if f.is_country() {
                    "a country code like US"
                } else {
                    "a name (quote it if it has spaces)"
                }));
            }
        };
        let v = if f.is_country() {
            v.to_ascii_uppercase()
        } else {
            v
        };
        self.i += 1;
        // Interning (not just looking up) keeps the symbol stable: files read later intern
        // their strings into the same table and get the same symbol for the same text.
        Ok(Expr::Text(dir, f, sym::intern(&v), v))
    }

    fn net(&mut self, dir: Dir) -> Result<Expr, FilterError> {
        let Some(w) = self.word().map(str::to_string) else {
            return Err(self.err("a network like 10.0.0.0/8 or 2001:db8::/32"));
        };
        let bad = |p: &Self| p.err("a network like 10.0.0.0/8 or 2001:db8::/32");
        let (ip, len) = match w.split_once('/') {
            Some((a, l)) => {
                let ip: IpAddr = a.parse().map_err(|_| bad(self))?;
                let l: u8 = l.parse().map_err(|_| bad(self))?;
                (ip, l)
            }
            None => {
                // ADDR MASK (dotted netmask), IPv4 only.
                let ip: IpAddr = w.parse().map_err(|_| bad(self))?;
                self.i += 1;
                let m = self
                    .word()
                    .and_then(|m| m.parse::<std::net::Ipv4Addr>().ok())
                    .ok_or_else(|| self.err("a netmask like 255.255.0.0 or a /length"))?;
                let bits = u32::from(m);
                if bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return Err(self.err("a contiguous netmask like 255.255.0.0"));
                }
                (ip, bits.leading_ones() as u8)
            }
        };
        let (max, base) = if ip.is_ipv4() { (32, 96) } else { (128, 0) };
        if len > max {
            return Err(self.err(&format!("a prefix length 0-{max}")));
        }
        self.i += 1;
        let bits = base + len;
        let v = u128::from_be_bytes(addr_from_ip(ip));
        Ok(Expr::Net(dir, v & mask(bits), bits))
    }
}

fn mask(bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - bits as u32)
    }
}

/// Parses and compiles a filter. An empty filter matches everything.
pub fn parse(input: &str) -> Result<Expr, FilterError> {
    let toks = lex(input)?;
    let mut p = Parser { toks, i: 0, input };
    if matches!(p.peek(), Tok::End) {
        return Ok(Expr::Any);
    }
    let e = p.expr()?;
    if !matches!(p.peek(), Tok::End) {
        return Err(p.err("`and`, `or` or the end of the filter"));
    }
    Ok(e)
}

/// Per filter leaf (by address), a dictionary's generation and which of its values pass.
pub type LeafTables = FxHashMap<usize, (u64, Vec<bool>)>;

/// An address column of a batch given as a dictionary, for [`Expr::refine_with`]: row
/// `i` holds `values[keys[i]]`. Keeps, per leaf, which values pass, for as long as the
/// dictionary's `generation` lasts (a scan's whole file); one per scan worker.
#[derive(Debug)]
pub struct DictColumn<'a> {
    /// The column (`src_addr`, `dst_addr` or `sampler_address`).
    pub column: &'static str,
    /// Per row, an index into `values`.
    pub keys: &'a [u32],
    /// The distinct addresses.
    pub values: &'a [Addr],
    /// Names the dictionary: equal generations come with equal `values`.
    pub generation: u64,
    /// Per leaf (by address), the generation and which values pass: kept by the caller
    /// across batches.
    pub tables: &'a mut LeafTables,
}

impl DictColumn<'_> {
    fn refine(&mut self, leaf: &Expr, sel: &mut [bool]) {
        let t = self
            .tables
            .entry(leaf as *const Expr as usize)
            .or_insert((0, Vec::new()));
        if t.0 != self.generation || t.1.len() != self.values.len() {
            t.1.clear();
            t.1.extend(self.values.iter().map(|a| leaf.address_leaf_matches(a)));
            t.0 = self.generation;
        }
        let pass = &t.1;
        for (s, &k) in sel.iter_mut().zip(self.keys) {
            *s &= pass.get(k as usize).copied().unwrap_or(false);
        }
    }
}

impl Expr {
    /// Whether row `i` of the batch matches.
    pub fn matches(&self, b: &FlowBatch, i: usize) -> bool {
        let dirs = |d: Dir, f: &dyn Fn(bool) -> bool| match d {
            Dir::Src => f(true),
            Dir::Dst => f(false),
            Dir::Any => f(true) || f(false),
        };
        match self {
            Expr::Any => true,
            Expr::And(a, c) => a.matches(b, i) && c.matches(b, i),
            Expr::Or(a, c) => a.matches(b, i) || c.matches(b, i),
            Expr::Not(a) => !a.matches(b, i),
            Expr::Proto(p) => b.proto[i] == *p,
            Expr::Family(v6) => {
                (b.etype[i] == 0x86dd) == *v6 && (b.etype[i] == 0x86dd || b.etype[i] == 0x0800)
            }
            Expr::Addr(d, set) => dirs(*d, &|src| {
                let a = if src { &b.src_addr[i] } else { &b.dst_addr[i] };
                set.contains(a)
            }),
            Expr::Net(d, net, bits) => dirs(*d, &|src| {
                let a = u128::from_be_bytes(if src { b.src_addr[i] } else { b.dst_addr[i] });
                a & mask(*bits) == *net
            }),
            Expr::Port(d, op, v) => dirs(*d, &|src| {
                op.test(
                    if src { b.src_port[i] } else { b.dst_port[i] } as u64,
                    *v as u64,
                )
            }),
            Expr::PortIn(d, set) => dirs(*d, &|src| {
                set.contains(if src { &b.src_port[i] } else { &b.dst_port[i] })
            }),
            Expr::As(d, op, v) => dirs(*d, &|src| {
                op.test(
                    if src { b.src_as[i] } else { b.dst_as[i] } as u64,
                    *v as u64,
                )
            }),
            Expr::If(d, v) => dirs(*d, &|src| {
                (if src { b.in_if[i] } else { b.out_if[i] }) == *v
            }),
            Expr::Router(a) => b.sampler_address[i] == *a,
            Expr::Flags(m) => b.tcp_flags[i] & m == *m,
            Expr::Tos(op, v) => op.test(b.ip_tos[i] as u64, *v as u64),
            Expr::Vlan(v) => b.src_vlan[i] == *v || b.dst_vlan[i] == *v || b.vlan_id[i] == *v,
            Expr::Metric(m, op, v) => op.test(metric(b, i, *m), *v),
            Expr::Text(d, f, v, _) => dirs(*d, &|src| f.get(b, i, src) == *v),
            Expr::Internal(d, want) => dirs(*d, &|src| {
                // An unmaterialized column (no networks file) reads as external.
                let v = if src {
                    &b.src_internal
                } else {
                    &b.dst_internal
                };
                (v.get(i) == Some(&1)) == *want
            }),
        }
    }

    /// Clears `sel[i]` for every row `i` of `b` that does not match: the batch form of
    /// [`Expr::matches`], with the same answers. Leaves run as one loop over their column
    /// (no per-row dispatch through the tree, and the compiler vectorizes the simple ones);
    /// `and` narrows in place, `or` and `not` combine with a copy. `sel` holds one entry
    /// per row of `b`.
    pub fn refine(&self, b: &FlowBatch, sel: &mut [bool]) {
        self.refine_with(b, sel, None);
    }

    /// The address column (`src_addr`, `dst_addr`, `sampler_address`) that this filter
    /// reads only through leaves testing one address at a time (`[src|dst] net`,
    /// `[src|dst] ip`, `router ip`): such a filter can take that column as a file's
    /// dictionary ([`DictColumn`]) and test each distinct address once.
    pub fn dict_column(&self) -> Option<&'static str> {
        // Per column: (used, used only by such leaves).
        let mut uses = [(false, true); 3];
        self.address_uses(&mut uses);
        ["dst_addr", "src_addr", "sampler_address"]
            .into_iter()
            .zip([uses[1], uses[0], uses[2]])
            .find(|(_, (used, only))| *used && *only)
            .map(|(c, _)| c)
    }

    fn address_uses(&self, uses: &mut [(bool, bool); 3]) {
        let mut mark = |i: usize, keyable: bool| {
            uses[i].0 = true;
            uses[i].1 &= keyable;
        };
        match self {
            Expr::And(a, c) | Expr::Or(a, c) => {
                a.address_uses(uses);
                c.address_uses(uses);
            }
            Expr::Not(a) => a.address_uses(uses),
            Expr::Addr(d, _) | Expr::Net(d, _, _) => match d {
                Dir::Src => mark(0, true),
                Dir::Dst => mark(1, true),
                Dir::Any => {
                    mark(0, false);
                    mark(1, false);
                }
            },
            Expr::Router(_) => mark(2, true),
            _ => {
                let mut cols = Vec::new();
                self.columns(&mut cols);
                for (i, c) in ["src_addr", "dst_addr", "sampler_address"]
                    .into_iter()
                    .enumerate()
                {
                    if cols.contains(&c) {
                        mark(i, false);
                    }
                }
            }
        }
    }

    /// [`Expr::refine`], with the column `dict.column` given as a dictionary (the batch's
    /// own column may then be empty): its leaves test each dictionary value once per
    /// generation and each row by its index. Only for the column [`Expr::dict_column`]
    /// names.
    pub fn refine_with(&self, b: &FlowBatch, sel: &mut [bool], mut dict: Option<&mut DictColumn>) {
        fn each<T: Copy>(sel: &mut [bool], col: &[T], f: impl Fn(T) -> bool) {
            for (s, &v) in sel.iter_mut().zip(col) {
                *s &= f(v);
            }
        }
        fn both<T: Copy>(sel: &mut [bool], d: Dir, s: &[T], t: &[T], f: impl Fn(T) -> bool) {
            match d {
                Dir::Src => each(sel, s, f),
                Dir::Dst => each(sel, t, f),
                Dir::Any => {
                    for ((x, &a), &c) in sel.iter_mut().zip(s).zip(t) {
                        *x &= f(a) || f(c);
                    }
                }
            }
        }
        let n = sel.len().min(b.len());
        let sel = &mut sel[..n];
        match self {
            Expr::Any => {}
            Expr::And(a, c) => {
                a.refine_with(b, sel, dict.as_deref_mut());
                c.refine_with(b, sel, dict);
            }
            Expr::Or(a, c) => {
                let mut other = sel.to_vec();
                a.refine_with(b, sel, dict.as_deref_mut());
                c.refine_with(b, &mut other, dict);
                for (x, o) in sel.iter_mut().zip(other) {
                    *x |= o;
                }
            }
            Expr::Not(a) => {
                let mut m = sel.to_vec();
                a.refine_with(b, &mut m, dict);
                for (x, o) in sel.iter_mut().zip(m) {
                    *x &= !o;
                }
            }
            Expr::Addr(Dir::Src | Dir::Dst, _)
            | Expr::Net(Dir::Src | Dir::Dst, _, _)
            | Expr::Router(_)
                if dict
                    .as_ref()
                    .is_some_and(|d| Some(d.column) == self.address_leaf_column()) =>
            {
                if let Some(d) = dict {
                    d.refine(self, sel);
                }
            }
            Expr::Proto(p) => each(sel, &b.proto, |v| v == *p),
            Expr::Net(d, net, bits) => {
                let (m, net) = (mask(*bits), *net);
                both(sel, *d, &b.src_addr, &b.dst_addr, |a| {
                    u128::from_be_bytes(a) & m == net
                })
            }
            Expr::Port(d, op, v) => {
                let (op, v) = (*op, *v as u64);
                both(sel, *d, &b.src_port, &b.dst_port, |p| op.test(p as u64, v))
            }
            Expr::As(d, op, v) => {
                let (op, v) = (*op, *v as u64);
                both(sel, *d, &b.src_as, &b.dst_as, |a| op.test(a as u64, v))
            }
            Expr::If(d, v) => both(sel, *d, &b.in_if, &b.out_if, |x| x == *v),
            Expr::Flags(m) => each(sel, &b.tcp_flags, |f| f & m == *m),
            Expr::Tos(op, v) => each(sel, &b.ip_tos, |t| op.test(t as u64, *v as u64)),
            Expr::Metric(Metric::Bytes, op, v) => each(sel, &b.bytes, |x| op.test(x, *v)),
            Expr::Metric(Metric::Packets, op, v) => each(sel, &b.packets, |x| op.test(x, *v)),
            // The rest are rare in bulk queries: row by row, skipping rows already out.
            _ => {
                for (i, s) in sel.iter_mut().enumerate() {
                    if *s {
                        *s = self.matches(b, i);
                    }
                }
            }
        }
    }

    /// The address column an address leaf tests, and whether `a` passes it.
    fn address_leaf_column(&self) -> Option<&'static str> {
        match self {
            Expr::Addr(Dir::Src, _) | Expr::Net(Dir::Src, _, _) => Some("src_addr"),
            Expr::Addr(Dir::Dst, _) | Expr::Net(Dir::Dst, _, _) => Some("dst_addr"),
            Expr::Router(_) => Some("sampler_address"),
            _ => None,
        }
    }

    fn address_leaf_matches(&self, a: &Addr) -> bool {
        match self {
            Expr::Addr(_, set) => set.contains(a),
            Expr::Net(_, net, bits) => u128::from_be_bytes(*a) & mask(*bits) == *net,
            Expr::Router(r) => a == r,
            _ => false,
        }
    }

    /// The columns this expression reads (so a store scan reads only those).
    pub fn columns(&self, out: &mut Vec<&'static str>) {
        let mut add = |c: &[&'static str]| {
            for x in c {
                if !out.contains(x) {
                    out.push(x);
                }
            }
        };
        let side = |d: Dir, s: &'static str, t: &'static str| -> Vec<&'static str> {
            match d {
                Dir::Src => vec![s],
                Dir::Dst => vec![t],
                Dir::Any => vec![s, t],
            }
        };
        match self {
            Expr::Any => {}
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Expr::Not(a) => a.columns(out),
            Expr::Proto(_) => add(&["proto"]),
            Expr::Family(_) => add(&["etype"]),
            Expr::Addr(d, _) | Expr::Net(d, _, _) => add(&side(*d, "src_addr", "dst_addr")),
            Expr::Port(d, _, _) | Expr::PortIn(d, _) => add(&side(*d, "src_port", "dst_port")),
            Expr::As(d, _, _) => add(&side(*d, "src_as", "dst_as")),
            Expr::If(d, _) => add(&side(*d, "in_if", "out_if")),
            Expr::Router(_) => add(&["sampler_address"]),
            Expr::Flags(_) => add(&["tcp_flags"]),
            Expr::Tos(_, _) => add(&["ip_tos"]),
            Expr::Vlan(_) => add(&["src_vlan", "dst_vlan", "vlan_id"]),
            Expr::Text(d, f, _, _) => {
                let (a, b) = f.columns();
                add(&side(*d, a, b))
            }
            Expr::Internal(d, _) => add(&side(*d, "src_internal", "dst_internal")),
            Expr::Metric(m, _, _) => match m {
                Metric::Packets => add(&["packets"]),
                Metric::Bytes => add(&["bytes"]),
                _ => add(&["packets", "bytes", "time_flow_start_ns", "time_flow_end_ns"]),
            },
        }
    }

    /// Number of rows of the batch that match.
    pub fn count(&self, b: &FlowBatch) -> usize {
        (0..b.len()).filter(|&i| self.matches(b, i)).count()
    }
}

/// A per-flow figure, as nfdump computes it (duration in ms; rates over the duration in
/// seconds, 0 for zero-length flows).
pub fn metric(b: &FlowBatch, i: usize, m: Metric) -> u64 {
    let dur_ms = b.time_flow_end_ns[i].saturating_sub(b.time_flow_start_ns[i]) / 1_000_000;
    match m {
        Metric::Packets => b.packets[i],
        Metric::Bytes => b.bytes[i],
        Metric::Duration => dur_ms,
        Metric::Bpp => b.bytes[i].checked_div(b.packets[i]).unwrap_or(0),
        Metric::Pps => (b.packets[i] * 1000).checked_div(dur_ms).unwrap_or(0),
        Metric::Bps => (b.bytes[i] * 8000).checked_div(dur_ms).unwrap_or(0),
    }
}

fn dir_name(d: Dir, src: &str, dst: &str) -> String {
    match d {
        Dir::Src => src.to_string(),
        Dir::Dst => dst.to_string(),
        Dir::Any => format!("{src}|{dst}"),
    }
}

fn show_addr(a: &Addr) -> String {
    addr_to_ip(a).map_or_else(|| "none".to_string(), |i| i.to_string())
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Any => write!(f, "true"),
            Expr::And(a, b) => write!(f, "({a} AND {b})"),
            Expr::Or(a, b) => write!(f, "({a} OR {b})"),
            Expr::Not(a) => write!(f, "NOT {a}"),
            Expr::Proto(p) => write!(f, "proto = {p}"),
            Expr::Family(v6) => write!(f, "etype = {}", if *v6 { "IPv6" } else { "IPv4" }),
            Expr::Addr(d, set) => {
                let list: Vec<String> = set.iter().map(show_addr).collect();
                write!(
                    f,
                    "{} IN [{}]",
                    dir_name(*d, "src_addr", "dst_addr"),
                    list.join(", ")
                )
            }
            Expr::Net(d, net, bits) => {
                let a = show_addr(&net.to_be_bytes());
                let len = if a.contains(':') {
                    *bits
                } else {
                    bits.saturating_sub(96)
                };
                write!(f, "{} IN {a}/{len}", dir_name(*d, "src_addr", "dst_addr"))
            }
            Expr::Port(d, op, v) => write!(
                f,
                "{} {} {v}",
                dir_name(*d, "src_port", "dst_port"),
                op.symbol()
            ),
            Expr::PortIn(d, set) => {
                write!(f, "{} IN {set:?}", dir_name(*d, "src_port", "dst_port"))
            }
            Expr::As(d, op, v) => write!(
                f,
                "{} {} {v}",
                dir_name(*d, "src_as", "dst_as"),
                op.symbol()
            ),
            Expr::If(d, v) => write!(f, "{} = {v}", dir_name(*d, "in_if", "out_if")),
            Expr::Router(a) => write!(f, "sampler_address = {}", show_addr(a)),
            Expr::Flags(m) => write!(f, "tcp_flags & {m:#04x} = {m:#04x}"),
            Expr::Tos(op, v) => write!(f, "ip_tos {} {v}", op.symbol()),
            Expr::Vlan(v) => write!(f, "src_vlan|dst_vlan|vlan_id = {v}"),
            Expr::Metric(m, op, v) => {
                write!(f, "{} {} {v}", format!("{m:?}").to_lowercase(), op.symbol())
            }
            Expr::Text(d, t, _, v) => {
                let (a, b) = t.columns();
                write!(f, "{} = {v:?}", dir_name(*d, a, b))
            }
            Expr::Internal(d, v) => write!(
                f,
                "{} = {}",
                dir_name(*d, "src_internal", "dst_internal"),
                u8::from(*v)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refine_selects_exactly_the_rows_matches_accepts() {
        use flowsight_schema::{FlowRecord, addr_from_ip};
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        // Flows with small value ranges, so every term matches some rows and not others.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut b = FlowBatch::default();
        for _ in 0..3000 {
            let v4 = |n: u64| addr_from_ip(IpAddr::V4(Ipv4Addr::new(10, n as u8, 0, 1)));
            let v6 = |n: u64| {
                addr_from_ip(IpAddr::V6(Ipv6Addr::new(
                    0x2001, 0xdb8, n as u16, 0, 0, 0, 0, 1,
                )))
            };
            let (s, d) = (next(4), next(4));
            let six = next(5) == 0;
            let start = 1_000_000_000 * next(100);
            b.push(&FlowRecord {
                src_addr: if six { v6(s) } else { v4(s) },
                dst_addr: if six { v6(d) } else { v4(d) },
                etype: if six { 0x86dd } else { 0x0800 },
                proto: [6, 17, 1][next(3) as usize],
                src_port: [53, 80, 443, 1024][next(4) as usize],
                dst_port: [53, 80, 443, 1024][next(4) as usize],
                src_as: next(3) as u32,
                dst_as: next(3) as u32,
                in_if: next(3) as u32,
                out_if: next(3) as u32,
                tcp_flags: next(64) as u16,
                ip_tos: next(4) as u8,
                src_vlan: next(3) as u16,
                packets: next(20),
                bytes: next(20_000),
                time_flow_start_ns: start,
                time_flow_end_ns: start + 1_000_000 * next(5000),
                sampler_address: v4(next(2)),
                ..FlowRecord::default()
            });
        }
        for f in [
            "",
            "proto tcp",
            "not proto udp",
            "proto tcp and dst net 10.0.0.0/15",
            "src net 10.1.0.0/16 or dst net 2001:db8:2::/48",
            "net 10.2.0.0/16",
            "src ip 10.3.0.1 or ip 2001:db8:1::1",
            "src port 53",
            "dst port > 443",
            "port < 80",
            "port in [53, 443]",
            "dst port in [80] or not src port in [1024]",
            "src as 1",
            "as > 1",
            "in if 2",
            "out if 0",
            "if 1",
            "flags SA",
            "tos >= 2",
            "vlan 1",
            "bytes > 10000",
            "bytes > 10k and packets < 5",
            "packets = 3",
            "bpp > 1000",
            "pps > 10",
            "duration < 1000",
            "router ip 10.1.0.1",
            "dst ip in [10.1.0.1, 2001:db8:3::1] and not src net 10.0.0.0/15",
            "not dst net 10.2.0.0/16",
            "inet6 and not (proto icmp or port 53)",
            "not (bytes < 100 or (proto udp and not dst port 53))",
            "(src as 2 or dst as 2) and (in if 1 or out if 1) and flags S",
        ] {
            let e = parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            let mut sel = vec![true; b.len()];
            e.refine(&b, &mut sel);
            let want: Vec<bool> = (0..b.len()).map(|i| e.matches(&b, i)).collect();
            assert_eq!(sel, want, "{f}");
            assert!(
                f.is_empty() || sel.iter().any(|&s| !s),
                "{f} matches every row"
            );
            assert!(sel.iter().any(|&s| s), "{f} matches no row");
            // Rows already out stay out.
            let mut half: Vec<bool> = (0..b.len()).map(|i| i % 2 == 0).collect();
            e.refine(&b, &mut half);
            let want: Vec<bool> = (0..b.len())
                .map(|i| i % 2 == 0 && e.matches(&b, i))
                .collect();
            assert_eq!(half, want, "{f} on half the rows");
            // The same with the filter's dictionary column given as a dictionary (the
            // batch's own column emptied), under two generations of differently ordered
            // dictionaries with unused values, sharing one table cache.
            if let Some(col) = e.dict_column() {
                let mut plain = b.clone();
                let column = match col {
                    "src_addr" => std::mem::take(&mut plain.src_addr),
                    "dst_addr" => std::mem::take(&mut plain.dst_addr),
                    _ => std::mem::take(&mut plain.sampler_address),
                };
                let mut tables = LeafTables::default();
                let (mut keys, mut values) = crate::stats::tests::dictionary(&column, 1);
                for generation in [1, 2] {
                    if generation == 2 {
                        values.reverse();
                        let last = values.len() as u32 - 1;
                        keys.iter_mut().for_each(|k| *k = last - *k);
                    }
                    let mut dict = DictColumn {
                        column: col,
                        keys: &keys,
                        values: &values,
                        generation,
                        tables: &mut tables,
                    };
                    let mut sel = vec![true; b.len()];
                    e.refine_with(&plain, &mut sel, Some(&mut dict));
                    let want: Vec<bool> = (0..b.len()).map(|i| e.matches(&b, i)).collect();
                    assert_eq!(
                        sel, want,
                        "{f} by {col}'s dictionary, generation {generation}"
                    );
                }
            }
        }
        for (f, col) in [
            ("proto tcp and dst net 10.0.0.0/15", Some("dst_addr")),
            (
                "src net 10.1.0.0/16 or dst net 2001:db8:2::/48",
                Some("dst_addr"),
            ),
            ("not src ip 10.3.0.1", Some("src_addr")),
            ("router ip 10.1.0.1", Some("sampler_address")),
            // Either side: one dictionary cannot answer it.
            ("net 10.2.0.0/16", None),
            ("dst net 10.0.0.0/8 and ip 10.3.0.1", None),
            ("proto tcp", None),
        ] {
            assert_eq!(parse(f).unwrap().dict_column(), col, "{f}");
        }
    }

    #[test]
    fn enrichment_terms_match_their_columns() {
        use flowsight_schema::FlowRecord;
        let mut b = FlowBatch::default();
        b.push(&FlowRecord {
            src_country: sym::intern("US"),
            dst_as_name: sym::intern("CLOUDFLARENET"),
            src_net_name: sym::intern("office"),
            dst_net_tenant: sym::intern("acme corp"),
            src_internal: 1,
            in_if_name: sym::intern("xe-0/0/1"),
            ..FlowRecord::default()
        });
        for (f, want) in [
            ("src geo US", true),
            ("src geo us", true),
            ("dst geo US", false),
            ("geo US", true),
            ("dst as name CLOUDFLARENET", true),
            ("dst as name cloudflarenet", false),
            ("as name \"CLOUDFLARENET\"", true),
            ("src net name office", true),
            ("dst net name office", false),
            ("dst tenant \"acme corp\"", true),
            ("net tenant \"acme corp\"", true),
            ("src internal", true),
            ("dst internal", false),
            ("dst external", true),
            ("in if name xe-0/0/1", true),
            ("out if name xe-0/0/1", false),
            ("if name xe-0/0/1 and src net 0.0.0.0/0", false),
            ("not city Paris", true),
        ] {
            let e = parse(f).unwrap_or_else(|e| panic!("{f}: {e}"));
            assert_eq!(e.matches(&b, 0), want, "{f} ({e})");
        }
        let err = parse("src geo").unwrap_err();
        assert!(err.expected.contains("country code"), "{err}");
        let err = parse("src vlan 3").unwrap_err();
        assert!(err.expected.contains("geo"), "{err}");
        let mut cols = Vec::new();
        parse("dst as name X and src internal")
            .unwrap()
            .columns(&mut cols);
        assert_eq!(cols, ["dst_as_name", "src_internal"]);
    }

    #[test]
    fn parses_the_grammar() {
        for f in [
            "proto tcp and dst port 443",
            "src ip 10.0.0.1 or dst net 192.168.0.0/16",
            "not (port 53 or proto icmp)",
            "host in [ 8.8.8.8 1.1.1.1 ]",
            "port in [80, 443]",
            "bytes > 1m and packets < 10k",
            "flags SA and not flags R",
            "in if 3 and out if 4",
            "router ip 127.0.0.1",
            "src as 15169 || dst as gt 64511",
            "net 10.0.0.0 255.0.0.0",
            "duration >= 1000 && bpp < 100",
            "ipv6 and dst net 2001:4860::/32",
            "",
        ] {
            parse(f).unwrap_or_else(|e| panic!("{f}: {}", e.render()));
        }
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = parse("proto tcp and dst prot 443").unwrap_err();
        assert_eq!(e.pos, 18);
        assert_eq!(e.render().lines().nth(1), Some("                  ^^^^"));
        assert!(e.expected.contains("ip, host, net, port, as"), "{e}");
        let e = parse("port 70000").unwrap_err();
        assert!(e.expected.contains("0-65535"));
        let e = parse("(proto tcp").unwrap_err();
        assert_eq!(e.found, "the end of the filter");
        let e = parse("net 10.0.0.0/33").unwrap_err();
        assert!(e.expected.contains("0-32"));
        // An injection attempt is a syntax error, never a query.
        let e = parse("port 80; DROP TABLE flows").unwrap_err();
        assert_eq!(e.found, "`;`");
    }

    #[test]
    fn explain_shows_the_compiled_form() {
        let e = parse("src net 10.0.0.0/8 and port > 1023").unwrap();
        assert_eq!(
            e.to_string(),
            "(src_addr IN 10.0.0.0/8 AND src_port|dst_port > 1023)"
        );
    }
}
