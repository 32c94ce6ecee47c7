//! The PromQL test-script runner (Prometheus's `promqltest` language),
//! kept apart from the engine as Prometheus keeps `promql/promqltest`: the
//! engine does not depend on it; `cairn promql test` and the conformance
//! test use it.
//!
//! Scripts run on an engine with the options Prometheus's test engine
//! uses (delayed name removal on, `@` and negative offsets allowed).
//!
//! Each `eval` command is one test: it passes when the query's result (and
//! failure, annotations, order) matches the expectations. Instant evals are
//! also run as a range query over `[t-1m, t+1m]` step 1m and the middle
//! step compared again, as Prometheus's runner does. Native histogram
//! points are stored as histogram samples; `load_with_nhcb` also turns
//! each classic histogram (`_bucket`/`_count`/`_sum` series) into a native
//! histogram with custom buckets per timestamp. Failures of evals that
//! touch histogram series are counted separately in the report.

mod at_modifier;
mod compare;
mod error;
mod script;
pub mod series;

use std::io::Write;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_model::{
    CounterResetHint, FloatHistogram, Labels, Sample as ModelSample, Span, CUSTOM_BUCKETS_SCHEMA,
};
use cairn_storage::MemStorage;

use cairn_promql::{Engine, EngineOptions, PromqlError};

pub use cairn_promql::almost_equal;
pub use error::{Result, TestError};
use script::{Command, EvalCmd};
use series::SeqValue;

/// Results of one script file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileSummary {
    pub path: PathBuf,
    pub passed: usize,
    pub failed: usize,
    /// How many of the failures are evals that need native histograms.
    pub native_histogram_failures: usize,
    /// One line per failed eval: `line N: query: reason`.
    pub failures: Vec<String>,
}

/// Results of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub files: Vec<FileSummary>,
    pub passed: usize,
    pub failed: usize,
    /// Failures caused by native histograms (included in `failed`).
    pub native_histogram_failures: usize,
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> TestError {
    move |source| TestError::Io { context, source }
}

/// Expands directories into their `*.test` files (sorted).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(io_err(format!("reading {}", p.display())))?;
            let mut files: Vec<PathBuf> = Vec::new();
            for e in rd {
                let e = e.map_err(io_err(format!("reading {}", p.display())))?;
                let path = e.path();
                if path.extension().is_some_and(|x| x == "test") {
                    files.push(path);
                }
            }
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The engine settings of Prometheus's test engine, which its scripts
/// assume: delayed name removal on.
pub fn test_engine_options() -> EngineOptions {
    EngineOptions {
        delayed_name_removal: true,
        ..EngineOptions::default()
    }
}

/// Runs the scripts at `paths` (files or directories of `*.test` files)
/// on an engine with [`test_engine_options`], prints per-file pass counts
/// (and failure details when `verbose`) and finally the line
/// `N passed, M failed`.
pub fn run_paths(paths: &[PathBuf], verbose: bool, out: &mut dyn Write) -> Result<Summary> {
    run_paths_with(paths, &test_engine_options(), verbose, out)
}

/// [`run_paths`] on an engine with `opts`.
pub fn run_paths_with(
    paths: &[PathBuf],
    opts: &EngineOptions,
    verbose: bool,
    out: &mut dyn Write,
) -> Result<Summary> {
    let files = expand(paths)?;
    let mut summary = Summary::default();
    let w = |e: std::io::Error| TestError::Io {
        context: "writing report".into(),
        source: e,
    };
    for f in files {
        let text =
            std::fs::read_to_string(&f).map_err(io_err(format!("reading {}", f.display())))?;
        let fs = run_script_with(&f, &text, opts);
        writeln!(
            out,
            "{}: {} passed, {} failed ({} need native histograms)",
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            fs.passed,
            fs.failed,
            fs.native_histogram_failures
        )
        .map_err(w)?;
        if verbose {
            for l in &fs.failures {
                writeln!(out, "  FAIL {l}").map_err(w)?;
            }
        }
        summary.passed += fs.passed;
        summary.failed += fs.failed;
        summary.native_histogram_failures += fs.native_histogram_failures;
        summary.files.push(fs);
    }
    writeln!(out, "{} passed, {} failed", summary.passed, summary.failed).map_err(w)?;
    Ok(summary)
}

/// Runs one script's text on an engine with [`test_engine_options`];
/// never panics on malformed input.
pub fn run_script(path: &Path, text: &str) -> FileSummary {
    run_script_with(path, text, &test_engine_options())
}

