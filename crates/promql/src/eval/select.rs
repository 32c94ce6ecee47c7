//! Planning and loading selector data, and instant-selector lookups.
//!
//! Planning walks the expression with the span of evaluation times each node
//! is evaluated at (the query's steps, or a subquery's aligned inner grid),
//! records the sample range every selector needs, opens ONE querier covering
//! all of them and reads each selector's series into memory once.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use cairn_model::{is_stale_nan, MatchType, Matcher};
use cairn_storage::{Prefetch, Queryable, SelectHints, Series, ValueType};
use promql_parser::label::MatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};

use super::rows::{instant_row, row_of, Consumer, RangeSpec, Row, RowScratch};
use super::{node_id, offset_ms, system_time_ms, Evaluator, Loaded};
use crate::error::{PromqlError, Result};
use crate::value::{FPoint, HPoint, Sample, SampleValue, Vector};

/// What one selector needs from storage.
struct Req<'e> {
    vs: &'e VectorSelector,
    mint: i64,
    maxt: i64,
    matrix: bool,
    range: i64,
    func: Option<String>,
    /// The evaluation grid the selector is read at: `first + k * step`
    /// up to `last`; a single time when `step` is 0.
    grid: Grid,
}

/// Evaluation times of one selector.
#[derive(Clone, Copy)]
struct Grid {
    first: i64,
    last: i64,
    step: i64,
}

impl Grid {
    fn new(lo: i64, hi: i64, step: i64) -> Self {
        let step = if lo == hi { 0 } else { step.max(0) };
        Self {
            first: lo,
            last: hi,
            step,
        }
    }

    /// The first grid time at or after `t`, if any.
    fn ceil(&self, t: i64) -> Option<i64> {
        if t <= self.first {
            return Some(self.first);
        }
        if self.step == 0 {
            return None;
        }
        let k = (t - self.first + self.step - 1) / self.step;
        let g = self.first.checked_add(k.checked_mul(self.step)?)?;
        (g <= self.last).then_some(g)
    }
}

/// Keeps only the samples some evaluation can see: for instant selectors
/// the last sample before each grid time (within lookback), for range
/// selectors the samples inside some window. Keeps long, coarse-stepped
/// range queries from holding every raw sample in memory.
struct Thinner {
    grid: Grid,
    matrix: bool,
    /// Window length: the range, or the lookback delta.
    reach: i64,
    last_grid: Option<i64>,
}

impl Thinner {
    /// `grid.ceil(t)` for increasing `t`: reuses or steps on from the
    /// previous answer (a few samples fall to each grid time), dividing
    /// only when `t` jumped further.
    fn ceil(&mut self, t: i64) -> Option<i64> {
        let step = self.grid.step;
        if let (Some(g), true) = (self.last_grid, step > 0) {
            if t <= g && (g == self.grid.first || t > g - step) {
                return Some(g);
            }
            if let Some(n) = g.checked_add(step).filter(|&n| t > g && t <= n) {
                return (n <= self.grid.last).then_some(n);
            }
        }
        self.grid.ceil(t)
    }

    /// Pushes the float samples of `src` (in time order) that some
    /// evaluation can see; stale markers are dropped for range selectors.
    /// Whether this thinner keeps whole runs of samples (range selectors
    /// whose windows leave no gaps): what [`Thinner::convert`] handles.
    fn keeps_runs(&self) -> bool {
        self.matrix && (self.grid.step == 0 || self.reach >= self.grid.step)
    }

    /// The span `(lo, hi]` the windows of a [`Thinner::keeps_runs`]
    /// thinner cover.
    fn run_span(&self) -> (i64, i64) {
        let g = self.grid;
        let lo = g.first.saturating_sub(self.reach);
        // The last grid time (`last` bounds the grid, it need not be on it).
        let hi = if g.step > 0 && g.last > g.first {
            g.first + (g.last - g.first) / g.step * g.step
        } else {
            g.first
        };
        (lo, hi)
    }

