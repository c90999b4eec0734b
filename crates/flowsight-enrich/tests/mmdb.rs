//! Lookups in small `.mmdb` files of each accepted layout, built here with a MaxMind DB
//! writer, plus damaged files.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests panic on purpose

use flowsight_enrich::mmdb::MmdbSource;
use flowsight_enrich::{Databases, EnrichConfig, Enricher, Shared};
use flowsight_schema::{FlowBatch, FlowRecord, addr_from_ip, coord_degrees, sym};
use maxminddb_writer::Database;
use maxminddb_writer::metadata::IpVersion;
use maxminddb_writer::paths::IpAddrWithMask;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Serialize)]
struct Names {
    names: BTreeMap<String, String>,
}

fn names(en: &str) -> Names {
    Names {
        names: BTreeMap::from([
            ("en".to_string(), en.to_string()),
            ("de".to_string(), format!("{en}-de")),
        ]),
    }
}

#[derive(Serialize)]
struct Iso {
    iso_code: String,
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
    accuracy_radius: u16,
}

/// GeoIP2/GeoLite2 City layout (also DB-IP's own mmdb files).
#[derive(Serialize)]
struct Geoip2City {
    city: Names,
    country: Iso,
    subdivisions: Vec<Names>,
    location: Location,
}

/// ip-location-db layouts: country-only, and dbip-city's flat fields (latitude as float).
#[derive(Serialize)]
struct FlatCountry {
    country_code: String,
}

#[derive(Serialize)]
struct FlatCity {
    country_code: String,
    state1: String,
    state2: String,
    city: String,
    latitude: f32,
    longitude: f32,
}

/// GeoLite2-ASN layout.
#[derive(Serialize)]
struct Asn {
    autonomous_system_number: u32,
    autonomous_system_organization: String,
}

fn write(path: &Path, v: IpVersion, kind: &str, build: impl FnOnce(&mut Database)) {
    let mut db = Database::default();
    db.metadata.ip_version = v;
    db.metadata.binary_format_major_version = 2;
    db.metadata.languages = vec!["en".into()];
    db.metadata.build_epoch = 1_700_000_000;
    db.metadata
        .description
        .insert("en".into(), format!("flowsight test {kind}"));
    db.metadata.database_type = kind.to_string();
    build(&mut db);
    let f = std::fs::File::create(path).unwrap();
    db.write_to(std::io::BufWriter::new(f)).unwrap();
}

