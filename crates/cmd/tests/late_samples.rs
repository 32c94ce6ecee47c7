//! Late samples end to end, with the real Prometheus 2.42 on both sides:
//! - `cairn serve` with its default window takes a sample older than its
//!   newest block (a lagging shard) with a 204, answers it at once merged
//!   with the block, keeps it across `kill -9` (through `wbl/`), and
//!   Prometheus started on a copy of that directory answers it too (it
//!   replays Cairn's out-of-order log);
//! - Cairn started on a directory in which Prometheus took out-of-order
//!   samples answers every one of them. Prometheus logs them to its WAL
//!   and to `wbl/` (with an m-map marker once 32 of a series fill a
//!   chunk); Cairn takes the in-range ones from the WAL and reads `wbl/`
//!   for late ones, skipping the markers;
//! - shards 6 hours and 3 days behind lose nothing, floats and native
//!   histograms alike.
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

const OOO_CONFIG: &str =
    "global:\n  scrape_interval: 1h\nstorage:\n  tsdb:\n    out_of_order_time_window: 1d\n";

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn gpu(g: &str) -> Labels {
    Labels::from_pairs([("__name__", "gpu_util"), ("gpu", g), ("job", "dcgm")])
}

/// `{gpu: [(t ms, value)]}` of `gpu_util[<range>]` at `at_s`.
fn range_values(base: &str, range: &str, at_s: i64) -> Vec<(String, Vec<(i64, f64)>)> {
    let r = post_form(
        &format!("{base}/api/v1/query"),
        &[
            ("query", &format!("gpu_util[{range}]")),
            ("time", &at_s.to_string()),
        ],
    );
    let v = r.json();
    assert_eq!(v["status"], "success", "{v}");
    let mut out: Vec<(String, Vec<(i64, f64)>)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let vals = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                    (t, p[1].as_str().unwrap().parse::<f64>().unwrap())
                })
                .collect();
            (s["metric"]["gpu"].as_str().unwrap().to_owned(), vals)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn metric(base: &str, name: &str) -> f64 {
    get(&format!("{base}/metrics"))
        .text()
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[test]
fn cairn_keeps_samples_older_than_its_blocks_and_prometheus_reads_them() {
    require_tool("/usr/bin/prometheus");
    require_tool("/usr/bin/promtool");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cairn");
    std::fs::create_dir_all(&dir).unwrap();
    let now = now_ms();
    // Blocks (written by promtool) with a sample a minute from 5 h ago to
    // 3 h ago: Cairn's head then starts where they end.
    let start = (now - 5 * 3_600_000) / 60_000 * 60_000;
    let mut om = String::from("# TYPE gpu_util gauge\n");
    let mut block = Vec::new();
    for i in 0..120i64 {
        let t = start + i * 60_000;
        om.push_str(&format!(
            "gpu_util{{gpu=\"0\",job=\"dcgm\"}} {} {}\n",
            i,
            t / 1000
        ));
        block.push((t, i as f64));
    }
    om.push_str("# EOF\n");
    let om_path = tmp.path().join("blocks.om");
    std::fs::write(&om_path, om).unwrap();
    run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om_path)
        .arg(&dir));
    assert!(!blocks(&dir).is_empty());

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut c = start_cairn(&dir, port, &[]);
    let w = format!("{base}/api/v1/write");
    // The shard that keeps up writes now; the lagging one writes samples
    // between the block's, and a GPU the blocks do not know.
    let r = remote_write(&w, &[(gpu("0"), now, 500.0)]).unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let late = [
        (gpu("0"), start + 30_000, -1.0),
        (gpu("0"), start + 90 * 60_000 + 30_000, -2.0),
        (gpu("7"), start + 60 * 60_000, 7.0),
    ];
    let r = remote_write(&w, &late).unwrap();
    assert_eq!(r.status, 204, "late samples are taken: {}", r.text());
    assert_eq!(metric(&base, "cairn_tsdb_out_of_order_samples"), 3.0);

    let mut want0 = block.clone();
    want0.push((start + 30_000, -1.0));
    want0.push((start + 90 * 60_000 + 30_000, -2.0));
    want0.push((now, 500.0));
    want0.sort_by_key(|s| s.0);
    let want = vec![
        ("0".to_owned(), want0),
        ("7".to_owned(), vec![(start + 60 * 60_000, 7.0)]),
    ];
    let at = now / 1000 + 1;
    assert_eq!(range_values(&base, "6h", at), want, "readable at once");

    // kill -9: the WAL and wbl/ bring them back.
    c.kill9();
    let copy = tmp.path().join("for-prometheus");
    copy_dir(&dir, &copy);
    let _c = start_cairn(&dir, port, &[]);
    assert_eq!(range_values(&base, "6h", at), want, "after kill -9");
    assert_eq!(metric(&base, "cairn_tsdb_out_of_order_samples"), 3.0);

    // Prometheus 2.42 on a copy of the killed directory replays Cairn's
    // WAL and out-of-order log and answers the same.
    let pport = free_port();
    let pdir = tmp.path().join("prom");
    std::fs::create_dir_all(&pdir).unwrap();
    std::fs::rename(&copy, pdir.join("data")).unwrap();
    let _p = start_prometheus(&pdir, pport, OOO_CONFIG, &[]);
    assert_eq!(
        range_values(&format!("http://127.0.0.1:{pport}"), "6h", at),
        want,
        "Prometheus reads Cairn's wbl/"
    );
}

