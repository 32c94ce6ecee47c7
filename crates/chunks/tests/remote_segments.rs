//! Chunk segments read by byte range (a block in object storage): every
//! chunk reads back as through the mapped reader, damage is reported as
//! corruption of the named object, and no reference makes it panic.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::sync::Arc;

use cairn_chunks::{ChunkReader, ChunkWriter, ChunksError};
use cairn_codec::{RangeRead, XorChunk, ENCODING_XOR};
use proptest::prelude::*;

struct Named(String, Vec<u8>);

impl RangeRead for Named {
    fn size(&self) -> u64 {
        self.1.len() as u64
    }
    fn read_at(&self, off: u64, len: u64) -> std::io::Result<Vec<u8>> {
        self.1.read_at(off, len)
    }
    fn name(&self) -> String {
        self.0.clone()
    }
}

fn xor_chunk(seed: i64, n: usize) -> Vec<u8> {
    let mut c = XorChunk::new();
    for i in 0..n as i64 {
        c.append(seed + i * 15_000, (seed + i) as f64 * 0.5);
    }
    c.into_bytes()
}

/// Writes `chunks` into segments of at most `seg` bytes; returns the refs
/// and the segment files' bytes.
fn write(chunks: &[Vec<u8>], seg: u64) -> (tempfile::TempDir, Vec<u64>, Vec<Vec<u8>>) {
    let dir = tempfile::tempdir().unwrap();
    let cdir = dir.path().join("chunks");
    let mut w = ChunkWriter::with_segment_size(&cdir, seg).unwrap();
    let refs = chunks
        .iter()
        .map(|c| w.write_chunk(ENCODING_XOR, c).unwrap())
        .collect();
    w.finish().unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&cdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let segs = names.iter().map(|p| std::fs::read(p).unwrap()).collect();
    (dir, refs, segs)
}

fn remote(segs: &[Vec<u8>]) -> Vec<Arc<dyn RangeRead>> {
    segs.iter()
        .enumerate()
        .map(|(i, b)| {
            Arc::new(Named(format!("01BLOCK/chunks/{:06}", i + 1), b.clone())) as Arc<dyn RangeRead>
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn remote_segments_read_as_mapped_ones(
        sizes in proptest::collection::vec(1usize..200, 1..40),
        seg in 600u64..4000,
        probes in proptest::collection::vec(any::<u64>(), 0..40),
    ) {
        let chunks: Vec<Vec<u8>> = sizes.iter().enumerate().map(|(i, n)| xor_chunk(i as i64 * 7, *n)).collect();
        let (dir, refs, segs) = write(&chunks, seg);
        let mapped = ChunkReader::open(&dir.path().join("chunks")).unwrap();
        let r = ChunkReader::remote(remote(&segs)).unwrap();
        prop_assert_eq!(r.num_segments(), mapped.num_segments());
        prop_assert_eq!(r.size(), mapped.size());
        for (c, rf) in chunks.iter().zip(&refs) {
            let (enc, data) = r.chunk(*rf).unwrap();
            prop_assert_eq!(enc, ENCODING_XOR);
            prop_assert_eq!(&data[..], &c[..]);
        }
        // Any reference: the same verdict as the mapped reader, no panic.
        for p in probes {
            let p = p % (1 << 34);
            prop_assert_eq!(r.chunk(p).is_ok(), mapped.chunk(p).is_ok());
        }
    }
}

#[test]
fn damage_in_a_remote_segment_is_corruption_of_that_object() {
    let chunks: Vec<Vec<u8>> = (0..20).map(|i| xor_chunk(i, 50)).collect();
    let (_dir, refs, mut segs) = write(&chunks, 1 << 20);
    let victim = refs[3] as usize + 4;
    segs[0][victim] ^= 0x40;
    let r = ChunkReader::remote(remote(&segs)).unwrap();
    match r.chunk(refs[3]) {
        Err(ChunksError::Corruption { path, offset, .. }) => {
            assert_eq!(path, std::path::PathBuf::from("01BLOCK/chunks/000001"));
            assert_eq!(offset, refs[3]);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(r.chunk(refs[4]).is_ok(), "the other chunks still read");
    // A segment cut short: the chunk past its end is corruption.
    let cut = segs[0][..refs[10] as usize + 3].to_vec();
    let r = ChunkReader::remote(remote(&[cut])).unwrap();
    assert!(matches!(
        r.chunk(refs[10]),
        Err(ChunksError::Corruption { .. })
    ));
    // A segment without the segment header is refused when opened.
    let mut bad = segs[0].clone();
    bad[0] = 0;
    assert!(ChunkReader::remote(remote(&[bad])).is_err());
    assert!(ChunkReader::remote(remote(&[vec![0x85, 0xBD]])).is_err());
    // Walking a remote segment is refused with an error, not attempted.
    let r = ChunkReader::remote(remote(&segs)).unwrap();
    assert!(matches!(r.iter().next(), Some(Err(_))));
}
