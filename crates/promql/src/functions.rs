//! Function kernels: pure functions of already evaluated arguments, in
//! the shape of Prometheus's `FunctionCall`. Nothing here evaluates an
//! expression or reads storage.
//!
//! Three kinds:
//! - window kernels ([`RangeFn`], [`hist_window`]): one series' samples
//!   inside one window → a value; the evaluator runs them per series over
//!   all steps (`eval::range`), and loading threads run the parameterless
//!   ones while a series' samples are in cache (`load::rows`);
//! - columnar kernels ([`columns`]): all steps at once over columns;
//! - step-wise kernels ([`step`]): one step's instant vectors, for the
//!   functions whose result at a step depends on the whole vector in ways
//!   columns do not capture (`sort`, histogram buckets across series).
//!
//! Name handling (Prometheus 3, delayed name removal): functions that
//! compute a new value mark the metric name for removal;
//! `last_over_time`, `first_over_time`, `sort*`, `label_*` and friends
//! keep it.

mod hist_range;
mod histogram;
mod label;
mod math;
mod misc;
mod over_time;
mod rate;
pub(crate) mod rate_batch;
mod time;

use crate::columns::{StepVal, Value};
use crate::error::{eval_err, Result};
use crate::plan::{Func, RangeFunc, Steps};
use crate::value::{Annotations, FPoint};

pub(crate) use hist_range::{eval as hist_window, HistOut};
pub(crate) use misc::absent_of;

/// What a window kernel sees besides the points.
pub(crate) struct RangeCtx<'a> {
    /// The evaluation time of the step.
    pub ts: i64,
    /// Window bounds: `(lo, hi]`.
    pub lo: i64,
    pub hi: i64,
    pub range: i64,
    /// The step's values of the scalar parameters, in argument order.
    pub scalars: &'a [f64],
}

