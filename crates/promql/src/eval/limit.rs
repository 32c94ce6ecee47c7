//! The query sample limit (`--query.max-samples`), counted the way
//! Prometheus's engine counts it, so that a query Prometheus answers is
//! answered here and one it refuses is refused.
//!
//! Prometheus counts the samples a query holds in memory at a time:
//! - a finished node's result is held, in all its steps, until its parent
//!   is done with it (a float is one sample, a native histogram its size
//!   in 16-byte units, a scalar one per step, a string none);
//! - a node evaluated step by step (binary operators, most functions,
//!   `count_values`; Prometheus's `rangeEval`) holds, on top of its
//!   inputs, the instant vectors it gathers at the current step (every
//!   sample counted once, a histogram too) and its output so far;
//! - an aggregation holds its input and nothing more until it is done;
//! - a range function (`rate(x[5m])`) goes series by series: the output
//!   of the series before, plus the current series' window; when a
//!   series gave a value, its output is added while its last window is
//!   still held. Its scalar parameters stay counted (as in Prometheus);
//! - a selector `x` inside `timestamp(x)` is not materialised;
//! - a step-invariant subexpression (one under `@`, see [`wraps`]) is
//!   evaluated at its first step only and then copied to the others,
//!   each copy counted as it is made. Cairn evaluates it at every step
//!   (the values are the same), and counts the first step only inside
//!   it (`one_step`), then the copies.
//!
//! The evaluator computes whole columns at once, so the peaks are
//! computed from the per-step and per-series counts after the fact: the
//! answer (refused or not) is the same, only the work before a refusal
//! differs. Contract: every node's evaluation leaves `held` at the value
//! Prometheus's `currentSamples` has after the same node.

use cairn_model::FloatHistogram;

use super::Evaluator;
use crate::columns::{Col, Value};
use crate::error::{PromqlError, Result};
use crate::load::Windows;
use crate::plan::{Func, Kind, NodeId, Plan, RangeFunc};

/// A native histogram's weight in samples: its size in memory as
/// Prometheus estimates it (a 168-byte header and 8 bytes per span,
/// bucket and custom bound), in 16-byte units, rounded.
pub(crate) fn hist_size(h: &FloatHistogram) -> usize {
    let words = h.positive_spans.len()
        + h.negative_spans.len()
        + h.positive_buckets.len()
        + h.negative_buckets.len()
        + h.custom_values.len();
    (168 + 8 * words + 8) / 16
}

/// The samples a column holds over all its steps, or at its first step
/// only (`first`).
pub(crate) fn col_size(c: &Col, first: bool) -> usize {
    if first {
        return match (c.start, c.ok.first(), c.hists.first()) {
            (0, Some(true), Some(Some(h))) => hist_size(h),
            (0, Some(true), _) => 1,
            _ => 0,
        };
    }
    if c.hists.is_empty() {
        return c.ok.iter().filter(|&&o| o).count();
    }
    c.ok.iter()
        .zip(&c.hists)
        .map(|(&o, h)| match (o, h) {
            (false, _) => 0,
            (true, Some(h)) => hist_size(h),
            (true, None) => 1,
        })
        .sum()
}

/// The samples a value holds over all its steps, or at its first step
/// only (`first`).
pub(crate) fn value_size(v: &Value, first: bool) -> usize {
    match v {
        Value::Scalar(s) if first => s.len().min(1),
        Value::Scalar(s) => s.len(),
        Value::String(_) => 0,
        Value::Vector(cols) => cols.iter().map(|c| col_size(c, first)).sum(),
    }
}

