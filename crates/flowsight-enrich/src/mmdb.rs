//! MaxMind DB (`.mmdb`) sources: GeoIP (country, region, city, location) and AS numbers and
//! names, in the layouts of MaxMind GeoIP2/GeoLite2, DB-IP and the ip-location-db packages.
//!
//! Files are read into memory rather than memory-mapped: a database replaced in place
//! (truncated, then rewritten) under a mapping would kill the collector with SIGBUS, and
//! reading it whole lets a corrupt file be refused before it is used.
//!
//! Layouts accepted, field by field (all optional, unknown fields ignored):
//! - GeoIP2/GeoLite2/DB-IP City and Country: `country.iso_code` (else
//!   `registered_country.iso_code`), `subdivisions[0].names.en`, `city.names.en`,
//!   `location.latitude`, `location.longitude`;
//! - ip-location-db (`*-country-mmdb`, `dbip-city-mmdb`): `country_code`, `state1`, `city`
//!   (a string), `latitude`, `longitude`;
//! - GeoLite2-ASN: `autonomous_system_number`, `autonomous_system_organization`.

use crate::EnrichError;
use flowsight_schema::{coord_from_degrees, sym};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What one database record says, as symbols (0: absent).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmdbInfo {
    /// Country, ISO 3166-1 alpha-2.
    pub country: u32,
    /// First subdivision (state, region).
    pub region: u32,
    /// City.
    pub city: u32,
    /// Latitude, 1e-5 degrees.
    pub lat: i32,
    /// Longitude, 1e-5 degrees.
    pub lon: i32,
    /// Whether the record had a location.
    pub has_location: bool,
    /// AS number.
    pub asn: u32,
    /// AS name.
    pub as_name: u32,
}

/// A number of any MMDB numeric type.
#[derive(Clone, Copy, Debug, Default)]
struct AnyNum(f64);

