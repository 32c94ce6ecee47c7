//! The GPU-cluster pack (`deploy/`): `promtool check rules` accepts its
//! rules, and every rule expression and every dashboard query (Grafana's
//! variables set to "All"), run against Cairn and against Prometheus 2.42
//! holding the same simulated GPU-cluster hour, succeeds on both, returns
//! something, and gives the same answer. The hour has a faulty node and
//! unhealthy Cairn and Prometheus series (so that every alert has something
//! to say) and Cairn's own /metrics, scraped while the data went in (for
//! the Cairn dashboard).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_gpusim::{mix, ClusterSpec};
use cairn_model::Labels;
use support::*;

const STEP_MS: i64 = 15_000;
const SCRAPES: u64 = 240;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn rule_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(deploy().join("rules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v
}

/// (rule name, expression, is alert) of every rule of every file.
fn rule_exprs() -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for f in rule_files() {
        let y: serde_json::Value = {
            // The rule files are YAML; promtool has checked them. Their
            // expressions are single-line scalars, read here line by line.
            let text = std::fs::read_to_string(&f).unwrap();
            let mut rules = Vec::new();
            let mut name: Option<(String, bool)> = None;
            for l in text.lines() {
                let t = l.trim_start().trim_start_matches("- ");
                if let Some(n) = t.strip_prefix("record: ") {
                    name = Some((n.trim().to_owned(), false));
                } else if let Some(n) = t.strip_prefix("alert: ") {
                    name = Some((n.trim().to_owned(), true));
                } else if let Some(e) = t.strip_prefix("expr: ") {
                    let (n, alert) = name.take().unwrap();
                    rules.push(serde_json::json!([n, e.trim(), alert]));
                }
            }
            serde_json::Value::Array(rules)
        };
        for r in y.as_array().unwrap() {
            out.push((
                r[0].as_str().unwrap().to_owned(),
                r[1].as_str().unwrap().to_owned(),
                r[2].as_bool().unwrap(),
            ));
        }
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

/// Series that make every alert of the pack true: a node whose seven GPUs
/// are failing, a disk filling up, and an unhealthy Cairn and Prometheus.
fn faults(step: u64, t: i64) -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    let s = step as f64;
    for gpu in 0..7 {
        let g = gpu.to_string();
        let uuid = format!("GPU-fault-{gpu}");
        let base = [
            ("Hostname", "gpu-node-fault"),
            ("UUID", uuid.as_str()),
            ("gpu", g.as_str()),
            ("instance", "gpu-node-fault:9400"),
            ("job", "dcgm-exporter"),
            ("modelName", "NVIDIA H100 80GB HBM3"),
            ("namespace", "ml-training"),
            ("pod", "trainer-0"),
        ];
        for (name, v) in [
            ("DCGM_FI_DEV_XID_ERRORS", 79.0),
            ("DCGM_FI_DEV_GPU_TEMP", 95.0),
            ("DCGM_FI_DEV_SM_CLOCK", 900.0),
            ("DCGM_FI_DEV_ROW_REMAP_FAILURE", 1.0),
            (
                "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
                (step / 40) as f64,
            ),
        ] {
            let mut p = base.to_vec();
            p.push(("__name__", name));
            out.push((labels(&p), v));
        }
    }
    let node = [("instance", "storage-0:9100"), ("job", "node-exporter")];
    for (name, v) in [
        ("node_filesystem_avail_bytes", 1.0e11 - s * 3.0e8),
        ("node_filesystem_size_bytes", 3.8e12),
    ] {
        let mut p = node.to_vec();
        p.extend([
            ("__name__", name),
            ("device", "/dev/md1"),
            ("fstype", "ext4"),
            ("mountpoint", "/cairn"),
        ]);
        out.push((labels(&p), v));
    }
    let cairn = [("instance", "cairn-0:9090"), ("job", "cairn")];
    for (name, extra, v) in [
        ("up", None, 0.0),
        (
            "cairn_remote_write_samples_rejected_total",
            Some(("reason", "out_of_order")),
            s * 40.0,
        ),
        ("cairn_compactions_failed_total", None, (step / 60) as f64),
        ("cairn_wal_fsync_duration_seconds_sum", None, s * 0.9),
        ("cairn_wal_fsync_duration_seconds_count", None, s),
        ("cairn_notifications_errors_total", None, s),
    ] {
        let mut p = cairn.to_vec();
        p.push(("__name__", name));
        p.extend(extra);
        out.push((labels(&p), v));
    }
    let prom = [("instance", "prometheus-0:9090"), ("job", "prometheus")];
    let url = [
        ("remote_name", "cairn"),
        ("url", "http://cairn:9090/api/v1/write"),
    ];
    let now_s = t as f64 / 1000.0;
    for (name, with_url, v) in [
        (
            "prometheus_remote_storage_samples_failed_total",
            true,
            s * 10.0,
        ),
        (
            "prometheus_remote_storage_highest_timestamp_in_seconds",
            false,
            now_s,
        ),
        (
            "prometheus_remote_storage_queue_highest_sent_timestamp_seconds",
            true,
            now_s - 600.0,
        ),
    ] {
        let mut p = prom.to_vec();
        p.push(("__name__", name));
        if with_url {
            p.extend(url);
        }
        out.push((labels(&p), v));
    }
    out
}

/// `(metric JSON, value)` of an instant query's vector, sorted.
fn answer(base: &str, q: &str, at: f64) -> Result<Vec<(String, f64)>, String> {
    let v = post_form(
        &format!("{base}/api/v1/query"),
        &[("query", q), ("time", &format!("{at:.3}"))],
    )
    .json();
    if v["status"] != "success" {
        return Err(v.to_string());
    }
    let r = &v["data"]["result"];
    let mut out: Vec<(String, f64)> = match v["data"]["resultType"].as_str() {
        Some("vector") => r
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["metric"].to_string(),
                    s["value"][1].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect(),
        Some("scalar") => vec![(String::new(), r[1].as_str().unwrap().parse().unwrap())],
        other => return Err(format!("unexpected result type {other:?}")),
    };
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) || (a.is_nan() && b.is_nan())
}

