//! Columnar evaluation of range queries: each node is evaluated over ALL
//! steps at once, one column of per-step values per series, instead of
//! building an instant vector per step.
//!
//! Why: the step-by-step evaluator re-derives per-series facts at every
//! step (grouping signatures and group labels of aggregations, matching
//! signatures and result labels of binary operators, one `Sample` and one
//! label clone per series). Over a range those facts do not change, so here
//! they are computed once per query and the steps only touch `f64` arrays.
//!
//! For a query this path takes, loading does the first step too: right
//! after decoding a series, the loading thread computes its values at every
//! step for the selector's one consumer (the instant selector itself, or
//! the range function around it; see `eval::rows`), while the points are in
//! cache, and keeps only those. Aggregations fold such rows directly. When
//! this path then gives way after all, the query is loaded again with
//! points for the step-wise evaluator.
//!
//! Contracts:
//! - Only a subset of PromQL is handled (see [`supported`]); anything else,
//!   and any case whose step-wise semantics could differ (native histogram
//!   samples, duplicate matching keys, mixed pending name removal within a
//!   group), makes [`eval_range`] answer `None` so the caller falls back to
//!   the step-wise evaluator. Nothing here changes results.
//! - Per step, series are visited in the same order as the step-wise
//!   evaluator visits the samples of its instant vectors, and every value
//!   is computed with the same arithmetic (the same Kahan-compensated sums,
//!   the same range functions), so results are bit-identical.
//! - Windows and lookback are as in the step-wise evaluator: range windows
//!   `(t - range, t]`, instant lookback `(t - lookback, t]` skipping stale
//!   markers.

use std::collections::HashMap;
use std::rc::Rc;

use cairn_model::{Labels, LabelsBuilder, METRIC_NAME};
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_AVG, T_COUNT, T_DIV, T_GROUP, T_MAX, T_MIN, T_MOD, T_MUL, T_POW, T_STDDEV,
    T_STDVAR, T_SUB, T_SUM,
};
use promql_parser::parser::{
    value::ValueType, AggregateExpr, BinaryExpr, Call, Expr, LabelModifier, MatrixSelector,
    VectorMatchCardinality, VectorSelector,
};

use super::METADATA_LABELS;
use crate::error::{PromqlError, Result};
use crate::eval::aggregate::FloatAgg;
use crate::eval::binary::{elem_op, is_comparison, signature};
use crate::eval::rows::{instant_row, range_values, RangeSpec, Row};
use crate::eval::select::MIN_SERIES_PER_THREAD;
use crate::eval::{node_id, unparen, Evaluator, Loaded};
use crate::functions::histogram::{
    bucket_quantile, forced_monotonic_info, parse_go_float, quantile_range_warning, Bucket,
};
use crate::functions::range_fn;
use crate::par::PARTS_PER_THREAD;
use crate::value::{FPoint, Matrix, Series};

/// Most cells (series x steps) one node may hold before the columnar path
/// gives way to the step-wise evaluator (which holds one step at a time).
const MAX_CELLS: usize = 32 << 20;

/// One series over all steps.
struct Col {
    labels: Labels,
    drop: bool,
    vals: Vec<f64>,
    ok: Vec<bool>,
}

/// A node's value over all steps.
enum Val {
    Scalar(Vec<f64>),
    Vector(Vec<Col>),
}

/// The evaluation steps `start + i * step`, `i < n`.
#[derive(Clone, Copy)]
struct Steps {
    start: i64,
    step: i64,
    n: usize,
}

impl Steps {
    fn times(self) -> impl Iterator<Item = i64> {
        (0..self.n).map(move |i| self.start + i as i64 * self.step)
    }
}

fn is_arith(op: u16) -> bool {
    matches!(op, T_ADD | T_SUB | T_MUL | T_DIV | T_MOD | T_POW | T_ATAN2)
}

