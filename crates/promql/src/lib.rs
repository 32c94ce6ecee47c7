//! The PromQL evaluator on `promql-parser`.
//!
//! [`Engine`] evaluates instant and range queries against any
//! [`cairn_storage::Queryable`] with Prometheus 3 semantics. The `.test`
//! script runner lives in its own crate, `cairn-promqltest`.

mod engine;
mod error;
mod eval;
mod functions;
mod numeric;
mod par;
mod value;

pub use engine::{Engine, EngineOptions};

/// True when `query` parses and one of its selectors would select a series
/// with one of the label sets `series` (the runner uses it to tell which
/// evals touch native-histogram series it cannot load).
pub fn query_selects_any(query: &str, series: &[cairn_model::Labels]) -> bool {
    promql_parser::parser::parse(query).is_ok_and(|e| eval::select::selects_any(&e, series))
}
pub use error::{PromqlError, Result};
pub use numeric::almost_equal;
pub use value::{
    Annotations, FPoint, FloatHistogram, HPoint, Matrix, QueryResult, QueryValue, Sample,
    SampleValue, Series, Span, Vector,
};
