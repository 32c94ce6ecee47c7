//! The seam between the API and the PromQL engine.

use std::sync::Arc;
use std::time::Duration;

use cairn_model::{FloatHistogram, Labels};

/// The value of one instant-vector sample: a float or a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    Float(f64),
    Histogram(Arc<FloatHistogram>),
}

/// One series of a range result: its float points and its histogram
/// points, each sorted by time (a series may have both, at different
/// timestamps).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RangeSeries {
    pub labels: Labels,
    pub floats: Vec<(i64, f64)>,
    pub histograms: Vec<(i64, Arc<FloatHistogram>)>,
}

impl RangeSeries {
    /// A series of float points only.
    pub fn floats(labels: Labels, floats: Vec<(i64, f64)>) -> Self {
        Self {
            labels,
            floats,
            histograms: Vec::new(),
        }
    }
}

/// A query's value, in the four PromQL result types.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryOutput {
    Scalar {
        t: i64,
        v: f64,
    },
    String {
        t: i64,
        s: String,
    },
    /// Instant vector: labels, timestamp, value.
    Vector(Vec<(Labels, i64, SampleValue)>),
    /// Range vector / range query result.
    Matrix(Vec<RangeSeries>),
}

/// A result with its annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub output: QueryOutput,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

/// Why a query failed, in Prometheus's error types.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum QueryError {
    /// The query or its parameters are malformed (400 bad_data).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (422 execution).
    #[error("{0}")]
    Execution(String),
    /// The query ran past its time limit (503 timeout).
    #[error("{0}")]
    Timeout(String),
    /// The query was canceled (499 canceled).
    #[error("{0}")]
    Canceled(String),
    /// A storage or engine fault (500 internal).
    #[error("{0}")]
    Internal(String),
}

/// Per-query settings from the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// The request's `timeout`, if any (the engine's own limit still holds).
    pub timeout: Option<Duration>,
    /// Thanos's `max_source_resolution`: `raw`, `5m`, `1h`, `auto` or a
    /// duration, already checked; `None` leaves the server's default.
    pub max_source_resolution: Option<String>,
}

/// Evaluates PromQL. Implemented by an adapter over `cairn_promql`.
pub trait QueryEngine: Send + Sync {
    /// An instant query at `t` (ms).
    fn instant(&self, query: &str, t: i64, opts: &QueryOptions) -> Result<QueryResult, QueryError>;
    /// A range query over `[start, end]` (ms) at `step` (ms).
    fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        opts: &QueryOptions,
    ) -> Result<QueryResult, QueryError>;
}
