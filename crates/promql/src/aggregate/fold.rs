//! The running float state of `sum`, `avg`, `min`, `max`, `count`,
//! `group`, `stddev` and `stdvar`, and the columnar kernel that folds
//! whole columns with it.
//!
//! The fold visits, for every (group, step) cell, the group's members in
//! input order, whichever thread folds it: results do not depend on the
//! thread count and equal the step-wise kernel's bit for bit.

use std::collections::HashMap;

use cairn_model::{Labels, METRIC_NAME};

use super::group_labels;
use crate::columns::{Col, Value};
use crate::error::{eval_err, Result};
use crate::grouping::signature;
use crate::numeric::kahan_inc;
use crate::plan::AggOp;

/// The running state of a [`AggOp::folds`] aggregation over floats.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FloatAgg {
    pub(crate) value: f64,
    pub(crate) mean: f64,
    pub(crate) comp: f64,
    pub(crate) count: f64,
    pub(crate) incremental: bool,
}

impl FloatAgg {
    /// The aggregated value for `op` once every sample was folded in;
    /// `None` for operators this state does not cover.
    pub(crate) fn result(&self, op: AggOp) -> Option<f64> {
        Some(match op {
            AggOp::Sum => self.value + self.comp,
            AggOp::Avg => {
                if self.incremental {
                    self.mean + self.comp
                } else {
                    self.value / self.count + self.comp / self.count
                }
            }
            AggOp::Max | AggOp::Min => self.value,
            AggOp::Count => self.count,
            AggOp::Group => 1.0,
            AggOp::Stdvar => self.value / self.count,
            AggOp::Stddev => (self.value / self.count).sqrt(),
            _ => return None,
        })
    }

    /// Folds `f` in for aggregation `op` (`first` for the group's first
    /// sample). Returns false for operators this state does not cover.
    pub(crate) fn add(&mut self, op: AggOp, f: f64, first: bool) -> bool {
        match op {
            AggOp::Sum => {
                if first {
                    self.value = f;
                    self.count = 1.0;
                } else {
                    (self.value, self.comp) = kahan_inc(f, self.value, self.comp);
                }
            }
            AggOp::Avg => {
                if first {
                    self.value = f;
                    self.mean = f;
                    self.count = 1.0;
                } else {
                    self.count += 1.0;
                    if !self.incremental {
                        let (nv, nc) = kahan_inc(f, self.value, self.comp);
                        if !nv.is_infinite() {
                            self.value = nv;
                            self.comp = nc;
                            return true;
                        }
                        self.incremental = true;
                        self.mean = self.value / (self.count - 1.0);
                        self.comp /= self.count - 1.0;
                    }
                    let q = (self.count - 1.0) / self.count;
                    (self.mean, self.comp) =
                        kahan_inc(f / self.count, q * self.mean, q * self.comp);
                }
            }
            AggOp::Max => {
                if first || self.value < f || self.value.is_nan() {
                    self.value = f;
                }
                self.count = 1.0;
            }
            AggOp::Min => {
                if first || self.value > f || self.value.is_nan() {
                    self.value = f;
                }
                self.count = 1.0;
            }
            AggOp::Count | AggOp::Group => self.count += 1.0,
            AggOp::Stddev | AggOp::Stdvar => {
                if first {
                    self.count = 1.0;
                    self.mean = f;
                    self.value = if f.is_nan() || f.is_infinite() {
                        f64::NAN
                    } else {
                        0.0
                    };
                } else {
                    self.count += 1.0;
                    let delta = f - self.mean;
                    self.mean += delta / self.count;
                    self.value += delta * (f - self.mean);
                }
            }
            _ => return false,
        }
        true
    }
}

/// Most (group x step) cells the fold holds before it leaves a node to
/// the step-wise kernel, whose output is smaller per cell.
const MAX_CELLS: usize = 32 << 20;

/// Fewest (series x step) cells an aggregation folds on several threads.
const PARALLEL_FOLD_CELLS: usize = 1 << 16;

/// Fewest series worth hashing on a thread of their own.
const MIN_SERIES_PER_THREAD: usize = 256;

/// One aggregation group at one step.
#[derive(Clone, Copy, Default)]
struct Acc {
    seen: bool,
    acc: FloatAgg,
}

/// One group: its labels, pending name removal, members (input indices,
/// in input order) and the steps they cover.
struct Group {
    labels: Labels,
    drop: bool,
    members: Vec<u32>,
    start: usize,
    end: usize,
}

