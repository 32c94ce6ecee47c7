//! `/debug/memory` on the real binary: the head's components per series,
//! the write caches and RSS, after remote-write traffic.
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

fn row(page: &str, name: &str) -> (u64, f64) {
    let line = page
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in\n{page}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    (
        f[f.len() - 2].parse().unwrap(),
        f[f.len() - 1].parse().unwrap(),
    )
}

#[test]
fn reports_components_per_series_after_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut p = start_cairn(dir.path(), port, &[]);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/-/ready"), Duration::from_secs(20));
    let now = 1_700_000_000_000i64;
    let samples: Vec<(Labels, i64, f64)> = (0..500)
        .flat_map(|i| {
            let l = Labels::from_pairs([
                ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
                ("Hostname", "node-0001"),
                ("gpu", &(i % 8).to_string()),
                ("pod", &format!("train-{i}")),
            ]);
            (0..20).map(move |k| (l.clone(), now + k * 15_000, (k * 3 + i) as f64 / 7.0))
        })
        .collect();
    for part in samples.chunks(2000) {
        let r = remote_write(&format!("{base}/api/v1/write"), part).unwrap();
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let page = get(&format!("{base}/debug/memory")).text();
    assert!(page.contains("/ 500 head series"), "{page}");
    let (labels, per) = row(&page, "storage.labels");
    assert!(labels > 500 * 60 && per > 60.0 && per < 200.0, "{page}");
    let (open, _) = row(&page, "storage.open_chunks");
    let (written, _) = row(&page, "  (of which) storage.open_chunk_bytes");
    assert!(written > 500 * 40 && written <= open, "{page}");
    let (cache, _) = row(&page, "write.shared_cache");
    assert!(cache > 0, "{page}");
    let (counted, _) = row(&page, "counted");
    let (rss, _) = row(&page, "rss ");
    assert!(rss > counted, "{page}");
    p.kill9();
}
