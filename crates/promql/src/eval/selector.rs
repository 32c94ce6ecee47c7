//! Instant vector selectors: each series' sample at every step, from the
//! rows loading computed or from the kept points.

use cairn_model::is_stale_nan;

use super::Evaluator;
use crate::columns::{Col, Value};
use crate::error::Result;
use crate::load::{instant_row, Loaded, MIN_SERIES_PER_THREAD};
use crate::plan::{Extended, Reach, SelId, Steps};

/// The selector of selection `sel` read at `reach` over `steps`; with
/// `time`, the samples' timestamps in seconds instead of their values.
pub(super) fn eval(
    ev: &mut Evaluator<'_>,
    sel: SelId,
    reach: Reach,
    time: bool,
    steps: Steps,
) -> Result<Value> {
    let smoothed = ev
        .plan
        .selections
        .get(sel.0 as usize)
        .is_some_and(|s| s.extended == Extended::Smoothed);
    let data = ev.take_selection(sel)?;
    let refs: Vec<i64> = steps.times().map(|t| reach.ref_time(t)).collect();
    if smoothed {
        return smoothed_cols(data, &refs, ev.opts.lookback_delta, time);
    }
    // The selection's lookback (longer than the engine's where it reads a
    // downsampled level).
    let lookback = ev
        .plan
        .selections
        .get(sel.0 as usize)
        .map_or(ev.opts.lookback_delta, |s| s.reach);
    let all_rows = data.series.iter().all(|s| s.row.is_some());
    let fill = |s: Loaded| -> Col {
        let Loaded {
            labels,
            points,
            hpoints,
            drop_name,
            row,
            ..
        } = s;
        if let Some(r) = row {
            return Col::floats(labels, drop_name, r.start, r.vals, r.ok);
        }
        if hpoints.is_empty() {
            let (r, _) = instant_row(&points, &refs, lookback, time);
            return Col::floats(labels, drop_name, r.start, r.vals, r.ok);
        }
        let mut c = mixed(&points, &hpoints, &refs, lookback, time);
        c.labels = labels;
        c.drop = drop_name;
        c
    };
    let cols: Vec<Col> = if all_rows {
        data.series.into_iter().map(fill).collect()
    } else {
        crate::par::map_ordered(
            data.series,
            ev.opts.parallelism,
            MIN_SERIES_PER_THREAD,
            fill,
        )
    };
    Ok(Value::Vector(cols))
}

/// The column of a series holding native histograms: at each step the
/// newest sample, float or histogram, inside the lookback and not a stale
/// marker.
fn mixed(
    points: &[crate::value::FPoint],
    hpoints: &[crate::value::HPoint],
    refs: &[i64],
    lookback: i64,
    time: bool,
) -> Col {
    let n = refs.len();
    let mut c = Col {
        vals: vec![0.0; n],
        ok: vec![false; n],
        hists: if time { Vec::new() } else { vec![None; n] },
        ..Col::default()
    };
    let (mut j, mut hj) = (0usize, 0usize);
    for (i, &rt) in refs.iter().enumerate() {
        // Reference times never decrease: the cursors only move on.
        while points.get(j).is_some_and(|p| p.t <= rt) {
            j += 1;
        }
        while hpoints.get(hj).is_some_and(|p| p.t <= rt) {
            hj += 1;
        }
        let p = j.checked_sub(1).and_then(|k| points.get(k));
        let hp = hj.checked_sub(1).and_then(|k| hpoints.get(k));
        let (t, hist, f) = match (p, hp) {
            (Some(p), Some(h)) if h.t > p.t => (h.t, Some(h.h.clone()), 0.0),
            (Some(p), _) => (p.t, None, p.f),
            (None, Some(h)) => (h.t, Some(h.h.clone()), 0.0),
            (None, None) => continue,
        };
        if t <= rt - lookback || (hist.is_none() && is_stale_nan(f)) {
            continue;
        }
        let (Some(v), Some(o)) = (c.vals.get_mut(i), c.ok.get_mut(i)) else {
            continue;
        };
        *o = true;
        if time {
            *v = t as f64 / 1000.0;
        } else {
            *v = f;
            if let Some(h) = c.hists.get_mut(i) {
                *h = hist;
            }
        }
    }
    if !c.has_hists() {
        c.hists.clear();
    }
    c
}

/// A `smoothed` instant selector (see `extended.rs`); with `time`, the
/// step's reference time in seconds where it has a value.
fn smoothed_cols(
    data: crate::load::Selected,
    refs: &[i64],
    lookback: i64,
    time: bool,
) -> Result<Value> {
    let mut cols = Vec::with_capacity(data.series.len());
    for s in data.series {
        if !s.hpoints.is_empty() {
            return super::extended::histograms_refused();
        }
        let n = refs.len();
        let (mut vals, mut ok) = (vec![0.0; n], vec![false; n]);
        for (k, &r) in refs.iter().enumerate() {
            if let Some(v) = super::extended::smoothed_at(&s.points, r, lookback) {
                if let (Some(x), Some(o)) = (vals.get_mut(k), ok.get_mut(k)) {
                    *x = if time { r as f64 / 1000.0 } else { v };
                    *o = true;
                }
            }
        }
        cols.push(Col::floats(s.labels, s.drop_name, 0, vals, ok));
    }
    Ok(Value::Vector(cols))
}
