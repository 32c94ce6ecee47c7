//! Thinning: of the samples a selection reads, keep only those some step
//! can see, so a long, coarse-stepped query does not hold every raw sample
//! in memory.

use cairn_model::is_stale_nan;

use crate::plan::Grid;
use crate::value::FPoint;

/// Keeps only the samples some evaluation can see: for instant selectors
/// the last sample before each grid time (within lookback), for range
/// selectors the samples inside some window. Keeps long, coarse-stepped
/// range queries from holding every raw sample in memory.
pub(crate) struct Thinner {
    pub(crate) grid: Grid,
    pub(crate) matrix: bool,
    /// Window length: the range, or the lookback delta.
    pub(crate) reach: i64,
    pub(crate) last_grid: Option<i64>,
}

impl Thinner {
    /// `grid.ceil(t)` for increasing `t`: reuses or steps on from the
    /// previous answer (a few samples fall to each grid time), dividing
    /// only when `t` jumped further.
    fn ceil(&mut self, t: i64) -> Option<i64> {
        let step = self.grid.step;
        if let (Some(g), true) = (self.last_grid, step > 0) {
            if t <= g && (g == self.grid.first || t > g - step) {
                return Some(g);
            }
            if let Some(n) = g.checked_add(step).filter(|&n| t > g && t <= n) {
                return (n <= self.grid.last).then_some(n);
            }
        }
        self.grid.ceil(t)
    }

    /// Pushes the float samples of `src` (in time order) that some
    /// evaluation can see; stale markers are dropped for range selectors.
    /// Whether this thinner keeps whole runs of samples (range selectors
    /// whose windows leave no gaps): what [`Thinner::convert`] handles.
    pub(crate) fn keeps_runs(&self) -> bool {
        self.matrix && (self.grid.step == 0 || self.reach >= self.grid.step)
    }

    /// The span `(lo, hi]` the windows of a [`Thinner::keeps_runs`]
    /// thinner cover.
    fn run_span(&self) -> (i64, i64) {
        let g = self.grid;
        let lo = g.first.saturating_sub(self.reach);
        // The last grid time (`last` bounds the grid, it need not be on it).
        let hi = if g.step > 0 && g.last > g.first {
            g.first + (g.last - g.first) / g.step * g.step
        } else {
            g.first
        };
        (lo, hi)
    }

    /// What [`Thinner::extend`] would push onto an empty vector, for a
    /// [`Thinner::keeps_runs`] thinner, made in place from `src`.
    pub(crate) fn convert(&mut self, src: Vec<cairn_model::Sample>) -> Vec<FPoint> {
        let (lo, hi) = self.run_span();
        src.into_iter()
            .filter(|s| s.t > lo && s.t <= hi && !is_stale_nan(s.v))
            .map(|s| FPoint { t: s.t, f: s.v })
            .collect()
    }

    pub(crate) fn extend(&mut self, pts: &mut Vec<FPoint>, src: &[cairn_model::Sample]) {
        if self.keeps_runs() {
            // Windows of `reach` at least a step long leave no gaps: a
            // sample is seen exactly when it is inside the span they cover.
            pts.reserve(src.len());
            let (lo, hi) = self.run_span();
            let inside = |s: &cairn_model::Sample| s.t > lo && s.t <= hi;
            if src.first().is_some_and(inside) && src.last().is_some_and(inside) {
                // Sorted: all inside; only stale markers to drop.
                pts.extend(
                    src.iter()
                        .filter(|s| !is_stale_nan(s.v))
                        .map(|s| FPoint { t: s.t, f: s.v }),
                );
            } else {
                pts.extend(
                    src.iter()
                        .filter(|s| inside(s) && !is_stale_nan(s.v))
                        .map(|s| FPoint { t: s.t, f: s.v }),
                );
            }
            return;
        }
        if pts.is_empty() {
            // About one sample per grid time survives.
            let g = self.grid;
            let grid_times = (g.last.saturating_sub(g.first))
                .checked_div(g.step)
                .map_or(1, |k| usize::try_from(k).unwrap_or(0).saturating_add(1));
            pts.reserve(src.len().min(grid_times));
        }
        for s in src {
            if !(self.matrix && is_stale_nan(s.v)) {
                self.push(pts, FPoint { t: s.t, f: s.v }, s.t);
            }
        }
    }

    pub(crate) fn push<P>(&mut self, pts: &mut Vec<P>, p: P, t: i64) {
        let Some(g) = self.ceil(t) else {
            return;
        };
        if g - t >= self.reach {
            return;
        }
        if !self.matrix && self.last_grid == Some(g) {
            // A later sample for the same grid time replaces the earlier.
            pts.pop();
        }
        self.last_grid = Some(g);
        pts.push(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_ceil_equals_division() {
        for (first, last, step) in [(0, 600, 60), (7, 1_000, 13), (100, 100, 0), (-50, 500, 25)] {
            let grid = Grid::new(first, last, step);
            for stride in [1, 3, 7, 20, 61, 200] {
                let mut th = Thinner {
                    grid,
                    matrix: true,
                    reach: i64::MAX,
                    last_grid: None,
                };
                let mut t = first - 100;
                while t < last + 100 {
                    assert_eq!(
                        th.ceil(t),
                        grid.ceil(t),
                        "grid {first}..{last}/{step} t {t}"
                    );
                    if let Some(g) = grid.ceil(t) {
                        th.last_grid = Some(g);
                    }
                    t += stride;
                }
            }
        }
    }

    #[test]
    fn bulk_thinning_keeps_what_pushing_keeps() {
        let stale = f64::from_bits(cairn_model::STALE_NAN_BITS);
        for (first, last, step) in [(0, 600, 60), (7, 1_000, 13), (100, 100, 0), (-50, 500, 25)] {
            for reach in [1, 12, 13, 25, 60, 61, 300] {
                for matrix in [false, true] {
                    for stride in [1, 5, 17, 40] {
                        let src: Vec<cairn_model::Sample> = (-400..1_400)
                            .step_by(stride)
                            .map(|t| {
                                let v = if t % 7 == 0 { stale } else { t as f64 };
                                cairn_model::Sample::new(t, v)
                            })
                            .collect();
                        let new = || Thinner {
                            grid: Grid::new(first, last, step),
                            matrix,
                            reach,
                            last_grid: None,
                        };
                        let mut want = Vec::new();
                        let mut th = new();
                        for s in &src {
                            if !(matrix && is_stale_nan(s.v)) {
                                th.push(&mut want, FPoint { t: s.t, f: s.v }, s.t);
                            }
                        }
                        let bits = |v: &[FPoint]| -> Vec<(i64, u64)> {
                            v.iter().map(|p| (p.t, p.f.to_bits())).collect()
                        };
                        if matrix && (step == 0 || reach >= step) {
                            let mut th = new();
                            assert!(th.keeps_runs());
                            let got = th.convert(src.clone());
                            assert!(
                                bits(&got) == bits(&want),
                                "convert: grid {first}..{last}/{step} reach {reach} stride {stride}"
                            );
                        }
                        // In two pieces, as bulk reads arrive.
                        let mut got = Vec::new();
                        let mut th = new();
                        let (a, b) = src.split_at(src.len() / 3);
                        th.extend(&mut got, a);
                        th.extend(&mut got, b);
                        assert!(
                            bits(&got) == bits(&want),
                            "grid {first}..{last}/{step} reach {reach} matrix {matrix} stride {stride}"
                        );
                    }
                }
            }
        }
    }
}
