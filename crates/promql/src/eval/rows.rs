//! Values of one series at every step of a range query: what the
//! columnar evaluator works with, computed by the same code whether a
//! loading thread computes it right after decoding the series (while its
//! points are in cache) or the evaluator does later.
//!
//! Contracts: steps are given by their reference times (after `@` and
//! `offset`), which never decrease; windows are `(t - range, t]`, the
//! instant lookback `(t - lookback, t]` skipping stale markers; every value
//! is computed with exactly the step-wise evaluator's arithmetic.

use cairn_model::is_stale_nan;

use crate::functions::rate_batch::CounterBatch;
use crate::functions::RangeCtx;
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

/// Hands `out(i, value)` the instant-selector value of `pts` at each
/// reference time `refs[i]` (non-decreasing) that has one: the newest
/// point at or before it, inside the lookback, not a stale marker.
fn fill_row<P: TimeValue>(pts: &[P], refs: &[i64], lookback: i64, mut out: impl FnMut(usize, f64)) {
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
                out(i, p.f());
            }
        }
    }
}

/// What every series of one range-function call shares.
pub(crate) struct RangeSpec<'a> {
    /// Per step: (evaluation time, reference time after `@`/`offset`).
    pub(crate) refs: &'a [(i64, i64)],
    pub(crate) range: i64,
    pub(crate) name: &'a str,
    pub(crate) f: crate::functions::RangeFn,
    pub(crate) counter_fn: bool,
}

/// One series' values over all steps.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) vals: Vec<f64>,
    pub(crate) ok: Vec<bool>,
    /// Whether any step has a value.
    pub(crate) any: bool,
}

/// The range function of `spec` over one series' points `pts` at every
/// step: `out(i, value)` for every step `i` that has a value (not always
/// in step order), and each window's sample count added to `wp[i]`.
/// Returns whether some step had a value. `drops` is scratch space.
fn range_row(
    pts: &[FPoint],
    spec: &RangeSpec<'_>,
    drops: &mut Vec<u32>,
    wp: &mut [usize],
    mut out: impl FnMut(usize, f64),
) -> bool {
    let range = spec.range;
    let Some(&(_, first_hi)) = spec.refs.first() else {
        return false;
    };
    // Only the points from the first window on matter. Found by a linear
    // scan, not a binary search: the points are usually not in cache yet,
    // and a scan is what the hardware prefetcher follows.
    let a0 = pts
        .iter()
        .position(|p| p.t > first_hi - range)
        .unwrap_or(pts.len());
    // A counter that never drops (the usual case) needs no prefix counts:
    // every window is reset-free.
    let monotone = spec.counter_fn && never_drops(pts.get(a0..).unwrap_or(&[]));
    if spec.counter_fn && !monotone {
        counter_drops(pts.get(a0..).unwrap_or(&[]), drops);
    }
    let (mut a, mut b) = (a0, a0);
    let mut any = false;
    // Reset-free rate/increase windows are extrapolated in batches (see
    // `rate_batch`); the rest one by one.
    let is_rate = spec.name == "rate";
    let mut batch = CounterBatch::default();
    for (k, (&(ts, hi), w)) in spec.refs.iter().zip(wp.iter_mut()).enumerate() {
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
        *w += win.len();
        // Without a counter reset in the window the reset loop of
        // rate/increase adds nothing: skip it (O(1) per step).
        let no_reset = monotone
            || spec.counter_fn
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
        let ctx = RangeCtx {
            ts,
            lo,
            hi,
            range,
            scalars: &[],
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

/// The row of range function `spec` over one series' points; each
/// window's sample count is added to `wp` (one entry per step).
pub(crate) fn range_values(
    pts: &[FPoint],
    spec: &RangeSpec<'_>,
    drops: &mut Vec<u32>,
    wp: &mut [usize],
) -> Row {
    let n = spec.refs.len();
    let (mut vals, mut ok) = (vec![0.0; n], vec![false; n]);
    let any = range_row(pts, spec, drops, wp, |i, x| {
        if let (Some(v), Some(o)) = (vals.get_mut(i), ok.get_mut(i)) {
            *v = x;
            *o = true;
        }
    });
    Row { vals, ok, any }
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

/// Who consumes a selector in a columnar range query: what a loading
/// thread computes a [`Row`] for.
pub(crate) enum Consumer<'a> {
    /// The instant selector itself, at these reference times.
    Instant { refs: &'a [i64], lookback: i64 },
    /// A range function over the selector.
    Range(RangeSpec<'a>),
}

/// Scratch space reused by [`row_of`] from series to series.
#[derive(Default)]
pub(crate) struct RowScratch {
    drops: Vec<u32>,
    window_points: Vec<usize>,
}

/// The row of one series' points for `c`.
pub(crate) fn row_of(pts: &[FPoint], c: &Consumer<'_>, scratch: &mut RowScratch) -> Row {
    match c {
        Consumer::Instant { refs, lookback } => instant_row(pts, refs, *lookback).0,
        Consumer::Range(spec) => {
            scratch.window_points.clear();
            scratch.window_points.resize(spec.refs.len(), 0);
            range_values(pts, spec, &mut scratch.drops, &mut scratch.window_points)
        }
    }
}

/// The row of an instant selector over one series' points or raw samples,
/// and how many values it holds (what the loaded-samples guard counts for
/// it).
pub(crate) fn instant_row<P: TimeValue>(pts: &[P], refs: &[i64], lookback: i64) -> (Row, usize) {
    let mut vals = vec![0.0; refs.len()];
    let mut ok = vec![false; refs.len()];
    let mut held = 0usize;
    fill_row(pts, refs, lookback, |i, x| {
        if let (Some(v), Some(o)) = (vals.get_mut(i), ok.get_mut(i)) {
            *v = x;
            *o = true;
            held += 1;
        }
    });
    let any = held > 0;
    (Row { vals, ok, any }, held)
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
    }
}
