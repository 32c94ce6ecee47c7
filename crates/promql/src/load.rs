//! Loading: every selection of a plan read from storage once, before
//! evaluation starts, through one querier covering all of them.
//!
//! A selection with one matcher list is read through the storage's
//! parallel `select_all`, its series decoded on several threads (each
//! thread prefetching the series it will read next); `or` alternatives
//! are merged by labels. Where the plan names a consumer whose values a
//! loading thread can compute (an instant selector, or a range function
//! without parameters), the thread computes the series' [`Row`] right
//! after decoding it, while its samples are in cache, and keeps only
//! that; otherwise it keeps the samples some step can see.
//!
//! Contracts: a selection's series come in label order; a series with
//! nothing any step can see is left out; a selection holding native
//! histograms keeps points for those series (rows are floats only).

mod rows;
mod stats;
mod thin;

use std::collections::BTreeMap;
use std::time::Instant;

use cairn_storage::{Prefetch, Queryable, Series, ValueType};

use crate::error::{PromqlError, Result};
use crate::functions::range_fn;
use crate::options::EngineOptions;
use crate::plan::{Consumer, Grid, Plan, Selection};
use crate::value::{FPoint, HPoint};

pub(crate) use rows::{instant_row, range_values, RangeSpec, Row, RowScratch, Windows};
use thin::Thinner;

/// One series held in memory for the query: a selector's samples (or the
/// row its consumer computed at load), or a subquery's computed points,
/// sorted by time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loaded {
    pub(crate) labels: cairn_model::Labels,
    pub(crate) points: Vec<FPoint>,
    /// Native histogram points, sorted by time (disjoint in time from `points`).
    pub(crate) hpoints: Vec<HPoint>,
    pub(crate) drop_name: bool,
    /// Set when the series has a metric name that does not look like a
    /// counter's (checked once, for `rate`/`increase` annotations).
    pub(crate) non_counter_name: bool,
    /// A hash of the metric name when `non_counter_name` is set, so that
    /// the annotation is formatted once per name without reading every
    /// series' labels again (they are out of cache by then).
    pub(crate) name_hash: u64,
    /// The consumer's values at its steps, computed by the loading thread;
    /// `points` is then left empty.
    pub(crate) row: Option<Row>,
}

impl Loaded {
    pub(crate) fn new(labels: cairn_model::Labels, points: Vec<FPoint>, drop_name: bool) -> Self {
        let name = labels.metric_name().filter(|n| {
            !(n.ends_with("_total")
                || n.ends_with("_sum")
                || n.ends_with("_count")
                || n.ends_with("_bucket"))
        });
        let non_counter_name = name.is_some();
        let name_hash = name.map_or(0, |n| {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            n.hash(&mut h);
            h.finish()
        });
        Self {
            labels,
            points,
            hpoints: Vec::new(),
            drop_name,
            non_counter_name,
            name_hash,
            row: None,
        }
    }

    /// Attaches histogram points.
    pub(crate) fn with_histograms(mut self, hpoints: Vec<HPoint>) -> Self {
        self.hpoints = hpoints;
        self
    }
}

/// A selection's series, as loaded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selected {
    pub(crate) series: Vec<Loaded>,
}

/// Fewest series worth a thread of their own when loading a selection.
pub(crate) const MIN_SERIES_PER_THREAD: usize = 32;

/// Fails once `deadline` (the query's timeout, counted from its start)
/// has passed.
fn check(deadline: Option<Instant>) -> Result<()> {
    match deadline {
        Some(d) if Instant::now() > d => Err(PromqlError::Timeout),
        _ => Ok(()),
    }
}

/// Reads every selection of `plan`, in selection order. Reading counts
/// against the query's timeout: `deadline` is checked after each
/// selection's series are listed and before each series is read (a slow
/// store, such as a bucket, fails the query in time instead of holding
/// it).
pub(crate) fn load(
    plan: &Plan,
    q: &dyn Queryable,
    opts: &EngineOptions,
    deadline: Option<Instant>,
) -> Result<Vec<Selected>> {
    let live: Vec<&Selection> = plan
        .selections
        .iter()
        .filter(|s| s.mint <= s.maxt)
        .collect();
    let (Some(mint), Some(maxt)) = (
        live.iter().map(|s| s.mint).min(),
        live.iter().map(|s| s.maxt).max(),
    ) else {
        return Ok(plan
            .selections
            .iter()
            .map(|_| Selected::default())
            .collect());
    };
    let querier = q.querier(mint, maxt)?;
    let mut total = 0usize;
    let mut out = Vec::with_capacity(plan.selections.len());
    for sel in &plan.selections {
        if sel.mint > sel.maxt {
            out.push(Selected::default());
            continue;
        }
        check(deadline)?;
        out.push(load_one(&*querier, sel, opts, deadline, &mut total)?);
    }
    Ok(out)
}

/// How the series of one selection are read: what a loading thread needs.
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

/// What a loading thread computes rows for, with its reference times.
enum RowsFor<'a> {
    Instant {
        refs: &'a [i64],
        lookback: i64,
        time: bool,
    },
    Range(RangeSpec<'a>),
}

/// Reused by a loading thread from series to series; at the end it holds
/// the thread's share of the window counts.
#[derive(Default)]
struct Scratch {
    /// Bulk-read samples before thinning.
    raw: Vec<cairn_model::Sample>,
    /// Samples in the last series read in one go: the next one's likely size.
    last_len: usize,
    rows: RowScratch,
}

