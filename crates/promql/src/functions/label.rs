//! `label_replace` and `label_join`: rewrite label sets, keep values.
//!
//! A column's labels are the same at every step, so each series is
//! rewritten once per query; two series that end up with the same labels
//! merge, and the query fails if both have a sample at one step (as it
//! does step by step in Prometheus).

use cairn_model::METRIC_NAME;

use super::cols_arg;
use crate::columns::{merge_duplicates, Value};
use crate::error::Result;
use crate::plan::LabelReplace;

pub(super) fn replace(lr: &LabelReplace, args: Vec<Value>) -> Result<Value> {
    let mut cols = cols_arg(args, 0)?;
    for c in &mut cols {
        let sv = c.labels.get(&lr.src).unwrap_or("").to_owned();
        if let Some(caps) = lr.re.captures(&sv) {
            // Go's `$name` expansion takes the longest run of word
            // characters as the group name, as the regex crate does; both
            // accept `${name}`.
            let mut res = String::new();
            caps.expand(&lr.repl, &mut res);
            let mut b = c.labels.builder();
            b.set(&lr.dst, &res);
            c.labels = b.build();
            if lr.dst == METRIC_NAME {
                c.drop = false;
            }
        }
    }
    Ok(Value::Vector(merge_duplicates(cols, false)?))
}

pub(super) fn join(dst: &str, sep: &str, srcs: &[String], args: Vec<Value>) -> Result<Value> {
    let mut cols = cols_arg(args, 0)?;
    for c in &mut cols {
        let joined: Vec<&str> = srcs.iter().map(|n| c.labels.get(n).unwrap_or("")).collect();
        let val = joined.join(sep);
        let mut b = c.labels.builder();
        b.set(dst, &val);
        c.labels = b.build();
        if dst == METRIC_NAME {
            c.drop = false;
        }
    }
    Ok(Value::Vector(merge_duplicates(cols, false)?))
}
