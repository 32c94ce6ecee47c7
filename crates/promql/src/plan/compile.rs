//! Compiling a parsed expression into a [`Plan`]: one walk that resolves
//! operators and functions, computes every node's evaluation grid, and
//! records what every selector loads.

mod info;

use std::collections::HashMap;

use cairn_model::{Labels, METRIC_NAME};
use cairn_storage::{Aggregate, SelectHints, RES_1H, RES_5M};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinaryExpr, Call, Expr, LabelModifier, Offset, SubqueryExpr,
    VectorMatchCardinality, VectorSelector,
};

use super::matchers::{absent_labels, matcher_sets};
use super::node::{
    AggOp, BinOp, Card, DateFn, Func, HistStat, LabelReplace, Matching, MathFn, Mode, NodeId,
    RangeFunc, Reach, SelId, Steps,
};
use super::{Consumer, Extended, Grid, Kind, Node, Plan, PlanOptions, Selection};
use crate::error::{eval_err, PromqlError, Result};
use crate::options::EngineOptions;

/// Compiles `expr` for evaluation at `steps` (one step for an instant
/// query).
pub(crate) fn compile(
    expr: &Expr,
    steps: Steps,
    opts: &EngineOptions,
    popts: PlanOptions,
) -> Result<Plan> {
    let mut c = Compiler {
        opts,
        popts,
        start: steps.start,
        end: steps.last(),
        nodes: Vec::new(),
        selections: Vec::new(),
        keys: HashMap::new(),
    };
    let root = c.expr(expr, steps, Ctx::default())?;
    Ok(Plan {
        nodes: c.nodes,
        root,
        selections: c.selections,
    })
}

struct Compiler<'o> {
    opts: &'o EngineOptions,
    popts: PlanOptions,
    /// The query's first and last evaluation time (`@ start()`/`end()`).
    start: i64,
    end: i64,
    nodes: Vec<Node>,
    selections: Vec<Selection>,
    /// Selections by what they read, so identical ones are read once.
    keys: HashMap<String, SelId>,
}

/// The window of a selection built by
/// [`Compiler::raw_points_selection`].
struct RawWindow {
    /// The range of a range selector (0 for an instant one).
    range: i64,
    /// How far before a step's reference time samples are read.
    back: i64,
    /// How far after it.
    ahead: i64,
    /// Range-selector reading: stale markers are dropped.
    matrix: bool,
    extended: Extended,
    /// The consuming function (a storage hint).
    func: Option<String>,
}

/// What the walk carries down from a node's ancestors.
#[derive(Debug, Clone, Copy, Default)]
struct Ctx {
    /// Histograms only feed `histogram_count`/`_sum`/`_avg` (no subquery,
    /// `histogram_quantile` or `histogram_fraction` in between).
    stats: bool,
    /// The function whose argument this is (a storage hint).
    func: Option<&'static str>,
    /// The selector is `timestamp()`'s argument.
    time: bool,
}

/// Strips parentheses.
fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        _ => e,
    }
}

fn type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Vector => "instant vector",
        ValueType::Scalar => "scalar",
        ValueType::Matrix => "range vector",
        ValueType::String => "string",
    }
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

