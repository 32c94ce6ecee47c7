//! Remote write 1.0: `prometheus.WriteRequest` and the types it shares with
//! remote read (`TimeSeries`, `Label`, `Sample`).
//!
//! Label names and values are raw bytes on purpose (see the crate docs): the
//! wire type of a proto3 `string` and `bytes` field is the same, so this is
//! compatible with every sender while letting the receiver decide what to do
//! with invalid UTF-8.

mod view;

use bytes::Bytes;

pub use crate::histogram::Histogram;
pub use view::{
    decode_series, decode_series_exemplars, decode_series_histograms, decode_series_samples,
    ExemplarView, Item, MetadataView, RawSeries, SeriesCounts, WriteRequestView,
};

/// The body of a remote write 1.0 request (after snappy).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    // Tag 2 is reserved (Cortex used it for the request source).
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// One series: its labels (sorted by name) and samples (sorted by time).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// One label pair, as raw bytes.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
}

impl Label {
    /// A label from strings (copies them).
    pub fn new(name: &str, value: &str) -> Self {
        Self {
            name: Bytes::copy_from_slice(name.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        }
    }
}

/// One float sample.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// An exemplar attached to a series (trace id and friends as labels).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// Metadata of one metric family (1.0 sends it apart from the series).
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    #[prost(bytes = "bytes", tag = "2")]
    pub metric_family_name: Bytes,
    // Tag 3 is unused.
    #[prost(bytes = "bytes", tag = "4")]
    pub help: Bytes,
    #[prost(bytes = "bytes", tag = "5")]
    pub unit: Bytes,
}

/// `MetricMetadata.MetricType`: the numbering of Prometheus's metric types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    GaugeHistogram = 4,
    Summary = 5,
    Info = 6,
    StateSet = 7,
}
