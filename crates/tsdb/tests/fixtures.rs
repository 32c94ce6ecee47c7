//! Frozen block fixtures (tests/fixtures/blocks): one written by promtool,
//! two corrupt copies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod common;

use std::path::{Path, PathBuf};

use cairn_tsdb::cli::dump;
use cairn_tsdb::{Block, TsdbError};
use common::{all_samples, copy_tree};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/blocks")
}

#[test]
fn promtool_fixture_dumps_exactly_as_promtool_did() {
    // Dump opens a Db, which creates wal/: work on a copy.
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join("promtool"), tmp.path());
    let mut out = Vec::new();
    dump(tmp.path(), i64::MIN, i64::MAX, &[], None, &mut out).unwrap();
    let want = std::fs::read_to_string(fixtures().join("expected_dump.txt")).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), want);
}

#[test]
fn promtool_fixture_meta_round_trips_byte_for_byte() {
    let dir = fixtures().join("promtool/01M80P5JVWBR6BKGS34HVKGPMN");
    let b = Block::open(&dir).unwrap();
    let m = b.meta();
    assert_eq!(
        (m.min_time, m.max_time),
        (1_700_000_000_000, 1_700_000_030_001)
    );
    assert_eq!(
        (m.stats.num_series, m.stats.num_samples, m.stats.num_chunks),
        (4, 8, 4)
    );
    assert_eq!(m.to_json(), std::fs::read(dir.join("meta.json")).unwrap());
    assert_eq!(
        b.tombstones().encode(),
        std::fs::read(dir.join("tombstones")).unwrap()
    );
    assert_eq!(all_samples(&b, i64::MIN, i64::MAX).len(), 8);
}

#[test]
fn corrupt_chunk_is_reported_not_panicked() {
    let b = Block::open(&fixtures().join("corrupt/chunk-crc")).unwrap();
    let q = cairn_storage::Queryable::querier(&b, i64::MIN, i64::MAX).unwrap();
    let m = cairn_model::Matcher::new(cairn_model::MatchType::Regex, "__name__", ".*").unwrap();
    let mut errors = 0;
    for s in q.select(&Default::default(), &[m]).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        while it.next() == cairn_storage::ValueType::Float {}
        if let Some(e) = it.err() {
            assert!(e.to_string().contains("chunk"), "{e}");
            errors += 1;
        }
    }
    assert_eq!(
        errors, 1,
        "exactly the series whose chunk was damaged fails"
    );
}

#[test]
fn corrupt_tombstones_fail_open_with_context() {
    match Block::open(&fixtures().join("corrupt/tombstones-crc")) {
        Err(TsdbError::Corrupt { what, path, .. }) => {
            assert_eq!(what, "tombstones checksum");
            assert!(path.ends_with("tombstones"));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
}