/// [`run_script`] on an engine with `opts`.
pub fn run_script_with(path: &Path, text: &str, opts: &EngineOptions) -> FileSummary {
    let mut fs = FileSummary {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let cmds = script::parse(text);
    let store = MemStorage::new();
    let engine = Engine::new(opts.clone());
    let mut hist_series: Vec<Labels> = Vec::new();
    for cmd in cmds {
        match cmd {
            Command::Clear => {
                store.clear();
                hist_series.clear();
            }
            Command::Load { series, with_nhcb } => {
                if with_nhcb {
                    for (labels, pts) in classic_to_nhcb(&series) {
                        hist_series.push(labels.clone());
                        let pts: Vec<(i64, Option<Arc<FloatHistogram>>)> =
                            pts.into_iter().map(|(t, h)| (t, Some(h))).collect();
                        store.add_float_histograms(labels, stored_hints(pts));
                    }
                }
                for (labels, pts) in series {
                    let mut floats = Vec::new();
                    let mut hists = Vec::new();
                    for (t, v) in pts {
                        match v {
                            SeqValue::Value(f) => {
                                floats.push(ModelSample::new(t, f));
                                hists.push((t, None));
                            }
                            SeqValue::Histogram(h) => hists.push((t, Some(h))),
                            SeqValue::Omitted => {}
                        }
                    }
                    let hists = stored_hints(hists);
                    if !hists.is_empty() {
                        hist_series.push(labels.clone());
                    }
                    store.add(labels.clone(), floats);
                    store.add_float_histograms(labels, hists);
                }
            }
            Command::Invalid { line, msg } => {
                fs.failed += 1;
                fs.failures.push(format!("line {line}: {msg}"));
            }
            Command::Eval(ev) => {
                let touches_nh = ev
                    .expected
                    .iter()
                    .any(|(_, v)| v.iter().any(|x| matches!(x, SeqValue::Histogram(_))))
                    || cairn_promql::query_selects_any(&ev.expr, &hist_series);
                match run_eval(&engine, &store, &ev) {
                    Ok(()) => fs.passed += 1,
                    Err(e) => {
                        fs.failed += 1;
                        if touches_nh {
                            fs.native_histogram_failures += 1;
                        }
                        fs.failures
                            .push(format!("line {}: {}: {e}", ev.line, ev.expr));
                    }
                }
            }
        }
    }
    fs
}

/// The counter reset hints Prometheus's TSDB hands back for a series'
/// samples (`None` = a float sample): gauge histograms stay gauges; a
/// histogram that starts a chunk (the first, one after a float, one whose
/// layout is incompatible with the previous, or one after a detected
/// counter reset) reads back as "unknown", every other one as "not reset".
fn stored_hints(pts: Vec<(i64, Option<Arc<FloatHistogram>>)>) -> Vec<(i64, Arc<FloatHistogram>)> {
    let mut out = Vec::new();
    let mut prev: Option<Arc<FloatHistogram>> = None;
    for (t, h) in pts {
        let Some(h) = h else {
            prev = None;
            continue;
        };
        let hint = if h.counter_reset_hint == CounterResetHint::Gauge {
            CounterResetHint::Gauge
        } else {
            match &prev {
                Some(p)
                    if p.counter_reset_hint != CounterResetHint::Gauge
                        && p.schema == h.schema
                        && p.zero_threshold == h.zero_threshold
                        && cairn_model::custom_bounds_match(&p.custom_values, &h.custom_values)
                        && !h.detect_reset(p) =>
                {
                    CounterResetHint::NotCounterReset
                }
                _ => CounterResetHint::Unknown,
            }
        };
        let mut x = (*h).clone();
        x.counter_reset_hint = hint;
        let x = Arc::new(x);
        prev = Some(h);
        out.push((t, x));
    }
    out
}

/// A series of histogram samples.
type HistSeries = (Labels, Vec<(i64, Arc<FloatHistogram>)>);

/// One classic histogram at one timestamp, being collected.
#[derive(Default)]
struct Classic {
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: f64,
}

/// Converts the classic histograms of a load into native histograms with
/// custom buckets, as Prometheus's runner does for `load_with_nhcb`.
/// Timestamps whose buckets are inconsistent are skipped.
fn classic_to_nhcb(series: &[(Labels, Vec<(i64, SeqValue)>)]) -> Vec<HistSeries> {
    let mut by_base: BTreeMap<Labels, BTreeMap<i64, Classic>> = BTreeMap::new();
    for (labels, pts) in series {
        let Some(name) = labels.metric_name() else {
            continue;
        };
        let (base, kind) = if let Some(b) = name.strip_suffix("_bucket") {
            (b, 0)
        } else if let Some(b) = name.strip_suffix("_count") {
            (b, 1)
        } else if let Some(b) = name.strip_suffix("_sum") {
            (b, 2)
        } else {
            continue;
        };
        let le = if kind == 0 {
            match labels.get("le").and_then(series::parse_number) {
                Some(le) if !le.is_nan() => le,
                _ => continue,
            }
        } else {
            0.0
        };
        let mut b = labels.builder();
        b.del("le");
        b.set(cairn_model::METRIC_NAME, base);
        let per_t = by_base.entry(b.build()).or_default();
        for (t, v) in pts {
            let SeqValue::Value(f) = v else { continue };
            let c = per_t.entry(*t).or_default();
            match kind {
                0 => {
                    if !c.buckets.iter().any(|x| x.0 == le) {
                        c.buckets.push((le, *f));
                    }
                }
                1 => c.count = Some(*f),
                _ => c.sum = *f,
            }
        }
    }
    let mut out = Vec::new();
    for (labels, per_t) in by_base {
        let mut pts = Vec::new();
        for (t, mut c) in per_t {
            c.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let cumulative = c.buckets.windows(2).all(|w| match w {
                [a, b] => b.1 >= a.1,
                _ => true,
            });
            if !cumulative || c.buckets.iter().any(|b| b.1 < 0.0) {
                continue;
            }
            let count = c
                .count
                .or_else(|| c.buckets.last().map(|b| b.1))
                .unwrap_or(0.0);
            if c.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
                c.buckets.push((f64::INFINITY, count));
            }
            if c.buckets.last().is_some_and(|b| b.1 != count) {
                continue;
            }
            let mut h = FloatHistogram {
                schema: CUSTOM_BUCKETS_SCHEMA,
                count,
                sum: c.sum,
                positive_spans: vec![Span {
                    offset: 0,
                    length: c.buckets.len() as u32,
                }],
                ..Default::default()
            };
            let mut prev = 0.0;
            for (le, n) in &c.buckets {
                h.positive_buckets.push(n - prev);
                prev = *n;
                if *le != f64::INFINITY {
                    h.custom_values.push(*le);
                }
            }
            h.compact();
            pts.push((t, Arc::new(h)));
        }
        if !pts.is_empty() {
            out.push((labels, pts));
        }
    }
    out
}