/// Adds, per step, the samples `v` has at that step to `out`: with
/// `weigh`, a histogram counts its size; without, one.
fn add_per_step(v: &Value, weigh: bool, out: &mut [usize]) {
    match v {
        Value::Scalar(_) => out.iter_mut().for_each(|x| *x += 1),
        Value::String(_) => {}
        Value::Vector(cols) => {
            for c in cols {
                let cells = out.iter_mut().skip(c.start).zip(&c.ok);
                if c.hists.is_empty() || !weigh {
                    cells.for_each(|(x, &o)| *x += usize::from(o));
                } else {
                    for ((x, &o), h) in cells.zip(&c.hists) {
                        *x += match (o, h) {
                            (false, _) => 0,
                            (true, Some(h)) => hist_size(h),
                            (true, None) => 1,
                        };
                    }
                }
            }
        }
    }
}

/// Per step, the samples a step-by-step node gathers from its inputs.
pub(super) fn gathered(inputs: &[&Value], steps: usize) -> Vec<usize> {
    let mut g = vec![0usize; steps];
    for v in inputs {
        add_per_step(v, false, &mut g);
    }
    g
}

/// One series of a range function: what its windows held, and the
/// samples of its output.
#[derive(Debug, Clone, Copy)]
pub(super) struct SeriesCount {
    pub(super) windows: Windows,
    pub(super) out: usize,
}

/// Which nodes Prometheus evaluates once and copies to every step (it
/// wraps them in a `StepInvariantExpr`): the largest subexpressions
/// whose selectors and subqueries all have `@` and that call no function
/// that reads the evaluation time, and the bodies of subqueries that are
/// such expressions.
pub(super) fn wraps(plan: &Plan) -> Vec<bool> {
    let mut w = vec![false; plan.nodes.len()];
    if let (_, true) = classify(plan, plan.root, &mut w) {
        set(&mut w, plan.root);
    }
    w
}

fn set(w: &mut [bool], id: NodeId) {
    if let Some(x) = w.get_mut(id.index()) {
        *x = true;
    }
}

/// Whether node `id` is step-invariant, and whether it would be wrapped
/// were its parent not (Prometheus's `preprocessExprHelper`); wraps the
/// children that need it.
fn classify(plan: &Plan, id: NodeId, w: &mut [bool]) -> (bool, bool) {
    let Some(node) = plan.node(id) else {
        return (false, false);
    };
    match &node.kind {
        Kind::Number(_) | Kind::String(_) => (true, false),
        Kind::Selector { reach, .. } => (reach.at.is_some(), reach.at.is_some()),
        Kind::Matrix { reach, .. } => (reach.at.is_some(), false),
        Kind::Subquery { inner, reach, .. } => {
            if classify(plan, *inner, w).0 {
                set(w, *inner);
            }
            (reach.at.is_some(), false)
        }
        Kind::Negate(a) => classify(plan, *a, w),
        Kind::Aggregate { expr, .. } => classify(plan, *expr, w),
        Kind::Binary { lhs, rhs, .. } => {
            let (il, wl) = classify(plan, *lhs, w);
            let (ir, wr) = classify(plan, *rhs, w);
            if il && ir {
                return (true, true);
            }
            for (x, arg) in [(wl, *lhs), (wr, *rhs)] {
                if x {
                    set(w, arg);
                }
            }
            (false, false)
        }
        Kind::Info(call) => {
            // Prometheus wraps the call when every argument is step
            // invariant: only a call without a selector can be.
            let (ib, wb) = classify(plan, call.base, w);
            if ib && !call.explicit {
                return (true, true);
            }
            if wb {
                set(w, call.base);
            }
            (false, false)
        }
        Kind::Call { func, args } => {
            let reads_time = matches!(
                func,
                Func::Time
                    | Func::Date(_)
                    | Func::Timestamp { .. }
                    | Func::Range(RangeFunc::PredictLinear)
            );
            let mut inv = !reads_time;
            let mut timestamp_of_at = matches!(func, Func::Timestamp { .. });
            let mut wrap = Vec::with_capacity(args.len());
            for &a in args {
                let (ia, wa) = classify(plan, a, w);
                inv &= ia;
                let selector = matches!(plan.node(a).map(|n| &n.kind), Some(Kind::Selector { .. }));
                timestamp_of_at &= ia && selector;
                wrap.push((wa, a));
            }
            if inv || timestamp_of_at {
                return (true, true);
            }
            for (x, a) in wrap {
                if x {
                    set(w, a);
                }
            }
            (false, false)
        }
    }
}

