//! Binary operator kernels: arithmetic, comparisons (filtering or
//! `bool`), `atan2` and the set operators, with `on`/`ignoring` and
//! `group_left`/`group_right` vector matching.
//!
//! Name handling follows Prometheus 3: arithmetic between two vectors drops
//! the metric name at once (it changes what the metric means); arithmetic
//! with a scalar and `bool` comparisons mark it for delayed removal; filter
//! comparisons keep it.
//!
//! Two kernels: [`columns`] for arithmetic and comparisons with a scalar
//! and one-to-one arithmetic between vectors, over whole columns; [`step`]
//! for everything, one step at a time. Cell by cell they compute the same.

mod cols;
mod step;

use std::sync::Arc;

use cairn_model::{CounterResetHint, Labels, LabelsBuilder};

use crate::plan::{BinOp, Card, Matching};
use crate::value::{Annotations, SampleValue};

pub(crate) use cols::columns;
pub(crate) use step::step;

/// The reserved labels that describe the metric itself; they go together
/// with the name (Prometheus's `DropReserved(IsMetadataLabel)`).
pub(crate) const METADATA_LABELS: [&str; 3] = [cairn_model::METRIC_NAME, "__type__", "__unit__"];

/// Applies `op` to two floats: the value and whether a comparison holds.
pub(crate) fn elem_op(op: BinOp, l: f64, r: f64) -> (f64, bool) {
    match op {
        BinOp::Add => (l + r, true),
        BinOp::Sub => (l - r, true),
        BinOp::Mul => (l * r, true),
        BinOp::Div => (l / r, true),
        BinOp::Pow => (l.powf(r), true),
        BinOp::Mod => (l % r, true),
        BinOp::Atan2 => (l.atan2(r), true),
        BinOp::Eq => (l, l == r),
        BinOp::Ne => (l, l != r),
        BinOp::Gt => (l, l > r),
        BinOp::Lt => (l, l < r),
        BinOp::Ge => (l, l >= r),
        BinOp::Le => (l, l <= r),
        BinOp::And | BinOp::Or | BinOp::Unless => (f64::NAN, false),
    }
}

/// Applies `op` to two sample values, floats or histograms, following
/// Prometheus 3.8: histograms support `+`, `-`, `==`, `!=` with each other
/// and `*`/`/` by a float; anything else yields no sample and an info
/// annotation. Returns `None` when no sample results, else the value and
/// whether a comparison holds.
pub(crate) fn value_op(
    annos: &mut Annotations,
    op: BinOp,
    l: &SampleValue,
    r: &SampleValue,
) -> Option<(SampleValue, bool)> {
    let op_name = op.name();
    let incompatible = |annos: &mut Annotations, a: &str, b: &str| {
        annos.info(format!(
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
            if op == BinOp::Mul {
                let mut x = (**h).clone();
                x.mul(*a);
                x.compact();
                Some((SampleValue::Histogram(Arc::new(x)), true))
            } else {
                incompatible(annos, "float", "histogram")
            }
        }
        (SampleValue::Histogram(h), SampleValue::Float(b)) => {
            if op == BinOp::Mul || op == BinOp::Div {
                let mut x = (**h).clone();
                if op == BinOp::Mul {
                    x.mul(*b);
                } else {
                    x.div(*b);
                }
                x.compact();
                Some((SampleValue::Histogram(Arc::new(x)), true))
            } else {
                incompatible(annos, "histogram", "float")
            }
        }
        (SampleValue::Histogram(a), SampleValue::Histogram(b)) => match op {
            BinOp::Add | BinOp::Sub => {
                let res = if op == BinOp::Add { a.add(b) } else { a.sub(b) };
                let what = if op == BinOp::Add {
                    "addition"
                } else {
                    "subtraction"
                };
                let Ok((mut x, info)) = res else {
                    annos.warn(format!(
                        "incompatible bucket layout encountered for binary operator {op_name}"
                    ));
                    return None;
                };
                if op == BinOp::Sub {
                    x.counter_reset_hint = CounterResetHint::Gauge;
                }
                if info.counter_reset_collision {
                    annos.warn(format!(
                        "conflicting counter resets during histogram {what}"
                    ));
                }
                if info.nhcb_bounds_reconciled {
                    annos.info(format!(
                        "mismatched custom buckets were reconciled during {what}"
                    ));
                }
                x.compact();
                Some((SampleValue::Histogram(Arc::new(x)), true))
            }
            BinOp::Eq | BinOp::Ne => {
                let eq = a.approx_eq(b, |x, y| x == y || x.to_bits() == y.to_bits());
                Some((l.clone(), if op == BinOp::Eq { eq } else { !eq }))
            }
            _ => incompatible(annos, "histogram", "histogram"),
        },
    }
}

/// The labels of a vector-matching result: from the "many" side, the
/// name dropped by arithmetic, one-to-one matching keeping the `on`
/// labels (or dropping the `ignoring` ones), `group_*` labels copied from
/// the "one" side.
fn result_metric(many: &Labels, one: &Labels, op: BinOp, m: &Matching) -> Labels {
    let one_to_one = matches!(m.card, Card::OneToOne | Card::ManyToMany);
    let include: &[String] = match &m.card {
        Card::ManyToOne(ls) | Card::OneToMany(ls) => ls,
        _ => &[],
    };
    let (on, names) = (m.on, &m.names);
    let changes_schema = !op.is_comparison();
    if !changes_schema && include.is_empty() && !one_to_one {
        return many.clone();
    }
    let mut b = LabelsBuilder::from(many);
    if changes_schema {
        for n in METADATA_LABELS {
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
