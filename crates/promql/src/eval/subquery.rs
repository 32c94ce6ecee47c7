//! Subqueries: the inner expression's values over the subquery's aligned
//! grid, turned into series of points that range functions then read in
//! windows like a range selector's samples.

use std::sync::Arc;

use cairn_model::{CounterResetHint, Labels};

use super::Evaluator;
use crate::columns::{merge_duplicates, Value};
use crate::error::{eval_err, Result};
use crate::load::Loaded;
use crate::plan::NodeId;
use crate::value::{FPoint, HPoint};

/// The series of subquery body `inner`, sorted by labels.
pub(super) fn points(ev: &mut Evaluator<'_>, inner: NodeId) -> Result<Vec<Loaded>> {
    let Some(steps) = ev.plan.node(inner).map(|n| n.steps) else {
        return eval_err("internal error: unknown plan node");
    };
    // The inner result is counted by its own evaluation, and held until
    // the range function over it is done.
    let v = ev.eval_body(inner)?;
    let mut out = match v {
        Value::Scalar(vals) => {
            let points = vals
                .iter()
                .enumerate()
                .map(|(i, &f)| FPoint {
                    t: steps.time(i),
                    f,
                })
                .collect();
            vec![Loaded::new(Labels::empty(), points, false)]
        }
        Value::Vector(cols) => {
            // One series per label set: two samples with one label set at
            // one step are an error.
            let cols = merge_duplicates(cols, false)?;
            let mut out = Vec::with_capacity(cols.len());
            for c in cols {
                let mut points = Vec::new();
                let mut hpoints = Vec::new();
                for (k, (&f, &ok)) in c.vals.iter().zip(c.ok.iter()).enumerate() {
                    if !ok {
                        continue;
                    }
                    let t = steps.time(c.start + k);
                    match c.hists.get(k) {
                        Some(Some(h)) => {
                            // Explicit reset hints would be wrong for the
                            // subquery's own sample spacing.
                            let h = match h.counter_reset_hint {
                                CounterResetHint::CounterReset
                                | CounterResetHint::NotCounterReset => {
                                    let mut x = (**h).clone();
                                    x.counter_reset_hint = CounterResetHint::Unknown;
                                    Arc::new(x)
                                }
                                _ => h.clone(),
                            };
                            hpoints.push(HPoint { t, h });
                        }
                        _ => points.push(FPoint { t, f }),
                    }
                }
                out.push(Loaded::new(c.labels, points, c.drop).with_histograms(hpoints));
            }
            out
        }
        Value::String(_) => {
            return eval_err("subquery is only allowed on instant vector, got string instead");
        }
    };
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}
