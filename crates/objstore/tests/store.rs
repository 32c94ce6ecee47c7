//! The bucket store against a filesystem bucket and real databases: a
//! database with an empty data directory answers from the bucket exactly
//! as the database that wrote the blocks; index headers are fetched once
//! and kept on disk; local copies are not read twice; partial uploads and
//! marked blocks are not served; damage fails the query with the block's
//! name and leaves the store serving the rest; the cache stays within its
//! bound.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_model::{labels, MatchType, Matcher};
use cairn_objstore::{
    Bucket, BucketConfig, BucketStore, Shipper, ShipperOptions, StoreEvent, StoreOptions,
    INDEX_HEADER,
};
use cairn_storage::{Appendable, Queryable, SelectHints, ValueType};
use cairn_tsdb::{BlockMeta, Db, DbOptions, RemoteBlocks, Ulid};

const H: i64 = 3_600_000;
/// Hours of data written: cut into 2 h blocks, compacted into 6 h ones.
const END: i64 = 15;

fn db_opts() -> DbOptions {
    DbOptions {
        maintenance_interval: None,
        retention_time: 0,
        downsample: false,
        ..DbOptions::default()
    }
}

/// Samples every 15 s for 40 GPUs over `[from, to)` hours, with a spike.
fn fill(db: &Db, from: i64, to: i64) {
    let mut app = db.appender();
    for t in (from * H..to * H).step_by(15_000) {
        for g in 0..40 {
            let l = labels!(
                "__name__" => "DCGM_FI_DEV_GPU_UTIL",
                "Hostname" => &format!("node-{}", g / 8),
                "gpu" => &(g % 8).to_string()
            );
            let v = if t == 3 * H + 15_000 && g == 7 {
                218_322_032.0
            } else {
                ((t / 15_000 + g) % 100) as f64
            };
            app.append(0, &l, t, v).unwrap();
        }
    }
    app.commit().unwrap();
}

fn fs_bucket(dir: &Path) -> Arc<Bucket> {
    Arc::new(
        Bucket::open(&BucketConfig::Filesystem {
            directory: dir.to_path_buf(),
            prefix: String::new(),
        })
        .unwrap(),
    )
}

fn blocks(db: &Db) -> Vec<(PathBuf, BlockMeta)> {
    db.blocks()
        .iter()
        .map(|b| (b.dir().to_path_buf(), b.meta()))
        .collect()
}

/// Every sample of the series matching `m` over `[mint, maxt]`.
fn dump(q: &dyn Queryable, mint: i64, maxt: i64, m: &[Matcher]) -> cairn_storage::Result<String> {
    let q = q.querier(mint, maxt)?;
    let hints = SelectHints {
        start: mint,
        end: maxt,
        ..SelectHints::default()
    };
    let mut out = String::new();
    for s in q.select(&hints, m)? {
        let s = s?;
        out.push_str(&format!("{}:", s.labels()));
        let mut it = s.iter();
        while it.next() == ValueType::Float {
            let (t, v) = it.at();
            out.push_str(&format!(" {t}={v}"));
        }
        if let Some(e) = it.err() {
            return Err(cairn_storage::StorageError::Backend(e.to_string().into()));
        }
        out.push('\n');
    }
    Ok(out)
}

fn all() -> Vec<Matcher> {
    vec![Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()]
}

/// A database that wrote 0..END h into blocks (cut, then compacted into
/// dense chunks) and uploaded them.
fn writer(data: &Path, bucket: &Arc<Bucket>) -> Arc<Db> {
    writer_with(data, bucket, true)
}

/// [`writer`], with 2 h XOR blocks only unless `compact`.
fn writer_with(data: &Path, bucket: &Arc<Bucket>, compact: bool) -> Arc<Db> {
    let db = Db::open(data, db_opts()).unwrap();
    fill(&db, 0, END);
    db.cut_head(true).unwrap();
    if compact {
        db.compact_now().unwrap();
    }
    let r = uploader(bucket, data).sync(&blocks(&db));
    assert!(!r.uploaded.is_empty());
    db
}

fn store(bucket: &Arc<Bucket>, cache: &Path, bytes: u64) -> Arc<BucketStore> {
    store_with(bucket, cache, bytes, 0)
}

