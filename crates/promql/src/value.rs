//! Query values: what an evaluation yields.
//!
//! The shapes follow Prometheus: an instant vector is a list of samples that
//! share one timestamp, a matrix is a list of series each holding float
//! points and histogram points in increasing time order, a scalar
//! and a string carry the evaluation time. Sample values are floats or
//! native histograms (the model crate's `FloatHistogram`).

use std::fmt;
use std::sync::Arc;

use cairn_model::Labels;

pub use cairn_model::{FloatHistogram, Span};

/// The value of one sample.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleValue {
    Float(f64),
    Histogram(Arc<FloatHistogram>),
}

impl SampleValue {
    /// The histogram, if this is a histogram sample.
    pub fn as_histogram(&self) -> Option<&Arc<FloatHistogram>> {
        match self {
            SampleValue::Float(_) => None,
            SampleValue::Histogram(h) => Some(h),
        }
    }

    /// The float, if this is a float sample.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            SampleValue::Float(f) => Some(*f),
            SampleValue::Histogram(_) => None,
        }
    }
}

/// A float point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FPoint {
    pub t: i64,
    pub f: f64,
}

/// A histogram point of a series.
#[derive(Debug, Clone, PartialEq)]
pub struct HPoint {
    pub t: i64,
    pub h: Arc<FloatHistogram>,
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    pub t: i64,
    pub value: SampleValue,
    /// Set when an operation decided the metric name must go; the name is
    /// removed when the query finishes (Prometheus 3's delayed name removal),
    /// so that `label_replace` and friends can still see it meanwhile.
    pub drop_name: bool,
}

impl Sample {
    /// A float sample.
    pub fn float(metric: Labels, t: i64, f: f64) -> Self {
        Self {
            metric,
            t,
            value: SampleValue::Float(f),
            drop_name: false,
        }
    }

    /// The float value, if any.
    pub fn f(&self) -> Option<f64> {
        self.value.as_float()
    }

    /// The histogram value, if any.
    pub fn h(&self) -> Option<&Arc<FloatHistogram>> {
        self.value.as_histogram()
    }
}

/// A series of a matrix: points sorted by time.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub metric: Labels,
    pub floats: Vec<FPoint>,
    pub histograms: Vec<HPoint>,
    /// See [`Sample::drop_name`].
    pub drop_name: bool,
}

/// An instant vector.
pub type Vector = Vec<Sample>;
/// A range vector or the result of a range query, sorted by labels.
pub type Matrix = Vec<Series>;

/// The result of a query.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Vector(Vector),
    Matrix(Matrix),
    Scalar { t: i64, v: f64 },
    String { t: i64, v: String },
}

impl QueryValue {
    /// Prometheus's name for the value type.
    pub fn type_name(&self) -> &'static str {
        match self {
            QueryValue::Vector(_) => "vector",
            QueryValue::Matrix(_) => "matrix",
            QueryValue::Scalar { .. } => "scalar",
            QueryValue::String { .. } => "string",
        }
    }
}

impl fmt::Display for QueryValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueryValue::Vector(v) => {
                for s in v {
                    match &s.value {
                        SampleValue::Float(x) => writeln!(f, "{} => {} @[{}]", s.metric, x, s.t)?,
                        SampleValue::Histogram(h) => {
                            writeln!(f, "{} => {} @[{}]", s.metric, h.test_expression(), s.t)?
                        }
                    }
                }
                Ok(())
            }
            QueryValue::Matrix(m) => {
                for s in m {
                    write!(f, "{} =>", s.metric)?;
                    for p in &s.floats {
                        write!(f, " {} @[{}]", p.f, p.t)?;
                    }
                    for p in &s.histograms {
                        write!(f, " {} @[{}]", p.h.test_expression(), p.t)?;
                    }
                    writeln!(f)?;
                }
                Ok(())
            }
            QueryValue::Scalar { t, v } => write!(f, "scalar: {v} @[{t}]"),
            QueryValue::String { t, v } => write!(f, "string: {v} @[{t}]"),
        }
    }
}

/// Warnings and infos collected while evaluating, deduplicated, in the
/// order first seen.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    /// Adds a warning (prefixed like Prometheus's).
    pub fn warn(&mut self, msg: impl fmt::Display) {
        let m = format!("PromQL warning: {msg}");
        if !self.warnings.contains(&m) {
            self.warnings.push(m);
        }
    }

    /// Adds an info annotation (prefixed like Prometheus's).
    pub fn info(&mut self, msg: impl fmt::Display) {
        let m = format!("PromQL info: {msg}");
        if !self.infos.contains(&m) {
            self.infos.push(m);
        }
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.warnings.is_empty() && self.infos.is_empty()
    }
}

/// A finished query: its value and annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: QueryValue,
    pub annotations: Annotations,
}
