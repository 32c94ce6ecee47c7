//! The evaluator: runs a parsed expression one evaluation time at a time.
//!
//! Contracts:
//! - Every selector's series are read from storage ONCE per query, before
//!   evaluation starts, over the whole time span the query needs for that
//!   selector (`[first step - offset - range/lookback, last step - offset]`,
//!   shifted by `@`); steps then look samples up in memory by binary search.
//! - Windows are left-open, right-closed: a range selector at time `t`
//!   covers `(t - range, t]`, an instant selector looks back over
//!   `(t - lookback, t]` and ignores a stale marker found there.
//! - A subquery's inner expression is evaluated once over its whole aligned
//!   grid (steps that are multiples of the subquery step), cached, and then
//!   windowed per outer step like a range selector.

pub(crate) mod aggregate;
pub(crate) mod binary;
pub(crate) mod rows;
pub(crate) mod select;
pub(crate) mod stats;

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cairn_model::{CounterResetHint, Labels};
use promql_parser::parser::{AtModifier, Expr, Offset, SubqueryExpr};

use crate::engine::EngineOptions;
use crate::error::{eval_err, PromqlError, Result};
use crate::value::{Annotations, FPoint, HPoint, Matrix, Sample, SampleValue, Series, Vector};

/// One series held in memory for the query: a selector's raw samples or a
/// subquery's computed points, sorted by time.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub labels: Labels,
    pub points: Vec<FPoint>,
    /// Native histogram points, sorted by time (disjoint in time from `points`).
    pub hpoints: Vec<HPoint>,
    pub drop_name: bool,
    /// Set when the series has a metric name that does not look like a
    /// counter's (checked once, for `rate`/`increase` annotations).
    pub non_counter_name: bool,
    /// A hash of the metric name when `non_counter_name` is set, so that
    /// the annotation is formatted once per name without reading every
    /// series' labels again (they are out of cache by then).
    pub name_hash: u64,
    /// The series' values at every step of a range query, computed by the
    /// loading thread for the selector's one consumer (the instant
    /// selector itself, or the range function around it) when the columnar
    /// evaluator will take the query; `points` is then left empty.
    pub row: Option<rows::Row>,
}

impl Loaded {
    pub(crate) fn new(labels: Labels, points: Vec<FPoint>, drop_name: bool) -> Self {
        let name = labels.metric_name().filter(|n| {
            !(n.ends_with("_total")
                || n.ends_with("_sum")
                || n.ends_with("_count")
                || n.ends_with("_bucket"))
        });
        let non_counter_name = name.is_some();
        let name_hash = name.map_or(0, |n| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            n.hash(&mut h);
            h.finish()
        });
        Self {
            labels,
            points,
            hpoints: Vec::new(),
            drop_name,
            non_counter_name,
            name_hash,
            row: None,
        }
    }

    /// Attaches histogram points.
    pub(crate) fn with_histograms(mut self, hpoints: Vec<HPoint>) -> Self {
        self.hpoints = hpoints;
        self
    }
}

/// The value of an expression at one evaluation time.
#[derive(Debug, Clone)]
pub(crate) enum StepVal {
    Vector(Vector),
    Scalar(f64),
    String(String),
    Matrix(Matrix),
}

impl StepVal {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            StepVal::Vector(_) => "instant vector",
            StepVal::Scalar(_) => "scalar",
            StepVal::String(_) => "string",
            StepVal::Matrix(_) => "range vector",
        }
    }
}

/// A range argument at one step: per series, the points inside the window.
pub(crate) struct RangeArg {
    pub data: Rc<Vec<Loaded>>,
    /// Exclusive lower bound of the window.
    pub lo: i64,
    /// Inclusive upper bound of the window.
    pub hi: i64,
    /// The window length.
    pub range: i64,
    /// Per series, the index range of the points inside the window.
    pub bounds: Vec<(usize, usize)>,
    /// Per series, the index range of the histogram points inside the window.
    pub hbounds: Vec<(usize, usize)>,
}

impl RangeArg {
    /// The points of series `i` inside the window.
    pub fn window(&self, i: usize) -> &[FPoint] {
        let (Some(s), Some(&(a, b))) = (self.data.get(i), self.bounds.get(i)) else {
            return &[];
        };
        s.points.get(a..b).unwrap_or(&[])
    }

