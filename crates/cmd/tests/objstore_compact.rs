//! Blocks that are only in the bucket are still maintained by their
//! owner: a Cairn keeping two hours locally uploads 2 h blocks, which
//! local retention then deletes; restarted with bucket compaction on
//! (`--objstore.max-block-duration=6h`) and downsampling on, it compacts
//! those bucket-only blocks into 6 h blocks (read by byte range from the
//! bucket, written locally, uploaded), marks the inputs for deletion, and
//! uploads 5-minute blocks made from them. Every answer stays exact
//! throughout: each minute's sample once, never twice.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use support::*;

const HOUR: i64 = 3_600_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Every minute from `start` to `end` once, valued by its index, for each
/// of three GPUs.
fn check_exact(base: &str, start: i64, end: i64) {
    let q = format!(
        "{base}/api/v1/query_range?query=DCGM_FI_DEV_GPU_UTIL&start={}&end={}&step=60&max_source_resolution=raw",
        start / 1000,
        end / 1000
    );
    let r = get(&q);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let res = j["data"]["result"].as_array().unwrap();
    assert_eq!(res.len(), 3, "{j}");
    let n = ((end - start) / 60_000 + 1) as usize;
    for s in res {
        let vals = s["values"].as_array().unwrap();
        assert_eq!(vals.len(), n, "{}", s["metric"]);
        for (i, v) in vals.iter().enumerate() {
            assert_eq!(v[1], i.to_string().as_str(), "{} at step {i}", s["metric"]);
        }
    }
    // One sample a minute: a block and the blocks it replaced are never
    // both read.
    let q = format!(
        "{base}/api/v1/query?query=count_over_time(DCGM_FI_DEV_GPU_UTIL[{}s])&time={}&max_source_resolution=raw",
        (end - start) / 1000 + 1,
        end / 1000
    );
    let j = get(&q).json();
    for s in j["data"]["result"].as_array().unwrap() {
        assert_eq!(s["value"][1], n.to_string().as_str(), "{j}");
    }
}

fn ulids(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["ulid"].as_str().or(p.as_str()).map(str::to_owned))
        .collect()
}

#[test]
fn blocks_only_in_the_bucket_are_compacted_and_downsampled_by_their_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (bucket, cfg) = fs_bucket_config(tmp.path());
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let objstore = format!("--objstore.config-file={}", cfg.display());
    let common = [
        "--storage.tsdb.maintenance-interval=1s",
        "--storage.tsdb.retention.time=2h",
        "--storage.external-label=cluster=gpu-a",
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        common
            .iter()
            .map(|s| s.to_string())
            .chain([objstore.clone()])
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };

    // First without bucket compaction or downsampling: 2 h blocks go to
    // the bucket and leave the local directory.
    let first = with(&[
        "--objstore.max-block-duration=0",
        "--storage.tsdb.downsample=false",
    ]);
    let c = start_cairn(
        &data,
        port,
        &first.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // Fourteen to twenty hours of a sample a minute, starting on a 6 h
    // boundary, so that two whole 6 h windows are in the bucket.
    let start = (now_ms() - 20 * HOUR) / (6 * HOUR) * (6 * HOUR) + 6 * HOUR;
    let end = now_ms() / 60_000 * 60_000;
    let minutes = (end - start) / 60_000;
    write_gpu_minutes(&base, start, minutes);
    let deadline = Instant::now() + Duration::from_secs(120);
    let bucket_only: BTreeSet<String> = loop {
        let local: BTreeSet<String> = blocks(&data).into_iter().collect();
        let only: BTreeSet<String> = bucket_blocks(&bucket)
            .into_iter()
            .map(|(u, _)| u)
            .filter(|u| !local.contains(u))
            .collect();
        if only.len() >= 4 {
            break only;
        }
        assert!(Instant::now() < deadline, "bucket-only blocks: {only:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Nothing compacted them: each is one 2 h block of its own.
    for (u, m) in bucket_blocks(&bucket) {
        if bucket_only.contains(&u) {
            assert_eq!(
                m["maxTime"].as_i64().unwrap() - m["minTime"].as_i64().unwrap(),
                2 * HOUR
            );
        }
    }
    check_exact(&base, start, end - 30 * 60_000);
    drop(c);

    // Restarted with bucket compaction (2 h and 6 h ranges) and
    // downsampling on.
    let second = with(&["--objstore.max-block-duration=6h"]);
    let _c = start_cairn(
        &data,
        port,
        &second.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let (compacted, parents) = loop {
        let all = bucket_blocks(&bucket);
        let found = all.iter().find_map(|(u, m)| {
            let p = ulids(&m["compaction"]["parents"]);
            let from_bucket = p.iter().filter(|x| bucket_only.contains(*x)).count();
            (m["thanos"]["downsample"]["resolution"].as_i64() == Some(0)
                && m["maxTime"].as_i64().unwrap() - m["minTime"].as_i64().unwrap() == 6 * HOUR
                && from_bucket >= 2)
                .then(|| (u.clone(), p))
        });
        let marked = |p: &BTreeSet<String>| {
            p.iter()
                .filter(|x| bucket_only.contains(*x))
                .all(|x| bucket.join(x).join("deletion-mark.json").exists())
        };
        let downsampled = all.iter().any(|(_, m)| {
            m["thanos"]["downsample"]["resolution"].as_i64() == Some(300_000)
                && found.as_ref().is_some_and(|(u, _)| {
                    ulids(&m["compaction"]["parents"]).contains(u)
                        || ulids(&m["compaction"]["sources"])
                            .iter()
                            .any(|s| bucket_only.contains(s))
                })
        });
        if let Some((u, p)) = &found {
            if marked(p) && downsampled {
                break (u.clone(), p.clone());
            }
        }
        assert!(
            Instant::now() < deadline,
            "no compacted, marked and downsampled bucket block yet: {:?}",
            all.iter()
                .map(|(u, m)| (u, &m["minTime"], &m["maxTime"], &m["thanos"]["downsample"]))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // The 6 h block's inputs were only in the bucket, and its mark names it.
    let input = parents.iter().find(|p| bucket_only.contains(*p)).unwrap();
    let mark: serde_json::Value = serde_json::from_slice(
        &std::fs::read(bucket.join(input).join("deletion-mark.json")).unwrap(),
    )
    .unwrap();
    assert!(
        mark["details"].as_str().unwrap().contains(&compacted),
        "{mark}"
    );
    // Local retention lets the compacted block go once the bucket has it.
    let deadline = Instant::now() + Duration::from_secs(60);
    while blocks(&data).contains(&compacted) {
        assert!(Instant::now() < deadline, "{compacted} still local");
        std::thread::sleep(Duration::from_millis(200));
    }
    check_exact(&base, start, end - 30 * 60_000);
}