#[test]
fn cairn_replays_the_out_of_order_log_of_prometheus() {
    require_tool("/usr/bin/prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let pdir = tmp.path().join("prom");
    let pport = free_port();
    let pbase = format!("http://127.0.0.1:{pport}");
    let now = now_ms() / 1000 * 1000;
    let mut p = start_prometheus(
        &pdir,
        pport,
        OOO_CONFIG,
        &["--web.enable-remote-write-receiver"],
    );
    let w = format!("{pbase}/api/v1/write");
    let r = remote_write(&w, &[(gpu("0"), now, 1000.0), (gpu("1"), now, 1001.0)]).unwrap();
    assert_eq!(r.status / 100, 2, "{}", r.text());
    // 40 out-of-order samples for GPU 0 (more than Prometheus's 32 per
    // out-of-order chunk: one is m-mapped and marked in wbl/), 3 for GPU 1.
    let mut want0: Vec<(i64, f64)> = (0..40i64)
        .map(|i| (now - 3_600_000 + i * 60_000, i as f64))
        .collect();
    let want1: Vec<(i64, f64)> = (0..3i64)
        .map(|i| (now - 1_800_000 + i * 15_000, -(i as f64)))
        .collect();
    for chunk in want0.chunks(10) {
        let batch: Vec<_> = chunk.iter().map(|&(t, v)| (gpu("0"), t, v)).collect();
        let r = remote_write(&w, &batch).unwrap();
        assert_eq!(r.status / 100, 2, "{}", r.text());
    }
    let batch: Vec<_> = want1.iter().map(|&(t, v)| (gpu("1"), t, v)).collect();
    assert_eq!(remote_write(&w, &batch).unwrap().status / 100, 2);
    want0.push((now, 1000.0));
    let mut want1 = want1;
    want1.push((now, 1001.0));
    let want = vec![("0".to_owned(), want0), ("1".to_owned(), want1)];
    let at = now / 1000 + 1;
    assert_eq!(range_values(&pbase, "2h", at), want, "Prometheus's answer");
    p.kill9();
    let data = pdir.join("data");
    assert!(
        data.join("wbl").exists(),
        "Prometheus wrote an out-of-order log"
    );

    let cdir = tmp.path().join("cairn");
    copy_dir(&data, &cdir);
    let cport = free_port();
    let cbase = format!("http://127.0.0.1:{cport}");
    let mut c = start_cairn(&cdir, cport, &[]);
    assert_eq!(
        range_values(&cbase, "2h", at),
        want,
        "Cairn reads Prometheus's wbl/"
    );
    // They come from the WAL: a restart after a crash (no head snapshot;
    // a graceful stop's snapshot would rely on wbl/) without the log
    // still has them.
    c.kill9();
    std::fs::remove_dir_all(cdir.join("wbl")).unwrap();
    let _c = start_cairn(&cdir, cport, &[]);
    assert_eq!(range_values(&cbase, "2h", at), want, "after a restart");
}

/// The shape of a lagging setup: shard A up to date, shard B six
/// hours behind it, shard C three days behind, all through remote write
/// into one Cairn whose head A has already cut into blocks.
#[test]
fn shards_six_hours_and_three_days_behind_lose_nothing() {
    require_tool("/usr/bin/promtool");
    let tmp = tempfile::tempdir().unwrap();
    drop(tmp);
    let tmp = tempfile::Builder::new()
        .disable_cleanup(std::env::var_os("KEEPTMP").is_some())
        .tempdir()
        .unwrap();
    eprintln!("KEPT {}", tmp.path().display());
    let dir = tmp.path().join("cairn");
    std::fs::create_dir_all(&dir).unwrap();
    // XOR chunks, no levels: promtool reads every block.
    let flags = [
        "--storage.tsdb.maintenance-interval=1s",
        "--storage.tsdb.chunk-encoding=xor",
        "--storage.tsdb.downsample=false",
    ];
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let w = format!("{base}/api/v1/write");
    let now = now_ms() / 60_000 * 60_000;
    let shard = |name: &str, g: usize| {
        Labels::from_pairs([
            ("__name__", "gpu_util"),
            ("gpu", &format!("{name}{g}")),
            ("job", "dcgm"),
        ])
    };
    // Eight hours of a sample a minute per series, ending `lag` before now.
    let mut model: Vec<(String, Vec<(i64, f64)>)> = Vec::new();
    let write_shard = |name: &str, lag: i64, model: &mut Vec<(String, Vec<(i64, f64)>)>| {
        let end = now - lag;
        for g in 0..4 {
            let pts: Vec<(i64, f64)> = (0..=480i64)
                .map(|i| (end - 8 * 3_600_000 + i * 60_000, (i * 3 + g as i64) as f64))
                .collect();
            for part in pts.chunks(120) {
                let batch: Vec<_> = part.iter().map(|&(t, v)| (shard(name, g), t, v)).collect();
                let r = remote_write(&w, &batch).unwrap();
                assert_eq!(r.status, 204, "shard {name}: {}", r.text());
            }
            model.push((format!("{name}{g}"), pts));
        }
    };
    let mut c = start_cairn(&dir, port, &flags);
    write_shard("a", 0, &mut model);
    // Shard A's first hours are cut into blocks.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while metric(&base, "cairn_head_min_time_milliseconds") < (now - 4 * 3_600_000) as f64 {
        assert!(std::time::Instant::now() < deadline, "the head was not cut");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!blocks(&dir).is_empty());
    write_shard("b", 6 * 3_600_000, &mut model);
    write_shard("c", 3 * 86_400_000, &mut model);
    model.sort_by(|a, b| a.0.cmp(&b.0));
    let at = now / 1000;
    let range = "4d";
    same(&range_values(&base, range, at), &model, "queryable at once");

    c.kill9();
    let mut c = start_cairn(&dir, port, &flags);
    same(&range_values(&base, range, at), &model, "after kill -9");

    // A graceful stop writes the late samples into blocks; the next start
    // merges them into the blocks they overlap.
    assert!(c.terminate(Duration::from_secs(60)));
    let mut c = start_cairn(&dir, port, &flags);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while overlapping(&dir) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "overlapping blocks were not merged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // What stays held is out of order inside the head's range (shard A's
    // series that arrived after the first cut), not late.
    let held = metric(&base, "cairn_tsdb_out_of_order_samples");
    assert!(held <= 3.0 * 240.0, "late samples still held: {held}");
    same(&range_values(&base, range, at), &model, "after compaction");
    assert!(c.terminate(Duration::from_secs(60)));

    // promtool and Cairn dump the same samples, and they are the model's.
    let for_promtool = tmp.path().join("for-promtool");
    let for_cairn = tmp.path().join("for-cairn");
    copy_dir(&dir, &for_promtool);
    copy_dir(&dir, &for_cairn);
    let theirs = run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "dump"])
        .arg(&for_promtool));
    let ours = run(cairn().args(["tsdb", "dump"]).arg(&for_cairn));
    let (o, t) = (sorted_lines(&ours), sorted_lines(&theirs));
    if o != t {
        let only_ours: Vec<_> = o.iter().filter(|l| !t.contains(l)).take(5).collect();
        let only_theirs: Vec<_> = t.iter().filter(|l| !o.contains(l)).take(5).collect();
        panic!(
            "dumps differ: {} lines (Cairn) vs {} (promtool); only Cairn: {only_ours:?}; only promtool: {only_theirs:?}",
            o.len(),
            t.len()
        );
    }
    assert_eq!(theirs.lines().count(), 12 * 481);
}

