//! Values of one series at every step of a node: an instant selector's or
//! a range function's, computed by the same code whether a loading thread
//! computes them right after decoding the series (while its samples are
//! in cache) or the evaluator does later from kept points.
//!
//! Contracts: steps are given by their reference times (after `@` and
//! `offset`), which never decrease; windows are `(t - range, t]`, the
//! instant lookback `(t - lookback, t]` skipping stale markers; every
//! value is computed with exactly the window kernels' arithmetic. A row
//! covers only the steps that can see one of the series' samples (a
//! series that starts late or stops early has a shorter row).

use cairn_model::is_stale_nan;

use crate::functions::rate_batch::CounterBatch;
use crate::functions::{RangeCtx, RangeFn};
use crate::plan::RangeFunc;
use crate::value::FPoint;

/// A float sample as the helpers here read it: the query's points, or the
/// raw samples a storage iterator read (instant selectors are filled from
/// those directly, without thinning them into points first).
pub(crate) trait TimeValue {
    fn t(&self) -> i64;
    fn f(&self) -> f64;
}

impl TimeValue for FPoint {
    #[inline]
    fn t(&self) -> i64 {
        self.t
    }
    #[inline]
    fn f(&self) -> f64 {
        self.f
    }
}

impl TimeValue for cairn_model::Sample {
    #[inline]
    fn t(&self) -> i64 {
        self.t
    }
    #[inline]
    fn f(&self) -> f64 {
        self.v
    }
}

/// Scratch space reused by [`range_values`] from series to series.
#[derive(Default)]
pub(crate) struct RowScratch {
    drops: Vec<u32>,
    batch: CounterBatch,
}

/// One series' values over a run of steps, from step `start` on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub(crate) start: usize,
    pub(crate) vals: Vec<f64>,
    pub(crate) ok: Vec<bool>,
    /// Whether any step has a value.
    pub(crate) any: bool,
    /// For a range function's row: the samples its windows held (see
    /// [`Windows`]); zero for an instant selector's.
    pub(crate) windows: Windows,
}

/// What one series' windows held, in samples, for the query sample limit:
/// the largest window at any step, and the window at the last step (what
/// Prometheus still holds when it adds the series' results).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Windows {
    pub(crate) max: usize,
    pub(crate) last: usize,
}

/// Hands `out(i, sample)` the instant-selector sample of `pts` at each
/// reference time `refs[i]` (non-decreasing) that has one: the newest
/// point at or before it, inside the lookback, not a stale marker.
fn fill_row<P: TimeValue>(pts: &[P], refs: &[i64], lookback: i64, mut out: impl FnMut(usize, &P)) {
    // `j`: the first point after the reference time (found by scanning:
    // see `range_row`).
    let mut j = match refs.first() {
        Some(&r) => pts.iter().position(|p| p.t() > r).unwrap_or(pts.len()),
        None => return,
    };
    for (i, &rt) in refs.iter().enumerate() {
        while pts.get(j).is_some_and(|p| p.t() <= rt) {
            j += 1;
        }
        if let Some(p) = j.checked_sub(1).and_then(|k| pts.get(k)) {
            if p.t() > rt - lookback && !is_stale_nan(p.f()) {
                out(i, p);
            }
        }
    }
}

/// The row of an instant selector over one series' points or raw samples
/// (with `time`, the samples' timestamps in seconds instead of their
/// values), and how many values it holds (what the loaded-samples guard
/// counts for it).
pub(crate) fn instant_row<P: TimeValue>(
    pts: &[P],
    refs: &[i64],
    lookback: i64,
    time: bool,
) -> (Row, usize) {
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        return (Row::default(), 0);
    };
    // Only the steps whose lookback can reach a point.
    let a = refs.partition_point(|&r| r < first.t());
    let b = refs.partition_point(|&r| r - lookback < last.t());
    let refs = refs.get(a..b.max(a)).unwrap_or(&[]);
    let mut vals = vec![0.0; refs.len()];
    let mut ok = vec![false; refs.len()];
    let mut held = 0usize;
    fill_row(pts, refs, lookback, |i, p| {
        if let (Some(v), Some(o)) = (vals.get_mut(i), ok.get_mut(i)) {
            *v = if time { p.t() as f64 / 1000.0 } else { p.f() };
            *o = true;
            held += 1;
        }
    });
    let row = Row {
        start: a,
        vals,
        ok,
        any: held > 0,
        windows: Windows::default(),
    };
    (row, held)
}

/// What every series of one range-function call shares.
pub(crate) struct RangeSpec<'a> {
    /// Per step: (evaluation time, reference time after `@`/`offset`).
    pub(crate) refs: &'a [(i64, i64)],
    pub(crate) range: i64,
    pub(crate) func: RangeFunc,
    pub(crate) f: RangeFn,
    /// Per scalar parameter, its value at each step.
    pub(crate) params: &'a [Vec<f64>],
}

