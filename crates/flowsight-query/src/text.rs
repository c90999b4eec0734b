//! Text fields added by enrichment (countries, cities, AS names, network tags, interface
//! names) as statistic keys, aggregation keys and filter terms.
//!
//! Values are [`flowsight_schema::sym`] symbols: comparing and grouping them is comparing
//! integers; they become strings only when a result is printed.

use flowsight_schema::FlowBatch;

/// An enrichment text field, with a source (input) and a destination (output) column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextField {
    /// Country code (`geo`).
    Country,
    /// GeoIP region.
    Region,
    /// City.
    City,
    /// AS name.
    AsName,
    /// Networks-file name (`net`).
    NetName,
    /// Networks-file role.
    NetRole,
    /// Networks-file site.
    NetSite,
    /// Networks-file region.
    NetRegion,
    /// Networks-file tenant / customer.
    NetTenant,
    /// Interface name (input/output).
    IfName,
}

/// Every text field with the words that name it (first: the canonical one).
pub const TEXT_FIELDS: &[(TextField, &[&str])] = &[
    (TextField::Country, &["geo", "country"]),
    (TextField::Region, &["region"]),
    (TextField::City, &["city"]),
    (TextField::AsName, &["asname"]),
    (TextField::NetName, &["net", "netname"]),
    (TextField::NetRole, &["role", "netrole"]),
    (TextField::NetSite, &["site", "netsite"]),
    (TextField::NetRegion, &["netregion"]),
    (TextField::NetTenant, &["tenant", "customer", "nettenant"]),
    (TextField::IfName, &["ifname"]),
];

impl TextField {
    /// The field a word names (`geo`, `city`, `asname`, `net`, `tenant`, ...).
    pub fn parse(word: &str) -> Option<TextField> {
        TEXT_FIELDS
            .iter()
            .find(|(_, w)| w.contains(&word))
            .map(|(f, _)| *f)
    }

    /// The canonical word.
    pub fn word(self) -> &'static str {
        TEXT_FIELDS
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("", |(_, w)| w[0])
    }

    /// The (source or input, destination or output) column names.
    pub fn columns(self) -> (&'static str, &'static str) {
        match self {
            TextField::Country => ("src_country", "dst_country"),
            TextField::Region => ("src_region", "dst_region"),
            TextField::City => ("src_city", "dst_city"),
            TextField::AsName => ("src_as_name", "dst_as_name"),
            TextField::NetName => ("src_net_name", "dst_net_name"),
            TextField::NetRole => ("src_net_role", "dst_net_role"),
            TextField::NetSite => ("src_net_site", "dst_net_site"),
            TextField::NetRegion => ("src_net_region", "dst_net_region"),
            TextField::NetTenant => ("src_net_tenant", "dst_net_tenant"),
            TextField::IfName => ("in_if_name", "out_if_name"),
        }
    }

    /// The symbol of row `i`, source side when `src`.
    #[inline]
    pub fn get(self, b: &FlowBatch, i: usize, src: bool) -> u32 {
        let (s, d) = match self {
            TextField::Country => (&b.src_country, &b.dst_country),
            TextField::Region => (&b.src_region, &b.dst_region),
            TextField::City => (&b.src_city, &b.dst_city),
            TextField::AsName => (&b.src_as_name, &b.dst_as_name),
            TextField::NetName => (&b.src_net_name, &b.dst_net_name),
            TextField::NetRole => (&b.src_net_role, &b.dst_net_role),
            TextField::NetSite => (&b.src_net_site, &b.dst_net_site),
            TextField::NetRegion => (&b.src_net_region, &b.dst_net_region),
            TextField::NetTenant => (&b.src_net_tenant, &b.dst_net_tenant),
            TextField::IfName => (&b.in_if_name, &b.out_if_name),
        };
        // An unmaterialized column (no enrichment there) reads as empty.
        let v = if src { s } else { d };
        v.get(i).copied().unwrap_or(0)
    }

    /// Whether the value is a country code (matched case-insensitively, stored upper case).
    pub fn is_country(self) -> bool {
        self == TextField::Country
    }
}

/// Which side(s) of a flow a text key or term looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Source / input.
    Src,
    /// Destination / output.
    Dst,
    /// Both (a statistic counts the flow once per side, as nfdump's `ip`).
    Both,
}

/// Parses a `-s`/`-A` key like `srcgeo`, `dstasname`, `geo`, `inifname`, `tenant`.
pub fn parse_key(k: &str) -> Option<(TextField, Side)> {
    let (side, rest) = if let Some(r) = k.strip_prefix("src") {
        (Side::Src, r)
    } else if let Some(r) = k.strip_prefix("dst") {
        (Side::Dst, r)
    } else if let Some(r) = k.strip_prefix("in").filter(|r| *r == "ifname") {
        (Side::Src, r)
    } else if let Some(r) = k.strip_prefix("out").filter(|r| *r == "ifname") {
        (Side::Dst, r)
    } else {
        (Side::Both, k)
    };
    TextField::parse(rest).map(|f| (f, side))
}

/// The key names `parse_key` accepts, for error messages.
pub fn key_names() -> String {
    "srcgeo, dstgeo, geo, srccity, dstcity, srcregion, dstregion, srcasname, dstasname, asname, srcnet, dstnet, net, srcrole, dstrole, srcsite, dstsite, srcnetregion, dstnetregion, srctenant, dsttenant, tenant, inifname, outifname".to_string()
}

/// The printed form of a symbol (`-` for none).
pub fn show(sym: u32) -> String {
    match flowsight_schema::sym::resolve(sym) {
        "" => "-".to_string(),
        s => s.to_string(),
    }
}
