//! The embedded store against its promises: what is written is read back, time ranges prune,
//! compaction keeps every row, crashes and corrupt files never lose more than they must.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flowsight_schema::{FlowBatch, FlowRecord, addr_from_ip};
use flowsight_store::{CompactOptions, Store, TimeRange, WriteOptions};
use std::net::{IpAddr, Ipv4Addr};

const HOUR: u64 = 3_600_000_000_000;
// 2026-11-22T10:00:00Z
const T0: u64 = 1_795_341_600_000_000_000;

/// `n` flows starting at `start`, one every `step` ns, with distinct byte counts.
fn flows(n: usize, start: u64, step: u64, seed: u64) -> FlowBatch {
    let mut b = FlowBatch::default();
    for i in 0..n as u64 {
        let r = FlowRecord {
            time_flow_start_ns: start + i * step,
            time_flow_end_ns: start + i * step + 1_000,
            bytes: seed * 1_000_000 + i,
            packets: 1 + i % 7,
            proto: if i % 3 == 0 { 17 } else { 6 },
            src_addr: addr_from_ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i % 250) as u32))),
            ..FlowRecord::default()
        };
        b.push(&r);
    }
    b
}

fn total_bytes(s: &Store, range: TimeRange) -> (u64, u64) {
    let out = s
        .scan(
            range,
            &["bytes", "time_flow_start_ns"],
            || (0u64, 0u64),
            |acc, b| {
                for i in 0..b.len() {
                    if range.contains(b.time_flow_start_ns[i]) {
                        acc.0 += 1;
                        acc.1 += b.bytes[i];
                    }
                }
            },
        )
        .unwrap();
    out.parts.iter().fold((0, 0), |a, p| (a.0 + p.0, a.1 + p.1))
}

fn sum_bytes(b: &FlowBatch, range: TimeRange) -> (u64, u64) {
    let mut acc = (0, 0);
    for i in 0..b.len() {
        if range.contains(b.time_flow_start_ns[i]) {
            acc.0 += 1;
            acc.1 += b.bytes[i];
        }
    }
    acc
}

#[test]
fn written_flows_read_back_whole_and_by_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let a = flows(1000, T0, 1_000_000, 1);
    let b = flows(500, T0 + HOUR, 1_000_000, 2);
    let opts = WriteOptions::default();
    s.write(a.clone(), T0, &opts).unwrap().unwrap();
    let fb = s.write(b.clone(), T0 + HOUR, &opts).unwrap().unwrap();
    assert!(
        fb.path
            .to_string_lossy()
            .contains("date=2026-11-22/hour=11/f-")
    );
    assert_eq!(s.files().unwrap().len(), 2);

    let expect_all = (
        1500,
        sum_bytes(&a, TimeRange::ALL).1 + sum_bytes(&b, TimeRange::ALL).1,
    );
    assert_eq!(total_bytes(&s, TimeRange::ALL), expect_all);

    // A range covering part of the first file only: the second file is pruned by name.
    let r = TimeRange {
        since: T0 + 100_000_000,
        until: T0 + 200_000_000,
    };
    assert_eq!(total_bytes(&s, r), sum_bytes(&a, r));
    assert_eq!(total_bytes(&s, r).0, 100);
    let out = s.scan(r, &["bytes"], || (), |_, _| ()).unwrap();
    assert_eq!(out.report.files_read, 1);
    assert_eq!(out.report.files_total, 2);

    // Every column survives the round trip.
    let all = s
        .scan(
            TimeRange::ALL,
            &flowsight_schema::FIELDS
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>(),
            Vec::new,
            |acc: &mut Vec<FlowRecord>, b| acc.extend(b.iter()),
        )
        .unwrap();
    let mut got: Vec<FlowRecord> = all.parts.into_iter().flatten().collect();
    got.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    let mut want: Vec<FlowRecord> = a.iter().chain(b.iter()).collect();
    want.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    assert_eq!(got, want);
}

#[test]
fn row_groups_outside_the_range_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions {
        row_group_rows: 100,
        ..WriteOptions::default()
    };
    let a = flows(1000, T0, 1_000_000, 1);
    s.write(a.clone(), T0, &opts).unwrap();
    let r = TimeRange {
        since: T0 + 150_000_000,
        until: T0 + 250_000_000,
    };
    let out = s
        .scan(
            r,
            &["bytes", "time_flow_start_ns"],
            || 0u64,
            |n, b| *n += b.len() as u64,
        )
        .unwrap();
    assert_eq!(out.report.row_groups_skipped, 8, "{:?}", out.report);
    // The two groups the range cuts are read through a row filter on the start time: only
    // their 100 flows inside the range are decoded and delivered.
    assert_eq!(out.parts.iter().sum::<u64>(), 100);
    assert_eq!(out.report.rows_read, 100);
    assert_eq!(total_bytes(&s, r), sum_bytes(&a, r));
}

