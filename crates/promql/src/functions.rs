//! PromQL functions: dispatch by name, plus the shared driver for functions
//! that take a range vector (one call per series per step, fed the points
//! inside that step's window).
//!
//! Name handling (Prometheus 3, delayed removal): functions that compute a
//! new value mark the metric name for removal; `last_over_time`,
//! `first_over_time`, `sort*`, `label_*` and friends keep it.

mod hist_range;
pub(crate) mod histogram;
mod label;
mod math;
mod misc;
mod over_time;
pub(crate) mod rate;
pub(crate) mod rate_batch;
mod time;

use promql_parser::parser::{Call, Expr};

use crate::error::{eval_err, Result};
use crate::eval::{unparen, Evaluator, RangeArg, StepVal};
use crate::value::{FPoint, Sample, Vector};

/// Prometheus 3 accepts any non-empty UTF-8 label name (a string literal
/// with a `\x` byte escape need not be UTF-8: see `cairn_model::RAW_BYTE_BASE`).
pub(crate) fn is_valid_label_name(n: &str) -> bool {
    !n.is_empty() && cairn_model::is_valid_utf8(n)
}

/// What a range function sees at one step besides the points.
pub(crate) struct RangeCtx<'a> {
    pub ts: i64,
    /// Window bounds: `(lo, hi]`.
    pub lo: i64,
    pub hi: i64,
    pub range: i64,
    /// Values of the scalar arguments, in argument order (matrix excluded).
    pub scalars: &'a [f64],
}

/// Range functions the columnar evaluator handles: those with a single range argument and
/// no parameters.
pub(crate) const RANGE_FUNC_NAMES: [&str; 20] = [
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "deriv",
    "resets",
    "changes",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "last_over_time",
    "first_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "present_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
];

pub(crate) type RangeFn = fn(&[FPoint], &RangeCtx<'_>) -> Option<f64>;

pub(crate) fn range_fn(name: &str) -> Option<RangeFn> {
    Some(match name {
        "rate" => rate::rate,
        "increase" => rate::increase,
        "delta" => rate::delta,
        "irate" => rate::irate,
        "idelta" => rate::idelta,
        "deriv" => rate::deriv,
        "predict_linear" => rate::predict_linear,
        "double_exponential_smoothing" | "holt_winters" => rate::double_exponential_smoothing,
        "resets" => rate::resets,
        "changes" => rate::changes,
        "avg_over_time" => over_time::avg,
        "sum_over_time" => over_time::sum,
        "count_over_time" => over_time::count,
        "min_over_time" => over_time::min,
        "max_over_time" => over_time::max,
        "last_over_time" => over_time::last,
        "first_over_time" => over_time::first,
        "stddev_over_time" => over_time::stddev,
        "stdvar_over_time" => over_time::stdvar,
        "quantile_over_time" => over_time::quantile,
        "mad_over_time" => over_time::mad,
        "present_over_time" => over_time::present,
        "ts_of_max_over_time" => over_time::ts_of_max,
        "ts_of_min_over_time" => over_time::ts_of_min,
        "ts_of_last_over_time" => over_time::ts_of_last,
        "ts_of_first_over_time" => over_time::ts_of_first,
        _ => return None,
    })
}

pub(crate) fn eval_call(ev: &mut Evaluator<'_>, c: &Call, ts: i64) -> Result<StepVal> {
    let name = c.func.name;
    let args: Vec<&Expr> = c.args.args.iter().map(|b| &**b).collect();
    if name == "absent_over_time" {
        return over_time::absent_over_time(ev, &args, ts);
    }
    if let Some(f) = range_fn(name) {
        return eval_range_call(ev, name, f, &args, ts);
    }
    match name {
        "label_replace" => label::label_replace(ev, &args, ts),
        "label_join" => label::label_join(ev, &args, ts),
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            misc::sort(ev, name, &args, ts)
        }
        "timestamp" => misc::timestamp(ev, &args, ts),
        "vector" => {
            let f = ev.eval_scalar(arg(&args, 0)?, ts)?;
            Ok(StepVal::Vector(vec![Evaluator::sample(
                cairn_model::Labels::empty(),
                ts,
                f,
                false,
            )]))
        }
        "scalar" => {
            let v = ev.eval_vector(arg(&args, 0)?, ts)?;
            let floats: Vec<f64> = v.iter().filter_map(Sample::f).collect();
            Ok(StepVal::Scalar(if floats.len() == 1 {
                floats.first().copied().unwrap_or(f64::NAN)
            } else {
                f64::NAN
            }))
        }
        "time" => Ok(StepVal::Scalar(ts as f64 / 1000.0)),
        "pi" => Ok(StepVal::Scalar(std::f64::consts::PI)),
        "absent" => misc::absent(ev, &args, ts),
        "histogram_quantile" => histogram::histogram_quantile(ev, &args, ts),
        "histogram_fraction" => histogram::histogram_fraction(ev, &args, ts),
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => histogram::histogram_accessor(ev, name, &args, ts),
        "clamp" | "clamp_min" | "clamp_max" | "round" => math::clamp_round(ev, name, &args, ts),
        "days_in_month" | "day_of_month" | "day_of_week" | "day_of_year" | "hour" | "minute"
        | "month" | "year" => time::date_fn(ev, name, &args, ts),
        _ => {
            if let Some(f) = math::simple(name) {
                let v = ev.eval_vector(arg(&args, 0)?, ts)?;
                return Ok(StepVal::Vector(map_floats(v, ts, f)));
            }
            eval_err(format!("function {name:?} is not supported"))
        }
    }
}