fn system_time_ms(t: &std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The `i`th argument as a string literal.
fn string_arg(args: &[&Expr], i: usize) -> Result<String> {
    match args.get(i).map(|a| unparen(a)) {
        Some(Expr::StringLiteral(s)) => Ok(s.val.clone()),
        Some(_) => eval_err(format!("expected string literal as argument {}", i + 1)),
        None => eval_err(format!("missing argument {}", i + 1)),
    }
}

/// Prometheus 3 accepts any non-empty UTF-8 label name (a string literal
/// with a `\x` byte escape need not be UTF-8: see
/// `cairn_model::RAW_BYTE_BASE`).
pub(crate) fn is_valid_label_name(n: &str) -> bool {
    !n.is_empty() && cairn_model::is_valid_utf8(n)
}

impl Compiler<'_> {
    fn push(&mut self, kind: Kind, ty: ValueType, steps: Steps, mode: Mode) -> Result<NodeId> {
        let id = u32::try_from(self.nodes.len())
            .map_err(|_| PromqlError::Eval("query has too many nodes".into()))?;
        self.nodes.push(Node {
            kind,
            ty,
            steps,
            mode,
            names_read: true,
        });
        Ok(NodeId(id))
    }

    fn ty(&self, id: NodeId) -> ValueType {
        self.nodes
            .get(id.index())
            .map_or(ValueType::Vector, |n| n.ty)
    }

    fn reach(&self, at: &Option<AtModifier>, offset: &Option<Offset>) -> Reach {
        let at = match at {
            None => None,
            Some(AtModifier::Start) => Some(self.start),
            Some(AtModifier::End) => Some(self.end),
            Some(AtModifier::At(t)) => Some(system_time_ms(t)),
        };
        Reach {
            at,
            offset: offset_ms(offset),
        }
    }

    fn expr(&mut self, e: &Expr, steps: Steps, cx: Ctx) -> Result<NodeId> {
        let col = Mode::Columnar;
        match e {
            Expr::Paren(p) => self.expr(&p.expr, steps, cx),
            Expr::NumberLiteral(n) => self.push(Kind::Number(n.val), ValueType::Scalar, steps, col),
            Expr::StringLiteral(s) => {
                self.push(Kind::String(s.val.clone()), ValueType::String, steps, col)
            }
            Expr::VectorSelector(vs) => {
                let reach = self.reach(&vs.at, &vs.offset);
                let consumer = if self.popts.rows_at_load {
                    Consumer::Instant {
                        steps,
                        reach,
                        time: cx.time,
                    }
                } else {
                    Consumer::Points
                };
                let sel = self.selection(vs, steps, reach, None, consumer, cx)?;
                self.push(
                    Kind::Selector {
                        sel,
                        reach,
                        time: cx.time,
                    },
                    ValueType::Vector,
                    steps,
                    col,
                )
            }
            Expr::MatrixSelector(_) | Expr::Subquery(_) => self.range_arg(e, steps, None, cx),
            Expr::Unary(u) => {
                let inner = self.expr(&u.expr, steps, Ctx { func: None, ..cx })?;
                let ty = self.ty(inner);
                self.push(Kind::Negate(inner), ty, steps, col)
            }
            Expr::Binary(b) => self.binary(b, steps, cx),
            Expr::Aggregate(a) => self.aggregate(a, steps, cx),
            Expr::Call(c) => self.call(c, steps, cx),
            Expr::Extension(_) => eval_err("extension expressions are not supported"),
        }
    }

    /// A range vector: a range selector (whose rows the loading threads
    /// compute for `rows`, the range function reading it, when it has no
    /// parameters) or a subquery.
    fn range_arg(
        &mut self,
        e: &Expr,
        steps: Steps,
        rows: Option<RangeFunc>,
        cx: Ctx,
    ) -> Result<NodeId> {
        match unparen(e) {
            Expr::MatrixSelector(ms) => {
                let reach = self.reach(&ms.vs.at, &ms.vs.offset);
                let range = ms.range.as_millis() as i64;
                let consumer = match rows {
                    Some(func) if self.popts.rows_at_load => Consumer::Range {
                        steps,
                        reach,
                        range,
                        func,
                    },
                    _ => Consumer::Points,
                };
                let sel = self.selection(&ms.vs, steps, reach, Some(range), consumer, cx)?;
                self.push(
                    Kind::Matrix { sel, reach, range },
                    ValueType::Matrix,
                    steps,
                    Mode::Columnar,
                )
            }
            Expr::Subquery(sq) => self.subquery(sq, steps),
            other => eval_err(format!(
                "expected range vector, got {}",
                type_name(other.value_type())
            )),
        }
    }

    fn subquery(&mut self, sq: &SubqueryExpr, steps: Steps) -> Result<NodeId> {
        let reach = self.reach(&sq.at, &sq.offset);
        let (lo, hi) = (reach.ref_time(steps.start), reach.ref_time(steps.last()));
        let range = sq.range.as_millis() as i64;
        let step = match &sq.step {
            Some(d) if d.as_millis() > 0 => d.as_millis() as i64,
            _ => self.opts.no_step_subquery_interval.max(1),
        };
        // The first grid time strictly after the first window's start,
        // aligned to multiples of the step (Go's truncating division).
        let base = lo - range;
        let mut inner_start = step * (base / step);
        if inner_start <= base {
            inner_start += step;
        }
        let inner_steps = if steps.n == 0 {
            Steps {
                start: inner_start,
                step,
                n: 0,
            }
        } else {
            Steps::span(inner_start, hi, step)
        };
        let inner = self.expr(&sq.expr, inner_steps, Ctx::default())?;
        self.push(
            Kind::Subquery {
                inner,
                reach,
                range,
            },
            ValueType::Matrix,
            steps,
            Mode::Columnar,
        )
    }

    /// Records (or finds) the selection a selector reads.
    fn selection(
        &mut self,
        vs: &VectorSelector,
        steps: Steps,
        reach: Reach,
        range: Option<i64>,
        consumer: Consumer,
        cx: Ctx,
    ) -> Result<SelId> {
        let matchers = matcher_sets(vs)?;
        let extended = match Extended::of(vs) {
            // An instant selector is only changed by `smoothed`.
            Extended::Anchored if range.is_none() => Extended::None,
            e => e,
        };
        if extended != Extended::None {
            return self.extended_selection(matchers, steps, reach, range, extended, cx);
        }
        let (lo, hi) = (reach.ref_time(steps.start), reach.ref_time(steps.last()));
        // Which downsampled data may stand in (see `source_resolution`); a
        // plain selector reading level r looks back at least r, so that
        // every step finds the window that ends at or before it (as
        // Thanos's dynamic lookback delta does).
        let aggregate = aggregate_for(range.is_some(), cx.func);
        let limit = self.opts.max_source_resolution.limit(steps.step);
        let (window, resolution) = match range {
            Some(r) => (r, source_resolution(limit, r, aggregate)),
            None => {
                let res = source_resolution(limit, i64::MAX, aggregate);
                (self.opts.lookback_delta.max(res), res)
            }
        };
        let (mint, maxt) = if steps.n == 0 {
            (1, 0)
        } else {
            (lo - window + 1, hi)
        };
        let grid = Grid::new(lo, hi, steps.step);
        let consumer_key = match &consumer {
            Consumer::Points => "points".to_owned(),
            Consumer::Instant { steps, reach, time } => {
                format!("instant {steps:?} {reach:?} {time}")
            }
            Consumer::Range {
                steps,
                reach,
                range,
                func,
            } => format!("range {steps:?} {reach:?} {range} {func:?}"),
        };
        let key = format!(
            "{matchers:?} {mint} {maxt} {} {window} {grid:?} {} {consumer_key} {aggregate:?}",
            range.is_some(),
            cx.stats
        );
        if let Some(&id) = self.keys.get(&key) {
            return Ok(id);
        }
        let id = self.push_selection(Selection {
            matchers,
            mint,
            maxt,
            matrix: range.is_some(),
            reach: window,
            grid,
            stats: cx.stats,
            consumer,
            hints: SelectHints {
                start: mint,
                end: maxt,
                step: steps.step,
                range: range.unwrap_or(0),
                func: cx.func.map(str::to_owned),
                resolution,
                aggregate,
            },
            extended: Extended::None,
        })?;
        self.keys.insert(key, id);
        Ok(id)
    }

    /// The selection of an `anchored` or `smoothed` selector (never
    /// shared): raw samples from a lookback delta before each window (and,
    /// smoothed, to a lookback delta after it), kept as points without
    /// stale markers, as Prometheus's `matrixIterSlice` reads them.
    fn extended_selection(
        &mut self,
        matchers: Vec<Vec<cairn_model::Matcher>>,
        steps: Steps,
        reach: Reach,
        range: Option<i64>,
        extended: Extended,
        cx: Ctx,
    ) -> Result<SelId> {
        let lookback = self.opts.lookback_delta;
        let window = RawWindow {
            range: range.unwrap_or(0),
            back: range.unwrap_or(0) + lookback,
            ahead: if extended == Extended::Smoothed {
                lookback
            } else {
                0
            },
            matrix: true,
            extended,
            func: cx.func.map(str::to_owned),
        };
        self.raw_points_selection(matchers, steps, reach, window)
    }

    /// A selection of its own (never shared) that keeps raw points, no
    /// downsampled level and no rows: for each step's reference time `r`,
    /// the samples in `(r - back, r + ahead]`.
    pub(super) fn raw_points_selection(
        &mut self,
        matchers: Vec<Vec<cairn_model::Matcher>>,
        steps: Steps,
        reach: Reach,
        w: RawWindow,
    ) -> Result<SelId> {
        let (lo, hi) = (reach.ref_time(steps.start), reach.ref_time(steps.last()));
        let (mint, maxt) = if steps.n == 0 {
            (1, 0)
        } else {
            (lo - w.back + 1, hi + w.ahead)
        };
        self.push_selection(Selection {
            matchers,
            mint,
            maxt,
            matrix: w.matrix,
            reach: w.back + w.ahead,
            grid: Grid::new(lo + w.ahead, hi + w.ahead, steps.step),
            stats: false,
            consumer: Consumer::Points,
            hints: SelectHints {
                start: mint,
                end: maxt,
                step: steps.step,
                range: w.range,
                func: w.func,
                resolution: 0,
                aggregate: Aggregate::default(),
            },
            extended: w.extended,
        })
    }

    /// Adds `sel` to the plan.
    fn push_selection(&mut self, sel: Selection) -> Result<SelId> {
        let id = SelId(
            u32::try_from(self.selections.len())
                .map_err(|_| PromqlError::Eval("query has too many selectors".into()))?,
        );
        self.selections.push(sel);
        Ok(id)
    }

    /// Whether the range vector `m` (a range selector) will be read from a
    /// downsampled level for a function that reads `aggregate`: the same
    /// choice [`Self::selection`] records in the selection's hints.
    fn reads_levels(&self, m: &Expr, steps: Steps, aggregate: Aggregate) -> bool {
        let Expr::MatrixSelector(ms) = unparen(m) else {
            return false;
        };
        let limit = self.opts.max_source_resolution.limit(steps.step);
        source_resolution(limit, ms.range.as_millis() as i64, aggregate) > 0
    }

    /// `avg_over_time(m)` over downsampled data: `sum_over_time` of the
    /// windows' sums divided by `sum_over_time` of their counts, matched on
    /// identical labels.
    fn downsampled_avg(&mut self, m: &Expr, steps: Steps, cx: Ctx) -> Result<NodeId> {
        let part = |c: &mut Self, func: &'static str| -> Result<NodeId> {
            let cx = Ctx {
                func: Some(func),
                ..cx
            };
            let sel = c.range_arg(m, steps, Some(RangeFunc::SumOverTime), cx)?;
            c.push(
                Kind::Call {
                    func: Func::Range(RangeFunc::SumOverTime),
                    args: vec![sel],
                },
                ValueType::Vector,
                steps,
                Mode::Columnar,
            )
        };
        let lhs = part(self, "sum_over_time")?;
        let rhs = part(self, "count_over_time")?;
        let mode = if self.popts.columnar {
            Mode::Columnar
        } else {
            Mode::StepWise
        };
        self.push(
            Kind::Binary {
                op: BinOp::Div,
                lhs,
                rhs,
                return_bool: false,
                matching: Matching {
                    on: false,
                    names: Vec::new(),
                    card: Card::OneToOne,
                },
            },
            ValueType::Vector,
            steps,
            mode,
        )
    }

    fn binary(&mut self, b: &BinaryExpr, steps: Steps, cx: Ctx) -> Result<NodeId> {
        let Some(op) = BinOp::from_token(b.op.id()) else {
            return eval_err(format!("unsupported binary operator {}", b.op));
        };
        let cx = Ctx { func: None, ..cx };
        let lhs = self.expr(&b.lhs, steps, cx)?;
        let rhs = self.expr(&b.rhs, steps, cx)?;
        let (lt, rt) = (self.ty(lhs), self.ty(rhs));
        let (on, names) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
            Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
            None => (false, Vec::new()),
        };
        let card = match b.modifier.as_ref().map(|m| &m.card) {
            None | Some(VectorMatchCardinality::OneToOne) => Card::OneToOne,
            Some(VectorMatchCardinality::ManyToOne(ls)) => Card::ManyToOne(ls.labels.clone()),
            Some(VectorMatchCardinality::OneToMany(ls)) => Card::OneToMany(ls.labels.clone()),
            Some(VectorMatchCardinality::ManyToMany) => Card::ManyToMany,
        };
        let scalars = (lt == ValueType::Scalar, rt == ValueType::Scalar);
        let columnar = match scalars {
            (true, true) => true,
            (true, false) | (false, true) => self.popts.columnar && !op.is_set(),
            (false, false) => self.popts.columnar && op.is_arith() && card == Card::OneToOne,
        };
        let ty = if scalars == (true, true) {
            ValueType::Scalar
        } else {
            ValueType::Vector
        };
        self.push(
            Kind::Binary {
                op,
                lhs,
                rhs,
                return_bool: b.return_bool(),
                matching: Matching { on, names, card },
            },
            ty,
            steps,
            if columnar {
                Mode::Columnar
            } else {
                Mode::StepWise
            },
        )
    }

    fn aggregate(&mut self, a: &AggregateExpr, steps: Steps, cx: Ctx) -> Result<NodeId> {
        let Some(op) = AggOp::from_token(a.op.id()) else {
            return eval_err(format!("unsupported aggregation {}", a.op));
        };
        let cx = Ctx { func: None, ..cx };
        let param = match &a.param {
            Some(p) => Some(self.expr(p, steps, cx)?),
            None => None,
        };
        let expr = self.expr(&a.expr, steps, cx)?;
        let (without, names) = match &a.modifier {
            Some(LabelModifier::Include(ls)) => (false, ls.labels.clone()),
            Some(LabelModifier::Exclude(ls)) => (true, ls.labels.clone()),
            None => (false, Vec::new()),
        };
        // These aggregations build their output labels from the grouping
        // alone, never from an input's name; topk, bottomk and the limits
        // pass input label sets through.
        let groups_only = op.folds() || matches!(op, AggOp::Quantile | AggOp::CountValues);
        if groups_only && (without || !names.iter().any(|n| n == METRIC_NAME)) {
            if let Some(n) = self.nodes.get_mut(expr.index()) {
                n.names_read = false;
            }
        }
        let columnar = self.popts.columnar && op.folds() && param.is_none();
        self.push(
            Kind::Aggregate {
                op,
                expr,
                param,
                without,
                names,
            },
            ValueType::Vector,
            steps,
            if columnar {
                Mode::Columnar
            } else {
                Mode::StepWise
            },
        )
    }

    fn call(&mut self, c: &Call, steps: Steps, cx: Ctx) -> Result<NodeId> {
        let name = c.func.name;
        let args: Vec<&Expr> = c.args.args.iter().map(|b| &**b).collect();
        let stats = match name {
            "histogram_count" | "histogram_sum" | "histogram_avg" => true,
            "histogram_quantile" | "histogram_fraction" => false,
            _ => cx.stats,
        };
        let cx = Ctx {
            stats,
            func: Some(name),
            time: false,
        };
        if name == "info" {
            return self.info(&args, steps, cx);
        }
        let ty = c.func.return_type;
        let col = if self.popts.columnar {
            Mode::Columnar
        } else {
            Mode::StepWise
        };
        if let Some(rf) = RangeFunc::from_name(name) {
            let mi = rf.matrix_arg();
            let Some(m) = args.get(mi) else {
                return eval_err(format!("function {name} expects a range vector argument"));
            };
            if let Expr::MatrixSelector(ms) = unparen(m) {
                check_extended(name, Extended::of(&ms.vs))?;
            }
            // Over downsampled data, the average of a range is the sum of
            // its windows' sums over the sum of their counts (an average of
            // window averages would weigh short windows as much as full
            // ones): two selections, summed, divided.
            if rf == RangeFunc::AvgOverTime && self.reads_levels(m, steps, Aggregate::Sum) {
                return self.downsampled_avg(m, steps, cx);
            }
            // Over downsampled data the selection reads counts per window
            // (storage answers one per raw sample where it reads raw data),
            // so counting means summing them.
            let rf = if rf == RangeFunc::CountOverTime
                && self.reads_levels(m, steps, Aggregate::Count)
            {
                RangeFunc::SumOverTime
            } else {
                rf
            };
            // The matrix first, then the parameters in order.
            let rows = (rf.params() == 0).then_some(rf);
            let mut ids = vec![self.range_arg(m, steps, rows, cx)?];
            for (i, a) in args.iter().enumerate() {
                if i != mi {
                    ids.push(self.expr(a, steps, cx)?);
                }
            }
            return self.push(
                Kind::Call {
                    func: Func::Range(rf),
                    args: ids,
                },
                ty,
                steps,
                Mode::Columnar,
            );
        }
        let value_args = |c: &mut Self, range: std::ops::Range<usize>| -> Result<Vec<NodeId>> {
            let mut ids = Vec::new();
            for i in range {
                match args.get(i) {
                    Some(a) => ids.push(c.expr(a, steps, cx)?),
                    None => return eval_err(format!("missing argument {}", i + 1)),
                }
            }
            Ok(ids)
        };
        let n = args.len();
        let (func, ids, mode) = match name {
            "absent_over_time" => {
                let Some(m) = args.first() else {
                    return eval_err("missing argument 1");
                };
                let labels = match unparen(m) {
                    Expr::MatrixSelector(ms) => absent_labels(&ms.vs),
                    _ => Labels::empty(),
                };
                let id = self.range_arg(m, steps, Some(RangeFunc::PresentOverTime), cx)?;
                (Func::AbsentOverTime(labels), vec![id], Mode::Columnar)
            }
            "absent" => {
                let labels = match args.first().map(|a| unparen(a)) {
                    Some(Expr::VectorSelector(vs)) => absent_labels(vs),
                    _ => Labels::empty(),
                };
                (
                    Func::Absent(labels),
                    value_args(self, 0..1)?,
                    Mode::Columnar,
                )
            }
            "label_replace" => {
                let dst = string_arg(&args, 1)?;
                let repl = string_arg(&args, 2)?;
                let src = string_arg(&args, 3)?;
                let re_str = string_arg(&args, 4)?;
                let Ok(re) = regex::Regex::new(&format!("^(?s:{re_str})$")) else {
                    return eval_err(format!(
                        "invalid regular expression in label_replace(): {re_str}"
                    ));
                };
                if !is_valid_label_name(&dst) {
                    return eval_err(format!(
                        "invalid destination label name in label_replace(): {dst}"
                    ));
                }
                let f = Func::LabelReplace(Box::new(LabelReplace { dst, repl, src, re }));
                (f, value_args(self, 0..1)?, Mode::Columnar)
            }
            "label_join" => {
                let dst = string_arg(&args, 1)?;
                let sep = string_arg(&args, 2)?;
                let mut srcs = Vec::new();
                for i in 3..n {
                    let s = string_arg(&args, i)?;
                    if !is_valid_label_name(&s) {
                        return eval_err(format!("invalid source label name in label_join(): {s}"));
                    }
                    srcs.push(s);
                }
                if !is_valid_label_name(&dst) {
                    return eval_err(format!(
                        "invalid destination label name in label_join(): {dst}"
                    ));
                }
                let f = Func::LabelJoin { dst, sep, srcs };
                (f, value_args(self, 0..1)?, Mode::Columnar)
            }
            "sort" | "sort_desc" => (
                Func::Sort {
                    desc: name == "sort_desc",
                },
                value_args(self, 0..1)?,
                Mode::StepWise,
            ),
            "sort_by_label" | "sort_by_label_desc" => {
                let mut labels = Vec::new();
                for i in 1..n {
                    labels.push(string_arg(&args, i)?);
                }
                let f = Func::SortByLabel {
                    desc: name == "sort_by_label_desc",
                    labels,
                };
                (f, value_args(self, 0..1)?, Mode::StepWise)
            }
            "timestamp" => {
                let Some(a) = args.first() else {
                    return eval_err("missing argument 1");
                };
                let time = matches!(unparen(a), Expr::VectorSelector(_));
                let id = self.expr(a, steps, Ctx { time, ..cx })?;
                (Func::Timestamp { selector: time }, vec![id], Mode::Columnar)
            }
            "vector" => (Func::Vector, value_args(self, 0..1)?, Mode::Columnar),
            "scalar" => (Func::Scalar, value_args(self, 0..1)?, Mode::Columnar),
            "time" => (Func::Time, Vec::new(), Mode::Columnar),
            "pi" => (Func::Pi, Vec::new(), Mode::Columnar),
            "histogram_quantile" => {
                let literal_q = matches!(
                    args.first().map(|a| unparen(a)),
                    Some(Expr::NumberLiteral(_))
                );
                let mode = if literal_q { col } else { Mode::StepWise };
                (Func::HistogramQuantile, value_args(self, 0..2)?, mode)
            }
            "histogram_fraction" => (
                Func::HistogramFraction,
                value_args(self, 0..3)?,
                Mode::StepWise,
            ),
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                let s = match name {
                    "histogram_count" => HistStat::Count,
                    "histogram_sum" => HistStat::Sum,
                    "histogram_avg" => HistStat::Avg,
                    "histogram_stddev" => HistStat::Stddev,
                    _ => HistStat::Stdvar,
                };
                (
                    Func::HistogramStat(s),
                    value_args(self, 0..1)?,
                    Mode::StepWise,
                )
            }
            "clamp" => (Func::Clamp, value_args(self, 0..3)?, Mode::Columnar),
            "clamp_min" => (Func::ClampMin, value_args(self, 0..2)?, Mode::Columnar),
            "clamp_max" => (Func::ClampMax, value_args(self, 0..2)?, Mode::Columnar),
            "round" => (Func::Round, value_args(self, 0..n.min(2))?, Mode::Columnar),
            _ => {
                if let Some(d) = DateFn::from_name(name) {
                    (
                        Func::Date(d),
                        value_args(self, 0..n.min(1))?,
                        Mode::Columnar,
                    )
                } else if let Some(m) = MathFn::from_name(name) {
                    (Func::Math(m), value_args(self, 0..1)?, Mode::Columnar)
                } else {
                    return eval_err(format!("function {name:?} is not supported"));
                }
            }
        };
        self.push(Kind::Call { func, args: ids }, ty, steps, mode)
    }
}

