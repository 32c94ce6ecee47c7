//! The 1.0 path appends a whole request through `append_batch`; the 2.0
//! path still appends sample by sample. Fed the same series, float samples
//! and native histograms, both must store the same samples in the same
//! order and report the same outcome, messages and their order included.
//! The histogram cases themselves are in `tests_histograms`.

use super::*;
use cairn_proto::histogram::{self as wire, BucketSpan, Count, ZeroCount};
use cairn_proto::write::{self, Label, Sample, TimeSeries, WriteRequest};
use cairn_storage::{MetricType, StorageError};
use proptest::prelude::*;

/// One append the [`Recorder`] took: a float's bits or a histogram.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Rec {
    Float(u64),
    Int(Histogram),
    Float2(FloatHistogram),
}

/// Records appends, in order; refuses negative timestamps (out of order)
/// and 13 (duplicate); fails for good at 20. With `no_histograms` it is a
/// storage without native histograms (the trait's default answers).
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) log: Vec<(Labels, i64, Rec)>,
    pub(super) no_histograms: bool,
}

impl Recorder {
    fn check(t: i64, histogram: bool) -> cairn_storage::Result<()> {
        match t {
            20 => Err(StorageError::Closed),
            13 if histogram => Err(StorageError::DuplicateHistogramForTimestamp { t }),
            13 => Err(StorageError::DuplicateSampleForTimestamp { t }),
            t if t < 0 => Err(StorageError::OutOfOrderSample { t }),
            _ => Ok(()),
        }
    }
}

impl Appender for Recorder {
    fn append(
        &mut self,
        _r: SeriesRef,
        l: &Labels,
        t: i64,
        v: f64,
    ) -> cairn_storage::Result<SeriesRef> {
        Self::check(t, false)?;
        self.log.push((l.clone(), t, Rec::Float(v.to_bits())));
        Ok(l.hash64() | 1)
    }
    fn append_histogram(
        &mut self,
        _r: SeriesRef,
        l: &Labels,
        t: i64,
        h: &Histogram,
    ) -> cairn_storage::Result<SeriesRef> {
        if self.no_histograms {
            return Err(StorageError::HistogramsUnsupported);
        }
        Self::check(t, true)?;
        self.log.push((l.clone(), t, Rec::Int(h.clone())));
        Ok(l.hash64() | 1)
    }
    fn append_float_histogram(
        &mut self,
        _r: SeriesRef,
        l: &Labels,
        t: i64,
        h: &FloatHistogram,
    ) -> cairn_storage::Result<SeriesRef> {
        if self.no_histograms {
            return Err(StorageError::HistogramsUnsupported);
        }
        Self::check(t, true)?;
        self.log.push((l.clone(), t, Rec::Float2(h.clone())));
        Ok(l.hash64() | 1)
    }
    fn update_metadata(
        &mut self,
        r: SeriesRef,
        _l: &Labels,
        _m: &Metadata,
    ) -> cairn_storage::Result<SeriesRef> {
        Ok(r)
    }
    fn commit(self: Box<Self>) -> cairn_storage::Result<()> {
        Ok(())
    }
    fn rollback(self: Box<Self>) -> cairn_storage::Result<()> {
        Ok(())
    }
}

/// Labels, float sample timestamps, histogram timestamps.
type Series = (Vec<(String, String)>, Vec<i64>, Vec<i64>);

/// The histogram the generated requests carry at `t`: a float one at
/// multiples of 3, an integer one otherwise, and at 7 an invalid one (its
/// count does not match its buckets).
fn wire_hist(t: i64) -> wire::Histogram {
    let mut h = wire::Histogram {
        sum: t as f64,
        schema: 0,
        zero_threshold: 0.001,
        positive_spans: vec![BucketSpan {
            offset: 0,
            length: 2,
        }],
        reset_hint: 2,
        timestamp: t,
        ..Default::default()
    };
    if t % 3 == 0 {
        h.count = Some(Count::CountFloat(4.5));
        h.zero_count = Some(ZeroCount::ZeroCountFloat(0.5));
        h.positive_counts = vec![1.0, 3.0];
    } else {
        let count = if t == 7 { 5 } else { 6 };
        h.count = Some(Count::CountInt(count));
        h.zero_count = Some(ZeroCount::ZeroCountInt(1));
        h.positive_deltas = vec![2, 1];
    }
    h
}

pub(super) fn v1_series(ls: &[(String, String)], ts: &[i64], hs: &[i64]) -> TimeSeries {
    TimeSeries {
        labels: ls.iter().map(|(n, v)| Label::new(n, v)).collect(),
        samples: ts
            .iter()
            .map(|&t| Sample {
                value: t as f64 * 0.5,
                timestamp: t,
            })
            .collect(),
        histograms: hs.iter().map(|&t| wire_hist(t)).collect(),
        ..TimeSeries::default()
    }
}

fn v1_body(series: &[Series]) -> Vec<u8> {
    let ts = series
        .iter()
        .map(|(ls, ts, hs)| v1_series(ls, ts, hs))
        .collect();
    let raw = WriteRequest {
        timeseries: ts,
        metadata: vec![],
    }
    .encode_to_vec();
    cairn_proto::snappy::compress(&raw)
}

