//! Native histograms through both protocols: each kind reaches the
//! appender as sent (integer deltas, float counts, custom buckets, reset
//! hints), after its series' floats; invalid ones are refused with the
//! reason named; storage without histograms refuses them clearly.

use super::tests::{Rec, Recorder};
use super::*;
use crate::metrics::RejectReason;
use cairn_model::{CounterResetHint, Span, STALE_NAN};
use cairn_proto::histogram::{self as wire, BucketSpan, Count, ZeroCount};
use cairn_proto::write::{Label, Sample, TimeSeries, WriteRequest};

fn span(offset: i32, length: u32) -> BucketSpan {
    BucketSpan { offset, length }
}

/// Integer, exponential schema 1 with both sides: zero 2, positive
/// absolute 3, 1, 4 (deltas 3, -2, 3), negative 5; count 15.
fn int_hist(t: i64) -> wire::Histogram {
    wire::Histogram {
        count: Some(Count::CountInt(15)),
        sum: 21.25,
        schema: 1,
        zero_threshold: 0.001,
        zero_count: Some(ZeroCount::ZeroCountInt(2)),
        negative_spans: vec![span(-2, 1)],
        negative_deltas: vec![5],
        positive_spans: vec![span(0, 2), span(3, 1)],
        positive_deltas: vec![3, -2, 3],
        reset_hint: 1,
        timestamp: t,
        ..Default::default()
    }
}

/// Float, gauge, with counts that are no integers.
fn float_hist(t: i64) -> wire::Histogram {
    wire::Histogram {
        count: Some(Count::CountFloat(3.5)),
        sum: -1.5,
        schema: -2,
        zero_threshold: 0.5,
        zero_count: Some(ZeroCount::ZeroCountFloat(0.25)),
        negative_spans: vec![span(1, 1)],
        negative_counts: vec![1.25],
        positive_spans: vec![span(-1, 2)],
        positive_counts: vec![0.0, 2.0],
        reset_hint: 3,
        timestamp: t,
        ..Default::default()
    }
}

/// Integer custom buckets (NHCB): bounds 0.1, 0.5, 1; buckets 0, 1 and the
/// +Inf one (index 3), absolute 4, 0, 1.
fn nhcb(t: i64) -> wire::Histogram {
    wire::Histogram {
        count: Some(Count::CountInt(5)),
        sum: 7.0,
        schema: -53,
        positive_spans: vec![span(0, 2), span(1, 1)],
        positive_deltas: vec![4, -4, 1],
        reset_hint: 2,
        custom_values: vec![0.1, 0.5, 1.0],
        timestamp: t,
        ..Default::default()
    }
}

fn series(name: &str, floats: &[i64], hists: Vec<wire::Histogram>) -> TimeSeries {
    TimeSeries {
        labels: vec![Label::new("__name__", name)],
        samples: floats
            .iter()
            .map(|&t| Sample {
                value: 1.0,
                timestamp: t,
            })
            .collect(),
        histograms: hists,
        ..TimeSeries::default()
    }
}

/// The same series as a 1.0 and a 2.0 body.
fn bodies(series: &[TimeSeries]) -> [(WireVersion, Vec<u8>); 2] {
    let v1 = WriteRequest {
        timeseries: series.to_vec(),
        metadata: vec![],
    }
    .encode_to_vec();
    let mut symbols: Vec<String> = vec![String::new()];
    let mut sym = |s: &[u8]| -> u32 {
        let s = String::from_utf8_lossy(s).into_owned();
        match symbols.iter().position(|x| *x == s) {
            Some(i) => i as u32,
            None => {
                symbols.push(s);
                (symbols.len() - 1) as u32
            }
        }
    };
    let ts: Vec<write_v2::TimeSeries> = series
        .iter()
        .map(|s| write_v2::TimeSeries {
            labels_refs: s
                .labels
                .iter()
                .flat_map(|l| [sym(&l.name), sym(&l.value)])
                .collect(),
            samples: s
                .samples
                .iter()
                .map(|x| write_v2::Sample {
                    value: x.value,
                    timestamp: x.timestamp,
                    ..Default::default()
                })
                .collect(),
            histograms: s.histograms.clone(),
            ..Default::default()
        })
        .collect();
    let v2 = write_v2::Request {
        symbols: symbols.into_iter().map(Bytes::from).collect(),
        timeseries: ts,
    }
    .encode_to_vec();
    [
        (WireVersion::V1, cairn_proto::snappy::compress(&v1)),
        (WireVersion::V2, cairn_proto::snappy::compress(&v2)),
    ]
}

