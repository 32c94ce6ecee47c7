//! A scrape target that exposes native histograms in Prometheus's protobuf
//! exposition format (`io.prometheus.client.MetricFamily`, length-delimited),
//! the only format in which Prometheus 2.42 scrapes them. Each scrape
//! advances the histograms by one step, so consecutive scrapes differ.
//!
//! Exposed:
//! - `gpu_kernel_latency_seconds` (counter histogram, schema 3, integer
//!   counts, positive and negative buckets, a zero bucket), one series per
//!   `gpu` label 0..2;
//! - `gpu_power_watts_dist` (gauge histogram, float counts, schema 0).
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use prost::Message;

#[derive(Clone, PartialEq, prost::Message)]
struct MetricFamily {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    help: String,
    #[prost(int32, tag = "3")]
    kind: i32,
    #[prost(message, repeated, tag = "4")]
    metric: Vec<Metric>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct LabelPair {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(string, tag = "2")]
    value: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Metric {
    #[prost(message, repeated, tag = "1")]
    label: Vec<LabelPair>,
    #[prost(message, optional, tag = "7")]
    histogram: Option<Histogram>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BucketSpan {
    #[prost(sint32, tag = "1")]
    offset: i32,
    #[prost(uint32, tag = "2")]
    length: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Histogram {
    #[prost(uint64, tag = "1")]
    sample_count: u64,
    #[prost(double, tag = "4")]
    sample_count_float: f64,
    #[prost(double, tag = "2")]
    sample_sum: f64,
    #[prost(sint32, tag = "5")]
    schema: i32,
    #[prost(double, tag = "6")]
    zero_threshold: f64,
    #[prost(uint64, tag = "7")]
    zero_count: u64,
    #[prost(double, tag = "8")]
    zero_count_float: f64,
    #[prost(message, repeated, tag = "9")]
    negative_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "10")]
    negative_delta: Vec<i64>,
    #[prost(double, repeated, tag = "11")]
    negative_count: Vec<f64>,
    #[prost(message, repeated, tag = "12")]
    positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "13")]
    positive_delta: Vec<i64>,
    #[prost(double, repeated, tag = "14")]
    positive_count: Vec<f64>,
}

const COUNTER: i32 = 0;
const GAUGE_HISTOGRAM: i32 = 5;
const HISTOGRAM: i32 = 4;

fn label(name: &str, value: &str) -> LabelPair {
    LabelPair {
        name: name.into(),
        value: value.into(),
    }
}

/// The families at scrape `n` (0, 1, ...).
fn families(n: u64) -> Vec<MetricFamily> {
    let mut lat = Vec::new();
    for gpu in 0..3u64 {
        // Absolute bucket counts grow with n; the third positive bucket
        // appears from the fourth scrape on (a new bucket: recoding).
        let a = n * (gpu + 1) + 1;
        let b = 2 * n + gpu;
        let c = if n >= 3 { n - 2 } else { 0 };
        let neg = n / 2;
        let zero = n + 1;
        let mut spans = vec![BucketSpan {
            offset: -2,
            length: 2,
        }];
        let mut deltas = vec![a as i64, b as i64 - a as i64];
        if n >= 3 {
            spans.push(BucketSpan {
                offset: 3,
                length: 1,
            });
            deltas.push(c as i64 - b as i64);
        }
        lat.push(Metric {
            label: vec![label("gpu", &gpu.to_string())],
            histogram: Some(Histogram {
                sample_count: a + b + c + neg + zero,
                sample_sum: 0.25 * (a + b) as f64 + 3.0 * c as f64 - 0.5 * neg as f64,
                schema: 3,
                zero_threshold: 1e-6,
                zero_count: zero,
                negative_span: vec![BucketSpan {
                    offset: 0,
                    length: 1,
                }],
                negative_delta: vec![neg as i64],
                positive_span: spans,
                positive_delta: deltas,
                ..Default::default()
            }),
        });
    }
    // A gauge histogram with float counts that goes up and down.
    let w = [3.0, 5.5, 2.25, 4.0, 6.5][(n % 5) as usize];
    let power = Metric {
        label: vec![label("gpu", "0")],
        histogram: Some(Histogram {
            sample_count_float: w + 1.5,
            sample_sum: 300.0 * w,
            schema: 0,
            zero_threshold: 1e-6,
            zero_count_float: 0.0,
            positive_span: vec![BucketSpan {
                offset: 8,
                length: 2,
            }],
            positive_count: vec![w, 1.5],
            ..Default::default()
        }),
    };
    vec![
        MetricFamily {
            name: "gpu_kernel_latency_seconds".into(),
            help: "Kernel latency.".into(),
            kind: HISTOGRAM,
            metric: lat,
        },
        MetricFamily {
            name: "gpu_power_watts_dist".into(),
            help: "Power draw distribution.".into(),
            kind: GAUGE_HISTOGRAM,
            metric: vec![power],
        },
        MetricFamily {
            name: "gpu_scrapes_total".into(),
            help: "Scrapes.".into(),
            kind: COUNTER,
            metric: Vec::new(),
        },
    ]
}

/// The target; stops serving when dropped.
pub struct Target {
    pub port: u16,
    pub scrapes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Starts the target on a free port of 127.0.0.1.
pub fn start() -> Target {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let scrapes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (s, st) = (scrapes.clone(), stop.clone());
    std::thread::spawn(move || {
        for conn in l.incoming() {
            if st.load(Ordering::Acquire) {
                return;
            }
            let Ok(mut c) = conn else { continue };
            let mut req = [0u8; 4096];
            let _ = c.read(&mut req);
            let n = s.fetch_add(1, Ordering::AcqRel);
            let mut body = Vec::new();
            for f in families(n) {
                f.encode_length_delimited(&mut body).unwrap();
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(head.as_bytes());
            let _ = c.write_all(&body);
        }
    });
    Target {
        port,
        scrapes,
        stop,
    }
}
