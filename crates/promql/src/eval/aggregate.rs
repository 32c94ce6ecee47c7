//! Aggregation operators (`sum`, `avg`, ..., `topk`, `count_values`,
//! `limitk`, `limit_ratio`) over one step's input vector.
//!
//! Groups are formed in order of first appearance in the input, as
//! Prometheus does; `without` always drops the metric name. Float sums use
//! Kahan-Neumaier compensation and `avg` switches to an incremental mean
//! when the running sum overflows, which keeps results identical to
//! Prometheus's within the scripts' tolerance.

use std::collections::HashMap;

use cairn_model::{Labels, METRIC_NAME};
use promql_parser::parser::token::TokenId;
use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMITK, T_LIMIT_RATIO, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK,
};
use promql_parser::parser::{AggregateExpr, Expr, LabelModifier};

use super::{binary::signature, unparen, Evaluator, StepVal};
use crate::error::{eval_err, Result};
use crate::value::{Sample, SampleValue, Vector};
use cairn_model::{format_go_f, format_go_g};
use cairn_model::{CounterResetHint, FloatHistogram};
use std::sync::Arc;

/// Kahan-Neumaier compensated addition: returns the new sum and correction.
#[inline]
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    // The larger operand (by magnitude) first: picked by a select rather
    // than a branch, which mispredicts on varied data. The arithmetic is
    // the same either way.
    let (big, small) = if sum.abs() >= inc.abs() {
        (sum, inc)
    } else {
        (inc, sum)
    };
    let c = if t.is_infinite() {
        0.0
    } else {
        c + ((big - t) + small)
    };
    (t, c)
}

