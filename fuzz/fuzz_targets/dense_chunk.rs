//! Fuzzes Cairn's dense chunk (encoding 0xfe, docs/format/dense-chunk.md)
//! two ways on every input.
//!
//! As a chunk: `dense_decode` and `dense_decode_append` must return or
//! error, never panic, and agree (same samples, same outcome). A chunk that
//! decodes holds as many samples as `dense_num_samples` reads from its
//! header; when its timestamps strictly increase, `encode_dense` must take
//! its samples and write a chunk that decodes to the same timestamps and
//! value bits; when they do not, `encode_dense` must refuse them.
//!
//! As samples: the input cut into 13-byte records `kind u8 | step i32 LE |
//! payload u64 LE` builds a strictly increasing series (step ≥ 1, times
//! 2^32 when kind bit 6 is set; the first record's step places t0 anywhere
//! in ±2^62) whose values kind bits 0-1 pick: 0 raw payload bits, 1 a
//! decimal `(payload as i64 >> 11) / 10^(kind bits 2-5)`, 2 the stale
//! marker, 3 the previous value. It must encode, and decode bit for bit.
//!
//! Shared timestamps: the input is also decoded with a block lookup that
//! answers the input itself for any reference (a source that shares its
//! own timestamps must be refused, never followed), and an encoded series
//! rewritten to share its own timestamps from index 0 must decode the same
//! through a lookup that answers the original.
#![no_main]

use cairn_codec::{
    dense_decode, dense_decode_append, dense_decode_with, dense_num_samples, dense_share,
    dense_shared_source, dense_timestamps, encode_dense,
};
use libfuzzer_sys::fuzz_target;

const STALE: u64 = 0x7ff0_0000_0000_0002;

fn round_trip(ts: &[i64], vs: &[f64]) {
    let mut out = Vec::new();
    encode_dense(ts, vs, &mut out).expect("strictly increasing samples must encode");
    assert_eq!(dense_num_samples(&out).ok(), Some(ts.len()));
    let mut back = Vec::with_capacity(ts.len());
    let n = dense_decode(&out, |t, v| back.push((t, v.to_bits())))
        .expect("an encoded chunk must decode");
    assert_eq!(n, ts.len());
    let want: Vec<(i64, u64)> = ts
        .iter()
        .copied()
        .zip(vs.iter().map(|v| v.to_bits()))
        .collect();
    assert_eq!(back, want);
}

fn samples(data: &[u8]) -> (Vec<i64>, Vec<f64>) {
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    let mut prev = 0.0f64;
    for r in data.chunks_exact(13) {
        let kind = r[0];
        let step = i64::from(i32::from_le_bytes([r[1], r[2], r[3], r[4]]));
        let payload = u64::from_le_bytes([r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12]]);
        let t = match ts.last() {
            None => step << 31,
            Some(&last) => {
                let step = if kind & 0x40 != 0 {
                    step.max(1) << 32
                } else {
                    step.max(1)
                };
                match i64::checked_add(last, step) {
                    Some(t) => t,
                    None => break,
                }
            }
        };
        let v = match kind & 3 {
            0 => f64::from_bits(payload),
            1 => ((payload as i64) >> 11) as f64 / 10f64.powi(i32::from((kind >> 2) & 15)),
            2 => f64::from_bits(STALE),
            _ => prev,
        };
        ts.push(t);
        vs.push(v);
        prev = v;
    }
    (ts, vs)
}

fuzz_target!(|data: &[u8]| {
    let mut got = Vec::new();
    let res = dense_decode(data, |t, v| got.push((t, v.to_bits())));
    let mut appended = Vec::new();
    let res2 = dense_decode_append(data, &mut appended, |t, v| (t, v.to_bits()));
    assert_eq!(res.is_ok(), res2.is_ok());
    assert_eq!(got, appended);
    if let Ok(n) = res {
        assert_eq!(res2.ok(), Some(n));
        assert_eq!(n, got.len());
        assert_eq!(dense_num_samples(data).ok(), Some(n));
        let ts: Vec<i64> = got.iter().map(|s| s.0).collect();
        let vs: Vec<f64> = got.iter().map(|s| f64::from_bits(s.1)).collect();
        if ts.windows(2).all(|w| w[0] < w[1]) {
            round_trip(&ts, &vs);
        } else {
            assert!(encode_dense(&ts, &vs, &mut Vec::new()).is_err());
        }
    }

    let mut itself = |_: u64| Some(std::borrow::Cow::Borrowed(data));
    let _ = dense_decode_with(data, &mut itself, |_, _| {});
    let _ = dense_shared_source(data);
    let _ = dense_timestamps(data);

    let (ts, vs) = samples(data);
    if !ts.is_empty() {
        round_trip(&ts, &vs);
        let mut own = Vec::new();
        encode_dense(&ts, &vs, &mut own).expect("encodes");
        let shared = dense_share(&own, 1, 0).expect("rewrites");
        let mut lookup = |r: u64| (r == 1).then_some(std::borrow::Cow::Borrowed(own.as_slice()));
        let mut back = Vec::new();
        dense_decode_with(&shared, &mut lookup, |t, v| back.push((t, v.to_bits())))
            .expect("a shared chunk decodes through its source");
        let want: Vec<(i64, u64)> = ts
            .iter()
            .copied()
            .zip(vs.iter().map(|v| v.to_bits()))
            .collect();
        assert_eq!(back, want);
    }
});
