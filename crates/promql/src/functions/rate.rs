//! Counter and gauge rates (`rate`, `increase`, `delta`, `irate`, `idelta`),
//! regressions (`deriv`, `predict_linear`), `double_exponential_smoothing`,
//! `resets` and `changes`.
//!
//! `rate`/`increase`/`delta` extrapolate exactly as Prometheus does: to the
//! window edges when the first/last sample is within 110% of the average
//! sample spacing of them, otherwise by half a spacing; counters are never
//! extrapolated below zero.

use super::RangeCtx;
use crate::numeric::kahan_inc;
use crate::value::FPoint;

fn extrapolated(w: &[FPoint], c: &RangeCtx<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let (first, last) = (w.first()?, w.last()?);
    let mut result = last.f - first.f;
    if is_counter {
        let mut prev = first.f;
        for p in w.iter().skip(1) {
            if p.f < prev {
                result += prev;
            }
            prev = p.f;
        }
    }
    extrapolate(w, result, (c.lo, c.hi), c.range, is_counter, is_rate)
}

/// Extrapolates `result`, the change over the window `w` of `(lo, hi]`
/// (reset-corrected for counters), to the window's edges: the
/// arithmetic of Prometheus's `extrapolatedRate`, operation for operation.
/// `None` for fewer than two points.
pub(crate) fn extrapolate(
    w: &[FPoint],
    result: f64,
    (lo, hi): (i64, i64),
    range: i64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let first = *w.first()?;
    let last = *w.last()?;
    let mut to_start = (first.t - lo) as f64 / 1000.0;
    let mut to_end = (hi - last.t) as f64 / 1000.0;
    let sampled = (last.t - first.t) as f64 / 1000.0;
    let avg = sampled / (w.len() - 1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if is_counter {
        let mut to_zero = to_start;
        if result > 0.0 && first.f >= 0.0 {
            to_zero = sampled * (first.f / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if is_rate {
        factor /= range as f64 / 1000.0;
    }
    Some(result * factor)
}

pub(super) fn rate(w: &[FPoint], c: &RangeCtx<'_>) -> Option<f64> {
    extrapolated(w, c, true, true)
}

pub(super) fn increase(w: &[FPoint], c: &RangeCtx<'_>) -> Option<f64> {
    extrapolated(w, c, true, false)
}

pub(super) fn delta(w: &[FPoint], c: &RangeCtx<'_>) -> Option<f64> {
    extrapolated(w, c, false, false)
}

fn instant(w: &[FPoint], is_rate: bool) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let a = *w.get(w.len() - 2)?;
    let b = *w.last()?;
    let dt = b.t - a.t;
    if dt == 0 {
        return None;
    }
    let mut v = b.f;
    // Prometheus tests `!(b < a)`, which also holds when either is NaN.
    let dropped = b.f < a.f;
    if !is_rate || !dropped {
        v = b.f - a.f;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

pub(super) fn irate(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    instant(w, true)
}

pub(super) fn idelta(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    instant(w, false)
}

/// Least-squares fit with Kahan sums; x is seconds relative to `t0`.
fn linear_regression(w: &[FPoint], t0: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init = w.first().map(|p| p.f).unwrap_or(f64::NAN);
    let mut const_y = true;
    for (i, p) in w.iter().enumerate() {
        if const_y && i > 0 && p.f != init {
            const_y = false;
        }
        n += 1.0;
        let x = (p.t - t0) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(p.f, sy, cy);
        (sxy, cxy) = kahan_inc(x * p.f, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    let intercept = sy / n - slope * sx / n;
    (slope, intercept)
}

pub(super) fn deriv(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    Some(linear_regression(w, w.first()?.t).0)
}

pub(super) fn predict_linear(w: &[FPoint], c: &RangeCtx<'_>) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let d = c.scalars.first().copied().unwrap_or(f64::NAN);
    let (slope, intercept) = linear_regression(w, c.ts);
    Some(slope * d + intercept)
}

pub(super) fn double_exponential_smoothing(w: &[FPoint], c: &RangeCtx<'_>) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let sf = c.scalars.first().copied().unwrap_or(f64::NAN);
    let tf = c.scalars.get(1).copied().unwrap_or(f64::NAN);
    let mut s0 = 0.0;
    let mut s1 = w.first()?.f;
    let mut b = w.get(1)?.f - s1;
    for (i, p) in w.iter().enumerate().skip(1) {
        let x = sf * p.f;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

pub(super) fn resets(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    let mut n = 0.0;
    for pair in w.windows(2) {
        if let [a, b] = pair {
            if b.f < a.f {
                n += 1.0;
            }
        }
    }
    Some(n)
}

pub(super) fn changes(w: &[FPoint], _: &RangeCtx<'_>) -> Option<f64> {
    let mut n = 0.0;
    for pair in w.windows(2) {
        if let [a, b] = pair {
            if b.f != a.f && !(a.f.is_nan() && b.f.is_nan()) {
                n += 1.0;
            }
        }
    }
    Some(n)
}