/// The running state of `sum`, `avg`, `min`, `max`, `count`, `group`,
/// `stddev` and `stdvar` over floats, shared by the step-wise evaluator and
/// the columnar range path so both compute bit-identical results.
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
    pub(crate) fn result(&self, op: TokenId) -> Option<f64> {
        Some(match op {
            T_SUM => self.value + self.comp,
            T_AVG => {
                if self.incremental {
                    self.mean + self.comp
                } else {
                    self.value / self.count + self.comp / self.count
                }
            }
            T_MAX | T_MIN => self.value,
            T_COUNT => self.count,
            T_GROUP => 1.0,
            T_STDVAR => self.value / self.count,
            T_STDDEV => (self.value / self.count).sqrt(),
            _ => return None,
        })
    }

    /// Folds `f` in for aggregation `op` (`first` for the group's first
    /// sample). Returns false for operators this state does not cover.
    pub(crate) fn add(&mut self, op: TokenId, f: f64, first: bool) -> bool {
        match op {
            T_SUM => {
                if first {
                    self.value = f;
                    self.count = 1.0;
                } else {
                    (self.value, self.comp) = kahan_inc(f, self.value, self.comp);
                }
            }
            T_AVG => {
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
            T_MAX => {
                if first || self.value < f || self.value.is_nan() {
                    self.value = f;
                }
                self.count = 1.0;
            }
            T_MIN => {
                if first || self.value > f || self.value.is_nan() {
                    self.value = f;
                }
                self.count = 1.0;
            }
            T_COUNT | T_GROUP => self.count += 1.0,
            T_STDDEV | T_STDVAR => {
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

/// Prometheus's quantile over a set of values (NaN sorts first).
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let lv = values.get(lower as usize).copied().unwrap_or(f64::NAN);
    let uv = values.get(upper as usize).copied().unwrap_or(f64::NAN);
    lv * (1.0 - weight) + uv * weight
}

#[derive(Default)]
struct Group {
    labels: Labels,
    drop_name: bool,
    acc: FloatAgg,
    values: Vec<f64>,
    heap: Vec<Sample>,
    complete: bool,
    /// Some sample counted towards this group (groups that only saw
    /// ignored histograms produce nothing).
    seen: bool,
    hist: Option<FloatHistogram>,
    has_float: bool,
    has_hist: bool,
    incompatible: bool,
    reset_seen: bool,
    not_reset_seen: bool,
}

fn grouping(a: &AggregateExpr) -> (bool, Vec<String>) {
    match &a.modifier {
        Some(LabelModifier::Include(ls)) => (false, ls.labels.clone()),
        Some(LabelModifier::Exclude(ls)) => (true, ls.labels.clone()),
        None => (false, Vec::new()),
    }
}

fn group_labels(m: &Labels, without: bool, names: &[String]) -> Labels {
    let mut n: Vec<&str> = names.iter().map(String::as_str).collect();
    if without {
        n.push(METRIC_NAME);
        m.without(&n)
    } else if names.is_empty() {
        Labels::empty()
    } else {
        m.keep(&n)
    }
}

/// `less(h[a], h[b])`, false when either index is out of range.
fn lt(h: &[Sample], a: usize, b: usize, less: &dyn Fn(&Sample, &Sample) -> bool) -> bool {
    match (h.get(a), h.get(b)) {
        (Some(x), Some(y)) => less(x, y),
        _ => false,
    }
}

// Go's container/heap, so that topk/bottomk/limitk orders match Prometheus.
fn heap_up(h: &mut [Sample], mut j: usize, less: &dyn Fn(&Sample, &Sample) -> bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if i == j || !lt(h, j, i, less) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn heap_down(h: &mut [Sample], i0: usize, less: &dyn Fn(&Sample, &Sample) -> bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        let j2 = j1 + 1;
        if j2 < n && lt(h, j2, j1, less) {
            j = j2;
        }
        if !lt(h, j, i, less) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

fn heap_push(h: &mut Vec<Sample>, s: Sample, less: &dyn Fn(&Sample, &Sample) -> bool) {
    h.push(s);
    let j = h.len() - 1;
    heap_up(h, j, less);
}

fn heap_fix(h: &mut [Sample], i: usize, less: &dyn Fn(&Sample, &Sample) -> bool) {
    if !heap_down(h, i, less) {
        heap_up(h, i, less);
    }
}

fn fv(s: &Sample) -> f64 {
    s.f().unwrap_or(f64::NAN)
}

fn less_top(a: &Sample, b: &Sample) -> bool {
    fv(a).is_nan() || fv(a) < fv(b)
}

fn less_bottom(a: &Sample, b: &Sample) -> bool {
    fv(a).is_nan() || fv(a) > fv(b)
}

/// Go's sort.Sort on small inputs is an insertion sort; mirror it so ties
/// keep Prometheus's order.
fn go_sort(h: &mut [Sample], less: &dyn Fn(&Sample, &Sample) -> bool) {
    if h.len() <= 12 {
        for i in 1..h.len() {
            let mut j = i;
            while j > 0 && lt(h, j, j - 1, less) {
                h.swap(j, j - 1);
                j -= 1;
            }
        }
    } else {
        h.sort_by(|a, b| {
            if less(a, b) {
                std::cmp::Ordering::Less
            } else if less(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
    }
}

pub(crate) fn eval_aggregate(
    ev: &mut Evaluator<'_>,
    a: &AggregateExpr,
    ts: i64,
) -> Result<StepVal> {
    let op = a.op.id();
    let (without, names) = grouping(a);
    if op == T_COUNT_VALUES {
        let label = match a.param.as_deref().map(unparen) {
            Some(Expr::StringLiteral(s)) => s.val.clone(),
            _ => return eval_err("count_values requires a string parameter"),
        };
        if !crate::functions::is_valid_label_name(&label) {
            return eval_err(format!(
                "invalid label name {}",
                cairn_model::go_quote(&label)
            ));
        }
        let input = ev.eval_vector(&a.expr, ts)?;
        return Ok(StepVal::Vector(count_values(
            input, &label, without, &names, ts,
        )));
    }
    let param = match (&a.param, op) {
        (Some(p), T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO | T_QUANTILE) => {
            Some(ev.eval_scalar(p, ts)?)
        }
        _ => None,
    };
    let input = ev.eval_vector(&a.expr, ts)?;
    let p = param.unwrap_or(f64::NAN);
    match op {
        T_TOPK | T_BOTTOMK | T_LIMITK => {
            if p.is_nan() {
                return eval_err("Parameter value is NaN");
            }
            if p <= i64::MIN as f64 {
                return eval_err(format!("Scalar value {} underflows int64", format_go_g(p)));
            }
            if p >= i64::MAX as f64 {
                return eval_err(format!("Scalar value {} overflows int64", format_go_g(p)));
            }
        }
        T_LIMIT_RATIO => {
            if p.is_nan() {
                return eval_err("Ratio value is NaN");
            }
            if p > 1.0 {
                ev.annos.warn(format!(
                    "ratio value should be between -1 and 1, got {}, capping to 1",
                    format_go_g(p)
                ));
            }
            if p < -1.0 {
                ev.annos.warn(format!(
                    "ratio value should be between -1 and 1, got {}, capping to -1",
                    format_go_g(p)
                ));
            }
        }
        T_QUANTILE if p.is_nan() || !(0.0..=1.0).contains(&p) => {
            ev.annos.warn(format!(
                "quantile value should be between 0 and 1, got {}",
                format_go_g(p)
            ));
        }
        _ => {}
    }

    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let k_ops = matches!(op, T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO);
    let k = if matches!(op, T_TOPK | T_BOTTOMK | T_LIMITK) {
        let k = (p as i64).min(input.len() as i64);
        if k < 1 {
            return Ok(StepVal::Vector(Vec::new()));
        }
        k as usize
    } else {
        0
    };
    if op == T_LIMIT_RATIO && p == 0.0 {
        return Ok(StepVal::Vector(Vec::new()));
    }
    let ratio = p.clamp(-1.0, 1.0);
    let mut remaining = usize::MAX;
    let op_name = a.op.to_string().to_lowercase();
    for s in input {
        let key = signature(&s.metric, &names, !without);
        let gi = match index.get(&key) {
            Some(&g) => g,
            None => {
                let labels = if k_ops {
                    Labels::empty()
                } else {
                    group_labels(&s.metric, without, &names)
                };
                groups.push(Group {
                    labels,
                    drop_name: s.drop_name,
                    ..Default::default()
                });
                index.insert(key, groups.len() - 1);
                if remaining == usize::MAX {
                    remaining = 0;
                }
                remaining += 1;
                groups.len() - 1
            }
        };
        let Some(g) = groups.get_mut(gi) else {
            continue;
        };
        let first = g.acc.count == 0.0 && g.heap.is_empty() && g.values.is_empty() && !g.complete;
        let f = match &s.value {
            SampleValue::Float(f) => *f,
            SampleValue::Histogram(h) => {
                aggregate_histogram(ev, op, &op_name, g, h, first, &s, (k, ratio), ts);
                continue;
            }
        };
        g.seen = true;
        g.has_float = true;
        if g.acc.add(op, f, first) {
            continue;
        }
        match op {
            T_QUANTILE => g.values.push(f),
            T_TOPK | T_BOTTOMK => {
                let less: &dyn Fn(&Sample, &Sample) -> bool = if op == T_TOPK {
                    &less_top
                } else {
                    &less_bottom
                };
                let mut s = s;
                s.t = ts;
                if g.heap.len() < k {
                    heap_push(&mut g.heap, s, less);
                } else if let Some(top) = g.heap.first() {
                    let tv = fv(top);
                    let replace = if op == T_TOPK {
                        tv < f || (tv.is_nan() && !f.is_nan())
                    } else {
                        tv > f || (tv.is_nan() && !f.is_nan())
                    };
                    if replace {
                        if let Some(x) = g.heap.first_mut() {
                            *x = s;
                        }
                        if k > 1 {
                            heap_fix(&mut g.heap, 0, less);
                        }
                    }
                }
            }
            T_LIMITK => {
                if g.complete {
                    continue;
                }
                let mut s = s;
                s.t = ts;
                if g.heap.len() < k {
                    heap_push(&mut g.heap, s, &less_top);
                }
                if g.heap.len() == k {
                    g.complete = true;
                }
            }
            T_LIMIT_RATIO => {
                let off = (s.metric.hash64() as f64) / (u64::MAX as f64);
                let add = (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio);
                if add {
                    let mut s = s;
                    s.t = ts;
                    heap_push(&mut g.heap, s, &less_top);
                }
                g.complete = true;
            }
            _ => return eval_err(format!("unsupported aggregation {}", a.op)),
        }
    }

    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        if !g.seen {
            continue;
        }
        if g.reset_seen && g.not_reset_seen {
            ev.annos
                .warn("conflicting counter resets during histogram aggregation");
        }
        if matches!(op, T_SUM | T_AVG) && g.has_hist {
            if g.has_float {
                ev.annos
                    .warn("encountered a mix of histograms and floats for aggregation");
                continue;
            }
            if g.incompatible {
                continue;
            }
            let Some(mut h) = g.hist.take() else { continue };
            h.compact();
            let drop = g.drop_name && g.labels.has(METRIC_NAME);
            out.push(Sample {
                metric: g.labels,
                t: ts,
                value: SampleValue::Histogram(Arc::new(h)),
                drop_name: drop,
            });
            continue;
        }
        let v = match op {
            T_SUM | T_AVG | T_MAX | T_MIN | T_COUNT | T_GROUP | T_STDVAR | T_STDDEV => {
                match g.acc.result(op) {
                    Some(v) => v,
                    None => continue,
                }
            }
            T_QUANTILE => quantile(p, &mut g.values),
            T_TOPK | T_BOTTOMK => {
                let mut h = std::mem::take(&mut g.heap);
                let rev: &dyn Fn(&Sample, &Sample) -> bool = if op == T_TOPK {
                    &|a, b| less_top(b, a)
                } else {
                    &|a, b| less_bottom(b, a)
                };
                go_sort(&mut h, rev);
                out.extend(h);
                continue;
            }
            T_LIMITK | T_LIMIT_RATIO => {
                out.extend(std::mem::take(&mut g.heap));
                continue;
            }
            _ => continue,
        };
        // The group keeps the input's pending name removal, which only
        // matters when grouping by `__name__`.
        let drop = g.drop_name && g.labels.has(METRIC_NAME);
        out.push(Evaluator::sample(g.labels, ts, v, drop));
    }
    Ok(StepVal::Vector(out))
}

/// Folds one histogram sample into its group.
#[allow(clippy::too_many_arguments)]
fn aggregate_histogram(
    ev: &mut Evaluator<'_>,
    op: u16,
    op_name: &str,
    g: &mut Group,
    h: &Arc<FloatHistogram>,
    first: bool,
    s: &Sample,
    (k, ratio): (usize, f64),
    ts: i64,
) {
    let mixed_schemas = |ev: &mut Evaluator<'_>| {
        ev.annos.warn(format!(
            "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {:?}",
            s.metric.metric_name().unwrap_or("")
        ));
    };
    match op {
        T_SUM | T_AVG => {
            g.seen = true;
            g.has_hist = true;
            match h.counter_reset_hint {
                CounterResetHint::CounterReset => g.reset_seen = true,
                CounterResetHint::NotCounterReset => g.not_reset_seen = true,
                _ => {}
            }
            if first {
                g.hist = Some((**h).clone());
                g.acc.count = 1.0;
                return;
            }
            if op == T_AVG {
                g.acc.count += 1.0;
            }
            if g.incompatible {
                return;
            }
            let Some(acc) = g.hist.as_ref() else { return };
            let res = if op == T_SUM {
                acc.add(h).map(|(x, i)| (x, i.nhcb_bounds_reconciled))
            } else {
                let mut left = (**h).clone();
                left.div(g.acc.count);
                let mut right = acc.clone();
                right.div(g.acc.count);
                left.sub(&right).and_then(|(d, i1)| {
                    acc.add(&d)
                        .map(|(x, i2)| (x, i1.nhcb_bounds_reconciled || i2.nhcb_bounds_reconciled))
                })
            };
            match res {
                Ok((x, reconciled)) => {
                    if reconciled {
                        ev.annos
                            .info("mismatched custom buckets were reconciled during aggregation");
                    }
                    g.hist = Some(x);
                }
                Err(_) => {
                    mixed_schemas(ev);
                    g.incompatible = true;
                }
            }
        }
        T_COUNT | T_GROUP => {
            g.seen = true;
            g.acc.count += 1.0;
        }
        T_LIMITK | T_LIMIT_RATIO => {
            if op == T_LIMIT_RATIO {
                let off = (s.metric.hash64() as f64) / (u64::MAX as f64);
                let add = (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio);
                if add {
                    let mut s = s.clone();
                    s.t = ts;
                    heap_push(&mut g.heap, s, &less_top);
                }
                g.complete = true;
            }
            if op == T_LIMITK {
                if g.complete {
                    return;
                }
                let mut s = s.clone();
                s.t = ts;
                if g.heap.len() < k {
                    heap_push(&mut g.heap, s, &less_top);
                }
                if g.heap.len() == k {
                    g.complete = true;
                }
            }
            g.seen = true;
        }
        _ => {
            ev.annos
                .info(format!("ignored histogram in {op_name} aggregation"));
        }
    }
}

fn count_values(input: Vector, label: &str, without: bool, names: &[String], ts: i64) -> Vector {
    let mut names: Vec<String> = names.to_vec();
    if !without {
        names.push(label.to_owned());
    }
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<(Labels, f64)> = Vec::new();
    for s in input {
        let v = match &s.value {
            SampleValue::Float(f) => format_go_f(*f),
            SampleValue::Histogram(h) => h.display_string(),
        };
        let mut b = s.metric.builder();
        b.set(label, &v);
        let m = b.build();
        let key = signature(&m, &names, !without);
        match index.get(&key) {
            Some(&i) => {
                if let Some(g) = groups.get_mut(i) {
                    g.1 += 1.0;
                }
            }
            None => {
                groups.push((group_labels(&m, without, &names), 1.0));
                index.insert(key, groups.len() - 1);
            }
        }
    }
    groups
        .into_iter()
        .map(|(l, c)| Evaluator::sample(l, ts, c, false))
        .collect()
}