/// Folds the input columns of aggregation `op` over all their steps. The
/// input comes back (for the step-wise kernel) when it holds histogram
/// cells, when members of one group differ in pending name removal (the
/// step-wise result then depends on which comes first at each step), or
/// when the result would be too large to hold as accumulators.
pub(crate) fn columns(
    op: AggOp,
    without: bool,
    names: &[String],
    input: Vec<Col>,
    parallelism: usize,
) -> Result<std::result::Result<Value, Vec<Col>>> {
    if !op.folds() {
        return eval_err("internal error: not a folding aggregation");
    }
    if input.iter().any(Col::has_hists) {
        return Ok(Err(input));
    }
    // The grouping keys, on all cores: hashing reads every label set, most
    // of them no longer in cache.
    let keys = crate::par::map_ordered(
        input.iter().map(|c| &c.labels).collect(),
        parallelism,
        MIN_SERIES_PER_THREAD,
        |l: &Labels| signature(l, names, !without),
    );
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (k, (c, &key)) in input.iter().zip(&keys).enumerate() {
        if !c.any() {
            continue;
        }
        let Ok(k) = u32::try_from(k) else {
            return Ok(Err(input));
        };
        match index.get(&key).and_then(|&g| groups.get_mut(g)) {
            Some(g) => {
                if g.drop != c.drop {
                    return Ok(Err(input));
                }
                g.members.push(k);
                g.start = g.start.min(c.start);
                g.end = g.end.max(c.end());
            }
            None => {
                index.insert(key, groups.len());
                groups.push(Group {
                    labels: group_labels(&c.labels, without, names),
                    drop: c.drop,
                    members: vec![k],
                    start: c.start,
                    end: c.end(),
                });
            }
        }
    }
    let cells: usize = groups.iter().map(|g| g.end - g.start).sum();
    if cells > MAX_CELLS {
        return Ok(Err(input));
    }
    let input_cells: usize = input.iter().map(|c| c.vals.len()).sum();
    let threads = if input_cells >= PARALLEL_FOLD_CELLS {
        parallelism.max(1)
    } else {
        1
    };
    // A task folds the members of one group over a range of steps: each
    // group on its own when there are groups enough for the threads (a
    // group's accumulators stay in cache while its members' cells stream
    // by), each group's steps cut into ranges when there are few (`sum`
    // without grouping).
    let cuts = if groups.len() >= threads { 1 } else { threads };
    let mut tasks: Vec<(usize, usize, usize)> = Vec::new();
    for (g, grp) in groups.iter().enumerate() {
        let per = (grp.end - grp.start).div_ceil(cuts).max(1);
        let mut lo = grp.start;
        while lo < grp.end {
            let hi = (lo + per).min(grp.end);
            tasks.push((g, lo, hi));
            lo = hi;
        }
    }
    let fold = |(g, lo, hi): (usize, usize, usize)| -> Vec<Acc> {
        let mut acc = vec![Acc::default(); hi - lo];
        let Some(grp) = groups.get(g) else {
            return acc;
        };
        for &k in &grp.members {
            let Some(c) = input.get(k as usize) else {
                continue;
            };
            // The member's cells inside [lo, hi).
            let (a, b) = (lo.max(c.start), hi.min(c.end()));
            if a >= b {
                continue;
            }
            let (Some(vals), Some(oks), Some(accs)) = (
                c.vals.get(a - c.start..b - c.start),
                c.ok.get(a - c.start..b - c.start),
                acc.get_mut(a - lo..b - lo),
            ) else {
                continue;
            };
            for ((x, &f), _) in accs
                .iter_mut()
                .zip(vals.iter())
                .zip(oks.iter())
                .filter(|(_, &ok)| ok)
            {
                let first = !x.seen;
                x.seen = true;
                x.acc.add(op, f, first);
            }
        }
        acc
    };
    let parts = crate::par::map_ordered(tasks.clone(), threads, 1, fold);
    // Tasks come back in order: group by group, steps ascending.
    let mut accs: Vec<Vec<Acc>> = groups
        .iter()
        .map(|g| Vec::with_capacity(g.end - g.start))
        .collect();
    for ((g, _, _), part) in tasks.iter().zip(parts) {
        if let Some(a) = accs.get_mut(*g) {
            a.extend(part);
        }
    }
    let mut cols = Vec::with_capacity(groups.len());
    for (grp, acc) in groups.into_iter().zip(accs) {
        let mut vals = vec![0.0; acc.len()];
        let mut ok = vec![false; acc.len()];
        for ((a, v), o) in acc.iter().zip(vals.iter_mut()).zip(ok.iter_mut()) {
            if !a.seen {
                continue;
            }
            *o = true;
            *v = a.acc.result(op).unwrap_or(f64::NAN);
        }
        // The group keeps the input's pending name removal, which only
        // matters when grouping by `__name__`.
        let drop = grp.drop && grp.labels.has(METRIC_NAME);
        cols.push(Col::floats(grp.labels, drop, grp.start, vals, ok));
    }
    Ok(Ok(Value::Vector(cols)))
}
