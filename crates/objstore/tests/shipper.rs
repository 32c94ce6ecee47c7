//! The shipper against a filesystem bucket and a real database: blocks
//! uploaded in Thanos's layout with `meta.json` last, compaction results
//! replacing (marking) what they cover, downsampled levels never replacing
//! raw blocks, an unreachable bucket failing a round without losing
//! anything, and retention holding blocks not uploaded yet.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use cairn_model::labels;
use cairn_objstore::{
    Bucket, BucketConfig, DeletionMark, ShipState, Shipper, ShipperEvent, ShipperOptions,
    STATE_FILE,
};
use cairn_storage::Appendable;
use cairn_tsdb::{BlockMeta, Db, DbOptions, RetentionHold};

const H: i64 = 3_600_000;

fn db_opts() -> DbOptions {
    DbOptions {
        maintenance_interval: None,
        retention_time: 0,
        downsample: false,
        ..DbOptions::default()
    }
}

/// A sample a minute for two series over `[from, to)` hours.
fn fill(db: &Db, from: i64, to: i64) {
    let mut app = db.appender();
    for t in (from * H..to * H).step_by(60_000) {
        for g in ["0", "1"] {
            let l = labels!("__name__" => "DCGM_FI_DEV_GPU_UTIL", "gpu" => g);
            app.append(0, &l, t, (t / 60_000) as f64).unwrap();
        }
    }
    app.commit().unwrap();
}

fn blocks(db: &Db) -> Vec<(PathBuf, BlockMeta)> {
    db.blocks()
        .iter()
        .map(|b| (b.dir().to_path_buf(), b.meta()))
        .collect()
}

fn fs_bucket(dir: &std::path::Path) -> Arc<Bucket> {
    Arc::new(
        Bucket::open(&BucketConfig::Filesystem {
            directory: dir.to_path_buf(),
            prefix: String::new(),
        })
        .unwrap(),
    )
}

fn opts() -> ShipperOptions {
    ShipperOptions {
        labels: BTreeMap::from([("cluster".to_owned(), "gpu-a".to_owned())]),
        source: "cairn".into(),
        ..ShipperOptions::default()
    }
}

