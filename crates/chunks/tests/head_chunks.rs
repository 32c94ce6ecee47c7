//! Head chunk files (`chunks_head/`): write/read, startup iteration,
//! crash leftovers, truncation, corruption.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use cairn_chunks::{
    ChunksError, HeadChunkMeta, HeadChunkOptions, HeadChunkReader, HeadChunkWriter,
};
use cairn_codec::{XorChunk, ENCODING_XOR};
use proptest::prelude::*;

fn chunk(start: i64, n: i64) -> Vec<u8> {
    let mut c = XorChunk::new();
    for i in 0..n {
        c.append(start + i * 15_000, i as f64);
    }
    c.into_bytes()
}

fn small() -> HeadChunkOptions {
    HeadChunkOptions {
        max_file_size: 2048,
    }
}

fn collect(w: &mut HeadChunkWriter) -> Vec<HeadChunkMeta> {
    let mut v = Vec::new();
    w.iterate_all(|m| {
        v.push(m);
        Ok(())
    })
    .unwrap();
    v
}

#[test]
fn write_read_iterate_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let hdir = dir.path().join("chunks_head");
    let opts = HeadChunkOptions { max_file_size: 512 };
    let mut w = HeadChunkWriter::open_with_options(&hdir, opts).unwrap();
    let mut written = Vec::new();
    for s in 1..=20u64 {
        let start = s as i64 * 1_000_000;
        let data = chunk(start, 10 + s as i64);
        let maxt = start + (9 + s as i64) * 15_000;
        let r = w.write(s, start, maxt, ENCODING_XOR, &data).unwrap();
        // Readable immediately, before any sync.
        let (enc, got) = w.chunk(r).unwrap();
        assert_eq!((enc, got), (ENCODING_XOR, &data[..]));
        written.push((s, r, start, maxt, data));
    }
    // First record of file 000001 sits right after the header.
    assert_eq!(written[0].1, (1u64 << 32) | 8);
    assert!(w.file_numbers().len() > 1, "small files force cuts");
    let metas = collect(&mut w);
    assert_eq!(metas.len(), written.len());
    for (m, (s, r, mint, maxt, data)) in metas.iter().zip(&written) {
        assert_eq!(m.series_ref, *s);
        assert_eq!(m.chunk_ref, *r);
        assert_eq!((m.min_time, m.max_time), (*mint, *maxt));
        assert_eq!(
            m.num_samples as usize,
            XorChunk::from_bytes(data.clone()).unwrap().num_samples()
        );
    }
    w.close().unwrap();

    // On-disk layout: header, then series ref / mint / maxt / encoding.
    let raw = std::fs::read(hdir.join("000001")).unwrap();
    assert_eq!(&raw[..8], &[0x01, 0x30, 0xBC, 0x91, 1, 0, 0, 0]);
    assert_eq!(&raw[8..16], &1u64.to_be_bytes());
    assert_eq!(raw[32], ENCODING_XOR);

    let r = HeadChunkReader::open(&hdir).unwrap();
    for (_, rf, _, _, data) in &written {
        assert_eq!(r.chunk(*rf).unwrap().1, &data[..]);
    }
    let mut n = 0;
    r.iterate(|_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, written.len());

    // Reopening never appends to old files: the next write starts a new one.
    let before = HeadChunkReader::open(&hdir).unwrap().file_numbers();
    let mut w = HeadChunkWriter::open_with_options(&hdir, opts).unwrap();
    assert_eq!(collect(&mut w).len(), written.len());
    let r2 = w.write(99, 0, 1, ENCODING_XOR, &chunk(0, 2)).unwrap();
    assert_eq!(r2 >> 32, u64::from(*before.last().unwrap()) + 1);
    assert_eq!(collect(&mut w).len(), written.len() + 1);
}

