//! The query engine: parses, plans, loads and evaluates queries.
//!
//! Contracts: a range query's steps are `start, start+step, ... <= end`
//! (inclusive); its matrix is sorted by labels. An instant query keeps the
//! order its expression produced (so `sort`/`topk` orders survive). Names
//! marked for removal are removed last; if two series then share a label
//! set the query fails, as in Prometheus 3.

use std::collections::HashMap;
use std::time::Duration;

use cairn_storage::Queryable;
use promql_parser::parser::{self, value::ValueType, Expr};

mod columnar;
#[cfg(test)]
mod tests;

use crate::error::{eval_err, PromqlError, Result};
use crate::eval::{Evaluator, StepVal};
use crate::value::{
    FPoint, HPoint, Matrix, QueryResult, QueryValue, Sample, SampleValue, Series, Vector,
};

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample, in ms (5m).
    pub lookback_delta: i64,
    /// Most samples one step (or the result) may hold (50M, Prometheus's default).
    pub max_samples: usize,
    /// Most raw samples the selectors of one query may load.
    pub max_loaded_samples: usize,
    /// Wall-clock limit of one query.
    pub timeout: Duration,
    /// Step of subqueries written without one (`[5m:]`), in ms.
    pub no_step_subquery_interval: i64,
    /// Threads one query may use to read and evaluate the series of a
    /// large selection (the machine's CPUs by default; 1 = all on the
    /// calling thread). Results do not depend on it.
    pub parallelism: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta: 5 * 60 * 1000,
            max_samples: 50_000_000,
            max_loaded_samples: 500_000_000,
            timeout: Duration::from_secs(120),
            no_step_subquery_interval: 60_000,
            parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// A PromQL engine. Cheap to share; holds only options.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

fn parse(query: &str) -> Result<Expr> {
    parser::parse(query).map_err(PromqlError::Parse)
}

fn value_type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

/// The reserved labels that describe the metric itself; they go together
/// with the name (Prometheus's `DropReserved(IsMetadataLabel)`).
pub(crate) const METADATA_LABELS: [&str; 3] = [cairn_model::METRIC_NAME, "__type__", "__unit__"];

