//! `cairn serve` writes its head snapshot on SIGTERM and the next start
//! uses it instead of replaying the WAL; with
//! `--storage.tsdb.head-snapshot=false` it writes none and the next start
//! replays. Either way every sample is there, and appends go on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::time::Duration;

use cairn_model::Labels;
use support::*;

const SERIES: usize = 30;
const STEP: i64 = 15_000;

fn write(url: &str, from: i64, to: i64) {
    for batch in (from..to).step_by(50) {
        let mut samples = Vec::new();
        for k in 0..SERIES {
            let l = Labels::from_pairs([
                ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
                ("gpu", &k.to_string()),
            ]);
            for i in batch..(batch + 50).min(to) {
                samples.push((l.clone(), i * STEP, ((i * 7 + k as i64) % 100) as f64));
            }
        }
        let r = remote_write(&format!("{url}/api/v1/write"), &samples).unwrap();
        assert!(r.status / 100 == 2, "write: {}", r.text());
    }
}

/// Every stored sample before step `to`, as "series t value" lines.
fn stored(url: &str, to: i64) -> Vec<String> {
    let q = enc("DCGM_FI_DEV_GPU_UTIL[2h]");
    let r = get(&format!(
        "{url}/api/v1/query?query={q}&time={}",
        (to - 1) * STEP / 1000
    ))
    .json();
    let mut out = Vec::new();
    for s in r["data"]["result"].as_array().unwrap() {
        let gpu = s["metric"]["gpu"].as_str().unwrap().to_string();
        for v in s["values"].as_array().unwrap() {
            out.push(format!("{gpu} {} {}", v[0], v[1]));
        }
    }
    out.sort();
    out
}

fn log(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.with_extension("log")).unwrap()
}

#[test]
fn sigterm_writes_the_snapshot_and_the_next_start_uses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let snap = dir.join("head_snapshot");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");

    let mut p = start_cairn(&dir, port, &[]);
    write(&url, 0, 230);
    let want = stored(&url, 230);
    assert_eq!(want.len(), SERIES * 230);
    assert!(p.terminate(Duration::from_secs(60)), "cairn did not stop");
    assert!(
        snap.exists(),
        "no head snapshot after SIGTERM:\n{}",
        log(&dir)
    );

    let mut p = start_cairn(&dir, port, &[]);
    let l = log(&dir);
    assert!(l.contains("head loaded from its snapshot"), "{l}");
    assert!(!l.contains("WAL replay done"), "{l}");
    assert!(!snap.exists(), "a used snapshot is deleted");
    assert_eq!(stored(&url, 230), want);
    // Appends go on after the sealed chunks.
    write(&url, 230, 260);
    let want = stored(&url, 260);
    assert_eq!(want.len(), SERIES * 260);

    // Off: no snapshot, the next start replays the WAL, nothing is lost.
    assert!(p.terminate(Duration::from_secs(60)));
    let mut p = start_cairn(&dir, port, &["--storage.tsdb.head-snapshot=false"]);
    assert!(log(&dir).contains("head loaded from its snapshot"));
    assert!(p.terminate(Duration::from_secs(60)));
    assert!(!snap.exists(), "a snapshot was written with the flag off");
    let _p = start_cairn(&dir, port, &[]);
    let l = log(&dir);
    assert!(l.contains("WAL replay done"), "{l}");
    assert_eq!(stored(&url, 260), want);
}
