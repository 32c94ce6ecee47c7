//! Evaluation: a plan's nodes evaluated over their steps, children first,
//! each node once, with the data loading already read.
//!
//! A node in [`Mode::Columnar`] runs its kernel once over its children's
//! values at all steps; a node in [`Mode::StepWise`] runs its kernel once
//! per step over instant vectors cut from those values (Prometheus's
//! `rangeEval`), and the results are gathered back into columns. A
//! columnar kernel that declines its input (see `plan`) hands it to the
//! step-wise kernel of the same node: nothing is loaded or evaluated
//! twice. Selectors and range functions have one implementation, which
//! works series by series over all steps (`selector`, `range`).
//!
//! Contracts:
//! - Windows are left-open, right-closed: a range selector at reference
//!   time `t` covers `(t - range, t]`, an instant selector looks back over
//!   `(t - lookback, t]` and ignores a stale marker found there.
//! - Without delayed name removal (the default, as in a Prometheus
//!   server), every node's output has its pending names removed before
//!   its parent reads it; series that then share a label set fail the
//!   query where Prometheus's do (see `names`).

mod extended;
mod info;
mod limit;
mod names;
mod range;
mod selector;
mod stepwise;
mod subquery;

pub(crate) use limit::hist_size;

use std::time::Instant;

use crate::columns::{Col, StepVal, Value};
use crate::error::{eval_err, PromqlError, Result};
use crate::load::Selected;
use crate::options::EngineOptions;
use crate::plan::{AggOp, Func, Kind, Mode, NodeId, Plan, SelId};
use crate::value::{Annotations, Matrix};

/// The per-query evaluation state.
pub(crate) struct Evaluator<'a> {
    plan: &'a Plan,
    opts: &'a EngineOptions,
    /// Each selection's series, until its last reader takes them.
    data: Vec<Option<Selected>>,
    /// Readers left per selection.
    readers: Vec<usize>,
    pub(crate) annos: Annotations,
    deadline: Option<Instant>,
    /// The mode each node ran in (a columnar kernel that declined shows
    /// as step-wise).
    pub(crate) ran: Vec<Option<Mode>>,
    /// Samples held by results not yet consumed, as Prometheus counts
    /// them for the sample limit (see `limit`).
    held: usize,
    /// The nodes Prometheus evaluates once and copies to every step.
    wraps: Vec<bool>,
    /// Inside such a node: samples are counted at the first step only.
    one_step: bool,
}

impl<'a> Evaluator<'a> {
    /// `deadline`: when the query (started before its data was loaded)
    /// times out.
    pub(crate) fn new(
        plan: &'a Plan,
        opts: &'a EngineOptions,
        data: Vec<Selected>,
        deadline: Option<Instant>,
    ) -> Self {
        let mut readers = vec![0usize; plan.selections.len()];
        for n in &plan.nodes {
            let sel = match &n.kind {
                Kind::Selector { sel, .. } | Kind::Matrix { sel, .. } => *sel,
                Kind::Info(call) => call.sel,
                _ => continue,
            };
            if let Some(r) = readers.get_mut(sel.index()) {
                *r += 1;
            }
        }
        Self {
            plan,
            opts,
            data: data.into_iter().map(Some).collect(),
            readers,
            annos: Annotations::default(),
            deadline,
            ran: vec![None; plan.nodes.len()],
            held: 0,
            wraps: limit::wraps(plan),
            one_step: false,
        }
    }

