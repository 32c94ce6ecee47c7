//! Block chunk segment files: round trips, segment cutting, refs, corruption.

use cairn_chunks::{unpack_chunk_ref, ChunkReader, ChunkWriter, ChunksError};
use cairn_codec::{XorChunk, ENCODING_XOR};
use proptest::prelude::*;

fn xor_chunk(seed: i64, n: usize) -> Vec<u8> {
    let mut c = XorChunk::new();
    for i in 0..n as i64 {
        c.append(seed + i * 15_000, (seed + i) as f64 * 0.5);
    }
    c.into_bytes()
}

#[test]
fn write_read_round_trip_and_ref_layout() {
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("chunks");
    let mut w = ChunkWriter::create(&cdir).unwrap();
    let chunks: Vec<Vec<u8>> = (0..50)
        .map(|i| xor_chunk(i * 1000, 1 + i as usize))
        .collect();
    let refs: Vec<u64> = chunks
        .iter()
        .map(|c| w.write_chunk(ENCODING_XOR, c).unwrap())
        .collect();
    w.finish().unwrap();
    // First chunk sits right after the 8-byte header of segment index 0 (file 000001).
    assert_eq!(refs[0], 8);
    assert!(cdir.join("000001").exists());
    let raw = std::fs::read(cdir.join("000001")).unwrap();
    assert_eq!(&raw[..8], &[0x85, 0xBD, 0x40, 0xDD, 1, 0, 0, 0]);

    let r = ChunkReader::open(&cdir).unwrap();
    for (c, rf) in chunks.iter().zip(&refs) {
        let (enc, data) = r.chunk(*rf).unwrap();
        assert_eq!(enc, ENCODING_XOR);
        assert_eq!(data, &c[..]);
    }
    let walked: Vec<_> = r.iter().map(|x| x.unwrap()).collect();
    assert_eq!(walked.len(), chunks.len());
    for ((rf, enc, data), (c, want_ref)) in walked.iter().zip(chunks.iter().zip(&refs)) {
        assert_eq!(rf, want_ref);
        assert_eq!(*enc, ENCODING_XOR);
        assert_eq!(*data, &c[..]);
    }
}

#[test]
fn segments_are_cut_at_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("chunks");
    // Room for the header plus a little more than one 300-byte chunk.
    let mut w = ChunkWriter::with_segment_size(&cdir, 8 + 320).unwrap();
    let data = vec![0u8; 300];
    let refs: Vec<u64> = (0..5)
        .map(|_| w.write_chunk(ENCODING_XOR, &data).unwrap())
        .collect();
    assert_eq!(w.num_segments(), 5);
    w.finish().unwrap();
    for (i, rf) in refs.iter().enumerate() {
        assert_eq!(unpack_chunk_ref(*rf), (i as u32, 8));
    }
    for n in 1..=5 {
        assert!(cdir.join(format!("{n:06}")).exists());
    }
    let r = ChunkReader::open(&cdir).unwrap();
    assert_eq!(r.num_segments(), 5);
    assert_eq!(r.iter().count(), 5);
    assert_eq!(r.chunk(refs[4]).unwrap().1, &data[..]);
}

#[test]
fn create_refuses_a_directory_with_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ChunkWriter::create(dir.path()).unwrap();
    w.write_chunk(ENCODING_XOR, &xor_chunk(0, 3)).unwrap();
    w.finish().unwrap();
    assert!(matches!(
        ChunkWriter::create(dir.path()),
        Err(ChunksError::NotEmpty { .. })
    ));
}

#[test]
fn corruption_and_bad_refs_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = ChunkWriter::create(dir.path()).unwrap();
    let a = w.write_chunk(ENCODING_XOR, &xor_chunk(0, 10)).unwrap();
    let b = w.write_chunk(ENCODING_XOR, &xor_chunk(7, 10)).unwrap();
    w.finish().unwrap();
    let path = dir.path().join("000001");
    let mut raw = std::fs::read(&path).unwrap();
    // Flip a data byte of the second chunk.
    let off = (b & 0xffff_ffff) as usize + 5;
    raw[off] ^= 0x40;
    std::fs::write(&path, &raw).unwrap();
    let r = ChunkReader::open(dir.path()).unwrap();
    assert!(r.chunk(a).is_ok());
    match r.chunk(b) {
        Err(e @ ChunksError::Corruption { .. }) => {
            assert_eq!(e.corrupt_file_number(), Some(1));
            assert!(e.to_string().contains("checksum"), "{e}");
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    let results: Vec<_> = r.iter().collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(ChunksError::Corruption { .. })));
    assert!(matches!(
        r.chunk(1 << 32 | 8),
        Err(ChunksError::BadRef { .. })
    ));
    assert!(matches!(r.chunk(3), Err(ChunksError::BadRef { .. })));
    assert!(matches!(
        r.chunk(1_000_000),
        Err(ChunksError::Corruption { .. })
    ));

    raw[0] = 0;
    std::fs::write(&path, &raw).unwrap();
    match ChunkReader::open(dir.path()) {
        Err(ChunksError::Corruption { what, .. }) => assert_eq!(what, "segment magic"),
        other => panic!("expected bad magic, got {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_segment_bytes_error_instead_of_panic(body in proptest::collection::vec(any::<u8>(), 0..300), probe: u32) {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = vec![0x85, 0xBD, 0x40, 0xDD, 1, 0, 0, 0];
        raw.extend_from_slice(&body);
        std::fs::write(dir.path().join("000001"), &raw).unwrap();
        let r = ChunkReader::open(dir.path()).unwrap();
        for (_, _, data) in r.iter().flatten() {
            prop_assert!(data.len() <= body.len());
        }
        let _ = r.chunk(u64::from(probe));
        // Arbitrary whole files too (bad headers must be errors).
        std::fs::write(dir.path().join("000001"), &body).unwrap();
        if let Ok(r) = ChunkReader::open(dir.path()) {
            let _ = r.iter().count();
        }
    }

    #[test]
    fn round_trip_any_chunks(chunks in proptest::collection::vec((1u8..4, proptest::collection::vec(any::<u8>(), 0..400)), 1..40),
                             seg in 200u64..2000) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::with_segment_size(dir.path(), seg).unwrap();
        let refs: Vec<u64> = chunks.iter().map(|(e, d)| w.write_chunk(*e, d).unwrap()).collect();
        w.finish().unwrap();
        let r = ChunkReader::open(dir.path()).unwrap();
        for ((e, d), rf) in chunks.iter().zip(&refs) {
            let (enc, data) = r.chunk(*rf).unwrap();
            prop_assert_eq!(enc, *e);
            prop_assert_eq!(data, &d[..]);
        }
        let walked: Vec<u64> = r.iter().map(|x| x.unwrap().0).collect();
        prop_assert_eq!(walked, refs);
    }
}