/// Whether the columnar path can evaluate `e`.
pub(super) fn supported(e: &Expr) -> bool {
    match e {
        Expr::NumberLiteral(_) | Expr::VectorSelector(_) => true,
        Expr::Paren(p) => supported(&p.expr),
        Expr::Unary(u) => supported(&u.expr),
        Expr::Call(c) if c.func.name == "histogram_quantile" => {
            matches!(
                c.args.args.as_slice(),
                [q, inner] if matches!(unparen(q), Expr::NumberLiteral(_)) && supported(inner)
            )
        }
        Expr::Call(c) => {
            crate::functions::RANGE_FUNC_NAMES.contains(&c.func.name)
                && c.args.args.len() == 1
                && c.args
                    .args
                    .first()
                    .is_some_and(|a| matches!(unparen(a), Expr::MatrixSelector(_)))
        }
        Expr::Aggregate(a) => {
            matches!(
                a.op.id(),
                T_SUM | T_AVG | T_MIN | T_MAX | T_COUNT | T_GROUP | T_STDDEV | T_STDVAR
            ) && a.param.is_none()
                && supported(&a.expr)
        }
        Expr::Binary(b) => {
            let one_to_one = b
                .modifier
                .as_ref()
                .is_none_or(|m| matches!(m.card, VectorMatchCardinality::OneToOne));
            // Comparisons are taken with a scalar side only.
            let scalar_side =
                b.lhs.value_type() == ValueType::Scalar || b.rhs.value_type() == ValueType::Scalar;
            (is_arith(b.op.id()) || (is_comparison(b.op.id()) && scalar_side))
                && one_to_one
                && supported(&b.lhs)
                && supported(&b.rhs)
        }
        _ => false,
    }
}

/// Evaluates a range query column-wise when possible; `None` means "use the
/// step-wise evaluator". Selectors must already be loaded. The matrix is
/// neither cleaned up (pending name removal) nor sorted.
pub(super) fn eval_range(
    ev: &mut Evaluator<'_>,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<Option<Matrix>> {
    if !supported(expr) || step <= 0 || end < start {
        return Ok(None);
    }
    let n = usize::try_from((end - start) / step)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    if n > MAX_CELLS {
        return Ok(None);
    }
    let steps = Steps { start, step, n };
    let cols = match eval(ev, expr, steps)? {
        None => return Ok(None),
        Some(Val::Vector(c)) => c,
        Some(Val::Scalar(v)) => vec![Col {
            labels: Labels::empty(),
            drop: false,
            ok: vec![true; v.len()],
            vals: v,
        }],
    };
    assemble(ev, cols, steps).map(Some)
}

/// Turns columns into result series, merging columns with equal labels (and
/// pending removal) as the step-wise assembly does.
fn assemble(ev: &Evaluator<'_>, cols: Vec<Col>, steps: Steps) -> Result<Matrix> {
    let mut out: Matrix = Vec::new();
    let mut index: HashMap<(u64, bool), Vec<usize>> = HashMap::new();
    let mut total = 0usize;
    for c in cols {
        let mut floats: Vec<FPoint> = Vec::new();
        for ((t, &f), &ok) in steps.times().zip(c.vals.iter()).zip(c.ok.iter()) {
            if ok {
                floats.push(FPoint { t, f });
            }
        }
        if floats.is_empty() {
            continue;
        }
        total += floats.len();
        if total > ev.opts.max_samples {
            return Err(PromqlError::TooManySamples);
        }
        let slot = index.entry((c.labels.hash64(), c.drop)).or_default();
        let found = slot.iter().copied().find(|&i| {
            out.get(i)
                .is_some_and(|s| s.drop_name == c.drop && s.metric == c.labels)
        });
        match found.and_then(|i| out.get_mut(i)) {
            Some(s) => {
                let mut merged = Vec::with_capacity(s.floats.len() + floats.len());
                let (mut a, mut b) = (s.floats.iter().peekable(), floats.iter().peekable());
                loop {
                    let next = match (a.peek(), b.peek()) {
                        (Some(x), Some(y)) if x.t == y.t => {
                            return Err(PromqlError::Eval(
                                "vector cannot contain metrics with the same labelset".into(),
                            ))
                        }
                        (Some(x), Some(y)) if x.t < y.t => a.next(),
                        (Some(_), Some(_)) => b.next(),
                        (Some(_), None) => a.next(),
                        (None, Some(_)) => b.next(),
                        (None, None) => break,
                    };
                    if let Some(p) = next {
                        merged.push(*p);
                    }
                }
                s.floats = merged;
            }
            None => {
                slot.push(out.len());
                out.push(Series {
                    metric: c.labels,
                    floats,
                    histograms: Vec::new(),
                    drop_name: c.drop,
                });
            }
        }
    }
    Ok(out)
}