/// Prometheus's rule for which functions take an `anchored` or `smoothed`
/// range (`AnchoredSafeFunctions`, `SmoothedSafeFunctions`).
fn check_extended(func: &str, e: Extended) -> Result<()> {
    let (name, allowed): (&str, &[&str]) = match e {
        Extended::None => return Ok(()),
        Extended::Anchored => (
            "anchored",
            &["changes", "delta", "increase", "rate", "resets"],
        ),
        Extended::Smoothed => ("smoothed", &["delta", "increase", "rate"]),
    };
    if allowed.contains(&func) {
        return Ok(());
    }
    eval_err(format!(
        "{name} modifier can only be used with: {} - not with {func}",
        allowed.join(", ")
    ))
}

/// The coarsest downsampled level (ms; 0 = raw) a selection may read:
/// at most `limit` (from `max_source_resolution` and the step), and no
/// coarser than its window allows: every range must hold at least one
/// downsampled point, and four counter points for `rate`, `increase`,
/// `irate` and `resets` (one per level window), which keeps them within 1%
/// of raw for steady counters. Plain selectors pass no window (their
/// lookback grows to the level instead).
pub(crate) fn source_resolution(limit: i64, window: i64, aggregate: Aggregate) -> i64 {
    let points = match aggregate {
        Aggregate::Counter | Aggregate::Resets => 4,
        _ => 1,
    };
    [RES_1H, RES_5M]
        .into_iter()
        .find(|&r| r <= limit && r.saturating_mul(points) <= window)
        .unwrap_or(0)
}

