//! Object storage against a real S3 server: Garage (crates.io `garage`,
//! built by `scripts/install-deps.sh`), started on loopback in a
//! single-node layout. The shipper's uploads (single and multipart), its
//! deletion marks, the blocks read back by byte range for queries,
//! `cairn serve` uploading the blocks it cuts, and wrong
//! credentials stopping the start with the server's answer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_model::{Labels, MatchType, Matcher};
use cairn_objstore::{Bucket, BucketConfig, BucketStore, Shipper, ShipperOptions, StoreOptions};
use cairn_storage::{Appendable, Queryable, SelectHints, ValueType};
use cairn_tsdb::{BlockMeta, Db, DbOptions, RemoteBlocks};
use support::*;

const H: i64 = 3_600_000;

fn blocks(db: &Db) -> Vec<(PathBuf, BlockMeta)> {
    db.blocks()
        .iter()
        .map(|b| (b.dir().to_path_buf(), b.meta()))
        .collect()
}

#[test]
fn the_shipper_uploads_to_a_real_s3_server() {
    let tmp = tempfile::tempdir().unwrap();
    let g = start_garage(&tmp.path().join("garage"));
    let bucket = Arc::new(Bucket::open(&BucketConfig::parse(&g.objstore_yaml()).unwrap()).unwrap());
    bucket.check().unwrap();

    // A file larger than one part goes up in parts and comes back equal.
    let big = tmp.path().join("big");
    let bytes: Vec<u8> = (0..40u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&big, &bytes).unwrap();
    assert_eq!(
        bucket.upload_file("big/file", &big).unwrap(),
        bytes.len() as u64
    );
    assert_eq!(&bucket.get("big/file").unwrap().unwrap()[..], &bytes[..]);
    assert_eq!(bucket.get("no/such/object").unwrap(), None);
    bucket.delete("big/file").unwrap();
    assert!(!bucket.exists("big/file").unwrap());

    // Blocks of a real database, uploaded, then a compaction's result.
    let data = tmp.path().join("data");
    let db = Db::open(
        &data,
        DbOptions {
            maintenance_interval: None,
            retention_time: 0,
            downsample: false,
            ..DbOptions::default()
        },
    )
    .unwrap();
    let mut app = db.appender();
    for t in (0..7 * H).step_by(60_000) {
        let l = Labels::from_pairs([("__name__", "DCGM_FI_DEV_POWER_USAGE"), ("gpu", "3")]);
        app.append(0, &l, t, (t % 977) as f64).unwrap();
    }
    app.commit().unwrap();
    db.cut_head(true).unwrap();
    let s = Shipper::new(
        bucket.clone(),
        &data,
        ShipperOptions {
            labels: [("cluster".to_owned(), "gpu-a".to_owned())].into(),
            source: "cairn".into(),
            ..ShipperOptions::default()
        },
    )
    .unwrap();
    let first = blocks(&db);
    let r = s.sync(&first);
    assert_eq!(r.failed, None);
    assert_eq!(r.uploaded.len(), first.len());
    for (dir, m) in &first {
        let id = m.ulid.to_string();
        let index = bucket.get(&format!("{id}/index")).unwrap().unwrap();
        assert_eq!(&index[..], &std::fs::read(dir.join("index")).unwrap()[..]);
        let meta: serde_json::Value =
            serde_json::from_slice(&bucket.get(&format!("{id}/meta.json")).unwrap().unwrap())
                .unwrap();
        assert_eq!(meta["thanos"]["labels"]["cluster"], "gpu-a");
    }
    let ulids: Vec<String> = bucket
        .list_dirs("")
        .unwrap()
        .into_iter()
        .filter(|d| d.parse::<cairn_tsdb::Ulid>().is_ok())
        .collect();
    assert_eq!(ulids.len(), first.len(), "{ulids:?}");
    db.compact_now().unwrap();
    let r = s.sync(&blocks(&db));
    assert_eq!(r.failed, None);
    assert!(!r.marked.is_empty());
    for old in &r.marked {
        assert!(bucket.exists(&format!("{old}/deletion-mark.json")).unwrap());
    }

    // Served back from S3 by byte range: a database on an empty directory
    // answers as the writer does; marked blocks are left out.
    let st = Arc::new(
        BucketStore::new(
            bucket.clone(),
            StoreOptions {
                cache_dir: tmp.path().join("cache"),
                cache_bytes: 1 << 20,
                max_requests: 4,
                max_open_blocks: 0,
                serve_labels: Default::default(),
                owner_labels: None,
            },
        )
        .unwrap(),
    );
    st.refresh().unwrap();
    let served: Vec<_> = st.metas().iter().map(|m| m.ulid).collect();
    let mut local: Vec<_> = db.blocks().iter().map(|b| b.ulid()).collect();
    local.sort();
    assert_eq!(served, local);
    let reader = Db::open(
        &tmp.path().join("empty"),
        DbOptions {
            maintenance_interval: None,
            retention_time: 0,
            downsample: false,
            remote_blocks: Some(RemoteBlocks(st.clone())),
            ..DbOptions::default()
        },
    )
    .unwrap();
    let want = dump(db.as_ref(), 0, 7 * H);
    assert_eq!(
        want.matches('=').count(),
        2 + 7 * 60,
        "two labels and every sample"
    );
    assert_eq!(dump(reader.as_ref(), 0, 7 * H), want);
    assert!(
        st.cache_stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    db.close();
}

/// Every float sample of every series over `[mint, maxt]`.
fn dump(q: &dyn Queryable, mint: i64, maxt: i64) -> String {
    let q = q.querier(mint, maxt).unwrap();
    let m = [Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()];
    let mut out = String::new();
    for s in q.select(&SelectHints::default(), &m).unwrap() {
        let s = s.unwrap();
        out.push_str(&format!("{}:", s.labels()));
        let mut it = s.iter();
        while it.next() == ValueType::Float {
            let (t, v) = it.at();
            out.push_str(&format!(" {t}={v}"));
        }
        assert!(it.err().is_none(), "{:?}", it.err());
        out.push('\n');
    }
    out
}

/// A TCP proxy in front of the S3 server that, while `slow` is set, holds
/// every chunk a client sends (a request) for `delay` before passing it
/// on: a bucket whose every request takes that much longer.
fn slow_proxy(upstream: u16, slow: Arc<std::sync::atomic::AtomicBool>, delay: Duration) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut down) = c else { return };
            let Ok(mut up) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut down2, mut up2) = (down.try_clone().unwrap(), up.try_clone().unwrap());
            let slow = slow.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                while let Ok(n) = down.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if slow.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(delay);
                    }
                    if up.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = up.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut up2, &mut down2);
                let _ = down2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    port
}

