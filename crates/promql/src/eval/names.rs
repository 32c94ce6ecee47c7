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
/// Unless `names_read` (the parent reads the input's names), series that
/// all lose the same name keep it pending: the parent, an aggregation over
/// other labels, drops it without copying each label set.
pub(super) fn settle(v: Value, strict: bool, names_read: bool) -> Result<Value> {
    let Value::Vector(mut cols) = v else {
        return Ok(v);
    };
    if !cols.iter().any(|c| c.drop) {
        return Ok(Value::Vector(cols));
    }
    if !names_read && all_lose_the_same(&cols) {
        return Ok(Value::Vector(cols));
    }
    // Label sets that were distinct stay distinct when every series loses
    // the same name (the usual case: one selector's series): then there is
    // nothing to check.
    let mut uniform = true;
    let (mut scratch, mut removed, mut first) = (Vec::new(), Vec::new(), None::<Vec<u8>>);
    for c in cols.iter_mut() {
        if !c.drop {
            uniform = false;
            continue;
        }
        c.labels = c
            .labels
            .without_into(&METADATA_LABELS, &mut scratch, &mut removed);
        c.drop = false;
        match &first {
            None => first = Some(removed.clone()),
            Some(f) => uniform &= *f == removed,
        }
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

/// Whether every series has a pending removal of the same metadata labels
/// (so that removing them cannot make two label sets equal).
fn all_lose_the_same(cols: &[Col]) -> bool {
    let Some(first) = cols.first() else {
        return true;
    };
    fn meta(c: &Col) -> [Option<&str>; 3] {
        METADATA_LABELS.map(|n| c.labels.get(n))
    }
    let want = meta(first);
    cols.iter().all(|c| c.drop && meta(c) == want)
}
