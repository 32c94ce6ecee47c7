//! Serving blocks that are only in the bucket (issue 17's second part).
//!
//! A [`BucketStore`] keeps the list of the bucket's blocks and opens them
//! for queries on demand, as Thanos's store gateway does:
//!
//! - **Block list.** [`BucketStore::refresh`] lists the bucket once
//!   (recursively, one paginated LIST) and reads the `meta.json` of blocks
//!   it has not seen. Blocks without `meta.json` (partial uploads) and
//!   blocks with a `deletion-mark.json` are not served. A background thread
//!   ([`BucketStore::spawn_refresh`]) repeats this, so queries never list
//!   the bucket.
//! - **Index headers.** The first query that needs a block fetches its
//!   index header (symbol table and postings offset table,
//!   `docs/format/index-header.md`) into `<cache dir>/<ulid>/index-header`,
//!   where it stays across restarts. Blocks no query touched cost their
//!   `meta.json` in memory and nothing else.
//! - **Byte ranges.** Series entries, postings lists and chunks are read
//!   by byte range through a bounded page cache with a bounded number of
//!   requests in flight (`store/cache.rs`).
//!
//! Contract with the database ([`cairn_tsdb::BlockSource`]): a query gets
//! the bucket blocks overlapping its range that duplicate no local block:
//! not one with a local block's ULID, and not one whose sources all sit in
//! local blocks of its resolution (the local copy of the same data).
//! Overlapping samples that remain are merged away by the querier.
//! With `serve_labels` set, only blocks whose external labels hold them
//! are served (an ingester serving its own uploads, not its siblings').
//! Among the bucket's blocks, one whose sources all sit in another bucket
//! block of its resolution (a compaction's input, between the upload of
//! the result and its deletion mark) is not served either.
//!
//! With `owner_labels` set, the blocks carrying exactly those external
//! labels are this Cairn's own: [`cairn_tsdb::BlockSource::owned`] offers
//! those not duplicated locally to the database's compaction and
//! downsampling (`cairn_tsdb`'s `db/bucket.rs`).

mod cache;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Weak};
use std::time::Duration;

use cairn_chunks::ChunkReader;
use cairn_codec::RangeRead;
use cairn_index::{write_index_header, IndexReader};
use cairn_tsdb::{Block, BlockMeta, BoxError, Tombstones, Ulid};
use parking_lot::Mutex;

pub use cache::{CacheStats, PAGE_SIZE};
use cache::{CachedObject, Limiter, PageCache};

use crate::bucket::{Bucket, ObjectInfo};
use crate::error::{ObjstoreError, Result};
use crate::layout::{DELETION_MARK, META};

/// Blocks opened at once for one query.
const OPEN_THREADS: usize = 16;

/// The local index header of a block in the cache directory.
pub const INDEX_HEADER: &str = "index-header";

/// How to serve a bucket's blocks.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Where index headers are kept (`<data dir>/bucket-cache` in
    /// `cairn serve`).
    pub cache_dir: PathBuf,
    /// Bytes of the page cache of index and chunk ranges
    /// (`--objstore.cache.size`).
    pub cache_bytes: u64,
    /// Requests to the bucket in flight at once, over all queries
    /// (`--objstore.max-concurrency`).
    pub max_requests: usize,
    /// Blocks kept open between queries (`--objstore.max-open-blocks`):
    /// beyond it the least recently read are closed (their index headers
    /// stay on disk, so reopening fetches nothing); 0: no limit.
    pub max_open_blocks: usize,
    /// Serve only blocks whose `thanos.labels` hold all of these
    /// (`--objstore.serve-external-label`); empty: every block.
    pub serve_labels: BTreeMap<String, String>,
    /// The external labels of the blocks this Cairn owns (its own
    /// `--storage.external-label`s, when it uploads): served blocks whose
    /// `thanos.labels` equal them are offered to its compaction and
    /// downsampling ([`cairn_tsdb::BlockSource::owned`]). `None`: it owns
    /// none (a query-only Cairn).
    pub owner_labels: Option<BTreeMap<String, String>>,
}

/// What the store did, for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// A refresh finished: the blocks now served.
    Refreshed { blocks: usize },
    /// A block was opened for queries; `header_bytes` were fetched for
    /// its index header (0 when the header was on disk already).
    Opened { ulid: Ulid, header_bytes: u64 },
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStats {
    pub refreshes: AtomicU64,
    pub refresh_failures: AtomicU64,
    pub headers_fetched: AtomicU64,
    pub header_bytes: AtomicU64,
}