#[test]
fn a_slow_bucket_times_queries_out_and_the_server_stays_healthy() {
    let tmp = tempfile::tempdir().unwrap();
    let g = start_garage(&tmp.path().join("garage"));
    let bucket = Arc::new(Bucket::open(&BucketConfig::parse(&g.objstore_yaml()).unwrap()).unwrap());
    // Seven hours of twenty series, in 2 h blocks, uploaded.
    let data = tmp.path().join("data");
    let db = Db::open(
        &data,
        DbOptions {
            maintenance_interval: None,
            retention_time: 0,
            downsample: false,
            ..DbOptions::default()
        },
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        / 60_000
        * 60_000;
    let start = now - 7 * H;
    let mut app = db.appender();
    for t in (start..now).step_by(60_000) {
        for gpu in 0..20 {
            let l = Labels::from_pairs([
                ("__name__", "DCGM_FI_DEV_GPU_TEMP".to_owned()),
                ("gpu", gpu.to_string()),
            ]);
            app.append(0, &l, t, 40.0).unwrap();
        }
    }
    app.commit().unwrap();
    db.cut_head(true).unwrap();
    let s = Shipper::new(bucket.clone(), &data, ShipperOptions::default()).unwrap();
    assert_eq!(s.sync(&blocks(&db)).failed, None);
    db.close();

    // A Cairn on an empty directory reads them through the proxy.
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let proxy = slow_proxy(g.s3_port, slow.clone(), Duration::from_millis(400));
    let cfg = tmp.path().join("objstore.yml");
    std::fs::write(
        &cfg,
        g.objstore_yaml()
            .replace(&format!(":{}", g.s3_port), &format!(":{proxy}")),
    )
    .unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _c = start_cairn(
        &empty,
        port,
        &[
            &format!("--objstore.config-file={}", cfg.display()),
            "--storage.external-label=cluster=query",
            "--query.timeout=1s",
        ],
    );
    let q = format!(
        "{base}/api/v1/query_range?query=max(DCGM_FI_DEV_GPU_TEMP)&start={}&end={}&step=60",
        start / 1000,
        now / 1000
    );
    slow.store(true, std::sync::atomic::Ordering::Relaxed);
    let t0 = Instant::now();
    let r = get(&q);
    let took = t0.elapsed();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["errorType"], "timeout", "{}", r.text());
    assert!(took < Duration::from_secs(30), "gave up after {took:?}");
    // The server is healthy and answers what needs no bucket at once.
    assert_eq!(get(&format!("{base}/-/healthy")).status, 200);
    let t0 = Instant::now();
    let r = get(&format!("{base}/api/v1/query?query=vector(1)"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(t0.elapsed() < Duration::from_secs(2));
    // Once the bucket is fast again, the same query answers.
    slow.store(false, std::sync::atomic::Ordering::Relaxed);
    let r = get(&q);
    assert_eq!(r.status, 200, "{}", r.text());
    let vals = &r.json()["data"]["result"][0]["values"];
    assert!(vals.as_array().unwrap().len() >= 6 * 60, "{vals}");
}

#[test]
fn cairn_serve_uploads_to_s3_and_wrong_credentials_stop_it() {
    let tmp = tempfile::tempdir().unwrap();
    let g = start_garage(&tmp.path().join("garage"));
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = tmp.path().join("objstore.yml");

    // A wrong secret: the start stops and says why.
    std::fs::write(&cfg, g.objstore_yaml_with_secret(&"0".repeat(64))).unwrap();
    let out = cairn()
        .args(["serve", "--storage.tsdb.path"])
        .arg(&data)
        .arg(format!("--objstore.config-file={}", cfg.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("objstore.config-file"), "{err}");
    // The server's answer is in the message.
    assert!(
        [
            "Forbidden",
            "403",
            "AccessDenied",
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId"
        ]
        .iter()
        .any(|w| err.contains(w)),
        "{err}"
    );

    // The right one: the blocks it cuts go up.
    std::fs::write(&cfg, g.objstore_yaml()).unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _c = start_cairn(
        &data,
        port,
        &[
            "--storage.tsdb.maintenance-interval=1s",
            "--storage.tsdb.chunk-encoding=xor",
            "--storage.tsdb.downsample=false",
            &format!("--objstore.config-file={}", cfg.display()),
            "--storage.external-label=cluster=gpu-a",
        ],
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        / 60_000
        * 60_000;
    let l = Labels::from_pairs([("__name__", "DCGM_FI_DEV_GPU_TEMP"), ("gpu", "1")]);
    for part in (0..=480i64).collect::<Vec<_>>().chunks(120) {
        let batch: Vec<_> = part
            .iter()
            .map(|&i| (l.clone(), now - 8 * H + i * 60_000, 40.0 + (i % 7) as f64))
            .collect();
        let r = remote_write(&format!("{base}/api/v1/write"), &batch).unwrap();
        assert_eq!(r.status, 204, "{}", r.text());
    }
    let bucket = Bucket::open(&BucketConfig::parse(&g.objstore_yaml()).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let local = support::blocks(&data);
        let up: Vec<String> = bucket
            .list_dirs("")
            .unwrap()
            .into_iter()
            .filter(|d| bucket.exists(&format!("{d}/meta.json")).unwrap())
            .collect();
        if !local.is_empty() && local.iter().all(|b| up.contains(b)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not uploaded: local {local:?}, bucket {up:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
