//! `cairn serve --objstore.config-file` with a filesystem bucket: the
//! blocks the head cuts are uploaded in Thanos's layout with the external
//! labels, and survive a restart of the shipper; a configuration mistake
//! stops the start with a message naming it; an unreachable bucket does
//! not. Blocks that local retention deleted after their upload are read
//! back from the bucket by queries, by the Cairn that wrote them and by
//! another on an empty data directory. A bucket of blocks as Thanos's
//! sidecar uploads them (promtool-written blocks, Thanos `meta.json`) is
//! served.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::time::{Duration, Instant};

use cairn_model::Labels;
use support::*;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn cut_blocks_are_uploaded_with_the_external_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (bucket, cfg) = fs_bucket_config(tmp.path());
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let flags = [
        "--storage.tsdb.maintenance-interval=1s",
        "--storage.tsdb.chunk-encoding=xor",
        "--storage.tsdb.downsample=false",
        &format!("--objstore.config-file={}", cfg.display()),
        "--storage.external-label=cluster=gpu-a",
        "--storage.external-label=replica=0",
    ];
    let c = start_cairn(&data, port, &flags);
    // Eight hours of a sample a minute: the head cuts its older hours
    // into blocks, which are uploaded.
    let now = now_ms() / 60_000 * 60_000;
    let l = Labels::from_pairs([("__name__", "DCGM_FI_DEV_GPU_UTIL"), ("gpu", "0")]);
    for part in (0..=480i64).collect::<Vec<_>>().chunks(120) {
        let batch: Vec<_> = part
            .iter()
            .map(|&i| (l.clone(), now - 8 * 3_600_000 + i * 60_000, i as f64))
            .collect();
        let r = remote_write(&format!("{base}/api/v1/write"), &batch).unwrap();
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let local = blocks(&data);
        let up = bucket_blocks(&bucket);
        if !local.is_empty() && local.iter().all(|b| up.iter().any(|u| &u.0 == b)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not uploaded: local {local:?}, bucket {:?}",
            up.iter().map(|u| &u.0).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (id, meta) in bucket_blocks(&bucket) {
        assert_eq!(meta["ulid"], id.as_str());
        assert_eq!(meta["thanos"]["labels"]["cluster"], "gpu-a");
        assert_eq!(meta["thanos"]["labels"]["replica"], "0");
        assert_eq!(meta["thanos"]["source"], "cairn");
        // The listed files are there, with their sizes.
        for f in meta["thanos"]["files"].as_array().unwrap() {
            let p = bucket.join(&id).join(f["rel_path"].as_str().unwrap());
            let n = std::fs::metadata(&p).unwrap().len();
            if let Some(size) = f["size_bytes"].as_u64() {
                assert_eq!(size, n, "{}", p.display());
            }
        }
    }
    // Self-instrumentation.
    let m = get(&format!("{base}/metrics")).text();
    let value = |name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    assert!(value("cairn_objstore_uploads_total") >= 1.0, "{m}");
    assert!(value("cairn_objstore_uploaded_bytes_total") > 0.0);
    assert_eq!(value("cairn_objstore_upload_failures_total"), 0.0);
    // The flags show in the status API.
    let flags = get(&format!("{base}/api/v1/status/flags")).json();
    assert_eq!(
        flags["data"]["storage.external-label"],
        "cluster=gpu-a,replica=0"
    );
    drop(c);
    // The state was kept: a restart uploads nothing twice (the bucket's
    // objects are not rewritten).
    let before: Vec<_> = bucket_blocks(&bucket)
        .iter()
        .map(|(id, _)| {
            std::fs::metadata(bucket.join(id).join("meta.json"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    let c = start_cairn(&data, port, &flags_owned(&flags_vec(&cfg)));
    std::thread::sleep(Duration::from_millis(1500));
    let after: Vec<_> = bucket_blocks(&bucket)
        .iter()
        .take(before.len())
        .map(|(id, _)| {
            std::fs::metadata(bucket.join(id).join("meta.json"))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();
    assert_eq!(before, after);
    drop(c);
}

/// Every step of `DCGM_FI_DEV_GPU_UTIL{gpu=...}` over `[start, end]`.
fn range(base: &str, start: i64, end: i64) -> serde_json::Value {
    let q = format!(
        "{base}/api/v1/query_range?query=DCGM_FI_DEV_GPU_UTIL&start={}&end={}&step=60",
        start as f64 / 1000.0,
        end as f64 / 1000.0
    );
    let r = get(&q);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

#[test]
fn blocks_deleted_locally_after_upload_are_queried_from_the_bucket() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (bucket, cfg) = fs_bucket_config(tmp.path());
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let objstore = format!("--objstore.config-file={}", cfg.display());
    let c = start_cairn(
        &data,
        port,
        &[
            "--storage.tsdb.maintenance-interval=1s",
            "--storage.tsdb.downsample=false",
            "--storage.tsdb.retention.time=2h",
            &objstore,
            "--storage.external-label=cluster=gpu-a",
        ],
    );
    // Ten hours of a sample a minute for three GPUs; the value is the
    // minute's index, so every answer is known.
    let now = now_ms() / 60_000 * 60_000;
    let start = now - 10 * 3_600_000;
    write_gpu_minutes(&base, start, 600);
    // Wait until retention deleted uploaded blocks locally.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let local = blocks(&data);
        let up = bucket_blocks(&bucket);
        if up.len() >= 3 && local.len() < up.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "local {local:?}, bucket {:?}",
            up.iter().map(|u| &u.0).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let check = |base: &str| {
        let j = range(base, start, now);
        let res = j["data"]["result"].as_array().unwrap();
        assert_eq!(res.len(), 3, "{j}");
        for s in res {
            let vals = s["values"].as_array().unwrap();
            assert_eq!(
                vals.len(),
                601,
                "every minute, none missing: {}",
                s["metric"]
            );
            for (i, v) in vals.iter().enumerate() {
                assert_eq!(v[1], i.to_string().as_str(), "{} at step {i}", s["metric"]);
            }
        }
    };
    check(&base);
    let m = get(&format!("{base}/metrics")).text();
    let value = |m: &str, name: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    assert!(value(&m, "cairn_objstore_store_blocks_open") >= 1.0, "{m}");
    assert!(value(&m, "cairn_objstore_store_index_headers_fetched_total") >= 1.0);
    assert!(value(&m, "cairn_objstore_store_range_requests_total") >= 1.0);

    // Another Cairn on an empty data directory answers the same from the
    // bucket alone (other external labels: it owns nothing of gpu-a's).
    let data2 = tmp.path().join("data2");
    std::fs::create_dir_all(&data2).unwrap();
    let port2 = free_port();
    let base2 = format!("http://127.0.0.1:{port2}");
    let cache = tmp.path().join("cache2");
    let cache_flag = format!("--objstore.cache.dir={}", cache.display());
    let c2 = start_cairn(
        &data2,
        port2,
        &[
            &objstore,
            &cache_flag,
            "--objstore.cache.size=1MB",
            "--storage.external-label=cluster=query",
        ],
    );
    // What A still holds in its head is not in the bucket: compare up to
    // the end of the newest uploaded block.
    let newest = bucket_blocks(&bucket)
        .iter()
        .map(|(_, m)| m["maxTime"].as_i64().unwrap())
        .max()
        .unwrap();
    let (a, b) = (
        range(&base, start, newest - 1),
        range(&base2, start, newest - 1),
    );
    assert_eq!(a["data"], b["data"]);
    assert!(!a["data"]["result"].as_array().unwrap().is_empty());
    assert!(
        std::fs::read_dir(&cache).unwrap().count() >= 1,
        "index headers cached"
    );
    drop(c2);
    drop(c);
}

#[test]
fn a_bucket_of_thanos_sidecar_uploads_is_served() {
    require_tool("/usr/bin/promtool");
    let tmp = tempfile::tempdir().unwrap();
    // Six hours of two GPUs' temperatures a minute, ending an hour ago,
    // written into blocks by promtool (Prometheus 2.42).
    let end = now_ms() / 1000 / 60 * 60 - 3600;
    let start = end - 6 * 3600;
    let mut om = String::from("# TYPE DCGM_FI_DEV_GPU_TEMP gauge\n");
    for gpu in 0..2 {
        for t in (start..end).step_by(60) {
            om.push_str(&format!(
                "DCGM_FI_DEV_GPU_TEMP{{Hostname=\"node-7\",gpu=\"{gpu}\"}} {} {t}\n",
                40 + gpu * 10 + (t / 60) % 7
            ));
        }
    }
    om.push_str("# EOF\n");
    std::fs::write(tmp.path().join("in.om"), om).unwrap();
    let prom = tmp.path().join("prom");
    run(std::process::Command::new("/usr/bin/promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(tmp.path().join("in.om"))
        .arg(&prom));
    // Uploaded as Thanos's sidecar uploads them: chunks and index, then
    // meta.json with the `thanos` section (external labels, resolution 0,
    // source, segment files, files with sizes).
    let bucket = tmp.path().join("bucket");
    let ids = blocks(&prom);
    assert!(ids.len() >= 3, "{ids:?}");
    for id in &ids {
        let (src, dst) = (prom.join(id), bucket.join(id));
        std::fs::create_dir_all(dst.join("chunks")).unwrap();
        let mut files = Vec::new();
        let mut segs = Vec::new();
        for e in std::fs::read_dir(src.join("chunks")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            std::fs::copy(e.path(), dst.join("chunks").join(&name)).unwrap();
            files.push(serde_json::json!({"rel_path": format!("chunks/{name}"), "size_bytes": e.metadata().unwrap().len()}));
            segs.push(name);
        }
        std::fs::copy(src.join("index"), dst.join("index")).unwrap();
        files.push(serde_json::json!({"rel_path": "index", "size_bytes": std::fs::metadata(src.join("index")).unwrap().len()}));
        files.push(serde_json::json!({"rel_path": "meta.json"}));
        let mut meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(src.join("meta.json")).unwrap()).unwrap();
        meta["thanos"] = serde_json::json!({
            "version": 1,
            "labels": {"cluster": "gpu-b", "prometheus_replica": "prom-0"},
            "downsample": {"resolution": 0},
            "source": "sidecar",
            "segment_files": segs,
            "files": files,
        });
        std::fs::write(
            dst.join("meta.json"),
            serde_json::to_vec_pretty(&meta).unwrap(),
        )
        .unwrap();
    }
    let (_, cfg) = fs_bucket_config(tmp.path());
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _c = start_cairn(
        &data,
        port,
        &[
            &format!("--objstore.config-file={}", cfg.display()),
            "--storage.external-label=cluster=query",
        ],
    );
    let q = format!(
        "{base}/api/v1/query_range?query=DCGM_FI_DEV_GPU_TEMP&start={start}&end={}&step=60",
        end - 60
    );
    let r = get(&q);
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    let res = j["data"]["result"].as_array().unwrap();
    assert_eq!(res.len(), 2, "{j}");
    for s in res {
        let gpu: i64 = s["metric"]["gpu"].as_str().unwrap().parse().unwrap();
        let vals = s["values"].as_array().unwrap();
        assert_eq!(vals.len(), 360, "every minute of six hours");
        for v in vals {
            let t = v[0].as_f64().unwrap() as i64;
            let want = 40 + gpu * 10 + (t / 60) % 7;
            assert_eq!(v[1], want.to_string().as_str(), "gpu {gpu} at {t}");
        }
    }
    // The sidecar's blocks are not Cairn's: nothing was uploaded or marked.
    let m = get(&format!("{base}/metrics")).text();
    assert!(
        m.contains(&format!("\ncairn_objstore_store_blocks {}\n", ids.len())),
        "{m}"
    );
    for id in &ids {
        assert!(!bucket.join(id).join("deletion-mark.json").exists());
    }
}

fn flags_vec(cfg: &std::path::Path) -> Vec<String> {
    vec![
        "--storage.tsdb.maintenance-interval=1s".into(),
        "--storage.tsdb.chunk-encoding=xor".into(),
        "--storage.tsdb.downsample=false".into(),
        format!("--objstore.config-file={}", cfg.display()),
        "--storage.external-label=cluster=gpu-a".into(),
    ]
}

fn flags_owned(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn configuration_mistakes_stop_the_start_an_unreachable_bucket_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = tmp.path().join("objstore.yml");
    for (yaml, says) in [
        ("type: GCS\nconfig:\n  bucket: b\n", "GCS"),
        (
            "type: S3\nconfig:\n  bucket: b\n  endpoint: h:1\n  secretkey: x\n",
            "secretkey",
        ),
    ] {
        std::fs::write(&cfg, yaml).unwrap();
        let out = cairn()
            .args(["serve", "--storage.tsdb.path"])
            .arg(&data)
            .arg(format!("--objstore.config-file={}", cfg.display()))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{yaml}: {err}");
    }
    let out = cairn()
        .args(["serve", "--storage.tsdb.path"])
        .arg(&data)
        .arg("--storage.external-label=__bad=1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("external-label"));
    // Nothing listens at that port: the start goes on, uploads wait.
    let dead = free_port();
    std::fs::write(
        &cfg,
        format!("type: S3\nconfig:\n  bucket: b\n  endpoint: 127.0.0.1:{dead}\n  access_key: a\n  secret_key: s\n  insecure: true\n"),
    )
    .unwrap();
    let port = free_port();
    let _c = start_cairn(
        &data,
        port,
        &[&format!("--objstore.config-file={}", cfg.display())],
    );
    let r = get(&format!("http://127.0.0.1:{port}/-/ready"));
    assert_eq!(r.status, 200);
}
