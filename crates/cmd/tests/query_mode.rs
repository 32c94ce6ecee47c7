//! Query mode with real Prometheus 2.42 servers: an HA pair (external
//! label `replica=a|b`) scraping one target and a second shard scraping
//! another, each remote-writing to its own Cairn ingester
//! (`--mode=ingest`: no query API), which uploads 5 s blocks to one
//! bucket and keeps 10 s locally; a Cairn with no data of its own
//! (`--mode=query`: no WAL, no writes) reads the bucket and, over remote
//! read (`--query.store`), the ingesters' recent data, and merges the
//! pair (`--query.replica-label replica`). Its answers equal a reference
//! Prometheus that scraped the same targets, one sample a scrape (never
//! both replicas'); with one replica's Prometheus and Cairn killed for a
//! while, the answers have no gap. The second test writes ten hours
//! through remote write to an HA pair of ingesters and checks the
//! bucket's part at raw and 5-minute resolution.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use support::*;

/// A target answering `body` to every scrape.
fn target(body: &'static str) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
                body.len(),
                body
            );
        }
    });
    port
}

fn prom_config(targets: &[u16], external: &str, write_to: Option<&str>) -> String {
    let t: Vec<String> = targets.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
    let mut c = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n{external}scrape_configs:\n  - job_name: dcgm\n    static_configs:\n      - targets: [{}]\n",
        t.join(", ")
    );
    if let Some(url) = write_to {
        c.push_str(&format!(
            "remote_write:\n  - url: {url}/api/v1/write\n    queue_config:\n      batch_send_deadline: 200ms\n      min_backoff: 20ms\n      max_backoff: 200ms\n"
        ));
    }
    c
}

/// `query` at `t` (seconds) as {labels without `cluster`: value}.
fn instant(base: &str, query: &str, t: f64) -> BTreeMap<String, String> {
    let r = post_form(
        &format!("{base}/api/v1/query"),
        &[("query", query), ("time", &format!("{t:.3}"))],
    );
    assert_eq!(r.status, 200, "{base}: {}", r.text());
    let mut out = BTreeMap::new();
    for s in r.json()["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let mut m = s["metric"].as_object().cloned().unwrap_or_default();
        m.remove("cluster");
        out.insert(
            serde_json::Value::Object(m).to_string(),
            s["value"][1].as_str().unwrap_or("").to_owned(),
        );
    }
    out
}

fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn ha_pairs_and_shards_answer_as_one_prometheus() {
    let tmp = tempfile::tempdir().unwrap();
    let x = target("# TYPE gpu_temp gauge\ngpu_temp{gpu=\"0\"} 40\ngpu_temp{gpu=\"1\"} 41\n");
    let y = target("# TYPE gpu_temp gauge\ngpu_temp{gpu=\"0\"} 50\n");

    // Three ingesters, each written by its own Prometheus, cutting 5 s
    // blocks, uploading them to one bucket and keeping 10 s locally: the
    // query Cairn reads most of the range from the bucket.
    let (bucket, cfg) = fs_bucket_config(tmp.path());
    let objstore = format!("--objstore.config-file={}", cfg.display());
    let ingester_flags = |i: usize| -> Vec<String> {
        vec![
            objstore.clone(),
            "--mode=ingest".into(),
            format!("--storage.external-label=ingester={i}"),
            // Remote read answers with this ingester's own blocks only.
            format!("--objstore.serve-external-label=ingester={i}"),
            "--storage.tsdb.min-block-duration=5s".into(),
            "--storage.tsdb.retention.time=10s".into(),
            "--storage.tsdb.maintenance-interval=1s".into(),
            "--storage.tsdb.downsample=false".into(),
        ]
    };
    let start_ingester = |i: usize, port: u16| {
        let f = ingester_flags(i);
        let refs: Vec<&str> = f.iter().map(String::as_str).collect();
        start_cairn(&tmp.path().join(format!("ingester{i}")), port, &refs)
    };
    let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let mut ingesters: Vec<Option<Proc>> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| Some(start_ingester(i, *p)))
        .collect();
    let ext = |r: &str| format!("  external_labels:\n    cluster: gpu\n    replica: {r}\n");
    let prom_ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let mut proms: Vec<Option<Proc>> = vec![
        Some(start_prometheus(
            &tmp.path().join("prom-a"),
            prom_ports[0],
            &prom_config(&[x], &ext("a"), Some(&urls[0])),
            &[],
        )),
        Some(start_prometheus(
            &tmp.path().join("prom-b"),
            prom_ports[1],
            &prom_config(&[x], &ext("b"), Some(&urls[1])),
            &[],
        )),
        Some(start_prometheus(
            &tmp.path().join("prom-shard2"),
            prom_ports[2],
            &prom_config(&[y], &ext("a"), Some(&urls[2])),
            &[],
        )),
    ];
    // The reference: one Prometheus scraping both targets.
    let _reference = start_prometheus(
        &tmp.path().join("prom-ref"),
        prom_ports[3],
        &prom_config(&[x, y], "", None),
        &[],
    );
    let reference = format!("http://127.0.0.1:{}", prom_ports[3]);

    // The query-mode Cairn: no data of its own.
    let qport = free_port();
    let q = format!("http://127.0.0.1:{qport}");
    let mut flags: Vec<String> = urls.iter().map(|u| format!("--query.store={u}")).collect();
    flags.push("--query.replica-label=replica".into());
    flags.push("--mode=query".into());
    flags.push(objstore.clone());
    flags.push("--objstore.sync-interval=1s".into());
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let _query = start_cairn(&tmp.path().join("query"), qport, &flag_refs);
    assert!(!tmp.path().join("query/wal").exists());

    // Until every series has eight scrapes in the query Cairn.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = instant(&q, "count_over_time(gpu_temp[30s])", now_s());
        if got.len() == 3 && got.values().all(|v| v.parse::<f64>().unwrap_or(0.0) >= 8.0) {
            break;
        }
        assert!(Instant::now() < deadline, "not written yet: {got:?}");
        std::thread::sleep(Duration::from_millis(300));
    }
    // Eight scrapes a second apart: every series has data from here on.
    let start = now_s() - 6.0;

    // The same series and values as the reference, replica label gone.
    let t = now_s() - 2.0;
    let want = instant(&reference, "gpu_temp", t);
    let got = instant(&q, "gpu_temp", t);
    assert_eq!(got, want);
    assert_eq!(got.len(), 3);
    assert!(got.keys().all(|k| !k.contains("replica")), "{got:?}");
    // One sample a scrape: the pair's replicas are not both counted.
    let per_scrape = instant(&q, "count_over_time(gpu_temp[6s])", t);
    for (k, v) in &per_scrape {
        let n: f64 = v.parse().unwrap();
        assert!((4.0..=7.0).contains(&n), "{k}: {n} samples in 6 s");
    }
    // Label APIs without the replica label.
    let names = get(&format!("{q}/api/v1/labels")).json();
    assert!(
        !names["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "replica"),
        "{names}"
    );

    // Replica a's Prometheus and Cairn go away for a while, then come back.
    let down_from = now_s();
    proms[0].take();
    ingesters[0].take();
    std::thread::sleep(Duration::from_secs(3));
    // A query while ingester a is down: answered from b (a partial
    // response), the failure counted.
    let during = instant(&q, "gpu_temp", now_s() - 1.0);
    assert_eq!(during, instant(&reference, "gpu_temp", now_s() - 1.0));
    let m = get(&format!("{q}/metrics")).text();
    let failures: f64 = m
        .lines()
        .find(|l| l.starts_with("cairn_query_store_failures_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(failures >= 1.0, "{m}");
    std::thread::sleep(Duration::from_secs(3));
    ingesters[0] = Some(start_ingester(0, ports[0]));
    proms[0] = Some(start_prometheus(
        &tmp.path().join("prom-a"),
        prom_ports[0],
        &prom_config(&[x], &ext("a"), Some(&urls[0])),
        &[],
    ));
    std::thread::sleep(Duration::from_secs(3));

    // No gap over the whole time, the outage included: every second has
    // a sample within the last three for each series.
    let end = now_s() - 1.0;
    let r = post_form(
        &format!("{q}/api/v1/query_range"),
        &[
            ("query", "count_over_time(gpu_temp[3s])"),
            ("start", &format!("{:.3}", start + 3.0)),
            ("end", &format!("{end:.3}")),
            ("step", "1"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let res = r.json()["data"]["result"].as_array().cloned().unwrap();
    assert_eq!(res.len(), 3, "{res:?}");
    for s in &res {
        let vals = s["values"].as_array().unwrap();
        let n = ((end - start - 3.0).floor() as usize) + 1;
        assert!(
            vals.len() + 1 >= n,
            "{}: {} of {n} steps",
            s["metric"],
            vals.len()
        );
        for v in vals {
            let c: f64 = v[1].as_str().unwrap().parse().unwrap();
            assert!(c >= 1.0, "{} has a gap at {}", s["metric"], v[0]);
        }
    }
    assert!(end - down_from > 8.0);
    // The ingesters uploaded (the restarted one too, in time), and the
    // query Cairn read the bucket: the start of the range is in no
    // ingester any more.
    let deadline = Instant::now() + Duration::from_secs(30);
    let up = loop {
        let up = bucket_blocks(&bucket);
        let all = (0..3).all(|i| {
            up.iter()
                .any(|(_, m)| m["thanos"]["labels"]["ingester"] == i.to_string().as_str())
        });
        if all || Instant::now() > deadline {
            break up;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for i in 0..3 {
        assert!(
            up.iter()
                .any(|(_, m)| m["thanos"]["labels"]["ingester"] == i.to_string().as_str()),
            "ingester {i} uploaded nothing: {:?}\n{}",
            up.iter()
                .map(|(u, m)| (u, &m["thanos"]["labels"]))
                .collect::<Vec<_>>(),
            std::fs::read_to_string(tmp.path().join(format!("ingester{i}.log")))
                .unwrap_or_default()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let m = get(&format!("{q}/metrics")).text();
    assert!(
        m.lines()
            .any(|l| l.starts_with("cairn_objstore_store_blocks_open ") && !l.ends_with(" 0")),
        "{m}"
    );
}

#[test]
fn the_query_cairn_reads_the_bucket_and_the_ingesters_and_merges_replicas() {
    let tmp = tempfile::tempdir().unwrap();
    let (bucket, cfg) = fs_bucket_config(tmp.path());
    let objstore = format!("--objstore.config-file={}", cfg.display());
    // Two ingesters of an HA pair, keeping two hours locally.
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
    let urls: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let _ingesters: Vec<Proc> = ["a", "b"]
        .iter()
        .zip(&ports)
        .map(|(r, p)| {
            start_cairn(
                &tmp.path().join(format!("ingester-{r}")),
                *p,
                &[
                    &objstore,
                    "--mode=ingest",
                    &format!("--storage.external-label=ingester={r}"),
                    "--storage.tsdb.retention.time=2h",
                    "--storage.tsdb.maintenance-interval=1s",
                ],
            )
        })
        .collect();
    // Ten hours of a sample a minute, as each replica's Prometheus sends
    // them (its external label `replica` on every series); replica a
    // lost hours 3 to 5.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        / 60_000
        * 60_000;
    let start = now - 10 * 3_600_000;
    for (r, url) in ["a", "b"].iter().zip(&urls) {
        let l = cairn_model::Labels::from_pairs([
            ("__name__", "DCGM_FI_DEV_GPU_UTIL"),
            ("gpu", "0"),
            ("replica", r),
        ]);
        let all: Vec<_> = (0..=600i64)
            .filter(|i| *r != "a" || !(180..300).contains(i))
            .map(|i| (l.clone(), start + i * 60_000, i as f64))
            .collect();
        for part in all.chunks(100) {
            let resp = remote_write(&format!("{url}/api/v1/write"), part).unwrap();
            assert_eq!(resp.status, 204, "{}", resp.text());
        }
    }
    // Both ingesters upload their blocks; local retention then drops the
    // old ones.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let local: usize = ["a", "b"]
            .iter()
            .map(|r| blocks(&tmp.path().join(format!("ingester-{r}"))).len())
            .sum();
        let all: Vec<(String, serde_json::Value)> = bucket_blocks(&bucket)
            .into_iter()
            .filter(|(u, _)| !bucket.join(u).join("deletion-mark.json").exists())
            .collect();
        let up = all.len();
        // Every raw block in the bucket has its 5-minute block there.
        let sources = |m: &serde_json::Value| -> Vec<String> {
            m["compaction"]["sources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        };
        let res = |m: &serde_json::Value| m["thanos"]["downsample"]["resolution"].as_i64();
        let downsampled = all.iter().filter(|(_, m)| res(m) == Some(0)).all(|(_, m)| {
            all.iter().any(|(_, d)| {
                res(d) == Some(300_000)
                    && d["thanos"]["labels"] == m["thanos"]["labels"]
                    && sources(m).iter().all(|s| sources(d).contains(s))
            })
        });
        if up >= 6 && local < up && downsampled {
            break;
        }
        assert!(Instant::now() < deadline, "local {local}, bucket {up}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The query Cairn: the bucket for old data, the ingesters for recent.
    let qport = free_port();
    let q = format!("http://127.0.0.1:{qport}");
    let stores: Vec<String> = urls.iter().map(|u| format!("--query.store={u}")).collect();
    let _query = start_cairn(
        &tmp.path().join("query"),
        qport,
        &[
            &objstore,
            "--mode=query",
            &stores[0],
            &stores[1],
            "--query.replica-label=replica",
        ],
    );
    // The query Cairn keeps no WAL and takes no writes; the ingesters
    // answer no queries but serve remote read to it.
    assert!(!tmp.path().join("query/wal").exists());
    let l = cairn_model::Labels::from_pairs([("__name__", "x")]);
    let w = remote_write(&format!("{q}/api/v1/write"), &[(l, now, 1.0)]).unwrap();
    assert_eq!(w.status, 404, "{}", w.text());
    assert!(w.text().contains("--mode=query"), "{}", w.text());
    let refused = post_form(
        &format!("{}/api/v1/query", urls[0]),
        &[("query", "DCGM_FI_DEV_GPU_UTIL")],
    );
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(
        refused.json()["error"]
            .as_str()
            .unwrap()
            .contains("--mode=ingest"),
        "{}",
        refused.text()
    );
    let r = post_form(
        &format!("{q}/api/v1/query_range"),
        &[
            ("query", "DCGM_FI_DEV_GPU_UTIL"),
            ("start", &(start / 1000).to_string()),
            ("end", &(now / 1000).to_string()),
            ("step", "60"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let res = j["data"]["result"].as_array().unwrap();
    assert_eq!(res.len(), 1, "one series, the replicas merged: {j}");
    assert!(res[0]["metric"].get("replica").is_none());
    let vals = res[0]["values"].as_array().unwrap();
    assert_eq!(vals.len(), 601, "every minute, replica a's gap filled");
    // Every minute's value, except where the replicas switch: the other
    // replica's samples are taken from twice the interval after the last
    // one on (the penalty, as in Thanos), so up to two steps show the
    // last value before the gap.
    let mut behind = Vec::new();
    for (i, v) in vals.iter().enumerate() {
        let got: i64 = v[1].as_str().unwrap().parse().unwrap();
        if got != i as i64 {
            assert!(got < i as i64 && got >= i as i64 - 2, "minute {i}: {got}");
            behind.push(i);
        }
    }
    assert!(behind.len() <= 2, "only at the switch: {behind:?}");
    // Downsampled levels answer in query mode too. At 5-minute resolution
    // the bucket's 5-minute blocks give window averages (the step at
    // minute i reads the mean of minutes i-4..=i: i-2), and the
    // ingesters' recent samples, in no block yet, fill the rest as raw
    // values (i).
    let t0 = (start / 300_000 + 1) * 300_000;
    let r = post_form(
        &format!("{q}/api/v1/query_range"),
        &[
            ("query", "DCGM_FI_DEV_GPU_UTIL"),
            ("start", &(t0 / 1000).to_string()),
            ("end", &(now / 1000).to_string()),
            ("step", "300"),
            ("max_source_resolution", "5m"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let res = j["data"]["result"].as_array().unwrap();
    assert_eq!(res.len(), 1, "{j}");
    // (Where replica a stops, its last window holds fewer samples: a
    // window's average is what deduplication picks there.)
    let pts: Vec<(i64, f64)> = res[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let t = (v[0].as_f64().unwrap() * 1000.0) as i64;
            let f: f64 = v[1].as_str().unwrap().parse().unwrap();
            ((t - start) / 60_000, f)
        })
        .collect();
    // The first two hours (from the first full window), before replica
    // a's gap: averages.
    let early: Vec<&(i64, f64)> = pts.iter().filter(|(i, _)| (5..=120).contains(i)).collect();
    assert!(early.len() >= 20, "{pts:?}");
    assert!(early.iter().all(|(i, v)| *v == (i - 2) as f64), "{pts:?}");
    // The last step is past every block in the bucket: only the
    // ingesters' heads hold it, and it is raw.
    let newest = bucket_blocks(&bucket)
        .iter()
        .map(|(_, m)| m["maxTime"].as_i64().unwrap())
        .max()
        .unwrap();
    let (i, v) = *pts.last().unwrap();
    assert!(i > 595 && start + i * 60_000 > newest, "{i}");
    assert_eq!(v, i as f64, "{pts:?}");
    // Replica a's gap is filled from b's 5-minute points: no step is
    // missing after the switch.
    // (The steps' minutes depend on where `start` falls in its 5-minute
    // window: the expected steps come from the same grid.)
    let gap: Vec<i64> = pts
        .iter()
        .map(|p| p.0)
        .filter(|i| (200..=300).contains(i))
        .collect();
    let grid: Vec<i64> = (0..)
        .map(|k| (t0 + k * 300_000 - start) / 60_000)
        .take_while(|i| *i <= 300)
        .filter(|i| *i >= 200)
        .collect();
    assert!(grid.len() >= 20, "{grid:?}");
    assert_eq!(gap, grid, "{pts:?}");
    // The bucket answered for the old hours.
    let m = get(&format!("{q}/metrics")).text();
    assert!(
        m.lines()
            .any(|l| l.starts_with("cairn_objstore_store_blocks_open ") && !l.ends_with(" 0")),
        "{m}"
    );
}