impl Evaluator<'_> {
    /// The samples `v` holds, as counted here: at its first step only
    /// inside a step-invariant subexpression.
    pub(super) fn weigh(&self, v: &Value) -> usize {
        value_size(v, self.one_step)
    }

    /// Evaluates node `id`, which Prometheus evaluates once and copies:
    /// counted at its first step, then the copies.
    pub(super) fn eval_invariant(&mut self, id: NodeId) -> Result<Value> {
        self.one_step = true;
        let v = self.eval_node(id);
        self.one_step = false;
        let v = v?;
        let copies = value_size(&v, false).saturating_sub(value_size(&v, true));
        self.held = self.held.saturating_add(copies);
        self.over(self.held)?;
        Ok(v)
    }

    /// Evaluates a subquery's body `id` on its own grid, which the
    /// first-step counting of an enclosing invariant expression does not
    /// reach into.
    pub(super) fn eval_body(&mut self, id: NodeId) -> Result<Value> {
        let outer = std::mem::replace(&mut self.one_step, false);
        let v = self.eval(id);
        self.one_step = outer;
        v
    }

    fn over(&self, n: usize) -> Result<()> {
        if n > self.opts.max_samples {
            Err(PromqlError::TooManySamples)
        } else {
            Ok(())
        }
    }

    /// A node that holds what it returns and nothing more (a selector, a
    /// range vector): `base` plus its result must fit.
    pub(super) fn count_result(&mut self, base: usize, v: &Value) -> Result<()> {
        let held = base.saturating_add(self.weigh(v));
        self.over(held)?;
        self.held = held;
        Ok(())
    }

    /// A node whose result replaces its inputs without a check of its
    /// own (unary minus, `label_replace`, an aggregation after its
    /// input fitted).
    pub(super) fn replace_result(&mut self, base: usize, v: &Value) {
        self.held = base.saturating_add(self.weigh(v));
    }

    /// An aggregation: its input, held now, must fit; then its result
    /// replaces the input.
    pub(super) fn count_aggregation(&mut self, base: usize, v: &Value) -> Result<()> {
        self.over(self.held)?;
        self.replace_result(base, v);
        Ok(())
    }

    /// A node evaluated step by step over inputs held now: at each step
    /// the inputs, the samples `gathered` there, and the output up to
    /// and including that step must fit. Then the result replaces the
    /// inputs.
    pub(super) fn count_steps(&mut self, base: usize, gathered: &[usize], v: &Value) -> Result<()> {
        let mut out = vec![0usize; gathered.len()];
        add_per_step(v, true, &mut out);
        let steps = if self.one_step { 1 } else { out.len() };
        let mut cum = 0usize;
        let mut peak = 0usize;
        for (g, o) in gathered.iter().zip(&out).take(steps) {
            cum += o;
            peak = peak.max(g + cum);
        }
        self.over(self.held.saturating_add(peak))?;
        self.held = base.saturating_add(cum);
        Ok(())
    }

    /// A range function over series counted by `series` (in Prometheus's
    /// order, by labels). What is held now (its scalar parameters, a
    /// subquery's result) must fit beside each window; at the end the
    /// parameters (`params` samples: they stay counted, as in Prometheus)
    /// and the output replace it, a subquery's result being released.
    pub(super) fn count_range(
        &mut self,
        base: usize,
        params: usize,
        series: impl Iterator<Item = SeriesCount>,
    ) -> Result<()> {
        let held = self.held;
        let mut done = 0usize;
        for s in series {
            self.over(held.saturating_add(done).saturating_add(s.windows.max))?;
            if s.out > 0 {
                self.over(
                    held.saturating_add(done)
                        .saturating_add(s.windows.last + s.out),
                )?;
                done += s.out;
            }
        }
        self.held = base.saturating_add(params).saturating_add(done);
        Ok(())
    }
}