fn net(s: &str) -> IpAddrWithMask {
    s.parse().unwrap()
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

struct Files {
    _dir: tempfile::TempDir,
    city: PathBuf,
    country: PathBuf,
    flat_city: PathBuf,
    asn: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().unwrap();
    let city = dir.path().join("GeoLite2-City.mmdb");
    // An IPv6 database: IPv4 networks live under ::/96, as in MaxMind's files.
    write(&city, IpVersion::V6, "GeoLite2-City", |db| {
        let r = db
            .insert_value(Geoip2City {
                city: names("Mountain View"),
                country: Iso {
                    iso_code: "US".into(),
                },
                subdivisions: vec![names("California")],
                location: Location {
                    latitude: 37.4223,
                    longitude: -122.085,
                    accuracy_radius: 100,
                },
            })
            .unwrap();
        db.insert_node(net("::8.8.8.0/120"), r);
        let r = db
            .insert_value(Geoip2City {
                city: names("Zurich"),
                country: Iso {
                    iso_code: "CH".into(),
                },
                subdivisions: vec![names("Zurich")],
                location: Location {
                    latitude: 47.3667,
                    longitude: 8.55,
                    accuracy_radius: 20,
                },
            })
            .unwrap();
        db.insert_node(net("2620:fe::/48"), r);
    });
    let country = dir.path().join("geo-whois-asn-country-ipv4.mmdb");
    write(&country, IpVersion::V4, "country", |db| {
        let r = db
            .insert_value(FlatCountry {
                country_code: "AU".into(),
            })
            .unwrap();
        db.insert_node(net("1.1.1.0/24"), r);
    });
    let flat_city = dir.path().join("dbip-city-ipv4.mmdb");
    write(&flat_city, IpVersion::V4, "city", |db| {
        let r = db
            .insert_value(FlatCity {
                country_code: "US".into(),
                state1: "California".into(),
                state2: String::new(),
                city: "Berkeley".into(),
                latitude: 37.8806,
                longitude: -122.268,
            })
            .unwrap();
        db.insert_node(net("9.9.9.0/24"), r);
    });
    let asn = dir.path().join("GeoLite2-ASN.mmdb");
    write(&asn, IpVersion::V6, "GeoLite2-ASN", |db| {
        let r = db
            .insert_value(Asn {
                autonomous_system_number: 15169,
                autonomous_system_organization: "GOOGLE".into(),
            })
            .unwrap();
        db.insert_node(net("::8.8.8.0/120"), r);
        let r = db
            .insert_value(Asn {
                autonomous_system_number: 19281,
                autonomous_system_organization: "QUAD9-AS-1".into(),
            })
            .unwrap();
        db.insert_node(net("2620:fe::/48"), r);
    });
    Files {
        _dir: dir,
        city,
        country,
        flat_city,
        asn,
    }
}

#[test]
fn geoip2_city_layout_ipv4_ipv6_and_mapped() {
    let f = files();
    let db = MmdbSource::open(&f.city).unwrap();
    let m = db.lookup(ip("8.8.8.8")).unwrap().unwrap();
    assert_eq!(sym::resolve(m.country), "US");
    assert_eq!(sym::resolve(m.region), "California");
    assert_eq!(sym::resolve(m.city), "Mountain View");
    assert!((coord_degrees(m.lat) - 37.4223).abs() < 1e-4);
    assert!((coord_degrees(m.lon) + 122.085).abs() < 1e-4);
    // The same address written IPv4-mapped, as flows store it, through the databases.
    let cfg = EnrichConfig {
        geoip: vec![f.city.clone()],
        ..EnrichConfig::default()
    };
    let (dbs, problems) = Databases::load(&cfg);
    assert!(problems.is_empty());
    let (info, _) = dbs.lookup(&addr_from_ip(ip("::ffff:8.8.8.8")));
    assert_eq!(sym::resolve(info.geo.city), "Mountain View");
    let m = db.lookup(ip("2620:fe::fe")).unwrap().unwrap();
    assert_eq!(
        (sym::resolve(m.country), sym::resolve(m.city)),
        ("CH", "Zurich")
    );
    // Missing entries.
    assert_eq!(db.lookup(ip("8.8.9.1")).unwrap(), None);
    assert_eq!(db.lookup(ip("2001:db8::1")).unwrap(), None);
}

#[test]
fn ip_location_db_layouts() {
    let f = files();
    let c = MmdbSource::open(&f.country).unwrap();
    let m = c.lookup(ip("1.1.1.1")).unwrap().unwrap();
    assert_eq!(sym::resolve(m.country), "AU");
    assert_eq!((m.city, m.has_location), (0, false));
    // IPv6 in an IPv4-only file: no entry, not an error.
    assert_eq!(c.lookup(ip("2606:4700::1111")).unwrap(), None);
    let fc = MmdbSource::open(&f.flat_city).unwrap();
    let m = fc.lookup(ip("9.9.9.9")).unwrap().unwrap();
    assert_eq!(sym::resolve(m.city), "Berkeley");
    assert_eq!(sym::resolve(m.region), "California");
    assert!(
        (coord_degrees(m.lat) - 37.8806).abs() < 1e-3,
        "{}",
        coord_degrees(m.lat)
    );
}

#[test]
fn asn_layout_and_exporter_as_policy() {
    let f = files();
    let cfg = EnrichConfig {
        asn: vec![f.asn.clone()],
        ..EnrichConfig::default()
    };
    let (dbs, problems) = Databases::load(&cfg);
    assert!(problems.is_empty(), "{problems:?}");
    let (info, _) = dbs.lookup(&addr_from_ip(ip("8.8.8.8")));
    assert_eq!((info.asn, sym::resolve(info.as_name)), (15169, "GOOGLE"));
    // Default policy: the exporter's non-zero AS wins, the database fills zeros.
    assert_eq!(dbs.pick_as(64500, &info).0, 64500);
    assert_eq!(dbs.pick_as(0, &info).0, 15169);
    let cfg = EnrichConfig {
        asn: vec![f.asn.clone()],
        as_source: flowsight_enrich::AsSource::Database,
        ..EnrichConfig::default()
    };
    let (dbs, _) = Databases::load(&cfg);
    assert_eq!(dbs.pick_as(64500, &info), (15169, sym::intern("GOOGLE")));
}

#[test]
fn first_source_with_an_entry_wins_and_batches_are_enriched() {
    let f = files();
    let cfg = EnrichConfig {
        geoip: vec![f.country.clone(), f.city.clone(), f.flat_city.clone()],
        asn: vec![f.asn.clone()],
        ..EnrichConfig::default()
    };
    let (dbs, problems) = Databases::load(&cfg);
    assert!(problems.is_empty());
    let mut e = Enricher::new(Arc::new(dbs), 64);
    let mut b = FlowBatch::default();
    for (s, d) in [
        ("1.1.1.1", "8.8.8.8"),
        ("9.9.9.9", "2620:fe::9"),
        ("1.1.1.1", "8.8.8.8"),
    ] {
        b.push(&FlowRecord {
            src_addr: addr_from_ip(ip(s)),
            dst_addr: addr_from_ip(ip(d)),
            ..FlowRecord::default()
        });
    }
    e.enrich(&mut b, 0);
    let r = |v: &[u32], i: usize| sym::resolve(v[i]);
    assert_eq!((r(&b.src_country, 0), r(&b.dst_country, 0)), ("AU", "US"));
    assert_eq!(
        (r(&b.dst_city, 0), r(&b.dst_as_name, 0)),
        ("Mountain View", "GOOGLE")
    );
    assert_eq!(b.dst_as[0], 15169);
    assert_eq!(
        (r(&b.src_city, 1), r(&b.dst_country, 1)),
        ("Berkeley", "CH")
    );
    assert_eq!(b.dst_as[1], 19281);
    // The third flow repeats the first's addresses: served by the cache.
    assert_eq!(e.hits, 2);
    assert_eq!(e.misses, 4);
    assert_eq!(b.get(2).unwrap().dst_city, b.dst_city[0]);
}

#[test]
fn corrupt_and_truncated_databases_are_refused_and_left_out() {
    let f = files();
    let bytes = std::fs::read(&f.city).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.mmdb");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.path().join("garbage.mmdb");
    std::fs::write(&garbage, b"this is not a MaxMind DB file at all").unwrap();
    // Search tree damaged, metadata intact.
    let mut damaged = bytes.clone();
    for b in damaged.iter_mut().take(64) {
        *b = 0xff;
    }
    let damaged_p = dir.path().join("damaged.mmdb");
    std::fs::write(&damaged_p, &damaged).unwrap();
    for p in [&truncated, &garbage, &damaged_p] {
        let e = MmdbSource::open(p).unwrap_err().to_string();
        assert!(
            e.contains(&p.display().to_string()) && e.contains("not a valid MaxMind DB"),
            "{e}"
        );
    }
    let missing = dir.path().join("missing.mmdb");
    let cfg = EnrichConfig {
        geoip: vec![truncated.clone(), f.country.clone(), missing.clone()],
        ..EnrichConfig::default()
    };
    let (dbs, problems) = Databases::load(&cfg);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[1].to_string().contains("missing.mmdb"));
    // The good source still answers.
    let (info, _) = dbs.lookup(&addr_from_ip(ip("1.1.1.1")));
    assert_eq!(sym::resolve(info.geo.country), "AU");
}

