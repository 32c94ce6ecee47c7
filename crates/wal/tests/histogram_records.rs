//! Native-histogram sample records (types 7 to 10): round trips of random
//! histograms (bits of floats kept, NaN and stale sums included), the byte
//! layout of Prometheus's encoder for a hand-built sample, and corrupt or
//! hostile input that is refused without panicking or over-allocating.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use cairn_model::{CounterResetHint, FloatHistogram, Histogram, Span, CUSTOM_BUCKETS_SCHEMA};
use cairn_wal::record::histogram::split_custom;
use cairn_wal::record::{decode, encode_to_vec, TYPE_CUSTOM_HISTOGRAMS, TYPE_HISTOGRAMS};
use cairn_wal::{Record, RefFloatHistogramSample, RefHistogramSample, WalError};
use proptest::prelude::*;

fn hint() -> impl Strategy<Value = CounterResetHint> {
    prop_oneof![
        Just(CounterResetHint::Unknown),
        Just(CounterResetHint::CounterReset),
        Just(CounterResetHint::NotCounterReset),
        Just(CounterResetHint::Gauge),
    ]
}

fn spans() -> impl Strategy<Value = Vec<Span>> {
    proptest::collection::vec(
        (any::<i32>(), any::<u32>()).prop_map(|(offset, length)| Span { offset, length }),
        0..4,
    )
}

fn schema() -> impl Strategy<Value = i32> {
    prop_oneof![-4i32..=8, Just(CUSTOM_BUCKETS_SCHEMA)]
}

fn histogram() -> impl Strategy<Value = Histogram> {
    (
        hint(),
        schema(),
        any::<u64>(),
        (any::<u64>(), any::<u64>(), any::<u64>()),
        (spans(), spans()),
        proptest::collection::vec(any::<i64>(), 0..6),
        proptest::collection::vec(any::<i64>(), 0..6),
        proptest::collection::vec(any::<u64>(), 0..4),
    )
        .prop_map(
            |(h, schema, zt, (zc, c, sum), (ps, ns), pb, nb, cv)| Histogram {
                counter_reset_hint: h,
                schema,
                zero_threshold: f64::from_bits(zt),
                zero_count: zc,
                count: c,
                sum: f64::from_bits(sum),
                positive_spans: ps,
                negative_spans: ns,
                positive_buckets: pb,
                negative_buckets: nb,
                custom_values: if schema == CUSTOM_BUCKETS_SCHEMA {
                    cv.into_iter().map(f64::from_bits).collect()
                } else {
                    Vec::new()
                },
            },
        )
}

fn float_histogram() -> impl Strategy<Value = FloatHistogram> {
    (
        histogram(),
        proptest::collection::vec(any::<u64>(), 0..6),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(h, pb, zc, c)| FloatHistogram {
            counter_reset_hint: h.counter_reset_hint,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            zero_count: f64::from_bits(zc),
            count: f64::from_bits(c),
            sum: h.sum,
            positive_spans: h.positive_spans,
            positive_buckets: pb.into_iter().map(f64::from_bits).collect(),
            negative_spans: h.negative_spans,
            negative_buckets: Vec::new(),
            custom_values: h.custom_values,
        })
}

/// Compares through a second encoding, so NaNs compare by their bits.
fn same(a: &Record, b: &Record) -> bool {
    encode_to_vec(a) == encode_to_vec(b)
}

proptest! {
    #[test]
    fn histogram_records_round_trip(
        v in proptest::collection::vec((any::<u64>(), any::<i64>(), histogram()), 0..8),
        custom in any::<bool>(),
    ) {
        let rec = Record::Histograms {
            custom,
            samples: v.into_iter().map(|(r, t, h)| RefHistogramSample { r, t, h }).collect(),
        };
        let bytes = encode_to_vec(&rec);
        let back = decode(&bytes).unwrap();
        prop_assert!(same(&rec, &back), "{rec:?} != {back:?}");
        prop_assert_eq!(back.type_byte(), rec.type_byte());
    }

    #[test]
    fn float_histogram_records_round_trip(
        v in proptest::collection::vec((any::<u64>(), any::<i64>(), float_histogram()), 0..8),
        custom in any::<bool>(),
    ) {
        let rec = Record::FloatHistograms {
            custom,
            samples: v.into_iter().map(|(r, t, h)| RefFloatHistogramSample { r, t, h }).collect(),
        };
        let back = decode(&encode_to_vec(&rec)).unwrap();
        prop_assert!(same(&rec, &back));
    }

    #[test]
    fn truncated_or_flipped_histogram_records_are_errors_not_panics(
        v in proptest::collection::vec((any::<u64>(), any::<i64>(), histogram()), 1..4),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let rec = Record::Histograms {
            custom: false,
            samples: v.into_iter().map(|(r, t, h)| RefHistogramSample { r, t, h }).collect(),
        };
        let bytes = encode_to_vec(&rec);
        let n = cut.index(bytes.len());
        if let Err(e) = decode(&bytes[..n]) {
            prop_assert!(matches!(e, WalError::RecordCorrupt { .. }), "{e:?}");
        }
        let mut b = bytes.clone();
        let i = flip.index(b.len());
        b[i] ^= 1 << bit;
        let _ = decode(&b);
    }
}