#[test]
fn compaction_keeps_every_row_and_sorts_by_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions::default();
    let mut want = (0, 0);
    // Ten small files whose time ranges interleave, and one large one.
    for k in 0..10u64 {
        let b = flows(300, T0 + k * 7_000_000, 10_000_000, k);
        let t = sum_bytes(&b, TimeRange::ALL);
        want = (want.0 + t.0, want.1 + t.1);
        s.write(b, T0, &opts).unwrap();
    }
    let big = flows(400, T0, 1_000_000, 99);
    let t = sum_bytes(&big, TimeRange::ALL);
    want = (want.0 + t.0, want.1 + t.1);
    s.write(big, T0, &opts).unwrap();
    assert_eq!(s.files().unwrap().len(), 11);
    let rep = flowsight_store::compact(
        &s,
        &CompactOptions {
            min_age_ns: 0,
            target_rows: 2_500,
            max_span_ns: u64::MAX,
            write: opts,
        },
        flowsight_store::now_ns(),
    )
    .unwrap();
    // Files under 2500/8 rows are merged in groups of at most 2500 rows (8 + 2 files); the
    // 400-row file is large enough to stay.
    assert_eq!(
        (rep.inputs, rep.outputs, rep.rows),
        (10, 2, 3_000),
        "{rep:?}"
    );
    let after = s.files().unwrap();
    assert_eq!(after.len(), 3);
    assert_eq!(after.iter().filter(|f| f.rows == 400).count(), 1);
    assert_eq!(total_bytes(&s, TimeRange::ALL), want);
    // Compacted files are sorted by flow start.
    for f in after
        .iter()
        .filter(|f| f.kind == flowsight_store::FileKind::Compacted)
    {
        let file = std::fs::File::open(&f.path).unwrap();
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let mut last = 0;
        for rb in r {
            let b = FlowBatch::from_record_batch(&rb.unwrap()).unwrap();
            for &t in &b.time_flow_start_ns {
                assert!(t >= last);
                last = t;
            }
        }
    }
    // No journal or temporary is left behind.
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn compacted_files_stay_within_one_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions::default();
    let minute = 60_000_000_000u64;
    let mut want = (0, 0);
    // Twelve small flush files a minute of flow time apart.
    for k in 0..12u64 {
        let b = flows(100, T0 + k * minute, 1_000_000, k);
        let t = sum_bytes(&b, TimeRange::ALL);
        want = (want.0 + t.0, want.1 + t.1);
        s.write(b, T0 + k * minute, &opts).unwrap();
    }
    let span = 5 * minute;
    let rep = flowsight_store::compact(
        &s,
        &CompactOptions {
            min_age_ns: 0,
            max_span_ns: span,
            ..CompactOptions::default()
        },
        flowsight_store::now_ns(),
    )
    .unwrap();
    // Rows allow one file; time does not: 12 minutes make at least 3 five-minute windows.
    assert!(rep.outputs >= 3, "{rep:?}");
    assert_eq!(total_bytes(&s, TimeRange::ALL), want);
    for f in s.files().unwrap() {
        assert_eq!(f.min_start / span, f.max_start / span, "{f:?}");
    }
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn an_interrupted_compaction_never_duplicates_or_loses_rows() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions::default();
    let f1 = s
        .write(flows(100, T0, 1_000, 1), T0, &opts)
        .unwrap()
        .unwrap();
    let f2 = s
        .write(flows(100, T0, 1_000, 2), T0, &opts)
        .unwrap()
        .unwrap();
    let want = total_bytes(&s, TimeRange::ALL);
    let part = f1.path.parent().unwrap().to_path_buf();
    let name = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().into_owned();

    // Crash after the output was renamed into place, before the inputs were deleted: an
    // output holding both inputs' rows, its journal, and the inputs still there.
    let mut both = flows(100, T0, 1_000, 1);
    both.append(&mut flows(100, T0, 1_000, 2));
    let scratch = tempfile::tempdir().unwrap();
    let tmp_store = Store::open(scratch.path()).unwrap();
    let out = tmp_store.write(both, T0, &opts).unwrap().unwrap();
    let out_name = name(&out.path).replacen("f-", "c-", 1);
    std::fs::copy(&out.path, part.join(&out_name)).unwrap();
    let journal = format!(
        r#"{{"output":"{out_name}","inputs":["{}","{}"]}}"#,
        name(&f1.path),
        name(&f2.path)
    );
    std::fs::write(part.join(format!(".compact-{out_name}.json")), &journal).unwrap();
    // A reader during the window sees each row once.
    assert_eq!(total_bytes(&s, TimeRange::ALL), want);
    // Reopening rolls forward: inputs gone, output stays.
    let s = Store::open(dir.path()).unwrap();
    assert_eq!(s.files().unwrap().len(), 1);
    assert_eq!(total_bytes(&s, TimeRange::ALL), want);

    // Crash before the rename: journal present, output absent, plus a temporary. Reopening
    // rolls back: the inputs stay, the leftovers go.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = Store::open(dir2.path()).unwrap();
    let g1 = s2
        .write(flows(100, T0, 1_000, 1), T0, &opts)
        .unwrap()
        .unwrap();
    let part2 = g1.path.parent().unwrap().to_path_buf();
    std::fs::write(
        part2.join(".compact-c-1-2-3-x.parquet.json"),
        format!(
            r#"{{"output":"c-1-2-3-x.parquet","inputs":["{}"]}}"#,
            name(&g1.path)
        ),
    )
    .unwrap();
    std::fs::write(part2.join(".c-1-2-3-x.parquet.tmp"), b"half a file").unwrap();
    let before = total_bytes(&s2, TimeRange::ALL);
    assert_eq!(before.0, 100);
    let s2 = Store::open(dir2.path()).unwrap();
    assert_eq!(total_bytes(&s2, TimeRange::ALL), before);
    assert_eq!(walk(&part2).len(), 1, "{:?}", walk(&part2));
}

#[test]
fn corrupt_and_truncated_files_are_quarantined_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions::default();
    let good = flows(100, T0, 1_000, 1);
    let want = sum_bytes(&good, TimeRange::ALL);
    s.write(good, T0, &opts).unwrap();
    let bad = s
        .write(flows(100, T0, 1_000, 2), T0, &opts)
        .unwrap()
        .unwrap();
    let trunc = s
        .write(flows(100, T0, 1_000, 3), T0, &opts)
        .unwrap()
        .unwrap();
    // Garbage over one file, the other cut in half.
    std::fs::write(&bad.path, b"this is not parquet at all").unwrap();
    let body = std::fs::read(&trunc.path).unwrap();
    std::fs::write(&trunc.path, &body[..body.len() / 2]).unwrap();

    let out = s
        .scan(
            TimeRange::ALL,
            &["bytes", "time_flow_start_ns"],
            || (0u64, 0u64),
            |acc, b| {
                acc.0 += b.len() as u64;
                acc.1 += b.bytes.iter().sum::<u64>();
            },
        )
        .unwrap();
    let got = out.parts.iter().fold((0, 0), |a, p| (a.0 + p.0, a.1 + p.1));
    assert_eq!(got, want);
    assert_eq!(out.report.quarantined.len(), 2, "{:?}", out.report);
    assert_eq!(std::fs::read_dir(s.quarantine_dir()).unwrap().count(), 2);
    assert_eq!(s.files().unwrap().len(), 1);
}