fn eval(ev: &mut Evaluator<'_>, e: &Expr, steps: Steps) -> Result<Option<Val>> {
    ev.check_deadline()?;
    match e {
        Expr::NumberLiteral(x) => Ok(Some(Val::Scalar(vec![x.val; steps.n]))),
        Expr::Paren(p) => eval(ev, &p.expr, steps),
        Expr::Unary(u) => Ok(eval(ev, &u.expr, steps)?.map(|v| match v {
            Val::Scalar(mut s) => {
                s.iter_mut().for_each(|x| *x = -*x);
                Val::Scalar(s)
            }
            Val::Vector(mut cols) => {
                for c in &mut cols {
                    c.vals.iter_mut().for_each(|x| *x = -*x);
                    c.drop = true;
                }
                Val::Vector(cols)
            }
        })),
        Expr::VectorSelector(vs) => selector(ev, vs, steps),
        Expr::Call(c) if c.func.name == "histogram_quantile" => histogram_quantile(ev, c, steps),
        Expr::Call(c) => range_call(ev, c, steps),
        Expr::Aggregate(a) => aggregate(ev, a, steps),
        Expr::Binary(b) => binary(ev, b, steps),
        _ => Ok(None),
    }
}

/// The loaded series of a selector, if they are float-only and fit.
fn loaded(ev: &Evaluator<'_>, vs: &VectorSelector, steps: Steps) -> Option<Rc<Vec<Loaded>>> {
    let data = ev.selectors.get(&node_id(vs)).cloned()?;
    let fits = data.len().saturating_mul(steps.n) <= MAX_CELLS && data.len() <= ev.opts.max_samples;
    (fits && data.iter().all(|s| s.hpoints.is_empty())).then_some(data)
}

fn selector(ev: &mut Evaluator<'_>, vs: &VectorSelector, steps: Steps) -> Result<Option<Val>> {
    let Some(data) = loaded(ev, vs, steps) else {
        return Ok(None);
    };
    match rows_state(&data) {
        Some(true) => return Ok(Some(Val::Vector(row_cols(&data, Some(false))))),
        None => return Ok(None),
        Some(false) => {}
    }
    let lookback = ev.opts.lookback_delta;
    let refs: Vec<i64> = steps
        .times()
        .map(|t| ev.ref_time(&vs.at, &vs.offset, t))
        .collect();
    let fill = |s: &Loaded| -> Col {
        let (row, _) = instant_row(&s.points, &refs, lookback);
        Col {
            labels: s.labels.clone(),
            drop: false,
            vals: row.vals,
            ok: row.ok,
        }
    };
    let items: Vec<&Loaded> = data.iter().collect();
    let cols = crate::par::map_ordered(items, ev.opts.parallelism, MIN_SERIES_PER_THREAD, fill);
    Ok(Some(Val::Vector(cols)))
}

/// Columns of the rows computed at load: pending name removal `drop`, or
/// each series' own when `None`.
fn row_cols(data: &[Loaded], drop: Option<bool>) -> Vec<Col> {
    data.iter()
        .filter_map(|s| {
            let r = s.row.as_ref()?;
            Some(Col {
                labels: s.labels.clone(),
                drop: drop.unwrap_or(s.drop_name),
                vals: r.vals.clone(),
                ok: r.ok.clone(),
            })
        })
        .collect()
}