/// What downsampled data stands in for a selection's samples: the
/// aggregate that keeps its consumer's answer (docs/format/downsample.md).
pub(crate) fn aggregate_for(matrix: bool, func: Option<&str>) -> Aggregate {
    if !matrix {
        return Aggregate::Avg;
    }
    match func {
        Some("min_over_time") => Aggregate::Min,
        Some("max_over_time") => Aggregate::Max,
        Some("count_over_time") => Aggregate::Count,
        Some("sum_over_time") => Aggregate::Sum,
        Some("rate" | "increase" | "irate") => Aggregate::Counter,
        Some("resets") => Aggregate::Resets,
        _ => Aggregate::Avg,
    }
}

#[cfg(test)]
mod resolution_tests {
    use super::*;

    const M: i64 = 60_000;

    #[test]
    fn the_coarsest_level_the_limit_and_the_window_allow() {
        // Plain selectors pass no window: the limit alone decides (their
        // lookback grows to the level).
        assert_eq!(source_resolution(12 * M, i64::MAX, Aggregate::Avg), RES_5M);
        assert_eq!(
            source_resolution(2 * 60 * M, i64::MAX, Aggregate::Avg),
            RES_1H
        );
        // Over-time functions need one level window per range.
        assert_eq!(
            source_resolution(2 * 60 * M, 60 * M, Aggregate::Max),
            RES_1H
        );
        assert_eq!(
            source_resolution(2 * 60 * M, 59 * M, Aggregate::Max),
            RES_5M
        );
        // Counters need four.
        assert_eq!(
            source_resolution(2 * 60 * M, 60 * M, Aggregate::Counter),
            RES_5M
        );
        assert_eq!(
            source_resolution(2 * 60 * M, 4 * 60 * M, Aggregate::Counter),
            RES_1H
        );
        assert_eq!(source_resolution(2 * 60 * M, 19 * M, Aggregate::Resets), 0);
        // The limit: auto at step 1h is 12 m; raw is 0.
        assert_eq!(source_resolution(4 * M, 60 * M, Aggregate::Sum), 0);
        assert_eq!(source_resolution(0, 60 * M, Aggregate::Sum), 0);
    }