/// What an ingest reported and what the recorder stored.
type Ingested = (WriteOutcome, Vec<(Labels, i64, Rec)>);

/// Ingests `series` through both protocols (1.0 with and without the
/// series cache) into fresh recorders; the three must agree.
fn ingest_all(series: &[TimeSeries], no_histograms: bool) -> Ingested {
    let cfg = ServerConfig::default();
    let mut got: Vec<Ingested> = Vec::new();
    for (v, body) in bodies(series) {
        for cached in [false, true] {
            if cached && v == WireVersion::V2 {
                continue;
            }
            let mut app = Recorder {
                no_histograms,
                ..Recorder::default()
            };
            let mut scratch = if cached {
                WriteScratch::cached()
            } else {
                WriteScratch::default()
            };
            let out = ingest_with(v, &body, &cfg, &mut app, 0, &mut scratch)
                .unwrap_or_else(|e| panic!("{v:?}: {e}"));
            got.push((out, app.log));
        }
    }
    let first = got.remove(0);
    for g in &got {
        // Debug output: NaN sums (stale markers) compare equal there.
        assert_eq!(
            format!("{:?}", g.1),
            format!("{:?}", first.1),
            "the protocols stored different things"
        );
        assert_eq!(g.0, first.0, "the protocols reported different outcomes");
    }
    first
}

fn name(l: &Labels) -> &str {
    l.get("__name__").unwrap_or_default()
}

#[test]
fn every_kind_reaches_the_appender_as_sent_after_the_series_floats() {
    let (out, log) = ingest_all(
        &[
            series("a", &[1, 2], vec![int_hist(3), float_hist(4)]),
            series("b", &[], vec![nhcb(5)]),
        ],
        false,
    );
    assert_eq!(out.refusal_message(), None);
    assert_eq!((out.samples_written, out.histograms_written), (2, 3));
    let order: Vec<(&str, i64)> = log.iter().map(|(l, t, _)| (name(l), *t)).collect();
    assert_eq!(order, [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 5)]);

    let Some((_, _, Rec::Int(h))) = log.get(2) else {
        panic!("{:?}", log.get(2));
    };
    assert_eq!(
        *h,
        Histogram {
            counter_reset_hint: CounterResetHint::CounterReset,
            schema: 1,
            zero_threshold: 0.001,
            zero_count: 2,
            count: 15,
            sum: 21.25,
            positive_spans: vec![
                Span {
                    offset: 0,
                    length: 2
                },
                Span {
                    offset: 3,
                    length: 1
                }
            ],
            negative_spans: vec![Span {
                offset: -2,
                length: 1
            }],
            positive_buckets: vec![3, -2, 3],
            negative_buckets: vec![5],
            custom_values: vec![],
        }
    );
    let Some((_, _, Rec::Float2(f))) = log.get(3) else {
        panic!("{:?}", log.get(3));
    };
    assert_eq!(f.counter_reset_hint, CounterResetHint::Gauge);
    assert_eq!((f.schema, f.count, f.sum), (-2, 3.5, -1.5));
    assert_eq!((f.zero_threshold, f.zero_count), (0.5, 0.25));
    assert_eq!(f.positive_buckets, vec![0.0, 2.0]);
    assert_eq!(f.negative_buckets, vec![1.25]);
    assert_eq!(f.positive_spans[0].offset, -1);
    let Some((_, _, Rec::Int(c))) = log.get(4) else {
        panic!("{:?}", log.get(4));
    };
    assert_eq!(c.counter_reset_hint, CounterResetHint::NotCounterReset);
    assert_eq!(c.schema, cairn_model::CUSTOM_BUCKETS_SCHEMA);
    assert_eq!(c.custom_values, vec![0.1, 0.5, 1.0]);
    assert_eq!(c.positive_buckets, vec![4, -4, 1]);
}

