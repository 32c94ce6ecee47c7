//! Comparing a query's outcome with an eval command's expectations.

use std::collections::HashMap;

use cairn_model::Labels;

use cairn_promql::{Annotations, QueryResult, QueryValue, Result, Sample, SampleValue};

use crate::almost_equal;
use crate::script::{EvalCmd, Expect};
use crate::series::SeqValue;

const EPSILON: f64 = 0.000001;

fn check_annos(ev: &EvalCmd, a: &Annotations) -> std::result::Result<(), String> {
    if ev.warn && a.warnings.is_empty() {
        return Err("expected warnings but got none".into());
    }
    if ev.info && a.infos.is_empty() {
        return Err("expected info annotations but got none".into());
    }
    let kinds: [(&[Expect], &[String], &str); 2] = [
        (&ev.expect_warn, &a.warnings, "warn"),
        (&ev.expect_info, &a.infos, "info"),
    ];
    for (exp, got, kind) in kinds {
        if exp.is_empty() {
            continue;
        }
        if got.is_empty() {
            return Err(format!("expected {kind} annotations but none were found"));
        }
        for e in exp {
            if !got.iter().any(|g| e.matches(g)) {
                return Err(format!(
                    "expected {kind} annotation {e:?} not found, got {got:?}"
                ));
            }
        }
        for g in got {
            if !exp.iter().any(|e| e.matches(g)) {
                return Err(format!("unexpected {kind} annotation {g:?}"));
            }
        }
    }
    if ev.no_warn && !a.warnings.is_empty() {
        return Err(format!("unexpected warnings: {:?}", a.warnings));
    }
    if ev.no_info && !a.infos.is_empty() {
        return Err(format!("unexpected infos: {:?}", a.infos));
    }
    Ok(())
}

