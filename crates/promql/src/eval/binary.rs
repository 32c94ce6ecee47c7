//! Binary operators: arithmetic, comparisons (filtering or `bool`), `atan2`
//! and the set operators, with `on`/`ignoring` and `group_left`/`group_right`
//! vector matching.
//!
//! Name handling follows Prometheus 3: arithmetic between two vectors drops
//! the metric name at once (it changes what the metric means); arithmetic
//! with a scalar and `bool` comparisons mark it for delayed removal; filter
//! comparisons keep it.

use std::collections::{HashMap, HashSet};

use cairn_model::{Labels, LabelsBuilder, METRIC_NAME};
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

fn is_comparison(op: u16) -> bool {
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
    for lb in l.iter() {
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
            op,
            v,
            s,
            false,
            return_bool,
            ts,
        ))),
        (StepVal::Scalar(s), StepVal::Vector(v)) => Ok(StepVal::Vector(vector_scalar(
            op,
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
                    vector_binop(op, l, r, &card, &names, on, return_bool, ts).map(StepVal::Vector)
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

fn vector_scalar(op: u16, v: Vector, s: f64, swap: bool, return_bool: bool, ts: i64) -> Vector {
    let mut out = Vec::with_capacity(v.len());
    for mut smp in v {
        let Some(f) = smp.f() else { continue };
        let (l, r) = if swap { (s, f) } else { (f, s) };
        let (mut val, mut keep) = elem_op(op, l, r);
        if is_comparison(op) && swap {
            val = r;
        }
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            smp.value = SampleValue::Float(val);
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
    op: u16,
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
        let (Some(mf), Some(of)) = (ms.f(), os.f()) else {
            continue;
        };
        let (l, r) = if one_to_many { (of, mf) } else { (mf, of) };
        let (mut val, keep) = elem_op(op, l, r);
        if return_bool {
            val = if keep { 1.0 } else { 0.0 };
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
            value: SampleValue::Float(val),
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
