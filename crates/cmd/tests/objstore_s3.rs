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
