//! The columnar binary operator kernel: arithmetic and comparisons with a
//! scalar side, and one-to-one arithmetic between vectors, over whole
//! columns. Matching keys and result labels are worked out once per
//! series instead of once per step.

use std::collections::{HashMap, HashSet};

use super::{elem_op, result_metric};
use crate::columns::{Col, Value};
use crate::error::{eval_err, Result};
use crate::grouping::signature;
use crate::plan::{BinOp, Card, Matching};

/// What [`columns`] gives back when it does not cover its operands.
pub(crate) type Declined = (Value, Value);

/// `lhs op rhs` over all steps. The operands come back untouched (for the
/// step-wise kernel) when a side holds histogram cells, for set operators,
/// comparisons between vectors and matching other than one-to-one, and
/// when a matching key is held by two series of one side (the step-wise
/// kernel decides per step whether that is an error).
pub(crate) fn columns(
    op: BinOp,
    m: &Matching,
    return_bool: bool,
    lhs: Value,
    rhs: Value,
) -> Result<std::result::Result<Value, Declined>> {
    let hists = |v: &Value| matches!(v, Value::Vector(c) if c.iter().any(Col::has_hists));
    if op.is_set() || hists(&lhs) || hists(&rhs) {
        return Ok(Err((lhs, rhs)));
    }
    let cmp = op.is_comparison();
    Ok(Ok(match (lhs, rhs) {
        (Value::Scalar(mut l), Value::Scalar(r)) => {
            for (x, &y) in l.iter_mut().zip(r.iter()) {
                let (v, keep) = elem_op(op, *x, y);
                // Between scalars a comparison needs `bool`: 1 or 0.
                *x = match (cmp, keep) {
                    (false, _) => v,
                    (true, true) => 1.0,
                    (true, false) => 0.0,
                };
            }
            Value::Scalar(l)
        }
        (Value::Vector(mut v), Value::Scalar(s)) => {
            for c in &mut v {
                vector_scalar(c, &s, op, false, return_bool);
            }
            Value::Vector(v)
        }
        (Value::Scalar(s), Value::Vector(mut v)) => {
            for c in &mut v {
                vector_scalar(c, &s, op, true, return_bool);
            }
            Value::Vector(v)
        }
        (Value::Vector(l), Value::Vector(r)) => {
            if cmp || m.card != Card::OneToOne {
                return Ok(Err((Value::Vector(l), Value::Vector(r))));
            }
            match vector_vector(op, m, l, r) {
                Ok(v) => v,
                Err(back) => return Ok(Err(back)),
            }
        }
        (l, r) => {
            return eval_err(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        ))
        }
    }))
}

/// `op` between column `c` and scalar `s` (per step; the scalar on the
/// left with `swap`), cell by cell as the step-wise kernel does per
/// sample: arithmetic replaces the value and marks the name for removal;
/// a comparison keeps the vector's value where it holds and removes the
/// cell where it does not, or with `bool` gives 1 or 0 and marks the name.
fn vector_scalar(c: &mut Col, s: &[f64], op: BinOp, swap: bool, return_bool: bool) {
    let cmp = op.is_comparison();
    let at = s.get(c.start..).unwrap_or(&[]);
    for ((x, o), &y) in c.vals.iter_mut().zip(c.ok.iter_mut()).zip(at.iter()) {
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

/// One-to-one arithmetic between two vectors: each left series with the
/// right series of the same matching key, over the steps both cover.
fn vector_vector(
    op: BinOp,
    m: &Matching,
    lhs: Vec<Col>,
    rhs: Vec<Col>,
) -> std::result::Result<Value, Declined> {
    let (on, names) = (m.on, m.names.as_slice());
    let mut rsig: HashMap<u64, usize> = HashMap::with_capacity(rhs.len());
    for (i, c) in rhs.iter().enumerate() {
        if rsig.insert(signature(&c.labels, names, on), i).is_some() {
            return Err((Value::Vector(lhs), Value::Vector(rhs)));
        }
    }
    let mut used: HashSet<u64> = HashSet::with_capacity(lhs.len());
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (li, l) in lhs.iter().enumerate() {
        let sig = signature(&l.labels, names, on);
        let Some(&ri) = rsig.get(&sig) else {
            continue;
        };
        if !used.insert(sig) {
            return Err((Value::Vector(lhs), Value::Vector(rhs)));
        }
        pairs.push((li, ri));
    }
    let mut out = Vec::with_capacity(pairs.len());
    for (li, ri) in pairs {
        let (Some(l), Some(r)) = (lhs.get(li), rhs.get(ri)) else {
            continue;
        };
        let (a, b) = (l.start.max(r.start), l.end().min(r.end()));
        if a >= b {
            continue;
        }
        let mut vals = Vec::with_capacity(b - a);
        let mut ok = Vec::with_capacity(b - a);
        for i in a..b {
            match (l.float(i), r.float(i)) {
                (Some(x), Some(y)) => {
                    vals.push(elem_op(op, x, y).0);
                    ok.push(true);
                }
                _ => {
                    vals.push(0.0);
                    ok.push(false);
                }
            }
        }
        let labels = result_metric(&l.labels, &r.labels, op, m);
        out.push(Col::floats(labels, false, a, vals, ok));
    }
    Ok(Value::Vector(out))
}