/// The range function of `spec` over one series' points `pts` at the
/// steps `first..first + refs.len()` (`refs` is that part of the spec's):
/// `out(k, value)` for every step `first + k` that has a value (not always
/// in step order); the largest window's sample count goes into `max`.
/// Returns whether some step had a value.
fn range_row(
    pts: &[FPoint],
    spec: &RangeSpec<'_>,
    first: usize,
    refs: &[(i64, i64)],
    scratch: &mut RowScratch,
    max: &mut usize,
    mut out: impl FnMut(usize, f64),
) -> bool {
    let range = spec.range;
    let Some(&(_, first_hi)) = refs.first() else {
        return false;
    };
    let RowScratch { drops, batch } = scratch;
    // Only the points from the first window on matter. Found by a linear
    // scan, not a binary search: the points are usually not in cache yet,
    // and a scan is what the hardware prefetcher follows.
    let a0 = pts
        .iter()
        .position(|p| p.t > first_hi - range)
        .unwrap_or(pts.len());
    let counter_fn = spec.func.is_counter();
    // A counter that never drops (the usual case) needs no prefix counts:
    // every window is reset-free.
    let monotone = counter_fn && never_drops(pts.get(a0..).unwrap_or(&[]));
    if counter_fn && !monotone {
        counter_drops(pts.get(a0..).unwrap_or(&[]), drops);
    }
    let (mut a, mut b) = (a0, a0);
    let mut any = false;
    // Reset-free rate/increase windows are extrapolated in batches (see
    // `rate_batch`); the rest one by one.
    let is_rate = spec.func == RangeFunc::Rate;
    let mut scalars = [0.0f64; 2];
    let np = spec.params.len().min(scalars.len());
    for (k, &(ts, hi)) in refs.iter().enumerate() {
        let lo = hi - range;
        while pts.get(a).is_some_and(|p| p.t <= lo) {
            a += 1;
        }
        b = b.max(a);
        while pts.get(b).is_some_and(|p| p.t <= hi) {
            b += 1;
        }
        let win = pts.get(a..b).unwrap_or(&[]);
        if win.is_empty() {
            continue;
        }
        *max = (*max).max(win.len());
        // Without a counter reset in the window the reset loop of
        // rate/increase adds nothing: skip it (O(1) per step).
        let no_reset = monotone
            || counter_fn
                && matches!((drops.get(a - a0), (b - 1).checked_sub(a0).and_then(|l| drops.get(l))),
                (Some(x), Some(y)) if x == y);
        if no_reset {
            if batch.push(k, win, lo, hi) {
                batch.flush(range, is_rate, |k, x| {
                    any = true;
                    out(k, x);
                });
            }
            continue;
        }
        for (s, p) in scalars.iter_mut().zip(spec.params) {
            *s = p.get(first + k).copied().unwrap_or(f64::NAN);
        }
        let ctx = RangeCtx {
            ts,
            lo,
            hi,
            range,
            scalars: scalars.get(..np).unwrap_or(&[]),
        };
        if let Some(x) = (spec.f)(win, &ctx) {
            any = true;
            out(k, x);
        }
    }
    batch.flush(range, is_rate, |k, x| {
        any = true;
        out(k, x);
    });
    any
}

/// The row of range function `spec` over one series' points, with what
/// its windows held.
pub(crate) fn range_values(pts: &[FPoint], spec: &RangeSpec<'_>, scratch: &mut RowScratch) -> Row {
    let (Some(first), Some(last)) = (pts.first(), pts.last()) else {
        return Row::default();
    };
    // Only the steps whose window can hold a point.
    let refs = spec.refs;
    let a = refs.partition_point(|&(_, hi)| hi < first.t);
    let b = refs
        .partition_point(|&(_, hi)| hi - spec.range < last.t)
        .max(a);
    let Some(sub) = refs.get(a..b) else {
        return Row::default();
    };
    let n = sub.len();
    let (mut vals, mut ok) = (vec![0.0; n], vec![false; n]);
    let mut windows = Windows {
        max: 0,
        last: refs
            .last()
            .map_or(0, |&(_, hi)| window_len(pts, |p| p.t, hi - spec.range, hi)),
    };
    let any = range_row(pts, spec, a, sub, scratch, &mut windows.max, |k, x| {
        if let (Some(v), Some(o)) = (vals.get_mut(k), ok.get_mut(k)) {
            *v = x;
            *o = true;
        }
    });
    Row {
        start: a,
        vals,
        ok,
        any,
        windows,
    }
}