fn v2_body(series: &[Series]) -> Vec<u8> {
    let mut symbols: Vec<String> = vec![String::new()];
    let mut sym = |s: &str| -> u32 {
        match symbols.iter().position(|x| x == s) {
            Some(i) => i as u32,
            None => {
                symbols.push(s.to_owned());
                (symbols.len() - 1) as u32
            }
        }
    };
    let ts: Vec<write_v2::TimeSeries> = series
        .iter()
        .map(|(ls, ts, hs)| write_v2::TimeSeries {
            labels_refs: ls.iter().flat_map(|(n, v)| [sym(n), sym(v)]).collect(),
            histograms: hs.iter().map(|&t| wire_hist(t)).collect(),
            samples: ts
                .iter()
                .map(|&t| write_v2::Sample {
                    value: t as f64 * 0.5,
                    timestamp: t,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    let raw = write_v2::Request {
        symbols: symbols.into_iter().map(Bytes::from).collect(),
        timeseries: ts,
    }
    .encode_to_vec();
    cairn_proto::snappy::compress(&raw)
}

fn series_strategy() -> impl Strategy<Value = Series> {
    // Few names and values so series repeat within a request; unsorted
    // and duplicate names occur. Timestamps cover every refusal.
    (
        proptest::collection::vec(("(__name__|a|b)", "(x|y)"), 1..4),
        proptest::collection::vec(
            prop_oneof![8 => -2i64..50, 1 => Just(13i64), 1 => Just(100i64)],
            0..4,
        ),
        prop_oneof![
            3 => Just(Vec::new()),
            1 => proptest::collection::vec(
                prop_oneof![
                    8 => -2i64..50,
                    1 => Just(13i64),
                    1 => Just(7i64),
                    1 => Just(100i64)
                ],
                1..3,
            ),
        ],
    )
}

fn run(version: WireVersion, body: &[u8], cached: bool) -> (String, Vec<(Labels, i64, Rec)>) {
    let cfg = ServerConfig {
        max_error_messages: 3,
        ..ServerConfig::default()
    };
    // Timestamps above 50 are too far in the future.
    let now = 50 - cfg.max_future_ms;
    let mut app = Recorder::default();
    let res = if cached {
        ingest_with(
            version,
            body,
            &cfg,
            &mut app,
            now,
            &mut WriteScratch::cached(),
        )
    } else {
        ingest(version, body, &cfg, &mut app, now)
    };
    let res = match res {
        Ok(o) => format!(
            "{} {} {} {}",
            o.samples_written,
            o.histograms_written,
            o.samples_refused,
            o.refusal_message().unwrap_or_default()
        ),
        Err(e) => format!("error {e}"),
    };
    (res, app.log)
}

#[test]
fn batch_refusals_in_request_order() {
    let s = |ls: &[(&str, &str)], ts: &[i64]| -> Series {
        (
            ls.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ts.to_vec(),
            Vec::new(),
        )
    };
    let req = vec![
        s(&[("__name__", "up")], &[1, 2]),
        s(&[("b", "x"), ("a", "y")], &[3]), // unsorted labels
        s(&[("__name__", "up")], &[-1, 13, 100, 4]), // ooo, dup, future, good
        s(&[("__name__", "down")], &[5]),
    ];
    let body = v1_body(&req);
    let (out, stored) = run(WireVersion::V1, &body, true);
    assert_eq!(stored.len(), 4, "{stored:?}");
    let msg = out.split("\n  ").collect::<Vec<_>>();
    assert_eq!(msg[0], "4 0 4 refused 4 samples (4 written):", "{out}");
    assert!(msg[1].contains("sorted"), "{out}");
    assert!(msg[2].starts_with("out of order"), "{out}");
    assert!(msg[3].contains("duplicate"), "{out}");
    assert!(msg[4].starts_with("... and 1 more"), "{out}");
    assert_eq!(
        run(WireVersion::V1, &body, false),
        (out.clone(), stored.clone())
    );
    assert_eq!(run(WireVersion::V2, &v2_body(&req), false), (out, stored));

    // A storage failure that is not the sender's fault fails the request.
    let body = v1_body(&[s(&[("__name__", "up")], &[1, 20, 2])]);
    let (out, _) = run(WireVersion::V1, &body, true);
    assert!(out.starts_with("error storage:"), "{out}");
}

#[test]
fn metadata_types_map_by_name_from_both_protocols() {
    use write::MetricType as V1;
    use write_v2::MetricType as V2;
    for (v1, v2, want) in [
        (V1::Unknown, V2::Unspecified, MetricType::Unknown),
        (V1::Counter, V2::Counter, MetricType::Counter),
        (V1::Gauge, V2::Gauge, MetricType::Gauge),
        (V1::Histogram, V2::Histogram, MetricType::Histogram),
        (
            V1::GaugeHistogram,
            V2::GaugeHistogram,
            MetricType::GaugeHistogram,
        ),
        (V1::Summary, V2::Summary, MetricType::Summary),
        (V1::Info, V2::Info, MetricType::Info),
        (V1::StateSet, V2::StateSet, MetricType::StateSet),
    ] {
        assert_eq!(MetricType::from_code(v1 as i32), want);
        assert_eq!(MetricType::from_code(v2 as i32), want);
    }
}

proptest! {
    #[test]
    fn v1_batch_matches_v2_one_by_one(
        req in proptest::collection::vec(series_strategy(), 0..12),
        cached in any::<bool>(),
    ) {
        let v1 = run(WireVersion::V1, &v1_body(&req), cached);
        let v2 = run(WireVersion::V2, &v2_body(&req), false);
        if v1.0.starts_with("error") {
            // Rolled back: what was staged does not matter.
            prop_assert_eq!(v1.0, v2.0);
        } else {
            prop_assert_eq!(v1, v2);
        }
    }
}