fn store_with(bucket: &Arc<Bucket>, cache: &Path, bytes: u64, max_open: usize) -> Arc<BucketStore> {
    let st = Arc::new(
        BucketStore::new(
            bucket.clone(),
            StoreOptions {
                cache_dir: cache.to_path_buf(),
                cache_bytes: bytes,
                max_requests: 4,
                max_open_blocks: max_open,
                serve_labels: Default::default(),
                owner_labels: None,
            },
        )
        .unwrap(),
    );
    st.refresh().unwrap();
    st
}

/// A database on an empty directory reading `st`'s blocks.
fn reader(data: &Path, st: &Arc<BucketStore>) -> Arc<Db> {
    Db::open(
        data,
        DbOptions {
            remote_blocks: Some(RemoteBlocks(st.clone())),
            ..db_opts()
        },
    )
    .unwrap()
}

/// One test's directories under one temporary root: the writer's data
/// directory, the bucket, a cache directory, and fresh ones on demand.
struct Setup {
    root: tempfile::TempDir,
    fresh: std::sync::atomic::AtomicUsize,
}

impl Setup {
    fn new() -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
            fresh: Default::default(),
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A directory no other call returned.
    fn fresh(&self) -> PathBuf {
        let n = self
            .fresh
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.dir(&format!("fresh-{n}"))
    }
}

#[test]
fn an_empty_database_answers_from_the_bucket_as_the_writer_does() {
    let t = Setup::new();
    let (data, bdir, data2, cache) = (
        t.dir("data"),
        t.dir("bucket"),
        t.dir("data2"),
        t.dir("cache"),
    );
    let bucket = fs_bucket(&bdir);
    let w = writer(&data, &bucket);
    let want = dump(w.as_ref(), 0, END * H, &all()).unwrap();
    assert_eq!(want.lines().count(), 40);
    assert!(want.contains("=218322032"));

    let st = store(&bucket, &cache, 64 << 20);
    let n_blocks = st.metas().len();
    assert_eq!(n_blocks, w.blocks().len());
    let events = st.subscribe();
    let r = reader(&data2, &st);
    assert!(r.blocks().is_empty(), "nothing local");
    assert_eq!(dump(r.as_ref(), 0, END * H, &all()).unwrap(), want);
    // Narrower ranges and selective matchers too.
    let m = vec![
        Matcher::new(MatchType::Equal, "Hostname", "node-0").unwrap(),
        Matcher::new(MatchType::Regex, "gpu", "[67]").unwrap(),
    ];
    for (a, z) in [(0, H), (3 * H, 3 * H + 60_000), (2 * H - 1, 5 * H + 1)] {
        assert_eq!(
            dump(r.as_ref(), a, z, &m).unwrap(),
            dump(w.as_ref(), a, z, &m).unwrap()
        );
    }
    let opened: Vec<StoreEvent> = events.try_iter().collect();
    assert_eq!(opened.len(), n_blocks, "each block opened once: {opened:?}");
    assert!(opened
        .iter()
        .all(|e| matches!(e, StoreEvent::Opened { header_bytes, .. } if *header_bytes > 0)));
    let stats = st.cache_stats();
    assert!(stats.requests.load(std::sync::atomic::Ordering::Relaxed) > 0);
    for m in st.metas() {
        assert!(cache.join(m.ulid.to_string()).join(INDEX_HEADER).exists());
    }

    // A restart: the headers on disk are used, nothing is fetched for them.
    drop(r);
    drop(st);
    let st = store(&bucket, &cache, 64 << 20);
    let events = st.subscribe();
    let r = reader(&t.fresh(), &st);
    assert_eq!(dump(r.as_ref(), 0, END * H, &all()).unwrap(), want);
    let opened: Vec<StoreEvent> = events.try_iter().collect();
    assert_eq!(opened.len(), n_blocks);
    assert!(opened.iter().all(|e| matches!(
        e,
        StoreEvent::Opened {
            header_bytes: 0,
            ..
        }
    )));
}

