//! The per-connection series cache changes nothing but speed: a sequence of
//! requests ingested with one `WriteScratch` appends the same samples under
//! the same labels and reports the same outcome as ingesting each request
//! without a cache, including for series that are refused.

use cairn_model::Labels;
use cairn_proto::write::{Label, Sample, TimeSeries, WriteRequest};
use cairn_proto::Message;
use cairn_server::write::{ingest, ingest_with, WireVersion, WriteScratch};
use cairn_server::ServerConfig;
use cairn_storage::{Appender, Metadata, SeriesRef};
use proptest::prelude::*;

/// Records every append; refuses samples with negative timestamps.
#[derive(Default)]
struct Recorder(Vec<(Labels, SeriesRef, i64, u64)>);

impl Appender for Recorder {
    fn append(
        &mut self,
        r: SeriesRef,
        l: &Labels,
        t: i64,
        v: f64,
    ) -> cairn_storage::Result<SeriesRef> {
        if t < 0 {
            return Err(cairn_storage::StorageError::OutOfOrderSample { t });
        }
        // A hint, when given, must be the ref this recorder hands out for l.
        assert!(r == 0 || r == l.hash64() | 1, "stale hint {r} for {l}");
        self.0.push((l.clone(), r, t, v.to_bits()));
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

fn series_strategy() -> impl Strategy<Value = TimeSeries> {
    // Small alphabets so series repeat; empty names, empty values and
    // unsorted or duplicate names all occur.
    (
        proptest::collection::vec(("(__name__|a|b|)", "(x|y|)"), 0..4),
        proptest::collection::vec(-2i64..50, 0..3),
    )
        .prop_map(|(labels, ts)| TimeSeries {
            labels: labels.iter().map(|(n, v)| Label::new(n, v)).collect(),
            samples: ts
                .iter()
                .map(|&t| Sample {
                    value: t as f64 * 0.5,
                    timestamp: t,
                })
                .collect(),
            ..TimeSeries::default()
        })
}

proptest! {
    #[test]
    fn cached_ingest_matches_uncached(
        reqs in proptest::collection::vec(proptest::collection::vec(series_strategy(), 0..8), 1..6)
    ) {
        let cfg = ServerConfig::default();
        let mut scratch = WriteScratch::cached();
        for ts in reqs {
            let raw = WriteRequest { timeseries: ts, metadata: vec![] }.encode_to_vec();
            let body = cairn_proto::snappy::compress(&raw);
            let mut a = Recorder::default();
            let mut b = Recorder::default();
            let want = ingest(WireVersion::V1, &body, &cfg, &mut a, 0);
            let got = ingest_with(WireVersion::V1, &body, &cfg, &mut b, 0, &mut scratch);
            match (want, got) {
                (Ok(w), Ok(g)) => {
                    prop_assert_eq!(w, g);
                }
                (Err(w), Err(g)) => prop_assert_eq!(w.to_string(), g.to_string()),
                (w, g) => prop_assert!(false, "uncached {:?} vs cached {:?}", w, g),
            }
            let strip = |v: &[(Labels, SeriesRef, i64, u64)]| -> Vec<(Labels, i64, u64)> {
                v.iter().map(|(l, _, t, x)| (l.clone(), *t, *x)).collect()
            };
            prop_assert_eq!(strip(&a.0), strip(&b.0));
        }
        prop_assert!(scratch.cache().is_some_and(|c| c.len() <= 1 << 18));
    }
}