/// Removes names marked for removal, then checks label sets are unique.
fn cleanup_vector(v: &mut Vector) -> Result<()> {
    for s in v.iter_mut() {
        if s.drop_name {
            s.metric = s.metric.without(&METADATA_LABELS);
            s.drop_name = false;
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(v.len());
    for s in v.iter() {
        if !seen.insert(s.metric.clone()) {
            return eval_err("vector cannot contain metrics with the same labelset");
        }
    }
    Ok(())
}

fn cleanup_matrix(m: &mut Matrix) -> Result<()> {
    for s in m.iter_mut() {
        if s.drop_name {
            s.metric = s.metric.without(&METADATA_LABELS);
            s.drop_name = false;
        }
    }
    let mut seen = std::collections::HashSet::with_capacity(m.len());
    for s in m.iter() {
        if !seen.insert(s.metric.clone()) {
            return eval_err("vector cannot contain metrics with the same labelset");
        }
    }
    Ok(())
}

/// Finds a result series by label set (and pending name removal) using the
/// labels' fast 64-bit hash, checking equality to survive collisions.
#[derive(Default)]
struct SeriesIndex {
    by_hash: HashMap<u64, Vec<usize>>,
}

impl SeriesIndex {
    fn find_or_insert(
        &mut self,
        series: &mut Vec<Series>,
        metric: cairn_model::Labels,
        drop: bool,
    ) -> usize {
        let h = metric.hash64() ^ u64::from(drop);
        let slot = self.by_hash.entry(h).or_default();
        for &i in slot.iter() {
            if series
                .get(i)
                .is_some_and(|s| s.drop_name == drop && s.metric == metric)
            {
                return i;
            }
        }
        series.push(Series {
            metric,
            floats: Vec::new(),
            histograms: Vec::new(),
            drop_name: drop,
        });
        slot.push(series.len() - 1);
        series.len() - 1
    }
}

impl Engine {
    /// An engine with `opts`.
    pub fn new(opts: EngineOptions) -> Self {
        Self { opts }
    }

    /// The engine's options.
    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    /// Evaluates `query` at `time_ms`.
    pub fn instant_query(
        &self,
        q: &dyn Queryable,
        query: &str,
        time_ms: i64,
    ) -> Result<QueryResult> {
        let expr = parse(query)?;
        self.instant_query_expr(q, &expr, time_ms)
    }

    /// Evaluates an already parsed expression at `time_ms`.
    pub fn instant_query_expr(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        time_ms: i64,
    ) -> Result<QueryResult> {
        let mut ev = Evaluator::new(&self.opts, time_ms, time_ms);
        ev.load(q, expr, 0)?;
        let value = match ev.eval(expr, time_ms)? {
            StepVal::Scalar(v) => QueryValue::Scalar { t: time_ms, v },
            StepVal::String(v) => QueryValue::String { t: time_ms, v },
            StepVal::Vector(mut v) => {
                for s in v.iter_mut() {
                    s.t = time_ms;
                }
                cleanup_vector(&mut v)?;
                QueryValue::Vector(v)
            }
            StepVal::Matrix(mut m) => {
                // A range vector result holds every sample it selected at once.
                let points: usize = m.iter().map(|s| s.floats.len() + s.histograms.len()).sum();
                if points > self.opts.max_samples {
                    return Err(PromqlError::TooManySamples);
                }
                cleanup_matrix(&mut m)?;
                QueryValue::Matrix(m)
            }
        };
        Ok(QueryResult {
            value,
            annotations: ev.annos,
        })
    }

    /// Evaluates `query` at every step from `start` to `end` (inclusive, ms).
    pub fn range_query(
        &self,
        q: &dyn Queryable,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult> {
        let expr = parse(query)?;
        self.range_query_expr(q, &expr, start, end, step)
    }

    /// Evaluates an already parsed expression over a range of steps.
    pub fn range_query_expr(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult> {
        self.range_query_with(q, expr, start, end, step, true)
    }

    /// [`Engine::range_query_expr`], optionally without the columnar path
    /// (tests compare the two).
    fn range_query_with(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        columnar: bool,
    ) -> Result<QueryResult> {
        if step <= 0 {
            return eval_err(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            );
        }
        if end < start {
            return eval_err("end timestamp must not be before start time");
        }
        let t = expr.value_type();
        if t != ValueType::Vector && t != ValueType::Scalar {
            return eval_err(format!(
                "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                value_type_name(t)
            ));
        }
        let mut ev = Evaluator::new(&self.opts, start, end);
        // The columnar evaluator reads values at the steps, which loading
        // threads then compute while each series' points are in cache.
        ev.rows = columnar && columnar::supported(expr);
        ev.load(q, expr, step)?;
        let saved = ev.annos.clone();
        let fast = if columnar {
            columnar::eval_range(&mut ev, expr, start, end, step)?
        } else {
            None
        };
        if let Some(mut series) = fast {
            cleanup_matrix(&mut series)?;
            series.sort_by(|a, b| a.metric.cmp(&b.metric));
            return Ok(QueryResult {
                value: QueryValue::Matrix(series),
                annotations: ev.annos,
            });
        }
        ev.annos = saved;
        if ev.rows {
            // The columnar evaluator gave way: the step-wise one needs the
            // points that rows stood in for.
            ev.rows = false;
            ev.selectors.clear();
            ev.load(q, expr, step)?;
        }
        let mut series: Vec<Series> = Vec::new();
        let mut index = SeriesIndex::default();
        let mut prev: Vec<usize> = Vec::new();
        let mut total = 0usize;
        let mut ts = start;
        while ts <= end {
            ev.check_deadline()?;
            let out: Vec<Sample> = match ev.eval(expr, ts)? {
                StepVal::Scalar(f) => vec![Evaluator::sample(cairn_model::Labels::empty(), ts, f, false)],
                StepVal::Vector(v) => v,
                other => {
                    return eval_err(format!(
                        "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                        other.type_name()
                    ))
                }
            };
            for (k, s) in out.into_iter().enumerate() {
                // Steps usually list the same series in the same order:
                // try last step's series at this position before hashing.
                let guess = prev.get(k).copied().filter(|&i| {
                    series
                        .get(i)
                        .is_some_and(|x| x.drop_name == s.drop_name && x.metric == s.metric)
                });
                let i = match guess {
                    Some(i) => i,
                    None => index.find_or_insert(&mut series, s.metric, s.drop_name),
                };
                if let Some(p) = prev.get_mut(k) {
                    *p = i;
                } else {
                    prev.push(i);
                }
                if let Some(ser) = series.get_mut(i) {
                    if ser.floats.last().is_some_and(|p| p.t == ts)
                        || ser.histograms.last().is_some_and(|p| p.t == ts)
                    {
                        return eval_err("vector cannot contain metrics with the same labelset");
                    }
                    match s.value {
                        SampleValue::Float(f) => ser.floats.push(FPoint { t: ts, f }),
                        SampleValue::Histogram(h) => ser.histograms.push(HPoint { t: ts, h }),
                    }
                }
                total += 1;
            }
            if total > self.opts.max_samples {
                return Err(PromqlError::TooManySamples);
            }
            ts += step;
        }
        cleanup_matrix(&mut series)?;
        series.sort_by(|a, b| a.metric.cmp(&b.metric));
        Ok(QueryResult {
            value: QueryValue::Matrix(series),
            annotations: ev.annos,
        })
    }
}