#[test]
fn local_blocks_are_not_read_again_from_the_bucket() {
    let t = Setup::new();
    let (data, bdir, cache) = (t.dir("data"), t.dir("bucket"), t.dir("cache"));
    let bucket = fs_bucket(&bdir);
    let w = writer(&data, &bucket);
    let st = store(&bucket, &cache, 1 << 20);
    assert!(st.query_blocks(&w.blocks(), 0, END * H).unwrap().is_empty());
    assert_eq!(st.block_counts(), (w.blocks().len(), 0), "none opened");
    // Only what overlaps the range is opened.
    let first = st.query_blocks(&[], 0, 60_000).unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].meta().min_time, 0);
    assert_eq!(st.block_counts().1, 1);
    assert_eq!(
        st.query_blocks(&[], 0, END * H).unwrap().len(),
        w.blocks().len()
    );
    // A local block compacted from the sources of a bucket block covers
    // it: the bucket's copy of the same data is not read either.
    let compacted = w
        .blocks()
        .into_iter()
        .max_by_key(|b| b.meta().compaction.sources.len())
        .unwrap();
    assert!(compacted.meta().compaction.sources.len() > 1);
    let only = vec![compacted.clone()];
    let more = st.query_blocks(&only, 0, END * H).unwrap();
    assert_eq!(more.len(), w.blocks().len() - 1);
    assert!(more.iter().all(|b| b.ulid() != compacted.ulid()));
    // The writer with the store beside its own blocks answers the same.
    let want = dump(w.as_ref(), 0, END * H, &all()).unwrap();
    drop(w);
    let w = Db::open(
        &data,
        DbOptions {
            remote_blocks: Some(RemoteBlocks(st.clone())),
            ..db_opts()
        },
    )
    .unwrap();
    assert_eq!(dump(w.as_ref(), 0, END * H, &all()).unwrap(), want);
}