fn range_call(ev: &mut Evaluator<'_>, c: &Call, steps: Steps) -> Result<Option<Val>> {
    let name = c.func.name;
    let (Some(f), Some(Expr::MatrixSelector(ms))) =
        (range_fn(name), c.args.args.first().map(|a| unparen(a)))
    else {
        return Ok(None);
    };
    let ms: &MatrixSelector = ms;
    let Some(data) = loaded(ev, &ms.vs, steps) else {
        return Ok(None);
    };
    let range = ms.range.as_millis() as i64;
    let keep_name = name == "last_over_time" || name == "first_over_time";
    match rows_state(&data) {
        Some(true) => {
            // Loading checked that the windows cannot hold more than
            // `max_samples` samples at any step.
            let drop = range_rows_drop(ev, name, &data);
            return Ok(Some(Val::Vector(row_cols(&data, drop))));
        }
        None => return Ok(None),
        Some(false) => {}
    }
    let refs: Vec<(i64, i64)> = steps
        .times()
        .map(|t| (t, ev.ref_time(&ms.vs.at, &ms.vs.offset, t)))
        .collect();
    // Contiguous parts of the series, a few per thread (taken in turn),
    // and enough series to a thread to be worth starting it.
    let threads = ev.opts.parallelism.max(1);
    let per = data
        .len()
        .div_ceil(threads * PARTS_PER_THREAD)
        .max(MIN_SERIES_PER_THREAD / PARTS_PER_THREAD)
        .max(1);
    let parts: Vec<&[Loaded]> = data.chunks(per).collect();
    let spec = RangeSpec {
        refs: &refs,
        range,
        name,
        f,
        counter_fn: name == "rate" || name == "increase",
    };
    let done = crate::par::map_ordered(parts, threads, PARTS_PER_THREAD, |part| {
        range_rows(part, &spec)
    });
    // Samples in the windows of each step, over all series.
    let mut window_points = vec![0usize; steps.n];
    for (_, wp) in &done {
        for (a, b) in window_points.iter_mut().zip(wp.iter()) {
            *a += b;
        }
    }
    if window_points.iter().any(|&w| w > ev.opts.max_samples) {
        return Err(PromqlError::TooManySamples);
    }
    let mut cols = Vec::with_capacity(data.len());
    let rows: Vec<Row> = done.into_iter().flat_map(|(rows, _)| rows).collect();
    if spec.counter_fn {
        counter_infos(
            ev,
            data.iter()
                .zip(&rows)
                .filter(|(_, r)| r.any)
                .map(|(s, _)| s),
        );
    }
    for (s, row) in data.iter().zip(rows) {
        cols.push(Col {
            labels: s.labels.clone(),
            drop: if keep_name { s.drop_name } else { true },
            vals: row.vals,
            ok: row.ok,
        });
    }
    Ok(Some(Val::Vector(cols)))
}

/// Evaluates the range function over `part`'s series; also returns how
/// many samples the windows of each step held, summed over the part.
fn range_rows(part: &[Loaded], spec: &RangeSpec<'_>) -> (Vec<Row>, Vec<usize>) {
    let n = spec.refs.len();
    let mut window_points = vec![0usize; n];
    let mut rows = Vec::with_capacity(part.len());
    let mut drops: Vec<u32> = Vec::new();
    for s in part {
        rows.push(range_values(
            &s.points,
            spec,
            &mut drops,
            &mut window_points,
        ));
    }
    (rows, window_points)
}

