//! Frozen WAL directories under `tests/fixtures/wal/` that every future
//! version must still read the same way.
//!
//! * `two-segments/`: segments 00000000 and 00000001 written by this crate
//!   from [`fixture_records`] (64 KiB segments, one record spanning pages).
//! * `corrupt-older-segment/`: the same with one byte flipped inside a record
//!   of segment 0; replay must fail naming segment 0 and the record's offset.
//! * `torn-tail/`: the same with segment 1 cut short in the middle of a
//!   record; replay must return the records before it and report the tear.
//! * `two-segments-snappy/`: the same records written with compression on
//!   (`WalOptions::compress`, as Prometheus's `--storage.tsdb.wal-compression`):
//!   snappy-compressed records flagged on every fragment.
//!
//! Regenerate (only when the format deliberately changes) with
//! `CAIRN_REGEN_FIXTURES=1 cargo test -p cairn-wal --test fixtures -- --ignored`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::path::{Path, PathBuf};

use cairn_model::Labels;
use cairn_wal::fragment::PAGE_SIZE;
use cairn_wal::record::encode_to_vec;
use cairn_wal::{
    replay, segment_path, Record, RefMetadata, RefSample, RefSeries, SegmentReader, Stone, Wal,
    WalError, WalOptions,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/wal")
}

/// The records of the fixture, per segment.
fn fixture_records() -> [Vec<Record>; 2] {
    let series: Vec<RefSeries> = (1..=20u64)
        .map(|r| RefSeries {
            r,
            labels: Labels::from_pairs([
                ("__name__", "gpu_utilization"),
                ("gpu", &(r % 8).to_string()),
                ("host", &format!("node-{}", r / 8)),
            ]),
        })
        .collect();
    let mut seg0 = vec![Record::Series(series)];
    for step in 0..40i64 {
        seg0.push(Record::Samples(
            (1..=20u64)
                .map(|r| RefSample {
                    r,
                    t: 1_700_000_000_000 + step * 15_000,
                    v: (r as f64) * 1.25 + step as f64,
                })
                .collect(),
        ));
    }
    // One record large enough to span two pages.
    seg0.push(Record::Samples(
        (0..4000i64)
            .map(|i| RefSample {
                r: 1 + (i as u64 % 20),
                t: 1_700_001_000_000 + i,
                v: i as f64 / 3.0,
            })
            .collect(),
    ));
    let seg1 = vec![
        Record::Tombstones(vec![Stone {
            r: 3,
            intervals: vec![(1_700_000_000_000, 1_700_000_100_000)],
        }]),
        Record::Metadata(vec![RefMetadata {
            r: 1,
            kind: 2,
            unit: "percent".into(),
            help: "GPU utilization".into(),
        }]),
        Record::Samples(vec![
            RefSample {
                r: 20,
                t: 1_700_002_000_000,
                v: cairn_model::STALE_NAN,
            },
            RefSample {
                r: 2,
                t: 1_700_002_000_001,
                v: f64::INFINITY,
            },
        ]),
        Record::Series(vec![RefSeries {
            r: 21,
            labels: Labels::from_pairs([("__name__", "up"), ("job", "dcgm")]),
        }]),
    ];
    [seg0, seg1]
}

fn write_fixture(dir: &Path) {
    write_fixture_with(dir, false);
}

fn write_fixture_with(dir: &Path, compress: bool) {
    let [seg0, seg1] = fixture_records();
    let opts = WalOptions {
        segment_size: 2 * PAGE_SIZE,
        compress,
        ..WalOptions::default()
    };
    let wal = Wal::open(dir, opts).unwrap();
    for r in &seg0 {
        wal.log(&[&encode_to_vec(r)]).unwrap();
    }
    assert_eq!(wal.next_segment().unwrap(), 1);
    let enc: Vec<Vec<u8>> = seg1.iter().map(encode_to_vec).collect();
    let refs: Vec<&[u8]> = enc.iter().map(Vec::as_slice).collect();
    wal.log(&refs).unwrap();
}

fn extents(path: &Path) -> Vec<(u64, u64)> {
    let mut r = SegmentReader::new(std::fs::File::open(path).unwrap());
    let mut out = Vec::new();
    while r.next_record().unwrap().is_some() {
        out.push((r.record_offset(), r.valid_prefix()));
    }
    out
}

/// Offset of the flipped byte in `corrupt-older-segment`: inside record 5.
fn flip_at(ext: &[(u64, u64)]) -> u64 {
    (ext[5].0 + ext[5].1) / 2
}