    #[test]
    fn each_function_reads_the_aggregate_that_keeps_it_right() {
        assert_eq!(aggregate_for(false, None), Aggregate::Avg);
        assert_eq!(aggregate_for(false, Some("rate")), Aggregate::Avg);
        for (f, a) in [
            ("min_over_time", Aggregate::Min),
            ("max_over_time", Aggregate::Max),
            ("count_over_time", Aggregate::Count),
            ("sum_over_time", Aggregate::Sum),
            ("avg_over_time", Aggregate::Avg),
            ("rate", Aggregate::Counter),
            ("increase", Aggregate::Counter),
            ("irate", Aggregate::Counter),
            ("resets", Aggregate::Resets),
            ("quantile_over_time", Aggregate::Avg),
        ] {
            assert_eq!(aggregate_for(true, Some(f)), a, "{f}");
        }
    }

    #[test]
    fn auto_is_a_fifth_of_the_step() {
        use crate::options::SourceResolution as S;
        assert_eq!(S::Auto.limit(60 * M), 12 * M);
        assert_eq!(S::Auto.limit(0), 0);
        assert_eq!(S::parse("raw"), Some(S::Raw));
        assert_eq!(S::parse("5m"), Some(S::Max(RES_5M)));
        assert_eq!(S::parse("auto"), Some(S::Auto));
        assert_eq!(S::parse("fast"), None);
    }
}
