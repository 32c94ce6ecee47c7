//! Frozen dense-chunk fixtures under tests/fixtures/dense (see that
//! folder's README.md and docs/format/dense-chunk.md): each chunk must
//! decode to exactly its listed samples, bit for bit, and encoding those
//! samples must give exactly the frozen bytes, so any change to the format
//! fails here. The corrupt chunks must be refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use cairn_codec::{dense_decode, dense_decode_append, dense_num_samples, encode_dense};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dense")
}

/// (timestamp, value bits) of a `.samples` file.
fn read_samples(name: &str) -> Vec<(i64, u64)> {
    let text = std::fs::read_to_string(fixtures().join(format!("{name}.samples"))).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 2, "{name}: {l}");
            (
                f[0].parse().unwrap(),
                u64::from_str_radix(f[1], 16).unwrap(),
            )
        })
        .collect()
}

fn read_chunk(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(format!("{name}.chunk"))).unwrap()
}

/// Names of the files in the folder ending in `suffix`, without it, sorted.
fn names(suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(suffix).map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// Every case with a `.samples` file.
fn cases() -> Vec<String> {
    names(".samples")
}

fn encode(samples: &[(i64, u64)]) -> Vec<u8> {
    let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
    let vs: Vec<f64> = samples.iter().map(|s| f64::from_bits(s.1)).collect();
    let mut out = Vec::new();
    encode_dense(&ts, &vs, &mut out).unwrap();
    out
}

#[test]
fn there_are_fixtures() {
    let names = cases();
    for must in [
        "worked_example",
        "regular_15s_6dp",
        "jitter_gap",
        "counter_reset_stale",
        "constant",
        "float_mode",
        "single_sample",
        "extremes",
    ] {
        assert!(names.iter().any(|n| n == must), "{must} missing: {names:?}");
    }
    // Every chunk is either a case or a corrupt one.
    for chunk in self::names(".chunk") {
        assert!(
            chunk.starts_with("corrupt-") || names.contains(&chunk),
            "{chunk}.chunk has no .samples"
        );
    }
    assert!(self::names(".chunk")
        .iter()
        .any(|n| n.starts_with("corrupt-")));
}

#[test]
fn chunks_decode_to_the_listed_samples() {
    for name in cases() {
        let want = read_samples(&name);
        let chunk = read_chunk(&name);
        assert_eq!(
            dense_num_samples(&chunk).unwrap(),
            want.len(),
            "{name}: header"
        );
        let mut got = Vec::new();
        let n = dense_decode(&chunk, |t, v| got.push((t, v.to_bits()))).unwrap();
        assert_eq!(n, want.len(), "{name}: count");
        assert_eq!(got, want, "{name}: dense_decode");
        let mut appended = vec![(0, 0)];
        let n = dense_decode_append(&chunk, &mut appended, |t, v| (t, v.to_bits())).unwrap();
        assert_eq!(n, want.len(), "{name}: count (append)");
        assert_eq!(
            appended.remove(0),
            (0, 0),
            "{name}: append kept what was there"
        );
        assert_eq!(appended, want, "{name}: dense_decode_append");
    }
}

#[test]
fn encoding_gives_the_frozen_bytes() {
    for name in cases() {
        let samples = read_samples(&name);
        let chunk = read_chunk(&name);
        assert_eq!(encode(&samples), chunk, "{name}: encode_dense");
        // Appending to a buffer that holds something keeps it.
        let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
        let vs: Vec<f64> = samples.iter().map(|s| f64::from_bits(s.1)).collect();
        let mut out = vec![0xfe];
        encode_dense(&ts, &vs, &mut out).unwrap();
        assert_eq!(out.first(), Some(&0xfe));
        assert_eq!(&out[1..], chunk.as_slice(), "{name}: appended");
    }
}

#[test]
fn corrupt_chunks_are_refused() {
    let corrupt: Vec<String> = names(".chunk")
        .into_iter()
        .filter(|n| n.starts_with("corrupt-"))
        .collect();
    assert!(corrupt.len() >= 2, "{corrupt:?}");
    for name in corrupt {
        let chunk = read_chunk(&name);
        assert!(
            dense_decode(&chunk, |_, _| {}).is_err(),
            "{name}: dense_decode accepted it"
        );
        let mut out = Vec::new();
        assert!(
            dense_decode_append(&chunk, &mut out, |t, v| (t, v)).is_err(),
            "{name}: dense_decode_append accepted it"
        );
    }
    // What each one is (tests/fixtures/dense/README.md).
    let bad_mode = read_chunk("corrupt-bad-mode");
    let e = dense_decode(&bad_mode, |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("value mode") && e.contains("found 2"), "{e}");
    let truncated = read_chunk("corrupt-truncated");
    let e = dense_decode(&truncated, |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
}

/// The worked example of docs/format/dense-chunk.md, byte for byte.
#[test]
fn worked_example_is_the_documented_bytes() {
    let doc = [
        "04",           // sample count 4
        "80a0abfef962", // varint t0 = 1700000000000
        "9875",         // uvarint d = 15000
        "00",           // no gaps
        "00 02 07",     // residuals: min 0, width 2, 3 | 1 << 2 | 0 << 4
        "00",           // mode: decimal
        "02",           // exponent 2
        "01",           // order 1: deltas
        "ac02",         // varint head: mantissa 150
        "32 05 0064",   // deltas: min 25, width 5, bits of 0, 0, 25
        "00",           // no exceptions
    ]
    .concat()
    .replace(' ', "");
    let chunk = read_chunk("worked_example");
    let hex: String = chunk.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, doc);
    assert_eq!(
        read_samples("worked_example"),
        [
            (1_700_000_000_000, 1.5f64.to_bits()),
            (1_700_000_015_003, 1.75f64.to_bits()),
            (1_700_000_030_001, 2.0f64.to_bits()),
            (1_700_000_045_000, 2.5f64.to_bits()),
        ]
    );
}

/// The stale-marker example of docs/format/dense-chunk.md (one exception
/// in four samples), byte for byte.
#[test]
fn stale_marker_example_is_the_documented_bytes() {
    let doc = [
        "04 00 0a 00 00 00",          // n, t0, d, no gaps, residuals all 0
        "00 00 00",                   // decimal, e = 0, order 0
        "02 02 d4",                   // mantissas 1, 2, 2, 4: min 1, w = 2
        "01",                         // one exception
        "02 02 00 00 00 00 00 f0 7f", // at index 2: the stale marker
    ]
    .concat()
    .replace(' ', "");
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let mut out = Vec::new();
    encode_dense(&[0, 10, 20, 30], &[1.0, 2.0, stale, 4.0], &mut out).unwrap();
    let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, doc);
}