fn load_one(
    querier: &dyn cairn_storage::Querier,
    sel: &Selection,
    opts: &EngineOptions,
    deadline: Option<Instant>,
    total: &mut usize,
) -> Result<Selected> {
    let spec = ReadSpec {
        mint: sel.mint,
        maxt: sel.maxt,
        grid: sel.grid,
        matrix: sel.matrix,
        reach: sel.reach,
        stats: sel.stats,
    };
    let (refs, range_refs): (Vec<i64>, Vec<(i64, i64)>) = match &sel.consumer {
        Consumer::Points => (Vec::new(), Vec::new()),
        Consumer::Instant { steps, reach, .. } => (
            steps.times().map(|t| reach.ref_time(t)).collect(),
            Vec::new(),
        ),
        Consumer::Range { steps, reach, .. } => (
            Vec::new(),
            steps.times().map(|t| (t, reach.ref_time(t))).collect(),
        ),
    };
    let rows_for = match &sel.consumer {
        Consumer::Points => None,
        // The selection's lookback: the engine's, or the downsampled
        // level's when that is longer (see plan/compile.rs).
        Consumer::Instant { time, .. } => Some(RowsFor::Instant {
            refs: &refs,
            lookback: sel.reach,
            time: *time,
        }),
        Consumer::Range { range, func, .. } => Some(RowsFor::Range(RangeSpec {
            refs: &range_refs,
            range: *range,
            func: *func,
            f: range_fn(*func),
            params: &[],
        })),
    };
    let mut series: Vec<Loaded> = Vec::new();
    if let [ms] = sel.matchers.as_slice() {
        // Sources (head, blocks) are selected on several threads.
        let list = querier.select_all(&sel.hints, ms, opts.parallelism)?;
        check(deadline)?;
        let rows_for = rows_for.as_ref();
        // Each series' `Loaded` is built on the reading thread: it reads
        // the labels (the metric name), in cache there.
        let (read, scratches) = crate::par::map_ordered_with(
            list,
            opts.parallelism,
            MIN_SERIES_PER_THREAD,
            |series, d| {
                series.prefetch(if d == crate::par::NEXT {
                    Prefetch::Contents
                } else {
                    Prefetch::Record
                })
            },
            |scratch: &mut Scratch, series| -> Result<(Loaded, usize)> {
                check(deadline)?;
                read_one(&*series, spec, rows_for, scratch)
            },
        );
        for x in read {
            let (l, n) = x?;
            let hn = l.hpoints.len();
            *total += n + hn;
            if n > 0 || hn > 0 {
                series.push(l);
            }
        }
        drop(scratches);
    } else {
        let mut by_labels: BTreeMap<cairn_model::Labels, (Vec<FPoint>, Vec<HPoint>)> =
            BTreeMap::new();
        let mut scratch = Scratch::default();
        for ms in &sel.matchers {
            for s in querier.select(&sel.hints, ms)? {
                check(deadline)?;
                let s = s?;
                if by_labels.contains_key(s.labels()) {
                    continue;
                }
                let (pts, hpts) = read_series(&*s, spec, &mut scratch)?;
                *total += pts.len() + hpts.len();
                if !(pts.is_empty() && hpts.is_empty()) {
                    by_labels.insert(s.labels().clone(), (pts, hpts));
                }
            }
        }
        series.extend(by_labels.into_iter().map(|(labels, (points, hpoints))| {
            Loaded::new(labels, points, false).with_histograms(hpoints)
        }));
    }
    if *total > opts.max_loaded_samples {
        return Err(PromqlError::TooManySamples);
    }
    Ok(Selected { series })
}

/// Reads one series for its selection: the row its consumer needs when
/// there is one and the series holds floats only, its points otherwise;
/// and how many samples that took (what the loaded-samples guard counts).
fn read_one(
    series: &dyn Series,
    spec: ReadSpec,
    rows_for: Option<&RowsFor<'_>>,
    scratch: &mut Scratch,
) -> Result<(Loaded, usize)> {
    if let Some(RowsFor::Instant {
        refs,
        lookback,
        time,
    }) = rows_for
    {
        // Filled from the raw samples: no thinning, no points.
        if let Some((row, n)) = instant_row_raw(series, spec, refs, *lookback, *time, scratch)? {
            let mut l = Loaded::new(series.labels().clone(), Vec::new(), false);
            l.row = (n > 0).then_some(row);
            return Ok((l, n));
        }
    }
    let (p, h) = read_series(series, spec, scratch)?;
    let n = p.len();
    let labels = series.labels().clone();
    Ok(match rows_for {
        // Computed while the points are in cache; the points themselves
        // are not kept.
        Some(RowsFor::Range(rs)) if h.is_empty() && n > 0 => {
            let row = range_values(&p, rs, &mut scratch.rows);
            let mut l = Loaded::new(labels, Vec::new(), false);
            l.row = Some(row);
            (l, n)
        }
        _ => (Loaded::new(labels, p, false).with_histograms(h), n),
    })
}

/// The row of an instant selector over one float-only series, computed
/// from the samples in `[mint, maxt]` as read; `None` when the series holds
/// native histograms there (then it is read into points).
fn instant_row_raw(
    series: &dyn Series,
    spec: ReadSpec,
    refs: &[i64],
    lookback: i64,
    time: bool,
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
    Ok(Some(instant_row(raw, refs, lookback, time)))
}

/// Reads one series' samples in `[mint, maxt]` that some step can see
/// (see [`Thinner`]).
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
    let mut decoder = spec.stats.then(stats::StatsDecoder::default);
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