    /// What [`Thinner::extend`] would push onto an empty vector, for a
    /// [`Thinner::keeps_runs`] thinner, made in place from `src`.
    fn convert(&mut self, src: Vec<cairn_model::Sample>) -> Vec<FPoint> {
        let (lo, hi) = self.run_span();
        src.into_iter()
            .filter(|s| s.t > lo && s.t <= hi && !is_stale_nan(s.v))
            .map(|s| FPoint { t: s.t, f: s.v })
            .collect()
    }

    fn extend(&mut self, pts: &mut Vec<FPoint>, src: &[cairn_model::Sample]) {
        if self.keeps_runs() {
            // Windows of `reach` at least a step long leave no gaps: a
            // sample is seen exactly when it is inside the span they cover.
            pts.reserve(src.len());
            let (lo, hi) = self.run_span();
            let inside = |s: &cairn_model::Sample| s.t > lo && s.t <= hi;
            if src.first().is_some_and(inside) && src.last().is_some_and(inside) {
                // Sorted: all inside; only stale markers to drop.
                pts.extend(
                    src.iter()
                        .filter(|s| !is_stale_nan(s.v))
                        .map(|s| FPoint { t: s.t, f: s.v }),
                );
            } else {
                pts.extend(
                    src.iter()
                        .filter(|s| inside(s) && !is_stale_nan(s.v))
                        .map(|s| FPoint { t: s.t, f: s.v }),
                );
            }
            return;
        }
        if pts.is_empty() {
            // About one sample per grid time survives.
            let g = self.grid;
            let grid_times = (g.last.saturating_sub(g.first))
                .checked_div(g.step)
                .map_or(1, |k| usize::try_from(k).unwrap_or(0).saturating_add(1));
            pts.reserve(src.len().min(grid_times));
        }
        for s in src {
            if !(self.matrix && is_stale_nan(s.v)) {
                self.push(pts, FPoint { t: s.t, f: s.v }, s.t);
            }
        }
    }

    fn push<P>(&mut self, pts: &mut Vec<P>, p: P, t: i64) {
        let Some(g) = self.ceil(t) else {
            return;
        };
        if g - t >= self.reach {
            return;
        }
        if !self.matrix && self.last_grid == Some(g) {
            // A later sample for the same grid time replaces the earlier.
            pts.pop();
        }
        self.last_grid = Some(g);
        pts.push(p);
    }
}

/// Fewest series worth a thread of their own when loading a selector.
pub(crate) const MIN_SERIES_PER_THREAD: usize = 32;

/// How the series of one selector are read: what a loading thread needs.
#[derive(Clone, Copy)]
struct ReadSpec {
    /// Inclusive sample bounds.
    mint: i64,
    maxt: i64,
    grid: Grid,
    matrix: bool,
    /// Window length: the range, or the lookback delta.
    reach: i64,
    /// Whether native histograms are decoded to their stats form.
    stats: bool,
}

/// Reused by [`read_series`] from series to series (one per thread).
#[derive(Default)]
struct Scratch {
    /// Bulk-read samples before thinning.
    raw: Vec<cairn_model::Sample>,
    /// Samples in the last series read in one go: the next one's likely size.
    last_len: usize,
    rows: RowScratch,
}

/// The row of an instant selector over one float-only series, computed
/// from the samples in `[mint, maxt]` as read; `None` when the series holds
/// native histograms there (then [`read_series`] reads it).
fn instant_row_raw(
    series: &dyn Series,
    spec: ReadSpec,
    refs: &[i64],
    lookback: i64,
    scratch: &mut Scratch,
) -> Result<Option<(Row, usize)>> {
    let mut it = series.iter();
    let raw = &mut scratch.raw;
    raw.clear();
    let mut vt = it.seek(spec.mint);
    if vt == ValueType::Float {
        vt = it.read_floats(spec.maxt, raw);
    }
    if let Some(e) = it.err() {
        return Err(PromqlError::Eval(format!("expanding series: {e}")));
    }
    if !matches!(vt, ValueType::None | ValueType::Float) {
        return Ok(None);
    }
    Ok(Some(instant_row(raw, refs, lookback)))
}

