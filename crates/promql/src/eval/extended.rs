//! Prometheus's experimental extended range selectors (v3.8,
//! `--enable-feature=promql-extended-range-selectors`): `anchored` and
//! `smoothed` ranges for `rate`, `increase`, `delta` (and `anchored` for
//! `resets`, `changes`), a `smoothed` instant selector, and the range
//! vector an instant query of such a range returns.
//!
//! Contracts (as Prometheus's `extendedRate`, `extendFloats` and
//! `smoothSeries`):
//! - For a window `(start, end]` of a range, an anchored function also
//!   sees the newest sample at or before `start` within a lookback delta,
//!   and uses it as the window's first value; a smoothed one interpolates
//!   linearly to `start` and `end` from the samples around them (up to a
//!   lookback delta outside). Nothing is extrapolated. Counter resets
//!   inside count as in `rate`; at a smoothed edge, a reset sets the left
//!   value to 0 and adds the old value on the right.
//! - A smoothed instant selector is the sample at the step, or the linear
//!   interpolation between the samples around it (within a lookback delta
//!   each way), or the last one before it when none follows.
//! - Stale markers are not samples here; native histograms fail the query.

use crate::error::{eval_err, Result};
use crate::functions::RangeCtx;
use crate::load::{Row, Windows};
use crate::plan::{Extended, RangeFunc};
use crate::value::FPoint;

const NO_HISTOGRAMS: &str = "smoothed and anchored modifiers do not work with native histograms";

/// The error for a series holding native histograms.
pub(super) fn histograms_refused<T>() -> Result<T> {
    eval_err(NO_HISTOGRAMS)
}

/// Go's `sort.Search(n, pred)`: the first index below `n` where `pred`
/// holds, or `n`.
fn search(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    (0..n).find(|&i| pred(i)).unwrap_or(n)
}

/// Linear interpolation at `t` between `p1` and `p2`, counter resets
/// treated as Prometheus's `interpolate` does.
fn interpolate(p1: FPoint, p2: FPoint, t: i64, counter: bool, left_edge: bool) -> f64 {
    let (mut y1, mut y2) = (p1.f, p2.f);
    if counter && y2 < y1 {
        if left_edge {
            y1 = 0.0;
        } else {
            y2 += y1;
        }
    }
    y1 + (y2 - y1) * (t - p1.t) as f64 / (p2.t - p1.t) as f64
}

fn left_value(f: &[FPoint], first: usize, start: i64, smoothed: bool, counter: bool) -> f64 {
    match (f.get(first), f.get(first + 1)) {
        (Some(&a), Some(&b)) if smoothed && a.t < start => interpolate(a, b, start, counter, true),
        (Some(a), _) => a.f,
        (None, _) => f64::NAN,
    }
}

fn right_value(f: &[FPoint], last: usize, end: i64, smoothed: bool, counter: bool) -> f64 {
    let prev = last.checked_sub(1).and_then(|i| f.get(i));
    match (prev, f.get(last)) {
        (Some(&a), Some(&b)) if smoothed && b.t > end => interpolate(a, b, end, counter, false),
        (_, Some(b)) => b.f,
        (_, None) => f64::NAN,
    }
}

/// Prometheus's `extendedRate` over the points `f` of one window (read
/// from a lookback delta before `start`, and after `end` when smoothed).
fn extended_rate(
    f: &[FPoint],
    (start, end): (i64, i64),
    range: i64,
    smoothed: bool,
    counter: bool,
    rate: bool,
) -> Option<f64> {
    let n = f.len();
    let mut last = n.checked_sub(1)?;
    let mut first = search(last, |i| f.get(i).is_some_and(|p| p.t > start)).saturating_sub(1);
    if smoothed {
        last = search(last, |i| f.get(i).is_some_and(|p| p.t >= end));
    }
    if f.get(last)?.t <= start {
        return None;
    }
    let left = left_value(f, first, start, smoothed, counter);
    let right = right_value(f, last, end, smoothed, counter);
    let mut result = right - left;
    if counter {
        // Only samples strictly inside the window: the edges' resets are
        // in `left` and `right` already.
        if f.get(first)?.t <= start {
            first += 1;
        }
        let mut hi = last as isize;
        if f.get(last)?.t >= end {
            hi -= 1;
        }
        let inside: &[FPoint] = if hi >= first as isize {
            f.get(first..=hi as usize).unwrap_or(&[])
        } else {
            &[]
        };
        let mut prev = left;
        let mut correction = 0.0;
        for p in inside {
            if p.f < prev {
                correction += prev;
            }
            prev = p.f;
        }
        if right < prev {
            correction += prev;
        }
        result += correction;
    }
    if rate {
        result /= range as f64 / 1000.0;
    }
    Some(result)
}