#[test]
#[ignore = "rewrites the frozen fixtures"]
fn regenerate_fixtures() {
    if std::env::var("CAIRN_REGEN_FIXTURES").is_err() {
        return;
    }
    let root = fixtures();
    for d in [
        "two-segments",
        "corrupt-older-segment",
        "torn-tail",
        "two-segments-snappy",
    ] {
        let _ = std::fs::remove_dir_all(root.join(d));
    }
    let good = root.join("two-segments");
    write_fixture(&good);
    write_fixture_with(&root.join("two-segments-snappy"), true);
    for name in ["corrupt-older-segment", "torn-tail"] {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for s in 0..2 {
            std::fs::copy(segment_path(&good, s), segment_path(&d, s)).unwrap();
        }
    }
    let seg0 = segment_path(&root.join("corrupt-older-segment"), 0);
    let at = flip_at(&extents(&seg0));
    let mut b = std::fs::read(&seg0).unwrap();
    b[at as usize] ^= 0x20;
    std::fs::write(&seg0, b).unwrap();
    let seg1 = segment_path(&root.join("torn-tail"), 1);
    let ext = extents(&seg1);
    let cut = (ext[2].0 + ext[2].1) / 2;
    let b = std::fs::read(&seg1).unwrap();
    std::fs::write(&seg1, &b[..cut as usize]).unwrap();
}

fn replay_all(dir: &Path) -> cairn_wal::Result<(Vec<Record>, cairn_wal::ReplayStats)> {
    let mut out = Vec::new();
    let st = replay(dir, |r| {
        out.push(r);
        Ok(())
    })?;
    Ok((out, st))
}

/// Compares records, treating sample values by bit pattern.
fn assert_same(got: &[Record], want: &[Record]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(encode_to_vec(g), encode_to_vec(w));
    }
}

#[test]
fn two_segment_fixture_replays_exactly() {
    let dir = fixtures().join("two-segments");
    let (got, st) = replay_all(&dir).unwrap();
    let [a, b] = fixture_records();
    let want: Vec<Record> = a.into_iter().chain(b).collect();
    assert_same(&got, &want);
    assert_eq!(st.segments, Some((0, 1)));
    assert_eq!(st.torn_tail, None);
    assert_eq!(st.series, 21);
    // The writer still produces these exact bytes.
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(tmp.path());
    for s in 0..2 {
        assert_eq!(
            std::fs::read(segment_path(tmp.path(), s)).unwrap(),
            std::fs::read(segment_path(&dir, s)).unwrap(),
            "segment {s} bytes changed"
        );
    }
}

#[test]
fn snappy_fixture_replays_exactly_and_is_smaller() {
    let dir = fixtures().join("two-segments-snappy");
    let (got, st) = replay_all(&dir).unwrap();
    let [a, b] = fixture_records();
    let want: Vec<Record> = a.into_iter().chain(b).collect();
    assert_same(&got, &want);
    assert_eq!(st.segments, Some((0, 1)));
    assert_eq!(st.torn_tail, None);
    // Every record of segment 0 shrinks, so its first fragment is flagged.
    let seg0 = std::fs::read(segment_path(&dir, 0)).unwrap();
    assert_eq!(seg0[0] & 0x08, 0x08, "type byte {:#x}", seg0[0]);
    let plain = std::fs::read(segment_path(&fixtures().join("two-segments"), 0)).unwrap();
    let used = |b: &[u8]| b.iter().rposition(|&x| x != 0).unwrap_or(0);
    assert!(
        used(&seg0) < used(&plain) * 9 / 10,
        "{} vs {}",
        used(&seg0),
        used(&plain)
    );
    // The writer still produces these exact bytes.
    let tmp = tempfile::tempdir().unwrap();
    write_fixture_with(tmp.path(), true);
    for s in 0..2 {
        assert_eq!(
            std::fs::read(segment_path(tmp.path(), s)).unwrap(),
            std::fs::read(segment_path(&dir, s)).unwrap(),
            "segment {s} bytes changed"
        );
    }
}

#[test]
fn corrupt_older_segment_fixture_names_segment_and_offset() {
    let good = extents(&segment_path(&fixtures().join("two-segments"), 0));
    let err = replay_all(&fixtures().join("corrupt-older-segment")).unwrap_err();
    match err {
        WalError::Corruption {
            segment,
            offset,
            expected,
            found,
            ..
        } => {
            assert_eq!(segment, 0);
            // The damaged fragment starts at or after record 5, before the flip.
            assert!(offset >= good[5].0 && offset <= flip_at(&good), "{offset}");
            assert!(expected.contains("crc32c") && found.contains("crc32c"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn torn_tail_fixture_replays_its_prefix_and_open_repairs_it() {
    let src = fixtures().join("torn-tail");
    let (got, st) = replay_all(&src).unwrap();
    let [a, b] = fixture_records();
    let want: Vec<Record> = a.into_iter().chain(b.into_iter().take(2)).collect();
    assert_same(&got, &want);
    assert_eq!(st.torn_tail.map(|t| t.0), Some(1));

    // Open a copy (never the fixture itself): the tail is cut and logging goes on.
    let tmp = tempfile::tempdir().unwrap();
    for s in 0..2 {
        std::fs::copy(segment_path(&src, s), segment_path(tmp.path(), s)).unwrap();
    }
    let wal = Wal::open(tmp.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.current_segment(), 2);
    drop(wal);
    let (got2, st2) = replay_all(tmp.path()).unwrap();
    assert_same(&got2, &want);
    assert_eq!(st2.torn_tail, None);
}
