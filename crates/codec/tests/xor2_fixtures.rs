//! Frozen XOR2 fixtures under tests/fixtures/xor2: sample sequences from
//! Prometheus's own tests and the chunk bytes Prometheus's encoder wrote
//! for them (see that folder's README.md). Encoding must give exactly those
//! bytes; every decoder must give back exactly those samples.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use cairn_codec::{
    xor2_decode, xor2_decode_all, xor2_decode_st, xor2_iter, CodecError, Xor2Chunk, STALE_NAN_BITS,
};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/xor2")
}

/// (st, t, value bits) of a `.samples` file.
fn read_samples(name: &str) -> Vec<(i64, i64, u64)> {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.samples"))).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "{name}: {l}");
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                u64::from_str_radix(f[2], 16).unwrap(),
            )
        })
        .collect()
}

fn read_chunk(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(format!("{name}.chunk"))).unwrap()
}

/// Every case with a `.samples` file, sorted.
fn cases() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".samples").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

fn encode(samples: &[(i64, i64, u64)]) -> Xor2Chunk {
    let mut c = Xor2Chunk::new();
    for &(st, t, v) in samples {
        c.append_st(st, t, f64::from_bits(v));
    }
    c
}

#[test]
fn there_are_fixtures() {
    let names = cases();
    assert!(names.len() >= 20, "{names:?}");
    for must in [
        "basic",
        "staleness",
        "more_than_127_zero_st",
        "benchmark_120",
    ] {
        assert!(names.iter().any(|n| n == must), "{must} missing");
    }
}

#[test]
fn encoding_matches_prometheus_bytes() {
    for name in cases() {
        let samples = read_samples(&name);
        let want = read_chunk(&name);
        let c = encode(&samples);
        assert_eq!(c.bytes(), &want[..], "{name}");
        assert_eq!(c.num_samples(), samples.len(), "{name}");
        // Cases without start timestamps encode the same through `append`.
        if samples.iter().all(|s| s.0 == 0) {
            let mut c = Xor2Chunk::new();
            for &(_, t, v) in &samples {
                c.append(t, f64::from_bits(v));
            }
            assert_eq!(c.into_bytes(), want, "{name} via append");
        }
    }
}

#[test]
fn decoding_gives_back_the_samples() {
    for name in cases() {
        let samples = read_samples(&name);
        let data = read_chunk(&name);

        let mut it = xor2_iter(&data);
        assert_eq!(it.num_samples(), samples.len(), "{name}");
        let mut got = Vec::new();
        while it.next() {
            let (t, v) = it.at();
            got.push((it.at_st(), t, v.to_bits()));
        }
        assert!(it.err().is_none(), "{name}: {:?}", it.err());
        assert_eq!(got, samples, "{name}: iterator");

        let mut bulk = Vec::new();
        let n = xor2_decode_st(&data, |st, t, v| bulk.push((st, t, v.to_bits()))).unwrap();
        assert_eq!(n, samples.len(), "{name}");
        assert_eq!(bulk, samples, "{name}: bulk");

        let mut tv = Vec::new();
        xor2_decode(&data, |t, v| tv.push((t, v.to_bits()))).unwrap();
        let want: Vec<(i64, u64)> = samples.iter().map(|s| (s.1, s.2)).collect();
        assert_eq!(tv, want, "{name}: bulk without st");
        let all: Vec<(i64, u64)> = xor2_decode_all(&data)
            .unwrap()
            .into_iter()
            .map(|(t, v)| (t, v.to_bits()))
            .collect();
        assert_eq!(all, want, "{name}: decode_all");
    }
}

#[test]
fn reopened_fixtures_keep_their_bytes_and_append_like_prometheus() {
    for name in cases() {
        let samples = read_samples(&name);
        let data = read_chunk(&name);
        // Reopening every prefix and appending the rest gives the whole chunk.
        for k in [0, 1, 2, samples.len() / 2, samples.len()] {
            let k = k.min(samples.len());
            let part = encode(&samples[..k]);
            let mut c = Xor2Chunk::from_bytes(part.bytes().to_vec()).unwrap();
            assert_eq!(c.bytes(), part.bytes(), "{name} at {k}");
            assert_eq!(c.num_samples(), k);
            for &(st, t, v) in &samples[k..] {
                c.append_st(st, t, f64::from_bits(v));
            }
            assert_eq!(c.bytes(), &data[..], "{name} resumed at {k}");
        }
    }
}

#[test]
fn stale_markers_are_decoded_bit_exact() {
    let samples = read_samples("staleness");
    let stale: Vec<i64> = samples
        .iter()
        .filter(|s| s.2 == STALE_NAN_BITS)
        .map(|s| s.1)
        .collect();
    assert_eq!(stale, [3000, 5000]);
}

#[test]
fn corrupt_truncated_fixture_is_an_error_after_the_intact_samples() {
    let data = read_chunk("corrupt-truncated");
    let whole = read_samples("benchmark_120");
    let mut it = xor2_iter(&data);
    let mut n = 0;
    while it.next() {
        let (t, v) = it.at();
        assert_eq!((t, v.to_bits()), (whole[n].1, whole[n].2));
        n += 1;
    }
    // Prometheus's iterator also stops with an error after 59 samples.
    assert_eq!(n, 59);
    assert!(
        matches!(it.err(), Some(CodecError::UnexpectedEof { .. })),
        "{:?}",
        it.err()
    );
    let mut bulk = 0;
    assert!(xor2_decode(&data, |_, _| bulk += 1).is_err());
    assert_eq!(bulk, 59);
    assert!(xor2_decode_all(&data).is_err());
    assert!(Xor2Chunk::from_bytes(data).is_err());
}

#[test]
fn corrupt_window_fixture_is_an_error() {
    let data = read_chunk("corrupt-bad-window");
    let mut it = xor2_iter(&data);
    assert!(it.next());
    assert!(it.next());
    assert!(!it.next());
    match it.err() {
        Some(CodecError::Corruption { what, found, .. }) => {
            assert_eq!(*what, "xor2 value window");
            assert_eq!(found, "31 + 64");
        }
        other => panic!("{other:?}"),
    }
    let mut bulk = 0;
    assert!(matches!(
        xor2_decode(&data, |_, _| bulk += 1),
        Err(CodecError::Corruption { .. })
    ));
    assert_eq!(bulk, 2);
    assert!(Xor2Chunk::from_bytes(data).is_err());
}

/// The bit layout of `hand_three_samples`, derived by hand from the format
/// (README.md walks through it).
#[test]
fn hand_checked_three_samples() {
    let want = [
        0x00, 0x03, // 3 samples
        0x00, // no start timestamps
        0xd0, 0x0f, // varint(1000)
        0x3f, 0xf0, 0, 0, 0, 0, 0, 0, // 1.0
        0xe8, 0x07, // uvarint(1000)
        // 0 | 10 1 00001 001011 11111111111 | padding
        0x50, 0x97, 0xff, 0xc0,
    ];
    assert_eq!(read_chunk("hand_three_samples"), want);
    let mut c = Xor2Chunk::new();
    c.append(1000, 1.0);
    c.append(2000, 1.0);
    c.append(3000, 2.0);
    assert_eq!(c.bytes(), want);
}
