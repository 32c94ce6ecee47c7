//! Vector-shaping functions: `vector`, `scalar`, `absent`, `timestamp`
//! (columnar), and `sort*` (step-wise: order is what they compute).

use std::cmp::Ordering;

use cairn_model::Labels;

use super::{cols_arg, scalars_arg, vector_arg};
use crate::columns::{Col, StepVal, Value};
use crate::error::Result;
use crate::plan::Steps;
use crate::value::Sample;

/// `vector(s)`: the scalar as a series without labels.
pub(super) fn vector(args: Vec<Value>) -> Result<Value> {
    let v = scalars_arg(&args, 0)?.to_vec();
    let ok = vec![true; v.len()];
    Ok(Value::Vector(vec![Col::floats(
        Labels::empty(),
        false,
        0,
        v,
        ok,
    )]))
}

/// `scalar(v)`: the value of the one float sample at each step, NaN when
/// there is not exactly one.
pub(super) fn scalar(args: Vec<Value>, steps: Steps) -> Result<Value> {
    let cols = cols_arg(args, 0)?;
    let mut seen = vec![0u32; steps.n];
    let mut vals = vec![f64::NAN; steps.n];
    for c in &cols {
        for i in c.start..c.end() {
            if let (Some(f), Some(n), Some(v)) = (c.float(i), seen.get_mut(i), vals.get_mut(i)) {
                *n += 1;
                *v = f;
            }
        }
    }
    for (v, &n) in vals.iter_mut().zip(&seen) {
        if n != 1 {
            *v = f64::NAN;
        }
    }
    Ok(Value::Scalar(vals))
}

/// `absent(v)`: 1, labelled from the selector's equality matchers, at the
/// steps where `v` has no sample.
pub(super) fn absent(labels: &Labels, args: Vec<Value>, steps: Steps) -> Result<Value> {
    let cols = cols_arg(args, 0)?;
    Ok(Value::Vector(vec![absent_of(labels, &cols, steps)]))
}

/// The answer of `absent` and `absent_over_time` over what their argument
/// holds: a series with `labels`, 1 at the steps where no column has a
/// sample.
pub(crate) fn absent_of(labels: &Labels, cols: &[Col], steps: Steps) -> Col {
    let mut ok = vec![true; steps.n];
    for c in cols {
        for (k, &o) in c.ok.iter().enumerate() {
            if let (true, Some(x)) = (o, ok.get_mut(c.start + k)) {
                *x = false;
            }
        }
    }
    Col::floats(labels.clone(), true, 0, vec![1.0; steps.n], ok)
}

/// `timestamp(v)`: the time of each sample in seconds. A selector's
/// samples keep their own timestamps (the selector node already yields
/// them); any other vector's samples carry the evaluation time.
pub(super) fn timestamp(selector: bool, args: Vec<Value>, steps: Steps) -> Result<Value> {
    let mut cols = cols_arg(args, 0)?;
    for c in &mut cols {
        if !selector {
            for (k, v) in c.vals.iter_mut().enumerate() {
                *v = steps.time(c.start + k) as f64 / 1000.0;
            }
        }
        c.hists.clear();
        c.drop = true;
    }
    Ok(Value::Vector(cols))
}

/// Natural ordering: digit runs compare as numbers.
fn natural_less(a: &str, b: &str) -> bool {
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

/// The float samples of the argument at this step, retimed to `ts`.
fn floats_at(args: Vec<StepVal>, ts: i64) -> Result<Vec<Sample>> {
    Ok(vector_arg(args, 0)?
        .into_iter()
        .filter(|s| s.f().is_some())
        .map(|mut s| {
            s.t = ts;
            s
        })
        .collect())
}

/// `sort` and `sort_desc` (NaN last either way).
pub(super) fn sort(desc: bool, args: Vec<StepVal>, ts: i64) -> Result<StepVal> {
    let mut v = floats_at(args, ts)?;
    let fv = |s: &Sample| s.f().unwrap_or(f64::NAN);
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
    Ok(StepVal::Vector(v))
}

/// `sort_by_label` and `sort_by_label_desc`: by the listed labels in
/// natural order, then by the whole label set.
pub(super) fn sort_by_label(
    desc: bool,
    labels: &[String],
    args: Vec<StepVal>,
    ts: i64,
) -> Result<StepVal> {
    let mut v = floats_at(args, ts)?;
    v.sort_by(|a, b| {
        for l in labels {
            let x = a.metric.get(l).unwrap_or("");
            let y = b.metric.get(l).unwrap_or("");
            if x == y {
                continue;
            }
            let o = if natural_less(x, y) {
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
    Ok(StepVal::Vector(v))
}
