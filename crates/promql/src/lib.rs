//! The PromQL engine on `promql-parser`: a parsed query is planned
//! ([`plan`]), its selectors are loaded ([`load`]) and its nodes are
//! evaluated ([`eval`]) by pure kernels ([`functions`], [`aggregate`],
//! [`binary`]). `docs/promql.md` describes the stages.
//!
//! [`Engine`] evaluates instant and range queries against any
//! [`cairn_storage::Queryable`] with Prometheus 3 semantics. The `.test`
//! script runner lives in its own crate, `cairn-promqltest`.

mod aggregate;
mod binary;
mod columns;
mod engine;
mod error;
mod eval;
mod functions;
mod grouping;
mod load;
mod numeric;
mod options;
mod par;
mod plan;
mod value;

pub use engine::Engine;
pub use error::{PromqlError, Result};
pub use numeric::almost_equal;
pub use options::{EngineOptions, SourceResolution};
pub use value::{
    Annotations, FPoint, FloatHistogram, HPoint, Matrix, QueryResult, QueryValue, Sample,
    SampleValue, Series, Span, Vector,
};

/// Checks that `query` parses (rule files are checked with it when they
/// load); the error is the parser's message.
pub fn check_expr(query: &str) -> std::result::Result<(), String> {
    promql_parser::parser::parse(query).map(|_| ())
}

/// True when `query` parses and one of its selectors would select a series
/// with one of the label sets `series` (the script runner uses it to tell
/// which evals touch native-histogram series).
pub fn query_selects_any(query: &str, series: &[cairn_model::Labels]) -> bool {
    promql_parser::parser::parse(query).is_ok_and(|e| plan::selects_any(&e, series))
}