/// `histogram_quantile` of a literal quantile over classic buckets, step by
/// step as the step-wise evaluator does it: per step, buckets grouped by
/// their labels without `le` in order of appearance, the same quantile
/// arithmetic. Malformed `le` labels (a warning per step), and inputs whose
/// own infos could interleave differently with the monotonicity infos, fall
/// back to the step-wise evaluator.
fn histogram_quantile(ev: &mut Evaluator<'_>, c: &Call, steps: Steps) -> Result<Option<Val>> {
    let [qe, inner] = c.args.args.as_slice() else {
        return Ok(None);
    };
    let Expr::NumberLiteral(ql) = unparen(qe) else {
        return Ok(None);
    };
    let q = ql.val;
    let infos_before = ev.annos.infos.len();
    let Some(Val::Vector(cols)) = eval(ev, inner, steps)? else {
        return Ok(None);
    };
    let inner_infos = ev.annos.infos.len() != infos_before;
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Labels> = Vec::new();
    let mut gid = Vec::with_capacity(cols.len());
    let mut les = Vec::with_capacity(cols.len());
    for c in &cols {
        let Some(le) = c.labels.get("le").and_then(parse_go_float) else {
            return Ok(None);
        };
        let labels = c.labels.without(&["le"]);
        let g = *index.entry(labels.hash64()).or_insert_with(|| {
            groups.push(labels);
            groups.len() - 1
        });
        gid.push(g);
        les.push(le);
    }
    let n = steps.n;
    let mut vals = vec![vec![0.0; n]; groups.len()];
    let mut oks = vec![vec![false; n]; groups.len()];
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); groups.len()];
    let mut order: Vec<usize> = Vec::new();
    let mut forced: Vec<usize> = Vec::new();
    for i in 0..n {
        order.clear();
        for ((c, &g), &le) in cols.iter().zip(gid.iter()).zip(les.iter()) {
            if !c.ok.get(i).copied().unwrap_or(false) {
                continue;
            }
            let Some(b) = buckets.get_mut(g) else {
                continue;
            };
            if b.is_empty() {
                order.push(g);
            }
            b.push(Bucket {
                le,
                count: c.vals.get(i).copied().unwrap_or(f64::NAN),
            });
        }
        for &g in &order {
            let b = buckets.get_mut(g).map(std::mem::take).unwrap_or_default();
            let (v, f) = bucket_quantile(q, b);
            if let (Some(x), Some(o)) = (
                vals.get_mut(g).and_then(|r| r.get_mut(i)),
                oks.get_mut(g).and_then(|r| r.get_mut(i)),
            ) {
                *x = v;
                *o = true;
            }
            if f {
                forced.push(g);
            }
        }
    }
    if inner_infos && !forced.is_empty() {
        return Ok(None);
    }
    if let Some(w) = quantile_range_warning(q) {
        ev.annos.warn(w);
    }
    for g in forced {
        if let Some(l) = groups.get(g) {
            ev.annos.info(forced_monotonic_info(l));
        }
    }
    let out = groups
        .into_iter()
        .zip(vals)
        .zip(oks)
        .filter(|(_, ok)| ok.iter().any(|&o| o))
        .map(|((labels, vals), ok)| Col {
            labels,
            drop: true,
            vals,
            ok,
        })
        .collect();
    Ok(Some(Val::Vector(out)))
}

/// Fewest (series x step) cells an aggregation folds on several threads.
const PARALLEL_FOLD_CELLS: usize = 1 << 16;

/// One aggregation group at one step (the step-wise evaluator's fields).
#[derive(Clone, Copy, Default)]
struct Acc {
    seen: bool,
    acc: FloatAgg,
}

/// An aggregation's input: evaluated columns, or the rows that loading
/// threads computed for the selector or range function it aggregates
/// (no columns are built from them).
enum AggInput {
    Cols(Vec<Col>),
    Rows {
        data: Rc<Vec<Loaded>>,
        /// Pending name removal of every series; `None`: each series' own.
        drop: Option<bool>,
    },
}

impl AggInput {
    fn len(&self) -> usize {
        match self {
            AggInput::Cols(c) => c.len(),
            AggInput::Rows { data, .. } => data.len(),
        }
    }

    /// Labels and pending name removal of series `k`.
    fn labels(&self, k: usize) -> Option<(&Labels, bool)> {
        match self {
            AggInput::Cols(c) => c.get(k).map(|c| (&c.labels, c.drop)),
            AggInput::Rows { data, drop } => data
                .get(k)
                .map(|s| (&s.labels, drop.unwrap_or(s.drop_name))),
        }
    }
}

/// How the rows of a selector's series stand: all computed at load, none
/// (points kept), or a mix the columnar path does not take.
fn rows_state(data: &[Loaded]) -> Option<bool> {
    let with = data.iter().filter(|s| s.row.is_some()).count();
    if with == data.len() {
        Some(true)
    } else if with == 0 {
        Some(false)
    } else {
        None
    }
}

/// The infos `rate`/`increase` give for series with a value whose name
/// does not look like a counter's, in series order.
///
/// A selection's series mostly share one name, so each name is formatted
/// once: names are told apart by the hash taken at load, and only a
/// series with a name not seen yet has its labels read here.
fn counter_infos<'d>(ev: &mut Evaluator<'_>, flagged: impl Iterator<Item = &'d Loaded>) {
    let mut last = None;
    let mut done = std::collections::HashSet::new();
    for s in flagged.filter(|s| s.non_counter_name) {
        if last == Some(s.name_hash) {
            continue;
        }
        last = Some(s.name_hash);
        if !done.insert(s.name_hash) {
            continue;
        }
        let m = s.labels.metric_name().unwrap_or("");
        ev.annos.info(format!(
            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {m:?}"
        ));
    }
}