#[test]
fn a_series_sent_twice_keeps_prometheus_order() {
    // Prometheus appends each entry's samples, then its histograms.
    let (_, log) = ingest_all(
        &[
            series("a", &[1], vec![int_hist(2)]),
            series("b", &[1], vec![]),
            series("a", &[3], vec![int_hist(4)]),
        ],
        false,
    );
    let order: Vec<(&str, i64)> = log.iter().map(|(l, t, _)| (name(l), *t)).collect();
    assert_eq!(order, [("a", 1), ("a", 2), ("b", 1), ("a", 3), ("a", 4)]);
}

#[test]
fn invalid_histograms_are_refused_with_the_series_and_reason() {
    let mut spans_short = int_hist(1);
    spans_short.positive_deltas.push(0);
    let mut negative = int_hist(1);
    negative.positive_deltas = vec![3, -4, 3];
    let mut count = int_hist(1);
    count.count = Some(Count::CountInt(14));
    let mut schema = int_hist(1);
    schema.schema = 9000;
    let mut bounds = nhcb(1);
    bounds.custom_values = vec![0.5, 0.1, 1.0];
    let mut mixed = float_hist(1);
    mixed.positive_deltas = vec![1];
    let mut zero_kind = int_hist(1);
    zero_kind.zero_count = Some(ZeroCount::ZeroCountFloat(2.0));
    let mut float_negative = float_hist(1);
    float_negative.negative_counts = vec![-1.0];
    let cases = [
        (
            "spans",
            spans_short,
            "positive side: spans need 3 buckets, have 4",
        ),
        (
            "neg",
            negative,
            "bucket number 2 has observation count of -1",
        ),
        (
            "count",
            count,
            "15 observations found in buckets, but the Count field is 14",
        ),
        ("schema", schema, "got schema 9000"),
        ("bounds", bounds, "strictly increasing"),
        ("mixed", mixed, "delta-encoded integer buckets"),
        ("zerokind", zero_kind, "float zero_count"),
        ("fneg", float_negative, "negative side: bucket number 1"),
    ];
    let series_list: Vec<TimeSeries> = cases
        .iter()
        .map(|(n, h, _)| series(n, &[1], vec![h.clone(), int_hist(2)]))
        .collect();
    let cfg_msgs = cases.len();
    let (out, log) = ingest_all(&series_list, false);
    assert_eq!(
        out.refused(RejectReason::InvalidHistogram),
        cases.len() as u64
    );
    assert_eq!(out.samples_refused, cases.len() as u64);
    // Every series' float and its valid histogram were stored.
    assert_eq!((out.samples_written, out.histograms_written), (8, 8));
    assert_eq!(log.len(), 16);
    let msg = out.refusal_message().unwrap_or_default();
    assert!(
        msg.starts_with(&format!("refused {cfg_msgs} samples (8 written):")),
        "{msg}"
    );
    for (n, _, want) in &cases {
        let line = msg
            .lines()
            .find(|l| l.contains(&format!("{{__name__=\"{n}\"}}")))
            .unwrap_or_else(|| panic!("no message names series {n}: {msg}"));
        assert!(line.contains("invalid native histogram at 1: "), "{line}");
        assert!(line.contains(want), "{n}: want {want:?} in {line}");
    }
}

