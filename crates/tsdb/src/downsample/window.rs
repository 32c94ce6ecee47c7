//! Window arithmetic and the per-window aggregates (docs/format/downsample.md).
//!
//! Windows are `(k·r, (k+1)·r]`, stamped at their end. [`Windows`] folds a
//! time-ordered stream of raw samples (or of a finer level's windows) into
//! count, sum, min and max per window; [`CounterThin`] keeps the counter
//! samples: first and last of every window and both sides of every reset.
//! Inputs must come in increasing time order; samples at or before the
//! previous one are ignored (a misbehaving source never breaks an output
//! chunk's ordering).

use cairn_model::is_stale_nan;

use super::decimal_sum::DecimalSum;

/// The end of the window `(k·r, (k+1)·r]` holding `t` (`r > 0`).
pub(crate) fn window_end(t: i64, r: i64) -> i64 {
    // ceil(t / r) · r, for negative times too.
    t.saturating_neg()
        .div_euclid(r)
        .saturating_neg()
        .saturating_mul(r)
}

/// One window's count, sum, min and max.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Agg {
    /// End of the window (its timestamp).
    pub(crate) t: i64,
    pub(crate) count: f64,
    pub(crate) sum: f64,
    /// Kahan compensation of `sum`.
    comp: f64,
    /// The exact sum while every value is a decimal.
    dec: DecimalSum,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Agg {
    fn new(t: i64) -> Self {
        Self {
            t,
            count: 0.0,
            sum: 0.0,
            comp: 0.0,
            dec: DecimalSum::new(),
            min: f64::NAN,
            max: f64::NAN,
        }
    }

    /// The sum: exact (rounded once) when every value was a decimal
    /// ([`DecimalSum`]), else compensated.
    pub(crate) fn total(&self) -> f64 {
        if let Some(v) = self.dec.value() {
            return v;
        }
        if self.sum.is_infinite() {
            self.sum
        } else {
            self.sum + self.comp
        }
    }

    fn add_sum(&mut self, v: f64) {
        self.dec.add(v);
        // Neumaier's variant of Kahan summation, as Prometheus's kahanSumInc.
        let t = self.sum + v;
        if t.is_infinite() {
            self.comp = 0.0;
        } else if self.sum.abs() >= v.abs() {
            self.comp += (self.sum - t) + v;
        } else {
            self.comp += (v - t) + self.sum;
        }
        self.sum = t;
    }

    /// Prometheus's `min_over_time` rule: NaN only while every value is NaN.
    fn add_min(&mut self, v: f64) {
        if v < self.min || self.min.is_nan() {
            self.min = v;
        }
    }

    fn add_max(&mut self, v: f64) {
        if v > self.max || self.max.is_nan() {
            self.max = v;
        }
    }

    /// Folds in one raw sample.
    fn add_raw(&mut self, v: f64) {
        self.count += 1.0;
        self.add_sum(v);
        self.add_min(v);
        self.add_max(v);
    }

    /// Folds in a finer window's aggregates.
    fn add_agg(&mut self, a: &Agg) {
        self.count += a.count;
        self.add_sum(a.total());
        self.add_min(a.min);
        self.add_max(a.max);
    }
}

/// Folds samples or finer windows into windows of width `res`.
#[derive(Debug)]
pub(crate) struct Windows {
    res: i64,
    cur: Option<Agg>,
    last_t: i64,
    pub(crate) out: Vec<Agg>,
}

impl Windows {
    pub(crate) fn new(res: i64) -> Self {
        Self {
            res: res.max(1),
            cur: None,
            last_t: i64::MIN,
            out: Vec::new(),
        }
    }

    fn window(&mut self, t: i64) -> Option<&mut Agg> {
        if t <= self.last_t {
            return None;
        }
        self.last_t = t;
        let end = window_end(t, self.res);
        if self.cur.is_some_and(|c| c.t != end) {
            self.out.extend(self.cur.take());
        }
        Some(self.cur.get_or_insert_with(|| Agg::new(end)))
    }

    /// Adds a raw sample; stale markers are not samples of a window.
    pub(crate) fn push_raw(&mut self, t: i64, v: f64) {
        if is_stale_nan(v) {
            return;
        }
        if let Some(w) = self.window(t) {
            w.add_raw(v);
        }
    }

    /// Adds a finer level's window (stamped at its end).
    pub(crate) fn push_agg(&mut self, a: &Agg) {
        if let Some(w) = self.window(a.t) {
            w.add_agg(a);
        }
    }

    /// Closes the open window.
    pub(crate) fn finish(&mut self) {
        self.out.extend(self.cur.take());
    }
}

/// Rebuilds a finer window from its stored aggregates (absent ones NaN).
pub(crate) fn agg_from_parts(t: i64, count: f64, sum: f64, min: f64, max: f64) -> Agg {
    Agg {
        t,
        count,
        sum,
        comp: 0.0,
        dec: DecimalSum::invalid(),
        min,
        max,
    }
}