/// The value of range function `func` over one window's points, for an
/// `anchored` or `smoothed` range; `kernel` is the function's own window
/// kernel (for `resets` and `changes`).
pub(super) fn window_value(
    func: RangeFunc,
    ext: Extended,
    f: &[FPoint],
    ctx: &RangeCtx<'_>,
    kernel: crate::functions::RangeFn,
) -> Option<f64> {
    let smoothed = ext == Extended::Smoothed;
    let edges = (ctx.lo, ctx.hi);
    match func {
        RangeFunc::Rate => extended_rate(f, edges, ctx.range, smoothed, true, true),
        RangeFunc::Increase => extended_rate(f, edges, ctx.range, smoothed, true, false),
        RangeFunc::Delta => extended_rate(f, edges, ctx.range, smoothed, false, false),
        // `resets`, `changes`: from the newest sample at or before the
        // window's start (Prometheus's `pickFirstSampleIndex`).
        _ => {
            let last = f.len().checked_sub(1)?;
            let first = search(last, |i| f.get(i).is_some_and(|p| p.t > ctx.lo)).saturating_sub(1);
            kernel(f.get(first..)?, ctx)
        }
    }
}

/// One series' row for range function `func` over an extended range:
/// each step's window is `(ref - range - lookback, ref]`, to `ref +
/// lookback` when smoothed (`refs`: evaluation and reference time per
/// step).
#[allow(clippy::too_many_arguments)]
pub(super) fn row(
    pts: &[FPoint],
    func: RangeFunc,
    ext: Extended,
    refs: &[(i64, i64)],
    range: i64,
    lookback: i64,
    params: &[Vec<f64>],
    kernel: crate::functions::RangeFn,
) -> Row {
    let ahead = if ext == Extended::Smoothed {
        lookback
    } else {
        0
    };
    let n = refs.len();
    let (mut vals, mut ok) = (vec![0.0; n], vec![false; n]);
    let mut windows = Windows::default();
    let mut scalars = Vec::with_capacity(params.len());
    for (k, &(ts, r)) in refs.iter().enumerate() {
        let a = pts.partition_point(|p| p.t <= r - range - lookback);
        let b = pts.partition_point(|p| p.t <= r + ahead);
        let w = pts.get(a..b).unwrap_or(&[]);
        windows.max = windows.max.max(w.len());
        if k + 1 == n {
            windows.last = w.len();
        }
        if w.is_empty() {
            continue;
        }
        scalars.clear();
        scalars.extend(params.iter().map(|p| p.get(k).copied().unwrap_or(f64::NAN)));
        let ctx = RangeCtx {
            ts,
            lo: r - range,
            hi: r,
            range,
            scalars: &scalars,
        };
        if let Some(v) = window_value(func, ext, w, &ctx, kernel) {
            if let (Some(x), Some(o)) = (vals.get_mut(k), ok.get_mut(k)) {
                *x = v;
                *o = true;
            }
        }
    }
    let any = ok.iter().any(|&o| o);
    Row {
        start: 0,
        vals,
        ok,
        any,
        windows,
    }
}

/// Prometheus's `extendFloats`: the range `(start, end]` of an anchored or
/// smoothed range selector as an instant query returns it, from the points
/// read a lookback delta around it: a point at `start` (the anchor or the
/// interpolation), the points inside, a point at `end`.
pub(super) fn extend_floats(f: &[FPoint], start: i64, end: i64, smoothed: bool) -> Vec<FPoint> {
    let Some(mut last) = f.len().checked_sub(1) else {
        return Vec::new();
    };
    let mut first = search(last, |i| f.get(i).is_some_and(|p| p.t > start)).saturating_sub(1);
    if smoothed {
        last = search(last, |i| f.get(i).is_some_and(|p| p.t >= end));
    }
    if f.get(last).is_none_or(|p| p.t <= start) {
        return Vec::new();
    }
    let left = left_value(f, first, start, smoothed, false);
    let right = right_value(f, last, end, smoothed, false);
    if f.get(first).is_some_and(|p| p.t <= start) {
        first += 1;
    }
    let mut hi = last as isize;
    if f.get(last).is_some_and(|p| p.t >= end) {
        hi -= 1;
    }
    let mut out = vec![FPoint { t: start, f: left }];
    if hi >= first as isize {
        out.extend_from_slice(f.get(first..=hi as usize).unwrap_or(&[]));
    }
    out.push(FPoint { t: end, f: right });
    out
}