/// For range function `name` over rows computed at load: emits the
/// function's counter infos and gives the rows' pending name removal
/// (each series' own for the functions that keep the name).
fn range_rows_drop(ev: &mut Evaluator<'_>, name: &str, data: &[Loaded]) -> Option<bool> {
    if name == "rate" || name == "increase" {
        counter_infos(
            ev,
            data.iter()
                .filter(|s| s.row.as_ref().is_some_and(|r| r.any)),
        );
    }
    let keep_name = name == "last_over_time" || name == "first_over_time";
    if keep_name {
        None
    } else {
        Some(true)
    }
}

/// The input of an aggregation over `e`: the loaded rows when `e` is a
/// selector or range function call whose rows were computed at load,
/// otherwise `e`'s columns; `None` when the columnar path cannot take it.
fn agg_input(ev: &mut Evaluator<'_>, e: &Expr, steps: Steps) -> Result<Option<AggInput>> {
    match unparen(e) {
        Expr::VectorSelector(vs) => {
            if let Some(data) = loaded(ev, vs, steps) {
                match rows_state(&data) {
                    Some(true) => {
                        return Ok(Some(AggInput::Rows {
                            data,
                            drop: Some(false),
                        }))
                    }
                    None => return Ok(None),
                    Some(false) => {}
                }
            }
        }
        Expr::Call(c) => {
            let name = c.func.name;
            if let Some(Expr::MatrixSelector(ms)) = c.args.args.first().map(|a| unparen(a)) {
                if let Some(data) = loaded(ev, &ms.vs, steps) {
                    match rows_state(&data) {
                        Some(true) => {
                            let drop = range_rows_drop(ev, name, &data);
                            return Ok(Some(AggInput::Rows { data, drop }));
                        }
                        None => return Ok(None),
                        Some(false) => {}
                    }
                }
            }
        }
        _ => {}
    }
    Ok(match eval(ev, e, steps)? {
        Some(Val::Vector(c)) => Some(AggInput::Cols(c)),
        _ => None,
    })
}

