//! The 1.0 path appends a whole request through `append_batch`; the 2.0
//! path still appends sample by sample. Fed the same series, both must
//! store the same samples and report the same outcome, messages and
//! their order included.

use super::*;
use cairn_proto::write::{self, Label, Sample, TimeSeries, WriteRequest};
use cairn_storage::{MetricType, StorageError};
use proptest::prelude::*;

/// Records appends; refuses negative timestamps (out of order) and 13
/// (duplicate); fails for good at 20.
#[derive(Default)]
struct Recorder(Vec<(Labels, i64, u64)>);

impl Appender for Recorder {
    fn append(
        &mut self,
        _r: SeriesRef,
        l: &Labels,
        t: i64,
        v: f64,
    ) -> cairn_storage::Result<SeriesRef> {
        match t {
            20 => return Err(StorageError::Closed),
            13 => return Err(StorageError::DuplicateSampleForTimestamp { t }),
            t if t < 0 => return Err(StorageError::OutOfOrderSample { t }),
            _ => {}
        }
        self.0.push((l.clone(), t, v.to_bits()));
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

type Series = (Vec<(String, String)>, Vec<i64>);

fn v1_body(series: &[Series]) -> Vec<u8> {
    let ts = series
        .iter()
        .map(|(ls, ts)| TimeSeries {
            labels: ls.iter().map(|(n, v)| Label::new(n, v)).collect(),
            samples: ts
                .iter()
                .map(|&t| Sample {
                    value: t as f64 * 0.5,
                    timestamp: t,
                })
                .collect(),
            ..TimeSeries::default()
        })
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
        .map(|(ls, ts)| write_v2::TimeSeries {
            labels_refs: ls.iter().flat_map(|(n, v)| [sym(n), sym(v)]).collect(),
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
    )
}

fn run(version: WireVersion, body: &[u8], cached: bool) -> (String, Vec<(Labels, i64, u64)>) {
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
            "{} {} {}",
            o.samples_written,
            o.samples_refused,
            o.refusal_message().unwrap_or_default()
        ),
        Err(e) => format!("error {e}"),
    };
    (res, app.0)
}

#[test]
fn batch_refusals_in_request_order() {
    let s = |ls: &[(&str, &str)], ts: &[i64]| -> Series {
        (
            ls.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            ts.to_vec(),
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
    assert_eq!(msg[0], "4 4 refused 4 samples (4 written):", "{out}");
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
