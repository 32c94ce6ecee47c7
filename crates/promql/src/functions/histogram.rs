//! `histogram_quantile` and `histogram_fraction` over classic histograms
//! (series with an `le` bucket label, grouped by all labels except `le`)
//! and over native histograms; the `histogram_count`/`sum`/`avg`/
//! `stddev`/`stdvar` accessors of native histograms.
//!
//! A native histogram whose label set equals a classic group's (name
//! included, `le` excluded) is ambiguous: both are dropped with a warning.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_model::{FloatHistogram, Labels, METRIC_NAME};

use super::{cols_arg, scalar_arg, scalars_arg, vector_arg};
use crate::columns::{Col, StepVal, Value};
use crate::error::Result;
use crate::numeric::{almost_equal, kahan_inc};
use crate::plan::{HistStat, Steps};
use crate::value::{Annotations, Sample, SampleValue, Vector};

/// One classic bucket: its upper bound and cumulative count.
#[derive(Clone, Copy)]
pub(crate) struct Bucket {
    pub(crate) le: f64,
    pub(crate) count: f64,
}

type Natives = Vec<(Labels, Arc<FloatHistogram>)>;
type Groups = Vec<(Labels, Vec<Bucket>)>;

/// Groups classic buckets by their labels without `le`, and returns the
/// native histogram samples beside them.
fn group_buckets(v: Vector, annos: &mut Annotations) -> (Groups, Natives) {
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<(Labels, Vec<Bucket>)> = Vec::new();
    let mut natives = Vec::new();
    for s in v {
        let f = match s.value {
            SampleValue::Float(f) => f,
            SampleValue::Histogram(h) => {
                natives.push((s.metric, h));
                continue;
            }
        };
        let le_str = s.metric.get("le").unwrap_or("");
        let le = match parse_go_float(le_str) {
            Some(x) => x,
            None => {
                let name = s.metric.metric_name().unwrap_or("");
                let mut msg = format!(
                    "bucket label \"le\" is missing or has a malformed value of {le_str:?}"
                );
                if !name.is_empty() {
                    msg.push_str(&format!(" for metric name {name:?}"));
                }
                annos.warn(msg);
                continue;
            }
        };
        let labels = s.metric.without(&["le"]);
        let h = labels.hash64();
        let i = *index.entry(h).or_insert_with(|| {
            groups.push((labels, Vec::new()));
            groups.len() - 1
        });
        if let Some(g) = groups.get_mut(i) {
            g.1.push(Bucket { le, count: f });
        }
    }
    let mut kept = Vec::new();
    for (l, h) in natives {
        if let Some(pos) = groups.iter().position(|g| g.0 == l && !g.1.is_empty()) {
            let mut msg = "vector contains a mix of classic and native histograms".to_owned();
            if let Some(n) = l.metric_name() {
                msg.push_str(&format!(" for metric name {n:?}"));
            }
            annos.warn(msg);
            groups.remove(pos);
            continue;
        }
        kept.push((l, h));
    }
    (groups, kept)
}

fn with_name(msg: &str, l: &Labels) -> String {
    match l.metric_name() {
        Some(n) if !n.is_empty() => format!("{msg} for metric name {n:?}"),
        _ => msg.to_owned(),
    }
}

