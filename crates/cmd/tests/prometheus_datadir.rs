//! Cairn opens a data directory that Prometheus wrote and serves it as it
//! is: blocks (backfilled by promtool), Prometheus's own WAL and its
//! memory-mapped head chunks. `cairn tsdb dump` must print exactly what
//! `promtool tsdb dump` prints for the same directory, and `cairn serve` on
//! it must answer queries over both the blocks and the head.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::process::Command;
use std::time::Duration;

use cairn_model::Labels;
use support::*;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sorted(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v
}

#[test]
fn cairn_reads_what_prometheus_wrote() {
    require_tool("/usr/bin/prometheus");
    require_tool("/usr/bin/promtool");
    let tmp = tempfile::tempdir().unwrap();
    let prom_dir = tmp.path().join("prom");
    let port = free_port();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now - 3_000_000) / 1000 * 1000;

    // 1. Prometheus writes a head (WAL + chunks_head) from remote writes: 300
    //    samples per series, enough for full chunks to be mmapped.
    {
        let mut prom = start_prometheus(
            &prom_dir,
            port,
            "global:\n  scrape_interval: 1h\n",
            &["--web.enable-remote-write-receiver"],
        );
        let mut batch = Vec::new();
        for i in 0..300i64 {
            for g in 0..8 {
                let l = Labels::from_pairs([
                    ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
                    ("gpu", &g.to_string()),
                    ("Hostname", "gpu-node-0001"),
                ]);
                batch.push((l, base + i * 10_000, ((i * 7 + g * 13) % 101) as f64));
            }
            if batch.len() >= 800 {
                let r =
                    remote_write(&format!("http://127.0.0.1:{port}/api/v1/write"), &batch).unwrap();
                assert_eq!(r.status / 100, 2, "{}", r.text());
                batch.clear();
            }
        }
        assert!(
            prom.terminate(Duration::from_secs(30)),
            "Prometheus did not stop on SIGTERM"
        );
    }

    // 2. promtool backfills two days-old blocks into the same directory.
    let om = tmp.path().join("old.om");
    let mut text = String::from("# TYPE node_load1 gauge\n");
    let old = (now - 2 * 86_400_000) / 1000;
    for i in 0..1000i64 {
        text.push_str(&format!(
            "node_load1{{instance=\"n1:9100\"}} {} {}\n",
            (i % 37) as f64 / 4.0,
            old + i * 15
        ));
    }
    text.push_str("# EOF\n");
    std::fs::write(&om, text).unwrap();
    run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(prom_dir.join("data")));

    // 3. Both dumps agree, read from separate copies so neither tool sees the other's writes.
    let for_promtool = tmp.path().join("for-promtool");
    let for_cairn = tmp.path().join("for-cairn");
    copy_dir(&prom_dir.join("data"), &for_promtool);
    copy_dir(&prom_dir.join("data"), &for_cairn);
    let theirs = run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "dump"])
        .arg(&for_promtool));
    let ours = run(Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["tsdb", "dump"])
        .arg(&for_cairn));
    assert_eq!(
        theirs.lines().count(),
        8 * 300 + 1000,
        "promtool sees every sample"
    );
    assert_eq!(
        sorted(&ours),
        sorted(&theirs),
        "cairn tsdb dump equals promtool tsdb dump"
    );

    // 4. cairn serve on Prometheus's directory answers over blocks and head.
    let serve_dir = tmp.path().join("serve");
    copy_dir(&prom_dir.join("data"), &serve_dir);
    let again_dir = tmp.path().join("again");
    copy_dir(&prom_dir, &again_dir);
    let cport = free_port();
    let _c = start_cairn(&serve_dir, cport, &[]);
    let url = format!("http://127.0.0.1:{cport}");
    let t = ((base + 299 * 10_000) / 1000).to_string();
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[
            ("query", "count_over_time(DCGM_FI_DEV_GPU_UTIL[1h])"),
            ("time", &t),
        ],
    );
    let v = r.json();
    let counts: Vec<&str> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"][1].as_str().unwrap())
        .collect();
    assert_eq!(counts, vec!["300"; 8], "{v}");
    let t_old = (old + 999 * 15).to_string();
    let r = post_form(
        &format!("{url}/api/v1/query"),
        &[
            ("query", "count_over_time(node_load1[1d])"),
            ("time", &t_old),
        ],
    );
    assert_eq!(r.json()["data"]["result"][0]["value"][1], "1000");

    // /api/v1/status/tsdb/blocks lists each block's meta.json as
    // promtool wrote it (Prometheus 3's endpoint; 2.42 has none).
    let listed = get(&format!("{url}/api/v1/status/tsdb/blocks")).json();
    let mut on_disk: Vec<serde_json::Value> = std::fs::read_dir(&serve_dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path().join("meta.json");
            p.exists()
                .then(|| serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap())
        })
        .collect();
    on_disk.sort_by_key(|m: &serde_json::Value| m["minTime"].as_i64());
    assert!(!on_disk.is_empty());
    assert_eq!(listed["data"]["blocks"], serde_json::Value::Array(on_disk));

    // 5. Both say the same about the WAL they replayed on the way up.
    let pport = free_port();
    let _p = start_prometheus(&again_dir, pport, "global:\n  scrape_interval: 1h\n", &[]);
    let theirs = get(&format!("http://127.0.0.1:{pport}/api/v1/status/walreplay")).json();
    let ours = get(&format!("{url}/api/v1/status/walreplay")).json();
    assert_eq!(theirs["status"], "success", "{theirs}");
    assert!(theirs["data"]["max"].as_u64().unwrap() > 0, "{theirs}");
    assert_eq!(ours, theirs);
}
