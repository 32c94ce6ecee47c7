//! Round trips of every record type, byte-level checks against Prometheus's
//! layout, and arbitrary input to the decoder.

use cairn_model::Labels;
use cairn_wal::record::{decode, encode_to_vec, TYPE_EXEMPLARS, TYPE_MMAP_MARKERS, TYPE_SAMPLES};
use cairn_wal::{Record, RefExemplar, RefMetadata, RefSample, RefSeries, Stone, WalError};
use proptest::prelude::*;

fn labels() -> impl Strategy<Value = Labels> {
    proptest::collection::vec(("[a-z_][a-z0-9_]{0,8}", "\\PC{0,12}"), 0..6)
        .prop_map(Labels::from_pairs)
}

fn series() -> impl Strategy<Value = Record> {
    proptest::collection::vec(
        (any::<u64>(), labels()).prop_map(|(r, labels)| RefSeries { r, labels }),
        0..8,
    )
    .prop_map(Record::Series)
}

fn samples() -> impl Strategy<Value = Record> {
    proptest::collection::vec(
        (any::<u64>(), any::<i64>(), any::<u64>()).prop_map(|(r, t, v)| RefSample {
            r,
            t,
            v: f64::from_bits(v),
        }),
        0..40,
    )
    .prop_map(Record::Samples)
}

fn tombstones() -> impl Strategy<Value = Record> {
    proptest::collection::vec(
        (any::<u64>(), any::<i64>(), any::<i64>()).prop_map(|(r, a, b)| Stone {
            r,
            intervals: vec![(a, b)],
        }),
        0..10,
    )
    .prop_map(Record::Tombstones)
}

fn metadata() -> impl Strategy<Value = Record> {
    proptest::collection::vec(
        (any::<u64>(), any::<u8>(), "\\PC{0,8}", "\\PC{0,30}").prop_map(|(r, kind, unit, help)| {
            RefMetadata {
                r,
                kind,
                unit,
                help,
            }
        }),
        0..8,
    )
    .prop_map(Record::Metadata)
}

fn exemplars() -> impl Strategy<Value = Record> {
    proptest::collection::vec(
        (any::<u64>(), any::<i64>(), any::<u64>(), labels()).prop_map(|(r, t, v, labels)| {
            RefExemplar {
                r,
                t,
                v: f64::from_bits(v),
                labels,
            }
        }),
        0..12,
    )
    .prop_map(Record::Exemplars)
}

fn markers() -> impl Strategy<Value = Record> {
    proptest::collection::vec((any::<u64>(), any::<u64>()), 0..10).prop_map(Record::MmapMarkers)
}

/// Samples and exemplars compare by value bits so NaNs (and the stale marker) count.
fn same(a: &Record, b: &Record) -> bool {
    match (a, b) {
        (Record::Samples(x), Record::Samples(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| p.r == q.r && p.t == q.t && p.v.to_bits() == q.v.to_bits())
        }
        (Record::Exemplars(x), Record::Exemplars(y)) => {
            x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| {
                    p.r == q.r
                        && p.t == q.t
                        && p.v.to_bits() == q.v.to_bits()
                        && p.labels == q.labels
                })
        }
        _ => a == b,
    }
}

proptest! {
    #[test]
    fn every_record_type_round_trips(rec in prop_oneof![series(), samples(), tombstones(), metadata(), exemplars(), markers()]) {
        let bytes = encode_to_vec(&rec);
        prop_assert_eq!(bytes.first().copied(), Some(rec.type_byte()));
        let back = decode(&bytes).unwrap();
        prop_assert!(same(&rec, &back), "{:?} != {:?}", rec, back);
    }

    #[test]
    fn multi_interval_stones_come_back_one_interval_each(
        r in any::<u64>(),
        ivs in proptest::collection::vec((any::<i64>(), any::<i64>()), 0..6),
    ) {
        let rec = Record::Tombstones(vec![Stone { r, intervals: ivs.clone() }]);
        let back = decode(&encode_to_vec(&rec)).unwrap();
        let want: Vec<Stone> = ivs.into_iter().map(|iv| Stone { r, intervals: vec![iv] }).collect();
        prop_assert_eq!(back, Record::Tombstones(want));
    }

    #[test]
    fn arbitrary_bytes_decode_to_a_result_not_a_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(&b);
    }

    #[test]
    fn truncated_records_are_errors(rec in prop_oneof![series(), samples(), metadata(), exemplars(), markers()], cut in any::<prop::sample::Index>()) {
        let bytes = encode_to_vec(&rec);
        let n = cut.index(bytes.len());
        // Cutting anywhere inside an entry must fail; cutting on an entry
        // boundary yields a shorter valid record, which must still decode.
        if let Err(e) = decode(&bytes[..n]) {
            let ok = matches!(e, WalError::RecordCorrupt { .. } | WalError::UnknownRecordType { .. });
            prop_assert!(ok, "unexpected error kind {e:?}");
        }
    }
}

