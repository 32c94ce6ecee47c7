//! Binary operators: arithmetic, comparisons (filtering or `bool`), `atan2`
//! and the set operators, with `on`/`ignoring` and `group_left`/`group_right`
//! vector matching.
//!
//! Name handling follows Prometheus 3: arithmetic between two vectors drops
//! the metric name at once (it changes what the metric means); arithmetic
//! with a scalar and `bool` comparisons mark it for delayed removal; filter
//! comparisons keep it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cairn_model::{CounterResetHint, Labels, LabelsBuilder, METRIC_NAME};
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::{Evaluator, StepVal};
use crate::error::{eval_err, Result};
use crate::value::{Sample, SampleValue, Vector};

/// Applies `op` to two floats: the value and whether a comparison holds.
pub(crate) fn elem_op(op: u16, l: f64, r: f64) -> (f64, bool) {
    match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true),
        T_MOD => (l % r, true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

/// Applies `op` to two sample values, floats or histograms, following
/// Prometheus 3.8: histograms support `+`, `-`, `==`, `!=` with each other
/// and `*`/`/` by a float; anything else yields no sample and an info
/// annotation. Returns `None` when no sample results, else the value and
/// whether a comparison holds.
pub(crate) fn value_op(
    ev: &mut Evaluator<'_>,
    op: u16,
    op_name: &str,
    l: &SampleValue,
    r: &SampleValue,
) -> Option<(SampleValue, bool)> {
    let incompatible = |ev: &mut Evaluator<'_>, a: &str, b: &str| {
        ev.annos.info(format!(
            "incompatible sample types encountered for binary operator {op_name:?}: {a} {op_name} {b}"
        ));
        None
    };
    match (l, r) {
        (SampleValue::Float(a), SampleValue::Float(b)) => {
            let (v, keep) = elem_op(op, *a, *b);
            Some((SampleValue::Float(v), keep))
        }
        (SampleValue::Float(a), SampleValue::Histogram(h)) => {
            if op == T_MUL {
                let mut x = (**h).clone();
                x.mul(*a);
                x.compact();
                Some((SampleValue::Histogram(Arc::new(x)), true))
            } else {
                incompatible(ev, "float", "histogram")
            }
        }
        (SampleValue::Histogram(h), SampleValue::Float(b)) => {
            if op == T_MUL || op == T_DIV {
                let mut x = (**h).clone();
                if op == T_MUL {
                    x.mul(*b);
                } else {
                    x.div(*b);
                }
                x.compact();
                Some((SampleValue::Histogram(Arc::new(x)), true))
            } else {
                incompatible(ev, "histogram", "float")
            }
        }
        (SampleValue::Histogram(a), SampleValue::Histogram(b)) => match op {
            T_ADD | T_SUB => {
                let res = if op == T_ADD { a.add(b) } else { a.sub(b) };
                let what = if op == T_ADD {
                    "addition"
                } else {
                    "subtraction"
                };
                let Ok((mut x, info)) = res else {
                    ev.annos.warn(format!(
                        "incompatible bucket layout encountered for binary operator {op_name}"
                    ));
                    return None;
                };
                if op == T_SUB {
                    x.counter_reset_hint = CounterResetHint::Gauge;
                }
                if info.counter_reset_collision {
                    ev.annos.warn(format!(
                        "conflicting counter resets during histogram {what}"
                    ));
                }
                if info.nhcb_bounds_reconciled {
                    ev.annos.info(format!(
                        "mismatched custom buckets were reconciled during {what}"
                    ));
                }
                x.compact();
                Some((SampleValue::Histogram(Arc::new(x)), true))
            }
            T_EQLC | T_NEQ => {
                let eq = a.approx_eq(b, |x, y| x == y || x.to_bits() == y.to_bits());
                Some((l.clone(), if op == T_EQLC { eq } else { !eq }))
            }
            _ => incompatible(ev, "histogram", "histogram"),
        },
    }
}

