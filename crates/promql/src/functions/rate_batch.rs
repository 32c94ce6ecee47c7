//! `rate`/`increase` extrapolation of many reset-free windows at once.
//!
//! Why: one window's extrapolation is a chain of six or seven dependent
//! divisions (see [`super::rate::extrapolate`]), so evaluating windows one
//! after another waits on division latency. Here the windows of a series
//! are gathered into columns first, then extrapolated by a loop without
//! branches over whole columns, which the compiler turns into vector
//! divisions (on CPUs with AVX2, four windows per instruction).
//!
//! Contract: every result is bit for bit what `extrapolate` gives for the
//! same window with `is_counter` set. Each lane does the same IEEE
//! operations in the same order (the hardware's vector division, multiply
//! and add are correctly rounded like the scalar ones, and Rust never fuses
//! a multiply and an add on its own); branches become selects between
//! values both computed.

use crate::value::FPoint;

/// Windows per batch.
pub(crate) const LANES: usize = 32;

/// Columns of up to [`LANES`] windows, each with at least two points and no
/// counter reset, waiting to be extrapolated.
pub(crate) struct CounterBatch {
    len: usize,
    /// The caller's tag of each window (its step).
    tag: [usize; LANES],
    /// `first.t - lo`, `hi - last.t` and `last.t - first.t`, in ms.
    to_start: [f64; LANES],
    to_end: [f64; LANES],
    sampled: [f64; LANES],
    /// Points in the window minus one.
    gaps: [f64; LANES],
    first: [f64; LANES],
    /// `last.f - first.f`.
    result: [f64; LANES],
    out: [f64; LANES],
}

impl Default for CounterBatch {
    fn default() -> Self {
        Self {
            len: 0,
            tag: [0; LANES],
            to_start: [0.0; LANES],
            to_end: [0.0; LANES],
            sampled: [0.0; LANES],
            gaps: [0.0; LANES],
            first: [0.0; LANES],
            result: [0.0; LANES],
            out: [0.0; LANES],
        }
    }
}

impl CounterBatch {
    /// Adds window `w` of `(lo, hi]` under `tag`; a window of fewer than
    /// two points has no value and is not added. Returns whether the batch
    /// is now full (then [`Self::flush`] before pushing more).
    #[inline]
    pub(crate) fn push(&mut self, tag: usize, w: &[FPoint], lo: i64, hi: i64) -> bool {
        let (Some(first), Some(last)) = (w.first(), w.last()) else {
            return false;
        };
        if w.len() < 2 {
            return false;
        }
        let i = self.len;
        if let (Some(g), Some(s), Some(e), Some(d), Some(gp), Some(f), Some(r)) = (
            self.tag.get_mut(i),
            self.to_start.get_mut(i),
            self.to_end.get_mut(i),
            self.sampled.get_mut(i),
            self.gaps.get_mut(i),
            self.first.get_mut(i),
            self.result.get_mut(i),
        ) {
            *g = tag;
            *s = (first.t - lo) as f64;
            *e = (hi - last.t) as f64;
            *d = (last.t - first.t) as f64;
            *gp = (w.len() - 1) as f64;
            *f = first.f;
            *r = last.f - first.f;
            self.len += 1;
        }
        self.len == LANES
    }

    /// Extrapolates the windows added so far (`rate` when `is_rate`, else
    /// `increase`, over a `range` in ms), hands `out(tag, value)` each
    /// result in the order they were added, and empties the batch.
    pub(crate) fn flush(&mut self, range: i64, is_rate: bool, mut out: impl FnMut(usize, f64)) {
        if self.len == 0 {
            return;
        }
        self.compute(range as f64 / 1000.0, is_rate);
        for (&tag, &v) in self.tag.iter().zip(&self.out).take(self.len) {
            out(tag, v);
        }
        self.len = 0;
    }