/// Cairn and Prometheus holding the same data, and a query time near its end.
struct Fixture {
    _dir: tempfile::TempDir,
    _prom: Proc,
    _cairn: Proc,
    cairn: String,
    prom: String,
    at: f64,
}

/// Parses the text exposition format into (labels, value), adding `extra`.
fn exposition(text: &str, extra: &[(&str, &str)]) -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}').unwrap()),
            None => (series, ""),
        };
        let mut pairs: Vec<(String, String)> = vec![("__name__".into(), name.into())];
        let mut rest = labels;
        while !rest.is_empty() {
            let (k, after) = rest.split_once("=\"").unwrap();
            let mut val = String::new();
            let mut chars = after.char_indices();
            let mut end = after.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, e)) = chars.next() {
                            val.push(match e {
                                'n' => '\n',
                                o => o,
                            });
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => val.push(c),
                }
            }
            pairs.push((k.trim_start_matches(',').to_owned(), val));
            rest = after[end..].trim_start_matches(',');
        }
        for (k, v) in extra {
            pairs.push(((*k).to_owned(), (*v).to_owned()));
        }
        out.push((Labels::from_pairs(pairs), v));
    }
    out
}

fn fixture() -> Fixture {
    require_tool("/usr/bin/prometheus");
    let dir = tempfile::tempdir().unwrap();
    let (pp, cp) = (free_port(), free_port());
    let prom = start_prometheus(
        &dir.path().join("prom"),
        pp,
        "global:\n  scrape_interval: 1h\n",
        &["--web.enable-remote-write-receiver"],
    );
    let cairn = start_cairn(&dir.path().join("cairn"), cp, &[]);
    let spec = ClusterSpec {
        nodes: 2,
        pod_lifetime_scrapes: 80,
        ..Default::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = (now - SCRAPES as i64 * STEP_MS) / 60_000 * 60_000 - 60_000 + 7_000;
    let mut batch: Vec<(Labels, i64, f64)> = Vec::new();
    let send = |b: &mut Vec<(Labels, i64, f64)>| {
        for port in [pp, cp] {
            let r = remote_write(&format!("http://127.0.0.1:{port}/api/v1/write"), b).unwrap();
            assert!(r.status / 100 == 2, "{port}: {} {}", r.status, r.text());
        }
        b.clear();
    };
    for step in 0..SCRAPES {
        let base_t = start + step as i64 * STEP_MS;
        for s in spec.series_at(step) {
            let jitter = 1 + (mix(s.slot ^ step.wrapping_mul(7919)) % 998) as i64;
            batch.push((s.labels.clone(), base_t + jitter, spec.value(&s, step)));
        }
        for (l, v) in faults(step, base_t) {
            batch.push((l, base_t + 500, v));
        }
        // Cairn's own metrics, as a Prometheus scraping it every 15 s
        // would store them.
        {
            let text = get(&format!("http://127.0.0.1:{cp}/metrics")).text();
            for (l, v) in exposition(&text, &[("instance", "cairn-1:9090"), ("job", "cairn")]) {
                batch.push((l, base_t + 700, v));
            }
        }
        if batch.len() >= 2000 {
            send(&mut batch);
        }
    }
    if !batch.is_empty() {
        send(&mut batch);
    }
    // A whole second 7 s past a whole minute, near the end of the data.
    let at = ((start + SCRAPES as i64 * STEP_MS) / 1000 - 60) as f64;
    Fixture {
        _dir: dir,
        _prom: prom,
        _cairn: cairn,
        cairn: format!("http://127.0.0.1:{cp}"),
        prom: format!("http://127.0.0.1:{pp}"),
        at,
    }
}

/// Runs `expr` on both at `at`: it must work, return something, and agree.
fn same_answer(f: &Fixture, name: &str, expr: &str) -> usize {
    let ours = answer(&f.cairn, expr, f.at).unwrap_or_else(|e| panic!("{name}: Cairn: {e}"));
    let theirs = answer(&f.prom, expr, f.at).unwrap_or_else(|e| panic!("{name}: Prometheus: {e}"));
    assert!(!ours.is_empty(), "{name} ({expr}) returns nothing");
    assert_eq!(ours.len(), theirs.len(), "{name}: {ours:?} vs {theirs:?}");
    for ((lo, vo), (lt, vt)) in ours.iter().zip(&theirs) {
        assert_eq!(lo, lt, "{name}");
        assert!(close(*vo, *vt), "{name} {lo}: Cairn {vo}, Prometheus {vt}");
    }
    ours.len()
}

#[test]
fn every_rule_of_the_pack_runs_and_agrees_with_prometheus() {
    require_tool("/usr/bin/promtool");
    let mut check = Command::new("/usr/bin/promtool");
    check.args(["check", "rules"]).args(rule_files());
    let out = run(&mut check);
    assert!(out.contains("SUCCESS"), "{out}");
    let f = fixture();
    let rules = rule_exprs();
    assert!(rules.len() >= 27, "{}", rules.len());
    let mut report = BTreeMap::new();
    for (name, expr, alert) in &rules {
        let n = same_answer(&f, name, expr);
        report.insert(name.clone(), (n, *alert));
    }
    eprintln!("rules checked: {report:?}");
}

/// Every query of every dashboard, variables set to "All" (`.*`) and
/// Grafana's `$__rate_interval` to one minute.
fn dashboard_queries() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy().join("grafana/dashboards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let d: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        assert!(
            d["uid"].is_string() && d["title"].is_string(),
            "{}",
            f.display()
        );
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                let e = t["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "1m")
                    .replace("$namespace", ".*")
                    .replace("$Hostname", ".*")
                    .replace("$instance", ".*");
                assert!(!e.contains('$'), "unknown variable in {e}");
                out.push((format!("{} / {}", d["title"], p["title"]), e));
            }
        }
        // Variable queries must name a label of a metric that exists.
        for v in d["templating"]["list"].as_array().unwrap() {
            if v["type"] == "query" {
                let q = v["definition"].as_str().unwrap();
                assert!(q.starts_with("label_values("), "{q}");
            }
        }
    }
    out
}

#[test]
fn every_dashboard_query_runs_and_agrees_with_prometheus() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 40, "{}", queries.len());
    let f = fixture();
    for (name, expr) in &queries {
        same_answer(&f, name, expr);
    }
    // The variables' values exist in Cairn.
    for (metric, label) in [
        ("DCGM_FI_DEV_GPU_UTIL", "namespace"),
        ("DCGM_FI_DEV_GPU_UTIL", "Hostname"),
        ("node_cpu_seconds_total", "instance"),
    ] {
        let v = get(&format!(
            "{}/api/v1/label/{label}/values?match[]={metric}",
            f.cairn
        ))
        .json();
        assert!(
            !v["data"].as_array().unwrap().is_empty(),
            "{metric} {label}"
        );
    }
    eprintln!("dashboard queries checked: {}", queries.len());
}