/// Keeps the counter samples of the counter aggregate: the first sample,
/// the last sample of every window, and the samples on both sides of every
/// reset. Kept samples are about one window apart, as evenly as the raw
/// samples allow, so that `rate`'s extrapolation treats them as it treats
/// raw samples.
#[derive(Debug)]
pub(crate) struct CounterThin {
    res: i64,
    win: i64,
    /// The last sample seen, and whether it is already kept.
    last: Option<((i64, f64), bool)>,
    pub(crate) out: Vec<(i64, f64)>,
}

impl CounterThin {
    pub(crate) fn new(res: i64) -> Self {
        Self {
            res: res.max(1),
            win: i64::MIN,
            last: None,
            out: Vec::new(),
        }
    }

    /// Adds a counter sample; NaN values (stale markers included) are skipped.
    pub(crate) fn push(&mut self, t: i64, v: f64) {
        if v.is_nan() {
            return;
        }
        let end = window_end(t, self.res);
        match self.last {
            Some(((lt, _), _)) if t <= lt => return,
            Some(((lt, lv), kept)) => {
                let reset = v < lv;
                // The previous sample closes its window, or precedes a reset.
                if (end != self.win || reset) && !kept {
                    self.out.push((lt, lv));
                }
                if reset {
                    self.out.push((t, v));
                }
                self.last = Some(((t, v), reset));
            }
            None => {
                self.out.push((t, v));
                self.last = Some(((t, v), true));
            }
        }
        self.win = end;
    }

