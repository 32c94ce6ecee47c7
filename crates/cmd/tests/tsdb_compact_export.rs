//! `cairn tsdb compact` and `cairn tsdb export` as a user runs them: XOR
//! blocks from a backfill compact into dense blocks with an unchanged dump;
//! a dense directory exported with `--chunk-encoding xor` is dumped by the
//! real promtool exactly as Cairn dumps the source, and the real Prometheus
//! serving the export answers queries as Cairn serving the source does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

/// Seconds; aligned to 2 h so that backfilled blocks are whole ranges.
const T0: i64 = 1_699_999_200;
/// 6 series, one sample a minute for 9 hours.
const SERIES: i64 = 6;
const STEPS: i64 = 540;

fn openmetrics() -> String {
    let mut s = String::from("# HELP gpu_util GPU utilisation.\n# TYPE gpu_util gauge\n");
    for gpu in 0..SERIES {
        for i in 0..STEPS {
            let v = ((i * 37 + gpu * 11) % 100) as f64 + 0.25 * gpu as f64;
            s.push_str(&format!(
                "gpu_util{{gpu=\"{gpu}\",Hostname=\"n1\"}} {v} {}\n",
                T0 + i * 60
            ));
        }
    }
    s.push_str("# EOF\n");
    s
}

/// A directory of 2h XOR blocks backfilled from [`openmetrics`].
fn backfilled(tmp: &Path) -> std::path::PathBuf {
    let om = tmp.join("in.om");
    std::fs::write(&om, openmetrics()).unwrap();
    let dir = tmp.join("data");
    run(cairn()
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&dir));
    assert_eq!(blocks(&dir).len(), 5, "9 hours of 2h blocks");
    dir
}

/// The ULIDs of the `BLOCK <ulid> compacted ...` lines of compact's output.
fn compacted(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| l.contains(" compacted level "))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(str::to_owned)
        .collect()
}

