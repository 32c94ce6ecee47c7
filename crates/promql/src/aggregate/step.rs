//! The step-wise aggregation kernel: one step's instant vector, every
//! operator (the folding ones for histogram samples too), `topk`/
//! `bottomk`/`limitk` orders as Go's heap gives them.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_model::{
    format_go_f, format_go_g, CounterResetHint, FloatHistogram, Labels, METRIC_NAME,
};

use super::fold::FloatAgg;
use super::group_labels;
use crate::columns::StepVal;
use crate::error::{eval_err, Result};
use crate::grouping::signature;
use crate::numeric::quantile;
use crate::plan::AggOp;
use crate::value::{Annotations, Sample, SampleValue, Vector};

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

/// Aggregation `op` of one step's `input`, grouped `by`/`without`
/// (`without`) the labels `names`, with the operator's parameter at this
/// step (a string for `count_values`, a scalar for `topk` and friends).
#[allow(clippy::too_many_arguments)]
pub(crate) fn step(
    op: AggOp,
    without: bool,
    names: &[String],
    param: Option<StepVal>,
    input: Vector,
    ts: i64,
    annos: &mut Annotations,
) -> Result<Vector> {
    if op == AggOp::CountValues {
        let label = match param {
            Some(StepVal::String(s)) => s,
            _ => return eval_err("count_values requires a string parameter"),
        };
        if !crate::plan::is_valid_label_name(&label) {
            return eval_err(format!(
                "invalid label name {}",
                cairn_model::go_quote(&label)
            ));
        }
        return Ok(count_values(input, &label, without, names, ts));
    }
    let p = match (param, op) {
        (
            Some(StepVal::Scalar(p)),
            AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio | AggOp::Quantile,
        ) => p,
        (Some(other), _) => {
            return eval_err(format!("expected scalar, got {}", other.type_name()));
        }
        _ => f64::NAN,
    };
    match op {
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk => {
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
        AggOp::LimitRatio => {
            if p.is_nan() {
                return eval_err("Ratio value is NaN");
            }
            if p > 1.0 {
                annos.warn(format!(
                    "ratio value should be between -1 and 1, got {}, capping to 1",
                    format_go_g(p)
                ));
            }
            if p < -1.0 {
                annos.warn(format!(
                    "ratio value should be between -1 and 1, got {}, capping to -1",
                    format_go_g(p)
                ));
            }
        }
        AggOp::Quantile if p.is_nan() || !(0.0..=1.0).contains(&p) => {
            annos.warn(format!(
                "quantile value should be between 0 and 1, got {}",
                format_go_g(p)
            ));
        }
        _ => {}
    }

    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let k_ops = matches!(
        op,
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio
    );
    let k = if matches!(op, AggOp::Topk | AggOp::Bottomk | AggOp::Limitk) {
        let k = (p as i64).min(input.len() as i64);
        if k < 1 {
            return Ok(Vec::new());
        }
        k as usize
    } else {
        0
    };
    if op == AggOp::LimitRatio && p == 0.0 {
        return Ok(Vec::new());
    }
    let ratio = p.clamp(-1.0, 1.0);
    let mut remaining = usize::MAX;
    let op_name = op.name();
    for s in input {
        let key = signature(&s.metric, names, !without);
        let gi = match index.get(&key) {
            Some(&g) => g,
            None => {
                let labels = if k_ops {
                    Labels::empty()
                } else {
                    group_labels(&s.metric, without, names)
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
                aggregate_histogram(annos, op, op_name, g, h, first, &s, (k, ratio), ts);
                continue;
            }
        };
        g.seen = true;
        g.has_float = true;
        if g.acc.add(op, f, first) {
            continue;
        }
        match op {
            AggOp::Quantile => g.values.push(f),
            AggOp::Topk | AggOp::Bottomk => {
                let less: &dyn Fn(&Sample, &Sample) -> bool = if op == AggOp::Topk {
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
                    let replace = if op == AggOp::Topk {
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
            AggOp::Limitk => {
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
            AggOp::LimitRatio => {
                let off = ratio_offset(&s.metric);
                let add = (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio);
                if add {
                    let mut s = s;
                    s.t = ts;
                    heap_push(&mut g.heap, s, &less_top);
                }
                g.complete = true;
            }
            _ => return eval_err(format!("unsupported aggregation {}", op.name())),
        }
    }

    let mut out = Vec::with_capacity(groups.len());
    for mut g in groups {
        if !g.seen {
            continue;
        }
        if g.reset_seen && g.not_reset_seen {
            annos.warn("conflicting counter resets during histogram aggregation");
        }
        if matches!(op, AggOp::Sum | AggOp::Avg) && g.has_hist {
            if g.has_float {
                annos.warn("encountered a mix of histograms and floats for aggregation");
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
            AggOp::Sum
            | AggOp::Avg
            | AggOp::Max
            | AggOp::Min
            | AggOp::Count
            | AggOp::Group
            | AggOp::Stdvar
            | AggOp::Stddev => match g.acc.result(op) {
                Some(v) => v,
                None => continue,
            },
            AggOp::Quantile => quantile(p, &mut g.values),
            AggOp::Topk | AggOp::Bottomk => {
                let mut h = std::mem::take(&mut g.heap);
                let rev: &dyn Fn(&Sample, &Sample) -> bool = if op == AggOp::Topk {
                    &|a, b| less_top(b, a)
                } else {
                    &|a, b| less_bottom(b, a)
                };
                go_sort(&mut h, rev);
                out.extend(h);
                continue;
            }
            AggOp::Limitk | AggOp::LimitRatio => {
                out.extend(std::mem::take(&mut g.heap));
                continue;
            }
            _ => continue,
        };
        // The group keeps the input's pending name removal, which only
        // matters when grouping by `__name__`.
        let drop = g.drop_name && g.labels.has(METRIC_NAME);
        out.push(float_sample(g.labels, ts, v, drop));
    }
    Ok(out)
}

/// Folds one histogram sample into its group.
#[allow(clippy::too_many_arguments)]
fn aggregate_histogram(
    annos: &mut Annotations,
    op: AggOp,
    op_name: &str,
    g: &mut Group,
    h: &Arc<FloatHistogram>,
    first: bool,
    s: &Sample,
    (k, ratio): (usize, f64),
    ts: i64,
) {
    let mixed_schemas = |annos: &mut Annotations| {
        annos.warn(format!(
            "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {:?}",
            s.metric.metric_name().unwrap_or("")
        ));
    };
    match op {
        AggOp::Sum | AggOp::Avg => {
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
            if op == AggOp::Avg {
                g.acc.count += 1.0;
            }
            if g.incompatible {
                return;
            }
            let Some(acc) = g.hist.as_ref() else { return };
            let res = if op == AggOp::Sum {
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
                        annos.info("mismatched custom buckets were reconciled during aggregation");
                    }
                    g.hist = Some(x);
                }
                Err(_) => {
                    mixed_schemas(annos);
                    g.incompatible = true;
                }
            }
        }
        AggOp::Count | AggOp::Group => {
            g.seen = true;
            g.acc.count += 1.0;
        }
        AggOp::Limitk | AggOp::LimitRatio => {
            if op == AggOp::LimitRatio {
                let off = ratio_offset(&s.metric);
                let add = (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio);
                if add {
                    let mut s = s.clone();
                    s.t = ts;
                    heap_push(&mut g.heap, s, &less_top);
                }
                g.complete = true;
            }
            if op == AggOp::Limitk {
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
            annos.info(format!("ignored histogram in {op_name} aggregation"));
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
        .map(|(l, c)| float_sample(l, ts, c, false))
        .collect()
}

/// A float sample of an aggregation's output.
fn float_sample(metric: Labels, ts: i64, f: f64, drop_name: bool) -> Sample {
    Sample {
        metric,
        t: ts,
        value: SampleValue::Float(f),
        drop_name,
    }
}

/// Where a series falls in `[0, 1]` for `limit_ratio`: its label set's
/// hash as Prometheus computes it (`labels.Hash()`: xxHash64 of the
/// length-prefixed names and values, which is `Labels`' own encoding), so
/// that a ratio keeps the same series as Prometheus.
fn ratio_offset(l: &cairn_model::Labels) -> f64 {
    xxhash_rust::xxh64::xxh64(l.encoded(), 0) as f64 / u64::MAX as f64
}
