//! Property tests over the write request decoder: arbitrary bytes (raw or
//! snappy-wrapped) give an error or an outcome, never a panic; and valid
//! requests built from arbitrary label sets and samples are accepted with
//! every sample counted.

use cairn_proto::write::{Label, Sample, TimeSeries, WriteRequest};
use cairn_proto::Message;
use cairn_server::write::check_write_body;
use cairn_server::ServerConfig;
use proptest::prelude::*;

const V1: &str = "application/x-protobuf";
const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048), v2 in any::<bool>(), wrap in any::<bool>()) {
        let body = if wrap { cairn_proto::snappy::compress(&data) } else { data };
        let ct = if v2 { V2 } else { V1 };
        let _ = check_write_body(Some(ct), Some("snappy"), &body, &ServerConfig::default());
    }

    #[test]
    fn valid_v1_requests_are_accepted_in_full(
        series in proptest::collection::vec(
            (proptest::collection::btree_map("[a-z_][a-z0-9_]{0,10}", "\\PC{1,12}", 0..6),
             proptest::collection::vec((any::<i64>(), any::<f64>()), 1..5)),
            1..6)
    ) {
        let mut total = 0u64;
        let ts: Vec<TimeSeries> = series.iter().map(|(labels, samples)| {
            let mut ls = vec![Label::new("__name__", "m")];
            ls.extend(labels.iter().filter(|(n, _)| n.as_str() > "__name__").map(|(n, v)| Label::new(n, v)));
            ls.sort_by(|a, b| a.name.cmp(&b.name));
            total += samples.len() as u64;
            TimeSeries {
                labels: ls,
                samples: samples.iter().map(|&(t, v)| Sample { value: v, timestamp: t }).collect(),
                ..TimeSeries::default()
            }
        }).collect();
        let body = cairn_proto::snappy::compress(&WriteRequest { timeseries: ts, metadata: vec![] }.encode_to_vec());
        let out = check_write_body(Some(V1), None, &body, &ServerConfig::default()).unwrap();
        prop_assert_eq!(out.samples_written, total);
        prop_assert!(out.refusal_message().is_none());
    }
}
