//! Round-trip, resume and robustness properties of the XOR chunk codec.

use cairn_codec::{decode_all, xor_iter, CodecError, XorChunk, MAX_SAMPLES_PER_CHUNK};
use proptest::prelude::*;

const STALE_BITS: u64 = 0x7ff0_0000_0000_0002;

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        2 => (-1000i32..1000).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::from_bits(STALE_BITS)),
        1 => Just(0.0),
        1 => Just(-0.0),
        1 => any::<u64>().prop_map(f64::from_bits),
    ]
}

fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => Just(15_000i64),
        4 => 1i64..100_000,
        2 => 1i64..(1 << 22),
        1 => 1i64..(1 << 40),
        1 => (1i64 << 40)..(1i64 << 62),
    ]
}

/// Strictly increasing timestamps starting anywhere in i64 (including
/// negative and huge), with mixed regular and irregular gaps.
fn series() -> impl Strategy<Value = Vec<(i64, f64)>> {
    (
        any::<i64>(),
        proptest::collection::vec((gap(), value()), 0..300),
    )
        .prop_map(|(start, rest)| {
            let mut out = Vec::with_capacity(rest.len());
            let mut t = start;
            for (i, (g, v)) in rest.into_iter().enumerate() {
                if i > 0 {
                    match t.checked_add(g) {
                        Some(n) => t = n,
                        None => break,
                    }
                }
                out.push((t, v));
            }
            out
        })
}

fn same(a: &[(i64, f64)], b: &[(i64, f64)]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.0 == y.0 && x.1.to_bits() == y.1.to_bits())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trip(samples in series()) {
        let mut c = XorChunk::new();
        for &(t, v) in &samples {
            c.append(t, v);
        }
        prop_assert_eq!(c.num_samples(), samples.len());
        let got = decode_all(c.bytes()).unwrap();
        prop_assert!(same(&got, &samples));
        let last = samples.last().map(|&(t, v)| (t, v.to_bits()));
        prop_assert_eq!(c.last().map(|(t, v)| (t, v.to_bits())), last);
    }

    #[test]
    fn resume_after_from_bytes_is_byte_identical(samples in series(), split in any::<prop::sample::Index>()) {
        let mut whole = XorChunk::new();
        for &(t, v) in &samples {
            whole.append(t, v);
        }
        let k = if samples.is_empty() { 0 } else { split.index(samples.len() + 1) };
        let mut part = XorChunk::new();
        for &(t, v) in &samples[..k] {
            part.append(t, v);
        }
        let mut resumed = XorChunk::from_bytes(part.bytes().to_vec()).unwrap();
        prop_assert_eq!(resumed.bytes(), part.bytes());
        for &(t, v) in &samples[k..] {
            resumed.append(t, v);
        }
        prop_assert_eq!(resumed.bytes(), whole.bytes());
    }

    #[test]
    fn draining_the_front_changes_nothing_joined(samples in series(), drains in proptest::collection::vec(any::<bool>(), 300)) {
        let mut whole = XorChunk::new();
        let mut drained = XorChunk::new();
        let mut kept = Vec::new();
        for (i, &(t, v)) in samples.iter().enumerate() {
            whole.append(t, v);
            if drains[i] {
                let n = drained.settled();
                kept.extend_from_slice(&drained.bytes()[..n]);
                drained.drain_front(n);
            }
            drained.append(t, v);
            prop_assert_eq!(drained.drained(), kept.len());
        }
        let mut joined = kept.clone();
        drained.join(&mut joined);
        prop_assert_eq!(&joined[..], whole.bytes());
        prop_assert_eq!(drained.num_samples(), whole.num_samples());
        prop_assert_eq!(drained.last().map(|(t, v)| (t, v.to_bits())), whole.last().map(|(t, v)| (t, v.to_bits())));
        // The buffer never keeps more than the undrained bytes.
        prop_assert_eq!(drained.bytes().len() + kept.len(), whole.bytes().len());
    }

    #[test]
    fn seek_finds_first_at_or_after(samples in series(), probe: i64) {
        let mut c = XorChunk::new();
        for &(t, v) in &samples {
            c.append(t, v);
        }
        let mut it = c.iter();
        let want = samples.iter().find(|s| s.0 >= probe);
        match want {
            Some(&(t, v)) => {
                prop_assert!(it.seek(probe));
                prop_assert_eq!(it.at().0, t);
                prop_assert_eq!(it.at().1.to_bits(), v.to_bits());
                // Seeking backwards stays put.
                prop_assert!(it.seek(i64::MIN));
                prop_assert_eq!(it.at().0, t);
            }
            None => prop_assert!(!it.seek(probe)),
        }
        prop_assert!(it.err().is_none());
    }

    #[test]
    fn arbitrary_bytes_error_instead_of_panic(data in proptest::collection::vec(any::<u8>(), 0..200), probe: i64) {
        let mut it = xor_iter(&data);
        let mut n = 0usize;
        while it.next() {
            n += 1;
        }
        prop_assert!(n <= it.num_samples());
        if n < it.num_samples() {
            prop_assert!(it.err().is_some());
        }
        let mut it = xor_iter(&data);
        let _ = it.seek(probe);
        let _ = XorChunk::from_bytes(data.clone());
        let _ = decode_all(&data);
    }

    #[test]
    fn truncated_chunks_are_errors(samples in series(), cut in any::<prop::sample::Index>()) {
        prop_assume!(samples.len() >= 2);
        let mut c = XorChunk::new();
        for &(t, v) in &samples {
            c.append(t, v);
        }
        let bytes = c.bytes();
        let at = cut.index(bytes.len());
        // Dropping only Prometheus's spare trailing zero byte loses no bits.
        let spare_only = at == bytes.len() - 1 && bytes[at] == 0;
        if !spare_only {
            prop_assert!(decode_all(&bytes[..at]).is_err());
            prop_assert!(XorChunk::from_bytes(bytes[..at].to_vec()).is_err());
        }
    }
}

