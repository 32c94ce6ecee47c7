//! The PromQL evaluator on `promql-parser`, and the `.test` script runner.
//!
//! [`Engine`] evaluates instant and range queries against any
//! [`cairn_storage::Queryable`] with Prometheus 3 semantics; [`run_paths`]
//! runs Prometheus's PromQL test scripts against an in-memory store.

mod engine;
mod error;
mod eval;
mod functions;
pub mod runner;
mod value;

pub use engine::{Engine, EngineOptions};
pub use error::{PromqlError, Result};
pub use runner::{run_paths, FileSummary, Summary};
pub use value::{
    Annotations, FPoint, FloatHistogram, HPoint, Matrix, QueryResult, QueryValue, Sample,
    SampleValue, Series, Span, Vector,
};
