//! The fragment layer end to end: records of random sizes, some spanning
//! many pages and segments, come back byte for byte and in order.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::io::Cursor;

use cairn_wal::fragment::PAGE_SIZE;
use cairn_wal::{replay_raw, segment_path, FsyncPolicy, SegmentReader, Wal, WalOptions};
use proptest::prelude::*;

/// Pseudo-random bytes; by `seed % 3` incompressible, or drawn from 16 or
/// 4 values so that snappy shrinks them (both paths of a compressing log).
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mask = [0xff, 0x0f, 0x03][(seed % 3) as usize];
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8 & mask
        })
        .collect()
}

fn read_all(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let stats = replay_raw(dir, |r| {
        got.push(r.to_vec());
        Ok(())
    })
    .unwrap();
    assert_eq!(stats.torn_tail, None);
    got
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(
        prop_oneof![
            6 => 0usize..300,
            3 => 300usize..40_000,
            1 => 40_000usize..200_000,
        ],
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn records_of_random_sizes_round_trip(sizes in sizes(), batch in 1usize..5, pages in 1usize..4, compress in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions { segment_size: pages * PAGE_SIZE, fsync: FsyncPolicy::Never, compress };
        let recs: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, &n)| payload(i as u64, n)).collect();
        {
            let wal = Wal::open(dir.path(), opts).unwrap();
            for chunk in recs.chunks(batch) {
                let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
                wal.log(&refs).unwrap();
            }
        }
        prop_assert_eq!(read_all(dir.path()), recs.clone());

        // Reopening starts a new segment and appends after everything.
        let wal = Wal::open(dir.path(), opts).unwrap();
        wal.log(&[b"after reopen"]).unwrap();
        drop(wal);
        let mut want = recs;
        want.push(b"after reopen".to_vec());
        prop_assert_eq!(read_all(dir.path()), want);
    }

    #[test]
    fn segment_reader_never_panics_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..3 * PAGE_SIZE)) {
        let mut r = SegmentReader::new(Cursor::new(b));
        for _ in 0..10_000 {
            match r.next_record() {
                Ok(Some(rec)) => { let _ = cairn_wal::record::decode(&rec); }
                Ok(None) | Err(_) => break,
            }
        }
    }

    #[test]
    fn segment_reader_survives_flipped_bytes(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8)) {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        for i in 0..20u64 {
            wal.log(&[&payload(i, (i as usize * 3001) % 50_000)]).unwrap();
        }
        drop(wal);
        let mut bytes = std::fs::read(segment_path(dir.path(), 0)).unwrap();
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        let mut r = SegmentReader::new(Cursor::new(bytes));
        while let Ok(Some(_)) = r.next_record() {}
    }
}

#[test]
fn closed_segments_are_whole_pages_and_records_stay_inside_one_segment() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 2 * PAGE_SIZE,
        fsync: FsyncPolicy::Never,
        compress: false,
    };
    let wal = Wal::open(dir.path(), opts).unwrap();
    for i in 0..30u64 {
        wal.log(&[&payload(i, 5000)]).unwrap();
    }
    // A record bigger than a segment gets a segment of its own.
    wal.log(&[&payload(99, 3 * PAGE_SIZE)]).unwrap();
    let (first, last) = wal.segment_range().unwrap();
    assert_eq!(first, 0);
    assert!(last >= 3, "expected several segments, got {first}..{last}");
    drop(wal);
    for s in first..last {
        let len = std::fs::metadata(segment_path(dir.path(), s))
            .unwrap()
            .len();
        assert_eq!(len % PAGE_SIZE as u64, 0, "segment {s} is {len} bytes");
        // Each segment reads on its own.
        let f = std::fs::File::open(segment_path(dir.path(), s)).unwrap();
        let mut r = SegmentReader::new(f);
        while r.next_record().unwrap().is_some() {}
    }
    let got = read_all(dir.path());
    assert_eq!(got.len(), 31);
    assert_eq!(got[30], payload(99, 3 * PAGE_SIZE));
}

#[test]
fn next_segment_and_truncate() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    wal.log(&[b"a"]).unwrap();
    assert_eq!(wal.next_segment().unwrap(), 1);
    wal.log(&[b"b"]).unwrap();
    assert_eq!(wal.next_segment().unwrap(), 2);
    wal.log(&[b"c"]).unwrap();
    assert_eq!(wal.segment_range().unwrap(), (0, 2));
    // The active segment survives any truncation.
    wal.truncate(100).unwrap();
    assert_eq!(wal.segment_range().unwrap(), (2, 2));
    wal.sync().unwrap();
    assert_eq!(read_all(dir.path()), vec![b"c".to_vec()]);
}

#[test]
fn compression_flags_records_that_shrink_and_keeps_the_rest_as_is() {
    for compress in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            compress,
            ..WalOptions::default()
        };
        let wal = Wal::open(dir.path(), opts).unwrap();
        // Seed 2 draws from four byte values (shrinks); seed 3 does not.
        let (small, random) = (payload(2, 1000), payload(3, 1000));
        wal.log(&[&small]).unwrap();
        wal.log(&[&random]).unwrap();
        drop(wal);
        let b = std::fs::read(segment_path(dir.path(), 0)).unwrap();
        let len = |at: usize| usize::from(u16::from_be_bytes([b[at + 1], b[at + 2]]));
        assert_eq!(b[0] & 0x08 != 0, compress, "type {:#x}", b[0]);
        assert_eq!(len(0) < 1000, compress, "{}", len(0));
        let second = 7 + len(0);
        assert_eq!(
            b[second] & 0x08,
            0,
            "an incompressible record is stored as is"
        );
        assert_eq!(len(second), 1000);
        assert_eq!(read_all(dir.path()), vec![small, random]);
    }
}

#[test]
fn bad_segment_size_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for size in [0, 1000, PAGE_SIZE + 1] {
        let opts = WalOptions {
            segment_size: size,
            fsync: FsyncPolicy::Never,
            compress: true,
        };
        assert!(Wal::open(dir.path(), opts).is_err());
    }
}

proptest! {
    #[test]
    fn framed_arbitrary_records_read_back_and_decode_without_panic(
        recs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40_000), 0..6),
    ) {
        let refs: Vec<&[u8]> = recs.iter().map(Vec::as_slice).collect();
        let seg = cairn_wal::fragment::frame_segment(&refs);
        let mut r = SegmentReader::new(Cursor::new(seg));
        let mut got = Vec::new();
        while let Some(rec) = r.next_record().unwrap() {
            let _ = cairn_wal::record::decode(&rec);
            got.push(rec);
        }
        prop_assert_eq!(got, recs);
    }
}
