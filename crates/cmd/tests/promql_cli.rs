//! `cairn promql test` as a user runs it on their own scripts.

mod support;

use support::cairn;

#[test]
fn runs_scripts_and_reports_the_count_last() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.test");
    std::fs::write(
        &good,
        "load 1m\n  gpu_util{gpu=\"0\"} 10 20 30\n  gpu_util{gpu=\"1\"} 50 50 50\n\n\
         eval instant at 2m avg(gpu_util)\n  {} 40\n\n\
         eval instant at 2m max by (gpu) (gpu_util)\n  {gpu=\"0\"} 30\n  {gpu=\"1\"} 50\n",
    )
    .unwrap();
    let out = cairn()
        .args(["promql", "test"])
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.lines().last(), Some("2 passed, 0 failed"), "{text}");

    let bad = tmp.path().join("bad.test");
    std::fs::write(
        &bad,
        "load 1m\n  up 1 1 1\n\neval instant at 1m up\n  up 2\n",
    )
    .unwrap();
    let out = cairn()
        .args(["promql", "test", "-v"])
        .arg(&bad)
        .arg(&good)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "a failing eval must fail the command: {text}"
    );
    assert_eq!(text.lines().last(), Some("2 passed, 1 failed"), "{text}");
    assert!(
        text.contains("bad.test"),
        "failures name their file: {text}"
    );

    // The project's own scripts all pass through the CLI too.
    let ours = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/promql");
    let out = cairn()
        .args(["promql", "test"])
        .arg(&ours)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.ends_with(" 0 failed")),
        "{text}"
    );
}
