//! A node's value over all of its steps: what evaluation passes from node
//! to node.
//!
//! An instant vector over the steps is a list of [`Col`]s, one per series:
//! the series' labels once, and its values at the steps from `start` on,
//! dense (a flag per cell says whether the step has a sample). A series
//! that exists for part of the range (pod churn) holds cells for that part
//! only. A scalar is one value per step.
//!
//! Contracts: a column's cells are in step order; a histogram cell is
//! `ok` and holds its histogram in `hists` (which is empty for float-only
//! columns); a column's labels do not change from step to step.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_model::{FloatHistogram, Labels};

use crate::error::{eval_err, Result};
use crate::value::{Sample, SampleValue, Vector};

/// One series over a run of steps.
#[derive(Debug, Clone, Default)]
pub(crate) struct Col {
    pub(crate) labels: Labels,
    /// The metric name is to be removed (delayed name removal).
    pub(crate) drop: bool,
    /// The step of `vals[0]`.
    pub(crate) start: usize,
    pub(crate) vals: Vec<f64>,
    pub(crate) ok: Vec<bool>,
    /// Histogram cells, aligned with `vals`; empty when there are none.
    pub(crate) hists: Vec<Option<Arc<FloatHistogram>>>,
}

impl Col {
    /// A float column.
    pub(crate) fn floats(
        labels: Labels,
        drop: bool,
        start: usize,
        vals: Vec<f64>,
        ok: Vec<bool>,
    ) -> Self {
        Self {
            labels,
            drop,
            start,
            vals,
            ok,
            hists: Vec::new(),
        }
    }

    /// One past the last step the column covers.
    pub(crate) fn end(&self) -> usize {
        self.start + self.vals.len()
    }

    /// Whether some cell holds a histogram.
    pub(crate) fn has_hists(&self) -> bool {
        self.hists.iter().any(Option::is_some)
    }

    /// The float sample at step `i`, if the step has one.
    pub(crate) fn float(&self, i: usize) -> Option<f64> {
        let k = i.checked_sub(self.start)?;
        if !self.ok.get(k).copied().unwrap_or(false)
            || self.hists.get(k).is_some_and(Option::is_some)
        {
            return None;
        }
        self.vals.get(k).copied()
    }

    /// The sample at step `i`, if the step has one.
    pub(crate) fn value(&self, i: usize) -> Option<SampleValue> {
        let k = i.checked_sub(self.start)?;
        if !self.ok.get(k).copied().unwrap_or(false) {
            return None;
        }
        if let Some(Some(h)) = self.hists.get(k) {
            return Some(SampleValue::Histogram(h.clone()));
        }
        self.vals.get(k).map(|&f| SampleValue::Float(f))
    }

    /// Whether any step has a sample.
    pub(crate) fn any(&self) -> bool {
        self.ok.iter().any(|&o| o)
    }
}

/// A node's value over its steps.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<Col>),
}

impl Value {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "instant vector",
        }
    }
}

/// A node's value at one step: what step-wise kernels take and give.
#[derive(Debug, Clone)]
pub(crate) enum StepVal {
    Scalar(f64),
    String(String),
    Vector(Vector),
}

impl StepVal {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            StepVal::Scalar(_) => "scalar",
            StepVal::String(_) => "string",
            StepVal::Vector(_) => "instant vector",
        }
    }
}

/// Merges columns that hold the same series: the same labels (and, with
/// `by_drop`, the same pending name removal). Two of them with a sample
/// at the same step make the query fail, as two samples with one label
/// set at one step do in Prometheus. Columns keep the order of their
/// first member; columns without samples are dropped.
pub(crate) fn merge_duplicates(cols: Vec<Col>, by_drop: bool) -> Result<Vec<Col>> {
    let mut out: Vec<Col> = Vec::with_capacity(cols.len());
    let mut index: HashMap<(u64, bool), Vec<usize>> = HashMap::new();
    for c in cols {
        if !c.any() {
            continue;
        }
        let key = (c.labels.hash64(), by_drop && c.drop);
        let slot = index.entry(key).or_default();
        let found = slot.iter().copied().find(|&i| {
            out.get(i)
                .is_some_and(|o| o.labels == c.labels && (!by_drop || o.drop == c.drop))
        });
        match found.and_then(|i| out.get_mut(i)) {
            Some(o) => merge_into(o, c)?,
            None => {
                slot.push(out.len());
                out.push(c);
            }
        }
    }
    Ok(out)
}