fn run_eval(engine: &Engine, store: &MemStorage, ev: &EvalCmd) -> std::result::Result<(), String> {
    if let Some(e) = &ev.invalid {
        return Err(e.clone());
    }
    if ev.is_range {
        let r = engine.range_query(store, &ev.expr, ev.start, ev.end, ev.step);
        return compare::check(ev, r, false, ev.at);
    }
    let expr = match promql_parser::parser::parse(&ev.expr) {
        Ok(e) => e,
        Err(e) => return compare::check(ev, Err(PromqlError::Parse(e)), false, ev.at),
    };
    run_instant(engine, store, ev, &expr, ev.at)?;
    // Like Prometheus's runner: the same query with every selector pinned
    // by `@` to the eval time must give the same result at other times.
    if let Some(pinned) = at_modifier::pin(&expr, ev.at) {
        let t = ev.at;
        let times = if t == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * t, 0, t / 5, t, 10 * t]
        };
        for et in times {
            run_instant(engine, store, ev, &pinned, et)
                .map_err(|e| format!("with @ {t} evaluated at {et}: {e}"))?;
        }
    }
    Ok(())
}

fn run_instant(
    engine: &Engine,
    store: &MemStorage,
    ev: &EvalCmd,
    expr: &promql_parser::parser::Expr,
    at: i64,
) -> std::result::Result<(), String> {
    let r = engine.instant_query_expr(store, expr, at);
    let was_ok = r.is_ok();
    compare::check(ev, r, false, at)?;
    if !was_ok || ev.exclude_from_range || ev.ordered || ev.fail {
        return Ok(());
    }
    let ctx_fn = regex::Regex::new(r"(start|end|range|step)\(\)").map_err(|e| e.to_string())?;
    if ctx_fn.is_match(&ev.expr) {
        return Ok(());
    }
    let r = engine.range_query_expr(store, expr, at - 60_000, at + 60_000, 60_000);
    compare::check(ev, r, true, at).map_err(|e| format!("in range mode: {e}"))
}
