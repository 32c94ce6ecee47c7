//! `info(v, selector)`: each series of `v` with the data labels of the
//! info series (`target_info` unless the selector names others) that
//! share its identifying labels, `instance` and `job`, as Prometheus
//! v3.8's experimental function computes it.
//!
//! Contracts, step by step (steps are independent):
//! - An info series is looked up as an instant selector is (newest
//!   sample in the lookback window, a stale marker ends it), at the time
//!   the base's first selector reads (`@` and offset applied; see
//!   `plan/compile/info.rs` for how Prometheus differs); a native
//!   histogram sample there fails the query.
//! - Info series are matched to a base series by metric name plus the
//!   identifying labels each has (a label one lacks must be missing on
//!   the other too), and only those whose identifying labels take values
//!   some base series has count. Of two info series of one name with the
//!   same identifying labels, the one with the newer sample wins; equal
//!   times fail the query.
//! - Data labels are every label of the matched info series but its name
//!   (only those the selector names, when it names some); a label the
//!   base series has is kept as it is, and two info series giving one
//!   label different values fail the query.
//! - A base series no info series matches stays as it is, unless a data
//!   matcher does not match the empty value: then it is dropped at that
//!   step. Base series that are info series themselves are left alone.
//! - One output label set twice at one step fails the query.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cairn_model::{FloatHistogram, Labels, Matcher, METRIC_NAME};

use crate::columns::{Col, Value};
use crate::error::{eval_err, Result};
use crate::load::{Loaded, Selected};
use crate::plan::{InfoCall, Steps};
use crate::value::SampleValue;

/// The labels that identify the target an info series describes.
const IDENTIFYING: [&str; 2] = ["instance", "job"];

/// A series' identifying label values ("" where it has none).
type Ids<'a> = [&'a str; 2];

fn ids(l: &Labels) -> Ids<'_> {
    IDENTIFYING.map(|n| l.get(n).unwrap_or(""))
}

fn name_matches(ms: &[Matcher], l: &Labels) -> bool {
    let name = l.metric_name().unwrap_or("");
    !ms.is_empty() && ms.iter().all(|m| m.matches(name))
}

/// An info series' newest sample time at each reference time (ascending),
/// if it has one there.
fn sample_times(s: &Loaded, refs: &[i64], lookback: i64) -> Result<Vec<Option<i64>>> {
    let (mut j, mut hj) = (0usize, 0usize);
    let mut out = Vec::with_capacity(refs.len());
    for &ts in refs {
        while s.points.get(j).is_some_and(|p| p.t <= ts) {
            j += 1;
        }
        while s.hpoints.get(hj).is_some_and(|p| p.t <= ts) {
            hj += 1;
        }
        let p = j.checked_sub(1).and_then(|k| s.points.get(k));
        let h = hj.checked_sub(1).and_then(|k| s.hpoints.get(k));
        let newest = match (p, h) {
            (Some(p), Some(h)) if h.t > p.t => Err(h.t),
            (Some(p), _) => Ok(p),
            (None, Some(h)) => Err(h.t),
            (None, None) => {
                out.push(None);
                continue;
            }
        };
        out.push(match newest {
            Ok(p) if p.t > ts - lookback && !cairn_model::is_stale_nan(p.f) => Some(p.t),
            Ok(_) => None,
            Err(t) if t > ts - lookback => return eval_err("info sample should be float"),
            Err(_) => None,
        });
    }
    Ok(out)
}

/// One output series being gathered.
struct Out {
    labels: Labels,
    drop: bool,
    vals: Vec<f64>,
    ok: Vec<bool>,
    hists: Vec<Option<Arc<FloatHistogram>>>,
}

