//! Range functions (`rate(x[5m])`, `quantile_over_time(0.9, x[1h:1m])`,
//! `absent_over_time(...)`): each series' windows at every step, series by
//! series, on all cores.
//!
//! A series whose row loading computed is taken as is; a float series is
//! evaluated with the same row code loading uses; a series holding native
//! histograms goes window by window through the histogram kernels.

use cairn_model::Labels;

use super::limit::{col_size, hist_size, SeriesCount};
use super::Evaluator;
use crate::columns::{Col, Value};
use crate::error::{eval_err, Result};
use crate::functions::{check_range_params, hist_window, range_fn, HistOut, RangeCtx};
use crate::load::{range_values, Loaded, RangeSpec, RowScratch, Windows, MIN_SERIES_PER_THREAD};
use crate::par::PARTS_PER_THREAD;
use crate::plan::{Extended, Kind, NodeId, RangeFunc, Reach, Steps};
use crate::value::{Annotations, SampleValue};

/// A range vector argument: its series, where it reads and how far back.
pub(super) struct RangeInput {
    pub(super) series: Vec<Loaded>,
    pub(super) reach: Reach,
    pub(super) range: i64,
    /// An `anchored`/`smoothed` range selector's modifier.
    pub(super) extended: Extended,
}

/// The series of a range selector or subquery node.
pub(super) fn input(ev: &mut Evaluator<'_>, id: NodeId) -> Result<RangeInput> {
    let plan = ev.plan;
    match plan.node(id).map(|n| &n.kind) {
        Some(Kind::Matrix { sel, reach, range }) => {
            let extended = plan
                .selections
                .get(sel.index())
                .map_or(Extended::None, |s| s.extended);
            let s = ev.take_selection(*sel)?;
            Ok(RangeInput {
                series: s.series,
                reach: *reach,
                range: *range,
                extended,
            })
        }
        Some(Kind::Subquery {
            inner,
            reach,
            range,
        }) => Ok(RangeInput {
            series: super::subquery::points(ev, *inner)?,
            reach: *reach,
            range: *range,
            extended: Extended::None,
        }),
        _ => eval_err("expected range vector"),
    }
}

