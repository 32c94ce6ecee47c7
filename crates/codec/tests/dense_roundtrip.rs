//! Round trips of the dense chunk (docs/format/dense-chunk.md) over
//! adversarial input: every timestamp and every float's bits come back.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used)]

use cairn_codec::{dense_decode, dense_decode_append, dense_num_samples, encode_dense};
use proptest::prelude::*;

const STALE: u64 = 0x7ff0_0000_0000_0002;

fn round_trip(ts: &[i64], vs: &[f64]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_dense(ts, vs, &mut out).unwrap();
    assert_eq!(dense_num_samples(&out).unwrap(), ts.len());
    let mut got = Vec::new();
    let n = dense_decode(&out, |t, v| got.push((t, v.to_bits()))).unwrap();
    assert_eq!(n, ts.len());
    let want: Vec<(i64, u64)> = ts
        .iter()
        .copied()
        .zip(vs.iter().map(|v| v.to_bits()))
        .collect();
    assert_eq!(got, want);
    let mut again = Vec::new();
    dense_decode_append(&out, &mut again, |t, v| (t, v.to_bits())).unwrap();
    assert_eq!(again, want);
    out
}

/// Floats chosen to break decimal coding: NaN payloads, -0.0, subnormals,
/// infinities, 17-digit values, integers around 2^53, values that look
/// decimal but are not (0.1 + 0.2).
fn adversarial() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::from_bits(STALE)),
        Just(f64::NAN),
        any::<u64>()
            .prop_map(|p| f64::from_bits(0x7ff0_0000_0000_0001 | (p & 0x000f_ffff_ffff_ffff))),
        Just(-0.0),
        Just(0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE),
        (1u64..1 << 52).prop_map(f64::from_bits),
        Just(0.1 + 0.2),
        Just(9_007_199_254_740_993.0),
        (0i64..1 << 54).prop_map(|i| i as f64),
        (-1_000_000_000i64..1_000_000_000, 0u32..10)
            .prop_map(|(m, e)| m as f64 / 10f64.powi(e as i32)),
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits),
    ]
}

/// Strictly increasing timestamps: regular, jittered, gappy or wild.
fn timestamps(n: usize) -> impl Strategy<Value = Vec<i64>> {
    (
        any::<i64>(),
        prop_oneof![Just(15_000i64), Just(1i64), 1i64..100_000],
        prop::collection::vec((0i64..30, 0u8..20, any::<bool>(), any::<u32>()), n),
    )
        .prop_map(|(start, d, steps)| {
            let mut t = start / 2;
            let mut out = Vec::with_capacity(steps.len());
            for (jit, gap, wild, w) in steps {
                let step = if wild {
                    i64::from(w) + 1
                } else {
                    d * (1 + i64::from(gap == 0)) + jit - 15
                };
                t = t.saturating_add(step.max(1));
                if out.last().is_some_and(|&l| l >= t) {
                    break;
                }
                out.push(t);
            }
            out
        })
}