#[test]
fn partial_uploads_and_marked_blocks_are_not_served() {
    let t = Setup::new();
    let (data, bdir, cache) = (t.dir("data"), t.dir("bucket"), t.dir("cache"));
    let bucket = fs_bucket(&bdir);
    let w = writer_with(&data, &bucket, false);
    let ids: Vec<String> = w.blocks().iter().map(|b| b.ulid().to_string()).collect();
    assert!(ids.len() >= 3);
    std::fs::remove_file(bdir.join(&ids[0]).join("meta.json")).unwrap();
    std::fs::write(
        bdir.join(&ids[1]).join("deletion-mark.json"),
        format!(r#"{{"id":"{}","deletion_time":1,"version":1}}"#, ids[1]),
    )
    .unwrap();
    // Not a block at all, and the owner records: ignored.
    std::fs::create_dir_all(bdir.join("debug")).unwrap();
    std::fs::write(bdir.join("debug/meta.json"), "{}").unwrap();
    let st = store(&bucket, &cache, 1 << 20);
    let served: Vec<String> = st.metas().iter().map(|m| m.ulid.to_string()).collect();
    assert_eq!(served.len(), ids.len() - 2);
    assert!(!served.contains(&ids[0]) && !served.contains(&ids[1]));
    // A block that leaves the bucket leaves the store at the next refresh,
    // and its cache directory goes with it.
    st.query_blocks(&[], 0, END * H).unwrap();
    let gone = served[0].clone();
    assert!(cache.join(&gone).exists());
    std::fs::remove_dir_all(bdir.join(&gone)).unwrap();
    st.refresh().unwrap();
    assert!(!st.metas().iter().any(|m| m.ulid.to_string() == gone));
    assert!(!cache.join(&gone).exists());
}

#[test]
fn a_damaged_object_fails_the_query_naming_the_block_and_the_rest_is_served() {
    let t = Setup::new();
    let (data, bdir, cache) = (t.dir("data"), t.dir("bucket"), t.dir("cache"));
    let bucket = fs_bucket(&bdir);
    let w = writer_with(&data, &bucket, false);
    let mut metas = w.blocks().iter().map(|b| b.meta()).collect::<Vec<_>>();
    metas.sort_by_key(|m| m.min_time);
    let (bad, good) = (&metas[0], &metas[metas.len() - 1]);
    // Flip a byte in every chunk of the first block's segment.
    let seg = bdir.join(bad.ulid.to_string()).join("chunks/000001");
    let mut b = std::fs::read(&seg).unwrap();
    for x in b.iter_mut().skip(8) {
        *x ^= 0x10;
    }
    std::fs::write(&seg, b).unwrap();
    let st = store(&bucket, &cache, 1 << 20);
    let r = reader(&t.fresh(), &st);
    let e = dump(r.as_ref(), bad.min_time, bad.max_time - 1, &all()).unwrap_err();
    assert!(
        e.to_string().contains(&bad.ulid.to_string()) || e.to_string().contains("chunks/000001"),
        "the error names the block: {e}"
    );
    // A truncated index: opening the block fails with its name.
    let ix = bdir.join(good.ulid.to_string()).join("index");
    let mut b = std::fs::read(&ix).unwrap();
    b.truncate(b.len() - 3);
    std::fs::write(&ix, b).unwrap();
    let st = store(&bucket, &t.fresh(), 1 << 20);
    let r = reader(&t.fresh(), &st);
    let e = dump(r.as_ref(), good.min_time, good.max_time - 1, &all()).unwrap_err();
    assert!(e.to_string().contains(&good.ulid.to_string()), "{e}");
    // Blocks in between still answer.
    assert!(metas.len() > 2);
    {
        let mid = &metas[1];
        assert_eq!(
            dump(r.as_ref(), mid.min_time, mid.max_time - 1, &all()).unwrap(),
            dump(w.as_ref(), mid.min_time, mid.max_time - 1, &all()).unwrap()
        );
    }
}

#[test]
fn the_cache_stays_within_its_bound() {
    let t = Setup::new();
    let (data, bdir, cache) = (t.dir("data"), t.dir("bucket"), t.dir("cache"));
    let bucket = fs_bucket(&bdir);
    let w = writer_with(&data, &bucket, false);
    let want = dump(w.as_ref(), 0, END * H, &all()).unwrap();
    let bound = 2 * cairn_objstore::PAGE_SIZE;
    let st = store(&bucket, &cache, bound);
    let r = reader(&t.fresh(), &st);
    for _ in 0..2 {
        assert_eq!(dump(r.as_ref(), 0, END * H, &all()).unwrap(), want);
        assert!(st.cache_bytes() <= bound, "{} > {bound}", st.cache_bytes());
    }
    let c = st.cache_stats();
    let fetched = c.fetched_bytes.load(std::sync::atomic::Ordering::Relaxed);
    let evicted = c.evicted_bytes.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        fetched > bound,
        "the blocks are larger than the cache: {fetched}"
    );
    assert!(evicted > 0, "a small cache evicts");
}

#[test]
fn idle_blocks_are_closed_beyond_the_limit_and_reopen_from_disk() {
    let t = Setup::new();
    let (data, bdir, cache) = (t.dir("data"), t.dir("bucket"), t.dir("cache"));
    let bucket = fs_bucket(&bdir);
    let w = writer_with(&data, &bucket, false);
    let n = w.blocks().len();
    assert!(n > 3);
    let want = dump(w.as_ref(), 0, END * H, &all()).unwrap();
    let st = store_with(&bucket, &cache, 8 << 20, 2);
    let r = reader(&t.fresh(), &st);
    // A query reading every block keeps them all open while it runs.
    assert_eq!(dump(r.as_ref(), 0, END * H, &all()).unwrap(), want);
    assert_eq!(st.block_counts().1, n);
    // The next query reads one: the others beyond the limit are closed.
    dump(r.as_ref(), 0, 60_000, &all()).unwrap();
    assert_eq!(st.block_counts().1, 2);
    // Reading them again reopens them from their headers on disk.
    let events = st.subscribe();
    assert_eq!(dump(r.as_ref(), 0, END * H, &all()).unwrap(), want);
    let reopened: Vec<StoreEvent> = events.try_iter().collect();
    assert_eq!(reopened.len(), n - 2, "{reopened:?}");
    assert!(reopened.iter().all(|e| matches!(
        e,
        StoreEvent::Opened {
            header_bytes: 0,
            ..
        }
    )));
}