#[test]
fn empty_chunk_is_two_zero_bytes() {
    let c = XorChunk::new();
    assert_eq!(c.bytes(), [0, 0]);
    assert_eq!(c.num_samples(), 0);
    assert!(!c.iter().next());
    let c = XorChunk::from_bytes(vec![0, 0]).unwrap();
    assert_eq!(c.num_samples(), 0);
}

/// Hand-derived encoding of three samples, bit by bit, following the format.
#[test]
fn hand_encoded_three_samples() {
    let mut c = XorChunk::new();
    c.append(1000, 1.0);
    c.append(2000, 1.0);
    c.append(3000, 2.0);
    // Header 0x0003. Sample 0: varint(1000)=zigzag 2000 = 0xd0 0x0f, then
    // 1.0 = 0x3ff0000000000000. Sample 1: uvarint(1000) = 0xe8 0x07, value
    // unchanged: bit 0. Sample 2: dod 0: bit 0; value 2.0 ^ 1.0 =
    // 0x7ff0000000000000 → bit 1, bit 1 (new window), leading 1 (00001),
    // 11 significant bits (001011), then 0b11111111111.
    // Bits after sample 1's varint: 0 | 0 | 1 1 00001 001011 11111111111
    //   = 0011 0000 | 1001 0111 | 1111 1111 | 11(00 0000 padding)
    let want = [
        0x00, 0x03, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xe8, 0x07, 0x30, 0x97, 0xff, 0xc0,
    ];
    assert_eq!(c.bytes(), want);
    assert_eq!(
        decode_all(&want).unwrap(),
        vec![(1000, 1.0), (2000, 1.0), (3000, 2.0)]
    );
}

/// Prometheus's bit writer leaves a wholly unused trailing byte after
/// byte-aligned whole-byte writes; a one-sample chunk ends that way.
#[test]
fn single_sample_chunk_ends_with_prometheus_spare_byte() {
    let mut c = XorChunk::new();
    c.append(1000, 1.0);
    let want = [0x00, 0x01, 0xd0, 0x0f, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x00];
    assert_eq!(c.bytes(), want);
    let mut resumed = XorChunk::from_bytes(want.to_vec()).unwrap();
    resumed.append(2000, 1.0);
    // The spare byte is filled by the next sample, not skipped.
    assert_eq!(&resumed.bytes()[2..12], &want[2..12]);
    assert_eq!(resumed.bytes()[12], 0xe8); // uvarint(1000) starts in the spare byte
    assert_eq!(
        decode_all(resumed.bytes()).unwrap(),
        vec![(1000, 1.0), (2000, 1.0)]
    );
}

#[test]
fn from_bytes_rejects_trailing_garbage_and_dirty_padding() {
    let mut c = XorChunk::new();
    c.append(1000, 1.0);
    c.append(2000, 1.0);
    c.append(3000, 2.0);
    let mut extra = c.bytes().to_vec();
    extra.push(0);
    assert!(matches!(
        XorChunk::from_bytes(extra),
        Err(CodecError::Corruption { .. })
    ));
    let mut dirty = c.bytes().to_vec();
    if let Some(l) = dirty.last_mut() {
        *l |= 1;
    }
    assert!(matches!(
        XorChunk::from_bytes(dirty),
        Err(CodecError::Corruption { .. })
    ));
}

#[test]
fn full_chunk_reports_chunk_full() {
    let mut c = XorChunk::new();
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
}

#[test]
fn header_shorter_than_two_bytes_is_error() {
    let mut it = xor_iter(&[1]);
    assert!(!it.next());
    assert!(matches!(it.err(), Some(CodecError::UnexpectedEof { .. })));
    assert!(XorChunk::from_bytes(vec![]).is_err());
}

/// An open chunk holds little more than it wrote (the head keeps one per
/// series): growth by an eighth, not by doubling.
#[test]
fn open_chunk_slack_stays_small() {
    let mut c = XorChunk::new();
    let mut worst = 0f64;
    let mut v = 0.0f64;
    for i in 0..240i64 {
        // Six-decimal gauge values: about 4-5 bytes a sample.
        v += ((i * 7919) % 1000) as f64 / 1e6 - 0.0004;
        c.append(i * 15_000 + (i * 37) % 11, v);
        let len = c.bytes().len();
        if len > 256 {
            worst = worst.max(c.capacity() as f64 / len as f64);
        }
    }
    assert!(c.bytes().len() > 600, "{}", c.bytes().len());
    assert!(worst < 1.25, "capacity up to {worst:.2}x the bytes written");
}