impl<'de> Deserialize<'de> for AnyNum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyNum;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<AnyNum, E> {
                Ok(AnyNum(v))
            }
            fn visit_f32<E>(self, v: f32) -> Result<AnyNum, E> {
                Ok(AnyNum(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<AnyNum, E> {
                Ok(AnyNum(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<AnyNum, E> {
                Ok(AnyNum(v as f64))
            }
            fn visit_u128<E>(self, v: u128) -> Result<AnyNum, E> {
                Ok(AnyNum(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AnyNum, E> {
                Ok(AnyNum(v.trim().parse().unwrap_or(0.0)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `names: { en: ... }` of GeoIP2 records.
#[derive(Deserialize, Default)]
struct Names {
    #[serde(default)]
    en: Option<String>,
}

#[derive(Deserialize, Default)]
struct Named {
    #[serde(default)]
    names: Option<Names>,
}

#[derive(Deserialize, Default)]
struct Iso {
    #[serde(default)]
    iso_code: Option<String>,
}

#[derive(Deserialize, Default)]
struct Location {
    #[serde(default)]
    latitude: Option<AnyNum>,
    #[serde(default)]
    longitude: Option<AnyNum>,
}

/// `city` is a map in GeoIP2 (`{names: {en: ..}}`) and a plain string in ip-location-db.
#[derive(Default)]
struct CityField(Option<String>);

impl<'de> Deserialize<'de> for CityField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CityField;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a city name or a map with names")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<CityField, E> {
                Ok(CityField(Some(v.to_string())))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<CityField, A::Error> {
                let mut out = None;
                while let Some(k) = m.next_key::<String>()? {
                    if k == "names" {
                        out = m.next_value::<Names>()?.en;
                    } else {
                        m.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(CityField(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<CityField, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(CityField(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Every field of every accepted layout, all optional.
#[derive(Deserialize, Default)]
struct Record {
    #[serde(default)]
    country: Option<Iso>,
    #[serde(default)]
    registered_country: Option<Iso>,
    #[serde(default)]
    subdivisions: Option<Vec<Named>>,
    #[serde(default)]
    city: CityField,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    country_code: Option<String>,
    #[serde(default)]
    state1: Option<String>,
    #[serde(default)]
    latitude: Option<AnyNum>,
    #[serde(default)]
    longitude: Option<AnyNum>,
    #[serde(default)]
    autonomous_system_number: Option<AnyNum>,
    #[serde(default)]
    autonomous_system_organization: Option<String>,
}

impl Record {
    fn info(self) -> MmdbInfo {
        let pick = |s: Option<String>| s.filter(|s| !s.is_empty()).map_or(0, |s| sym::intern(&s));
        let country = self
            .country
            .and_then(|c| c.iso_code)
            .or(self.country_code)
            .or(self.registered_country.and_then(|c| c.iso_code));
        let region = self
            .subdivisions
            .and_then(|v| v.into_iter().next())
            .and_then(|s| s.names)
            .and_then(|n| n.en)
            .or(self.state1);
        let (lat, lon) = match self.location {
            Some(l) => (l.latitude, l.longitude),
            None => (self.latitude, self.longitude),
        };
        MmdbInfo {
            country: pick(country),
            region: pick(region),
            city: pick(self.city.0),
            lat: lat.map_or(0, |v| coord_from_degrees(v.0)),
            lon: lon.map_or(0, |v| coord_from_degrees(v.0)),
            has_location: lat.is_some() && lon.is_some(),
            asn: self
                .autonomous_system_number
                .map_or(0, |v| v.0.clamp(0.0, u32::MAX as f64) as u32),
            as_name: pick(self.autonomous_system_organization),
        }
    }
}

/// One opened `.mmdb` file.
pub struct MmdbSource {
    reader: maxminddb::Reader<Vec<u8>>,
    path: PathBuf,
    /// `database_type` from the file's metadata (for explanations).
    pub database_type: String,
    ip_version: u16,
}

impl fmt::Debug for MmdbSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmdbSource")
            .field("path", &self.path)
            .field("database_type", &self.database_type)
            .finish()
    }
}

impl MmdbSource {
    /// Opens and checks a database. A truncated or corrupt file is an error naming it.
    pub fn open(path: &Path) -> Result<MmdbSource, EnrichError> {
        let bytes = std::fs::read(path).map_err(|source| EnrichError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        MmdbSource::from_bytes(bytes, path)
    }

    /// A database held in memory (`path` only names it).
    pub fn from_bytes(bytes: Vec<u8>, path: &Path) -> Result<MmdbSource, EnrichError> {
        let bad = |msg: String| EnrichError::Mmdb {
            path: path.to_path_buf(),
            msg,
        };
        // Checks the metadata (at the end of the file: a truncated file has none) and that
        // the search tree fits in the file.
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| bad(e.to_string()))?;
        // `Reader::verify` would also walk the whole tree, but it rejects real databases
        // over metadata details (ip-location-db files have an empty `description`). Probe
        // lookups instead: a damaged tree or data section fails them, and any later damaged
        // record is counted per lookup, never fatal.
        let probes: [IpAddr; 6] = [
            IpAddr::from([1, 1, 1, 1]),
            IpAddr::from([8, 8, 8, 8]),
            IpAddr::from([81, 2, 69, 160]),
            IpAddr::from([203, 0, 113, 1]),
            IpAddr::from([0x2001, 0x4860, 0, 0, 0, 0, 0, 0x8888]),
            IpAddr::from([0x2a00, 0x1450, 0, 0, 0, 0, 0, 1]),
        ];
        let v4_only = reader.metadata().ip_version == 4;
        for ip in probes {
            if v4_only && ip.is_ipv6() {
                continue;
            }
            let r = reader.lookup(ip).map_err(|e| bad(e.to_string()))?;
            r.decode::<Record>().map_err(|e| bad(e.to_string()))?;
        }
        let md = reader.metadata();
        Ok(MmdbSource {
            database_type: md.database_type.clone(),
            ip_version: md.ip_version,
            reader,
            path: path.to_path_buf(),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record for `ip` and the data offset that identifies it (a cache key: many
    /// addresses share a record). `Ok(None)` when the database has nothing for `ip` (also
    /// for IPv6 addresses in an IPv4-only database).
    pub fn locate(&self, ip: IpAddr) -> Result<Option<usize>, String> {
        if self.ip_version == 4 && ip.is_ipv6() {
            return Ok(None);
        }
        let r = self.reader.lookup(ip).map_err(|e| e.to_string())?;
        Ok(r.offset())
    }

    /// Decodes the record of `ip`.
    pub fn lookup(&self, ip: IpAddr) -> Result<Option<MmdbInfo>, String> {
        if self.ip_version == 4 && ip.is_ipv6() {
            return Ok(None);
        }
        let r = self.reader.lookup(ip).map_err(|e| e.to_string())?;
        match r.decode::<Record>() {
            Ok(Some(rec)) => Ok(Some(rec.info())),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}
