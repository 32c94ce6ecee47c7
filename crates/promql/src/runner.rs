//! The PromQL test-script runner (Prometheus's `promqltest` language).
//!
//! Each `eval` command is one test: it passes when the query's result (and
//! failure, annotations, order) matches the expectations. Instant evals are
//! also run as a range query over `[t-1m, t+1m]` step 1m and the middle
//! step compared again, as Prometheus's runner does. Loads of native
//! histograms are not supported yet: the float series of such a load are
//! stored, and every later eval (until `clear`) with a selector that would
//! select one of the histogram series counts as failed.

mod at_modifier;
mod compare;
mod script;
pub mod series;

use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_model::Sample as ModelSample;
use cairn_storage::MemStorage;

use crate::engine::{Engine, EngineOptions};
use crate::error::{PromqlError, Result};
use script::{Command, EvalCmd};

/// Go's `almost.Equal`: relative tolerance, NaN equals NaN, stale markers
/// only equal stale markers.
pub fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    let (sa, sb) = (cairn_model::is_stale_nan(a), cairn_model::is_stale_nan(b));
    if sa || sb {
        return sa && sb;
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let min_normal = f64::from_bits(0x0010_0000_0000_0000);
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < min_normal {
        return diff < eps * min_normal;
    }
    diff / abs_sum.min(f64::MAX) < eps
}

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

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> PromqlError {
    move |source| PromqlError::Io { context, source }
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

/// Runs the scripts at `paths` (files or directories of `*.test` files),
/// prints per-file pass counts (and failure details when `verbose`) and
/// finally the line `N passed, M failed`.
pub fn run_paths(paths: &[PathBuf], verbose: bool, out: &mut dyn Write) -> Result<Summary> {
    let files = expand(paths)?;
    let mut summary = Summary::default();
    let w = |e: std::io::Error| PromqlError::Io {
        context: "writing report".into(),
        source: e,
    };
    for f in files {
        let text =
            std::fs::read_to_string(&f).map_err(io_err(format!("reading {}", f.display())))?;
        let fs = run_script(&f, &text);
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

/// Runs one script's text; never panics on malformed input.
pub fn run_script(path: &Path, text: &str) -> FileSummary {
    let mut fs = FileSummary {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let cmds = script::parse(text);
    let store = MemStorage::new();
    let engine = Engine::new(EngineOptions::default());
    let mut unsupported: Vec<cairn_model::Labels> = Vec::new();
    for cmd in cmds {
        match cmd {
            Command::Clear => {
                store.clear();
                unsupported.clear();
            }
            Command::Load {
                series,
                histogram_series,
            } => {
                for (labels, samples) in series {
                    store.add(
                        labels,
                        samples.into_iter().map(|(t, v)| ModelSample::new(t, v)),
                    );
                }
                unsupported.extend(histogram_series);
            }
            Command::Invalid { line, msg } => {
                fs.failed += 1;
                fs.failures.push(format!("line {line}: {msg}"));
            }
            Command::Eval(ev) => {
                let needs_nh = ev.has_histogram_expectation
                    || crate::query_selects_any(&ev.expr, &unsupported);
                let res = if needs_nh {
                    Err("the query selects native histogram series, which are not supported".into())
                } else {
                    run_eval(&engine, &store, &ev)
                };
                match res {
                    Ok(()) => fs.passed += 1,
                    Err(e) => {
                        fs.failed += 1;
                        if needs_nh {
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

fn run_eval(engine: &Engine, store: &MemStorage, ev: &EvalCmd) -> std::result::Result<(), String> {
    if ev.has_histogram_expectation {
        return Err("native histogram expectations are not supported".into());
    }
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