/// The `q` quantile of a native histogram, interpolating exponentially
/// inside exponential buckets and linearly inside custom and zero buckets.
fn native_quantile(q: f64, h: &FloatHistogram, l: &Labels, annos: &mut Annotations) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let forward = h.sum.is_nan() || q < 0.5;
    let mut all = h.all_buckets();
    if !forward {
        all.reverse();
    }
    let mut rank = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    let mut count = 0.0;
    let mut pos = 0;
    let mut bucket: Option<cairn_model::Bucket> = None;
    while let Some(b) = all.get(pos) {
        pos += 1;
        bucket = Some(*b);
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        if count >= rank {
            break;
        }
    }
    let mut b = bucket.unwrap_or(cairn_model::Bucket {
        lower: 0.0,
        upper: 0.0,
        lower_inclusive: false,
        upper_inclusive: false,
        count: 0.0,
        index: 0,
    });
    if !h.uses_custom_buckets() && b.lower < 0.0 && b.upper > 0.0 {
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            b.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            b.upper = 0.0;
        }
    } else if h.uses_custom_buckets() {
        if b.lower == f64::NEG_INFINITY {
            if b.upper <= 0.0 {
                return b.upper;
            }
            b.lower = 0.0;
        } else if b.upper == f64::INFINITY {
            return b.lower;
        }
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank {
        if h.sum.is_nan() {
            annos.info(with_name(
                "input to histogram_quantile has NaN observations, result is NaN",
                l,
            ));
            return f64::NAN;
        }
        return b.upper;
    }
    if forward {
        rank -= count - b.count;
    } else {
        rank = count - rank;
    }
    if h.sum.is_nan() {
        for x in all.get(pos..).unwrap_or(&[]) {
            count += x.count;
        }
        if count < h.count {
            annos.info(with_name(
                "input to histogram_quantile has NaN observations, result is skewed higher",
                l,
            ));
        }
    }
    let fraction = rank / b.count;
    if h.uses_custom_buckets() || (b.lower <= 0.0 && b.upper >= 0.0) {
        return b.lower + (b.upper - b.lower) * fraction;
    }
    let ll = b.lower.abs().log2();
    let lu = b.upper.abs().log2();
    if b.lower > 0.0 {
        return (ll + (lu - ll) * fraction).exp2();
    }
    -(lu + (ll - lu) * (1.0 - fraction)).exp2()
}

/// The fraction of observations between `lower` and `upper` in a native histogram.
fn native_fraction(
    lower: f64,
    upper: f64,
    h: &FloatHistogram,
    l: &Labels,
    annos: &mut Annotations,
) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let all = h.all_buckets();
    let (mut count, mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut pos = 0;
    while let Some(&b0) = all.get(pos) {
        pos += 1;
        let mut b = b0;
        count += b.count;
        let mut zero_bucket = false;
        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero_bucket = true;
            if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
                b.lower = 0.0;
            } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
                b.upper = 0.0;
            }
        }
        let lin = |v: f64| {
            if b.lower == f64::NEG_INFINITY {
                b.count
            } else {
                rank + b.count * (v - b.lower) / (b.upper - b.lower)
            }
        };
        let exp = |v: f64| {
            let ll = b.lower.abs().log2();
            let lu = b.upper.abs().log2();
            let lv = v.abs().log2();
            let f = if v > 0.0 {
                (lv - ll) / (lu - ll)
            } else {
                1.0 - ((lv - lu) / (ll - lu))
            };
            rank + b.count * f
        };
        let linear = h.uses_custom_buckets() || zero_bucket;
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = if linear { lin(lower) } else { exp(lower) };
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = if linear { lin(upper) } else { exp(upper) };
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    if h.sum.is_nan() {
        for x in all.get(pos..).unwrap_or(&[]) {
            count += x.count;
        }
        if count < h.count {
            annos.info(with_name(
                "input to histogram_fraction has NaN observations, which are excluded from all fractions",
                l,
            ));
        }
    } else {
        count = h.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / h.count
}

/// The variance of a native histogram, each bucket's population placed at
/// its midpoint (geometric for exponential buckets, 0 for the zero bucket).
fn native_variance(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut var, mut c) = (0.0, 0.0);
    for b in h.all_buckets() {
        if b.count == 0.0 {
            continue;
        }
        let val = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let v = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 {
                -v
            } else {
                v
            }
        };
        let d = val - mean;
        let (s, cc) = kahan_inc(b.count * d * d, var, c);
        var = s;
        c = cc;
    }
    (var + c) / h.count
}

/// `histogram_count` and friends: one float per native histogram sample.
pub(super) fn stat_step(stat: HistStat, args: Vec<StepVal>, ts: i64) -> Result<StepVal> {
    let v = vector_arg(args, 0)?;
    let mut out = Vec::new();
    for s in v {
        let Some(h) = s.h() else { continue };
        let f = match stat {
            HistStat::Count => h.count,
            HistStat::Sum => h.sum,
            HistStat::Avg => h.sum / h.count,
            HistStat::Stddev => native_variance(h).sqrt(),
            HistStat::Stdvar => native_variance(h),
        };
        out.push(float_sample(s.metric, ts, f));
    }
    Ok(StepVal::Vector(out))
}

