//! The index header (docs/format/index-header.md): a sparse local copy of
//! an index's header, symbol table, postings offset table and TOC, with
//! series and postings read from the full index by byte range.
//!
//! - Whatever the writer writes, a reader over the header and the remote
//!   index answers exactly as a reader over the whole file (property).
//! - The header holds no series or postings bytes: reading series goes to
//!   the source, and a source that fails turns into an error, not a panic.
//! - The frozen fixture (a header of Prometheus 2.42's small index) opens,
//!   and its corrupt copy is refused with a checksum error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_codec::RangeRead;
use cairn_index::{
    postings_for_matchers, write_index_header, ChunkMeta, IndexError, IndexLike, IndexReader,
    IndexWriter,
};
use cairn_model::{Labels, MatchType, Matcher};
use proptest::prelude::*;

/// An index in memory that counts the bytes read from it, and can be made
/// to fail.
struct Remote {
    bytes: Vec<u8>,
    read: AtomicU64,
    fail: std::sync::atomic::AtomicBool,
}

impl Remote {
    fn new(bytes: Vec<u8>) -> Arc<Self> {
        Arc::new(Self {
            bytes,
            read: AtomicU64::new(0),
            fail: false.into(),
        })
    }
}

impl RangeRead for Remote {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    fn read_at(&self, off: u64, len: u64) -> std::io::Result<Vec<u8>> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("bucket unreachable"));
        }
        let v = self.bytes.read_at(off, len)?;
        self.read.fetch_add(v.len() as u64, Ordering::Relaxed);
        Ok(v)
    }
    fn name(&self) -> String {
        "01TEST/index".into()
    }
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/index")
        .join(name)
}

fn write_index(path: &std::path::Path, series: &[Labels]) {
    let mut w = IndexWriter::create(path).unwrap();
    let mut syms = BTreeSet::new();
    for l in series {
        for x in l.iter() {
            syms.insert(x.name.to_owned());
            syms.insert(x.value.to_owned());
        }
    }
    for s in &syms {
        w.add_symbol(s).unwrap();
    }
    for (i, l) in series.iter().enumerate() {
        let c = ChunkMeta {
            min_time: i as i64 * 1000,
            max_time: i as i64 * 1000 + 999,
            chunk_ref: 8 + 100 * i as u64,
        };
        w.add_series(l, &[c]).unwrap();
    }
    w.finish().unwrap();
}

/// Everything a query asks an index, as plain data.
fn answers(r: &IndexReader) -> Vec<String> {
    let mut out = Vec::new();
    let mut chunks = Vec::new();
    out.push(format!("{:?}", r.symbols().unwrap()));
    for name in r.label_names().unwrap() {
        for v in r.label_values(&name).unwrap() {
            let ps: Vec<u64> = r.postings(&name, &v).unwrap().iter().collect();
            out.push(format!("{name}={v}: {ps:?}"));
        }
        let m = Matcher::new(MatchType::Regex, &name, ".*a.*").unwrap();
        let ps: Vec<u64> = postings_for_matchers(r, &[m]).unwrap().iter().collect();
        out.push(format!("{name}=~.*a.*: {ps:?}"));
    }
    for s in r.all_postings().unwrap() {
        let l = r.series(s, &mut chunks).unwrap();
        out.push(format!("{s}: {l} {chunks:?}"));
    }
    out
}

