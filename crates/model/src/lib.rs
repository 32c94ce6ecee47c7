//! Cairn's shared vocabulary: label sets, label matchers, samples,
//! Prometheus's duration syntax and RFC 3339 times.
//!
//! This crate does no I/O. Every other crate speaks in these types, so they
//! are kept small, cheap to clone and independent of any storage layout.

pub mod duration;
mod error;
pub mod exposition;
mod gofloat;
mod histogram;
mod histogram_check;
mod labels;
mod matcher;
mod sample;
pub mod time;

pub use duration::{format_duration, parse_duration, parse_duration_or_seconds};
pub use error::ModelError;
pub use gofloat::{format_go_f, format_go_g, push_go_f};
pub use histogram::{
    bucket_bound, custom_bounds_match, Bucket, CombineInfo, CounterResetHint, FloatHistogram,
    Histogram, IncompatibleSchemas, Span, CUSTOM_BUCKETS_SCHEMA,
};
pub use histogram_check::{
    HistogramValidationError, Side as HistogramSide, EXPONENTIAL_SCHEMA_MAX,
    EXPONENTIAL_SCHEMA_MAX_RESERVED, EXPONENTIAL_SCHEMA_MIN,
};
pub use labels::{
    cmp_encoded, go_quote, is_valid_utf8, raw_byte, sort_key, write_go_quoted, Label, Labels,
    LabelsBuilder, METRIC_NAME, RAW_BYTE_BASE,
};
pub use matcher::{MatchType, Matcher};
pub use sample::{
    is_stale_nan, Exemplar, Sample, EXEMPLAR_MAX_LABEL_SET_LENGTH, STALE_NAN, STALE_NAN_BITS,
};