fn samples() -> impl Strategy<Value = (Vec<i64>, Vec<f64>)> {
    (1usize..700).prop_flat_map(|n| {
        (
            timestamps(n),
            prop_oneof![
                prop::collection::vec(adversarial(), n),
                // Mostly decimal with a few exceptions.
                (
                    prop::collection::vec(0i64..1_000_000, n),
                    prop::collection::vec(adversarial(), 3)
                )
                    .prop_map(|(ms, ex)| {
                        let mut v: Vec<f64> = ms.iter().map(|m| *m as f64 / 1000.0).collect();
                        for (i, x) in ex.into_iter().enumerate() {
                            let at = i * 97 % v.len().max(1);
                            if let Some(s) = v.get_mut(at) {
                                *s = x;
                            }
                        }
                        v
                    }),
            ],
        )
            .prop_map(|(ts, mut vs)| {
                vs.truncate(ts.len());
                let ts = ts.into_iter().take(vs.len()).collect();
                (ts, vs)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn dense_round_trips_bit_for_bit((ts, vs) in samples()) {
        prop_assume!(!ts.is_empty());
        round_trip(&ts, &vs);
    }

    /// Truncated or altered chunks are errors or wrong samples, never a panic.
    #[test]
    fn damaged_chunks_never_panic((ts, vs) in samples(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        prop_assume!(!ts.is_empty());
        let mut data = round_trip(&ts, &vs);
        let at = cut.index(data.len());
        let _ = dense_decode(&data[..at], |_, _| {});
        if let Some(b) = data.get_mut(at) {
            *b ^= flip | 1;
        }
        let _ = dense_decode(&data, |_, _| {});
    }
}

#[test]
fn exporter_like_series_are_small() {
    // 480 scrapes every 15 s, up to 25 ms late, values with 6 decimals.
    let ts: Vec<i64> = (0..480)
        .map(|k| 1_700_000_000_000 + k * 15_000 + (k * 7919) % 26)
        .collect();
    let vs: Vec<f64> = (0..480)
        .map(|k| ((k * 104_729) % 1_000_000) as f64 / 1e6)
        .collect();
    let data = round_trip(&ts, &vs);
    // 5 bits of jitter and 20 bits of value per sample, plus headers.
    assert!(data.len() < 480 * 26 / 8 + 64, "{} bytes", data.len());
    let flat = round_trip(&ts, &[42.0; 480]);
    assert!(flat.len() < 480 * 5 / 8 + 48, "{} bytes", flat.len());
    let grid: Vec<i64> = (0..480).map(|k| k * 15_000).collect();
    let tiny = round_trip(&grid, &[1.0; 480]);
    assert!(tiny.len() < 32, "{} bytes", tiny.len());
}

#[test]
fn bad_input_is_refused() {
    let mut out = Vec::new();
    assert!(encode_dense(&[], &[], &mut out).is_err());
    assert!(encode_dense(&[1, 1], &[1.0, 2.0], &mut out).is_err());
    assert!(encode_dense(&[2, 1], &[1.0, 2.0], &mut out).is_err());
    assert!(encode_dense(&[1], &[1.0, 2.0], &mut out).is_err());
    assert!(dense_decode(&[], |_, _| {}).is_err());
    assert!(dense_decode(&[0], |_, _| {}).is_err());
}

#[test]
fn shared_timestamps_come_from_the_source_chunk() {
    use cairn_codec::{dense_decode_with, dense_share, dense_shared_source, dense_timestamps};
    let ts: Vec<i64> = (0..600)
        .map(|k| 1_700_000_000_000 + k * 15_000 + (k * 7) % 23)
        .collect();
    let src = round_trip(&ts, &vec![1.5; 600]);
    assert_eq!(dense_timestamps(&src).unwrap(), ts);
    assert_eq!(dense_shared_source(&src).unwrap(), None);
    // A chunk holding samples 100..400 of the same scrapes.
    let vs: Vec<f64> = (100..400).map(|k| f64::from(k) * 0.001).collect();
    let own = round_trip(&ts[100..400], &vs);
    let shared = dense_share(&own, 77, 100).unwrap();
    assert!(
        shared.len() + 100 < own.len(),
        "{} vs {}",
        shared.len(),
        own.len()
    );
    assert_eq!(dense_shared_source(&shared).unwrap(), Some(77));
    let mut got = Vec::new();
    let mut lookup = |r: u64| (r == 77).then_some(std::borrow::Cow::Borrowed(src.as_slice()));
    let n = dense_decode_with(&shared, &mut lookup, |t, v| got.push((t, v.to_bits()))).unwrap();
    let want: Vec<(i64, u64)> = ts[100..400]
        .iter()
        .copied()
        .zip(vs.iter().map(|v| v.to_bits()))
        .collect();
    assert_eq!((n, got), (300, want));
    // Read alone, from a missing or wrong source, or through a chain: errors.
    assert!(dense_decode(&shared, |_, _| {}).is_err());
    let mut none = |_: u64| None;
    assert!(dense_decode_with(&shared, &mut none, |_, _| {}).is_err());
    let wrong = dense_share(&own, 77, 101).unwrap();
    assert!(dense_decode_with(&wrong, &mut lookup, |_, _| {}).is_err());
    let past = dense_share(&own, 77, 400).unwrap();
    assert!(dense_decode_with(&past, &mut lookup, |_, _| {}).is_err());
    let chained = dense_share(&src, 5, 0).unwrap();
    let mut chain = |r: u64| match r {
        77 => Some(std::borrow::Cow::Borrowed(chained.as_slice())),
        _ => Some(std::borrow::Cow::Borrowed(src.as_slice())),
    };
    assert!(dense_decode_with(&shared, &mut chain, |_, _| {}).is_err());
    // Inline chunks decode the same with or without a lookup.
    let mut again = Vec::new();
    dense_decode_with(&own, &mut none, |t, v| again.push((t, v.to_bits()))).unwrap();
    assert_eq!(again.len(), 300);
}