/// Range function `f` over `args` (the range vector, then the scalar
/// parameters) at `steps`.
pub(super) fn eval(
    ev: &mut Evaluator<'_>,
    f: RangeFunc,
    args: &[NodeId],
    steps: Steps,
) -> Result<Value> {
    let Some((&m, rest)) = args.split_first() else {
        return eval_err("internal error: range function without a range vector");
    };
    let base = ev.held;
    let mut params: Vec<Vec<f64>> = Vec::with_capacity(rest.len());
    for &p in rest {
        match ev.eval(p)? {
            Value::Scalar(v) => params.push(v),
            other => {
                return eval_err(format!("expected scalar, got {}", other.type_name()));
            }
        }
    }
    let mut step_params = [f64::NAN; 2];
    for i in 0..steps.n {
        for (x, p) in step_params.iter_mut().zip(&params) {
            *x = p.get(i).copied().unwrap_or(f64::NAN);
        }
        check_range_params(
            f,
            step_params.get(..params.len()).unwrap_or(&[]),
            &mut ev.annos,
        )?;
    }
    // Prometheus keeps its parameters counted to the end.
    let params_held = ev.held.saturating_sub(base);
    let input = input(ev, m)?;
    let refs: Vec<(i64, i64)> = steps
        .times()
        .map(|t| (t, input.reach.ref_time(t)))
        .collect();
    let spec = RangeSpec {
        refs: &refs,
        range: input.range,
        func: f,
        f: range_fn(f),
        params: &params,
    };
    // Float series without a row are evaluated on all cores, in
    // contiguous parts a few per thread; histogram series one by one here
    // (their kernels note annotations).
    let mut series = input.series;
    if input.extended != Extended::None {
        // Every series through the extended windows (floats only).
        for s in &mut series {
            if !s.hpoints.is_empty() {
                return super::extended::histograms_refused();
            }
            let row = super::extended::row(
                &s.points,
                f,
                input.extended,
                &refs,
                input.range,
                ev.opts.lookback_delta,
                &params,
                spec.f,
            );
            s.points = Vec::new();
            s.row = Some(row);
        }
    }
    let floats: Vec<usize> = series
        .iter()
        .enumerate()
        .filter(|(_, s)| s.row.is_none() && s.hpoints.is_empty())
        .map(|(i, _)| i)
        .collect();
    if !floats.is_empty() {
        let threads = ev.opts.parallelism.max(1);
        let per = floats
            .len()
            .div_ceil(threads * PARTS_PER_THREAD)
            .max(MIN_SERIES_PER_THREAD / PARTS_PER_THREAD)
            .max(1);
        let parts: Vec<&[usize]> = floats.chunks(per).collect();
        let series_ref = &series;
        let (rows, _) = crate::par::map_ordered_with(
            parts,
            threads,
            PARTS_PER_THREAD,
            |_, _| {},
            |rows: &mut RowScratch, part: &[usize]| {
                part.iter()
                    .map(|&i| {
                        series_ref
                            .get(i)
                            .map(|s| range_values(&s.points, &spec, rows))
                    })
                    .collect::<Vec<_>>()
            },
        );
        for (&i, row) in floats.iter().zip(rows.into_iter().flatten()) {
            if let (Some(s), Some(row)) = (series.get_mut(i), row) {
                s.points = Vec::new();
                s.row = Some(row);
            }
        }
    }
    let mut cols = Vec::with_capacity(series.len());
    let mut flagged: Vec<&Loaded> = Vec::new();
    let mut hist_cols: Vec<(usize, Col, bool, Windows)> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        if s.row.is_none() {
            let (c, any_float, w) = hist_series(s, &spec, &mut ev.annos);
            hist_cols.push((i, c, any_float, w));
        }
    }
    let mut counts = Vec::with_capacity(series.len());
    let keep_name = f.keeps_name();
    let mut hist_cols = hist_cols.into_iter().peekable();
    for (i, s) in series.iter_mut().enumerate() {
        let drop = if keep_name { s.drop_name } else { true };
        if let Some(row) = s.row.take() {
            if row.any {
                flagged.push(s);
            }
            counts.push(SeriesCount {
                windows: row.windows,
                out: match (ev.one_step, row.start) {
                    (true, 0) => usize::from(row.ok.first().copied().unwrap_or(false)),
                    (true, _) => 0,
                    (false, _) => row.ok.iter().filter(|&&o| o).count(),
                },
            });
            cols.push(Col::floats(
                s.labels.clone(),
                drop,
                row.start,
                row.vals,
                row.ok,
            ));
        } else if let Some((_, mut c, any_float, windows)) =
            hist_cols.next_if(|(k, _, _, _)| *k == i)
        {
            if any_float {
                flagged.push(s);
            }
            counts.push(SeriesCount {
                windows,
                out: col_size(&c, ev.one_step),
            });
            c.labels = s.labels.clone();
            c.drop = drop;
            cols.push(c);
        }
    }
    ev.count_range(base, params_held, counts.into_iter())?;
    if f.is_counter() {
        counter_infos(&mut ev.annos, flagged.into_iter());
    }
    Ok(Value::Vector(cols))
}

/// `absent_over_time`: 1, labelled from the selector's equality matchers,
/// at the steps where no series has a sample in its window.
pub(super) fn absent_over_time(
    ev: &mut Evaluator<'_>,
    labels: &Labels,
    args: &[NodeId],
    steps: Steps,
) -> Result<Value> {
    let Value::Vector(present) = eval(ev, RangeFunc::PresentOverTime, args, steps)? else {
        return eval_err("internal error: present_over_time gave no vector");
    };
    Ok(Value::Vector(vec![crate::functions::absent_of(
        labels, &present, steps,
    )]))
}