/// Moves `b`'s cells into `a`; fails when both have a sample at one step.
fn merge_into(a: &mut Col, b: Col) -> Result<()> {
    let first = std::mem::take(a);
    let start = first.start.min(b.start);
    let end = first.end().max(b.end());
    let with_hists = !first.hists.is_empty() || !b.hists.is_empty();
    let n = end - start;
    let mut vals = vec![0.0; n];
    let mut ok = vec![false; n];
    let mut hists: Vec<Option<Arc<FloatHistogram>>> = if with_hists {
        vec![None; n]
    } else {
        Vec::new()
    };
    let (labels, drop) = (first.labels.clone(), first.drop);
    for c in [first, b] {
        let off = c.start - start;
        for (k, (&v, &o)) in c.vals.iter().zip(c.ok.iter()).enumerate() {
            if !o {
                continue;
            }
            let (Some(dv), Some(dok)) = (vals.get_mut(off + k), ok.get_mut(off + k)) else {
                continue;
            };
            if *dok {
                return eval_err("vector cannot contain metrics with the same labelset");
            }
            *dv = v;
            *dok = true;
            if let (Some(dh), Some(Some(h))) = (hists.get_mut(off + k), c.hists.get(k)) {
                *dh = Some(h.clone());
            }
        }
    }
    *a = Col {
        labels,
        drop,
        start,
        vals,
        ok,
        hists,
    };
    Ok(())
}

/// The instant vector the columns hold at step `i` (evaluated at `ts`),
/// in column order.
pub(crate) fn vector_at(cols: &[Col], i: usize, ts: i64) -> Vector {
    let mut out = Vec::new();
    for c in cols {
        if let Some(value) = c.value(i) {
            out.push(Sample {
                metric: c.labels.clone(),
                t: ts,
                value,
                drop_name: c.drop,
            });
        }
    }
    out
}

/// Builds columns from instant vectors given step by step (in increasing
/// step order): samples with the same labels and pending name removal go
/// to one column, columns in order of first appearance. Two samples of one
/// column at one step are an error, as in Prometheus's `rangeEval`.
#[derive(Default)]
pub(crate) struct ColBuilder {
    cols: Vec<Col>,
    index: HashMap<(u64, bool), Vec<usize>>,
    /// The column each position of the previous step's vector went to:
    /// steps usually list the same series in the same order, so the
    /// column at the same position is tried before hashing.
    prev: Vec<usize>,
}

impl ColBuilder {
    /// Adds the sample at position `pos` of step `i`'s vector.
    pub(crate) fn push(&mut self, i: usize, pos: usize, s: Sample) -> Result<()> {
        let guess = self.prev.get(pos).copied().filter(|&c| {
            self.cols
                .get(c)
                .is_some_and(|x| x.drop == s.drop_name && x.labels == s.metric)
        });
        let c = match guess {
            Some(c) => c,
            None => {
                let key = (s.metric.hash64(), s.drop_name);
                let slot = self.index.entry(key).or_default();
                let found = slot.iter().copied().find(|&c| {
                    self.cols
                        .get(c)
                        .is_some_and(|x| x.drop == s.drop_name && x.labels == s.metric)
                });
                match found {
                    Some(c) => c,
                    None => {
                        slot.push(self.cols.len());
                        self.cols.push(Col {
                            labels: s.metric,
                            drop: s.drop_name,
                            start: i,
                            ..Col::default()
                        });
                        self.cols.len() - 1
                    }
                }
            }
        };
        if let Some(p) = self.prev.get_mut(pos) {
            *p = c;
        } else {
            self.prev.push(c);
        }
        let Some(col) = self.cols.get_mut(c) else {
            return Ok(());
        };
        if col.end() > i {
            return eval_err("vector cannot contain metrics with the same labelset");
        }
        let pad = i - col.end();
        col.vals.extend(std::iter::repeat_n(0.0, pad));
        col.ok.extend(std::iter::repeat_n(false, pad));
        if !col.hists.is_empty() {
            col.hists.extend(std::iter::repeat_n(None, pad));
        }
        match s.value {
            SampleValue::Float(f) => {
                col.vals.push(f);
                if !col.hists.is_empty() {
                    col.hists.push(None);
                }
            }
            SampleValue::Histogram(h) => {
                if col.hists.is_empty() {
                    col.hists = vec![None; col.vals.len()];
                }
                col.vals.push(0.0);
                col.hists.push(Some(h));
            }
        }
        col.ok.push(true);
        Ok(())
    }

    /// The columns, in order of first appearance.
    pub(crate) fn finish(self) -> Vec<Col> {
        self.cols
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::labels;

    #[test]
    fn builder_pads_gaps_and_rejects_duplicates() {
        let mut b = ColBuilder::default();
        let a = labels!("x" => "a");
        b.push(2, 0, Sample::float(a.clone(), 0, 1.0)).unwrap();
        b.push(5, 0, Sample::float(a.clone(), 0, 2.0)).unwrap();
        assert!(b.push(5, 1, Sample::float(a, 0, 3.0)).is_err());
        let cols = b.finish();
        assert_eq!(cols.len(), 1);
        let c = &cols[0];
        assert_eq!((c.start, c.end()), (2, 6));
        assert_eq!(c.float(2), Some(1.0));
        assert_eq!(c.float(3), None);
        assert_eq!(c.float(5), Some(2.0));
        assert_eq!(c.float(1), None);
    }
}
