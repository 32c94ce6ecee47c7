//! Runs Prometheus's PromQL test scripts (from `$CAIRN_PROMQL_TESTS`) and
//! fails when the total pass count drops below the recorded floor, and runs
//! the project's own scripts in `tests/promql/`, which must all pass.

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
    let floor: usize = std::fs::read_to_string(&floor_file)
        .expect("reading tests/promql/conformance-floor.txt")
        .lines()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .and_then(|l| l.trim().parse().ok())
        .expect("the floor file holds a number");
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
}

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
