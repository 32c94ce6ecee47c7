//! Wire-level checks: hand-assembled bytes (field numbers from Prometheus's
//! schemas) decode as expected, every message round-trips, and arbitrary
//! bytes produce errors rather than panics.

use bytes::Bytes;
use cairn_proto::read::*;
use cairn_proto::write::{Label, MetricMetadata, MetricType, Sample, TimeSeries, WriteRequest};
use cairn_proto::write_v2::{self, Symbols, SymbolsBuilder};
use cairn_proto::Message;
use proptest::prelude::*;

fn key(field: u32, wire: u32) -> u8 {
    ((field << 3) | wire) as u8
}

#[test]
fn v1_field_numbers_match_prometheus() {
    // TimeSeries{labels:[{a,b}], samples:[{value 1.5, ts 7}]} inside field 1,
    // plus MetricMetadata{type GAUGE, family "m", help "h", unit "u"} in field 3.
    let label = [key(1, 2), 1, b'a', key(2, 2), 1, b'b'];
    let mut sample = vec![key(1, 1)];
    sample.extend_from_slice(&1.5f64.to_le_bytes());
    sample.extend_from_slice(&[key(2, 0), 7]);
    let mut ts = vec![key(1, 2), label.len() as u8];
    ts.extend_from_slice(&label);
    ts.push(key(2, 2));
    ts.push(sample.len() as u8);
    ts.extend_from_slice(&sample);
    let meta = [
        key(1, 0),
        2,
        key(2, 2),
        1,
        b'm',
        key(4, 2),
        1,
        b'h',
        key(5, 2),
        1,
        b'u',
    ];
    let mut req = vec![key(1, 2), ts.len() as u8];
    req.extend_from_slice(&ts);
    req.push(key(3, 2));
    req.push(meta.len() as u8);
    req.extend_from_slice(&meta);

    let got = WriteRequest::decode(Bytes::from(req.clone())).unwrap();
    assert_eq!(
        got,
        WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![Label::new("a", "b")],
                samples: vec![Sample {
                    value: 1.5,
                    timestamp: 7
                }],
                exemplars: vec![],
                histograms: vec![],
            }],
            metadata: vec![MetricMetadata {
                r#type: MetricType::Gauge as i32,
                metric_family_name: Bytes::from_static(b"m"),
                help: Bytes::from_static(b"h"),
                unit: Bytes::from_static(b"u"),
            }],
        }
    );
    assert_eq!(got.encode_to_vec(), req);
}

#[test]
fn v2_field_numbers_match_prometheus() {
    // symbols ["", "__name__", "up"] (field 4), one series (field 5) with
    // packed labels_refs [1,2] (field 1), metadata{type COUNTER, help_ref 1}.
    let mut req = Vec::new();
    for s in ["", "__name__", "up"] {
        req.push(key(4, 2));
        req.push(s.len() as u8);
        req.extend_from_slice(s.as_bytes());
    }
    let meta = [key(1, 0), 1, key(3, 0), 1, key(4, 0), 0];
    // samples (2): {value 2.0, timestamp 5, start_timestamp 4}
    let mut sample = vec![key(1, 1)];
    sample.extend_from_slice(&2.0f64.to_le_bytes());
    sample.extend_from_slice(&[key(2, 0), 5, key(3, 0), 4]);
    let mut ts = vec![key(1, 2), 2, 1, 2, key(5, 2), meta.len() as u8];
    ts.extend_from_slice(&meta);
    ts.extend_from_slice(&[key(2, 2), sample.len() as u8]);
    ts.extend_from_slice(&sample);
    ts.extend_from_slice(&[key(6, 0), 9]);
    req.push(key(5, 2));
    req.push(ts.len() as u8);
    req.extend_from_slice(&ts);
    let got = write_v2::Request::decode(Bytes::from(req)).unwrap();
    assert_eq!(got.symbols.len(), 3);
    let t = &got.timeseries[0];
    assert_eq!(t.labels_refs, vec![1, 2]);
    assert_eq!(t.created_timestamp, 9);
    assert_eq!(
        t.samples,
        vec![write_v2::Sample {
            value: 2.0,
            timestamp: 5,
            start_timestamp: 4
        }]
    );
    let m = t.metadata.clone().unwrap();
    assert_eq!(m.r#type, write_v2::MetricType::Counter as i32);
    assert_eq!(m.help_ref, 1);
    let syms = Symbols::new(&got.symbols);
    let mut pairs = Vec::new();
    syms.resolve_pairs(&t.labels_refs, &mut pairs).unwrap();
    assert_eq!(pairs, vec![("__name__", "up")]);
}

#[test]
fn v1_body_read_as_v2_is_empty() {
    let v1 = WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![Label::new("__name__", "x")],
            samples: vec![Sample {
                value: 1.0,
                timestamp: 1,
            }],
            ..Default::default()
        }],
        metadata: vec![],
    };
    let v2 = write_v2::Request::decode(Bytes::from(v1.encode_to_vec())).unwrap();
    assert!(v2.symbols.is_empty() && v2.timeseries.is_empty());
}