fn aggregate(ev: &mut Evaluator<'_>, a: &AggregateExpr, steps: Steps) -> Result<Option<Val>> {
    let Some(input) = agg_input(ev, &a.expr, steps)? else {
        return Ok(None);
    };
    let op = a.op.id();
    let (without, names): (bool, &[String]) = match &a.modifier {
        Some(LabelModifier::Include(ls)) => (false, &ls.labels),
        Some(LabelModifier::Exclude(ls)) => (true, &ls.labels),
        None => (false, &[]),
    };
    // Group of every input series, groups in order of first appearance.
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<(Labels, bool)> = Vec::new();
    let mut gid = Vec::with_capacity(input.len());
    let Some(members) = (0..input.len())
        .map(|k| input.labels(k))
        .collect::<Option<Vec<_>>>()
    else {
        return Ok(None);
    };
    // The grouping keys, on all cores: hashing reads every label set, most
    // of them no longer in cache.
    let keys = crate::par::map_ordered(
        members.iter().map(|&(l, _)| l).collect(),
        ev.opts.parallelism,
        MIN_SERIES_PER_THREAD * 8,
        |l: &Labels| signature(l, names, !without),
    );
    for (&(labels, drop), &key) in members.iter().zip(&keys) {
        let g = match index.get(&key) {
            Some(&g) => {
                if groups.get(g).is_some_and(|x| x.1 != drop) {
                    // Pending name removal differs within the group: the
                    // step-wise result depends on which member comes first.
                    return Ok(None);
                }
                g
            }
            None => {
                let mut n: Vec<&str> = names.iter().map(String::as_str).collect();
                let labels = if without {
                    n.push(METRIC_NAME);
                    labels.without(&n)
                } else if names.is_empty() {
                    Labels::empty()
                } else {
                    labels.keep(&n)
                };
                groups.push((labels, drop));
                index.insert(key, groups.len() - 1);
                groups.len() - 1
            }
        };
        gid.push(g);
    }
    let n = steps.n;
    if groups.len().saturating_mul(n) > MAX_CELLS {
        return Ok(None);
    }
    // Every (group, step) cell sees its series in input order, whatever
    // thread folds it. A task folds the members of one group over a range
    // of steps: each group on its own when there are groups enough for
    // the threads (a group's accumulators stay in cache while its members'
    // rows stream by), each group's steps cut into ranges when there are
    // few (`sum` without grouping).
    let ng = groups.len();
    let threads = if input.len().saturating_mul(n) >= PARALLEL_FOLD_CELLS {
        ev.opts.parallelism.max(1)
    } else {
        1
    };
    let ranges: Vec<(usize, usize)> = {
        let cuts = if ng >= threads { 1 } else { threads };
        let per = n.div_ceil(cuts).max(1);
        (0..n)
            .step_by(per)
            .map(|lo| (lo, (lo + per).min(n)))
            .collect()
    };
    let mut members: Vec<Vec<u32>> = vec![Vec::new(); ng];
    for (k, &g) in gid.iter().enumerate() {
        if let (Some(m), Ok(k)) = (members.get_mut(g), u32::try_from(k)) {
            m.push(k);
        }
    }
    // What the folding threads read (borrowed: `input` may hold an `Rc`).
    let (cols, rows): (&[Col], &[Loaded]) = match &input {
        AggInput::Cols(c) => (c, &[]),
        AggInput::Rows { data, .. } => (&[], data),
    };
    let fold = |(g, lo, hi): (usize, usize, usize)| -> Option<Vec<Acc>> {
        let mut acc = vec![Acc::default(); hi - lo];
        for &k in members.get(g)? {
            let k = k as usize;
            let (vals, oks) = match cols.get(k) {
                Some(c) => (&c.vals, &c.ok),
                None => {
                    let r = rows.get(k)?.row.as_ref()?;
                    (&r.vals, &r.ok)
                }
            };
            let (vals, oks) = (vals.get(lo..hi)?, oks.get(lo..hi)?);
            for ((c, &f), _) in acc
                .iter_mut()
                .zip(vals.iter())
                .zip(oks.iter())
                .filter(|(_, &ok)| ok)
            {
                let first = !c.seen;
                c.seen = true;
                if !c.acc.add(op, f, first) {
                    return None;
                }
            }
        }
        Some(acc)
    };
    let tasks: Vec<(usize, usize, usize)> = (0..ng)
        .flat_map(|g| ranges.iter().map(move |&(lo, hi)| (g, lo, hi)))
        .collect();
    // Tasks come back in order (group by group, steps ascending), which is
    // the accumulators' layout: group `g`'s step `i` at `g * n + i`.
    let mut acc = Vec::with_capacity(ng * n);
    for part in crate::par::map_ordered(tasks, threads, 1, fold) {
        let Some(part) = part else {
            return Ok(None);
        };
        acc.extend(part);
    }
    let mut cols = Vec::with_capacity(groups.len());
    for ((labels, drop), row) in groups.into_iter().zip(acc.chunks(n.max(1))) {
        let mut vals = vec![0.0; n];
        let mut ok = vec![false; n];
        for ((g, v), o) in row.iter().zip(vals.iter_mut()).zip(ok.iter_mut()) {
            if !g.seen {
                continue;
            }
            *o = true;
            *v = match g.acc.result(op) {
                Some(x) => x,
                None => return Ok(None),
            };
        }
        // The group keeps the input's pending name removal, which only
        // matters when grouping by `__name__`.
        let drop = drop && labels.has(METRIC_NAME);
        cols.push(Col {
            labels,
            drop,
            vals,
            ok,
        });
    }
    Ok(Some(Val::Vector(cols)))
}

