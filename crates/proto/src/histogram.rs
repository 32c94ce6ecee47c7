//! The native histogram message, identical in remote write 1.0
//! (`prometheus.Histogram`) and 2.0 (`io.prometheus.write.v2.Histogram`).
//!
//! The `count` oneof decides the kind: `count_int` (or no count at all)
//! makes an integer histogram whose buckets are the delta-encoded
//! `*_deltas`, `count_float` a float histogram whose buckets are the
//! absolute `*_counts`; the `zero_count` oneof is expected to be of the
//! same kind. Remote read answers float histograms with `count_float`.
//! Field 17, `start_timestamp`, exists in 2.0 only (rc.4); a 1.0 message
//! never carries it.

/// A native histogram sample.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Number of observations: an integer or a float count.
    #[prost(oneof = "Count", tags = "1, 2")]
    pub count: Option<Count>,
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket layout: -4..=8 exponential, -53 custom bounds.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    #[prost(oneof = "ZeroCount", tags = "6, 7")]
    pub zero_count: Option<ZeroCount>,
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    #[prost(enumeration = "ResetHint", tag = "14")]
    pub reset_hint: i32,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
    /// Remote write 2.0 only (rc.4, Prometheus 3.8+): when the counter
    /// behind this histogram started, in ms; 0 when unknown.
    #[prost(int64, tag = "17")]
    pub start_timestamp: i64,
}

/// `Histogram.count`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Count {
    #[prost(uint64, tag = "1")]
    CountInt(u64),
    #[prost(double, tag = "2")]
    CountFloat(f64),
}

/// `Histogram.zero_count`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ZeroCount {
    #[prost(uint64, tag = "6")]
    ZeroCountInt(u64),
    #[prost(double, tag = "7")]
    ZeroCountFloat(f64),
}

/// A run of consecutive buckets.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// Whether a counter reset happened before this histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ResetHint {
    Unknown = 0,
    Yes = 1,
    No = 2,
    Gauge = 3,
}