#[test]
fn compact_command_makes_dense_blocks_with_an_unchanged_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = backfilled(tmp.path());
    for b in blocks(&dir) {
        let a = run(cairn().args(["tsdb", "analyze"]).arg(&dir).arg(&b));
        assert!(a.contains("Chunk encodings: xor "), "{a}");
    }
    let before = run(cairn().args(["tsdb", "dump"]).arg(&dir));
    assert_eq!(before.lines().count() as i64, SERIES * STEPS);

    let out = run(cairn().args(["tsdb", "compact"]).arg(&dir));
    let new = compacted(&out);
    assert!(!new.is_empty(), "{out}");
    assert!(
        out.contains(&format!(
            "blocks 5 -> {}, raw samples {} -> {}",
            blocks(&dir).len(),
            SERIES * STEPS,
            SERIES * STEPS
        )),
        "{out}"
    );
    for b in &new {
        let a = run(cairn().args(["tsdb", "analyze"]).arg(&dir).arg(b));
        assert!(a.contains("Chunk encodings: dense "), "{a}");
        assert!(!a.contains("xor"), "{a}");
    }
    assert_eq!(run(cairn().args(["tsdb", "dump"]).arg(&dir)), before);

    // Bad flags are refused with the accepted values.
    let bad = cairn()
        .args(["tsdb", "compact", "--chunk-encoding", "gorilla"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("expected dense, xor or xor2"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// `data.result` of a Prometheus-API query answer.
fn result(base: &str, path_and_query: &str) -> serde_json::Value {
    let r = get(&format!("{base}{path_and_query}"));
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "success", "{j}");
    j["data"]["result"].clone()
}

#[test]
fn exported_dense_directory_is_read_by_promtool_and_prometheus() {
    require_tool("/usr/bin/promtool");
    require_tool("/usr/bin/prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let src = backfilled(tmp.path());
    run(cairn().args(["tsdb", "compact"]).arg(&src));
    let dense = blocks(&src)
        .iter()
        .filter(|b| {
            run(cairn().args(["tsdb", "analyze"]).arg(&src).arg(b)).contains("encodings: dense")
        })
        .count();
    assert!(dense > 0, "the source holds dense blocks");
    let src_dump = run(cairn().args(["tsdb", "dump"]).arg(&src));

    // Export into what will be Prometheus's data directory.
    let prom = tmp.path().join("prom");
    let dst = prom.join("data");
    let out = run(cairn()
        .args(["tsdb", "export", "--chunk-encoding", "xor"])
        .arg(&src)
        .arg(&dst));
    // Raw blocks keep their ULIDs; the downsampled levels the compaction
    // made are skipped with a message.
    let skipped: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("SKIP ") && l.contains("downsampled"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|u| u.trim_end_matches(':'))
        .collect();
    assert!(!skipped.is_empty(), "{out}");
    let raw: Vec<String> = blocks(&src)
        .into_iter()
        .filter(|b| !skipped.contains(&b.as_str()))
        .collect();
    assert_eq!(blocks(&dst), raw, "same ULIDs: {out}");
    let promtool_dump = run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "dump"])
        .arg(&dst));
    assert_eq!(sorted_lines(&promtool_dump), sorted_lines(&src_dump));
    // A second export into the same place refuses.
    let again = cairn()
        .args(["tsdb", "export"])
        .arg(&src)
        .arg(&dst)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds block"));

    // Prometheus on the export and Cairn on (a copy of) the source agree.
    let cairn_dir = tmp.path().join("cairn");
    copy_dir(&src, &cairn_dir);
    let (pp, cp) = (free_port(), free_port());
    let mut p = start_prometheus(&prom, pp, "global:\n  scrape_interval: 1h\n", &[]);
    let mut c = start_cairn(&cairn_dir, cp, &[]);
    let end = T0 + (STEPS - 1) * 60;
    let count = format!(
        "/api/v1/query?query={}&time={end}",
        enc("sum(count_over_time({__name__=~\".+\"}[12h]))")
    );
    let range = format!(
        "/api/v1/query_range?query={}&start={T0}&end={end}&step=60",
        enc("gpu_util{gpu=\"1\"}")
    );
    for q in [&count, &range] {
        let want = result(&format!("http://127.0.0.1:{pp}"), q);
        let got = result(&format!("http://127.0.0.1:{cp}"), q);
        assert_eq!(got, want, "{q}");
    }
    let total = result(&format!("http://127.0.0.1:{pp}"), &count);
    assert_eq!(total[0]["value"][1], (SERIES * STEPS).to_string());
    let points = result(&format!("http://127.0.0.1:{pp}"), &range);
    assert_eq!(points[0]["values"].as_array().unwrap().len() as i64, STEPS);
    p.kill9();
    c.kill9();
}

#[test]
fn compact_command_cuts_the_wal_of_a_killed_server_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let port = free_port();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let base = (now - 3 * 3_600_000) / 60_000 * 60_000;
    let (series, steps) = (6i64, 150i64);
    {
        let mut c = start_cairn(&dir, port, &[]);
        let mut batch = Vec::new();
        for i in 0..steps {
            for g in 0..series {
                let l = cairn_model::Labels::from_pairs([
                    ("__name__", "gpu_util"),
                    ("gpu", &g.to_string()),
                ]);
                batch.push((l, base + i * 60_000, ((i * 7 + g * 13) % 101) as f64));
            }
        }
        let r = remote_write(&format!("http://127.0.0.1:{port}/api/v1/write"), &batch).unwrap();
        assert_eq!(r.status / 100, 2, "{}", r.text());
        // Acknowledged writes are in the WAL: kill without a shutdown.
        c.kill9();
    }
    assert!(blocks(&dir).is_empty());
    let before = run(cairn().args(["tsdb", "dump"]).arg(&dir));
    assert_eq!(before.lines().count() as i64, series * steps);

    let out = run(cairn().args(["tsdb", "compact"]).arg(&dir));
    assert!(out.contains(" cut level 1 "), "{out}");
    assert!(!blocks(&dir).is_empty(), "{out}");
    // Reopened (twice): every sample once, from blocks.
    for _ in 0..2 {
        assert_eq!(run(cairn().args(["tsdb", "dump"]).arg(&dir)), before);
    }
    let again = run(cairn().args(["tsdb", "compact"]).arg(&dir));
    assert!(
        again.contains("0 new blocks (0 cut from the head)"),
        "{again}"
    );
}