/// How many of the points `pts` (sorted by time) lie in `(lo, hi]`.
pub(crate) fn window_len<P>(pts: &[P], t: impl Fn(&P) -> i64, lo: i64, hi: i64) -> usize {
    let a = pts.partition_point(|p| t(p) <= lo);
    let b = pts.partition_point(|p| t(p) <= hi);
    b.saturating_sub(a)
}

/// Whether no point is below its predecessor (NaN never is): the test of
/// [`counter_drops`] without the counts, eight pairs at a time and without
/// an early exit, so that it compiles to vector compares.
pub(crate) fn never_drops(pts: &[FPoint]) -> bool {
    let (Some(head), Some(tail)) = (pts.get(..pts.len().saturating_sub(1)), pts.get(1..)) else {
        return true;
    };
    let mut a = head.chunks_exact(8);
    let mut b = tail.chunks_exact(8);
    let mut dropped = false;
    for (x, y) in a.by_ref().zip(b.by_ref()) {
        let mut d = false;
        for (p, q) in x.iter().zip(y) {
            d |= q.f < p.f;
        }
        dropped |= d;
    }
    for (p, q) in a.remainder().iter().zip(b.remainder()) {
        dropped |= q.f < p.f;
    }
    !dropped
}

/// `out[k]`: how many points `1..=k` are below their predecessor (counter
/// resets as `rate` sees them; NaN never counts), `out[0] = 0`.
pub(crate) fn counter_drops(pts: &[FPoint], out: &mut Vec<u32>) {
    out.clear();
    out.resize(pts.len(), 0);
    let mut n = 0u32;
    // Nothing is below NaN: the first point never counts.
    let mut prev = f64::NAN;
    for (o, p) in out.iter_mut().zip(pts) {
        n += u32::from(p.f < prev);
        prev = p.f;
        *o = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `never_drops` agrees with the prefix counts of `counter_drops`,
        /// NaNs and equal values included, at every length (remainders).
        #[test]
        fn never_drops_agrees_with_counter_drops(
            vals in prop::collection::vec(prop_oneof![
                8 => (0u32..50).prop_map(f64::from),
                1 => Just(f64::NAN),
                1 => Just(-1.0),
            ], 0..40),
            sorted: bool,
        ) {
            let mut vals = vals;
            if sorted {
                vals.sort_by(f64::total_cmp);
            }
            let pts: Vec<FPoint> = vals
                .iter()
                .enumerate()
                .map(|(i, &f)| FPoint { t: i as i64, f })
                .collect();
            let mut drops = Vec::new();
            counter_drops(&pts, &mut drops);
            prop_assert_eq!(never_drops(&pts), drops.last().is_none_or(|&n| n == 0));
        }

        /// A trimmed row holds exactly the values a full-length
        /// evaluation finds, at the same steps.
        #[test]
        fn trimmed_rows_equal_full_ones(
            times in prop::collection::btree_set(0i64..2_000, 0..30),
            start in -500i64..2_500, step in 1i64..200, n in 1usize..40,
            lookback in 1i64..600, range in 1i64..600,
        ) {
            let pts: Vec<FPoint> = times.iter().map(|&t| FPoint { t, f: (t % 17) as f64 }).collect();
            let refs: Vec<i64> = (0..n).map(|i| start + i as i64 * step).collect();
            let (row, _) = instant_row(&pts, &refs, lookback, false);
            for (i, &rt) in refs.iter().enumerate() {
                let want = pts.iter().rev().find(|p| p.t <= rt).filter(|p| p.t > rt - lookback).map(|p| p.f);
                let got = i.checked_sub(row.start).and_then(|k| row.ok.get(k).copied().filter(|&o| o).and(row.vals.get(k).copied()));
                prop_assert_eq!(got, want, "instant step {}", i);
            }
            let pairs: Vec<(i64, i64)> = refs.iter().map(|&r| (r, r)).collect();
            let spec = RangeSpec {
                refs: &pairs,
                range,
                func: RangeFunc::SumOverTime,
                f: crate::functions::range_fn(RangeFunc::SumOverTime),
                params: &[],
            };
            let row = range_values(&pts, &spec, &mut RowScratch::default());
            let mut max = 0;
            for (i, &rt) in refs.iter().enumerate() {
                let w: Vec<f64> = pts.iter().filter(|p| p.t > rt - range && p.t <= rt).map(|p| p.f).collect();
                let want = (!w.is_empty()).then(|| w.iter().sum::<f64>());
                let got = i.checked_sub(row.start).and_then(|k| row.ok.get(k).copied().filter(|&o| o).and(row.vals.get(k).copied()));
                prop_assert_eq!(got, want, "range step {}", i);
                max = max.max(w.len());
                if i + 1 == n {
                    prop_assert_eq!(row.windows.last, w.len());
                }
            }
            prop_assert_eq!(row.windows.max, max);
        }
    }
}