#[test]
fn only_blocks_with_the_selected_external_labels_are_served() {
    let t = Setup::new();
    let (data, bdir, caches) = (t.dir("data"), t.dir("bucket"), t.dir("caches"));
    let bucket = fs_bucket(&bdir);
    let w = writer_with(&data, &bucket, false);
    let with = |labels: &[(&str, &str)]| {
        let st = BucketStore::new(
            bucket.clone(),
            StoreOptions {
                cache_dir: caches.join(labels.len().to_string()),
                cache_bytes: 1 << 20,
                max_requests: 4,
                max_open_blocks: 0,
                serve_labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                owner_labels: None,
            },
        )
        .unwrap();
        st.refresh().unwrap();
        // A second listing reads no meta.json again and changes nothing.
        st.refresh().unwrap();
        st.metas().len()
    };
    assert_eq!(with(&[]), w.blocks().len());
    assert_eq!(with(&[("cluster", "gpu-a")]), w.blocks().len());
    assert_eq!(with(&[("cluster", "gpu-b")]), 0);
    assert_eq!(with(&[("cluster", "gpu-a"), ("replica", "a")]), 0);
}

/// A shipper uploading as `cluster=gpu-a`, with its state in `dir`.
fn uploader(bucket: &Arc<Bucket>, dir: &Path) -> Shipper {
    Shipper::new(
        bucket.clone(),
        dir,
        ShipperOptions {
            labels: BTreeMap::from([("cluster".to_owned(), "gpu-a".to_owned())]),
            ..ShipperOptions::default()
        },
    )
    .unwrap()
}

/// A store owning `cluster=gpu-a`'s blocks (`owner` names the cluster;
/// `None`: owning nothing).
fn owning_store(bucket: &Arc<Bucket>, cache: &Path, owner: Option<&str>) -> Arc<BucketStore> {
    let st = Arc::new(
        BucketStore::new(
            bucket.clone(),
            StoreOptions {
                cache_dir: cache.to_path_buf(),
                cache_bytes: 1 << 20,
                max_requests: 4,
                max_open_blocks: 0,
                serve_labels: Default::default(),
                owner_labels: owner.map(|c| BTreeMap::from([("cluster".to_owned(), c.to_owned())])),
            },
        )
        .unwrap(),
    );
    st.refresh().unwrap();
    st
}

#[test]
fn blocks_a_bucket_compaction_replaced_are_not_read_and_not_offered_again() {
    use cairn_tsdb::BlockSource;
    let t = Setup::new();
    let (data, bdir) = (t.dir("data"), t.dir("bucket"));
    let bucket = fs_bucket(&bdir);
    let w = writer_with(&data, &bucket, false);
    let small: Vec<Ulid> = w.blocks().iter().map(|b| b.ulid()).collect();
    let want = dump(&*w, 0, END * H, &all()).unwrap();
    // The 6 h blocks made of them are uploaded, and the 2 h ones are not
    // marked yet (the moment between the upload and the marks).
    w.compact_now().unwrap();
    let up = uploader(&bucket, &t.fresh());
    let big: Vec<(PathBuf, BlockMeta)> = blocks(&w)
        .into_iter()
        .filter(|(_, m)| m.compaction.sources.len() > 1)
        .collect();
    assert!(!big.is_empty());
    for (dir, m) in &big {
        up.upload_block(dir, m).unwrap();
    }
    let covered: Vec<Ulid> = small
        .iter()
        .copied()
        .filter(|u| big.iter().any(|(_, m)| m.compaction.sources.contains(u)))
        .collect();
    assert!(covered.len() >= 3);

    // Queries read the 6 h blocks, not the 2 h ones they replace, and
    // answer as the writer does.
    let st = owning_store(&bucket, &t.fresh(), Some("gpu-a"));
    assert_eq!(st.metas().len(), small.len() + big.len());
    let read: Vec<Ulid> = st
        .query_blocks(&[], 0, END * H)
        .unwrap()
        .iter()
        .map(|b| b.ulid())
        .collect();
    assert!(covered.iter().all(|u| !read.contains(u)), "{read:?}");
    assert!(big.iter().all(|(_, m)| read.contains(&m.ulid)));
    assert_eq!(read.len(), small.len() - covered.len() + big.len());
    let r = reader(&t.fresh(), &st);
    assert_eq!(dump(&*r, 0, END * H, &all()).unwrap(), want);

    // The owner is offered the same blocks, less what it holds locally
    // (or what a local block covers).
    let owned: Vec<Ulid> = st.owned(&[]).iter().map(|m| m.ulid).collect();
    assert_eq!(owned.len(), read.len());
    assert!(covered.iter().all(|u| !owned.contains(u)));
    let local = w.blocks();
    assert!(st.owned(&local).is_empty(), "every block is local");
    let opened = st.open_owned(big[0].1.ulid).unwrap().unwrap();
    assert_eq!(
        opened.meta().compaction.sources,
        big[0].1.compaction.sources
    );
    // Other external labels, or a query-only store: nothing is owned.
    assert!(owning_store(&bucket, &t.fresh(), Some("gpu-b"))
        .owned(&[])
        .is_empty());
    assert!(owning_store(&bucket, &t.fresh(), None)
        .owned(&[])
        .is_empty());
}