/// A float sample whose name is to be removed.
fn float_sample(metric: Labels, ts: i64, f: f64) -> Sample {
    Sample {
        metric,
        t: ts,
        value: SampleValue::Float(f),
        drop_name: true,
    }
}

/// Parses a float the way Go's `strconv.ParseFloat` accepts bucket bounds.
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty() || t != s {
        return None;
    }
    match t.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => return Some(f64::INFINITY),
        "-inf" | "-infinity" => return Some(f64::NEG_INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    t.replace('_', "").parse::<f64>().ok()
}

fn sort_and_coalesce(mut b: Vec<Bucket>) -> Vec<Bucket> {
    b.sort_by(|x, y| x.le.partial_cmp(&y.le).unwrap_or(std::cmp::Ordering::Equal));
    let mut out: Vec<Bucket> = Vec::with_capacity(b.len());
    for x in b {
        match out.last_mut() {
            Some(l) if l.le == x.le => l.count += x.count,
            _ => out.push(x),
        }
    }
    out
}

/// Prometheus's classic-bucket quantile; the bool says whether bucket
/// counts had to be forced monotonic.
pub(crate) fn bucket_quantile(q: f64, b: Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    let mut b = sort_and_coalesce(b);
    if b.last().is_none_or(|x| x.le != f64::INFINITY) {
        return (f64::NAN, false);
    }
    let mut forced = false;
    if let Some(first) = b.first() {
        let mut prev = first.count;
        for x in b.iter_mut().skip(1) {
            let cur = x.count;
            if cur == prev {
                continue;
            }
            if almost_equal(prev, cur, 1e-12) {
                x.count = prev;
                continue;
            }
            if cur < prev {
                x.count = prev;
                forced = true;
                continue;
            }
            prev = cur;
        }
    }
    if b.len() < 2 {
        return (f64::NAN, forced);
    }
    let n = b.len();
    let observations = b.last().map(|x| x.count).unwrap_or(0.0);
    if observations == 0.0 {
        return (f64::NAN, forced);
    }
    let mut rank = q * observations;
    let idx = b
        .get(..n - 1)
        .map(|s| s.partition_point(|x| x.count < rank))
        .unwrap_or(0);
    if idx == n - 1 {
        return (b.get(n - 2).map(|x| x.le).unwrap_or(f64::NAN), forced);
    }
    let Some(cur) = b.get(idx).copied() else {
        return (f64::NAN, forced);
    };
    if idx == 0 && cur.le <= 0.0 {
        return (cur.le, forced);
    }
    let mut start = 0.0;
    let mut count = cur.count;
    if idx > 0 {
        if let Some(p) = b.get(idx - 1) {
            start = p.le;
            count -= p.count;
            rank -= p.count;
        }
    }
    (start + (cur.le - start) * (rank / count), forced)
}

