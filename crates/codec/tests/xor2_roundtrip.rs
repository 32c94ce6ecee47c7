//! Round-trip, resume and robustness properties of the XOR2 chunk codec,
//! over adversarial values (NaN payloads, -0.0, subnormals, ±Inf, the stale
//! marker, extremes) and irregular timestamps (negative, huge gaps, bucket
//! edges, equal deltas), compared bit for bit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use cairn_codec::{
    xor2_decode, xor2_decode_all, xor2_decode_st, xor2_iter, CodecError, Xor2Chunk,
    MAX_SAMPLES_PER_CHUNK, STALE_NAN_BITS,
};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => any::<u64>(),
        2 => (-1000i32..1000).prop_map(|x| f64::from(x).to_bits()),
        2 => Just(STALE_NAN_BITS),
        1 => Just(f64::NAN.to_bits()),
        1 => any::<u64>().prop_map(|p| 0x7ff0_0000_0000_0000 | (p & 0x800f_ffff_ffff_ffff) | 1),
        1 => Just(f64::INFINITY.to_bits()),
        1 => Just(f64::NEG_INFINITY.to_bits()),
        1 => Just(0.0f64.to_bits()),
        1 => Just((-0.0f64).to_bits()),
        1 => (1u64..(1 << 52)).prop_map(|m| m | (u64::from(m & 1 == 0) << 63)), // subnormals
        1 => Just(f64::MAX.to_bits()),
        1 => Just(f64::MIN_POSITIVE.to_bits()),
        1 => Just(1e-300f64.to_bits()),
    ]
}

/// A value, or "the previous one again" (to hit the unchanged codes).
fn value_or_repeat() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![3 => value().prop_map(Some), 2 => Just(None)]
}

/// The next delta given the regular one: mostly regular, often jittered
/// across the bucket edges, sometimes anything at all (wrapping).
fn gap() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![
        5 => Just(None),
        2 => (-5000i64..5000).prop_map(Some),
        1 => prop::sample::select(vec![4095i64, -4096, 4096, -4097, (1 << 19) - 1, -(1 << 19), 1 << 19, -(1 << 19) - 1]).prop_map(Some),
        1 => (-(1i64 << 22)..(1i64 << 22)).prop_map(Some),
        1 => (1i64..(1 << 62)).prop_map(Some),
        1 => any::<i64>().prop_map(Some),
    ]
}

fn st_mode() -> impl Strategy<Value = u8> {
    0u8..5
}

/// (st, t, value bits) sequences. Timestamps start anywhere (negative and
/// huge included) and may wrap; start timestamps are absent, constant,
/// appear late, change often, or are arbitrary.
fn series() -> impl Strategy<Value = Vec<(i64, i64, u64)>> {
    (
        any::<i64>(),
        prop::sample::select(vec![15_000i64, 1, 0, 60_000, 1 << 40]),
        st_mode(),
        any::<i64>(),
        proptest::collection::vec((gap(), value_or_repeat(), any::<u8>()), 0..300),
    )
        .prop_map(|(start, regular, mode, st0, rest)| {
            let mut out: Vec<(i64, i64, u64)> = Vec::with_capacity(rest.len());
            let mut t = start;
            let mut st = if mode == 1 { st0 } else { 0 };
            let mut prev = 0u64;
            for (i, (g, v, r)) in rest.into_iter().enumerate() {
                if i > 0 {
                    t = t.wrapping_add(regular.wrapping_add(g.unwrap_or(0)));
                }
                match mode {
                    2 if r < 8 => st = t.wrapping_sub(i64::from(r) * 1000),
                    3 if r % 3 == 0 => st = t.wrapping_sub(i64::from(r)),
                    4 if r % 5 == 0 => st = st0.wrapping_mul(i64::from(r)),
                    _ => {}
                }
                let v = v.unwrap_or(prev);
                prev = v;
                out.push((st, t, v));
            }
            out
        })
}

fn encode(samples: &[(i64, i64, u64)]) -> Xor2Chunk {
    let mut c = Xor2Chunk::new();
    for &(st, t, v) in samples {
        c.append_st(st, t, f64::from_bits(v));
    }
    c
}