fn binary(ev: &mut Evaluator<'_>, b: &BinaryExpr, steps: Steps) -> Result<Option<Val>> {
    let op = b.op.id();
    let cmp = is_comparison(op);
    let Some(lhs) = eval(ev, &b.lhs, steps)? else {
        return Ok(None);
    };
    let Some(rhs) = eval(ev, &b.rhs, steps)? else {
        return Ok(None);
    };
    Ok(match (lhs, rhs) {
        (Val::Scalar(mut l), Val::Scalar(r)) => {
            for (x, &y) in l.iter_mut().zip(r.iter()) {
                let (v, keep) = elem_op(op, *x, y);
                // Between scalars a comparison needs `bool`: 1 or 0.
                *x = match (cmp, keep) {
                    (false, _) => v,
                    (true, true) => 1.0,
                    (true, false) => 0.0,
                };
            }
            Some(Val::Scalar(l))
        }
        (Val::Vector(mut v), Val::Scalar(s)) => {
            for c in &mut v {
                vector_scalar_col(c, &s, op, false, b.return_bool());
            }
            Some(Val::Vector(v))
        }
        (Val::Scalar(s), Val::Vector(mut v)) => {
            for c in &mut v {
                vector_scalar_col(c, &s, op, true, b.return_bool());
            }
            Some(Val::Vector(v))
        }
        // Comparisons between vectors are left to the step-wise evaluator.
        (Val::Vector(_), Val::Vector(_)) if cmp => None,
        (Val::Vector(l), Val::Vector(r)) => vector_binop(b, op, l, r),
    })
}

/// `op` between column `c` and scalar `s` (the scalar on the left with
/// `swap`), cell by cell as the step-wise evaluator does per sample:
/// arithmetic replaces the value and drops the name; a comparison keeps
/// the vector's value where it holds and removes the cell where it does
/// not, or with `bool` gives 1 or 0 and drops the name.
fn vector_scalar_col(c: &mut Col, s: &[f64], op: u16, swap: bool, return_bool: bool) {
    let cmp = is_comparison(op);
    for ((x, o), &y) in c.vals.iter_mut().zip(c.ok.iter_mut()).zip(s.iter()) {
        let (v, keep) = if swap {
            elem_op(op, y, *x)
        } else {
            elem_op(op, *x, y)
        };
        if !cmp {
            *x = v;
        } else if return_bool {
            *x = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            *o = false;
        }
    }
    if !cmp || return_bool {
        c.drop = true;
    }
}

/// One-to-one arithmetic between two vectors. Matching keys are resolved
/// once; a key held by two series of one side falls back to the step-wise
/// evaluator (which decides per step whether that is an error).
fn vector_binop(b: &BinaryExpr, op: u16, lhs: Vec<Col>, rhs: Vec<Col>) -> Option<Val> {
    let (on, names): (bool, &[String]) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref())
    {
        Some(LabelModifier::Include(ls)) => (true, &ls.labels),
        Some(LabelModifier::Exclude(ls)) => (false, &ls.labels),
        None => (false, &[]),
    };
    let mut rsig: HashMap<u64, usize> = HashMap::with_capacity(rhs.len());
    for (i, c) in rhs.iter().enumerate() {
        if rsig.insert(signature(&c.labels, names, on), i).is_some() {
            return None;
        }
    }
    let mut used: HashMap<u64, ()> = HashMap::with_capacity(lhs.len());
    let mut out = Vec::new();
    for mut l in lhs {
        let sig = signature(&l.labels, names, on);
        let Some(r) = rsig.get(&sig).and_then(|&i| rhs.get(i)) else {
            continue;
        };
        if used.insert(sig, ()).is_some() {
            return None;
        }
        for (((x, o), &y), &ro) in l
            .vals
            .iter_mut()
            .zip(l.ok.iter_mut())
            .zip(r.vals.iter())
            .zip(r.ok.iter())
        {
            if *o && ro {
                *x = elem_op(op, *x, y).0;
            } else {
                *o = false;
            }
        }
        let mut bld = LabelsBuilder::from(&l.labels);
        for n in METADATA_LABELS {
            bld.del(n);
        }
        if on {
            let keep: Vec<&str> = names.iter().map(String::as_str).collect();
            bld.keep(&keep);
        } else {
            for n in names {
                bld.del(n);
            }
        }
        l.labels = bld.build();
        l.drop = false;
        out.push(l);
    }
    Some(Val::Vector(out))
}