#[test]
fn retention_by_age_and_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions::default();
    for h in 0..5 {
        s.write(flows(1000, T0 + h * HOUR, 1_000, h), T0 + h * HOUR, &opts)
            .unwrap();
    }
    let now = T0 + 5 * HOUR;
    // Keep 2.5 hours: partitions ending at or before now-2.5h (hours 0, 1) go.
    let rep = flowsight_store::enforce_retention(&s, Some(5 * HOUR / 2), None, now).unwrap();
    assert_eq!((rep.files, rep.rows), (2, 2000));
    let left = s.files().unwrap();
    assert_eq!(left.len(), 3);
    assert!(left.iter().all(|f| f.partition_ns >= T0 + 2 * HOUR));
    // Keep at most two files' worth of bytes: the oldest goes.
    let two: u64 = left[1].size + left[2].size;
    let rep = flowsight_store::enforce_retention(&s, None, Some(two), now).unwrap();
    assert_eq!(rep.files, 1);
    assert_eq!(s.files().unwrap()[0].partition_ns, T0 + 3 * HOUR);
    // Empty partition directories are removed.
    assert_eq!(
        std::fs::read_dir(s.flows_dir().join("date=2026-11-22"))
            .unwrap()
            .count(),
        2
    );
}

#[test]
fn opening_a_directory_that_is_not_a_store_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let e = Store::open_read(dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("no flows/ subdirectory") && e.contains("--data"),
        "{e}"
    );
    let e = Store::open_read(dir.path().join("nope"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no such directory"), "{e}");
}

#[test]
fn rollups_sum_what_the_flows_hold_in_every_tier() {
    use flowsight_store::{Rollup, Tier};
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions::default();
    // 3 hours of flows, one every 7 s, two exporters, sampling 1 and 10.
    let mut b = FlowBatch::default();
    for i in 0..(3 * 3600 / 7) as u64 {
        let r = FlowRecord {
            time_flow_start_ns: T0 + i * 7_000_000_000,
            time_flow_end_ns: T0 + i * 7_000_000_000 + 1,
            bytes: 100 + i,
            packets: 1 + i % 3,
            proto: if i % 2 == 0 { 6 } else { 17 },
            sampling_rate: if i % 5 == 0 { 10 } else { 1 },
            sampler_address: addr_from_ip(IpAddr::V4(Ipv4Addr::new(
                10,
                0,
                0,
                1 + (i / 2 % 2) as u8,
            ))),
            ..FlowRecord::default()
        };
        b.push(&r);
    }
    // Written as two flushes, as the collector would, so keys repeat across files.
    let half = b.len() / 2;
    let idx: Vec<u32> = (0..b.len() as u32).collect();
    for part in [&idx[..half], &idx[half..]] {
        let mut r = Rollup::new(Tier::M1);
        r.add_batch(&b.take(part));
        s.write_rollup(&r, T0, &opts).unwrap().unwrap();
    }
    let total = |rows: &[(flowsight_store::RollupKey, flowsight_store::RollupSums)]| {
        rows.iter().fold((0, 0, 0, 0), |a, (_, x)| {
            (
                a.0 + x.flows,
                a.1 + x.packets,
                a.2 + x.bytes,
                a.3 + x.scaled_bytes,
            )
        })
    };
    let want = (
        b.len() as u64,
        b.packets.iter().sum::<u64>(),
        b.bytes.iter().sum::<u64>(),
        b.scaled_totals().0,
    );
    let m1 = s.read_rollup(Tier::M1, TimeRange::ALL).unwrap();
    assert_eq!(total(&m1), want);
    // Keys are unique after reading (rows of both files summed), buckets minute-aligned.
    let mut keys: Vec<_> = m1.iter().map(|(k, _)| *k).collect();
    keys.dedup();
    assert_eq!(keys.len(), m1.len());
    assert!(m1.iter().all(|(k, _)| k.bucket_ns % 60_000_000_000 == 0));
    // 180 minutes x 2 exporters x 2 protocols.
    assert_eq!(m1.len(), 180 * 4);

    // One hour's range gives exactly that hour's flows.
    let hour = TimeRange {
        since: T0 + HOUR,
        until: T0 + 2 * HOUR,
    };
    let in_hour: Vec<u32> = (0..b.len() as u32)
        .filter(|&i| hour.contains(b.time_flow_start_ns[i as usize]))
        .collect();
    let hb = b.take(&in_hour);
    assert_eq!(
        total(&s.read_rollup(Tier::M1, hour).unwrap()).2,
        hb.bytes.iter().sum::<u64>()
    );

    // Coarser tiers appear once the partition's hour is over, and only once.
    assert_eq!(s.roll_up_tiers(T0 + HOUR / 2, &opts).unwrap(), 0);
    assert_eq!(s.roll_up_tiers(T0 + 2 * HOUR, &opts).unwrap(), 1);
    assert_eq!(s.roll_up_tiers(T0 + 3 * HOUR, &opts).unwrap(), 0);
    let m5 = s.read_rollup(Tier::M5, TimeRange::ALL).unwrap();
    let h1 = s.read_rollup(Tier::H1, TimeRange::ALL).unwrap();
    assert_eq!(total(&m5), want);
    assert_eq!(total(&h1), want);
    assert_eq!(m5.len(), 36 * 4);
    assert_eq!(h1.len(), 3 * 4);
    assert!(h1.iter().all(|(k, _)| k.bucket_ns % HOUR == 0));
}

/// A batch of `n` flows whose enrichment text columns hold runs (countries change every 20
/// rows), many distinct values (3 000 cities) and empty strings.
fn enriched(n: usize, seed: u64) -> FlowBatch {
    use flowsight_schema::sym::intern;
    let mut b = flows(n, T0 + seed * 1_000, 1_000_000, seed);
    b.materialize(&["src_country", "dst_city", "in_if_name"]);
    for i in 0..n {
        b.src_country[i] = intern(["US", "DE", "FR", ""][(i / 20) % 4]);
        b.dst_city[i] = intern(&format!("city {}", (i as u64 * 7919 + seed) % 3000));
        b.in_if_name[i] = if i % 2 == 0 {
            intern(&format!("ge-0/0/{seed}"))
        } else {
            0
        };
    }
    b
}

/// The position of the leaf column `name` in a file's schema.
/// Compacts every flush file now, into files of up to a million rows.
fn compact_all(s: &Store, write: WriteOptions) -> flowsight_store::CompactReport {
    flowsight_store::compact(
        s,
        &CompactOptions {
            min_age_ns: 0,
            target_rows: 1_000_000,
            max_span_ns: u64::MAX,
            write,
        },
        flowsight_store::now_ns(),
    )
    .unwrap()
}

fn column(md: &parquet::file::metadata::ParquetMetaData, name: &str) -> usize {
    md.file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == name)
        .unwrap()
}

