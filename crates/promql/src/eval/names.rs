//! Immediate name removal (Prometheus's default, without the
//! `promql-delayed-name-removal` feature): what a node marked for removal
//! loses before its parent reads it, and the "same labelset" errors
//! Prometheus raises there.
//!
//! Prometheus checks in two ways, and so does this: the nodes it
//! evaluates through `rangeEval` (binary operators, functions of instant
//! vectors, aggregations) fail when two series share a label set at one
//! step; unary minus and range functions over a range vector fail when two
//! series of the node's whole result share one, even at different steps.

use std::collections::HashSet;

use crate::binary::METADATA_LABELS;
use crate::columns::{merge_duplicates, Col, Value};
use crate::error::{eval_err, Result};

/// `v` with pending names removed; `strict` for the whole-result check.
pub(super) fn settle(v: Value, strict: bool) -> Result<Value> {
    let Value::Vector(mut cols) = v else {
        return Ok(v);
    };
    if !cols.iter().any(|c| c.drop) {
        return Ok(Value::Vector(cols));
    }
    // Label sets that were distinct stay distinct when every series loses
    // the same name (the usual case: one selector's series): then there is
    // nothing to check.
    let uniform = match cols.first() {
        Some(f) => {
            let first = meta(f);
            cols.iter().all(|c| c.drop && meta(c) == first)
        }
        None => true,
    };
    for c in cols.iter_mut().filter(|c| c.drop) {
        c.labels = c.labels.without(&METADATA_LABELS);
        c.drop = false;
    }
    if uniform {
        return Ok(Value::Vector(cols));
    }
    if strict {
        let mut seen = HashSet::with_capacity(cols.len());
        for c in cols.iter().filter(|c| c.any()) {
            if !seen.insert(c.labels.clone()) {
                return eval_err("vector cannot contain metrics with the same labelset");
            }
        }
        return Ok(Value::Vector(cols));
    }
    Ok(Value::Vector(merge_duplicates(cols, false)?))
}

/// The values of the metadata labels of a column's series.
fn meta(c: &Col) -> [Option<&str>; 3] {
    METADATA_LABELS.map(|n| c.labels.get(n))
}