    /// The histogram points of series `i` inside the window.
    pub fn hwindow(&self, i: usize) -> &[HPoint] {
        let (Some(s), Some(&(a, b))) = (self.data.get(i), self.hbounds.get(i)) else {
            return &[];
        };
        s.hpoints.get(a..b).unwrap_or(&[])
    }

    /// The windows as a matrix (for range vectors returned directly).
    pub fn to_matrix(&self) -> Matrix {
        let mut out = Vec::new();
        for (i, s) in self.data.iter().enumerate() {
            let w = self.window(i);
            let hw = self.hwindow(i);
            if !w.is_empty() || !hw.is_empty() {
                out.push(Series {
                    metric: s.labels.clone(),
                    floats: w.to_vec(),
                    histograms: hw.to_vec(),
                    drop_name: s.drop_name,
                });
            }
        }
        out
    }
}

/// Where a node's windows were at its previous step, per series. Steps
/// usually move forward, so the next window is found by walking a few
/// points on instead of binary searching every series at every step (which
/// thrashes caches on long range queries).
#[derive(Default)]
pub(crate) struct Cursor {
    lo: i64,
    hi: i64,
    pub bounds: Vec<(usize, usize)>,
    /// The same for the histogram points; left empty while the node's
    /// data holds no histograms at all.
    pub hbounds: Vec<(usize, usize)>,
    /// Whether the node's data holds histograms (checked once: a node's
    /// data does not change during a query).
    has_hist: Option<bool>,
}

impl Cursor {
    /// Moves every series' bounds to the window `(lo, hi]`.
    pub(crate) fn advance(&mut self, data: &[Loaded], lo: i64, hi: i64) {
        let forward = lo >= self.lo && hi >= self.hi;
        move_bounds(
            &mut self.bounds,
            data,
            |s| &s.points,
            |p| p.t,
            lo,
            hi,
            forward,
        );
        let has_hist = *self
            .has_hist
            .get_or_insert_with(|| data.iter().any(|s| !s.hpoints.is_empty()));
        if has_hist {
            move_bounds(
                &mut self.hbounds,
                data,
                |s| &s.hpoints,
                |p| p.t,
                lo,
                hi,
                forward,
            );
        } else {
            self.hbounds.clear();
        }
        self.lo = lo;
        self.hi = hi;
    }
}

/// Sets `bounds[i]` to the index range of series `i`'s points (as `pts`
/// picks them) inside `(lo, hi]`: stepping on from the previous bounds when
/// the window only moved forward, binary searching otherwise.
fn move_bounds<P>(
    bounds: &mut Vec<(usize, usize)>,
    data: &[Loaded],
    pts: impl Fn(&Loaded) -> &[P],
    t: impl Fn(&P) -> i64,
    lo: i64,
    hi: i64,
    forward: bool,
) {
    if !(forward && bounds.len() == data.len()) {
        *bounds = data
            .iter()
            .map(|s| {
                let p = pts(s);
                (
                    p.partition_point(|x| t(x) <= lo),
                    p.partition_point(|x| t(x) <= hi),
                )
            })
            .collect();
        return;
    }
    for (s, b) in data.iter().zip(bounds.iter_mut()) {
        let p = pts(s);
        let mut a = b.0;
        while p.get(a).is_some_and(|x| t(x) <= lo) {
            a += 1;
        }
        let mut e = b.1.max(a);
        while p.get(e).is_some_and(|x| t(x) <= hi) {
            e += 1;
        }
        *b = (a, e);
    }
}

/// Converts a parser timestamp to milliseconds since the epoch.
pub(crate) fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// Offset in milliseconds (positive looks back).
pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

/// Strips parentheses.
pub(crate) fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        _ => e,
    }
}

/// Node identity for caches: the address of the node inside the parsed
/// expression, which does not move while the query runs.
pub(crate) fn node_id<T>(n: &T) -> usize {
    n as *const T as usize
}

