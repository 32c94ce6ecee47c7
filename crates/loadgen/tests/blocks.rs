//! `cairn-loadgen blocks` end to end: blocks written for a small cluster
//! are read back with cairn-tsdb's block reader and compared with what the
//! simulation scrapes, sample by sample; promtool checks them when installed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use cairn_gpusim::Exporter;
use cairn_loadgen::blocks::{parse_time, run, BlockPlan, BlocksArgs, Summary};
use cairn_model::{Labels, MatchType, Matcher};
use cairn_storage::{Queryable, SelectHints, ValueType};
use cairn_tsdb::Block;

const HOUR: i64 = 3_600_000;

/// A series' samples: (t, value bits).
type Samples = Vec<(i64, u64)>;

fn args(out: &Path) -> BlocksArgs {
    BlocksArgs {
        out: out.to_path_buf(),
        nodes: 2,
        days: 4.0 / 24.0,
        interval: "30s".into(),
        block_hours: 2,
        end: Some("2024-05-01T04:00:00Z".into()),
        seed: 3,
        pod_lifetime_scrapes: 100,
        jitter_ms: 0,
        threads: Some(2),
        group_by_name: false,
    }
}

/// Every series' samples, as the simulation scrapes them: labels → [(t, v bits)].
fn expected(plan: &BlockPlan) -> HashMap<Labels, Samples> {
    let mut m: HashMap<Labels, Samples> = HashMap::new();
    let mut v = Vec::new();
    for step in 0..plan.steps {
        for node in 0..plan.cluster.nodes {
            v.clear();
            plan.cluster.node_series(node, step, &mut v);
            for s in &v {
                let exp = if s.labels.get("job") == Some("dcgm-exporter") {
                    Exporter::Dcgm
                } else {
                    Exporter::Node
                };
                let t = plan.scrape_time(node, exp, step);
                let val = plan.cluster.value(s, step).to_bits();
                m.entry(s.labels.clone()).or_default().push((t, val));
            }
        }
    }
    m
}

/// Every series of a block directory read back: (labels, [(t, v bits)]) in select order.
fn read_block(dir: &Path) -> (Block, Vec<(Labels, Samples)>) {
    let b = Block::open(dir).unwrap();
    let meta = b.meta();
    let q = b.querier(meta.min_time, meta.max_time - 1).unwrap();
    let all = [Matcher::new(MatchType::Regex, "__name__", ".*").unwrap()];
    let mut out = Vec::new();
    for s in q.select(&SelectHints::default(), &all).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        let mut samples = Vec::new();
        while it.next() == ValueType::Float {
            let (t, v) = it.at();
            samples.push((t, v.to_bits()));
        }
        out.push((s.labels().clone(), samples));
    }
    drop(q);
    (b, out)
}

