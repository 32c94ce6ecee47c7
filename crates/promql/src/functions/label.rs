//! `label_replace` and `label_join`: rewrite label sets, keep values.

use std::collections::HashSet;

use cairn_model::METRIC_NAME;
use promql_parser::parser::Expr;

use super::{arg, is_valid_label_name, string_arg};
use crate::error::{eval_err, Result};
use crate::eval::{Evaluator, StepVal};
use crate::value::Vector;

fn check_unique(v: &Vector) -> Result<()> {
    let mut seen = HashSet::with_capacity(v.len());
    for s in v {
        if !seen.insert(s.metric.hash64()) {
            return eval_err("vector cannot contain metrics with the same labelset");
        }
    }
    Ok(())
}

pub(super) fn label_replace(ev: &mut Evaluator<'_>, args: &[&Expr], ts: i64) -> Result<StepVal> {
    let dst = string_arg(args, 1)?;
    let repl = string_arg(args, 2)?;
    let src = string_arg(args, 3)?;
    let re_str = string_arg(args, 4)?;
    let re = match regex::Regex::new(&format!("^(?s:{re_str})$")) {
        Ok(r) => r,
        Err(_) => {
            return eval_err(format!(
                "invalid regular expression in label_replace(): {re_str}"
            ))
        }
    };
    if !is_valid_label_name(&dst) {
        return eval_err(format!(
            "invalid destination label name in label_replace(): {dst}"
        ));
    }
    let mut v = ev.eval_vector(arg(args, 0)?, ts)?;
    for s in &mut v {
        s.t = ts;
        let sv = s.metric.get(&src).unwrap_or("").to_owned();
        if let Some(caps) = re.captures(&sv) {
            let mut res = String::new();
            caps.expand(&go_template(&repl), &mut res);
            let mut b = s.metric.builder();
            b.set(&dst, &res);
            s.metric = b.build();
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
    }
    check_unique(&v)?;
    Ok(StepVal::Vector(v))
}

/// Go's `$name` expansion takes the longest run of word characters as the
/// group name, as does the regex crate; both accept `${name}`. They agree
/// on everything the scripts use, so the template passes through.
fn go_template(t: &str) -> String {
    t.to_owned()
}

pub(super) fn label_join(ev: &mut Evaluator<'_>, args: &[&Expr], ts: i64) -> Result<StepVal> {
    let dst = string_arg(args, 1)?;
    let sep = string_arg(args, 2)?;
    let mut srcs = Vec::new();
    for i in 3..args.len() {
        let s = string_arg(args, i)?;
        if !is_valid_label_name(&s) {
            return eval_err(format!("invalid source label name in label_join(): {s}"));
        }
        srcs.push(s);
    }
    if !is_valid_label_name(&dst) {
        return eval_err(format!(
            "invalid destination label name in label_join(): {dst}"
        ));
    }
    let mut v = ev.eval_vector(arg(args, 0)?, ts)?;
    for s in &mut v {
        s.t = ts;
        let joined: Vec<&str> = srcs.iter().map(|n| s.metric.get(n).unwrap_or("")).collect();
        let val = joined.join(&sep);
        let mut b = s.metric.builder();
        b.set(&dst, &val);
        s.metric = b.build();
        if dst == METRIC_NAME {
            s.drop_name = false;
        }
    }
    check_unique(&v)?;
    Ok(StepVal::Vector(v))
}