/// The per-query evaluation state.
pub(crate) struct Evaluator<'a> {
    pub opts: &'a EngineOptions,
    /// First and last evaluation time of the query (for `@ start()`/`end()`).
    pub start: i64,
    pub end: i64,
    pub selectors: HashMap<usize, Rc<Vec<Loaded>>>,
    pub subquery_grid: HashMap<usize, (i64, i64, i64)>,
    subqueries: HashMap<usize, Rc<Vec<Loaded>>>,
    pub cursors: HashMap<usize, Cursor>,
    pub annos: Annotations,
    deadline: Option<Instant>,
    /// Whether `load` computes each selector's values at the query's
    /// steps ([`Loaded::row`]) instead of keeping its points: set for
    /// range queries the columnar evaluator takes.
    pub rows: bool,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn new(opts: &'a EngineOptions, start: i64, end: i64) -> Self {
        let deadline = Instant::now().checked_add(opts.timeout);
        Self {
            opts,
            start,
            end,
            selectors: HashMap::new(),
            subquery_grid: HashMap::new(),
            subqueries: HashMap::new(),
            cursors: HashMap::new(),
            annos: Annotations::default(),
            deadline,
            rows: false,
        }
    }

    /// Fails when the query ran past its timeout.
    pub(crate) fn check_deadline(&self) -> Result<()> {
        match self.deadline {
            Some(d) if Instant::now() > d => Err(PromqlError::Timeout),
            _ => Ok(()),
        }
    }

    /// The time a selector with these modifiers reads at, for step `ts`.
    pub(crate) fn ref_time(
        &self,
        at: &Option<AtModifier>,
        offset: &Option<Offset>,
        ts: i64,
    ) -> i64 {
        let base = match at {
            None => ts,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(t)) => system_time_ms(t),
        };
        base - offset_ms(offset)
    }

    /// Evaluates `e` at time `ts`.
    pub(crate) fn eval(&mut self, e: &Expr, ts: i64) -> Result<StepVal> {
        match e {
            Expr::NumberLiteral(n) => Ok(StepVal::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(StepVal::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, ts),
            Expr::Unary(u) => match self.eval(&u.expr, ts)? {
                StepVal::Scalar(f) => Ok(StepVal::Scalar(-f)),
                StepVal::Vector(mut v) => {
                    for s in &mut v {
                        match &mut s.value {
                            SampleValue::Float(f) => *f = -*f,
                            SampleValue::Histogram(h) => {
                                let mut x = (**h).clone();
                                x.mul(-1.0);
                                *h = std::sync::Arc::new(x);
                            }
                        }
                        s.t = ts;
                        s.drop_name = true;
                    }
                    Ok(StepVal::Vector(v))
                }
                other => eval_err(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                    other.type_name()
                )),
            },
            Expr::VectorSelector(vs) => Ok(StepVal::Vector(self.vector_selector(vs, ts, false)?)),
            Expr::MatrixSelector(_) | Expr::Subquery(_) => {
                let r = self.range_arg(e, ts)?;
                Ok(StepVal::Matrix(r.to_matrix()))
            }
            Expr::Binary(b) => binary::eval_binary(self, b, ts),
            Expr::Aggregate(a) => aggregate::eval_aggregate(self, a, ts),
            Expr::Call(c) => crate::functions::eval_call(self, c, ts),
            Expr::Extension(_) => eval_err("extension expressions are not supported"),
        }
    }

    /// Evaluates `e` expecting an instant vector.
    pub(crate) fn eval_vector(&mut self, e: &Expr, ts: i64) -> Result<Vector> {
        match self.eval(e, ts)? {
            StepVal::Vector(v) => Ok(v),
            other => eval_err(format!(
                "expected instant vector, got {}",
                other.type_name()
            )),
        }
    }

    /// Evaluates `e` expecting a scalar.
    pub(crate) fn eval_scalar(&mut self, e: &Expr, ts: i64) -> Result<f64> {
        match self.eval(e, ts)? {
            StepVal::Scalar(f) => Ok(f),
            other => eval_err(format!("expected scalar, got {}", other.type_name())),
        }
    }

    /// The window of a range selector or subquery at step `ts`.
    pub(crate) fn range_arg(&mut self, e: &Expr, ts: i64) -> Result<RangeArg> {
        match unparen(e) {
            Expr::MatrixSelector(ms) => {
                let id = node_id(&ms.vs);
                let data = self.selectors.get(&id).cloned().ok_or_else(|| {
                    PromqlError::Eval("internal error: range selector was not loaded".into())
                })?;
                let range = ms.range.as_millis() as i64;
                let hi = self.ref_time(&ms.vs.at, &ms.vs.offset, ts);
                let cur = self.cursors.entry(id).or_default();
                cur.advance(&data, hi - range, hi);
                Ok(RangeArg {
                    bounds: cur.bounds.clone(),
                    hbounds: cur.hbounds.clone(),
                    data,
                    lo: hi - range,
                    hi,
                    range,
                })
            }
            Expr::Subquery(sq) => {
                let data = self.subquery_data(sq)?;
                let range = sq.range.as_millis() as i64;
                let hi = self.ref_time(&sq.at, &sq.offset, ts);
                let cur = self.cursors.entry(node_id(sq)).or_default();
                cur.advance(&data, hi - range, hi);
                Ok(RangeArg {
                    bounds: cur.bounds.clone(),
                    hbounds: cur.hbounds.clone(),
                    data,
                    lo: hi - range,
                    hi,
                    range,
                })
            }
            other => eval_err(format!(
                "expected range vector, got {}",
                match other.value_type() {
                    promql_parser::parser::value::ValueType::Vector => "instant vector",
                    promql_parser::parser::value::ValueType::Scalar => "scalar",
                    promql_parser::parser::value::ValueType::String => "string",
                    promql_parser::parser::value::ValueType::Matrix => "range vector",
                }
            )),
        }
    }

    /// Evaluates a subquery's inner expression over its grid, once.
    fn subquery_data(&mut self, sq: &SubqueryExpr) -> Result<Rc<Vec<Loaded>>> {
        let id = node_id(sq);
        if let Some(d) = self.subqueries.get(&id) {
            return Ok(d.clone());
        }
        let &(start, end, step) = self
            .subquery_grid
            .get(&id)
            .ok_or_else(|| PromqlError::Eval("internal error: subquery was not planned".into()))?;
        let mut out: Vec<Loaded> = Vec::new();
        let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
        let mut total = 0usize;
        let mut t = start;
        while t <= end {
            self.check_deadline()?;
            match self.eval(&sq.expr, t)? {
                StepVal::Scalar(f) => {
                    let slot = index.entry(0).or_default();
                    if slot.is_empty() {
                        out.push(Loaded::new(Labels::empty(), Vec::new(), false));
                        slot.push(out.len() - 1);
                    }
                    let i = slot.first().copied().unwrap_or(0);
                    if let Some(s) = out.get_mut(i) {
                        s.points.push(FPoint { t, f });
                    }
                    total += 1;
                }
                StepVal::Vector(v) => {
                    for s in v {
                        let h = s.metric.hash64();
                        let slot = index.entry(h).or_default();
                        let i = match slot
                            .iter()
                            .copied()
                            .find(|&i| out.get(i).is_some_and(|l| l.labels == s.metric))
                        {
                            Some(i) => i,
                            None => {
                                out.push(Loaded::new(s.metric.clone(), Vec::new(), s.drop_name));
                                slot.push(out.len() - 1);
                                out.len() - 1
                            }
                        };
                        if let Some(l) = out.get_mut(i) {
                            if l.points.last().is_some_and(|p| p.t == t)
                                || l.hpoints.last().is_some_and(|p| p.t == t)
                            {
                                return eval_err(
                                    "vector cannot contain metrics with the same labelset",
                                );
                            }
                            match s.value {
                                SampleValue::Float(f) => l.points.push(FPoint { t, f }),
                                SampleValue::Histogram(h) => {
                                    // Explicit reset hints would be wrong for the
                                    // subquery's own sample spacing.
                                    let h = match h.counter_reset_hint {
                                        CounterResetHint::CounterReset
                                        | CounterResetHint::NotCounterReset => {
                                            let mut x = (*h).clone();
                                            x.counter_reset_hint = CounterResetHint::Unknown;
                                            std::sync::Arc::new(x)
                                        }
                                        _ => h,
                                    };
                                    l.hpoints.push(HPoint { t, h })
                                }
                            }
                        }
                        total += 1;
                    }
                }
                other => {
                    return eval_err(format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        other.type_name()
                    ))
                }
            }
            if total > self.opts.max_samples {
                return Err(PromqlError::TooManySamples);
            }
            t += step;
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        let rc = Rc::new(out);
        self.subqueries.insert(id, rc.clone());
        Ok(rc)
    }

    /// Builds a sample from a label set at `ts`.
    pub(crate) fn sample(metric: Labels, ts: i64, f: f64, drop_name: bool) -> Sample {
        Sample {
            metric,
            t: ts,
            value: SampleValue::Float(f),
            drop_name,
        }
    }
}