fn by_iter(data: &[u8]) -> (Vec<(i64, i64, u64)>, Option<CodecError>) {
    let mut it = xor2_iter(data);
    let mut out = Vec::new();
    while it.next() {
        let (t, v) = it.at();
        out.push((it.at_st(), t, v.to_bits()));
    }
    (out, it.err().cloned())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip_is_bit_exact(samples in series()) {
        let c = encode(&samples);
        prop_assert_eq!(c.num_samples(), samples.len());
        let (got, err) = by_iter(c.bytes());
        prop_assert!(err.is_none(), "{:?}", err);
        prop_assert_eq!(&got, &samples);
        let mut bulk = Vec::new();
        let n = xor2_decode_st(c.bytes(), |st, t, v| bulk.push((st, t, v.to_bits()))).unwrap();
        prop_assert_eq!(n, samples.len());
        prop_assert_eq!(&bulk, &samples);
        let last = samples.last().map(|s| (s.1, s.2));
        prop_assert_eq!(c.last().map(|(t, v)| (t, v.to_bits())), last);
    }

    #[test]
    fn without_start_timestamps_append_equals_append_st_zero(samples in series()) {
        let mut a = Xor2Chunk::new();
        let mut b = Xor2Chunk::new();
        for &(_, t, v) in &samples {
            a.append(t, f64::from_bits(v));
            b.append_st(0, t, f64::from_bits(v));
        }
        prop_assert_eq!(a.bytes(), b.bytes());
        let mut got = Vec::new();
        xor2_decode(a.bytes(), |t, v| got.push((t, v.to_bits()))).unwrap();
        let want: Vec<(i64, u64)> = samples.iter().map(|s| (s.1, s.2)).collect();
        prop_assert_eq!(got, want);
        // From sample 127 on, Prometheus's writer records start-timestamp
        // deltas even when there are none; they decode as 0.
        let hdr = a.bytes()[2];
        prop_assert_eq!(hdr, if samples.len() > 127 { 0x7f } else { 0 });
        prop_assert!(by_iter(a.bytes()).0.iter().all(|s| s.0 == 0));
    }

    #[test]
    fn resume_after_from_bytes_is_byte_identical(samples in series(), split in any::<prop::sample::Index>()) {
        let whole = encode(&samples);
        let k = split.index(samples.len() + 1);
        let part = encode(&samples[..k]);
        let mut resumed = Xor2Chunk::from_bytes(part.bytes().to_vec()).unwrap();
        prop_assert_eq!(resumed.bytes(), part.bytes());
        prop_assert_eq!(resumed.num_samples(), k);
        for &(st, t, v) in &samples[k..] {
            resumed.append_st(st, t, f64::from_bits(v));
        }
        prop_assert_eq!(resumed.bytes(), whole.bytes());
    }

    #[test]
    fn seek_finds_first_at_or_after(samples in series(), probe: i64) {
        // Seek assumes increasing timestamps: keep the ones that are.
        let mut inc: Vec<(i64, i64, u64)> = Vec::new();
        for s in samples {
            if inc.last().is_none_or(|l| s.1 > l.1) {
                inc.push(s);
            }
        }
        let c = encode(&inc);
        let mut it = c.iter();
        match inc.iter().find(|s| s.1 >= probe) {
            Some(&(st, t, v)) => {
                prop_assert!(it.seek(probe));
                prop_assert_eq!((it.at_st(), it.at().0, it.at().1.to_bits()), (st, t, v));
                prop_assert!(it.seek(i64::MIN));
                prop_assert_eq!(it.at().0, t);
            }
            None => prop_assert!(!it.seek(probe)),
        }
        prop_assert!(it.err().is_none());
    }

    #[test]
    fn arbitrary_bytes_error_instead_of_panic(data in proptest::collection::vec(any::<u8>(), 0..200), probe: i64) {
        let (got, err) = by_iter(&data);
        let announced = xor2_iter(&data).num_samples();
        prop_assert!(got.len() <= announced);
        if got.len() < announced {
            prop_assert!(err.is_some());
        }
        let mut bulk = Vec::new();
        let r = xor2_decode_st(&data, |st, t, v| bulk.push((st, t, v.to_bits())));
        prop_assert_eq!(&bulk, &got);
        prop_assert_eq!(r.is_err(), err.is_some());
        let mut it = xor2_iter(&data);
        let _ = it.seek(probe);
        let _ = xor2_decode_all(&data);
        if let Ok(mut c) = Xor2Chunk::from_bytes(data.clone()) {
            prop_assert_eq!(c.bytes(), &data[..]);
            if let Some((t, _)) = c.last() {
                if c.try_append(t.wrapping_add(15_000), 1.5).is_ok() {
                    prop_assert_eq!(xor2_decode_all(c.bytes()).unwrap().len(), got.len() + 1);
                }
            }
        }
    }

    #[test]
    fn truncated_chunks_are_errors(samples in series(), cut in any::<prop::sample::Index>()) {
        prop_assume!(!samples.is_empty());
        let c = encode(&samples);
        let bytes = c.bytes();
        let at = cut.index(bytes.len());
        // No spare trailing byte in XOR2: every cut loses bits.
        prop_assert!(xor2_decode_all(&bytes[..at]).is_err());
        let r = xor2_decode(&bytes[..at], |_, _| ());
        prop_assert!(r.is_err());
        prop_assert!(Xor2Chunk::from_bytes(bytes[..at].to_vec()).is_err());
    }
}

#[test]
fn empty_chunk_is_three_zero_bytes() {
    let c = Xor2Chunk::new();
    assert_eq!(c.bytes(), [0, 0, 0]);
    assert_eq!(c.num_samples(), 0);
    assert!(c.last().is_none());
    assert!(!c.iter().next());
    let c = Xor2Chunk::default();
    assert_eq!(c.into_bytes(), vec![0, 0, 0]);
    assert_eq!(
        Xor2Chunk::from_bytes(vec![0, 0, 0]).unwrap().num_samples(),
        0
    );
    assert_eq!(xor2_decode(&[0, 0, 0], |_, _| {}), Ok(0));
}

