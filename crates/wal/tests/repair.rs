//! Damaged tails are cut back to their last complete record (with a warning);
//! damage in an older segment is a named error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cairn_wal::fragment::PAGE_SIZE;
use cairn_wal::{replay_raw, segment_path, SegmentReader, Wal, WalError, WalOptions};

fn payload(i: u64, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j * 7) as u8).collect()
}

/// Records of varying size; every fifth spans pages.
fn records(n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            payload(
                i,
                if i % 5 == 4 {
                    70_000
                } else {
                    100 + i as usize * 37
                },
            )
        })
        .collect()
}

fn write(dir: &Path, recs: &[Vec<u8>]) {
    let wal = Wal::open(dir, WalOptions::default()).unwrap();
    for r in recs {
        wal.log(&[r]).unwrap();
    }
}

fn read_all(dir: &Path) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    replay_raw(dir, |r| {
        got.push(r.to_vec());
        Ok(())
    })
    .unwrap();
    got
}

/// (start, end) byte offsets of each record in a clean segment.
fn extents(bytes: &[u8]) -> Vec<(u64, u64)> {
    let mut r = SegmentReader::new(Cursor::new(bytes));
    let mut out = Vec::new();
    while r.next_record().unwrap().is_some() {
        out.push((r.record_offset(), r.valid_prefix()));
    }
    out
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a subscriber capturing log lines; returns them.
fn with_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    let cap = Captured::default();
    let c2 = cap.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || c2.clone())
        .with_ansi(false)
        .finish();
    let out = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    (out, text)
}

#[test]
fn torn_tail_is_truncated_to_the_valid_prefix_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(10); // the last one spans pages
    write(dir.path(), &recs);
    let seg = segment_path(dir.path(), 0);
    let bytes = std::fs::read(&seg).unwrap();
    let ext = extents(&bytes);
    assert_eq!(ext.len(), 10);
    let (last_start, last_end) = ext[9];
    // Cut in the middle of the last record, past its first page.
    let cut = last_start + (last_end - last_start) * 2 / 3;
    std::fs::write(&seg, &bytes[..cut as usize]).unwrap();

    // Replay alone tolerates the torn tail and reports it.
    let st = replay_raw(dir.path(), |_| Ok(())).unwrap();
    let (tseg, toff) = st.torn_tail.expect("torn tail reported");
    assert_eq!(tseg, 0);
    assert!(
        (last_start..cut).contains(&toff),
        "{toff} not in {last_start}..{cut}"
    );
    assert_eq!(st.records, 9);

    let (wal, logs) = with_logs(|| Wal::open(dir.path(), WalOptions::default()));
    let wal = wal.unwrap();
    assert!(logs.contains("WARN"), "no warning logged: {logs:?}");
    assert!(logs.contains("damaged tail"), "{logs:?}");
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), ext[8].1);
    wal.log(&[b"new"]).unwrap();
    drop(wal);
    let mut want = recs[..9].to_vec();
    want.push(b"new".to_vec());
    assert_eq!(read_all(dir.path()), want);
}

#[test]
fn flipped_bytes_in_the_last_page_keep_records_before_them() {
    for which in [4usize, 5, 8] {
        let dir = tempfile::tempdir().unwrap();
        let recs = records(9);
        write(dir.path(), &recs);
        let seg = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&seg).unwrap();
        let ext = extents(&bytes);
        let last_page_start = ((bytes.len() - 1) / PAGE_SIZE * PAGE_SIZE) as u64;
        let (s, e) = ext[which];
        // A byte of record `which` that lies in the last page.
        assert!(
            e > last_page_start,
            "record {which} is not in the last page"
        );
        let at = s.max(last_page_start) + (e - s.max(last_page_start)) / 2;
        assert!(at >= last_page_start && at < e);
        bytes[at as usize] ^= 0x5a;
        std::fs::write(&seg, &bytes).unwrap();

        let (wal, logs) = with_logs(|| Wal::open(dir.path(), WalOptions::default()));
        drop(wal.unwrap());
        assert!(logs.contains("damaged tail"), "{logs:?}");
        assert_eq!(
            read_all(dir.path()),
            recs[..which].to_vec(),
            "flip in record {which}"
        );
    }
}

#[test]
fn corruption_in_an_older_segment_is_a_named_error() {
    let dir = tempfile::tempdir().unwrap();
    let recs = records(6);
    {
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        for r in &recs {
            wal.log(&[r]).unwrap();
        }
        wal.next_segment().unwrap();
        wal.log(&[b"in segment one"]).unwrap();
    }
    let seg = segment_path(dir.path(), 0);
    let mut bytes = std::fs::read(&seg).unwrap();
    let ext = extents(&bytes);
    let (s, _) = ext[2];
    bytes[s as usize + 10] ^= 0xff; // inside record 2's data
    std::fs::write(&seg, &bytes).unwrap();

    let err = replay_raw(dir.path(), |_| Ok(())).unwrap_err();
    match err {
        WalError::Corruption {
            segment, offset, ..
        } => {
            assert_eq!(segment, 0);
            assert_eq!(offset, s);
        }
        other => panic!("unexpected {other:?}"),
    }
    // Opening does not touch older segments; replay still refuses.
    let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
    drop(wal);
    assert_eq!(std::fs::read(&seg).unwrap(), bytes);
    assert!(matches!(
        replay_raw(dir.path(), |_| Ok(())),
        Err(WalError::Corruption { segment: 0, .. })
    ));
}

#[test]
fn a_gap_between_segments_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        wal.log(&[b"a"]).unwrap();
        wal.next_segment().unwrap();
        wal.log(&[b"b"]).unwrap();
        wal.next_segment().unwrap();
        wal.log(&[b"c"]).unwrap();
    }
    std::fs::remove_file(segment_path(dir.path(), 1)).unwrap();
    assert!(matches!(
        replay_raw(dir.path(), |_| Ok(())),
        Err(WalError::SegmentGap {
            expected: 1,
            found: 2,
            ..
        })
    ));
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(WalError::SegmentGap { .. })
    ));
}

#[test]
fn zstd_records_are_unsupported_not_repaired_away() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &records(3));
    let seg = segment_path(dir.path(), 0);
    let mut bytes = std::fs::read(&seg).unwrap();
    let ext = extents(&bytes);
    // Mark the last record as zstd-compressed (type byte | 0x10); the CRC
    // covers only the data, so the fragment stays well formed.
    bytes[ext[2].0 as usize] |= 0x10;
    std::fs::write(&seg, &bytes).unwrap();
    assert!(matches!(
        Wal::open(dir.path(), WalOptions::default()),
        Err(WalError::Unsupported { segment: 0, .. })
    ));
    assert_eq!(std::fs::read(&seg).unwrap(), bytes, "segment was modified");
    assert!(matches!(
        replay_raw(dir.path(), |_| Ok(())),
        Err(WalError::Unsupported { .. })
    ));
}