/// A smoothed instant selector's value at reference time `r` from the
/// series' points: `(value, sample time)`.
pub(super) fn smoothed_at(f: &[FPoint], r: i64, lookback: i64) -> Option<f64> {
    let a = f.partition_point(|p| p.t <= r - lookback);
    let b = f.partition_point(|p| p.t <= r + lookback);
    let w = f.get(a..b)?;
    let i = w.partition_point(|p| p.t < r);
    match (i.checked_sub(1).and_then(|j| w.get(j)), w.get(i)) {
        (_, Some(next)) if next.t == r => Some(next.f),
        (Some(&prev), Some(&next)) => Some(interpolate(prev, next, r, false, false)),
        (Some(prev), None) => Some(prev.f),
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Vec<FPoint> {
        v.iter().map(|&(t, f)| FPoint { t, f }).collect()
    }

    #[test]
    fn anchored_increase_uses_the_sample_before_the_window() {
        // 1 2 3 4 5 at 0, 15, 30, 45, 60 s; increase over (20s, 80s]
        // anchored at the 15 s sample: 5 - 2.
        let f = pts(&[
            (0, 1.0),
            (15_000, 2.0),
            (30_000, 3.0),
            (45_000, 4.0),
            (60_000, 5.0),
        ]);
        let v = extended_rate(&f, (20_000, 80_000), 60_000, false, true, false);
        assert_eq!(v, Some(3.0));
        // Smoothed: interpolated at 20 s (2 + 1/3), the right edge takes
        // the last sample (none after it).
        let v = extended_rate(&f, (20_000, 80_000), 60_000, true, true, false).unwrap();
        assert!((v - (5.0 - (2.0 + 1.0 / 3.0))).abs() < 1e-12, "{v}");
        // A reset inside is added back.
        let r = pts(&[(0, 5.0), (10_000, 7.0), (20_000, 1.0), (30_000, 3.0)]);
        let v = extended_rate(&r, (5_000, 30_000), 25_000, false, true, false);
        assert_eq!(v, Some(3.0 - 5.0 + 7.0));
    }

    #[test]
    fn smoothed_instant_values() {
        let f = pts(&[(0, 1.0), (10_000, 2.0), (20_000, 3.0)]);
        assert_eq!(smoothed_at(&f, 10_000, 300_000), Some(2.0));
        assert_eq!(smoothed_at(&f, 15_000, 300_000), Some(2.5));
        assert_eq!(smoothed_at(&f, 25_000, 300_000), Some(3.0));
        assert_eq!(smoothed_at(&f, -5_000, 300_000), None);
    }

    #[test]
    fn extended_ranges_as_an_instant_query_returns_them() {
        // Anchored: read up to the window's end only.
        let f = pts(&[(0, 1.0), (15_000, 2.0), (30_000, 3.0)]);
        let out = extend_floats(&f, 20_000, 40_000, false);
        assert_eq!(out, pts(&[(20_000, 2.0), (30_000, 3.0), (40_000, 3.0)]));
        // Smoothed: read a lookback delta past it too.
        let f = pts(&[(0, 1.0), (15_000, 2.0), (30_000, 3.0), (45_000, 4.0)]);
        let out = extend_floats(&f, 20_000, 40_000, true);
        let want = [
            (20_000, 2.0 + 1.0 / 3.0),
            (30_000, 3.0),
            (40_000, 3.0 + 2.0 / 3.0),
        ];
        for (o, w) in out.iter().zip(want) {
            assert_eq!(o.t, w.0);
            assert!((o.f - w.1).abs() < 1e-12);
        }
    }
}