/// Checks the written blocks against the simulation; returns the label
/// sets read, per block.
fn check_blocks(dir: &Path, plan: &BlockPlan, summary: &Summary) -> Vec<Vec<Labels>> {
    let mut want = expected(plan);
    let windows = plan.windows();
    assert_eq!(summary.blocks.len(), windows.len());
    let mut labels_per_block = Vec::new();
    let mut total = 0u64;
    for (report, &(mint, maxt)) in summary.blocks.iter().zip(&windows) {
        assert_eq!((report.mint, report.maxt), (mint, maxt));
        let (block, series) = read_block(&dir.join(report.ulid.to_string()));
        let meta = block.meta();
        assert_eq!((meta.min_time, meta.max_time), (mint, maxt));
        assert_eq!(meta.stats.num_series, series.len() as u64);
        assert_eq!(meta.stats.num_series, report.series);
        assert_eq!(meta.stats.num_samples, report.samples);
        assert!(report.bytes > 0);
        // Sorted, unique label sets.
        assert!(
            series.windows(2).all(|w| w[0].0 < w[1].0),
            "series out of order"
        );
        let mut n = 0;
        for (labels, samples) in &series {
            assert!(!samples.is_empty(), "{labels} has no samples");
            for &(t, _) in samples {
                assert!(
                    (mint..maxt).contains(&t),
                    "{labels}: {t} outside [{mint}, {maxt})"
                );
            }
            let all = want
                .get_mut(labels)
                .unwrap_or_else(|| panic!("{labels} is not a simulated series"));
            // This block's share of the series, which the next blocks must not repeat.
            let mine: Vec<_> = all.iter().copied().filter(|&(t, _)| t < maxt).collect();
            all.retain(|&(t, _)| t >= maxt);
            assert_eq!(samples, &mine, "{labels} in [{mint}, {maxt})");
            n += samples.len() as u64;
        }
        assert_eq!(n, meta.stats.num_samples);
        total += n;
        labels_per_block.push(series.into_iter().map(|(l, _)| l).collect());
    }
    let missing: Vec<_> = want.iter().filter(|(_, v)| !v.is_empty()).collect();
    assert!(
        missing.is_empty(),
        "{} series not (fully) written",
        missing.len()
    );
    assert_eq!(total, summary.samples());
    labels_per_block
}

/// Runs `promtool tsdb list` and `analyze` on `dir` when promtool is installed.
fn promtool_check(dir: &Path, summary: &Summary) {
    let promtool = Path::new("/usr/bin/promtool");
    if !promtool.exists() {
        eprintln!("skipped the promtool check: /usr/bin/promtool is not installed");
        return;
    }
    let list = Command::new(promtool)
        .args(["tsdb", "list"])
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(list.status.success(), "promtool tsdb list: {list:?}");
    for b in &summary.blocks {
        let line = text
            .lines()
            .find(|l| l.starts_with(&b.ulid.to_string()))
            .unwrap_or_else(|| panic!("promtool does not list {}: {text}", b.ulid));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], b.mint.to_string(), "{line}");
        assert_eq!(cols[2], b.maxt.to_string(), "{line}");
        assert_eq!(cols[4], b.samples.to_string(), "{line}");
        assert_eq!(cols[6], b.series.to_string(), "{line}");
    }
    let analyze = Command::new(promtool)
        .args(["tsdb", "analyze"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        analyze.status.success(),
        "promtool tsdb analyze: {analyze:?}"
    );
    assert!(String::from_utf8_lossy(&analyze.stdout).contains("DCGM_FI_DEV_GPU_UTIL"));
}

#[test]
fn two_hour_blocks_hold_exactly_the_simulated_samples() {
    let dir = tempfile::tempdir().unwrap();
    let a = args(dir.path());
    let mut report = Vec::new();
    let summary = run(&a, &mut report).unwrap();
    let report = String::from_utf8(report).unwrap();
    let end = parse_time("2024-05-01T04:00:00Z").unwrap();
    let plan = BlockPlan::from_args(&a, 0).unwrap();
    assert_eq!(plan.start_ms, end - 4 * HOUR);
    assert_eq!(plan.steps, 480);
    assert_eq!(
        plan.windows(),
        [(end - 4 * HOUR, end - 2 * HOUR), (end - 2 * HOUR, end)]
    );
    // Without jitter, step k is exactly at start + k * interval.
    assert_eq!(
        plan.scrape_time(1, Exporter::Dcgm, 7),
        plan.start_ms + 7 * 30_000
    );

    let per_block = check_blocks(dir.path(), &plan, &summary);
    // Nothing else is in the directory: no leftover temporary block.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    for b in &summary.blocks {
        assert!(report.contains(&format!("block {}", b.ulid)), "{report}");
    }
    assert!(report.contains("samples/s"), "{report}");
    assert_eq!(
        summary.samples(),
        480 * 2 * plan.cluster.series_per_node() as u64
    );

    // Pod churn: GPU 0 of node 0 runs one set of DCGM series per pod.
    let gpu0 = |labels: &Labels| {
        labels.metric_name() == Some("DCGM_FI_DEV_GPU_UTIL")
            && labels.get("Hostname") == Some("gpu-node-0000")
            && labels.get("gpu") == Some("0")
    };
    let pods_in = |steps: std::ops::Range<u64>| -> HashSet<(String, String)> {
        steps
            .map(|s| {
                let (ns, pod, _) = plan.cluster.pod(0, 0, s);
                (ns, pod)
            })
            .collect()
    };
    for (i, labels) in per_block.iter().enumerate() {
        let got: HashSet<(String, String)> = labels
            .iter()
            .filter(|l| gpu0(l))
            .map(|l| {
                (
                    l.get("namespace").unwrap().to_string(),
                    l.get("pod").unwrap().to_string(),
                )
            })
            .collect();
        let steps = i as u64 * 240..(i as u64 + 1) * 240;
        assert_eq!(got, pods_in(steps), "block {i}");
        assert!(got.len() >= 2, "no churn in block {i}: {got:?}");
    }
    // Node-exporter series do not churn: the same ones in both blocks.
    let host = |b: &Vec<Labels>| -> Vec<Labels> {
        b.iter()
            .filter(|l| l.get("job") == Some("node-exporter"))
            .cloned()
            .collect()
    };
    assert_eq!(host(&per_block[0]), host(&per_block[1]));
    promtool_check(dir.path(), &summary);
}