pub(crate) fn is_comparison(op: u16) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// FNV-1a over the chosen labels; the join key of vector matching.
pub(crate) fn signature(l: &Labels, names: &[String], on: bool) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    if on && names.is_empty() {
        return h;
    }
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    // Labels come sorted by name: with `on`/`by`, none after the last
    // listed name can count, and the rest of the set (often several cache
    // lines not read yet) is left alone.
    let last = if on {
        names.iter().map(String::as_str).max()
    } else {
        None
    };
    for lb in l.iter() {
        if last.is_some_and(|m| lb.name > m) {
            break;
        }
        let listed = names.iter().any(|n| n == lb.name);
        let take = if on {
            listed
        } else {
            !listed && lb.name != METRIC_NAME
        };
        if take {
            eat(lb.name.as_bytes());
            eat(lb.value.as_bytes());
        }
    }
    h
}

pub(crate) fn eval_binary(ev: &mut Evaluator<'_>, b: &BinaryExpr, ts: i64) -> Result<StepVal> {
    let op = b.op.id();
    let op_name = b.op.to_string();
    let return_bool = b.return_bool();
    let lhs = ev.eval(&b.lhs, ts)?;
    let rhs = ev.eval(&b.rhs, ts)?;
    match (lhs, rhs) {
        (StepVal::Scalar(l), StepVal::Scalar(r)) => {
            let (v, keep) = elem_op(op, l, r);
            if is_comparison(op) {
                Ok(StepVal::Scalar(if keep { 1.0 } else { 0.0 }))
            } else {
                Ok(StepVal::Scalar(v))
            }
        }
        (StepVal::Vector(v), StepVal::Scalar(s)) => Ok(StepVal::Vector(vector_scalar(
            ev,
            (op, &op_name),
            v,
            s,
            false,
            return_bool,
            ts,
        ))),
        (StepVal::Scalar(s), StepVal::Vector(v)) => Ok(StepVal::Vector(vector_scalar(
            ev,
            (op, &op_name),
            v,
            s,
            true,
            return_bool,
            ts,
        ))),
        (StepVal::Vector(l), StepVal::Vector(r)) => {
            let (on, names) = match b.modifier.as_ref().and_then(|m| m.matching.as_ref()) {
                Some(LabelModifier::Include(ls)) => (true, ls.labels.clone()),
                Some(LabelModifier::Exclude(ls)) => (false, ls.labels.clone()),
                None => (false, Vec::new()),
            };
            match op {
                T_LAND | T_LOR | T_LUNLESS => Ok(StepVal::Vector(set_op(op, l, r, &names, on, ts))),
                _ => {
                    let card = b
                        .modifier
                        .as_ref()
                        .map(|m| m.card.clone())
                        .unwrap_or(VectorMatchCardinality::OneToOne);
                    vector_binop(ev, (op, &op_name), l, r, &card, &names, on, return_bool, ts)
                        .map(StepVal::Vector)
                }
            }
        }
        (l, r) => eval_err(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        )),
    }
}

fn vector_scalar(
    ev: &mut Evaluator<'_>,
    (op, op_name): (u16, &str),
    v: Vector,
    s: f64,
    swap: bool,
    return_bool: bool,
    ts: i64,
) -> Vector {
    let mut out = Vec::with_capacity(v.len());
    let sv = SampleValue::Float(s);
    for mut smp in v {
        let (l, r) = if swap {
            (&sv, &smp.value)
        } else {
            (&smp.value, &sv)
        };
        let Some((mut val, mut keep)) = value_op(ev, op, op_name, l, r) else {
            continue;
        };
        if is_comparison(op) && swap {
            val = smp.value.clone();
        }
        if return_bool {
            val = SampleValue::Float(if keep { 1.0 } else { 0.0 });
            keep = true;
        }
        if keep {
            smp.value = val;
            smp.t = ts;
            if !is_comparison(op) || return_bool {
                smp.drop_name = true;
            }
            out.push(smp);
        }
    }
    out
}