/// `batches` written as one file with row groups of at most `rows` rows, in a new store.
fn write_in_row_groups(
    batches: &[FlowBatch],
    rows: usize,
) -> (tempfile::TempDir, Store, flowsight_store::FileMeta) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let f = s
        .write_prepared(
            &flowsight_store::Prepared::from_batches(batches.to_vec()),
            T0,
            &WriteOptions {
                row_group_rows: rows,
                ..WriteOptions::default()
            },
        )
        .unwrap()
        .unwrap();
    (dir, s, f)
}

fn all_records(s: &Store) -> Vec<FlowRecord> {
    let names: Vec<&str> = flowsight_schema::FIELDS.iter().map(|f| f.name).collect();
    let out = s
        .scan(TimeRange::ALL, &names, Vec::new, |acc: &mut Vec<_>, b| {
            acc.extend(b.iter())
        })
        .unwrap();
    let mut v: Vec<FlowRecord> = out.parts.into_iter().flatten().collect();
    v.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    v
}

#[test]
fn text_columns_round_trip_dictionary_encoded_through_flush_and_compaction() {
    use parquet::basic::Encoding;
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    // More rows than one data page (65 536), plus batches with dictionaries of their own.
    let batches = vec![enriched(70_000, 1), enriched(100, 2), enriched(33, 3)];
    let mut want: Vec<FlowRecord> = batches.iter().flat_map(|b| b.iter()).collect();
    want.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    let f = s
        .write_prepared(
            &flowsight_store::Prepared::from_batches(batches),
            T0,
            &WriteOptions::default(),
        )
        .unwrap()
        .unwrap();
    assert_eq!(all_records(&s), want);

    // The file says what it is: dictionary pages, and the strings as any reader sees them.
    let file = std::fs::File::open(&f.path).unwrap();
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let md = r.metadata().clone();
    let col = column(&md, "dst_city");
    let chunk = md.row_group(0).column(col);
    assert!(
        chunk.encodings().any(|e| e == Encoding::RLE_DICTIONARY),
        "{:?}",
        chunk.encodings().collect::<Vec<_>>()
    );
    assert!(chunk.dictionary_page_offset().is_some());
    let mut cities = std::collections::BTreeSet::new();
    for rb in r.build().unwrap() {
        let rb = rb.unwrap();
        use arrow_array::cast::AsArray;
        let d = rb
            .column_by_name("dst_city")
            .unwrap()
            .as_dictionary::<arrow_array::types::UInt32Type>();
        let d = d.downcast_dict::<arrow_array::StringArray>().unwrap();
        cities.extend(d.into_iter().map(|v| v.unwrap().to_string()));
    }
    assert_eq!(cities.len(), 3000);
    assert!(cities.contains("city 1"), "{:?}", cities.first());

    // Compaction reads them back and writes them again (dictionaries merged per file).
    s.write(enriched(50, 4), T0, &WriteOptions::default())
        .unwrap();
    want.extend(enriched(50, 4).iter());
    want.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    let rep = compact_all(&s, WriteOptions::default());
    assert_eq!(rep.inputs, 2, "{rep:?}");
    assert_eq!(all_records(&s), want);
}

/// Flows with IPv4 and IPv6 addresses in every address column, distinct per row.
fn addressed(n: usize, seed: u64) -> FlowBatch {
    use std::net::Ipv6Addr;
    let mut b = FlowBatch::default();
    for i in 0..n as u64 {
        let x = seed << 32 | i;
        let v6 = IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(x)));
        let v4 = IpAddr::V4(Ipv4Addr::from(x as u32 ^ 0x0a00_0000));
        let (a, b2) = if i % 3 == 0 { (v6, v4) } else { (v4, v6) };
        b.push(&FlowRecord {
            time_flow_start_ns: T0 + x,
            time_flow_end_ns: T0 + x + 1,
            bytes: x,
            src_addr: addr_from_ip(a),
            dst_addr: addr_from_ip(b2),
            next_hop: addr_from_ip(v4),
            bgp_next_hop: addr_from_ip(v6),
            sampler_address: addr_from_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, seed as u8))),
            ..FlowRecord::default()
        });
    }
    b
}

#[test]
fn address_columns_round_trip_as_plain_pages_across_batches_and_row_groups() {
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::basic::Encoding;
    use parquet::file::metadata::PageIndexPolicy;
    // Row groups of 50 000 rows cut the first batch and span the next two; only with one
    // big row group does a column chunk hold more than one data page (65 536 values).
    let batches = vec![addressed(70_000, 1), addressed(40_000, 2), addressed(17, 3)];
    let mut want: Vec<FlowRecord> = batches.iter().flat_map(|b| b.iter()).collect();
    want.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    for rows in [50_000, 1_000_000] {
        let (_dir, s, f) = write_in_row_groups(&batches, rows);
        assert_eq!(all_records(&s), want, "row groups of {rows}");
        // Plain pages without a dictionary, and a page index any reader can use.
        let file = std::fs::File::open(&f.path).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new_with_options(
            file,
            ArrowReaderOptions::new().with_offset_index_policy(PageIndexPolicy::Required),
        )
        .unwrap();
        let md = r.metadata().clone();
        let col = column(&md, "src_addr");
        for g in md.row_groups() {
            let chunk = g.column(col);
            assert!(chunk.dictionary_page_offset().is_none());
            assert!(chunk.encodings().any(|e| e == Encoding::PLAIN));
        }
        let pages = md.offset_index().unwrap()[0][col].page_locations().len();
        assert_eq!(pages, if rows == 50_000 { 1 } else { 2 });
        let mut n = 0;
        for rb in r.build().unwrap() {
            n += rb.unwrap().num_rows();
        }
        assert_eq!(n, want.len());
    }
}

