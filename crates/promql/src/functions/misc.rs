//! Vector-shaping functions: `sort*`, `timestamp`, `absent`.

use std::cmp::Ordering;

use cairn_model::{Labels, LabelsBuilder, METRIC_NAME};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

use super::{arg, string_arg};
use crate::error::Result;
use crate::eval::{unparen, Evaluator, StepVal};
use crate::value::{Sample, SampleValue};

/// Labels for `absent()`: equality matchers, except names matched twice.
pub(crate) fn absent_labels(vs: &VectorSelector) -> Labels {
    let mut b = LabelsBuilder::new();
    let mut seen: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, MatchOp::Equal) && !seen.contains(&m.name.as_str()) {
            b.set(&m.name, &m.value);
            seen.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

pub(super) fn absent(ev: &mut Evaluator<'_>, args: &[&Expr], ts: i64) -> Result<StepVal> {
    let a = arg(args, 0)?;
    let v = ev.eval_vector(a, ts)?;
    if !v.is_empty() {
        return Ok(StepVal::Vector(Vec::new()));
    }
    let labels = match unparen(a) {
        Expr::VectorSelector(vs) => absent_labels(vs),
        _ => Labels::empty(),
    };
    Ok(StepVal::Vector(vec![Evaluator::sample(
        labels, ts, 1.0, true,
    )]))
}

pub(super) fn timestamp(ev: &mut Evaluator<'_>, args: &[&Expr], ts: i64) -> Result<StepVal> {
    let a = arg(args, 0)?;
    let v = match unparen(a) {
        Expr::VectorSelector(vs) => ev.vector_selector(vs, ts, true)?,
        _ => ev.eval_vector(a, ts)?,
    };
    Ok(StepVal::Vector(
        v.into_iter()
            .map(|s| Sample {
                metric: s.metric,
                t: ts,
                value: SampleValue::Float(s.t as f64 / 1000.0),
                drop_name: true,
            })
            .collect(),
    ))
}

/// Natural ordering: digit runs compare as numbers.
pub(crate) fn natural_less(a: &str, b: &str) -> bool {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            let boundary = i == bytes.len()
                || bytes.get(i).is_some_and(|c| c.is_ascii_digit())
                    != bytes.get(i - 1).is_some_and(|c| c.is_ascii_digit());
            if boundary {
                if let Some(c) = s.get(start..i) {
                    out.push(c);
                }
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(cb.iter()) {
        if x == y {
            continue;
        }
        let xd = x.bytes().all(|c| c.is_ascii_digit());
        let yd = y.bytes().all(|c| c.is_ascii_digit());
        if xd && yd {
            if let (Ok(xi), Ok(yi)) = (x.parse::<u128>(), y.parse::<u128>()) {
                if xi != yi {
                    return xi < yi;
                }
                continue;
            }
        }
        return x < y;
    }
    ca.len() < cb.len()
}

pub(super) fn sort(ev: &mut Evaluator<'_>, name: &str, args: &[&Expr], ts: i64) -> Result<StepVal> {
    let mut v: Vec<Sample> = ev
        .eval_vector(arg(args, 0)?, ts)?
        .into_iter()
        .filter(|s| s.f().is_some())
        .map(|mut s| {
            s.t = ts;
            s
        })
        .collect();
    let fv = |s: &Sample| s.f().unwrap_or(f64::NAN);
    match name {
        "sort" | "sort_desc" => {
            let desc = name == "sort_desc";
            v.sort_by(|a, b| {
                let (x, y) = (fv(a), fv(b));
                match (x.is_nan(), y.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    _ => {
                        let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                        if desc {
                            o.reverse()
                        } else {
                            o
                        }
                    }
                }
            });
        }
        _ => {
            let desc = name == "sort_by_label_desc";
            let mut labels = Vec::new();
            for i in 1..args.len() {
                labels.push(string_arg(args, i)?);
            }
            v.sort_by(|a, b| {
                for l in &labels {
                    let x = a.metric.get(l).unwrap_or("");
                    let y = b.metric.get(l).unwrap_or("");
                    if x == y {
                        continue;
                    }
                    let less = natural_less(x, y);
                    let o = if less {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    };
                    return if desc { o.reverse() } else { o };
                }
                let o = a.metric.cmp(&b.metric);
                if desc {
                    o.reverse()
                } else {
                    o
                }
            });
        }
    }
    Ok(StepVal::Vector(v))
}