struct Known {
    meta: BlockMeta,
    /// The block's objects (keys relative to the bucket prefix).
    files: Vec<ObjectInfo>,
    open: Option<Arc<Block>>,
    /// When a query last asked for it (a counter of queries).
    last_used: u64,
}

/// The bucket's blocks, served to queries (see the module docs).
pub struct BucketStore {
    bucket: Arc<Bucket>,
    opts: StoreOptions,
    cache: Arc<PageCache>,
    limiter: Arc<Limiter>,
    known: Mutex<BTreeMap<Ulid, Known>>,
    /// Blocks whose external labels `serve_labels` leave out (their
    /// `meta.json` is not read again).
    unselected: Mutex<HashSet<Ulid>>,
    /// One lock per block being opened (one index header fetch per block;
    /// different blocks open in parallel).
    opening: Mutex<HashMap<Ulid, Arc<Mutex<()>>>>,
    subs: Mutex<Vec<Sender<StoreEvent>>>,
    stop: Mutex<Option<Sender<()>>>,
    /// Queries served, to order blocks by last use.
    queries: AtomicU64,
    pub stats: StoreStats,
}

impl std::fmt::Debug for BucketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketStore")
            .field("bucket", &self.bucket)
            .field("opts", &self.opts)
            .finish()
    }
}

fn block_err(ulid: Ulid, source: impl Into<BoxError>) -> ObjstoreError {
    ObjstoreError::BlockRead {
        block: ulid.to_string(),
        source: source.into(),
    }
}

impl BucketStore {
    /// A store over `bucket`; creates the cache directory. Call
    /// [`BucketStore::refresh`] before the first query.
    pub fn new(bucket: Arc<Bucket>, opts: StoreOptions) -> Result<Self> {
        std::fs::create_dir_all(&opts.cache_dir).map_err(|source| ObjstoreError::Local {
            path: opts.cache_dir.clone(),
            source,
        })?;
        Ok(Self {
            cache: Arc::new(PageCache::new(opts.cache_bytes)),
            limiter: Arc::new(Limiter::new(opts.max_requests)),
            bucket,
            opts,
            known: Mutex::new(BTreeMap::new()),
            unselected: Mutex::new(HashSet::new()),
            opening: Mutex::new(HashMap::new()),
            subs: Mutex::new(Vec::new()),
            stop: Mutex::new(None),
            queries: AtomicU64::new(0),
            stats: StoreStats::default(),
        })
    }

    /// The page cache's counters.
    pub fn cache_stats(&self) -> &CacheStats {
        &self.cache.stats
    }

    /// Bytes in the page cache now.
    pub fn cache_bytes(&self) -> u64 {
        self.cache.bytes()
    }

    /// The page cache's bound in bytes.
    pub fn cache_capacity(&self) -> u64 {
        self.cache.capacity()
    }

    /// `(blocks served, blocks opened)`.
    pub fn block_counts(&self) -> (usize, usize) {
        let k = self.known.lock();
        (k.len(), k.values().filter(|b| b.open.is_some()).count())
    }

    /// Whether queries are served `ulid` from the bucket (it was listed
    /// with its `meta.json` and no deletion mark).
    pub fn serves(&self, ulid: &Ulid) -> bool {
        self.known.lock().contains_key(ulid)
    }

    /// Refreshes after every upload, mark or deletion of `events` (a
    /// shipper's), on a thread of its own, until `events` closes: blocks
    /// this Cairn uploads are served at once rather than at the next
    /// periodic refresh.
    pub fn follow(
        self: &Arc<Self>,
        events: Receiver<crate::ShipperEvent>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        use crate::ShipperEvent as E;
        let me: Weak<Self> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("cairn-bucket-follow".into())
            .spawn(move || {
                while let Ok(e) = events.recv() {
                    if matches!(e, E::UploadFailed { .. }) {
                        continue;
                    }
                    // A burst of events makes one refresh.
                    while events.try_recv().is_ok() {}
                    let Some(s) = me.upgrade() else { return };
                    if let Err(e) = s.refresh() {
                        tracing::warn!(error = %e, "listing the bucket's blocks after an upload failed");
                    }
                }
            })
    }

    /// The metas of the blocks served, by ULID.
    pub fn metas(&self) -> Vec<BlockMeta> {
        self.known.lock().values().map(|k| k.meta.clone()).collect()
    }

