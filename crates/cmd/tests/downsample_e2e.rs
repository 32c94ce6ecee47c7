//! Downsampling end to end, with real processes: `cairn-loadgen blocks`
//! writes four days of the simulated GPU cluster, `cairn tsdb downsample`
//! adds the 5-minute and 1-hour levels (the last day's are then removed:
//! the state of a server whose newest day is not downsampled yet), and
//! `cairn serve` answers Grafana-style range queries with
//! `max_source_resolution` unset, `raw`, `5m` and `1h`. Prometheus 2.42
//! started on a copy of the raw blocks is the reference for raw answers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use cairn_loadgen::blocks::{run as write_history, BlocksArgs};
use support::*;

const H: i64 = 3600;
/// 2025-12-06T00:00:00Z, a multiple of a day: the data's end.
const END: i64 = 1_764_979_200;
const DAYS: i64 = 4;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

type Answer = BTreeMap<String, Vec<(i64, f64)>>;

fn query(port: u16, q: &str, start: i64, end: i64, step: i64, res: Option<&str>) -> Answer {
    let mut form = vec![
        ("query", q.to_owned()),
        ("start", start.to_string()),
        ("end", end.to_string()),
        ("step", step.to_string()),
    ];
    if let Some(r) = res {
        form.push(("max_source_resolution", r.to_owned()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = post_form(
        &format!("http://127.0.0.1:{port}/api/v1/query_range"),
        &form,
    );
    let j = r.json();
    assert_eq!(j["status"], "success", "{q} ({res:?}): {j}");
    j["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let pts = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let t = p[0].as_f64().unwrap() as i64;
                    (t, p[1].as_str().unwrap().parse::<f64>().unwrap())
                })
                .collect();
            (s["metric"].to_string(), pts)
        })
        .collect()
}

fn assert_close(what: &str, want: &Answer, got: &Answer, rel: f64) {
    assert!(!want.is_empty(), "{what}: empty reference");
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{what}: series differ"
    );
    for (k, w) in want {
        let g = &got[k];
        assert_eq!(w.len(), g.len(), "{what}: {k}: points differ");
        for (a, b) in w.iter().zip(g) {
            let ok = a.0 == b.0
                && (a.1 == b.1
                    || (a.1.is_nan() && b.1.is_nan())
                    || (a.1 - b.1).abs() <= rel * a.1.abs().max(b.1.abs()));
            assert!(ok, "{what}: {k}: want {a:?} got {b:?}");
        }
    }
}