type Model = Vec<(String, Vec<(i64, f64)>)>;

/// Asserts `got == want`, naming the first samples that differ.
fn same(got: &Model, want: &Model, when: &str) {
    if got == want {
        return;
    }
    for (g, w) in got.iter().zip(want) {
        if g != w {
            let missing: Vec<_> = w.1.iter().filter(|p| !g.1.contains(p)).take(5).collect();
            let extra: Vec<_> = g.1.iter().filter(|p| !w.1.contains(p)).take(5).collect();
            panic!(
                "{when}: series {} has {} samples, want {}; missing {missing:?}, extra {extra:?}",
                w.0,
                g.1.len(),
                w.1.len()
            );
        }
    }
    panic!(
        "{when}: {} series, want {}: {:?} vs {:?}",
        got.len(),
        want.len(),
        got.iter().map(|x| &x.0).collect::<Vec<_>>(),
        want.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
}

/// Pairs of blocks (by min time) of `dir` that overlap.
fn overlapping(dir: &std::path::Path) -> usize {
    let mut spans: Vec<(i64, i64)> = blocks(dir)
        .iter()
        .filter_map(|b| {
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join(b).join("meta.json")).ok()?).ok()?;
            Some((m["minTime"].as_i64()?, m["maxTime"].as_i64()?))
        })
        .collect();
    spans.sort_unstable();
    spans.windows(2).filter(|w| w[1].0 < w[0].1).count()
}