#[test]
fn databases_reload_when_a_file_changes() {
    let f = files();
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("geo.mmdb");
    std::fs::copy(&f.country, &live).unwrap();
    let (shared, problems) = Shared::new(EnrichConfig {
        geoip: vec![live.clone()],
        ..EnrichConfig::default()
    });
    assert!(problems.is_empty());
    let g0 = shared.generation();
    assert!(shared.reload_if_changed().is_none());
    let au = addr_from_ip(ip("1.1.1.1"));
    assert_eq!(
        sym::resolve(shared.current().lookup(&au).0.geo.country),
        "AU"
    );
    // A broken replacement keeps the previous version in use.
    std::fs::write(&live, b"garbage").unwrap();
    let problems = shared.reload_if_changed().unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(shared.generation(), g0);
    assert_eq!(
        sym::resolve(shared.current().lookup(&au).0.geo.country),
        "AU"
    );
    // A new database replaces it by rename, as fetch scripts do.
    write(
        &dir.path().join("new.mmdb"),
        IpVersion::V4,
        "country",
        |db| {
            let r = db
                .insert_value(FlatCountry {
                    country_code: "NZ".into(),
                })
                .unwrap();
            db.insert_node(net("1.1.1.0/24"), r);
        },
    );
    std::fs::rename(dir.path().join("new.mmdb"), &live).unwrap();
    let problems = shared.reload_if_changed().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(shared.generation() > g0);
    assert_eq!(
        sym::resolve(shared.current().lookup(&au).0.geo.country),
        "NZ"
    );
}
