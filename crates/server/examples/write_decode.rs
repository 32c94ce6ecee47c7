//! Measures the remote write decode-and-validate path (snappy, protobuf,
//! label checks, `Labels` construction) without storage, on a request
//! shaped like a GPU node's scrape: 5,000 series of 12 labels, one sample
//! each, as Prometheus's 1.0 sender batches them.
//!
//! Run: cargo run --release -p cairn-server --example write_decode
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::time::Instant;

use cairn_proto::write::{Label, Sample, TimeSeries, WriteRequest};
use cairn_proto::Message;
use cairn_server::write::check_write_body;
use cairn_server::ServerConfig;

fn main() {
    let mut ts = Vec::new();
    for i in 0..5000u32 {
        let mut labels = vec![
            ("DCGM_FI_DRIVER_VERSION", "550.54.15".to_string()),
            ("Hostname", format!("gpu-node-{}", i / 400)),
            (
                "UUID",
                format!("GPU-{:08x}-aaaa-bbbb-cccc-{:012x}", i / 50, i),
            ),
            ("__name__", format!("DCGM_FI_DEV_METRIC_{}", i % 50)),
            ("container", "trainer".to_string()),
            ("device", format!("nvidia{}", (i / 50) % 8)),
            ("gpu", format!("{}", (i / 50) % 8)),
            (
                "instance",
                format!("10.0.{}.{}:9400", i / 400, (i / 50) % 8),
            ),
            ("job", "dcgm-exporter".to_string()),
            ("modelName", "NVIDIA H100 80GB HBM3".to_string()),
            ("namespace", "ml-training".to_string()),
            ("pod", format!("trainer-{}", i / 400)),
        ];
        labels.sort();
        ts.push(TimeSeries {
            labels: labels.iter().map(|(n, v)| Label::new(n, v)).collect(),
            samples: vec![Sample {
                value: f64::from(i) * 1.5,
                timestamp: 1_700_000_000_000,
            }],
            ..TimeSeries::default()
        });
    }
    let raw = WriteRequest {
        timeseries: ts,
        metadata: vec![],
    }
    .encode_to_vec();
    let body = cairn_proto::snappy::compress(&raw);
    let cfg = ServerConfig::default();
    let iters = 200;
    let start = Instant::now();
    let mut written = 0;
    for _ in 0..iters {
        let out = check_write_body(Some("application/x-protobuf"), Some("snappy"), &body, &cfg)
            .expect("valid request");
        assert!(
            out.refusal_message().is_none(),
            "{:?}",
            out.refusal_message()
        );
        written += out.samples_written;
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "{} requests of 5000 series: {:.0} samples/s, {:.1} MB/s decompressed ({} bytes raw, {} compressed), {:.2} ms/request",
        iters,
        written as f64 / el,
        (raw.len() * iters) as f64 / el / 1e6,
        raw.len(),
        body.len(),
        el * 1000.0 / iters as f64
    );
}