#[test]
fn repeated_addresses_are_dictionary_encoded_and_read_back_exactly() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    // 300 distinct source addresses (IPv4 and IPv6) in runs and scattered, one exporter,
    // three next hops; the batches split across row groups of 50 000 rows.
    let mut batches = Vec::new();
    for (n, seed) in [(70_000u64, 1u64), (40_000, 2), (17, 3)] {
        let mut b = addressed(n as usize, seed);
        for i in 0..b.len() {
            let k = (i as u64 / 7 * 31 + seed) % 300;
            b.src_addr[i] = if k.is_multiple_of(4) {
                addr_from_ip(IpAddr::V6(std::net::Ipv6Addr::from(
                    0x2001_0db8_u128 << 96 | u128::from(k),
                )))
            } else {
                addr_from_ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | k as u32)))
            };
            b.next_hop[i] = addr_from_ip(IpAddr::V4(Ipv4Addr::new(10, 255, 0, (i % 3) as u8)));
        }
        batches.push(b);
    }
    let mut want: Vec<FlowRecord> = batches.iter().flat_map(|b| b.iter()).collect();
    want.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    for rows in [50_000, 1_000_000] {
        let (_dir, s, f) = write_in_row_groups(&batches, rows);
        assert_eq!(all_records(&s), want, "row groups of {rows}");
        let file = std::fs::File::open(&f.path).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let md = r.metadata().clone();
        for (name, dict) in [
            ("src_addr", true),
            ("next_hop", true),
            ("sampler_address", true),
            // Distinct on every row: a dictionary would not pay.
            ("dst_addr", false),
        ] {
            let col = column(&md, name);
            for g in md.row_groups() {
                let chunk = g.column(col);
                assert_eq!(chunk.dictionary_page_offset().is_some(), dict, "{name}");
                // Queries read these keys: LZ4 blocks (read back exactly above), not zstd.
                if name.ends_with("_addr") {
                    assert_eq!(
                        chunk.compression(),
                        parquet::basic::Compression::LZ4_RAW,
                        "{name}"
                    );
                }
            }
        }
    }
}

/// `(bytes, address)` of every flow a keyed scan of `key` hands out, and how many batches
/// came as dictionary keys and as plain columns.
fn keyed_pairs(s: &Store, key: &str, with_column: bool) -> (Vec<(u64, [u8; 16])>, usize, usize) {
    let mut cols = vec!["bytes"];
    if with_column {
        cols.push(key);
    }
    let out = s
        .scan_keyed(
            TimeRange::ALL,
            &cols,
            key,
            || (Vec::new(), 0, 0),
            |(pairs, keyed, plain), b, keys| {
                let col = match key {
                    "src_addr" => &b.src_addr,
                    _ => &b.next_hop,
                };
                match keys {
                    Some(d) => {
                        *keyed += 1;
                        assert_eq!(d.keys.len(), b.len());
                        for (i, &k) in d.keys.iter().enumerate() {
                            let v = d.values[k as usize];
                            if with_column {
                                assert_eq!(col[i], v, "materialized column");
                            }
                            pairs.push((b.bytes[i], v));
                        }
                    }
                    None => {
                        *plain += 1;
                        pairs.extend(b.bytes.iter().copied().zip(col.iter().copied()));
                    }
                }
            },
        )
        .unwrap();
    assert!(out.report.quarantined.is_empty(), "{:?}", out.report);
    let mut all = (Vec::new(), 0, 0);
    for (mut p, k, n) in out.parts {
        all.0.append(&mut p);
        all.1 += k;
        all.2 += n;
    }
    all.0.sort();
    (all.0, all.1, all.2)
}

#[test]
fn keyed_scans_read_address_dictionaries_and_plain_columns_alike() {
    // One file of 300 repeated source addresses over two row groups (dictionary-encoded),
    // one of distinct ones (PLAIN pages), then both compacted into one file whose row
    // groups are dictionary-encoded again.
    let mut repeated = addressed(60_000, 1);
    for i in 0..repeated.len() {
        let k = (i as u32 / 5 * 37) % 300;
        repeated.src_addr[i] = addr_from_ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | k)));
    }
    let distinct = addressed(10_000, 2);
    let mut want: Vec<(u64, [u8; 16])> = Vec::new();
    let mut want_hop: Vec<(u64, [u8; 16])> = Vec::new();
    for b in [&repeated, &distinct] {
        want.extend(b.bytes.iter().copied().zip(b.src_addr.iter().copied()));
        want_hop.extend(b.bytes.iter().copied().zip(b.next_hop.iter().copied()));
    }
    want.sort();
    want_hop.sort();
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions {
        row_group_rows: 40_000,
        ..WriteOptions::default()
    };
    s.write(repeated, T0, &opts).unwrap();
    s.write(distinct, T0, &opts).unwrap();
    for with_column in [false, true] {
        let (got, keyed, plain) = keyed_pairs(&s, "src_addr", with_column);
        assert!(got == want, "{} of {} flows", got.len(), want.len());
        assert!(keyed > 0 && plain > 0, "keyed {keyed}, plain {plain}");
    }
    // next_hop is distinct per row in both files: plain everywhere.
    let (got, keyed, _) = keyed_pairs(&s, "next_hop", false);
    assert_eq!((got == want_hop, keyed), (true, 0));
    let rep = compact_all(&s, opts);
    assert_eq!(rep.outputs, 1, "{rep:?}");
    for with_column in [false, true] {
        let (got, keyed, _) = keyed_pairs(&s, "src_addr", with_column);
        assert!(
            got == want,
            "compacted: {} of {} flows",
            got.len(),
            want.len()
        );
        assert!(keyed > 0, "compacted files keep address dictionaries");
    }
}

/// Scan workers reuse their batch from file to file: a column one file holds must not
/// show through in the next file's batches, which lack it (an enrichment column written
/// by some files only; those files are read through arrow-rs, the others from their pages).
#[test]
fn columns_of_one_file_never_show_in_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions::default();
    let mut want = 0u64;
    for f in 0..8u64 {
        let mut b = flows(5_000, T0 + f * 10_000_000_000, 1_000, f);
        if f % 2 == 0 {
            b.materialize(&["src_internal"]);
            for v in b.src_internal.iter_mut() {
                *v = 1;
            }
            want += 5_000;
        }
        s.write(b, T0 + f, &opts).unwrap();
    }
    let out = s
        .scan(
            TimeRange::ALL,
            &["src_internal", "bytes"],
            || (0u64, 0u64),
            |acc, b| {
                acc.0 += b.src_internal.iter().map(|&v| u64::from(v)).sum::<u64>();
                acc.1 += b.len() as u64;
            },
        )
        .unwrap();
    let (internal, rows) = out.parts.iter().fold((0, 0), |a, p| (a.0 + p.0, a.1 + p.1));
    assert_eq!(rows, 40_000);
    assert_eq!(internal, want);
}