    fn compute(&mut self, range_s: f64, is_rate: bool) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU running this has AVX2 (checked just above),
                // the only requirement of calling a function compiled with it.
                unsafe { self.compute_avx2(range_s, is_rate) };
                return;
            }
        }
        self.compute_lanes(range_s, is_rate);
    }

    /// [`Self::compute_lanes`] compiled for AVX2 (vector width only: no
    /// FMA, so the arithmetic is the same).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn compute_avx2(&mut self, range_s: f64, is_rate: bool) {
        self.compute_lanes(range_s, is_rate);
    }

    /// The extrapolation of every lane (unused lanes compute harmless
    /// garbage), operation for operation as `extrapolate`.
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // one index into seven columns
    #[allow(clippy::indexing_slicing)] // in bounds: `i < LANES`, every column is `[f64; LANES]`
    fn compute_lanes(&mut self, range_s: f64, is_rate: bool) {
        for i in 0..LANES {
            let to_start0 = self.to_start[i] / 1000.0;
            let to_end0 = self.to_end[i] / 1000.0;
            let sampled = self.sampled[i] / 1000.0;
            let avg = sampled / self.gaps[i];
            let threshold = avg * 1.1;
            let half = avg / 2.0;
            let to_start1 = if to_start0 >= threshold {
                half
            } else {
                to_start0
            };
            let (first, result) = (self.first[i], self.result[i]);
            let to_zero = if result > 0.0 && first >= 0.0 {
                sampled * (first / result)
            } else {
                to_start1
            };
            let to_start = if to_zero < to_start1 {
                to_zero
            } else {
                to_start1
            };
            let to_end = if to_end0 >= threshold { half } else { to_end0 };
            let factor = (sampled + to_start + to_end) / sampled;
            let factor = if is_rate { factor / range_s } else { factor };
            self.out[i] = result * factor;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::rate::extrapolate;
    use proptest::prelude::*;

    fn window() -> impl Strategy<Value = (Vec<FPoint>, i64, i64)> {
        (
            prop::collection::vec(
                (
                    1i64..40_000,
                    prop_oneof![20 => -1e6f64..1e12, 1 => Just(f64::NAN)],
                ),
                0..40,
            ),
            0i64..30_000,
            0i64..30_000,
            prop::bool::ANY,
        )
            .prop_map(|(steps, pre, post, zero_first)| {
                let mut t = 1_000_000;
                let mut v = if zero_first { 0.0 } else { 5.0 };
                let mut w = Vec::new();
                for (dt, dv) in steps {
                    t += dt;
                    v += dv.abs();
                    w.push(FPoint { t, f: v });
                }
                let lo = w.first().map_or(0, |p| p.t) - pre - 1;
                let hi = w.last().map_or(0, |p| p.t) + post;
                (w, lo, hi)
            })
    }

    proptest! {
        /// Every lane equals the scalar extrapolation bit for bit, for rate
        /// and increase, whatever the batch's fill.
        #[test]
        fn batch_equals_scalar(ws in prop::collection::vec(window(), 1..80), is_rate: bool) {
            let range = 300_000;
            let mut b = CounterBatch::default();
            let mut got = Vec::new();
            for (k, (w, lo, hi)) in ws.iter().enumerate() {
                if b.push(k, w, *lo, *hi) {
                    b.flush(range, is_rate, |k, v| got.push((k, v.to_bits())));
                }
            }
            b.flush(range, is_rate, |k, v| got.push((k, v.to_bits())));
            let mut want = Vec::new();
            for (k, (w, lo, hi)) in ws.iter().enumerate() {
                let result = w.last().map_or(0.0, |p| p.f) - w.first().map_or(0.0, |p| p.f);
                if let Some(v) = extrapolate(w, result, (*lo, *hi), range, true, is_rate) {
                    want.push((k, v.to_bits()));
                }
            }
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn short_windows_have_no_value() {
        let mut b = CounterBatch::default();
        assert!(!b.push(0, &[], 0, 10));
        assert!(!b.push(1, &[FPoint { t: 5, f: 1.0 }], 0, 10));
        let mut n = 0;
        b.flush(60_000, true, |_, _| n += 1);
        assert_eq!(n, 0);
    }
}