/// `(gpu, [(t, histogram count)])` of `gpu_kernel_latency_seconds[range]`.
fn range_hist_counts(base: &str, range: &str, at_s: i64) -> Model {
    let r = post_form(
        &format!("{base}/api/v1/query"),
        &[
            ("query", &format!("gpu_kernel_latency_seconds[{range}]")),
            ("time", &at_s.to_string()),
        ],
    );
    let v = r.json();
    assert_eq!(v["status"], "success", "{v}");
    let mut out: Model = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let vals = s["histograms"]
                .as_array()
                .unwrap_or_else(|| panic!("{s}"))
                .iter()
                .map(|p| {
                    let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                    (t, p[1]["count"].as_str().unwrap().parse::<f64>().unwrap())
                })
                .collect();
            (s["metric"]["gpu"].as_str().unwrap().to_owned(), vals)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A shard three days behind sends native histograms (remote write 2.0):
/// every one is taken with a 204, readable at once, kept across
/// `kill -9` (through `wbl/`), written into blocks by a graceful stop, and
/// Prometheus 2.42 started on those blocks answers the same.
#[test]
fn a_histogram_shard_three_days_behind_loses_nothing() {
    use cairn_proto::histogram::{BucketSpan, Count, Histogram, ZeroCount};
    use cairn_proto::write_v2;
    require_tool("/usr/bin/prometheus");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cairn");
    std::fs::create_dir_all(&dir).unwrap();
    let flags = [
        "--storage.tsdb.maintenance-interval=1s",
        "--storage.tsdb.chunk-encoding=xor",
        "--storage.tsdb.downsample=false",
    ];
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let w = format!("{base}/api/v1/write");
    let now = now_ms() / 60_000 * 60_000;
    let mut c = start_cairn(&dir, port, &flags);
    // The shard that keeps up: floats over the last eight hours, so that
    // the head is cut and its newest time is now.
    for part in (0..=480i64).collect::<Vec<_>>().chunks(120) {
        let batch: Vec<_> = part
            .iter()
            .map(|&i| (gpu("0"), now - 8 * 3_600_000 + i * 60_000, i as f64))
            .collect();
        let r = remote_write(&w, &batch).unwrap();
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while metric(&base, "cairn_head_min_time_milliseconds") < (now - 4 * 3_600_000) as f64 {
        assert!(std::time::Instant::now() < deadline, "the head was not cut");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The lagging shard: two GPUs' counter histograms, a minute apart over
    // eight hours ending three days ago.
    let end = now - 3 * 86_400_000;
    let h = |t: i64, n: u64| Histogram {
        count: Some(Count::CountInt(3 * n + 1)),
        sum: n as f64 * 0.25,
        schema: 3,
        zero_threshold: 1e-128,
        zero_count: Some(ZeroCount::ZeroCountInt(1)),
        positive_spans: vec![BucketSpan {
            offset: -2,
            length: 2,
        }],
        // Absolute counts n and 2n.
        positive_deltas: vec![n as i64, n as i64],
        timestamp: t,
        ..Default::default()
    };
    let mut model: Model = Vec::new();
    for g in ["l0", "l1"] {
        let pts: Vec<(i64, u64)> = (0..=480i64)
            .map(|i| (end - 8 * 3_600_000 + i * 60_000, i as u64 + 1))
            .collect();
        for part in pts.chunks(120) {
            let mut b = write_v2::SymbolsBuilder::new();
            let ts = write_v2::TimeSeries {
                labels_refs: b.label_refs([
                    ("__name__", "gpu_kernel_latency_seconds"),
                    ("gpu", g),
                    ("job", "dcgm"),
                ]),
                histograms: part.iter().map(|&(t, n)| h(t, n)).collect(),
                ..Default::default()
            };
            let r = remote_write_v2(
                &w,
                &write_v2::Request {
                    symbols: b.build(),
                    timeseries: vec![ts],
                },
            );
            assert_eq!(r.status, 204, "late histograms are taken: {}", r.text());
            assert_eq!(
                r.header("x-prometheus-remote-write-histograms-written"),
                Some(part.len().to_string().as_str())
            );
        }
        model.push((
            g.to_owned(),
            pts.iter().map(|&(t, n)| (t, (3 * n + 1) as f64)).collect(),
        ));
    }
    let at = now / 1000;
    let range = "4d";
    same(
        &range_hist_counts(&base, range, at),
        &model,
        "queryable at once",
    );

    c.kill9();
    let mut c = start_cairn(&dir, port, &flags);
    same(
        &range_hist_counts(&base, range, at),
        &model,
        "after kill -9",
    );

    // A graceful stop writes them into blocks of their own.
    assert!(c.terminate(Duration::from_secs(60)));
    let c = start_cairn(&dir, port, &flags);
    same(&range_hist_counts(&base, range, at), &model, "from blocks");
    drop(c);
    let late: Vec<String> = blocks(&dir)
        .into_iter()
        .filter(|b| {
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(dir.join(b).join("meta.json")).unwrap())
                    .unwrap();
            // Blocks are 2 h aligned: the last late one may end up to 2 h
            // after the shard's newest sample; the up-to-date shard's
            // blocks start days later.
            m["minTime"].as_i64().unwrap() <= end
        })
        .collect();
    assert!(!late.is_empty(), "no block holds the late histograms");

    // Prometheus 2.42 (native histograms on) started on those blocks alone
    // answers the same.
    let pport = free_port();
    let pdir = tmp.path().join("prom");
    for b in &late {
        copy_dir(&dir.join(b), &pdir.join("data").join(b));
    }
    let _p = start_prometheus(
        &pdir,
        pport,
        "global:\n  scrape_interval: 1h\n",
        &["--enable-feature=native-histograms"],
    );
    same(
        &range_hist_counts(&format!("http://127.0.0.1:{pport}"), range, at),
        &model,
        "Prometheus on the late blocks",
    );
}