#[test]
fn blocks_are_uploaded_in_thanos_layout_and_compactions_replace_them() {
    let data = tempfile::tempdir().unwrap();
    let bdir = tempfile::tempdir().unwrap();
    let db = Db::open(data.path(), db_opts()).unwrap();
    fill(&db, 0, 7);
    db.cut_head(true).unwrap();
    let first = blocks(&db);
    assert!(first.len() >= 3, "{} blocks", first.len());
    let bucket = fs_bucket(bdir.path());
    let s = Shipper::new(bucket.clone(), data.path(), opts()).unwrap();
    let events = s.subscribe();
    let r = s.sync(&first);
    assert_eq!(r.failed, None);
    assert_eq!(r.uploaded.len(), first.len());
    for (dir, m) in &first {
        let id = m.ulid.to_string();
        // Every local file is there with the same bytes.
        for f in ["index", "chunks/000001"] {
            let want = std::fs::read(dir.join(f)).unwrap();
            let got = bucket.get(&format!("{id}/{f}")).unwrap().unwrap();
            assert_eq!(&got[..], &want[..], "{id}/{f}");
        }
        let meta: serde_json::Value =
            serde_json::from_slice(&bucket.get(&format!("{id}/meta.json")).unwrap().unwrap())
                .unwrap();
        assert_eq!(meta["ulid"], id);
        assert_eq!(meta["minTime"], m.min_time);
        assert_eq!(meta["thanos"]["labels"]["cluster"], "gpu-a");
        assert_eq!(meta["thanos"]["source"], "cairn");
        assert_eq!(meta["thanos"]["downsample"]["resolution"], 0);
        let files: Vec<&str> = meta["thanos"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rel_path"].as_str().unwrap())
            .collect();
        // The block directory as it is (Cairn's blocks carry a
        // tombstones file) and meta.json, sorted by path as Thanos lists
        // them.
        let mut want = vec!["chunks/000001", "index", "meta.json"];
        if dir.join("tombstones").exists() {
            want.push("tombstones");
        }
        assert_eq!(files, want);
        assert!(s.is_uploaded(&m.ulid));
        assert!(matches!(
            events.try_recv(),
            Ok(ShipperEvent::Uploaded { .. })
        ));
    }
    // Nothing to do the second time.
    assert_eq!(s.sync(&blocks(&db)).uploaded, vec![]);
    // A compaction merges the first blocks: its result is uploaded and
    // the blocks it covers are marked for deletion, Thanos's way.
    db.compact_now().unwrap();
    let after = blocks(&db);
    let r = s.sync(&after);
    assert_eq!(r.failed, None);
    assert!(!r.uploaded.is_empty());
    assert!(!r.marked.is_empty(), "{r:?}");
    for old in &r.marked {
        let mark: DeletionMark = serde_json::from_slice(
            &bucket
                .get(&format!("{old}/deletion-mark.json"))
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(mark.id, old.to_string());
        assert_eq!(mark.version, 1);
        assert!(!s.is_uploaded(old));
    }
    // The state lists what is local and uploaded, and survives a restart.
    let st = ShipState::load(&data.path().join(STATE_FILE)).unwrap();
    let local: Vec<_> = after.iter().map(|(_, m)| m.ulid).collect();
    for u in &st.uploaded {
        assert!(local.contains(&u.ulid), "{:?} not local", u.ulid);
    }
    let again = Shipper::new(bucket, data.path(), opts()).unwrap();
    assert_eq!(again.sync(&after).uploaded, vec![]);
    db.close();
}

#[test]
fn meta_json_goes_last_so_a_cut_upload_is_partial() {
    let data = tempfile::tempdir().unwrap();
    let bdir = tempfile::tempdir().unwrap();
    let db = Db::open(data.path(), db_opts()).unwrap();
    fill(&db, 0, 3);
    db.cut_head(true).unwrap();
    let (dir, meta) = blocks(&db).remove(0);
    // A copy of the block without its meta.json: the upload fails where
    // meta.json would go, after every other file.
    let copy = data.path().join("copy");
    std::fs::create_dir_all(copy.join("chunks")).unwrap();
    std::fs::copy(dir.join("index"), copy.join("index")).unwrap();
    std::fs::copy(dir.join("chunks/000001"), copy.join("chunks/000001")).unwrap();
    let bucket = fs_bucket(bdir.path());
    let s = Shipper::new(bucket.clone(), data.path(), opts()).unwrap();
    let e = s.upload_block(&copy, &meta).unwrap_err().to_string();
    assert!(e.contains("meta.json"), "{e}");
    let id = meta.ulid.to_string();
    assert!(bucket.exists(&format!("{id}/index")).unwrap());
    assert!(!bucket.exists(&format!("{id}/meta.json")).unwrap());
    // The real round uploads it whole.
    assert_eq!(s.sync(&blocks(&db)).failed, None);
    assert!(bucket.exists(&format!("{id}/meta.json")).unwrap());
    db.close();
}

#[test]
fn an_unreachable_bucket_fails_the_round_and_retention_holds_the_blocks() {
    let data = tempfile::tempdir().unwrap();
    // Nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Arc::new(
        Bucket::open(
            &BucketConfig::parse(&format!(
                "type: S3\nconfig:\n  bucket: b\n  endpoint: 127.0.0.1:{port}\n  access_key: a\n  secret_key: s\n  insecure: true\n  max_retries: 0\n"
            ))
            .unwrap(),
        )
        .unwrap(),
    );
    assert!(down.check().is_err());
    let s = Arc::new(Shipper::new(down, data.path(), opts()).unwrap());
    let held = s.clone();
    let o = DbOptions {
        retention_time: 2 * H,
        retention_hold: Some(RetentionHold(Arc::new(move |m| held.holds(m)))),
        ..db_opts()
    };
    let db = Db::open(data.path(), o.clone()).unwrap();
    fill(&db, 0, 9);
    db.cut_head(true).unwrap();
    let before = blocks(&db);
    let events = s.subscribe();
    let r = s.sync(&before);
    assert!(r.failed.is_some());
    assert!(r.uploaded.is_empty());
    assert!(matches!(
        events.try_recv(),
        Ok(ShipperEvent::UploadFailed { .. })
    ));
    // Past retention, but not uploaded: kept.
    assert!(db.apply_retention().unwrap().is_empty());
    assert_eq!(blocks(&db).len(), before.len());
    db.close();
    drop(db);
    // The bucket is back (here: another bucket for the same directory):
    // everything goes up, then retention may delete.
    let bdir = tempfile::tempdir().unwrap();
    let up = Arc::new(Shipper::new(fs_bucket(bdir.path()), data.path(), opts()).unwrap());
    let held = up.clone();
    let o = DbOptions {
        retention_hold: Some(RetentionHold(Arc::new(move |m| held.holds(m)))),
        ..o
    };
    let db = Db::open(data.path(), o).unwrap();
    let r = up.sync(&blocks(&db));
    assert_eq!(r.failed, None);
    assert_eq!(r.uploaded.len(), before.len());
    assert!(!db.apply_retention().unwrap().is_empty());
    db.close();
}

#[test]
fn marked_blocks_and_abandoned_partials_are_deleted_after_their_delays() {
    let data = tempfile::tempdir().unwrap();
    let bdir = tempfile::tempdir().unwrap();
    let db = Db::open(data.path(), db_opts()).unwrap();
    fill(&db, 0, 7);
    db.cut_head(true).unwrap();
    let bucket = fs_bucket(bdir.path());
    let o = ShipperOptions {
        partial_scan_every: std::time::Duration::ZERO,
        ..opts()
    };
    let s = Shipper::new(bucket.clone(), data.path(), o).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(s.sync_at(&blocks(&db), now).failed, None);
    db.compact_now().unwrap();
    let r = s.sync_at(&blocks(&db), now);
    assert!(!r.marked.is_empty());
    assert!(r.deleted.is_empty(), "not before the delay");
    assert_eq!(s.state().marked.len(), r.marked.len());
    // An abandoned partial upload (no meta.json), and a fresh one.
    let stale = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    bucket.put(&format!("{stale}/index"), "x".into()).unwrap();
    let r = s.sync_at(&blocks(&db), now + 3600);
    assert!(r.partials_deleted.is_empty(), "idle an hour only: {r:?}");
    // Two days later: the marked blocks go, meta.json and mark included,
    // and so does the partial upload.
    let events = s.subscribe();
    let r = s.sync_at(&blocks(&db), now + 48 * 3600 + 1);
    assert_eq!(r.failed, None);
    let mut deleted = r.deleted.clone();
    deleted.sort();
    assert!(s.state().marked.is_empty(), "{:?}", s.state().marked);
    for d in &deleted {
        assert!(bucket.list_all(&d.to_string()).unwrap().is_empty(), "{d}");
    }
    assert_eq!(r.partials_deleted.len(), 1);
    assert_eq!(r.partials_deleted[0].to_string(), stale);
    assert!(bucket.list_all(stale).unwrap().is_empty());
    // The blocks in use are all still there.
    for (_, m) in blocks(&db) {
        assert!(bucket.exists(&format!("{}/meta.json", m.ulid)).unwrap());
    }
    let got: Vec<ShipperEvent> = events.try_iter().collect();
    assert!(got
        .iter()
        .any(|e| matches!(e, ShipperEvent::PartialDeleted { .. })));
    assert_eq!(
        got.iter()
            .filter(|e| matches!(e, ShipperEvent::Deleted { .. }))
            .count(),
        deleted.len()
    );
    db.close();
}

#[test]
fn bucket_retention_marks_blocks_of_its_resolution_only() {
    let data = tempfile::tempdir().unwrap();
    let bdir = tempfile::tempdir().unwrap();
    let db = Db::open(data.path(), db_opts()).unwrap();
    fill(&db, 0, 5);
    db.cut_head(true).unwrap();
    let bucket = fs_bucket(bdir.path());
    let day = std::time::Duration::from_secs(86_400);
    let s = Shipper::new(
        bucket.clone(),
        data.path(),
        ShipperOptions {
            retention: vec![(0, day), (300_000, std::time::Duration::ZERO)],
            ..opts()
        },
    )
    .unwrap();
    // The blocks hold 1970's first hours; at 8 h they are within a day.
    let r = s.sync_at(&blocks(&db), 8 * 3600);
    assert_eq!(r.failed, None);
    assert!(r.marked.is_empty());
    let mut up = r.uploaded.clone();
    up.sort();
    // Three days later they are past the raw retention: marked, then
    // deleted after the delay, and never uploaded again.
    let r = s.sync_at(&blocks(&db), 3 * 86_400);
    let mut marked = r.marked.clone();
    marked.sort();
    assert_eq!(up, marked);
    assert!(s.state().uploaded.is_empty());
    let r = s.sync_at(&blocks(&db), 6 * 86_400);
    assert!(r.uploaded.is_empty());
    let mut deleted = r.deleted.clone();
    deleted.sort();
    assert_eq!(deleted, up);
    assert!(s.sync_at(&blocks(&db), 7 * 86_400).uploaded.is_empty());
    // Past the bucket retention already: never uploaded, and local
    // retention is not held for them.
    for (_, m) in blocks(&db) {
        assert!(!s.holds(&m));
    }
    let data2 = tempfile::tempdir().unwrap();
    let db2 = Db::open(data2.path(), db_opts()).unwrap();
    fill(&db2, 0, 5);
    db2.cut_head(true).unwrap();
    let s2 = Shipper::new(
        fs_bucket(bdir.path()),
        data2.path(),
        ShipperOptions {
            retention: vec![(0, day)],
            ..opts()
        },
    )
    .unwrap();
    let r = s2.sync(&blocks(&db2));
    assert!(r.uploaded.is_empty() && r.failed.is_none(), "{r:?}");
    // Without a raw retention, everything goes up and stays.
    let s3 = Shipper::new(fs_bucket(bdir.path()), data2.path(), opts()).unwrap();
    let r = s3.sync(&blocks(&db2));
    assert!(!r.uploaded.is_empty() && r.marked.is_empty());
    db.close();
    db2.close();
}

#[test]
fn a_second_owner_of_the_same_external_labels_is_refused() {
    let bdir = tempfile::tempdir().unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let five_min = std::time::Duration::from_secs(300);
    let now = 1_800_000_000;
    let first = Shipper::new(
        fs_bucket(bdir.path()),
        a.path(),
        ShipperOptions {
            host: "gpu-node-7".into(),
            ..opts()
        },
    )
    .unwrap();
    first.claim(now, five_min).unwrap();
    // Another data directory, the same labels: refused, naming the owner.
    let second = Shipper::new(fs_bucket(bdir.path()), b.path(), opts()).unwrap();
    let e = second.claim(now + 60, five_min).unwrap_err();
    assert!(matches!(e, cairn_objstore::ObjstoreError::Owned { .. }));
    assert!(
        e.to_string().contains(&a.path().display().to_string()),
        "{e}"
    );
    assert!(e.to_string().contains("gpu-node-7"), "{e}");
    // The first one restarted (same data directory): still the owner.
    let again = Shipper::new(fs_bucket(bdir.path()), a.path(), opts()).unwrap();
    again.claim(now + 60, five_min).unwrap();
    // Other labels: another owner, no conflict.
    let other = Shipper::new(
        fs_bucket(bdir.path()),
        b.path(),
        ShipperOptions {
            labels: BTreeMap::from([("cluster".to_owned(), "gpu-b".to_owned())]),
            ..opts()
        },
    )
    .unwrap();
    other.claim(now + 60, five_min).unwrap();
    // Once the first one's heartbeat is stale, it can be taken over.
    second.claim(now + 60 + 301, five_min).unwrap();
}