    /// Fails when the query ran past its timeout.
    pub(crate) fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() > d => Err(PromqlError::Timeout),
            _ => Ok(()),
        }
    }

    /// A selection's series for one of its readers: the last one takes
    /// them, the others get a copy.
    fn take_selection(&mut self, sel: SelId) -> Result<Selected> {
        let i = sel.index();
        let (Some(left), Some(slot)) = (self.readers.get_mut(i), self.data.get_mut(i)) else {
            return eval_err("internal error: selection was not loaded");
        };
        *left = left.saturating_sub(1);
        let taken = if *left == 0 {
            slot.take()
        } else {
            slot.clone()
        };
        taken.ok_or_else(|| PromqlError::Eval("internal error: selection was read twice".into()))
    }

    fn mark(&mut self, id: NodeId, mode: Mode) {
        if let Some(m) = self.ran.get_mut(id.index()) {
            *m = Some(mode);
        }
    }

    /// Evaluates node `id` over its steps.
    pub(crate) fn eval(&mut self, id: NodeId) -> Result<Value> {
        let invariant = !self.one_step
            && self.wraps.get(id.index()).copied().unwrap_or(false)
            && self.plan.node(id).is_some_and(|n| n.steps.n > 1);
        if invariant {
            self.eval_invariant(id)
        } else {
            self.eval_node(id)
        }
    }

    /// Evaluates node `id` over its steps, counting its samples as
    /// `one_step` says.
    fn eval_node(&mut self, id: NodeId) -> Result<Value> {
        self.check_deadline()?;
        let plan = self.plan;
        let Some(node) = plan.node(id) else {
            return eval_err("internal error: unknown plan node");
        };
        let steps = node.steps;
        let base = self.held;
        let (v, strict) = match &node.kind {
            Kind::Number(x) => {
                let v = Value::Scalar(vec![*x; steps.n]);
                self.count_steps(base, &vec![0; steps.n], &v)?;
                (v, false)
            }
            Kind::String(s) => (Value::String(s.clone()), false),
            Kind::Selector { sel, reach, time } => {
                let v = selector::eval(self, *sel, *reach, *time, steps)?;
                if *time {
                    // Read by `timestamp()` at each step, never held.
                    self.held = base;
                } else {
                    self.count_result(base, &v)?;
                }
                (v, false)
            }
            Kind::Matrix { .. } | Kind::Subquery { .. } => {
                return eval_err("range vectors are only allowed as function arguments");
            }
            Kind::Negate(a) => {
                let v = negate(self.eval(*a)?);
                self.replace_result(base, &v);
                (v, true)
            }
            Kind::Binary {
                op,
                lhs,
                rhs,
                return_bool,
                matching,
            } => {
                let (l, r) = (self.eval(*lhs)?, self.eval(*rhs)?);
                let gathered = limit::gathered(&[&l, &r], steps.n);
                let mut columnar = None;
                let (l, r) = if node.mode == Mode::Columnar {
                    match crate::binary::columns(*op, matching, *return_bool, l, r)? {
                        Ok(v) => {
                            columnar = Some(v);
                            (Value::Scalar(Vec::new()), Value::Scalar(Vec::new()))
                        }
                        Err(back) => back,
                    }
                } else {
                    (l, r)
                };
                let v = match columnar {
                    Some(v) => {
                        self.mark(id, Mode::Columnar);
                        v
                    }
                    None => {
                        self.mark(id, Mode::StepWise);
                        self.stepwise(steps, vec![l, r], |annos, args, ts| {
                            let mut it = args.into_iter();
                            let (Some(l), Some(r)) = (it.next(), it.next()) else {
                                return eval_err(
                                    "internal error: binary operator without operands",
                                );
                            };
                            crate::binary::step(*op, matching, *return_bool, l, r, ts, annos)
                        })?
                    }
                };
                self.count_steps(base, &gathered, &v)?;
                (v, false)
            }
            Kind::Aggregate {
                op,
                expr,
                param,
                without,
                names,
            } => {
                let p = match param {
                    Some(p) => Some(self.eval(*p)?),
                    None => None,
                };
                let mut input = self.eval(*expr)?;
                // `count_values` goes step by step in Prometheus too.
                let gathered =
                    (*op == AggOp::CountValues).then(|| limit::gathered(&[&input], steps.n));
                let mut columnar = None;
                if node.mode == Mode::Columnar && p.is_none() {
                    if let Value::Vector(cols) = input {
                        match crate::aggregate::columns(
                            *op,
                            *without,
                            names,
                            cols,
                            self.opts.parallelism,
                        )? {
                            Ok(v) => {
                                columnar = Some(v);
                                input = Value::Vector(Vec::new());
                            }
                            Err(cols) => input = Value::Vector(cols),
                        }
                    }
                }
                let v = match columnar {
                    Some(v) => {
                        self.mark(id, Mode::Columnar);
                        v
                    }
                    None => {
                        self.mark(id, Mode::StepWise);
                        let mut inputs = vec![input];
                        inputs.extend(p);
                        self.stepwise(steps, inputs, |annos, args, ts| {
                            let mut it = args.into_iter();
                            let vector = match it.next() {
                                Some(StepVal::Vector(v)) => v,
                                Some(other) => {
                                    return eval_err(format!(
                                        "expected instant vector, got {}",
                                        other.type_name()
                                    ))
                                }
                                None => {
                                    return eval_err("internal error: aggregation without input")
                                }
                            };
                            crate::aggregate::step(
                                *op,
                                *without,
                                names,
                                it.next(),
                                vector,
                                ts,
                                annos,
                            )
                            .map(StepVal::Vector)
                        })?
                    }
                };
                match gathered {
                    Some(g) => self.count_steps(base, &g, &v)?,
                    None => self.count_aggregation(base, &v)?,
                }
                (v, false)
            }
            Kind::Info(call) => {
                let b = self.eval(call.base)?;
                let gathered = limit::gathered(&[&b], steps.n);
                let data = self.take_selection(call.sel)?;
                let lookback = plan
                    .selections
                    .get(call.sel.index())
                    .map_or(self.opts.lookback_delta, |s| s.reach);
                let v = info::eval(call, b, data, steps, lookback)?;
                self.count_steps(base, &gathered, &v)?;
                (v, false)
            }
            Kind::Call { func, args } => match func {
                Func::Range(f) => (range::eval(self, *f, args, steps)?, true),
                Func::AbsentOverTime(labels) => {
                    (range::absent_over_time(self, labels, args, steps)?, false)
                }
                _ => {
                    let mut vals = Vec::with_capacity(args.len());
                    for a in args {
                        vals.push(self.eval(*a)?);
                    }
                    // Prometheus relabels these in place, without a
                    // step-by-step pass.
                    let relabels = matches!(func, Func::LabelReplace(_) | Func::LabelJoin { .. });
                    let gathered = (!relabels)
                        .then(|| limit::gathered(&vals.iter().collect::<Vec<_>>(), steps.n));
                    let mut columnar = None;
                    if node.mode == Mode::Columnar {
                        match crate::functions::columns(func, vals, steps, &mut self.annos)? {
                            Ok(v) => {
                                columnar = Some(v);
                                vals = Vec::new();
                            }
                            Err(back) => vals = back,
                        }
                    }
                    let v = match columnar {
                        Some(v) => {
                            self.mark(id, Mode::Columnar);
                            v
                        }
                        None => {
                            self.mark(id, Mode::StepWise);
                            self.stepwise(steps, vals, |annos, args, ts| {
                                crate::functions::step(func, args, ts, annos)
                            })?
                        }
                    };
                    match gathered {
                        Some(g) => self.count_steps(base, &g, &v)?,
                        None => self.replace_result(base, &v),
                    }
                    (v, false)
                }
            },
        };
        self.settle(v, strict, node.names_read)
    }

    /// Removes pending names at once when names are not removed late
    /// (see `names`).
    fn settle(&self, v: Value, strict: bool, names_read: bool) -> Result<Value> {
        if self.opts.delayed_name_removal {
            Ok(v)
        } else {
            names::settle(v, strict, names_read)
        }
    }

    /// The range vector an instant query returns: the windows of a range
    /// selector or subquery at its one step.
    pub(crate) fn matrix_at(&mut self, id: NodeId, t: i64) -> Result<Matrix> {
        let input = range::input(self, id)?;
        let hi = input.reach.ref_time(t);
        let lo = hi - input.range;
        let mut out = Vec::new();
        if input.extended != crate::plan::Extended::None {
            let smoothed = input.extended == crate::plan::Extended::Smoothed;
            for s in input.series {
                if !s.hpoints.is_empty() {
                    return extended::histograms_refused();
                }
                let floats = extended::extend_floats(&s.points, lo, hi, smoothed);
                if !floats.is_empty() {
                    out.push(crate::value::Series {
                        metric: s.labels,
                        floats,
                        histograms: Vec::new(),
                        drop_name: s.drop_name,
                    });
                }
            }
            return Ok(out);
        }
        for s in input.series {
            let floats: Vec<_> = s
                .points
                .iter()
                .filter(|p| p.t > lo && p.t <= hi)
                .copied()
                .collect();
            let histograms: Vec<_> = s
                .hpoints
                .iter()
                .filter(|p| p.t > lo && p.t <= hi)
                .cloned()
                .collect();
            if !floats.is_empty() || !histograms.is_empty() {
                out.push(crate::value::Series {
                    metric: s.labels,
                    floats,
                    histograms,
                    drop_name: s.drop_name,
                });
            }
        }
        Ok(out)
    }
}

/// Unary minus: negates floats and histograms, marks names for removal.
fn negate(v: Value) -> Value {
    match v {
        Value::Scalar(mut s) => {
            s.iter_mut().for_each(|x| *x = -*x);
            Value::Scalar(s)
        }
        Value::Vector(mut cols) => {
            for c in &mut cols {
                negate_col(c);
            }
            Value::Vector(cols)
        }
        other => other,
    }
}

fn negate_col(c: &mut Col) {
    c.vals.iter_mut().for_each(|x| *x = -*x);
    for h in c.hists.iter_mut().flatten() {
        let mut x = (**h).clone();
        x.mul(-1.0);
        *h = std::sync::Arc::new(x);
    }
    c.drop = true;
}