/// Reads one series' samples in `[mint, maxt]` that some evaluation can
/// see (see [`Thinner`]). `scratch` is reused from series to series.
fn read_series(
    series: &dyn Series,
    spec: ReadSpec,
    scratch: &mut Scratch,
) -> Result<(Vec<FPoint>, Vec<HPoint>)> {
    let mut it = series.iter();
    let mut pts = Vec::new();
    let mut hpts: Vec<HPoint> = Vec::new();
    let new_thinner = || Thinner {
        grid: spec.grid,
        matrix: spec.matrix,
        reach: spec.reach,
        last_grid: None,
    };
    let (mut thin, mut hthin) = (new_thinner(), new_thinner());
    let mut decoder = spec.stats.then(super::stats::StatsDecoder::default);
    let mut vt = it.seek(spec.mint);
    while vt != ValueType::None {
        if vt == ValueType::Float {
            if pts.is_empty() && thin.keeps_runs() {
                // The common case, a float series read in one go: convert
                // the read buffer itself (same layout: no copy, no
                // allocation), instead of copying it out of scratch space.
                let mut v = Vec::with_capacity(scratch.last_len + scratch.last_len / 8 + 16);
                vt = it.read_floats(spec.maxt, &mut v);
                scratch.last_len = v.len();
                pts = thin.convert(v);
            } else {
                let raw = &mut scratch.raw;
                raw.clear();
                vt = it.read_floats(spec.maxt, raw);
                thin.extend(&mut pts, raw);
            }
            if vt == ValueType::Float {
                // Positioned after `maxt`.
                break;
            }
            continue;
        } else if let Some((t, h)) = it.at_float_histogram() {
            if t > spec.maxt {
                break;
            }
            let h = match decoder.as_mut() {
                Some(d) => d.apply(h),
                None => h,
            };
            hthin.push(&mut hpts, HPoint { t, h }, t);
        }
        vt = it.next();
    }
    if let Some(e) = it.err() {
        return Err(PromqlError::Eval(format!("expanding series: {e}")));
    }
    Ok((pts, hpts))
}

impl<'a> Evaluator<'a> {
    /// The first and last time a node with these modifiers reads at, when
    /// its context is evaluated over `[s, e]`.
    fn span(&self, at: &Option<AtModifier>, offset: &Option<Offset>, s: i64, e: i64) -> (i64, i64) {
        let o = offset_ms(offset);
        match at {
            None => (s - o, e - o),
            Some(AtModifier::Start) => (self.start - o, self.start - o),
            Some(AtModifier::End) => (self.end - o, self.end - o),
            Some(AtModifier::At(t)) => {
                let t = system_time_ms(t);
                (t - o, t - o)
            }
        }
    }