fn fmt_vals(v: &[(i64, f64)]) -> String {
    v.iter()
        .map(|(t, f)| format!("{f} @[{t}]"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Checks `r` against `ev`. `range_mode` is the re-run of an instant eval
/// as a range query: only the middle step's values are compared.
pub(super) fn check(
    ev: &EvalCmd,
    r: Result<QueryResult>,
    range_mode: bool,
    at: i64,
) -> std::result::Result<(), String> {
    let res = match r {
        Err(e) => {
            if ev.fail && !range_mode {
                if let Some(x) = &ev.fail_expect {
                    if !x.matches(&e.to_string()) {
                        return Err(format!("expected error matching {x:?}, got: {e}"));
                    }
                }
                return Ok(());
            }
            return Err(format!("error evaluating query: {e}"));
        }
        Ok(res) => res,
    };
    if ev.fail {
        return Err("expected an error but got none".into());
    }
    if !range_mode {
        check_annos(ev, &res.annotations)?;
    }
    if range_mode {
        let QueryValue::Matrix(m) = res.value else {
            return Err("range query did not return a matrix".into());
        };
        let t = at;
        if ev.expect_scalar.is_some() {
            let v = m
                .first()
                .and_then(|s| s.floats.iter().find(|p| p.t == t))
                .map(|p| p.f)
                .unwrap_or(f64::NAN);
            return compare_value(ev, QueryValue::Scalar { t, v });
        }
        let mut vec = Vec::new();
        for s in m {
            let value = if let Some(p) = s.floats.iter().find(|p| p.t == t) {
                SampleValue::Float(p.f)
            } else if let Some(p) = s.histograms.iter().find(|p| p.t == t) {
                SampleValue::Histogram(p.h.clone())
            } else {
                continue;
            };
            vec.push(Sample {
                metric: s.metric,
                t,
                value,
                drop_name: false,
            });
        }
        return compare_value(ev, QueryValue::Vector(vec));
    }
    compare_value(ev, res.value)
}

fn compare_value(ev: &EvalCmd, v: QueryValue) -> std::result::Result<(), String> {
    let expected: HashMap<&Labels, (usize, &Vec<SeqValue>)> = ev
        .expected
        .iter()
        .enumerate()
        .map(|(i, (l, v))| (l, (i + 1, v)))
        .collect();
    match v {
        QueryValue::String { v, .. } => match &ev.expected_string {
            Some(s) if *s == v => Ok(()),
            Some(s) => Err(format!("expected string {s:?} but got {v:?}")),
            None => Err(format!("unexpected string result {v:?}")),
        },
        QueryValue::Scalar { v, .. } => match ev.expect_scalar {
            Some(e) if almost_equal(e, v, EPSILON) => Ok(()),
            Some(e) => Err(format!("expected scalar {e} but got {v}")),
            None => Err(format!(
                "expected vector or matrix result, but got scalar {v}"
            )),
        },
        QueryValue::Vector(vec) => {
            if let Some(e) = ev.expect_scalar {
                return Err(format!(
                    "expected scalar {e}, got a vector of {} samples",
                    vec.len()
                ));
            }
            if ev.range_vector {
                return Err("expected a range vector, got an instant vector".into());
            }
            let mut seen = 0;
            for (pos, s) in vec.iter().enumerate() {
                let Some((epos, vals)) = expected.get(&s.metric) else {
                    return Err(format!(
                        "unexpected metric {} in result, has value {:?}",
                        s.metric, s.value
                    ));
                };
                if ev.ordered && *epos != pos + 1 {
                    return Err(format!(
                        "expected metric {} at position {epos} but was at {}",
                        s.metric,
                        pos + 1
                    ));
                }
                match (vals.first(), &s.value) {
                    (Some(SeqValue::Value(want)), SampleValue::Float(got)) => {
                        if !almost_equal(*want, *got, EPSILON) {
                            return Err(format!("expected {want} for {} but got {got}", s.metric));
                        }
                    }
                    (Some(SeqValue::Histogram(want)), SampleValue::Histogram(got)) => {
                        if !want.approx_eq(got, |a, b| almost_equal(a, b, EPSILON)) {
                            return Err(format!(
                                "expected {} for {} but got {}",
                                want.test_expression(),
                                s.metric,
                                got.test_expression()
                            ));
                        }
                    }
                    (Some(SeqValue::Value(want)), SampleValue::Histogram(got)) => {
                        return Err(format!(
                            "expected float value {want} for {} but got histogram {}",
                            s.metric,
                            got.test_expression()
                        ))
                    }
                    (Some(SeqValue::Histogram(want)), SampleValue::Float(got)) => {
                        return Err(format!(
                            "expected histogram {} for {} but got float value {got}",
                            want.test_expression(),
                            s.metric
                        ))
                    }
                    _ => return Err(format!("no expected value for {}", s.metric)),
                }
                seen += 1;
            }
            if seen != expected.len() {
                for (l, _) in &ev.expected {
                    if !vec.iter().any(|s| &s.metric == l) {
                        return Err(format!("expected metric {l} not found"));
                    }
                }
                return Err("duplicate series in result".into());
            }
            Ok(())
        }
        QueryValue::Matrix(m) => {
            if ev.ordered {
                return Err("expected ordered result, but query returned a matrix".into());
            }
            if let Some(e) = ev.expect_scalar {
                return Err(format!("expected scalar {e}, got a matrix"));
            }
            for w in m.windows(2) {
                if let [a, b] = w {
                    if a.metric > b.metric {
                        return Err(format!(
                            "matrix not sorted: {} before {}",
                            a.metric, b.metric
                        ));
                    }
                }
            }
            let mut seen = 0;
            for s in &m {
                let Some((_, vals)) = expected.get(&s.metric) else {
                    return Err(format!("unexpected metric {} in result", s.metric));
                };
                let mut want = Vec::new();
                let mut want_h = Vec::new();
                for (i, v) in vals.iter().enumerate() {
                    let t = ev.start + i as i64 * ev.step;
                    if t > ev.end {
                        return Err(format!("expected {} points for {}, but query time range cannot return this many points", vals.len(), s.metric));
                    }
                    match v {
                        SeqValue::Value(f) => want.push((t, *f)),
                        SeqValue::Histogram(h) => want_h.push((t, h)),
                        SeqValue::Omitted => {}
                    }
                }
                if want_h.len() != s.histograms.len() {
                    return Err(format!(
                        "expected {} float points and {} histogram points for {}, got {} and {}",
                        want.len(),
                        want_h.len(),
                        s.metric,
                        s.floats.len(),
                        s.histograms.len()
                    ));
                }
                for ((wt, wh), g) in want_h.iter().zip(s.histograms.iter()) {
                    if *wt != g.t || !wh.approx_eq(&g.h, |a, b| almost_equal(a, b, EPSILON)) {
                        return Err(format!(
                            "expected histogram {} @[{wt}] for {}, got {} @[{}]",
                            wh.test_expression(),
                            s.metric,
                            g.h.test_expression(),
                            g.t
                        ));
                    }
                }
                let got: Vec<(i64, f64)> = s.floats.iter().map(|p| (p.t, p.f)).collect();
                if want.len() != got.len() {
                    return Err(format!(
                        "expected {} points for {}, got {}: [{}]",
                        want.len(),
                        s.metric,
                        got.len(),
                        fmt_vals(&got)
                    ));
                }
                for ((wt, wf), (gt, gf)) in want.iter().zip(got.iter()) {
                    if wt != gt || !almost_equal(*wf, *gf, EPSILON) {
                        return Err(format!(
                            "expected {wf} @[{wt}] for {}, got [{}]",
                            s.metric,
                            fmt_vals(&got)
                        ));
                    }
                }
                seen += 1;
            }
            if seen != expected.len() {
                for (l, _) in &ev.expected {
                    if !m.iter().any(|s| &s.metric == l) {
                        return Err(format!("expected metric {l} not found"));
                    }
                }
            }
            Ok(())
        }
    }
}