#[test]
fn stale_markers_pass_validation() {
    let stale = wire::Histogram {
        sum: STALE_NAN,
        timestamp: 3,
        ..Default::default()
    };
    let float_stale = wire::Histogram {
        count: Some(Count::CountFloat(0.0)),
        sum: STALE_NAN,
        timestamp: 4,
        ..Default::default()
    };
    let (out, log) = ingest_all(&[series("a", &[1], vec![stale, float_stale])], false);
    assert_eq!(out.refusal_message(), None);
    assert_eq!(out.histograms_written, 2);
    match (log.get(1), log.get(2)) {
        (Some((_, 3, Rec::Int(h))), Some((_, 4, Rec::Float2(f)))) => {
            assert!(cairn_model::is_stale_nan(h.sum));
            assert!(cairn_model::is_stale_nan(f.sum));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn finer_schemas_are_lowered_to_8() {
    // Schema 10, positive indexes 1..=5 (absolute 1 each): at schema 8
    // indexes 1..=4 merge into 1, index 5 becomes 2.
    let h = wire::Histogram {
        count: Some(Count::CountInt(5)),
        sum: 5.0,
        schema: 10,
        positive_spans: vec![span(1, 5)],
        positive_deltas: vec![1, 0, 0, 0, 0],
        timestamp: 1,
        ..Default::default()
    };
    let mut f = h.clone();
    f.count = Some(Count::CountFloat(5.0));
    f.positive_deltas.clear();
    f.positive_counts = vec![1.0; 5];
    f.timestamp = 2;
    let (out, log) = ingest_all(&[series("a", &[], vec![h, f])], false);
    assert_eq!(out.histograms_written, 2);
    match (log.first(), log.get(1)) {
        (Some((_, _, Rec::Int(h))), Some((_, _, Rec::Float2(f)))) => {
            assert_eq!(h.schema, 8);
            assert_eq!(h.positive_buckets, vec![4, -3]);
            assert_eq!(f.schema, 8);
            assert_eq!(f.positive_buckets, vec![4.0, 1.0]);
            assert_eq!(
                h.positive_spans,
                vec![Span {
                    offset: 1,
                    length: 2
                }]
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn storage_errors_are_counted_as_for_floats() {
    // The recorder refuses 13 as a duplicate and negative times as out of
    // order; 20 fails the request.
    let (out, log) = ingest_all(
        &[series("a", &[], vec![int_hist(-1), int_hist(13), nhcb(14)])],
        false,
    );
    assert_eq!(out.histograms_written, 1);
    assert_eq!(log.len(), 1);
    assert_eq!(out.refused(RejectReason::OutOfOrder), 1);
    assert_eq!(out.refused(RejectReason::Duplicate), 1);
    let msg = out.refusal_message().unwrap_or_default();
    assert!(
        msg.contains("duplicate sample for timestamp 13 with a different histogram for series {__name__=\"a\"}"),
        "{msg}"
    );
    for (v, body) in bodies(&[series("a", &[], vec![int_hist(20)])]) {
        let err = ingest(
            v,
            &body,
            &ServerConfig::default(),
            &mut Recorder::default(),
            0,
        );
        assert!(
            matches!(err, Err(ServerError::Storage(_))),
            "{v:?}: {err:?}"
        );
    }
    // Past the future limit (server time 0): refused before the appender.
    let far = ServerConfig::default().max_future_ms + 1;
    let (out, log) = ingest_all(&[series("a", &[], vec![int_hist(far)])], false);
    assert!(log.is_empty());
    assert_eq!(out.refused(RejectReason::TooFarInFuture), 1);
}

#[test]
fn storage_without_histograms_refuses_them_clearly() {
    let (out, log) = ingest_all(&[series("a", &[1], vec![int_hist(2), float_hist(3)])], true);
    assert_eq!(log.len(), 1, "the float sample is stored");
    assert_eq!((out.samples_written, out.histograms_written), (1, 0));
    assert_eq!(out.refused(RejectReason::NativeHistogram), 2);
    assert_eq!(
        out.refusal_message().unwrap_or_default(),
        "refused 2 samples (1 written):\n  native histograms are not supported by this storage for series {__name__=\"a\"} (2 samples refused)"
    );
}
