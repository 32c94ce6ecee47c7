//! Element-wise math: `abs`, `ceil`, `exp`, trigonometry, `clamp*`,
//! `round`, over columns.

use super::{cols_arg, scalars_arg};
use crate::columns::Value;
use crate::error::Result;
use crate::plan::{Func, MathFn, Steps};

/// The arithmetic of a simple element-wise function.
pub(super) fn apply(m: MathFn, v: f64) -> f64 {
    match m {
        MathFn::Abs => v.abs(),
        MathFn::Ceil => v.ceil(),
        MathFn::Floor => v.floor(),
        MathFn::Exp => v.exp(),
        MathFn::Sqrt => v.sqrt(),
        MathFn::Ln => v.ln(),
        MathFn::Log2 => v.log2(),
        MathFn::Log10 => v.log10(),
        MathFn::Sin => v.sin(),
        MathFn::Cos => v.cos(),
        MathFn::Tan => v.tan(),
        MathFn::Asin => v.asin(),
        MathFn::Acos => v.acos(),
        MathFn::Atan => v.atan(),
        MathFn::Sinh => v.sinh(),
        MathFn::Cosh => v.cosh(),
        MathFn::Tanh => v.tanh(),
        MathFn::Asinh => v.asinh(),
        MathFn::Acosh => v.acosh(),
        MathFn::Atanh => v.atanh(),
        MathFn::Rad => v * std::f64::consts::PI / 180.0,
        MathFn::Deg => v * 180.0 / std::f64::consts::PI,
        MathFn::Sgn => {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        }
    }
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

/// Applies `f(value, step)` to every float sample of the first argument
/// (`None` removes the sample) and marks the name for removal; histogram
/// samples yield nothing.
pub(super) fn map_opt(args: Vec<Value>, f: impl Fn(f64, usize) -> Option<f64>) -> Result<Value> {
    let mut cols = cols_arg(args, 0)?;
    for c in &mut cols {
        let hists = std::mem::take(&mut c.hists);
        for (k, (v, o)) in c.vals.iter_mut().zip(c.ok.iter_mut()).enumerate() {
            if !*o {
                continue;
            }
            if hists.get(k).is_some_and(Option::is_some) {
                *o = false;
                continue;
            }
            match f(*v, c.start + k) {
                Some(x) => *v = x,
                None => *o = false,
            }
        }
        c.drop = true;
    }
    Ok(Value::Vector(cols))
}

/// [`map_opt`] with a function that always yields a value.
pub(super) fn map(args: Vec<Value>, f: impl Fn(f64, usize) -> f64) -> Result<Value> {
    map_opt(args, |x, i| Some(f(x, i)))
}

/// `clamp`, `clamp_min`, `clamp_max` and `round`, whose bounds (or
/// rounding unit) are scalars that may change from step to step.
pub(super) fn clamp_round(f: &Func, args: Vec<Value>, steps: Steps) -> Result<Value> {
    let at = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(f64::NAN);
    let p0: Vec<f64> = match args.get(1) {
        Some(_) => scalars_arg(&args, 1)?.to_vec(),
        None => vec![1.0; steps.n],
    };
    let p1: Vec<f64> = match args.get(2) {
        Some(_) => scalars_arg(&args, 2)?.to_vec(),
        None => Vec::new(),
    };
    match f {
        // No sample at a step where the bounds are crossed.
        Func::Clamp => map_opt(args, |x, i| {
            let (lo, hi) = (at(&p0, i), at(&p1, i));
            if hi < lo {
                None
            } else {
                Some(go_max(lo, go_min(hi, x)))
            }
        }),
        Func::ClampMin => map(args, |x, i| go_max(at(&p0, i), x)),
        Func::ClampMax => map(args, |x, i| go_min(at(&p0, i), x)),
        _ => map(args, |x, i| {
            let inv = 1.0 / at(&p0, i);
            (x * inv + 0.5).floor() / inv
        }),
    }
}
