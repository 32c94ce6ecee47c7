//! The step-wise binary operator kernel: one step's values of both sides.

use std::collections::{HashMap, HashSet};

use cairn_model::METRIC_NAME;

use super::{elem_op, result_metric, value_op};
use crate::columns::StepVal;
use crate::error::{eval_err, Result};
use crate::grouping::signature;
use crate::plan::{BinOp, Card, Matching};
use crate::value::{Annotations, Sample, SampleValue, Vector};

/// `lhs op rhs` at one step evaluated at `ts`.
pub(crate) fn step(
    op: BinOp,
    m: &Matching,
    return_bool: bool,
    lhs: StepVal,
    rhs: StepVal,
    ts: i64,
    annos: &mut Annotations,
) -> Result<StepVal> {
    match (lhs, rhs) {
        (StepVal::Scalar(l), StepVal::Scalar(r)) => {
            let (v, keep) = elem_op(op, l, r);
            if op.is_comparison() {
                Ok(StepVal::Scalar(if keep { 1.0 } else { 0.0 }))
            } else {
                Ok(StepVal::Scalar(v))
            }
        }
        (StepVal::Vector(v), StepVal::Scalar(s)) => Ok(StepVal::Vector(vector_scalar(
            annos,
            op,
            v,
            s,
            false,
            return_bool,
            ts,
        ))),
        (StepVal::Scalar(s), StepVal::Vector(v)) => Ok(StepVal::Vector(vector_scalar(
            annos,
            op,
            v,
            s,
            true,
            return_bool,
            ts,
        ))),
        (StepVal::Vector(l), StepVal::Vector(r)) => {
            if op.is_set() {
                Ok(StepVal::Vector(set_op(op, l, r, &m.names, m.on, ts)))
            } else {
                vector_binop(annos, op, l, r, m, return_bool, ts).map(StepVal::Vector)
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
    annos: &mut Annotations,
    op: BinOp,
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
        let Some((mut val, mut keep)) = value_op(annos, op, l, r) else {
            continue;
        };
        if op.is_comparison() && swap {
            val = smp.value.clone();
        }
        if return_bool {
            val = SampleValue::Float(if keep { 1.0 } else { 0.0 });
            keep = true;
        }
        if keep {
            smp.value = val;
            smp.t = ts;
            if !op.is_comparison() || return_bool {
                smp.drop_name = true;
            }
            out.push(smp);
        }
    }
    out
}

fn set_op(op: BinOp, l: Vector, r: Vector, names: &[String], on: bool, ts: i64) -> Vector {
    let retime = |mut s: Sample| {
        s.t = ts;
        s
    };
    match op {
        BinOp::And => {
            if l.is_empty() || r.is_empty() {
                return Vec::new();
            }
            let rs: HashSet<u64> = r.iter().map(|s| signature(&s.metric, names, on)).collect();
            l.into_iter()
                .filter(|s| rs.contains(&signature(&s.metric, names, on)))
                .map(retime)
                .collect()
        }
        BinOp::Or => {
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

fn vector_binop(
    annos: &mut Annotations,
    op: BinOp,
    lhs: Vector,
    rhs: Vector,
    m: &Matching,
    return_bool: bool,
    ts: i64,
) -> Result<Vector> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let (on, names) = (m.on, m.names.as_slice());
    let one_to_many = matches!(m.card, Card::OneToMany(_));
    let one_to_one = matches!(m.card, Card::OneToOne | Card::ManyToMany);
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
        let Some((mut val, keep)) = value_op(annos, op, l, r) else {
            continue;
        };
        if return_bool {
            val = SampleValue::Float(if keep { 1.0 } else { 0.0 });
        } else if !keep {
            continue;
        }
        let metric = result_metric(&ms.metric, &os.metric, op, m);
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
