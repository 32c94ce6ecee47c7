//! Frozen fixtures under tests/fixtures/chunks: a promtool-written block
//! segment, a head chunk file, and a corrupt copy of each.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use cairn_chunks::{ChunkReader, ChunksError, HeadChunkReader, HeadChunkWriter};
use cairn_codec::{decode_all, XorChunk, ENCODING_XOR};
use std::path::PathBuf;

const GO_NAN_BITS: u64 = 0x7FF8_0000_0000_0001;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/chunks")
}

/// Samples of `source.om` per metric, converted as Prometheus does.
fn source_samples() -> Vec<(String, Vec<(i64, f64)>)> {
    let text = std::fs::read_to_string(fixtures().join("promtool-2.42/source.om")).unwrap();
    let mut out: Vec<(String, Vec<(i64, f64)>)> = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut parts = line.split(' ');
        let (name, v, t) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let t = (t.parse::<f64>().unwrap() * 1000.0) as i64;
        let v = match v {
            "NaN" => f64::from_bits(GO_NAN_BITS),
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            _ => v.parse().unwrap(),
        };
        match out.last_mut() {
            Some((n, s)) if n == name => s.push((t, v)),
            _ => out.push((name.to_string(), vec![(t, v)])),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
    s.iter().map(|(t, v)| (*t, v.to_bits())).collect()
}

#[test]
fn promtool_segment_decodes_to_its_source_and_reencodes_identically() {
    let r = ChunkReader::open(&fixtures().join("promtool-2.42")).unwrap();
    let chunks: Vec<_> = r.iter().map(|c| c.unwrap()).collect();
    assert_eq!(chunks.len(), 3);
    let mut decoded: Vec<(i64, f64)> = Vec::new();
    let mut counts = Vec::new();
    for (rf, enc, data) in &chunks {
        assert_eq!(*enc, ENCODING_XOR);
        assert_eq!(r.chunk(*rf).unwrap().1, *data);
        let s = decode_all(data).unwrap();
        counts.push(s.len());
        let mut ours = XorChunk::new();
        for &(t, v) in &s {
            ours.append(t, v);
        }
        assert_eq!(ours.bytes(), *data);
        decoded.extend(s);
    }
    assert_eq!(counts, [143, 7, 40]);
    let want: Vec<(i64, f64)> = source_samples().into_iter().flat_map(|(_, s)| s).collect();
    assert_eq!(bits(&decoded), bits(&want));
}

#[test]
fn corrupt_segment_fails_with_checksum_corruption() {
    let r = ChunkReader::open(&fixtures().join("corrupt-crc")).unwrap();
    let first = r.iter().next().unwrap();
    match first {
        Err(ChunksError::Corruption { what, offset, .. }) => {
            assert_eq!(what, "chunk checksum");
            assert_eq!(offset, 8);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert!(matches!(r.chunk(8), Err(ChunksError::Corruption { .. })));
}

#[test]
fn head_fixture_iterates_and_reads() {
    let dir = fixtures().join("head-v1");
    let r = HeadChunkReader::open(&dir).unwrap();
    let mut metas = Vec::new();
    r.iterate(|m| {
        metas.push(m);
        Ok(())
    })
    .unwrap();
    let series: Vec<u64> = metas.iter().map(|m| m.series_ref).collect();
    assert_eq!(series, [1, 1, 2]);
    assert_eq!(
        metas.iter().map(|m| m.num_samples).collect::<Vec<_>>(),
        [143, 7, 40]
    );
    assert_eq!(metas[0].chunk_ref, (1u64 << 32) | 8);
    assert_eq!(metas[2].min_time, 1_700_000_000_250);
    // Payloads are the promtool chunks.
    let seg = ChunkReader::open(&fixtures().join("promtool-2.42")).unwrap();
    for (m, c) in metas.iter().zip(seg.iter()) {
        let (_, _, data) = c.unwrap();
        assert_eq!(r.chunk(m.chunk_ref).unwrap(), (ENCODING_XOR, data));
        let s = decode_all(data).unwrap();
        assert_eq!(s.first().unwrap().0, m.min_time);
        assert_eq!(s.last().unwrap().0, m.max_time);
    }
}

#[test]
fn corrupt_head_fixture_fails_with_corruption() {
    let src = fixtures().join("head-v1-corrupt");
    let r = HeadChunkReader::open(&src).unwrap();
    let mut seen = 0;
    let err = r
        .iterate(|_| {
            seen += 1;
            Ok(())
        })
        .unwrap_err();
    assert_eq!(seen, 1);
    match &err {
        ChunksError::Corruption { what, .. } => assert_eq!(*what, "head chunk checksum"),
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(err.corrupt_file_number(), Some(1));
    // The writer (which may modify the directory) works on a copy.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(src.join("000001"), tmp.path().join("000001")).unwrap();
    let mut w = HeadChunkWriter::open(tmp.path()).unwrap();
    assert!(matches!(
        w.iterate_all(|_| Ok(())),
        Err(ChunksError::Corruption { .. })
    ));
}