#[test]
fn jittered_scrapes_in_unaligned_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = args(dir.path());
    // 3 h ending at 03:30:00.5 in 1 h blocks: four windows, the first
    // and last half filled; scrapes up to 20 ms late.
    a.days = 3.0 / 24.0;
    a.block_hours = 1;
    a.end = Some("1714534200.5".into());
    a.jitter_ms = 20;
    a.pod_lifetime_scrapes = 50;
    a.threads = Some(3);
    let summary = run(&a, &mut std::io::sink()).unwrap();
    let plan = BlockPlan::from_args(&a, 0).unwrap();
    assert_eq!(summary.blocks.len(), 4);
    let mut late = HashSet::new();
    for step in 0..plan.steps {
        let t = plan.scrape_time(0, Exporter::Node, step);
        let off = t - (plan.start_ms + step as i64 * 30_000);
        assert!((0..=20).contains(&off));
        late.insert(off);
    }
    assert!(late.len() > 5, "jitter should vary: {late:?}");
    check_blocks(dir.path(), &plan, &summary);
    promtool_check(dir.path(), &summary);
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    type Edit = fn(&mut BlocksArgs);
    let cases: [(&str, Edit); 7] = [
        ("--nodes", |a| a.nodes = 0),
        ("--interval", |a| a.interval = "soon".into()),
        ("--interval", |a| a.interval = "0s".into()),
        ("--days", |a| a.days = -1.0),
        ("--jitter-ms", |a| a.jitter_ms = 30_000),
        ("--end", |a| a.end = Some("yesterday".into())),
        ("--threads", |a| a.threads = Some(0)),
    ];
    for (flag, edit) in cases {
        let mut a = args(dir.path());
        edit(&mut a);
        let e = run(&a, &mut std::io::sink()).unwrap_err();
        assert!(e.contains(flag), "{flag}: {e}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_binary_documents_and_rejects() {
    let bin = env!("CARGO_BIN_EXE_cairn-loadgen");
    let help = Command::new(bin)
        .args(["blocks", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success());
    for flag in [
        "--out",
        "--nodes",
        "--days",
        "--interval",
        "--block-hours",
        "--end",
        "--seed",
        "--pod-lifetime-scrapes",
        "--jitter-ms",
        "--threads",
    ] {
        assert!(text.contains(flag), "help lacks {flag}: {text}");
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = Command::new(bin)
        .args(["blocks", "--nodes", "1", "--interval", "1x", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--interval") && !err.contains("panicked"),
        "{err}"
    );
}