    /// Events from now on.
    pub fn subscribe(&self) -> Receiver<StoreEvent> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.subs.lock().push(tx);
        rx
    }

    fn emit(&self, e: StoreEvent) {
        self.subs.lock().retain(|s| s.send(e.clone()).is_ok());
    }

    /// Lists the bucket and updates the blocks served (module docs).
    /// Returns how many are served.
    pub fn refresh(&self) -> Result<usize> {
        let r = self.refresh_inner();
        match &r {
            Ok(n) => {
                self.stats.refreshes.fetch_add(1, Ordering::Relaxed);
                self.emit(StoreEvent::Refreshed { blocks: *n });
            }
            Err(_) => {
                self.stats.refresh_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        r
    }

    fn refresh_inner(&self) -> Result<usize> {
        let mut by_block: BTreeMap<Ulid, Vec<ObjectInfo>> = BTreeMap::new();
        for o in self.bucket.list_objects("")? {
            let Some((dir, rest)) = o.key.split_once('/') else {
                continue;
            };
            let Ok(ulid) = Ulid::from_string(dir) else {
                continue;
            };
            let rel = ObjectInfo {
                key: rest.to_owned(),
                ..o
            };
            by_block.entry(ulid).or_default().push(rel);
        }
        let servable: HashMap<Ulid, Vec<ObjectInfo>> = by_block
            .into_iter()
            .filter(|(_, files)| {
                files.iter().any(|f| f.key == META) && !files.iter().any(|f| f.key == DELETION_MARK)
            })
            .collect();
        let new: Vec<Ulid> = {
            let k = self.known.lock();
            let mut skip = self.unselected.lock();
            skip.retain(|u| servable.contains_key(u));
            servable
                .keys()
                .filter(|u| !k.contains_key(u) && !skip.contains(u))
                .copied()
                .collect()
        };
        let mut metas = Vec::new();
        for ulid in new {
            let key = format!("{ulid}/{META}");
            let Some(bytes) = self.bucket.get(&key)? else {
                continue; // deleted since the listing
            };
            match BlockMeta::from_json(&bytes, Path::new(&key)) {
                Ok(m) if m.ulid == ulid && !m.compaction.deletable => {
                    if self.selected(&m) {
                        metas.push(m);
                    } else {
                        self.unselected.lock().insert(ulid);
                    }
                }
                Ok(m) if m.ulid != ulid => {
                    tracing::warn!(block = %ulid, found = %m.ulid, "bucket block's meta.json names another block; not served");
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(block = %ulid, error = %e, "bucket block's meta.json is unreadable; not served");
                }
            }
        }
        let mut gone = Vec::new();
        let n = {
            let mut k = self.known.lock();
            k.retain(|u, _| {
                let keep = servable.contains_key(u);
                if !keep {
                    gone.push(*u);
                }
                keep
            });
            for m in metas {
                let files = servable.get(&m.ulid).cloned().unwrap_or_default();
                k.insert(
                    m.ulid,
                    Known {
                        meta: m,
                        files,
                        open: None,
                        last_used: 0,
                    },
                );
            }
            k.len()
        };
        for u in gone {
            let _ = std::fs::remove_dir_all(self.opts.cache_dir.join(u.to_string()));
        }
        self.remove_stale_cache_dirs();
        Ok(n)
    }

    /// Whether `m`'s external labels hold every `serve_labels` pair.
    fn selected(&self, m: &BlockMeta) -> bool {
        let labels = m.thanos.as_ref().map(|t| &t.labels);
        self.opts
            .serve_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    }

    /// Deletes cache directories of blocks no longer served.
    fn remove_stale_cache_dirs(&self) {
        let Ok(rd) = std::fs::read_dir(&self.opts.cache_dir) else {
            return;
        };
        let k = self.known.lock();
        for e in rd.flatten() {
            let name = e.file_name();
            let keep = name
                .to_str()
                .and_then(|n| Ulid::from_string(n).ok())
                .is_some_and(|u| k.contains_key(&u));
            if !keep {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }

    /// Refreshes every `interval` on a thread of its own until the store
    /// is dropped.
    pub fn spawn_refresh(
        self: &Arc<Self>,
        interval: Duration,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        *self.stop.lock() = Some(tx);
        let me: Weak<Self> = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("cairn-bucket-sync".into())
            .spawn(move || loop {
                match rx.recv_timeout(interval) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
                let Some(s) = me.upgrade() else { return };
                if let Err(e) = s.refresh() {
                    tracing::warn!(error = %e, "listing the bucket's blocks failed; serving the last list");
                }
            })
    }

    fn object(&self, ulid: Ulid, rel: &str, size: u64) -> Arc<dyn RangeRead> {
        Arc::new(CachedObject::new(
            self.bucket.clone(),
            format!("{ulid}/{rel}"),
            size,
            self.cache.clone(),
            self.limiter.clone(),
        ))
    }

    /// Opens `ulid` for queries (fetching its index header when it is not
    /// on disk), or returns the open block.
    fn open(&self, ulid: Ulid) -> Result<Arc<Block>> {
        let lock = self.opening.lock().entry(ulid).or_default().clone();
        let _one = lock.lock();
        let r = self.open_locked(ulid);
        self.opening.lock().remove(&ulid);
        r
    }

    fn open_locked(&self, ulid: Ulid) -> Result<Arc<Block>> {
        let (meta, files) = {
            let k = self.known.lock();
            let e = k
                .get(&ulid)
                .ok_or_else(|| block_err(ulid, "no longer in the bucket"))?;
            if let Some(b) = &e.open {
                return Ok(b.clone());
            }
            (e.meta.clone(), e.files.clone())
        };
        let dir = self.opts.cache_dir.join(ulid.to_string());
        let local = |source| ObjstoreError::Local {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(local)?;
        let size_of = |rel: &str| files.iter().find(|f| f.key == rel).map(|f| f.size);
        let index_size = size_of("index").ok_or_else(|| block_err(ulid, "no index object"))?;
        let index_src = self.object(ulid, "index", index_size);
        let header = dir.join(INDEX_HEADER);
        let mut fetched = 0;
        let index = match header
            .exists()
            .then(|| IndexReader::open_sparse(&header, index_src.clone()))
        {
            Some(Ok(ix)) => ix,
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(block = %ulid, error = %e, "index header unreadable; fetching it again");
                }
                fetched = write_index_header(index_src.as_ref(), &header)
                    .map_err(|e| block_err(ulid, e))?;
                self.stats.headers_fetched.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .header_bytes
                    .fetch_add(fetched, Ordering::Relaxed);
                IndexReader::open_sparse(&header, index_src).map_err(|e| block_err(ulid, e))?
            }
        };
        let mut segs: Vec<&ObjectInfo> = files
            .iter()
            .filter(|f| {
                f.key
                    .strip_prefix("chunks/")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            })
            .collect();
        segs.sort_by(|a, b| a.key.cmp(&b.key));
        let chunks = ChunkReader::remote(
            segs.iter()
                .map(|f| self.object(ulid, &f.key, f.size))
                .collect(),
        )
        .map_err(|e| block_err(ulid, e))?;
        let tombstones = match size_of("tombstones") {
            Some(_) => {
                let key = format!("{ulid}/tombstones");
                let bytes = self
                    .bucket
                    .get(&key)?
                    .ok_or_else(|| block_err(ulid, "tombstones vanished"))?;
                Tombstones::decode(&bytes, Path::new(&key)).map_err(|e| block_err(ulid, e))?
            }
            None => Tombstones::new(),
        };
        let block = Arc::new(Block::from_parts(&dir, meta, index, chunks, tombstones));
        if let Some(e) = self.known.lock().get_mut(&ulid) {
            e.open = Some(block.clone());
        }
        self.emit(StoreEvent::Opened {
            ulid,
            header_bytes: fetched,
        });
        Ok(block)
    }

    /// The blocks a query over `[mint, maxt]` reads from the bucket beside
    /// `local` (see the module docs).
    pub fn query_blocks(
        &self,
        local: &[Arc<Block>],
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Arc<Block>>> {
        let now = self.queries.fetch_add(1, Ordering::Relaxed) + 1;
        let mut known = self.known.lock();
        let keep = Self::not_duplicated(local, known.values().map(|k| &k.meta));
        let wanted: Vec<Ulid> = known
            .values_mut()
            .filter(|k| k.meta.overlaps_closed(mint, maxt) && keep.contains(&k.meta.ulid))
            .map(|k| {
                k.last_used = now;
                k.meta.ulid
            })
            .collect();
        drop(known);
        let r = self.open_all(&wanted);
        self.close_idle(now);
        r
    }

    /// The ULIDs of the bucket blocks among `metas` that duplicate
    /// nothing: not a local block, and not a block whose sources all sit
    /// in a local block or in another bucket block of its resolution (of
    /// two bucket blocks with the same sources, the later ULID is kept).
    fn not_duplicated<'a>(
        local: &[Arc<Block>],
        metas: impl Iterator<Item = &'a BlockMeta> + Clone,
    ) -> HashSet<Ulid> {
        let mut local_ids = HashSet::new();
        let mut local_sources: HashMap<i64, HashSet<Ulid>> = HashMap::new();
        for b in local {
            let m = b.meta();
            local_ids.insert(m.ulid);
            let set = local_sources.entry(m.resolution()).or_default();
            set.insert(m.ulid);
            set.extend(m.compaction.sources.iter().copied());
        }
        let covers = |big: &BlockMeta, m: &BlockMeta| {
            big.ulid != m.ulid
                && big.resolution() == m.resolution()
                && big.compaction.sources.len() >= m.compaction.sources.len()
                && (big.compaction.sources.len() > m.compaction.sources.len() || big.ulid > m.ulid)
                && m.compaction
                    .sources
                    .iter()
                    .all(|u| big.compaction.sources.contains(u))
        };
        // Bucket blocks by each of their sources, so a block's possible
        // covers are those holding its first source.
        let mut by_source: HashMap<(i64, Ulid), Vec<&BlockMeta>> = HashMap::new();
        for b in metas.clone() {
            for u in &b.compaction.sources {
                by_source.entry((b.resolution(), *u)).or_default().push(b);
            }
        }
        metas
            .filter(|m| {
                if local_ids.contains(&m.ulid) {
                    return false;
                }
                let Some(first) = m.compaction.sources.first() else {
                    return true;
                };
                let in_local = local_sources
                    .get(&m.resolution())
                    .is_some_and(|s| m.compaction.sources.iter().all(|u| s.contains(u)));
                let in_bucket = by_source
                    .get(&(m.resolution(), *first))
                    .is_some_and(|c| c.iter().any(|big| covers(big, m)));
                !in_local && !in_bucket
            })
            .map(|m| m.ulid)
            .collect()
    }

    /// Opens `wanted`, several at once.
    fn open_all(&self, wanted: &[Ulid]) -> Result<Vec<Arc<Block>>> {
        // Opening fetches index headers: several blocks at once.
        let threads = self
            .opts
            .max_requests
            .clamp(1, OPEN_THREADS)
            .min(wanted.len());
        if threads <= 1 {
            return wanted.iter().map(|u| self.open(*u)).collect();
        }
        let per = wanted.len().div_ceil(threads);
        let opened: Vec<Result<Vec<Arc<Block>>>> = std::thread::scope(|sc| {
            let hs: Vec<_> = wanted
                .chunks(per)
                .map(|part| sc.spawn(move || part.iter().map(|u| self.open(*u)).collect()))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(block_err(Ulid::nil(), "opening thread panicked")))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(wanted.len());
        for part in opened {
            out.extend(part?);
        }
        Ok(out)
    }

    /// Closes the least recently read open blocks beyond
    /// `max_open_blocks`, never one the query `now` reads (a query that
    /// still holds a closed block keeps reading it).
    fn close_idle(&self, now: u64) {
        let max = self.opts.max_open_blocks;
        if max == 0 {
            return;
        }
        let mut k = self.known.lock();
        let mut open: Vec<(u64, Ulid)> = k
            .values()
            .filter(|b| b.open.is_some() && b.last_used < now)
            .map(|b| (b.last_used, b.meta.ulid))
            .collect();
        let total = k.values().filter(|b| b.open.is_some()).count();
        let excess = total.saturating_sub(max);
        if excess == 0 {
            return;
        }
        open.sort_unstable();
        for (_, u) in open.into_iter().take(excess) {
            if let Some(b) = k.get_mut(&u) {
                b.open = None;
            }
        }
    }
}

impl cairn_tsdb::BlockSource for BucketStore {
    fn blocks(
        &self,
        local: &[Arc<Block>],
        mint: i64,
        maxt: i64,
    ) -> cairn_storage::Result<Vec<Arc<Block>>> {
        self.query_blocks(local, mint, maxt)
            .map_err(|e| cairn_storage::StorageError::Backend(Box::new(e)))
    }

    fn owned(&self, local: &[Arc<Block>]) -> Vec<BlockMeta> {
        let Some(own) = &self.opts.owner_labels else {
            return Vec::new();
        };
        let known = self.known.lock();
        let mine: Vec<&BlockMeta> = known
            .values()
            .map(|k| &k.meta)
            .filter(|m| m.thanos.as_ref().map(|t| &t.labels) == Some(own))
            .collect();
        let keep = Self::not_duplicated(local, mine.iter().copied());
        let mut out: Vec<BlockMeta> = mine
            .into_iter()
            .filter(|m| keep.contains(&m.ulid))
            .cloned()
            .collect();
        out.sort_by_key(|m| (m.min_time, m.ulid));
        out
    }

    fn open_owned(&self, ulid: Ulid) -> cairn_storage::Result<Option<Arc<Block>>> {
        if !self.serves(&ulid) {
            return Ok(None);
        }
        self.open(ulid)
            .map(Some)
            .map_err(|e| cairn_storage::StorageError::Backend(Box::new(e)))
    }
}

impl Drop for BucketStore {
    fn drop(&mut self) {
        self.stop.lock().take();
    }
}