    fn plan<'e>(
        &mut self,
        e: &'e Expr,
        s: i64,
        end: i64,
        step: i64,
        func: Option<&str>,
        reqs: &mut Vec<Req<'e>>,
    ) {
        match e {
            Expr::VectorSelector(vs) => {
                let (lo, hi) = self.span(&vs.at, &vs.offset, s, end);
                reqs.push(Req {
                    vs,
                    mint: lo - self.opts.lookback_delta + 1,
                    maxt: hi,
                    matrix: false,
                    range: 0,
                    func: func.map(str::to_owned),
                    grid: Grid::new(lo, hi, step),
                });
            }
            Expr::MatrixSelector(ms) => {
                let (lo, hi) = self.span(&ms.vs.at, &ms.vs.offset, s, end);
                let range = ms.range.as_millis() as i64;
                reqs.push(Req {
                    vs: &ms.vs,
                    mint: lo - range + 1,
                    maxt: hi,
                    matrix: true,
                    range,
                    func: func.map(str::to_owned),
                    grid: Grid::new(lo, hi, step),
                });
            }
            Expr::Subquery(sq) => {
                let (lo, hi) = self.span(&sq.at, &sq.offset, s, end);
                let range = sq.range.as_millis() as i64;
                let step = match &sq.step {
                    Some(d) if d.as_millis() > 0 => d.as_millis() as i64,
                    _ => self.opts.no_step_subquery_interval.max(1),
                };
                // First grid time strictly after the window's start, aligned
                // to multiples of the step (Go's truncating division).
                let base = lo - range;
                let mut inner_start = step * (base / step);
                if inner_start <= base {
                    inner_start += step;
                }
                self.subquery_grid
                    .insert(node_id(sq), (inner_start, hi, step));
                self.plan(&sq.expr, inner_start, hi, step, None, reqs);
            }
            Expr::Paren(p) => self.plan(&p.expr, s, end, step, func, reqs),
            Expr::Unary(u) => self.plan(&u.expr, s, end, step, None, reqs),
            Expr::Binary(b) => {
                self.plan(&b.lhs, s, end, step, None, reqs);
                self.plan(&b.rhs, s, end, step, None, reqs);
            }
            Expr::Aggregate(a) => {
                if let Some(p) = &a.param {
                    self.plan(p, s, end, step, None, reqs);
                }
                self.plan(&a.expr, s, end, step, None, reqs);
            }
            Expr::Call(c) => {
                for a in &c.args.args {
                    self.plan(a, s, end, step, Some(c.func.name), reqs);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    /// Plans `expr` over the query's steps and loads every selector's data.
    pub(crate) fn load(&mut self, q: &dyn Queryable, expr: &Expr, step: i64) -> Result<()> {
        if !self.load_pass(q, expr, step)? {
            // Some range function's rows could not stand in for its
            // points (see `load_pass`): read again, keeping points.
            self.rows = false;
            self.selectors.clear();
            self.load_pass(q, expr, step)?;
        }
        Ok(())
    }

    /// What a loading thread computes rows for, for selector `r`, given the
    /// reference times it fills (see [`Evaluator::rows`]).
    fn consumer<'c>(
        &self,
        r: &Req<'_>,
        refs: &'c [i64],
        range_refs: &'c [(i64, i64)],
    ) -> Option<Consumer<'c>> {
        if !self.rows {
            return None;
        }
        if !r.matrix {
            return Some(Consumer::Instant {
                refs,
                lookback: self.opts.lookback_delta,
            });
        }
        let name = r.func.as_deref()?;
        // The columnar evaluator's names, which live as long as the query.
        let name = crate::functions::RANGE_FUNC_NAMES
            .iter()
            .copied()
            .find(|&n| n == name)?;
        Some(Consumer::Range(RangeSpec {
            refs: range_refs,
            range: r.range,
            name,
            f: crate::functions::range_fn(name)?,
            counter_fn: name == "rate" || name == "increase",
        }))
    }

    /// [`Evaluator::load`]'s one pass; false when rows were computed for a
    /// range function whose series held more samples in all than
    /// `max_samples` (then only per-step window counts, which rows do not
    /// keep, tell whether the query is over the limit).
    fn load_pass(&mut self, q: &dyn Queryable, expr: &Expr, step: i64) -> Result<bool> {
        let mut reqs = Vec::new();
        self.plan(expr, self.start, self.end, step, None, &mut reqs);
        if reqs.is_empty() {
            return Ok(true);
        }
        let mint = reqs.iter().map(|r| r.mint).min().unwrap_or(0);
        let maxt = reqs.iter().map(|r| r.maxt).max().unwrap_or(0);
        let querier = q.querier(mint, maxt)?;
        let stats = super::stats::stats_selectors(expr);
        let mut total = 0usize;
        // Selectors written twice (`a / (a + b)`) read the same data: load
        // it once and share it.
        let mut seen: HashMap<String, Rc<Vec<Loaded>>> = HashMap::new();
        for r in reqs {
            let with_stats = stats.contains(&node_id(r.vs));
            // Rows depend on the consuming function too.
            let func = if self.rows { r.func.as_deref() } else { None };
            let key = format!(
                "{} {} {} {} {} {} {} {} {with_stats} {func:?}",
                r.vs, r.mint, r.maxt, r.matrix, r.range, r.grid.first, r.grid.last, r.grid.step
            );
            if let Some(d) = seen.get(&key) {
                self.selectors.insert(node_id(r.vs), d.clone());
                continue;
            }
            let sets = matcher_sets(r.vs)?;
            let hints = SelectHints {
                start: r.mint,
                end: r.maxt,
                step,
                range: r.range,
                func: r.func.clone(),
            };
            let spec = ReadSpec {
                mint: r.mint,
                maxt: r.maxt,
                grid: r.grid,
                matrix: r.matrix,
                reach: if r.matrix {
                    r.range
                } else {
                    self.opts.lookback_delta
                },
                stats: with_stats,
            };
            // One matcher set yields sorted, unique series: keep its order,
            // reading the series on several threads.
            // Several (`or` alternatives) are merged by labels.
            let mut in_order: Vec<Loaded> = Vec::new();
            let (refs, range_refs): (Vec<i64>, Vec<(i64, i64)>) = if self.rows && step > 0 {
                let n = (self.end - self.start) / step + 1;
                (0..n)
                    .map(|i| {
                        let t = self.start + i * step;
                        (self.ref_time(&r.vs.at, &r.vs.offset, t), t)
                    })
                    .map(|(rt, t)| (rt, (t, rt)))
                    .unzip()
            } else {
                (Vec::new(), Vec::new())
            };
            let consumer = if step > 0 {
                self.consumer(&r, &refs, &range_refs)
            } else {
                None
            };
            let mut sel_total = 0usize;
            if let [ms] = sets.as_slice() {
                // Sources (head, blocks) are selected on several threads.
                let list = querier.select_all(&hints, ms, self.opts.parallelism)?;
                let consumer = consumer.as_ref();
                // Each series' `Loaded` is built on the reading thread:
                // it reads the labels (the metric name), in cache there.
                let read = crate::par::map_ordered_with(
                    list,
                    self.opts.parallelism,
                    MIN_SERIES_PER_THREAD,
                    |series, d| {
                        series.prefetch(if d == crate::par::NEXT {
                            Prefetch::Contents
                        } else {
                            Prefetch::Record
                        })
                    },
                    |scratch: &mut Scratch, series| -> Result<(Loaded, usize)> {
                        if let Some(Consumer::Instant { refs, lookback }) = consumer {
                            // Filled from the raw samples: no thinning, no points.
                            if let Some((row, n)) =
                                instant_row_raw(&*series, spec, refs, *lookback, scratch)?
                            {
                                let mut l = Loaded::new(series.labels().clone(), Vec::new(), false);
                                l.row = (n > 0).then_some(row);
                                return Ok((l, n));
                            }
                        }
                        let (p, h) = read_series(&*series, spec, scratch)?;
                        let n = p.len();
                        let labels = series.labels().clone();
                        Ok(match consumer {
                            // Computed while the points are in cache;
                            // the points themselves are not kept.
                            Some(c) if h.is_empty() && n > 0 => {
                                let row = row_of(&p, c, &mut scratch.rows);
                                let mut l = Loaded::new(labels, Vec::new(), false);
                                l.row = Some(row);
                                (l, n)
                            }
                            _ => (Loaded::new(labels, p, false).with_histograms(h), n),
                        })
                    },
                );
                for x in read {
                    let (l, n) = x?;
                    let hn = l.hpoints.len();
                    total += n + hn;
                    sel_total += n;
                    if n > 0 || hn > 0 {
                        in_order.push(l);
                    }
                }
            } else {
                let mut by_labels: BTreeMap<cairn_model::Labels, (Vec<FPoint>, Vec<HPoint>)> =
                    BTreeMap::new();
                let mut scratch = Scratch::default();
                for ms in &sets {
                    for series in querier.select(&hints, ms)? {
                        let series = series?;
                        if by_labels.contains_key(series.labels()) {
                            continue;
                        }
                        let (pts, hpts) = read_series(&*series, spec, &mut scratch)?;
                        total += pts.len() + hpts.len();
                        if !(pts.is_empty() && hpts.is_empty()) {
                            by_labels.insert(series.labels().clone(), (pts, hpts));
                        }
                    }
                }
                in_order.extend(by_labels.into_iter().map(|(labels, (points, hpoints))| {
                    Loaded::new(labels, points, false).with_histograms(hpoints)
                }));
            }
            if total > self.opts.max_loaded_samples {
                return Err(PromqlError::TooManySamples);
            }
            if r.matrix
                && sel_total > self.opts.max_samples
                && in_order.iter().any(|l| l.row.is_some())
            {
                return Ok(false);
            }
            let loaded = Rc::new(in_order);
            seen.insert(key, loaded.clone());
            self.selectors.insert(node_id(r.vs), loaded);
        }
        Ok(true)
    }

    /// The instant vector a selector yields at `ts`. With `keep_t` the
    /// samples carry their own timestamps (for `timestamp()`), otherwise `ts`.
    pub(crate) fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        ts: i64,
        keep_t: bool,
    ) -> Result<Vector> {
        let data =
            self.selectors.get(&node_id(vs)).cloned().ok_or_else(|| {
                PromqlError::Eval("internal error: selector was not loaded".into())
            })?;
        let rt = self.ref_time(&vs.at, &vs.offset, ts);
        let lo = rt - self.opts.lookback_delta;
        let cur = self.cursors.entry(node_id(vs)).or_default();
        cur.advance(&data, lo, rt);
        let mut out = Vec::new();
        for (k, (s, &(_, end))) in data.iter().zip(cur.bounds.iter()).enumerate() {
            // The newest sample at or before rt, if inside the lookback.
            let p = end.checked_sub(1).and_then(|i| s.points.get(i));
            let hp = cur
                .hbounds
                .get(k)
                .and_then(|&(_, e)| e.checked_sub(1))
                .and_then(|i| s.hpoints.get(i));
            let (t, value) = match (p, hp) {
                (Some(h), Some(hp)) if hp.t > h.t => (hp.t, SampleValue::Histogram(hp.h.clone())),
                (Some(p), _) => (p.t, SampleValue::Float(p.f)),
                (None, Some(hp)) => (hp.t, SampleValue::Histogram(hp.h.clone())),
                (None, None) => continue,
            };
            if t <= lo || value.as_float().is_some_and(is_stale_nan) {
                continue;
            }
            out.push(Sample {
                metric: s.labels.clone(),
                t: if keep_t { t } else { ts },
                value,
                drop_name: false,
            });
        }
        if out.len() > self.opts.max_samples {
            return Err(PromqlError::TooManySamples);
        }
        Ok(out)
    }
}

