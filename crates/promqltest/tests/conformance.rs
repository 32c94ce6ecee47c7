//! Runs Prometheus's PromQL test scripts (from `$CAIRN_PROMQL_TESTS`) and
//! fails when the total pass count, or that of the stable (not
//! feature-flagged) files, drops below the recorded floors; and runs the
//! project's own scripts, which must all pass: `tests/promql/` with
//! Prometheus's test engine settings, `tests/promql/server/` with
//! `cairn serve`'s.

use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn prometheus_conformance_scripts_stay_above_floor() {
    let dir = match std::env::var("CAIRN_PROMQL_TESTS") {
        Ok(d) if !d.is_empty() => d,
        _ => panic!(
            "CAIRN_PROMQL_TESTS is not set: point it at the directory of Prometheus's PromQL .test \
             scripts, e.g. `CAIRN_PROMQL_TESTS=$PWD/../shared/conformance/promql cargo test -p cairn-promql` \
             (scripts/test.sh sets it to ../shared/conformance/promql)"
        ),
    };
    let mut path = PathBuf::from(&dir);
    if path.is_relative() {
        path = workspace_root().join(path);
    }
    assert!(path.is_dir(), "CAIRN_PROMQL_TESTS={dir} is not a directory");
    let floor_file = workspace_root().join("tests/promql/conformance-floor.txt");
    let floors =
        std::fs::read_to_string(&floor_file).expect("reading tests/promql/conformance-floor.txt");
    let floor = |key: &str| -> usize {
        floors
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == key)
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("the floor file has no `{key}: N` line"))
    };
    let (floor, stable_floor) = (floor("all"), floor("stable"));
    let mut out = Vec::new();
    let summary = cairn_promqltest::run_paths(&[path], false, &mut out).expect("running scripts");
    println!("{}", String::from_utf8_lossy(&out));
    assert!(
        summary.passed > 0,
        "no script passed: is the directory right?"
    );
    assert!(
        summary.passed >= floor,
        "PromQL conformance regressed: {} evals passed, floor is {floor}",
        summary.passed
    );
    let stable: usize = summary
        .files
        .iter()
        .filter(|f| {
            let name = f.path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            STABLE.contains(&name)
        })
        .map(|f| f.passed)
        .sum();
    assert!(
        stable >= stable_floor,
        "PromQL conformance of the stable files regressed: {stable} evals passed, floor is {stable_floor}"
    );
}

/// Prometheus's test files for features that need no feature flag.
const STABLE: [&str; 13] = [
    "aggregators.test",
    "at_modifier.test",
    "collision.test",
    "functions.test",
    "histograms.test",
    "literals.test",
    "name_label_dropping.test",
    "operators.test",
    "range_queries.test",
    "selectors.test",
    "staleness.test",
    "subquery.test",
    "trig_functions.test",
];

#[test]
fn project_scripts_all_pass() {
    let dir = workspace_root().join("tests/promql");
    let mut out = Vec::new();
    let summary = cairn_promqltest::run_paths(&[dir], true, &mut out).expect("running scripts");
    let report = String::from_utf8_lossy(&out);
    println!("{report}");
    assert!(summary.passed >= 20, "too few project evals ran: {report}");
    assert_eq!(
        summary.failed, 0,
        "project PromQL scripts failed:\n{report}"
    );
}

#[test]
fn project_server_scripts_all_pass() {
    let dir = workspace_root().join("tests/promql/server");
    let mut out = Vec::new();
    let opts = cairn_promql::EngineOptions::default();
    let summary =
        cairn_promqltest::run_paths_with(&[dir], &opts, true, &mut out).expect("running scripts");
    let report = String::from_utf8_lossy(&out);
    println!("{report}");
    assert!(summary.passed >= 15, "too few project evals ran: {report}");
    assert_eq!(
        summary.failed, 0,
        "project PromQL scripts failed:\n{report}"
    );
}