/// The last files of a scan are read in row ranges by any worker: every row must come out
/// once, and a keyed scan's dictionary indices must stay with their rows (a part starts
/// in the middle of its file's indices).
#[test]
fn files_read_in_parts_give_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions::default();
    // Sizes: several pages (the store cuts pages every ~20 000 rows), not a multiple of
    // them, and a file too small for four parts.
    let sizes = [50_000usize, 61_111, 7];
    let mut want = Vec::new();
    for (f, &n) in sizes.iter().enumerate() {
        let f = f as u64 + 1;
        let b = flows(n, T0 + f * 10_000_000_000, 1_000, f);
        for i in 0..n as u64 {
            let a = addr_from_ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i % 250) as u32)));
            want.push((f * 1_000_000 + i, a));
        }
        s.write(b, T0 + f, &opts).unwrap();
    }
    want.sort();
    // Plain scan: each row's bytes once.
    let out = s
        .scan(TimeRange::ALL, &["bytes"], Vec::new, |acc, b| {
            acc.extend_from_slice(&b.bytes)
        })
        .unwrap();
    let mut got: Vec<u64> = out.parts.concat();
    got.sort();
    assert_eq!(got, want.iter().map(|w| w.0).collect::<Vec<_>>());
    assert_eq!(out.report.files_read, 3);
    assert_eq!(out.report.rows_read, 111_118);
    // Keyed scan, with and without the column itself: each row with its own address.
    for with_column in [false, true] {
        // (The 7-row file's addresses are all distinct: PLAIN, not a dictionary.)
        let (pairs, keyed, _) = keyed_pairs(&s, "src_addr", with_column);
        assert!(keyed >= 4, "{keyed} keyed batches");
        assert_eq!(pairs, want);
    }
}

#[test]
fn integer_columns_round_trip_constant_dictionary_and_plain() {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::statistics::Statistics;
    // Across batches and row groups of 50 000 rows: a column of zeros and one constant
    // non-zero (one-value dictionaries), a few interfaces (a dictionary), TCP flags (a
    // dictionary of u16), AS numbers above i32::MAX (unsigned statistics), MACs above
    // i64::MAX (BYTE_STREAM_SPLIT, no dictionary) and AS numbers distinct per row
    // (a dictionary asked, but more than half the rows distinct: PLAIN).
    let mut batches = Vec::new();
    for (n, seed) in [(70_000usize, 1u64), (40_000, 2), (17, 3)] {
        let mut b = flows(n, T0 + seed * 1_000_000_000, 3, seed);
        for i in 0..n {
            let x = seed << 32 | i as u64;
            b.vlan_id[i] = 0;
            b.mpls_label[i] = 7;
            b.in_if[i] = (x % 5) as u32 + 1;
            b.tcp_flags[i] = (x % 64) as u16;
            b.src_as[i] = u32::MAX - (x % 3) as u32;
            b.src_mac[i] = u64::MAX - x;
            b.dst_as[i] = x as u32;
        }
        batches.push(b);
    }
    let mut want: Vec<FlowRecord> = batches.iter().flat_map(|b| b.iter()).collect();
    want.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    for rows in [50_000, 1_000_000] {
        let (_dir, s, f) = write_in_row_groups(&batches, rows);
        // The store's own page reader.
        assert_eq!(all_records(&s), want, "row groups of {rows}");
        // arrow-rs: every value, and chunk statistics equal to the rows' own min/max.
        let file = std::fs::File::open(&f.path).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let md = r.metadata().clone();
        let mut read: Vec<(u64, u32, u64, u16)> = Vec::new();
        for rb in r.build().unwrap() {
            let rb = rb.unwrap();
            let get = |name: &str| rb.column(rb.schema().index_of(name).unwrap()).clone();
            let bytes = get("bytes");
            let src_as = get("src_as");
            let mac = get("src_mac");
            let flags = get("tcp_flags");
            use arrow_array::cast::AsArray;
            use arrow_array::types::{UInt16Type, UInt32Type, UInt64Type};
            for i in 0..rb.num_rows() {
                read.push((
                    bytes.as_primitive::<UInt64Type>().value(i),
                    src_as.as_primitive::<UInt32Type>().value(i),
                    mac.as_primitive::<UInt64Type>().value(i),
                    flags.as_primitive::<UInt16Type>().value(i),
                ));
            }
        }
        let mut expect: Vec<(u64, u32, u64, u16)> = batches
            .iter()
            .flat_map(|b| b.iter())
            .map(|r| (r.bytes, r.src_as, r.src_mac, r.tcp_flags))
            .collect();
        read.sort_unstable();
        expect.sort_unstable();
        assert_eq!(read, expect, "arrow-rs, row groups of {rows}");
        let mut first = 0usize;
        for g in md.row_groups() {
            let n = g.num_rows() as usize;
            let group = &want[first..first + n];
            first += n;
            let chunk = |name: &str| g.column(column(&md, name));
            for (name, dict) in [
                ("vlan_id", true),
                ("mpls_label", true),
                ("in_if", true),
                ("tcp_flags", true),
                ("src_mac", false),
                ("dst_as", false),
            ] {
                assert_eq!(
                    chunk(name).dictionary_page_offset().is_some(),
                    dict,
                    "{name}, row groups of {rows}"
                );
            }
            // A constant column is a few bytes a page, whatever the row count.
            assert!(chunk("vlan_id").compressed_size() < 200);
            assert!(
                chunk("src_mac")
                    .encodings()
                    .any(|e| e == parquet::basic::Encoding::BYTE_STREAM_SPLIT),
                "{:?}",
                chunk("src_mac").encodings().collect::<Vec<_>>()
            );
            let lo = group.iter().map(|r| r.src_as).min().unwrap();
            let hi = group.iter().map(|r| r.src_as).max().unwrap();
            match chunk("src_as").statistics() {
                Some(Statistics::Int32(s)) => {
                    assert_eq!(
                        (*s.min_opt().unwrap() as u32, *s.max_opt().unwrap() as u32),
                        (lo, hi)
                    );
                    assert_eq!(s.null_count_opt(), Some(0));
                }
                other => panic!("src_as statistics: {other:?}"),
            }
            let lo = group.iter().map(|r| r.src_mac).min().unwrap();
            let hi = group.iter().map(|r| r.src_mac).max().unwrap();
            match chunk("src_mac").statistics() {
                Some(Statistics::Int64(s)) => assert_eq!(
                    (*s.min_opt().unwrap() as u64, *s.max_opt().unwrap() as u64),
                    (lo, hi)
                ),
                other => panic!("src_mac statistics: {other:?}"),
            }
            match chunk("mpls_label").statistics() {
                Some(Statistics::Int32(s)) => {
                    assert_eq!((s.min_opt(), s.max_opt()), (Some(&7), Some(&7)))
                }
                other => panic!("mpls_label statistics: {other:?}"),
            }
        }
    }
}