/// The matcher lists to select with: one, or one per `or` alternative.
pub(crate) fn matcher_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>> {
    let conv = |m: &promql_parser::label::Matcher| -> Result<Matcher> {
        let kind = match m.op {
            MatchOp::Equal => MatchType::Equal,
            MatchOp::NotEqual => MatchType::NotEqual,
            MatchOp::Re(_) => MatchType::Regex,
            MatchOp::NotRe(_) => MatchType::NotRegex,
        };
        Matcher::new(kind, m.name.clone(), m.value.clone())
            .map_err(|e| PromqlError::Eval(e.to_string()))
    };
    let mut base = Vec::new();
    if let Some(n) = &vs.name {
        base.push(Matcher::equal(cairn_model::METRIC_NAME, n.clone()));
    }
    for m in &vs.matchers.matchers {
        base.push(conv(m)?);
    }
    if vs.matchers.or_matchers.is_empty() {
        return Ok(vec![base]);
    }
    let mut sets = Vec::new();
    for alt in &vs.matchers.or_matchers {
        let mut set = base.clone();
        for m in alt {
            set.push(conv(m)?);
        }
        sets.push(set);
    }
    Ok(sets)
}

/// True when some selector of `expr` would select a series with labels `l`.
pub(crate) fn selects_any(expr: &Expr, l: &[cairn_model::Labels]) -> bool {
    let hit = |vs: &VectorSelector| -> bool {
        let Ok(sets) = matcher_sets(vs) else {
            return false;
        };
        l.iter().any(|ls| {
            sets.iter()
                .any(|ms| ms.iter().all(|m| m.matches(ls.get(&m.name).unwrap_or(""))))
        })
    };
    match expr {
        Expr::VectorSelector(vs) => hit(vs),
        Expr::MatrixSelector(ms) => hit(&ms.vs),
        Expr::Subquery(sq) => selects_any(&sq.expr, l),
        Expr::Paren(p) => selects_any(&p.expr, l),
        Expr::Unary(u) => selects_any(&u.expr, l),
        Expr::Binary(b) => selects_any(&b.lhs, l) || selects_any(&b.rhs, l),
        Expr::Aggregate(a) => {
            a.param.as_ref().is_some_and(|p| selects_any(p, l)) || selects_any(&a.expr, l)
        }
        Expr::Call(c) => c.args.args.iter().any(|a| selects_any(a, l)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_ceil_equals_division() {
        for (first, last, step) in [(0, 600, 60), (7, 1_000, 13), (100, 100, 0), (-50, 500, 25)] {
            let grid = Grid::new(first, last, step);
            for stride in [1, 3, 7, 20, 61, 200] {
                let mut th = Thinner {
                    grid,
                    matrix: true,
                    reach: i64::MAX,
                    last_grid: None,
                };
                let mut t = first - 100;
                while t < last + 100 {
                    assert_eq!(
                        th.ceil(t),
                        grid.ceil(t),
                        "grid {first}..{last}/{step} t {t}"
                    );
                    if let Some(g) = grid.ceil(t) {
                        th.last_grid = Some(g);
                    }
                    t += stride;
                }
            }
        }
    }

    #[test]
    fn bulk_thinning_keeps_what_pushing_keeps() {
        let stale = f64::from_bits(cairn_model::STALE_NAN_BITS);
        for (first, last, step) in [(0, 600, 60), (7, 1_000, 13), (100, 100, 0), (-50, 500, 25)] {
            for reach in [1, 12, 13, 25, 60, 61, 300] {
                for matrix in [false, true] {
                    for stride in [1, 5, 17, 40] {
                        let src: Vec<cairn_model::Sample> = (-400..1_400)
                            .step_by(stride)
                            .map(|t| {
                                let v = if t % 7 == 0 { stale } else { t as f64 };
                                cairn_model::Sample::new(t, v)
                            })
                            .collect();
                        let new = || Thinner {
                            grid: Grid::new(first, last, step),
                            matrix,
                            reach,
                            last_grid: None,
                        };
                        let mut want = Vec::new();
                        let mut th = new();
                        for s in &src {
                            if !(matrix && is_stale_nan(s.v)) {
                                th.push(&mut want, FPoint { t: s.t, f: s.v }, s.t);
                            }
                        }
                        let bits = |v: &[FPoint]| -> Vec<(i64, u64)> {
                            v.iter().map(|p| (p.t, p.f.to_bits())).collect()
                        };
                        if matrix && (step == 0 || reach >= step) {
                            let mut th = new();
                            assert!(th.keeps_runs());
                            let got = th.convert(src.clone());
                            assert!(
                                bits(&got) == bits(&want),
                                "convert: grid {first}..{last}/{step} reach {reach} stride {stride}"
                            );
                        }
                        // In two pieces, as bulk reads arrive.
                        let mut got = Vec::new();
                        let mut th = new();
                        let (a, b) = src.split_at(src.len() / 3);
                        th.extend(&mut got, a);
                        th.extend(&mut got, b);
                        assert!(
                            bits(&got) == bits(&want),
                            "grid {first}..{last}/{step} reach {reach} matrix {matrix} stride {stride}"
                        );
                    }
                }
            }
        }
    }
}