#[test]
fn the_owner_compacts_and_downsamples_blocks_only_in_the_bucket() {
    let t = Setup::new();
    let (data, bdir) = (t.dir("data"), t.dir("bucket"));
    let bucket = fs_bucket(&bdir);
    let w = writer_with(&data, &bucket, false);
    let small: Vec<Ulid> = w.blocks().iter().map(|b| b.ulid()).collect();
    let want = dump(&*w, 0, END * H, &all()).unwrap();
    // The owner, on an empty directory: every block is only in the bucket.
    let st = owning_store(&bucket, &t.fresh(), Some("gpu-a"));
    let open = |remote_max: i64, downsample: bool| {
        Db::open(
            &t.fresh(),
            DbOptions {
                remote_blocks: Some(RemoteBlocks(st.clone())),
                remote_max_block_duration: remote_max,
                downsample,
                ..db_opts()
            },
        )
        .unwrap()
    };
    // Off: nothing is compacted.
    assert!(open(0, false).compact_remote().unwrap().is_empty());
    let db = open(6 * H, true);
    // 0..15 h: 6 h blocks over [0, 6) and [6, 12), the planner leaving
    // the newest range alone; one a round.
    let mut new = db.compact_remote().unwrap();
    assert_eq!(new.len(), 1);
    new.extend(db.compact_remote().unwrap());
    assert_eq!(new.len(), 2, "{new:?}");
    for b in db.blocks() {
        let m = b.meta();
        assert_eq!(m.max_time - m.min_time, 6 * H);
        assert_eq!(m.compaction.sources.len(), 3);
        assert!(m.compaction.sources.iter().all(|u| small.contains(u)));
        assert_eq!(m.compaction.level, 2);
    }
    // A second round finds nothing: the inputs are covered locally.
    assert!(db.compact_remote().unwrap().is_empty());
    assert_eq!(dump(&*db, 0, END * H, &all()).unwrap(), want);
    // Those local blocks go to the bucket (local retention would then
    // delete them): downsampling reaches the bucket's blocks too, 6 h
    // being the widest remote range, so 6 h blocks are done growing.
    let up = uploader(&bucket, &t.fresh());
    assert_eq!(up.sync(&blocks(&db)).uploaded.len(), 2);
    st.refresh().unwrap();
    let db = open(6 * H, true);
    assert!(db.compact_remote().unwrap().is_empty());
    // One remote input a round.
    let mut levels = db.downsample_now(false).unwrap();
    assert_eq!(levels.len(), 1);
    levels.extend(db.downsample_now(false).unwrap());
    let five: Vec<BlockMeta> = db
        .blocks()
        .iter()
        .map(|b| b.meta())
        .filter(|m| m.resolution() == 300_000)
        .collect();
    assert_eq!(five.len(), 2, "{levels:?}");
    for m in &five {
        assert_eq!(m.compaction.sources.len(), 3);
        assert!(new.contains(&m.compaction.parents[0].ulid), "{m:?}");
    }
}