fn set_op(op: u16, l: Vector, r: Vector, names: &[String], on: bool, ts: i64) -> Vector {
    let retime = |mut s: Sample| {
        s.t = ts;
        s
    };
    match op {
        T_LAND => {
            if l.is_empty() || r.is_empty() {
                return Vec::new();
            }
            let rs: HashSet<u64> = r.iter().map(|s| signature(&s.metric, names, on)).collect();
            l.into_iter()
                .filter(|s| rs.contains(&signature(&s.metric, names, on)))
                .map(retime)
                .collect()
        }
        T_LOR => {
            if l.is_empty() {
                return r.into_iter().map(retime).collect();
            }
            if r.is_empty() {
                return l.into_iter().map(retime).collect();
            }
            let ls: HashSet<u64> = l.iter().map(|s| signature(&s.metric, names, on)).collect();
            let mut out: Vector = l.into_iter().map(retime).collect();
            out.extend(
                r.into_iter()
                    .filter(|s| !ls.contains(&signature(&s.metric, names, on)))
                    .map(retime),
            );
            out
        }
        _ => {
            if l.is_empty() || r.is_empty() {
                return l.into_iter().map(retime).collect();
            }
            let rs: HashSet<u64> = r.iter().map(|s| signature(&s.metric, names, on)).collect();
            l.into_iter()
                .filter(|s| !rs.contains(&signature(&s.metric, names, on)))
                .map(retime)
                .collect()
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn vector_binop(
    ev: &mut Evaluator<'_>,
    (op, op_name): (u16, &str),
    lhs: Vector,
    rhs: Vector,
    card: &VectorMatchCardinality,
    names: &[String],
    on: bool,
    return_bool: bool,
    ts: i64,
) -> Result<Vector> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let (include, one_to_many) = match card {
        VectorMatchCardinality::ManyToOne(ls) => (ls.labels.clone(), false),
        VectorMatchCardinality::OneToMany(ls) => (ls.labels.clone(), true),
        _ => (Vec::new(), false),
    };
    let one_to_one = matches!(
        card,
        VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany
    );
    let (many, one) = if one_to_many { (rhs, lhs) } else { (lhs, rhs) };
    let mut one_sigs: HashMap<u64, &Sample> = HashMap::with_capacity(one.len());
    for s in &one {
        let sig = signature(&s.metric, names, on);
        if let Some(dup) = one_sigs.get(&sig) {
            let side = if one_to_many { "left" } else { "right" };
            let matched = if on {
                s.metric
                    .keep(&names.iter().map(String::as_str).collect::<Vec<_>>())
            } else {
                let mut n: Vec<&str> = names.iter().map(String::as_str).collect();
                n.push(METRIC_NAME);
                s.metric.without(&n)
            };
            return eval_err(format!(
                "found duplicate series for the match group {matched} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                s.metric, dup.metric
            ));
        }
        one_sigs.insert(sig, s);
    }
    let mut matched: HashMap<u64, HashSet<u64>> = HashMap::new();
    let mut out = Vec::new();
    for ms in &many {
        let sig = signature(&ms.metric, names, on);
        let Some(os) = one_sigs.get(&sig) else {
            continue;
        };
        let (l, r) = if one_to_many {
            (&os.value, &ms.value)
        } else {
            (&ms.value, &os.value)
        };
        let Some((mut val, keep)) = value_op(ev, op, op_name, l, r) else {
            continue;
        };
        if return_bool {
            val = SampleValue::Float(if keep { 1.0 } else { 0.0 });
        } else if !keep {
            continue;
        }
        let metric = result_metric(&ms.metric, &os.metric, op, one_to_one, on, names, &include);
        let entry = matched.entry(sig);
        match entry {
            std::collections::hash_map::Entry::Occupied(mut o) => {
                if one_to_one {
                    return eval_err(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
                    );
                }
                if !o.get_mut().insert(metric.hash64()) {
                    return eval_err(
                        "multiple matches for labels: grouping labels must ensure unique matches",
                    );
                }
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                let mut set = HashSet::new();
                set.insert(metric.hash64());
                v.insert(set);
            }
        }
        out.push(Sample {
            metric,
            t: ts,
            value: val,
            drop_name: return_bool,
        });
    }
    Ok(out)
}

fn result_metric(
    many: &Labels,
    one: &Labels,
    op: u16,
    one_to_one: bool,
    on: bool,
    names: &[String],
    include: &[String],
) -> Labels {
    let changes_schema = !is_comparison(op);
    if !changes_schema && include.is_empty() && !one_to_one {
        return many.clone();
    }
    let mut b = LabelsBuilder::from(many);
    if changes_schema {
        for n in crate::engine::METADATA_LABELS {
            b.del(n);
        }
    }
    if one_to_one {
        if on {
            let keep: Vec<&str> = names.iter().map(String::as_str).collect();
            b.keep(&keep);
        } else {
            for n in names {
                b.del(n);
            }
        }
    }
    for n in include {
        match one.get(n) {
            Some(v) => {
                b.set(n, v);
            }
            None => {
                b.del(n);
            }
        }
    }
    b.build()
}