/// A stale marker is coded without touching the value baseline: the next
/// sample equal to the value before the marker costs one bit.
#[test]
fn stale_marker_keeps_the_baseline() {
    let mut c = Xor2Chunk::new();
    for (t, v) in [(0, 5.0), (10, 5.0), (20, f64::from_bits(STALE_NAN_BITS))] {
        c.append(t, v);
    }
    let before = c.bytes().len() * 8;
    c.append(30, 5.0);
    // `11111` for the marker and `0` for 5.0 again fit the bytes written.
    assert!(c.bytes().len() * 8 <= before + 8);
    let got: Vec<(i64, u64)> = xor2_decode_all(c.bytes())
        .unwrap()
        .into_iter()
        .map(|(t, v)| (t, v.to_bits()))
        .collect();
    assert_eq!(
        got,
        [
            (0, 5.0f64.to_bits()),
            (10, 5.0f64.to_bits()),
            (20, STALE_NAN_BITS),
            (30, 5.0f64.to_bits())
        ]
    );
}

#[test]
fn from_bytes_rejects_trailing_garbage_and_dirty_padding() {
    let mut c = Xor2Chunk::new();
    c.append(1000, 1.0);
    c.append(2000, 1.0);
    c.append(3000, 2.0);
    let mut extra = c.bytes().to_vec();
    extra.push(0);
    assert!(matches!(
        Xor2Chunk::from_bytes(extra),
        Err(CodecError::Corruption { .. })
    ));
    let mut dirty = c.bytes().to_vec();
    *dirty.last_mut().unwrap() |= 1;
    assert!(matches!(
        Xor2Chunk::from_bytes(dirty),
        Err(CodecError::Corruption { .. })
    ));
    // A start-timestamp header naming a sample the chunk does not have.
    let mut st = c.bytes().to_vec();
    st[2] = 0x05;
    assert!(matches!(
        Xor2Chunk::from_bytes(st),
        Err(CodecError::Corruption { .. })
    ));
}

#[test]
fn full_chunk_reports_chunk_full() {
    let mut c = Xor2Chunk::new();
    for i in 0..MAX_SAMPLES_PER_CHUNK {
        c.try_append(i as i64, 1.0).unwrap();
    }
    assert_eq!(
        c.try_append(1 << 40, 2.0),
        Err(CodecError::ChunkFull {
            max: MAX_SAMPLES_PER_CHUNK
        })
    );
    assert_eq!(c.num_samples(), MAX_SAMPLES_PER_CHUNK);
    assert_eq!(xor2_decode(c.bytes(), |_, _| {}), Ok(MAX_SAMPLES_PER_CHUNK));
}

#[test]
fn errors_name_what_was_read_and_where() {
    let mut c = Xor2Chunk::new();
    c.append(1000, 1.0);
    c.append(2000, 3.0);
    let data = c.bytes();
    // Cut inside sample 0's value: bit offsets count from the chunk start.
    let mut it = xor2_iter(&data[..8]);
    assert!(!it.next());
    assert_eq!(
        it.err(),
        Some(&CodecError::UnexpectedEof {
            what: "xor2 first value",
            bit_offset: 40
        })
    );
}

/// A chunk of more than 127 samples whose header names no start-timestamp
/// change (no writer makes one: deltas start at sample 127 at the latest)
/// is refused by `from_bytes`; appending to it would have written a change
/// index the header cannot hold (found by the `xor2_chunk` fuzz target).
#[test]
fn long_chunks_without_a_change_index_are_refused_for_appending() {
    let data: Vec<u8> = vec![
        0, 240, 128, 63, 0, 2, 208, 255, 255, 255, 255, 255, 255, 255, 10, 8, 0, 130, 0, 0, 0, 0,
        0, 0, 0, 152, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 1, 7, 0, 0, 0, 0, 0, 19, 160, 43, 27, 255, 207, 9, 96,
    ];
    let e = cairn_codec::Xor2Chunk::from_bytes(data).err();
    assert!(
        e.as_ref()
            .is_some_and(|e| e.to_string().contains("start timestamp")),
        "{e:?}"
    );
    // A writer's long chunk, with and without start timestamps, reopens
    // and takes one more sample.
    for st in [0i64, 5] {
        let mut c = cairn_codec::Xor2Chunk::new();
        for i in 0..200i64 {
            c.append_st(st, 1000 + i * 15_000, i as f64);
        }
        let mut again = cairn_codec::Xor2Chunk::from_bytes(c.bytes().to_vec()).unwrap();
        again.try_append(1000 + 200 * 15_000, 1.5).unwrap();
        let mut n = 0;
        cairn_codec::xor2_decode(again.bytes(), |_, _| n += 1).unwrap();
        assert_eq!(n, 201);
    }
}