/// A series with native histograms, window by window; also whether a
/// float window gave a value (for the counter infos), and what its
/// windows held (a histogram weighs its size).
fn hist_series(s: &Loaded, spec: &RangeSpec<'_>, annos: &mut Annotations) -> (Col, bool, Windows) {
    let n = spec.refs.len();
    let mut c = Col {
        vals: vec![0.0; n],
        ok: vec![false; n],
        hists: vec![None; n],
        ..Col::default()
    };
    let (pts, hpts) = (&s.points, &s.hpoints);
    let (mut a, mut b, mut ha, mut hb) = (0usize, 0usize, 0usize, 0usize);
    let mut any_float = false;
    let mut windows = Windows::default();
    // The summed sizes of the histograms in `ha..hb`.
    let mut hsize = 0usize;
    let mut scalars = [0.0f64; 2];
    let np = spec.params.len().min(scalars.len());
    for (i, &(ts, hi)) in spec.refs.iter().enumerate() {
        let lo = hi - spec.range;
        while pts.get(a).is_some_and(|p| p.t <= lo) {
            a += 1;
        }
        b = b.max(a);
        while pts.get(b).is_some_and(|p| p.t <= hi) {
            b += 1;
        }
        while let Some(p) = hpts.get(ha).filter(|p| p.t <= lo) {
            if ha < hb {
                hsize -= hist_size(&p.h);
            }
            ha += 1;
        }
        hb = hb.max(ha);
        while let Some(p) = hpts.get(hb).filter(|p| p.t <= hi) {
            hsize += hist_size(&p.h);
            hb += 1;
        }
        let w = pts.get(a..b).unwrap_or(&[]);
        let hw = hpts.get(ha..hb).unwrap_or(&[]);
        let held = w.len() + hsize;
        windows.max = windows.max.max(held);
        if i + 1 == n {
            windows.last = held;
        }
        if w.is_empty() && hw.is_empty() {
            continue;
        }
        for (x, p) in scalars.iter_mut().zip(spec.params) {
            *x = p.get(i).copied().unwrap_or(f64::NAN);
        }
        let ctx = RangeCtx {
            ts,
            lo,
            hi,
            range: spec.range,
            scalars: scalars.get(..np).unwrap_or(&[]),
        };
        let float = |w| (spec.f)(w, &ctx).map(SampleValue::Float);
        let value = if hw.is_empty() {
            float(w)
        } else {
            match hist_window(spec.func, w, hw, &ctx, annos, &s.labels) {
                HistOut::Nothing => None,
                HistOut::Value(v) => Some(v),
                HistOut::Floats => float(w),
            }
        };
        let Some(value) = value else {
            continue;
        };
        if !w.is_empty() {
            any_float = true;
        }
        if let (Some(v), Some(o), Some(h)) =
            (c.vals.get_mut(i), c.ok.get_mut(i), c.hists.get_mut(i))
        {
            *o = true;
            match value {
                SampleValue::Float(f) => *v = f,
                SampleValue::Histogram(x) => *h = Some(x),
            }
        }
    }
    if !c.has_hists() {
        c.hists.clear();
    }
    (c, any_float, windows)
}

/// The infos `rate`/`increase` give for series with a value whose name
/// does not look like a counter's, in series order.
///
/// A selection's series mostly share one name, so each name is formatted
/// once: names are told apart by the hash taken at load, and only a
/// series with a name not seen yet has its labels read here.
fn counter_infos<'d>(annos: &mut Annotations, flagged: impl Iterator<Item = &'d Loaded>) {
    let mut last = None;
    let mut done = std::collections::HashSet::new();
    for s in flagged.filter(|s| s.non_counter_name) {
        if last == Some(s.name_hash) {
            continue;
        }
        last = Some(s.name_hash);
        if !done.insert(s.name_hash) {
            continue;
        }
        let m = s.labels.metric_name().unwrap_or("");
        annos.info(format!(
            "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {m:?}"
        ));
    }
}