/// A window kernel over float points.
pub(crate) type RangeFn = fn(&[FPoint], &RangeCtx<'_>) -> Option<f64>;

/// The window kernel of a range function.
pub(crate) fn range_fn(f: RangeFunc) -> RangeFn {
    match f {
        RangeFunc::Rate => rate::rate,
        RangeFunc::Increase => rate::increase,
        RangeFunc::Delta => rate::delta,
        RangeFunc::Irate => rate::irate,
        RangeFunc::Idelta => rate::idelta,
        RangeFunc::Deriv => rate::deriv,
        RangeFunc::PredictLinear => rate::predict_linear,
        RangeFunc::DoubleExponentialSmoothing => rate::double_exponential_smoothing,
        RangeFunc::Resets => rate::resets,
        RangeFunc::Changes => rate::changes,
        RangeFunc::AvgOverTime => over_time::avg,
        RangeFunc::SumOverTime => over_time::sum,
        RangeFunc::CountOverTime => over_time::count,
        RangeFunc::MinOverTime => over_time::min,
        RangeFunc::MaxOverTime => over_time::max,
        RangeFunc::LastOverTime => over_time::last,
        RangeFunc::FirstOverTime => over_time::first,
        RangeFunc::StddevOverTime => over_time::stddev,
        RangeFunc::StdvarOverTime => over_time::stdvar,
        RangeFunc::QuantileOverTime => over_time::quantile,
        RangeFunc::MadOverTime => over_time::mad,
        RangeFunc::PresentOverTime => over_time::present,
        RangeFunc::TsOfMaxOverTime => over_time::ts_of_max,
        RangeFunc::TsOfMinOverTime => over_time::ts_of_min,
        RangeFunc::TsOfLastOverTime => over_time::ts_of_last,
        RangeFunc::TsOfFirstOverTime => over_time::ts_of_first,
    }
}

/// Checks a range function's scalar parameters at one step: an error for
/// an invalid smoothing or trend factor, a warning for a quantile outside
/// `[0, 1]`.
pub(crate) fn check_range_params(
    f: RangeFunc,
    scalars: &[f64],
    annos: &mut Annotations,
) -> Result<()> {
    match f {
        RangeFunc::DoubleExponentialSmoothing => {
            let sf = scalars.first().copied().unwrap_or(f64::NAN);
            let tf = scalars.get(1).copied().unwrap_or(f64::NAN);
            if !(sf > 0.0 && sf < 1.0) {
                return eval_err(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                ));
            }
            if !(tf > 0.0 && tf < 1.0) {
                return eval_err(format!(
                    "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                ));
            }
        }
        RangeFunc::QuantileOverTime => {
            let q = scalars.first().copied().unwrap_or(f64::NAN);
            if let Some(w) = histogram::quantile_range_warning(q) {
                annos.warn(w);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Evaluates `f` over its arguments at all `steps` at once. The
/// arguments come back unused when `f` has no columnar kernel, or one that
/// does not cover them (then the caller evaluates step by step).
pub(crate) fn columns(
    f: &Func,
    args: Vec<Value>,
    steps: Steps,
    annos: &mut Annotations,
) -> Result<std::result::Result<Value, Vec<Value>>> {
    Ok(Ok(match f {
        Func::Math(m) => math::map(args, |x, _| math::apply(*m, x))?,
        Func::Clamp | Func::ClampMin | Func::ClampMax | Func::Round => {
            math::clamp_round(f, args, steps)?
        }
        Func::Date(d) => time::date(*d, args, steps)?,
        Func::Vector => misc::vector(args)?,
        Func::Scalar => misc::scalar(args, steps)?,
        Func::Time => Value::Scalar(steps.times().map(|t| t as f64 / 1000.0).collect()),
        Func::Pi => Value::Scalar(vec![std::f64::consts::PI; steps.n]),
        Func::Absent(labels) => misc::absent(labels, args, steps)?,
        Func::Timestamp { selector } => misc::timestamp(*selector, args, steps)?,
        Func::LabelReplace(lr) => label::replace(lr, args)?,
        Func::LabelJoin { dst, sep, srcs } => label::join(dst, sep, srcs, args)?,
        Func::HistogramQuantile => match histogram::quantile_columns(args, steps, annos)? {
            Ok(v) => v,
            Err(args) => return Ok(Err(args)),
        },
        Func::Range(_)
        | Func::AbsentOverTime(_)
        | Func::Sort { .. }
        | Func::SortByLabel { .. }
        | Func::HistogramFraction
        | Func::HistogramStat(_) => return Ok(Err(args)),
    }))
}

/// Evaluates `f` over its arguments' values at one step, evaluated at
/// `ts`.
pub(crate) fn step(
    f: &Func,
    args: Vec<StepVal>,
    ts: i64,
    annos: &mut Annotations,
) -> Result<StepVal> {
    match f {
        Func::Sort { desc } => misc::sort(*desc, args, ts),
        Func::SortByLabel { desc, labels } => misc::sort_by_label(*desc, labels, args, ts),
        Func::HistogramQuantile => histogram::quantile_step(args, ts, annos),
        Func::HistogramFraction => histogram::fraction_step(args, ts, annos),
        Func::HistogramStat(s) => histogram::stat_step(*s, args, ts),
        _ => eval_err("internal error: function has no step-wise kernel"),
    }
}

/// The `i`th argument's step value as a scalar.
fn scalar_arg(args: &[StepVal], i: usize) -> Result<f64> {
    match args.get(i) {
        Some(StepVal::Scalar(f)) => Ok(*f),
        Some(other) => eval_err(format!("expected scalar, got {}", other.type_name())),
        None => eval_err(format!("missing argument {}", i + 1)),
    }
}

/// The `i`th argument's step value as an instant vector.
fn vector_arg(args: Vec<StepVal>, i: usize) -> Result<crate::value::Vector> {
    match args.into_iter().nth(i) {
        Some(StepVal::Vector(v)) => Ok(v),
        Some(other) => eval_err(format!(
            "expected instant vector, got {}",
            other.type_name()
        )),
        None => eval_err(format!("missing argument {}", i + 1)),
    }
}

/// The `i`th argument over all steps as columns.
fn cols_arg(args: Vec<Value>, i: usize) -> Result<Vec<crate::columns::Col>> {
    match args.into_iter().nth(i) {
        Some(Value::Vector(v)) => Ok(v),
        Some(other) => eval_err(format!(
            "expected instant vector, got {}",
            other.type_name()
        )),
        None => eval_err(format!("missing argument {}", i + 1)),
    }
}

/// The `i`th argument over all steps as a scalar per step.
fn scalars_arg(args: &[Value], i: usize) -> Result<&[f64]> {
    match args.get(i) {
        Some(Value::Scalar(v)) => Ok(v),
        Some(other) => eval_err(format!("expected scalar, got {}", other.type_name())),
        None => eval_err(format!("missing argument {}", i + 1)),
    }
}