#[test]
fn crash_leftovers_zero_tail_and_empty_last_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HeadChunkWriter::open_with_options(dir.path(), small()).unwrap();
    w.write(1, 0, 10, ENCODING_XOR, &chunk(0, 5)).unwrap();
    w.write(2, 0, 20, ENCODING_XOR, &chunk(0, 6)).unwrap();
    // Simulate a crash: the preallocated file keeps its zero tail.
    std::mem::forget(w);
    let len = std::fs::metadata(dir.path().join("000001")).unwrap().len();
    assert_eq!(len, 2048, "open file is preallocated");
    // A crash right after creating the next file leaves it empty.
    std::fs::write(dir.path().join("000002"), b"").unwrap();
    let mut w = HeadChunkWriter::open_with_options(dir.path(), small()).unwrap();
    assert!(
        !dir.path().join("000002").exists(),
        "empty last file removed"
    );
    let metas = collect(&mut w);
    assert_eq!(
        metas.iter().map(|m| m.series_ref).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[test]
fn truncate_deletes_only_old_whole_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HeadChunkWriter::open_with_options(dir.path(), small()).unwrap();
    // One file per time window: cut after each group.
    for (i, maxt) in [100i64, 200, 300, 400].iter().enumerate() {
        w.write(i as u64 + 1, maxt - 50, *maxt, ENCODING_XOR, &chunk(0, 3))
            .unwrap();
        w.cut_new_file().unwrap();
    }
    w.write(9, 450, 500, ENCODING_XOR, &chunk(0, 3)).unwrap();
    assert_eq!(w.file_numbers(), [1, 2, 3, 4, 5]);
    // Files with maxt < 250 go: 000001 (100) and 000002 (200).
    assert_eq!(w.truncate(250).unwrap(), [1, 2]);
    assert_eq!(w.file_numbers(), [3, 4, 5]);
    assert!(!dir.path().join("000001").exists());
    // The open file (maxt 500) is never deleted, but gets finalized so a
    // later truncation can remove it.
    assert_eq!(w.truncate(i64::MAX).unwrap(), [3, 4, 5]);
    assert!(w.file_numbers().is_empty());
    let r = w.write(1, 0, 1, ENCODING_XOR, &chunk(0, 2)).unwrap();
    assert_eq!(r >> 32, 6, "numbering continues after deleted files");

    // After a reopen, maxt comes from scanning the files.
    w.close().unwrap();
    assert_eq!(
        HeadChunkReader::open(dir.path()).unwrap().file_numbers(),
        [6]
    );
    let mut w = HeadChunkWriter::open_with_options(dir.path(), small()).unwrap();
    assert_eq!(w.truncate(1).unwrap(), Vec::<u32>::new());
    assert_eq!(w.truncate(2).unwrap(), [6]);
}

#[test]
fn corruption_is_reported_with_the_file_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = HeadChunkWriter::open_with_options(dir.path(), small()).unwrap();
    let a = w.write(1, 0, 10, ENCODING_XOR, &chunk(0, 5)).unwrap();
    w.cut_new_file().unwrap();
    let b = w.write(2, 0, 20, ENCODING_XOR, &chunk(0, 6)).unwrap();
    w.close().unwrap();
    let p2 = dir.path().join("000002");
    let mut raw = std::fs::read(&p2).unwrap();
    raw[(b & 0xffff_ffff) as usize + 30] ^= 0x10;
    std::fs::write(&p2, &raw).unwrap();

    let mut w = HeadChunkWriter::open_with_options(dir.path(), small()).unwrap();
    assert!(w.chunk(a).is_ok());
    let err = w.chunk(b).unwrap_err();
    assert!(matches!(err, ChunksError::Corruption { .. }), "{err}");
    let mut seen = 0;
    let err = w
        .iterate_all(|_| {
            seen += 1;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(seen, 1);
    assert_eq!(err.corrupt_file_number(), Some(2));
    assert_eq!(w.delete_from(2).unwrap(), [2]);
    assert_eq!(collect(&mut w).len(), 1);
    assert!(matches!(w.chunk(b), Err(ChunksError::BadRef { .. })));

    // Gaps in numbering are refused.
    w.close().unwrap();
    std::fs::copy(dir.path().join("000001"), dir.path().join("000003")).unwrap();
    assert!(matches!(
        HeadChunkWriter::open(dir.path()),
        Err(ChunksError::NotSequential {
            prev: 1,
            next: 3,
            ..
        })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn arbitrary_file_bytes_error_instead_of_panic(body in proptest::collection::vec(any::<u8>(), 0..400), probe: u32) {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = vec![0x01, 0x30, 0xBC, 0x91, 1, 0, 0, 0];
        raw.extend_from_slice(&body);
        std::fs::write(dir.path().join("000001"), &raw).unwrap();
        let r = HeadChunkReader::open(dir.path()).unwrap();
        let _ = r.iterate(|_| Ok(()));
        let _ = r.chunk((1u64 << 32) | u64::from(probe));
        let mut w = HeadChunkWriter::open_with_options(dir.path(), small()).unwrap();
        let _ = w.iterate_all(|_| Ok(()));
        let _ = w.truncate(i64::MAX);
    }

    #[test]
    fn round_trip_any_records(recs in proptest::collection::vec((1u64..u64::MAX, any::<i64>(), any::<i64>(), 1u8..4, proptest::collection::vec(any::<u8>(), 0..300)), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = HeadChunkWriter::open_with_options(dir.path(), small()).unwrap();
        let refs: Vec<u64> = recs.iter().map(|(s, a, b, e, d)| w.write(*s, *a, *b, *e, d).unwrap()).collect();
        for ((_, _, _, e, d), r) in recs.iter().zip(&refs) {
            let (enc, data) = w.chunk(*r).unwrap();
            prop_assert_eq!(enc, *e);
            prop_assert_eq!(data, &d[..]);
        }
        w.close().unwrap();
        let mut w = HeadChunkWriter::open_with_options(dir.path(), small()).unwrap();
        let got = collect(&mut w);
        prop_assert_eq!(got.len(), recs.len());
        for (m, ((s, a, b, e, _), r)) in got.iter().zip(recs.iter().zip(&refs)) {
            prop_assert_eq!((m.series_ref, m.min_time, m.max_time, m.encoding, m.chunk_ref), (*s, *a, *b, *e, *r));
        }
    }
}
