//! The query engine: parse → plan → load → evaluate, then the result in
//! Prometheus's shapes.
//!
//! Contracts: a range query's steps are `start, start+step, ... <= end`
//! (inclusive); its matrix is sorted by labels. An instant query keeps the
//! order its expression produced (so `sort`/`topk` orders survive). With
//! delayed name removal, names marked for removal are removed last; if two
//! series then share a label set the query fails, as in Prometheus 3.

#[cfg(test)]
mod tests;

use std::time::Instant;

use cairn_storage::Queryable;
use promql_parser::parser::{self, value::ValueType, Expr};

use crate::binary::METADATA_LABELS;
use crate::columns::{merge_duplicates, Value};
use crate::error::{eval_err, PromqlError, Result};
use crate::eval::Evaluator;
use crate::options::{EngineOptions, SourceResolution};
use crate::plan::{compile, Kind, Mode, Plan, PlanOptions, Steps};
use crate::value::{
    FPoint, HPoint, Matrix, QueryResult, QueryValue, Sample, SampleValue, Series, Vector,
};

/// A PromQL engine. Cheap to share; holds only options.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
}

fn parse(query: &str) -> Result<Expr> {
    parser::parse(query).map_err(PromqlError::Parse)
}

/// Parses the query of a range query: `step()` in duration expressions is
/// its step.
fn parse_range(query: &str, step_ms: i64) -> Result<Expr> {
    parser::parse_with_step(query, step_ms).map_err(PromqlError::Parse)
}

fn value_type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

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

/// What one evaluation produced besides its value (for tests).
pub(crate) struct Run {
    pub(crate) result: QueryResult,
    /// The mode each plan node ran in.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) ran: Vec<Option<Mode>>,
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) plan: Plan,
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

    /// The options a query against `q` is planned with: raw data only
    /// unless the storage reads downsampled levels.
    fn plan_options(&self, q: &dyn Queryable) -> std::borrow::Cow<'_, EngineOptions> {
        if q.downsampled() || self.opts.max_source_resolution == SourceResolution::Raw {
            std::borrow::Cow::Borrowed(&self.opts)
        } else {
            std::borrow::Cow::Owned(EngineOptions {
                max_source_resolution: SourceResolution::Raw,
                ..self.opts.clone()
            })
        }
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
        self.instant_with(q, expr, time_ms, PlanOptions::default())
            .map(|r| r.result)
    }

    pub(crate) fn instant_with(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        time_ms: i64,
        popts: PlanOptions,
    ) -> Result<Run> {
        let deadline = Instant::now().checked_add(self.opts.timeout);
        let opts = self.plan_options(q);
        let plan = compile(expr, Steps::single(time_ms), &opts, popts)?;
        let data = crate::load::load(&plan, q, &self.opts, deadline)?;
        let mut ev = Evaluator::new(&plan, &self.opts, data, deadline);
        let root_is_matrix = matches!(
            plan.node(plan.root).map(|n| &n.kind),
            Some(Kind::Matrix { .. } | Kind::Subquery { .. })
        );
        let value = if root_is_matrix {
            let mut m = ev.matrix_at(plan.root, time_ms)?;
            // A range vector result holds every sample it selected at once
            // (a subquery's were counted when it was evaluated).
            let points: usize = m
                .iter()
                .map(|s| {
                    s.floats.len()
                        + s.histograms
                            .iter()
                            .map(|p| crate::eval::hist_size(&p.h))
                            .sum::<usize>()
                })
                .sum();
            if points > self.opts.max_samples {
                return Err(PromqlError::TooManySamples);
            }
            cleanup_matrix(&mut m)?;
            QueryValue::Matrix(m)
        } else {
            match ev.eval(plan.root)? {
                Value::Scalar(v) => QueryValue::Scalar {
                    t: time_ms,
                    v: v.first().copied().unwrap_or(f64::NAN),
                },
                Value::String(v) => QueryValue::String { t: time_ms, v },
                Value::Vector(cols) => {
                    let mut v: Vector = cols
                        .into_iter()
                        .filter_map(|c| {
                            let value = c.value(0)?;
                            Some(Sample {
                                metric: c.labels,
                                t: time_ms,
                                value,
                                drop_name: c.drop,
                            })
                        })
                        .collect();
                    cleanup_vector(&mut v)?;
                    QueryValue::Vector(v)
                }
            }
        };
        let ran = std::mem::take(&mut ev.ran);
        let annotations = std::mem::take(&mut ev.annos);
        drop(ev);
        Ok(Run {
            result: QueryResult { value, annotations },
            ran,
            plan,
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
        let expr = parse_range(query, step)?;
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
        self.range_with(q, expr, start, end, step, PlanOptions::default())
            .map(|r| r.result)
    }

    pub(crate) fn range_with(
        &self,
        q: &dyn Queryable,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        popts: PlanOptions,
    ) -> Result<Run> {
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
        let deadline = Instant::now().checked_add(self.opts.timeout);
        let steps = Steps::span(start, end, step);
        let opts = self.plan_options(q);
        let plan = compile(expr, steps, &opts, popts)?;
        let data = crate::load::load(&plan, q, &self.opts, deadline)?;
        let mut ev = Evaluator::new(&plan, &self.opts, data, deadline);
        let mut series: Matrix = match ev.eval(plan.root)? {
            Value::Scalar(v) => vec![Series {
                metric: cairn_model::Labels::empty(),
                floats: v
                    .iter()
                    .enumerate()
                    .map(|(i, &f)| FPoint {
                        t: steps.time(i),
                        f,
                    })
                    .collect(),
                histograms: Vec::new(),
                drop_name: false,
            }],
            Value::Vector(cols) => {
                let mut out = Vec::new();
                for c in merge_duplicates(cols, true)? {
                    let mut floats = Vec::new();
                    let mut histograms = Vec::new();
                    for k in 0..c.vals.len() {
                        let i = c.start + k;
                        match c.value(i) {
                            Some(SampleValue::Float(f)) => floats.push(FPoint {
                                t: steps.time(i),
                                f,
                            }),
                            Some(SampleValue::Histogram(h)) => histograms.push(HPoint {
                                t: steps.time(i),
                                h,
                            }),
                            None => {}
                        }
                    }
                    out.push(Series {
                        metric: c.labels,
                        floats,
                        histograms,
                        drop_name: c.drop,
                    });
                }
                out
            }
            Value::String(_) => {
                return eval_err(
                    "invalid expression type \"string\" for range query, must be Scalar or instant Vector",
                )
            }
        };
        cleanup_matrix(&mut series)?;
        series.sort_by(|a, b| a.metric.cmp(&b.metric));
        let ran = std::mem::take(&mut ev.ran);
        let annotations = std::mem::take(&mut ev.annos);
        drop(ev);
        Ok(Run {
            result: QueryResult {
                value: QueryValue::Matrix(series),
                annotations,
            },
            ran,
            plan,
        })
    }
}