#[test]
fn layout_matches_prometheus_encoder() {
    // Prometheus's Encoder.HistogramSamples of one sample: base ref and
    // time (be64), deltas 0 0, hint byte, schema varint, zero threshold
    // be64, zero count and count uvarints, sum be64, spans (count, then
    // offset varint and length uvarint), buckets (count, then varints).
    let h = Histogram {
        counter_reset_hint: CounterResetHint::NotCounterReset,
        schema: 3,
        zero_threshold: 0.001,
        zero_count: 2,
        count: 10,
        sum: 18.4,
        positive_spans: vec![Span {
            offset: -1,
            length: 2,
        }],
        negative_spans: vec![],
        positive_buckets: vec![5, -2],
        negative_buckets: vec![],
        custom_values: vec![],
    };
    let rec = Record::Histograms {
        custom: false,
        samples: vec![RefHistogramSample { r: 7, t: 1000, h }],
    };
    let mut want = vec![TYPE_HISTOGRAMS];
    want.extend_from_slice(&7u64.to_be_bytes());
    want.extend_from_slice(&1000u64.to_be_bytes());
    want.extend_from_slice(&[0, 0]); // ref and time deltas
    want.push(2); // NotCounterReset
    want.push(6); // zig-zag(3)
    want.extend_from_slice(&0.001f64.to_bits().to_be_bytes());
    want.extend_from_slice(&[2, 10]);
    want.extend_from_slice(&18.4f64.to_bits().to_be_bytes());
    want.extend_from_slice(&[1, 1, 2]); // one span: zig-zag(-1) = 1, length 2
    want.push(0); // no negative spans
    want.extend_from_slice(&[2, 10, 3]); // buckets 5, -2 as zig-zag varints
    want.push(0); // no negative buckets
    assert_eq!(encode_to_vec(&rec), want);
    assert!(same(&decode(&want).unwrap(), &rec));
}

#[test]
fn custom_buckets_go_to_their_own_record_type_with_their_bounds() {
    let nhcb = Histogram {
        schema: CUSTOM_BUCKETS_SCHEMA,
        count: 3,
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![1, 1],
        custom_values: vec![0.5, 1.0],
        ..Histogram::default()
    };
    let plain = Histogram {
        schema: 0,
        ..Histogram::default()
    };
    let samples = vec![
        RefHistogramSample {
            r: 1,
            t: 1,
            h: nhcb.clone(),
        },
        RefHistogramSample {
            r: 2,
            t: 1,
            h: plain,
        },
    ];
    let (plain, custom) = split_custom(samples, |s| s.h.uses_custom_buckets());
    assert_eq!((plain.len(), custom.len()), (1, 1));
    let rec = Record::Histograms {
        custom: true,
        samples: custom,
    };
    let bytes = encode_to_vec(&rec);
    assert_eq!(bytes[0], TYPE_CUSTOM_HISTOGRAMS);
    // The bounds are the last 1 + 2 × 8 bytes.
    assert_eq!(bytes[bytes.len() - 17], 2);
    let Record::Histograms {
        custom: true,
        samples,
    } = decode(&bytes).unwrap()
    else {
        panic!("type 9 decodes as custom-bucket histograms");
    };
    assert_eq!(samples[0].h, nhcb);
}

#[test]
fn hostile_counts_are_refused_before_allocating() {
    // One sample whose positive span count claims 2^40 spans.
    let mut b = vec![TYPE_HISTOGRAMS];
    b.extend_from_slice(&1u64.to_be_bytes());
    b.extend_from_slice(&1u64.to_be_bytes());
    b.extend_from_slice(&[0, 0, 0, 0]);
    b.extend_from_slice(&0f64.to_bits().to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&0f64.to_bits().to_be_bytes());
    b.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    match decode(&b) {
        Err(WalError::RecordCorrupt { expected, .. }) => {
            assert!(expected.contains("span count"), "{expected}")
        }
        other => panic!("{other:?}"),
    }
    // A hint byte beyond the four Prometheus defines.
    let mut b = vec![TYPE_HISTOGRAMS];
    b.extend_from_slice(&1u64.to_be_bytes());
    b.extend_from_slice(&1u64.to_be_bytes());
    b.extend_from_slice(&[0, 0, 9]);
    assert!(matches!(decode(&b), Err(WalError::RecordCorrupt { .. })));
}