#[test]
fn downsampled_answers_match_raw_and_prometheus() {
    require_tool("/usr/bin/prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let cairn_dir = tmp.path().join("cairn");
    let mut sink = Vec::new();
    write_history(
        &BlocksArgs {
            out: cairn_dir.clone(),
            nodes: 2,
            days: DAYS as f64,
            interval: "30s".into(),
            block_hours: 24,
            end: Some(END.to_string()),
            seed: 7,
            pod_lifetime_scrapes: 1440,
            jitter_ms: 0,
            threads: Some(2),
            group_by_name: false,
        },
        &mut sink,
    )
    .unwrap();
    // Prometheus gets the raw blocks alone.
    let prom = tmp.path().join("prom");
    copy_dir(&cairn_dir, &prom.join("data"));

    let out = run(Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["tsdb", "downsample"])
        .arg(&cairn_dir));
    // One 5m and one 1h block per day, then each level's days merged
    // where the server's planner would merge them (aligned windows, the
    // newest block left alone): fewer blocks.
    let (n5, n1) = (
        out.matches("resolution 5m").count(),
        out.matches("resolution 1h").count(),
    );
    let days = DAYS as usize;
    assert!(
        (1..=days).contains(&n5) && (1..=days).contains(&n1) && n5 + n1 < 2 * days,
        "{out}"
    );
    // The newest day's levels go: that day is raw only, as on a server
    // that has not downsampled it yet.
    let last_day = (END - 24 * H) * 1000;
    for e in std::fs::read_dir(&cairn_dir).unwrap() {
        let p = e.unwrap().path();
        let Ok(meta) = std::fs::read_to_string(p.join("meta.json")) else {
            continue;
        };
        let m: serde_json::Value = serde_json::from_str(&meta).unwrap();
        let res = m["thanos"]["downsample"]["resolution"]
            .as_i64()
            .unwrap_or(0);
        if res > 0 && m["minTime"].as_i64().unwrap() > last_day {
            std::fs::remove_dir_all(&p).unwrap();
        }
    }
    let analyze = run(Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["tsdb", "analyze"])
        .arg(&cairn_dir));
    assert!(analyze.contains("Resolution: "), "{analyze}");

    let (cp, pp) = (free_port(), free_port());
    let _cairn = start_cairn(&cairn_dir, cp, &["--storage.tsdb.retention.time=0s"]);
    let _prom = start_prometheus(
        &prom,
        pp,
        "global:\n  scrape_interval: 1h\n",
        &[
            "--storage.tsdb.retention.time=10y",
            "--storage.tsdb.max-block-duration=24h",
        ],
    );

    let start = END - (DAYS - 1) * 24 * H; // a day in, so windows have data
                                           // Raw: identical to Prometheus. Steps 7 s off the scrape grid, so no
                                           // sample sits on a window's start, where Prometheus 2.x (closed
                                           // ranges) and 3.x (left-open, Cairn's) differ.
    for q in [
        "avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)",
        "sum by (Hostname) (rate(DCGM_FI_PROF_PCIE_RX_BYTES[1h]))",
        "max_over_time(DCGM_FI_DEV_GPU_TEMP[1h])",
        "count_over_time(DCGM_FI_DEV_POWER_USAGE[1h])",
        "sum by (Hostname) (rate(node_cpu_seconds_total{mode=\"idle\"}[1h]))",
    ] {
        let (a, z) = (start + 7, END - H + 7);
        let want = query(pp, q, a, z, H, None);
        assert_close(
            &format!("raw {q}"),
            &want,
            &query(cp, q, a, z, H, Some("raw")),
            1e-9,
        );
    }
    // Over time functions at aligned steps and windows: exact at every
    // level, across the edge where downsampled data ends (a day before END);
    // the reference is Cairn's raw answer (PromQL 3's ranges).
    for q in [
        "max_over_time(DCGM_FI_DEV_GPU_UTIL[1h])",
        "min_over_time(DCGM_FI_DEV_GPU_TEMP[3h])",
        "count_over_time(DCGM_FI_DEV_POWER_USAGE[1h])",
        "sum_over_time(DCGM_FI_DEV_POWER_USAGE[2h])",
        "max by (Hostname) (max_over_time(DCGM_FI_DEV_MEMORY_TEMP[1h]))",
    ] {
        let want = query(cp, q, start, END, H, Some("raw"));
        for res in ["5m", "1h"] {
            let got = query(cp, q, start, END, H, Some(res));
            assert_close(&format!("{res} {q}"), &want, &got, 1e-9);
        }
    }
    // Counters: rates over windows of at least four points within 1%.
    for (res, q) in [
        (
            "5m",
            "sum by (Hostname) (rate(node_cpu_seconds_total{mode=\"idle\"}[1h]))",
        ),
        (
            "1h",
            "sum by (Hostname) (rate(node_cpu_seconds_total{mode=\"idle\"}[6h]))",
        ),
        (
            "5m",
            "sum (increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[3h]))",
        ),
    ] {
        let want = query(cp, q, start, END, H, Some("raw"));
        assert_close(
            &format!("{res} {q}"),
            &want,
            &query(cp, q, start, END, H, Some(res)),
            0.01,
        );
    }
    // Unset: auto. A 1 m step reads raw; a 1 h step reads 5-minute data
    // where it exists, raw data after it.
    let q = "avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)";
    let (a, z) = (END - 30 * H, END - 18 * H); // spans the edge
    assert_close(
        "auto 1m",
        &query(pp, q, a + 7, a + 2 * H + 7, 60, None),
        &query(cp, q, a + 7, a + 2 * H + 7, 60, None),
        1e-9,
    );
    let auto = query(cp, q, a, z, H, None);
    assert_eq!(auto, query(cp, q, a, z, H, Some("5m")));
    let raw = query(cp, q, a, z, H, Some("raw"));
    let differs = |k: &String, before: bool| {
        auto[k]
            .iter()
            .zip(&raw[k])
            .filter(|(x, _)| (x.0 <= END - 24 * H) == before)
            .any(|(x, y)| x.1 != y.1)
    };
    for k in raw.keys() {
        // Averages of windows before the edge, the raw values after it.
        assert!(differs(k, true), "{k}: auto read raw data before the edge");
        assert!(
            !differs(k, false),
            "{k}: auto differs from raw after the edge"
        );
    }
    // A bad resolution is a 400 with a message.
    let r = post_form(
        &format!("http://127.0.0.1:{cp}/api/v1/query"),
        &[("query", "up"), ("max_source_resolution", "fast")],
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("max_source_resolution"));
}