#[test]
fn bad_symbol_references_are_errors() {
    let syms_raw = vec![
        Bytes::new(),
        Bytes::from_static(b"a"),
        Bytes::from_static(b"\xff"),
    ];
    let syms = Symbols::new(&syms_raw);
    let mut out = Vec::new();
    assert!(syms.resolve_pairs(&[1], &mut out).is_err());
    assert!(syms.resolve_pairs(&[1, 9], &mut out).is_err());
    assert!(syms.resolve_pairs(&[1, 2], &mut out).is_err());
    assert!(syms.resolve_pairs(&[1, 1], &mut out).is_ok());
}

#[test]
fn read_request_field_numbers_match_prometheus() {
    // queries (1): {start 1, end 2, matchers [{type RE, name "a", value "b"}],
    // hints {step 3}}; accepted_response_types (2) packed [1, 0].
    let m = [key(1, 0), 2, key(2, 2), 1, b'a', key(3, 2), 1, b'b'];
    let hints = [key(1, 0), 3];
    let mut q = vec![key(1, 0), 1, key(2, 0), 2, key(3, 2), m.len() as u8];
    q.extend_from_slice(&m);
    q.extend_from_slice(&[key(4, 2), hints.len() as u8]);
    q.extend_from_slice(&hints);
    let mut req = vec![key(1, 2), q.len() as u8];
    req.extend_from_slice(&q);
    req.extend_from_slice(&[key(2, 2), 2, 1, 0]);
    let got = ReadRequest::decode(&req[..]).unwrap();
    assert_eq!(got.accepted_response_types, vec![1, 0]);
    let q = &got.queries[0];
    assert_eq!((q.start_timestamp_ms, q.end_timestamp_ms), (1, 2));
    assert_eq!(q.matchers[0].r#type, MatchType::Re as i32);
    assert_eq!(q.hints.as_ref().unwrap().step_ms, 3);
}

#[test]
fn chunked_response_field_numbers_match_prometheus() {
    let msg = ChunkedReadResponse {
        chunked_series: vec![ChunkedSeries {
            labels: vec![Label::new("a", "b")],
            chunks: vec![Chunk {
                min_time_ms: 1,
                max_time_ms: 2,
                r#type: ChunkEncoding::Xor as i32,
                data: Bytes::from_static(b"zz"),
            }],
        }],
        query_index: 3,
    };
    let chunk = [
        key(1, 0),
        1,
        key(2, 0),
        2,
        key(3, 0),
        1,
        key(4, 2),
        2,
        b'z',
        b'z',
    ];
    let label = [key(1, 2), 1, b'a', key(2, 2), 1, b'b'];
    let mut series = vec![key(1, 2), label.len() as u8];
    series.extend_from_slice(&label);
    series.extend_from_slice(&[key(2, 2), chunk.len() as u8]);
    series.extend_from_slice(&chunk);
    let mut want = vec![key(1, 2), series.len() as u8];
    want.extend_from_slice(&series);
    want.extend_from_slice(&[key(2, 0), 3]);
    assert_eq!(msg.encode_to_vec(), want);
}

fn label_strategy() -> impl Strategy<Value = Label> {
    ("[a-z_]{0,6}", ".{0,12}").prop_map(|(n, v)| Label::new(&n, &v))
}

fn series_strategy() -> impl Strategy<Value = TimeSeries> {
    (
        proptest::collection::vec(label_strategy(), 0..5),
        proptest::collection::vec((any::<f64>(), any::<i64>()), 0..5),
    )
        .prop_map(|(labels, s)| TimeSeries {
            labels,
            samples: s
                .into_iter()
                .map(|(value, timestamp)| Sample { value, timestamp })
                .collect(),
            ..Default::default()
        })
}

fn same_bits(a: &WriteRequest, b: &WriteRequest) -> bool {
    // NaN != NaN, so compare the re-encoded bytes instead of values.
    a.encode_to_vec() == b.encode_to_vec()
}

proptest! {
    #[test]
    fn write_v1_round_trips(series in proptest::collection::vec(series_strategy(), 0..6)) {
        let req = WriteRequest { timeseries: series, metadata: vec![] };
        let bytes = req.encode_to_vec();
        let back = WriteRequest::decode(Bytes::from(bytes)).unwrap();
        prop_assert!(same_bits(&req, &back));
        prop_assert_eq!(back.timeseries.len(), req.timeseries.len());
    }

    #[test]
    fn write_v2_round_trips(series in proptest::collection::vec(
        (proptest::collection::btree_map("[a-z]{1,4}", "[a-z]{0,4}", 0..4),
         proptest::collection::vec((any::<i64>(), -1e9f64..1e9), 0..4)), 0..5)) {
        let mut b = SymbolsBuilder::new();
        let mut ts = Vec::new();
        for (labels, samples) in &series {
            ts.push(write_v2::TimeSeries {
                labels_refs: b.label_refs(labels.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
                samples: samples.iter().map(|&(timestamp, value)| write_v2::Sample { value, timestamp, start_timestamp: 0 }).collect(),
                ..Default::default()
            });
        }
        let req = write_v2::Request { symbols: b.build(), timeseries: ts };
        let back = write_v2::Request::decode(Bytes::from(req.encode_to_vec())).unwrap();
        prop_assert_eq!(&back, &req);
        let syms = Symbols::new(&back.symbols);
        let mut pairs = Vec::new();
        for ((labels, _), t) in series.iter().zip(&back.timeseries) {
            syms.resolve_pairs(&t.labels_refs, &mut pairs).unwrap();
            let want: Vec<(&str, &str)> = labels.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            prop_assert_eq!(&pairs, &want);
        }
    }

    #[test]
    fn read_request_round_trips(start in any::<i64>(), end in any::<i64>(), name in "[a-z]{1,5}", value in ".{0,8}", kinds in proptest::collection::vec(0i32..2, 0..3)) {
        let req = ReadRequest {
            queries: vec![Query {
                start_timestamp_ms: start,
                end_timestamp_ms: end,
                matchers: vec![LabelMatcher { r#type: MatchType::Nre as i32, name, value }],
                hints: Some(ReadHints { step_ms: 5, func: "rate".into(), ..Default::default() }),
            }],
            accepted_response_types: kinds,
        };
        let back = ReadRequest::decode(&req.encode_to_vec()[..]).unwrap();
        prop_assert_eq!(back, req);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let b = Bytes::from(data.clone());
        let _ = WriteRequest::decode(b.clone());
        if let Ok(r) = write_v2::Request::decode(b.clone()) {
            let syms = Symbols::new(&r.symbols);
            let mut out = Vec::new();
            for t in &r.timeseries {
                let _ = syms.resolve_pairs(&t.labels_refs, &mut out);
            }
        }
        let _ = ReadRequest::decode(&data[..]);
        let _ = ReadResponse::decode(&data[..]);
        let _ = ChunkedReadResponse::decode(&data[..]);
        let _ = cairn_proto::snappy::decompress(&data, 1 << 16);
    }
}