#[test]
fn samples_layout_matches_prometheus() {
    // Base ref/time from the first sample, signed varint deltas, be64 values.
    let rec = Record::Samples(vec![
        RefSample {
            r: 10,
            t: 1000,
            v: 1.5,
        },
        RefSample {
            r: 9,
            t: 1001,
            v: -2.0,
        },
    ]);
    let mut want = vec![TYPE_SAMPLES];
    want.extend_from_slice(&10u64.to_be_bytes());
    want.extend_from_slice(&1000u64.to_be_bytes());
    want.extend_from_slice(&[0, 0]);
    want.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
    want.extend_from_slice(&[1, 2]); // zig-zag(-1) = 1, zig-zag(1) = 2
    want.extend_from_slice(&(-2.0f64).to_bits().to_be_bytes());
    assert_eq!(encode_to_vec(&rec), want);
}

#[test]
fn mmap_markers_layout_matches_prometheus() {
    // Prometheus's `Encoder.MmapMarkers`: be64 series ref, be64 chunk ref.
    let mut b = vec![TYPE_MMAP_MARKERS];
    b.extend_from_slice(&3u64.to_be_bytes());
    b.extend_from_slice(&((1u64 << 32) | 8).to_be_bytes());
    assert_eq!(
        decode(&b).unwrap(),
        Record::MmapMarkers(vec![(3, (1 << 32) | 8)])
    );
    assert_eq!(
        encode_to_vec(&Record::MmapMarkers(vec![(3, (1 << 32) | 8)])),
        b
    );
    // Half an entry is corrupt.
    assert!(matches!(
        decode(&b[..12]),
        Err(WalError::RecordCorrupt { .. })
    ));
}

#[test]
fn exemplars_layout_matches_prometheus() {
    // As samples, each entry followed by the exemplar's labels.
    let rec = Record::Exemplars(vec![
        RefExemplar {
            r: 10,
            t: 1000,
            v: 1.5,
            labels: Labels::from_pairs([("trace_id", "ab")]),
        },
        RefExemplar {
            r: 12,
            t: 999,
            v: 2.0,
            labels: Labels::default(),
        },
    ]);
    let mut want = vec![TYPE_EXEMPLARS];
    want.extend_from_slice(&10u64.to_be_bytes());
    want.extend_from_slice(&1000u64.to_be_bytes());
    want.extend_from_slice(&[0, 0]);
    want.extend_from_slice(&1.5f64.to_bits().to_be_bytes());
    want.push(1);
    for s in ["trace_id", "ab"] {
        want.push(s.len() as u8);
        want.extend_from_slice(s.as_bytes());
    }
    want.extend_from_slice(&[4, 1]); // zig-zag(2) = 4, zig-zag(-1) = 1
    want.extend_from_slice(&2.0f64.to_bits().to_be_bytes());
    want.push(0);
    assert_eq!(encode_to_vec(&rec), want);
    assert!(same(&decode(&want).unwrap(), &rec));
}

#[test]
fn series_and_metadata_layout_matches_prometheus() {
    let rec = Record::Series(vec![RefSeries {
        r: 7,
        labels: Labels::from_pairs([("__name__", "up"), ("job", "x")]),
    }]);
    let mut want = vec![1u8];
    want.extend_from_slice(&7u64.to_be_bytes());
    want.push(2);
    for s in ["__name__", "up", "job", "x"] {
        want.push(s.len() as u8);
        want.extend_from_slice(s.as_bytes());
    }
    assert_eq!(encode_to_vec(&rec), want);

    let rec = Record::Metadata(vec![RefMetadata {
        r: 300,
        kind: 1,
        unit: "s".into(),
        help: "h".into(),
    }]);
    let mut want = vec![6u8, 0xac, 0x02, 1, 2];
    for s in ["UNIT", "s", "HELP", "h"] {
        want.push(s.len() as u8);
        want.extend_from_slice(s.as_bytes());
    }
    assert_eq!(encode_to_vec(&rec), want);
}

#[test]
fn unsorted_labels_and_unknown_types_are_rejected() {
    let mut b = vec![1u8];
    b.extend_from_slice(&1u64.to_be_bytes());
    b.push(2);
    for s in ["b", "1", "a", "2"] {
        b.push(1);
        b.extend_from_slice(s.as_bytes());
    }
    assert!(matches!(decode(&b), Err(WalError::RecordCorrupt { .. })));
    assert!(matches!(
        decode(&[11, 0, 0]),
        Err(WalError::UnknownRecordType { found: 11 })
    ));
    assert!(matches!(decode(&[]), Err(WalError::RecordCorrupt { .. })));
}
