//! Element-wise math: `abs`, `ceil`, `exp`, trigonometry, `clamp*`, `round`.

use promql_parser::parser::Expr;

use super::{arg, map_floats};
use crate::error::Result;
use crate::eval::{Evaluator, StepVal};

/// The float function behind a simple element-wise PromQL function.
pub(super) fn simple(name: &str) -> Option<fn(f64) -> f64> {
    Some(match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "rad" => |v| v * std::f64::consts::PI / 180.0,
        "deg" => |v| v * 180.0 / std::f64::consts::PI,
        "sgn" => |v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        },
        _ => return None,
    })
}

/// Go's `math.Max`: +Inf wins, then NaN propagates.
fn go_max(a: f64, b: f64) -> f64 {
    if a == f64::INFINITY || b == f64::INFINITY {
        f64::INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: -Inf wins, then NaN propagates.
fn go_min(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY || b == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

pub(super) fn clamp_round(
    ev: &mut Evaluator<'_>,
    name: &str,
    args: &[&Expr],
    ts: i64,
) -> Result<StepVal> {
    let mut scalars = Vec::new();
    for a in args.iter().skip(1) {
        scalars.push(ev.eval_scalar(a, ts)?);
    }
    let v = ev.eval_vector(arg(args, 0)?, ts)?;
    let s0 = scalars.first().copied().unwrap_or(f64::NAN);
    let s1 = scalars.get(1).copied().unwrap_or(f64::NAN);
    let out = match name {
        "clamp" => {
            if s1 < s0 {
                Vec::new()
            } else {
                map_floats(v, ts, |x| go_max(s0, go_min(s1, x)))
            }
        }
        "clamp_min" => map_floats(v, ts, |x| go_max(s0, x)),
        "clamp_max" => map_floats(v, ts, |x| go_min(s0, x)),
        _ => {
            let to_nearest = if scalars.is_empty() { 1.0 } else { s0 };
            let inv = 1.0 / to_nearest;
            map_floats(v, ts, |x| (x * inv + 0.5).floor() / inv)
        }
    };
    Ok(StepVal::Vector(out))
}