fn label_sets() -> impl Strategy<Value = Vec<Labels>> {
    let one = proptest::collection::btree_map(
        proptest::sample::select(&["__name__", "gpu", "Hostname", "job", "a"][..]),
        "[abc]{0,3}|node-[0-9]{1,3}",
        1..5,
    );
    proptest::collection::vec(one, 1..60).prop_map(|v| {
        let set: BTreeSet<Labels> = v
            .into_iter()
            .map(Labels::from_pairs)
            .filter(|l| !l.is_empty())
            .collect();
        set.into_iter().collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn a_header_and_ranges_answer_as_the_whole_index(series in label_sets()) {
        let dir = tempfile::tempdir().unwrap();
        let ip = dir.path().join("index");
        write_index(&ip, &series);
        let full = IndexReader::open(&ip).unwrap();
        let remote = Remote::new(std::fs::read(&ip).unwrap());
        let hp = dir.path().join("index-header");
        let fetched = write_index_header(remote.as_ref(), &hp).unwrap();
        prop_assert!(fetched < remote.size(), "the header holds less than the index");
        prop_assert_eq!(std::fs::metadata(&hp).unwrap().len(), remote.size());
        let sparse = IndexReader::open_sparse(&hp, remote.clone()).unwrap();
        prop_assert_eq!(answers(&sparse), answers(&full));
    }
}

#[test]
fn series_are_read_from_the_source_not_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let ip = dir.path().join("index");
    let series: Vec<Labels> = (0..500)
        .map(|i| {
            Labels::from_pairs([
                ("__name__", "DCGM_FI_DEV_GPU_UTIL".to_owned()),
                ("gpu", (i % 8).to_string()),
                ("Hostname", format!("node-{:04}", i / 8)),
            ])
        })
        .collect();
    write_index(&ip, &series);
    let remote = Remote::new(std::fs::read(&ip).unwrap());
    let hp = dir.path().join("index-header");
    write_index_header(remote.as_ref(), &hp).unwrap();
    // The header's series section is a hole: only the source has it.
    let header = std::fs::read(&hp).unwrap();
    let full = std::fs::read(&ip).unwrap();
    assert_ne!(header, full);
    let ix = IndexReader::open_sparse(&hp, remote.clone()).unwrap();
    let before = remote.read.load(Ordering::Relaxed);
    let m = Matcher::new(MatchType::Equal, "Hostname", "node-0003").unwrap();
    let ps: Vec<u64> = postings_for_matchers(&ix, &[m]).unwrap().iter().collect();
    assert_eq!(ps.len(), 8);
    let mut chunks = Vec::new();
    let l = ix.series(ps[2], &mut chunks).unwrap();
    assert_eq!(l.get("gpu"), Some("2"));
    let read = remote.read.load(Ordering::Relaxed) - before;
    assert!(
        read > 0 && read < 2048,
        "one postings list and one series entry read by range, not the index: {read} bytes"
    );
    // A source that fails: a named error, and the reader keeps working after.
    remote.fail.store(true, Ordering::Relaxed);
    match ix.series(ps[3], &mut chunks) {
        Err(IndexError::Io { path, op, .. }) => {
            assert_eq!((path, op), (PathBuf::from("01TEST/index"), "range read"))
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    remote.fail.store(false, Ordering::Relaxed);
    assert!(ix.series(ps[3], &mut chunks).is_ok());
}

#[test]
fn a_header_of_another_length_is_refused() {
    let remote = Remote::new(std::fs::read(fixture("promtool-2.42-small.index")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let hp = dir.path().join("index-header");
    write_index_header(remote.as_ref(), &hp).unwrap();
    let other = Remote::new(vec![0; 1000]);
    assert!(matches!(
        IndexReader::open_sparse(&hp, other),
        Err(IndexError::Corrupt { .. })
    ));
    // Not an index at all: no header is written.
    let junk = Remote::new(vec![7; 200]);
    assert!(write_index_header(junk.as_ref(), &dir.path().join("junk")).is_err());
    assert!(!dir.path().join("junk").exists());
}

#[test]
fn frozen_header_fixture_opens_and_its_corrupt_copy_is_refused() {
    let remote = Remote::new(std::fs::read(fixture("promtool-2.42-small.index")).unwrap());
    let ix = IndexReader::open_sparse(&fixture("promtool-2.42-small.index-header"), remote.clone())
        .unwrap();
    let full = IndexReader::open(&fixture("promtool-2.42-small.index")).unwrap();
    assert_eq!(answers(&ix), answers(&full));
    // The fixture is what the writer writes today.
    let dir = tempfile::tempdir().unwrap();
    let hp = dir.path().join("index-header");
    write_index_header(remote.as_ref(), &hp).unwrap();
    assert_eq!(
        std::fs::read(&hp).unwrap(),
        std::fs::read(fixture("promtool-2.42-small.index-header")).unwrap()
    );
    match IndexReader::open_sparse(&fixture("corrupt-symbols-crc.index-header"), remote) {
        Err(IndexError::Checksum { section, .. }) => assert_eq!(section, "symbol table"),
        other => panic!("expected a checksum error, got {other:?}"),
    }
}