/// Evaluates the call over `steps` from its base's value and the info
/// selection.
pub(super) fn eval(
    call: &InfoCall,
    base: Value,
    info: Selected,
    steps: Steps,
    lookback: i64,
) -> Result<Value> {
    let Value::Vector(base) = base else {
        return eval_err(format!(
            "info(): expected instant vector, got {}",
            base.type_name()
        ));
    };
    let ignored: Vec<bool> = base
        .iter()
        .map(|c| name_matches(&call.info_names, &c.labels))
        .collect();
    // The identifying values the base holds, per label.
    let mut wanted: [HashSet<&str>; 2] = Default::default();
    for (c, _) in base.iter().zip(&ignored).filter(|(_, i)| !**i) {
        for (set, v) in wanted.iter_mut().zip(ids(&c.labels)) {
            if !v.is_empty() {
                set.insert(v);
            }
        }
    }
    let any_wanted = wanted.iter().any(|s| !s.is_empty());
    let infos: Vec<&Loaded> = info
        .series
        .iter()
        .filter(|s| {
            any_wanted
                && wanted
                    .iter()
                    .zip(ids(&s.labels))
                    .all(|(set, v)| set.is_empty() || set.contains(v))
        })
        .collect();
    let refs: Vec<i64> = steps.times().map(|t| call.reach.ref_time(t)).collect();
    let times = infos
        .iter()
        .map(|s| sample_times(s, &refs, lookback))
        .collect::<Result<Vec<_>>>()?;
    let info_names: BTreeSet<&str> = infos
        .iter()
        .map(|s| s.labels.metric_name().unwrap_or(""))
        .collect();
    let data_names: HashSet<&str> = call.data.iter().map(|m| m.name.as_str()).collect();
    let keep_unmatched = call.data.iter().all(Matcher::matches_empty);
    let has_hists = base.iter().any(Col::has_hists);

    let mut out: Vec<Out> = Vec::new();
    let mut index: HashMap<Labels, (usize, usize)> = HashMap::new();
    for i in 0..steps.n {
        // The info sample each (name, identifying values) stands for.
        let mut by_sig: HashMap<(&str, Ids<'_>), (usize, i64)> = HashMap::new();
        for (k, (s, t)) in infos.iter().zip(&times).enumerate() {
            let Some(Some(t)) = t.get(i).copied() else {
                continue;
            };
            let sig = (s.labels.metric_name().unwrap_or(""), ids(&s.labels));
            match by_sig.get(&sig) {
                Some(&(_, old)) if old > t => {}
                Some(&(o, old)) if old == t => {
                    let existing = infos.get(o).map(|x| x.labels.to_string());
                    return eval_err(format!(
                        "found duplicate series for info metric: existing {} @ {old}, new {} @ {t}",
                        existing.unwrap_or_default(),
                        s.labels
                    ));
                }
                _ => {
                    by_sig.insert(sig, (k, t));
                }
            }
        }
        for (c, &skip) in base.iter().zip(&ignored) {
            let Some(v) = c.value(i) else {
                continue;
            };
            let labels = if skip {
                c.labels.clone()
            } else {
                let base_ids = ids(&c.labels);
                let mut added: Vec<(&str, &str)> = Vec::new();
                let mut matched = false;
                for name in &info_names {
                    let Some(&(k, _)) = by_sig.get(&(*name, base_ids)) else {
                        continue;
                    };
                    matched = true;
                    let Some(is) = infos.get(k) else { continue };
                    for l in is.labels.iter() {
                        if l.name == METRIC_NAME
                            || (!data_names.is_empty() && !data_names.contains(l.name))
                        {
                            continue;
                        }
                        if let Some((_, v)) = added.iter().find(|(n, _)| *n == l.name) {
                            if *v != l.value {
                                return eval_err(format!("conflicting label: {}", l.name));
                            }
                        }
                        if c.labels.has(l.name) || added.iter().any(|(n, _)| *n == l.name) {
                            continue;
                        }
                        added.push((l.name, l.value));
                    }
                }
                if !matched && !keep_unmatched {
                    continue;
                }
                if added.is_empty() {
                    c.labels.clone()
                } else {
                    let mut b = c.labels.builder();
                    for (n, v) in &added {
                        b.set(n, v);
                    }
                    b.build()
                }
            };
            let n = steps.n;
            let slot = match index.get(&labels) {
                Some(&(slot, last)) => {
                    if last == i {
                        return eval_err("vector cannot contain metrics with the same labelset");
                    }
                    slot
                }
                None => {
                    out.push(Out {
                        labels: labels.clone(),
                        drop: c.drop,
                        vals: vec![0.0; n],
                        ok: vec![false; n],
                        hists: if has_hists { vec![None; n] } else { Vec::new() },
                    });
                    out.len() - 1
                }
            };
            index.insert(labels, (slot, i));
            let Some(o) = out.get_mut(slot) else { continue };
            if let (Some(cell), Some(ok)) = (o.vals.get_mut(i), o.ok.get_mut(i)) {
                *ok = true;
                match v {
                    SampleValue::Float(f) => *cell = f,
                    SampleValue::Histogram(h) => {
                        if let Some(hc) = o.hists.get_mut(i) {
                            *hc = Some(h);
                        }
                    }
                }
            }
        }
    }
    Ok(Value::Vector(
        out.into_iter()
            .map(|o| Col {
                labels: o.labels,
                drop: o.drop,
                start: 0,
                vals: o.vals,
                ok: o.ok,
                hists: o.hists,
            })
            .collect(),
    ))
}