/// The `i`th argument.
pub(crate) fn arg<'e>(args: &[&'e Expr], i: usize) -> Result<&'e Expr> {
    match args.get(i) {
        Some(e) => Ok(e),
        None => eval_err(format!("missing argument {}", i + 1)),
    }
}

/// The string literal value of an argument.
pub(crate) fn string_arg(args: &[&Expr], i: usize) -> Result<String> {
    match unparen(arg(args, i)?) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => eval_err(format!("expected string literal as argument {}", i + 1)),
    }
}

/// Applies `f` to every float sample and marks the name for removal.
pub(crate) fn map_floats(v: Vector, ts: i64, f: impl Fn(f64) -> f64) -> Vector {
    v.into_iter()
        .filter_map(|mut s| {
            let x = s.f()?;
            s.value = crate::value::SampleValue::Float(f(x));
            s.t = ts;
            s.drop_name = true;
            Some(s)
        })
        .collect()
}

fn eval_range_call(
    ev: &mut Evaluator<'_>,
    name: &str,
    f: RangeFn,
    args: &[&Expr],
    ts: i64,
) -> Result<StepVal> {
    let mut matrix_idx = None;
    for (i, a) in args.iter().enumerate() {
        if matches!(unparen(a), Expr::MatrixSelector(_) | Expr::Subquery(_)) {
            matrix_idx = Some(i);
            break;
        }
    }
    let Some(mi) = matrix_idx else {
        return eval_err(format!("function {name} expects a range vector argument"));
    };
    let mut scalars = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if i != mi {
            scalars.push(ev.eval_scalar(a, ts)?);
        }
    }
    if name == "double_exponential_smoothing" || name == "holt_winters" {
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
    if name == "quantile_over_time" {
        let q = scalars.first().copied().unwrap_or(f64::NAN);
        if q.is_nan() || !(0.0..=1.0).contains(&q) {
            ev.annos.warn(format!(
                "quantile value should be between 0 and 1, got {}",
                cairn_model::format_go_g(q)
            ));
        }
    }
    let r: RangeArg = ev.range_arg(arg(args, mi)?, ts)?;
    let keep_name = name == "last_over_time" || name == "first_over_time";
    let mut out = Vec::new();
    let mut window_points = 0usize;
    for (i, s) in r.data.iter().enumerate() {
        let w = r.window(i);
        let hw = r.hwindow(i);
        if w.is_empty() && hw.is_empty() {
            continue;
        }
        // Every window of this step is in memory at once, as in Prometheus.
        window_points += w.len() + hw.len();
        if window_points > ev.opts.max_samples {
            return Err(crate::error::PromqlError::TooManySamples);
        }
        let ctx = RangeCtx {
            ts,
            lo: r.lo,
            hi: r.hi,
            range: r.range,
            scalars: &scalars,
        };
        let value = if hw.is_empty() {
            f(w, &ctx).map(crate::value::SampleValue::Float)
        } else {
            match hist_range::eval(name, w, hw, &ctx, ev, &s.labels) {
                hist_range::HistOut::Nothing => None,
                hist_range::HistOut::Value(v) => Some(v),
                hist_range::HistOut::Floats => f(w, &ctx).map(crate::value::SampleValue::Float),
            }
        };
        if let Some(value) = value {
            out.push(Sample {
                metric: s.labels.clone(),
                t: ts,
                value,
                drop_name: if keep_name { s.drop_name } else { true },
            });
            if s.non_counter_name && !w.is_empty() && (name == "rate" || name == "increase") {
                let n = s.labels.metric_name().unwrap_or("");
                ev.annos.info(format!(
                    "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {n:?}"
                ));
            }
        }
    }
    if out.len() > ev.opts.max_samples {
        return Err(crate::error::PromqlError::TooManySamples);
    }
    Ok(StepVal::Vector(out))
}