#[test]
fn delta_columns_round_trip_extreme_values() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{UInt32Type, UInt64Type};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Encoding;
    // The DELTA_BINARY_PACKED columns (times, sequence numbers, bytes, packets) across
    // batches, pages (65 536 rows) and row groups, with deltas that need all 64 (or 32) bits:
    // bytes jumping between 0 and u64::MAX, sequence numbers wrapping past u32::MAX and
    // crossing i32::MAX, a constant stretch (width 0) and batches of 1 and 129 rows (a
    // header alone; a block of 128 and one value).
    let mut batches = Vec::new();
    for (n, seed) in [(70_000usize, 1u64), (1, 2), (129, 3), (66_000, 4)] {
        let mut b = flows(n, T0 + seed * 1_000_000_000, 3, seed);
        for i in 0..n {
            let x = (seed << 32 | i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            b.bytes[i] = match i % 4 {
                0 => u64::MAX,
                1 => 0,
                _ => x,
            };
            b.packets[i] = if (1000..1300).contains(&i) {
                42
            } else {
                x >> (i % 64)
            };
            b.sequence_num[i] = (u32::MAX - 500).wrapping_add(i as u32 * 7);
            b.time_received_ns[i] = T0 + (x % 1_000_000_000);
            b.time_flow_end_ns[i] = if i % 1000 == 0 {
                u64::MAX
            } else {
                T0 + i as u64
            };
        }
        batches.push(b);
    }
    let mut want: Vec<FlowRecord> = batches.iter().flat_map(|b| b.iter()).collect();
    want.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    for rows in [50_000, 1_000_000] {
        let (_dir, s, f) = write_in_row_groups(&batches, rows);
        // The store's own page reader.
        let mut got = all_records(&s);
        got.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
        assert!(got == want, "store reader, row groups of {rows}");
        // arrow-rs, and the chunks' encoding and statistics.
        let file = std::fs::File::open(&f.path).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let md = r.metadata().clone();
        let mut read = Vec::new();
        for rb in r.build().unwrap() {
            let rb = rb.unwrap();
            let get = |name: &str| rb.column(rb.schema().index_of(name).unwrap()).clone();
            let (bytes, packets, seq, recv, end) = (
                get("bytes"),
                get("packets"),
                get("sequence_num"),
                get("time_received_ns"),
                get("time_flow_end_ns"),
            );
            // Times are timestamps (ns here: the values are not whole µs) or, where a
            // value is past what a timestamp holds (u64::MAX), plain numbers.
            let ns = |a: &arrow_array::ArrayRef| {
                let mut v = Vec::new();
                flowsight_schema::arrow::u64_values(a.as_ref(), &mut v).unwrap();
                v
            };
            assert!(matches!(
                recv.data_type(),
                arrow_schema::DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, _)
            ));
            assert_eq!(end.data_type(), &arrow_schema::DataType::UInt64);
            for i in 0..rb.num_rows() {
                read.push((
                    bytes.as_primitive::<UInt64Type>().value(i),
                    packets.as_primitive::<UInt64Type>().value(i),
                    seq.as_primitive::<UInt32Type>().value(i),
                    ns(&recv)[i],
                    ns(&end)[i],
                ));
            }
        }
        let mut expect: Vec<_> = want
            .iter()
            .map(|r| {
                (
                    r.bytes,
                    r.packets,
                    r.sequence_num,
                    r.time_received_ns,
                    r.time_flow_end_ns,
                )
            })
            .collect();
        read.sort_unstable();
        expect.sort_unstable();
        assert!(read == expect, "arrow-rs, row groups of {rows}");
        let mut first = 0usize;
        for g in md.row_groups() {
            let n = g.num_rows() as usize;
            for name in [
                "bytes",
                "packets",
                "sequence_num",
                "time_received_ns",
                "time_flow_start_ns",
                "time_flow_end_ns",
            ] {
                let c = g.column(column(&md, name));
                assert!(
                    c.encodings().any(|e| e == Encoding::DELTA_BINARY_PACKED),
                    "{name}: {:?}",
                    c.encodings().collect::<Vec<_>>()
                );
            }
            // Start-time statistics (time pruning) are the rows' own min/max.
            let group: Vec<u64> = batches
                .iter()
                .flat_map(|b| b.time_flow_start_ns.iter().copied())
                .skip(first)
                .take(n)
                .collect();
            first += n;
            let st = g
                .column(column(&md, "time_flow_start_ns"))
                .statistics()
                .unwrap();
            use parquet::file::statistics::Statistics;
            let Statistics::Int64(v) = st else {
                panic!("{st:?}")
            };
            assert_eq!(*v.min_opt().unwrap() as u64, *group.iter().min().unwrap());
            assert_eq!(*v.max_opt().unwrap() as u64, *group.iter().max().unwrap());
        }
    }
}