    /// Keeps the last sample.
    pub(crate) fn finish(&mut self) {
        if let Some((l, false)) = self.last {
            self.out.push(l);
        }
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;

    #[test]
    fn windows_are_left_open_and_right_closed() {
        assert_eq!(window_end(0, 300), 0);
        assert_eq!(window_end(1, 300), 300);
        assert_eq!(window_end(300, 300), 300);
        assert_eq!(window_end(301, 300), 600);
        assert_eq!(window_end(-1, 300), 0);
        assert_eq!(window_end(-300, 300), -300);
        assert_eq!(window_end(-301, 300), -300);
    }

    #[test]
    fn aggregates_follow_prometheus_rules() {
        let mut w = Windows::new(10);
        for (t, v) in [(1, f64::NAN), (2, 3.0), (3, -1.0), (10, 5.0), (11, 7.0)] {
            w.push_raw(t, v);
        }
        w.push_raw(12, cairn_model::STALE_NAN);
        w.push_raw(11, 100.0); // not after the previous sample: ignored
        w.finish();
        let a = &w.out[0];
        assert_eq!((a.t, a.count, a.min, a.max), (10, 4.0, -1.0, 5.0));
        assert!(a.total().is_nan());
        let b = &w.out[1];
        assert_eq!(
            (b.t, b.count, b.total(), b.min, b.max),
            (20, 1.0, 7.0, 7.0, 7.0)
        );
        // All-NaN window: min and max NaN.
        let mut w = Windows::new(10);
        w.push_raw(1, f64::NAN);
        w.finish();
        assert!(w.out[0].min.is_nan() && w.out[0].max.is_nan());
    }

    #[test]
    fn sums_of_decimals_are_exact_and_others_compensated() {
        let mut w = Windows::new(10);
        for (t, v) in [
            (1, 0.1),
            (2, 0.2),
            (3, 0.3),
            (11, 0.1),
            (12, 0.2),
            (13, 1e-30),
        ] {
            w.push_raw(t, v);
        }
        w.finish();
        // Floating point gives 0.6000000000000001; the decimal sum is 0.6.
        assert_eq!(w.out[0].total(), 0.6);
        // 1e-30 has more than 22 decimals: the compensated sum.
        assert_eq!(w.out[1].total(), 0.1 + 0.2 + 1e-30);
        // A coarser level adds the finer sums as decimals again.
        let mut h = Windows::new(20);
        for a in &w.out[..1] {
            h.push_agg(a);
        }
        h.push_raw(14, 0.7);
        h.finish();
        assert_eq!(h.out[0].total(), 1.3);
    }

    #[test]
    fn counter_keeps_window_ends_and_both_sides_of_resets() {
        let mut c = CounterThin::new(10);
        let raw = [
            (1, 1.0),
            (4, 2.0),
            (7, 3.0),
            (10, 4.0), // window (0,10]: first 1, last 10
            (13, 5.0),
            (15, 1.0), // reset: keep 13 and 15
            (18, 2.0), // last of (10,20]
            (21, 3.0),
            (25, f64::NAN),
            (29, 4.0),
        ];
        for (t, v) in raw {
            c.push(t, v);
        }
        c.finish();
        let ts: Vec<i64> = c.out.iter().map(|p| p.0).collect();
        // First sample; last of (0,10]; both sides of the reset; last of
        // (10,20]; last of (20,30].
        assert_eq!(ts, vec![1, 10, 13, 15, 18, 29]);
        // Increases over kept samples equal the raw ones.
        let inc = |pts: &[(i64, f64)]| {
            pts.windows(2)
                .map(|w| {
                    if w[1].1 < w[0].1 {
                        w[1].1
                    } else {
                        w[1].1 - w[0].1
                    }
                })
                .sum::<f64>()
        };
        let raw_f: Vec<(i64, f64)> = raw.iter().copied().filter(|p| !p.1.is_nan()).collect();
        assert_eq!(inc(&c.out), inc(&raw_f));
    }
}

#[cfg(test)]
mod props {
    #![allow(clippy::indexing_slicing, clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => -1e6f64..1e6,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
            1 => Just(cairn_model::STALE_NAN),
        ]
    }

    fn series() -> impl Strategy<Value = Vec<(i64, f64)>> {
        proptest::collection::vec((1i64..700, value()), 0..200).prop_map(|v| {
            let mut t = -5_000;
            v.into_iter()
                .map(|(d, x)| {
                    t += d;
                    (t, x)
                })
                .collect()
        })
    }

    fn naive(raw: &[(i64, f64)], r: i64) -> Vec<(i64, f64, f64, f64, f64)> {
        let mut out: Vec<(i64, Vec<f64>)> = Vec::new();
        for &(t, v) in raw {
            if cairn_model::is_stale_nan(v) {
                continue;
            }
            let end = (t + r - 1).div_euclid(r) * r;
            match out.last_mut() {
                Some((e, vs)) if *e == end => vs.push(v),
                _ => out.push((end, vec![v])),
            }
        }
        out.into_iter()
            .map(|(e, vs)| {
                let min =
                    vs.iter()
                        .copied()
                        .fold(f64::NAN, |m, x| if x < m || m.is_nan() { x } else { m });
                let max =
                    vs.iter()
                        .copied()
                        .fold(f64::NAN, |m, x| if x > m || m.is_nan() { x } else { m });
                (e, vs.len() as f64, vs.iter().sum(), min, max)
            })
            .collect()
    }

    fn same(a: f64, b: f64) -> bool {
        (a.is_nan() && b.is_nan())
            || a == b
            || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// Increase as PromQL counts it: a drop is a reset.
    fn increase(p: &[(i64, f64)]) -> f64 {
        p.windows(2)
            .map(|w| {
                if w[1].1 < w[0].1 {
                    w[1].1
                } else {
                    w[1].1 - w[0].1
                }
            })
            .sum()
    }

    proptest! {
        #[test]
        fn windows_equal_a_naive_fold_and_levels_compose(raw in series()) {
            let mut w5 = Windows::new(300);
            for &(t, v) in &raw {
                w5.push_raw(t, v);
            }
            w5.finish();
            let want = naive(&raw, 300);
            prop_assert_eq!(w5.out.len(), want.len());
            for (a, b) in w5.out.iter().zip(&want) {
                prop_assert_eq!(a.t, b.0);
                prop_assert!(same(a.count, b.1) && same(a.total(), b.2) && same(a.min, b.3) && same(a.max, b.4), "{a:?} vs {b:?}");
            }
            // 300 → 3600 from the 300 windows equals 3600 from raw.
            let mut w60 = Windows::new(3600);
            for a in &w5.out {
                w60.push_agg(a);
            }
            w60.finish();
            let want = naive(&raw, 3600);
            prop_assert_eq!(w60.out.len(), want.len());
            for (a, b) in w60.out.iter().zip(&want) {
                prop_assert!(a.t == b.0 && same(a.count, b.1) && same(a.total(), b.2) && same(a.min, b.3) && same(a.max, b.4), "{a:?} vs {b:?}");
            }
        }

        #[test]
        fn counter_samples_keep_increases_and_resets_across_splits(
            steps in proptest::collection::vec((1i64..400, 0u32..100, proptest::bool::weighted(0.05)), 1..300),
            cut in 0usize..300,
        ) {
            let mut t = 0;
            let mut v = 0.0;
            let raw: Vec<(i64, f64)> = steps.iter().map(|&(d, inc, reset)| {
                t += d;
                v = if reset { f64::from(inc) } else { v + f64::from(inc) };
                (t, v)
            }).collect();
            // Two blocks, split anywhere (a block boundary), thinned apart.
            let cut = cut.min(raw.len());
            let mut kept = Vec::new();
            for part in [&raw[..cut], &raw[cut..]] {
                let mut c = CounterThin::new(300);
                for &(t, v) in part {
                    c.push(t, v);
                }
                c.finish();
                kept.extend(c.out);
            }
            prop_assert_eq!(kept.first(), raw.first());
            prop_assert_eq!(kept.last(), raw.last());
            prop_assert!(same(increase(&kept), increase(&raw)));
            let drops = |p: &[(i64, f64)]| p.windows(2).filter(|w| w[1].1 < w[0].1).count();
            prop_assert_eq!(drops(&kept), drops(&raw));
            // And again from the kept samples at a coarser level.
            let mut c = CounterThin::new(3600);
            for &(t, v) in &kept {
                c.push(t, v);
            }
            c.finish();
            prop_assert!(same(increase(&c.out), increase(&raw)));
            prop_assert_eq!(drops(&c.out), drops(&raw));
        }
    }
}