fn bucket_fraction(lower: f64, upper: f64, b: Vec<Bucket>) -> f64 {
    let b = sort_and_coalesce(b);
    if b.last().is_none_or(|x| x.le != f64::INFINITY) {
        return f64::NAN;
    }
    let count = b.last().map(|x| x.count).unwrap_or(0.0);
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut lower_bound = if b.first().is_some_and(|x| x.le <= 0.0) {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            if let Some(p) = b.get(i - 1) {
                lower_bound = p.le;
            }
        }
        let upper_bound = x.le;
        let interp = |v: f64| {
            if lower_bound == f64::NEG_INFINITY {
                x.count
            } else {
                rank + (x.count - rank) * (v - lower_bound) / (upper_bound - lower_bound)
            }
        };
        if !lower_set && lower_bound >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && lower_bound >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && lower_bound < lower && upper_bound > lower {
            lower_rank = interp(lower);
            lower_set = true;
        }
        if !upper_set && lower_bound < upper && upper_bound > upper {
            upper_rank = interp(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank = x.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    (upper_rank - lower_rank) / count
}

/// The warning for a quantile outside [0, 1], if `q` is one.
pub(crate) fn quantile_range_warning(q: f64) -> Option<String> {
    (q.is_nan() || !(0.0..=1.0).contains(&q)).then(|| {
        format!(
            "quantile value should be between 0 and 1, got {}",
            cairn_model::format_go_g(q)
        )
    })
}

/// The info noting that a group's bucket counts were forced monotonic.
pub(crate) fn forced_monotonic_info(labels: &Labels) -> String {
    let mut msg = "input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile)".to_owned();
    if let Some(n) = labels.get(METRIC_NAME) {
        msg.push_str(&format!(" for metric name {n:?}"));
    }
    msg
}

/// `histogram_quantile(q, v)` at one step.
pub(super) fn quantile_step(
    args: Vec<StepVal>,
    ts: i64,
    annos: &mut Annotations,
) -> Result<StepVal> {
    let q = scalar_arg(&args, 0)?;
    if let Some(w) = quantile_range_warning(q) {
        annos.warn(w);
    }
    let (groups, natives) = group_buckets(vector_arg(args, 1)?, annos);
    let mut out = Vec::new();
    for (l, h) in natives {
        let v = native_quantile(q, &h, &l, annos);
        out.push(float_sample(l, ts, v));
    }
    for (labels, buckets) in groups {
        if buckets.is_empty() {
            continue;
        }
        let (v, forced) = bucket_quantile(q, buckets);
        if forced {
            annos.info(forced_monotonic_info(&labels));
        }
        out.push(float_sample(labels, ts, v));
    }
    Ok(StepVal::Vector(out))
}

/// `histogram_fraction(lower, upper, v)` at one step.
pub(super) fn fraction_step(
    args: Vec<StepVal>,
    ts: i64,
    annos: &mut Annotations,
) -> Result<StepVal> {
    let lower = scalar_arg(&args, 0)?;
    let upper = scalar_arg(&args, 1)?;
    let (groups, natives) = group_buckets(vector_arg(args, 2)?, annos);
    let mut out = Vec::new();
    for (l, h) in natives {
        let v = native_fraction(lower, upper, &h, &l, annos);
        out.push(float_sample(l, ts, v));
    }
    for (labels, buckets) in groups {
        if buckets.is_empty() {
            continue;
        }
        let v = bucket_fraction(lower, upper, buckets);
        out.push(float_sample(labels, ts, v));
    }
    Ok(StepVal::Vector(out))
}

/// `histogram_quantile` of a literal quantile over classic buckets, all
/// steps at once: per step, buckets grouped by their labels without `le`
/// in order of appearance, the step-wise arithmetic. Native histogram
/// cells and malformed `le` labels (a warning per step) are left to the
/// step-wise kernel: the arguments come back.
pub(super) fn quantile_columns(
    args: Vec<Value>,
    steps: Steps,
    annos: &mut Annotations,
) -> Result<std::result::Result<Value, Vec<Value>>> {
    let q = match scalars_arg(&args, 0)?.first() {
        Some(&q) => q,
        None => return Ok(Ok(Value::Vector(Vec::new()))),
    };
    let covered = match args.get(1) {
        Some(Value::Vector(cols)) => cols
            .iter()
            .all(|c| !c.has_hists() && c.labels.get("le").and_then(parse_go_float).is_some()),
        _ => false,
    };
    if !covered {
        return Ok(Err(args));
    }
    let cols = cols_arg(args, 1)?;
    let mut index: HashMap<u64, usize> = HashMap::new();
    let mut groups: Vec<Labels> = Vec::new();
    let mut gid = Vec::with_capacity(cols.len());
    let mut les = Vec::with_capacity(cols.len());
    for c in &cols {
        let le = c
            .labels
            .get("le")
            .and_then(parse_go_float)
            .unwrap_or(f64::NAN);
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
            let Some(count) = c.float(i) else {
                continue;
            };
            let Some(b) = buckets.get_mut(g) else {
                continue;
            };
            if b.is_empty() {
                order.push(g);
            }
            b.push(Bucket { le, count });
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
    if n > 0 {
        if let Some(w) = quantile_range_warning(q) {
            annos.warn(w);
        }
    }
    for g in forced {
        if let Some(l) = groups.get(g) {
            annos.info(forced_monotonic_info(l));
        }
    }
    let out = groups
        .into_iter()
        .zip(vals)
        .zip(oks)
        .filter(|(_, ok)| ok.iter().any(|&o| o))
        .map(|((labels, vals), ok)| Col::floats(labels, true, 0, vals, ok))
        .collect();
    Ok(Ok(Value::Vector(out)))
}