#[test]
fn times_are_stored_as_ms_timestamps_when_whole_ms_else_ns() {
    use arrow_schema::{DataType, TimeUnit};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Compression;
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let opts = WriteOptions {
        row_group_rows: 1_000,
        ..WriteOptions::default()
    };
    // Whole milliseconds (as NetFlow v9 gives them), whole microseconds (kept in ns), and
    // a received time with nanoseconds.
    let mut ms = flows(3_000, T0, 1_000_000, 1);
    for (i, t) in ms.time_flow_end_ns.iter_mut().enumerate() {
        *t = T0 + 5_000 * i as u64;
    }
    for (i, t) in ms.time_received_ns.iter_mut().enumerate() {
        *t = T0 + 7 + 1_000_000 * i as u64;
    }
    // Same, but one start time in the second batch is 1 µs off: the whole file's start
    // times are then stored in ns, under zstd.
    let mut us = ms.clone();
    us.time_flow_start_ns[2_500] += 1_000;
    let unit = |f: &std::path::Path, name: &str| {
        let r = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(f).unwrap()).unwrap();
        let dt = r
            .schema()
            .field_with_name(name)
            .unwrap()
            .data_type()
            .clone();
        let md = r.metadata().clone();
        let c = md.row_group(0).column(column(&md, name));
        (dt, c.compression())
    };
    let ts = |u| DataType::Timestamp(u, Some("UTC".into()));
    let fm = s.write(ms.clone(), T0, &opts).unwrap().unwrap();
    assert_eq!(
        unit(&fm.path, "time_flow_start_ns"),
        (ts(TimeUnit::Millisecond), Compression::UNCOMPRESSED)
    );
    assert_eq!(
        unit(&fm.path, "time_flow_end_ns").0,
        ts(TimeUnit::Nanosecond)
    );
    assert_eq!(
        unit(&fm.path, "time_received_ns").0,
        ts(TimeUnit::Nanosecond)
    );
    let (_d2, s2, fu) = write_in_row_groups(&[ms.clone(), us.clone()], 1_000);
    assert!(matches!(
        unit(&fu.path, "time_flow_start_ns"),
        (
            DataType::Timestamp(TimeUnit::Nanosecond, _),
            Compression::ZSTD(_)
        )
    ));

    // Read back exactly, by the store's page reader and through a time range that cuts
    // row groups (arrow-rs, with the start times as a row filter).
    let mut want: Vec<FlowRecord> = ms.iter().collect();
    let mut got = all_records(&s);
    got.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    want.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    assert_eq!(got, want);
    let mut both: Vec<FlowRecord> = ms.iter().chain(us.iter()).collect();
    let mut got = all_records(&s2);
    got.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    both.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    assert_eq!(got, both);
    for store in [&s, &s2] {
        let r = TimeRange {
            since: T0 + 1_500_000_000,
            until: T0 + 2_100_000_000,
        };
        let out = store
            .scan(
                r,
                &["bytes", "time_flow_start_ns"],
                || 0u64,
                |n, b| {
                    *n += b
                        .time_flow_start_ns
                        .iter()
                        .filter(|&&t| r.contains(t))
                        .count() as u64
                },
            )
            .unwrap();
        let n: u64 = out.parts.iter().sum();
        let expect = if std::ptr::eq(store, &s) { 600 } else { 1_200 };
        assert_eq!(n, expect, "{:?}", out.report);
        // Row groups wholly outside the range are skipped by their (scaled) statistics.
        assert!(out.report.row_groups_skipped >= 1, "{:?}", out.report);
    }
}

#[test]
fn ports_round_trip_as_byte_stream_split_pages_across_batches_and_row_groups() {
    use arrow_array::cast::AsArray;
    use arrow_array::types::UInt16Type;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::basic::Encoding;
    use parquet::file::statistics::Statistics;
    // Source ports over the whole u16 range (0 and 65 535 included) across batches, pages
    // (20 000 rows) and row groups; destination ports all 443 (a constant chunk: a
    // one-value dictionary, not split streams).
    let mut batches = Vec::new();
    for (n, seed) in [(45_001usize, 1u64), (1, 2), (30_000, 3)] {
        let mut b = flows(n, T0 + seed * 1_000_000_000, 3, seed);
        for i in 0..n {
            b.src_port[i] = match i % 7 {
                0 => 0,
                1 => u16::MAX,
                _ => ((seed << 20 | i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as u16,
            };
            b.dst_port[i] = 443;
        }
        batches.push(b);
    }
    let mut want: Vec<FlowRecord> = batches.iter().flat_map(|b| b.iter()).collect();
    want.sort_by_key(|r| (r.time_flow_start_ns, r.bytes));
    for rows in [50_000, 1_000_000] {
        let (_dir, s, f) = write_in_row_groups(&batches, rows);
        assert_eq!(all_records(&s), want, "store reader, row groups of {rows}");
        // arrow-rs decodes the split streams on its own.
        let file = std::fs::File::open(&f.path).unwrap();
        let r = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let md = r.metadata().clone();
        let mut read: Vec<(u16, u16)> = Vec::new();
        for rb in r.build().unwrap() {
            let rb = rb.unwrap();
            let get = |name: &str| rb.column(rb.schema().index_of(name).unwrap()).clone();
            let (sp, dp) = (get("src_port"), get("dst_port"));
            for i in 0..rb.num_rows() {
                read.push((
                    sp.as_primitive::<UInt16Type>().value(i),
                    dp.as_primitive::<UInt16Type>().value(i),
                ));
            }
        }
        let mut expect: Vec<(u16, u16)> = want.iter().map(|r| (r.src_port, r.dst_port)).collect();
        read.sort_unstable();
        expect.sort_unstable();
        assert_eq!(read, expect, "arrow-rs, row groups of {rows}");
        let mut first = 0usize;
        for g in md.row_groups() {
            let n = g.num_rows() as usize;
            let group = &want[first..first + n];
            first += n;
            let sp = g.column(column(&md, "src_port"));
            assert!(
                sp.encodings().any(|e| e == Encoding::BYTE_STREAM_SPLIT),
                "{:?}",
                sp.encodings().collect::<Vec<_>>()
            );
            assert!(sp.dictionary_page_offset().is_none());
            let lo = group.iter().map(|r| r.src_port).min().unwrap();
            let hi = group.iter().map(|r| r.src_port).max().unwrap();
            match sp.statistics() {
                Some(Statistics::Int32(s)) => assert_eq!(
                    (*s.min_opt().unwrap() as u16, *s.max_opt().unwrap() as u16),
                    (lo, hi)
                ),
                other => panic!("src_port statistics: {other:?}"),
            }
            let dp = g.column(column(&md, "dst_port"));
            assert!(dp.dictionary_page_offset().is_some());
            assert!(dp.compressed_size() < 200, "{}", dp.compressed_size());
        }
    }
}
