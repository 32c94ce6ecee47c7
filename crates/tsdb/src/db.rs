//! The database handle: the head plus every persisted block in one
//! directory, with background cutting, compaction and retention.
//!
//! Layout of the directory: `wal/` and `chunks_head/` belong to the head;
//! every `<ulid>/` holding a `meta.json` is a block. Directories ending in
//! `.tmp-for-creation` (or `.tmp`) are leftovers of interrupted writes and
//! are removed on open, as are blocks already merged into another block
//! (listed among its parents).
//!
//! Contracts:
//! - Appends go to the head. Queries over `[mint, maxt]` (closed) merge the
//!   head and every block whose `[min_time, max_time)` meets the range; on
//!   equal timestamps the head wins, then newer blocks.
//! - The head is cut into a block of `block_range` (aligned to multiples of
//!   it) once it spans more than 1.5 × `block_range`, then truncated.
//! - All maintenance (cut, compaction, retention, deletion) is serialised by
//!   one lock; every change is reported on [`Db::subscribe`] channels.

mod background;
mod bucket;
mod downsampling;
mod events;
mod levels;

use cairn_codec::FloatEncoding;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use cairn_head::{Head, HeadOptions, WalOptions};
use cairn_model::Matcher;
use cairn_storage::{Appendable, Appender, MergeQuerier, Querier, Queryable};
use parking_lot::{Mutex, RwLock};
use ulid::Ulid;

use crate::block::{
    write_block, Block, BlockHandle, BlockQuerier, BlockWriteOptions, TMP_FOR_CREATION,
};
use crate::encode::xor_encoder;
use crate::fsutil::{dir_size, sync_dir};
use crate::meta::{BlockDesc, BlockMeta};
use crate::plan::{align_down, compaction_ranges, plan};
use crate::retention::{self, RetentionReason};
use crate::{Result, TsdbError};

pub use events::DbEvent;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;

/// How to run a database.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Width (ms) of blocks cut from the head; compaction ranges grow ×3 from it.
    pub block_range: i64,
    /// Delete blocks older than this (ms) relative to the newest block; 0 = keep.
    pub retention_time: i64,
    /// Delete the oldest blocks while the data directory exceeds this many bytes; 0 = no limit.
    pub retention_size: u64,
    /// Largest compacted block (ms); `None` = 10% of retention_time, at most 31 days.
    pub max_block_duration: Option<i64>,
    /// Out-of-order window of the head (ms).
    pub ooo_window: i64,
    /// WAL options; `None` runs without a WAL.
    pub wal: Option<WalOptions>,
    /// The head's target samples per chunk (Prometheus: 120; see
    /// `cairn_head::cut`), also the split when a block writer re-encodes.
    pub samples_per_chunk: usize,
    /// How often the background thread runs; `None` = no thread (call
    /// [`Db::maintain`] or the `*_now` methods yourself).
    pub maintenance_interval: Option<Duration>,
    /// Write 5-minute and 1-hour blocks (docs/format/downsample.md).
    pub downsample: bool,
    /// Delete 5-minute blocks older than this (ms) relative to the newest
    /// block; 0 = keep.
    pub retention_5m: i64,
    /// Delete 1-hour blocks older than this (ms); 0 = keep.
    pub retention_1h: i64,
    /// Float chunk encoding of compacted and downsampled blocks
    /// (`--storage.tsdb.chunk-encoding`); blocks cut from the head are
    /// always XOR, as Prometheus writes them. Reading never depends on it.
    pub chunk_encoding: FloatEncoding,
    /// Open head chunks keep only a small tail in memory and the rest in
    /// `head_spill/` (see `cairn_head::HeadOptions::spill_open_chunks`).
    pub spill_open_chunks: bool,
    /// Capacity of the head's exemplar ring (0 keeps none; see
    /// `cairn_head::HeadOptions::max_exemplars`).
    pub max_exemplars: usize,
    /// Series limits of the head (`cairn_head::HeadOptions::max_series`,
    /// `max_series_per_metric`); 0: none.
    pub max_series: u64,
    pub max_series_per_metric: u64,
    /// A maintenance round flushes the head's late samples (see
    /// [`Db::flush_late`]) when it cut the head, or when at least this many
    /// are held.
    pub late_flush_samples: u64,
    /// Blocks retention must keep for now (e.g. not uploaded to the
    /// bucket yet); `None`: none.
    pub retention_hold: Option<RetentionHold>,
    /// Blocks that queries read beside the local ones (blocks held only
    /// in object storage); `None`: local blocks only.
    pub remote_blocks: Option<RemoteBlocks>,
    /// The widest block that compaction makes of [`BlockSource::owned`]
    /// blocks (ms; their ranges are `block_range` ×3 up to it). Local
    /// blocks keep `max_block_duration`, which local retention bounds;
    /// blocks only in the bucket are bounded by the bucket's. 0: owned
    /// remote blocks are not compacted (they are still downsampled).
    pub remote_max_block_duration: i64,
    /// This database's external labels (`--storage.external-label`):
    /// its local blocks carry none in `meta.json`, its uploaded copies
    /// carry these, and both are one writer's when levels are chosen
    /// (`db/levels.rs`).
    pub external_labels: std::collections::BTreeMap<String, String>,
    /// Where the head's WAL replay says how far it has got, for
    /// `/api/v1/status/walreplay` (`cairn_head::ReplayStatus`).
    pub replay_status: Option<Arc<cairn_head::ReplayStatus>>,
}

/// A source of blocks that are not in the data directory (a bucket).
///
/// Contract: `blocks` returns the blocks overlapping the closed range
/// `[mint, maxt]` that queries should read beside `local` (the open local
/// blocks): none that duplicates a local block. Opening may fetch (an
/// index header) and so fail; the error names the block.
///
/// A source may also hold blocks this database *owns* (it uploaded them,
/// or they carry its external labels): those are compacted, downsampled
/// and merged by level with the local ones (`db/bucket.rs`), the results
/// written locally (to be uploaded by whoever uploads local blocks, who
/// then retires the inputs).
pub trait BlockSource: Send + Sync {
    fn blocks(
        &self,
        local: &[Arc<Block>],
        mint: i64,
        maxt: i64,
    ) -> cairn_storage::Result<Vec<Arc<Block>>>;

    /// The metas of the owned blocks that are only in the source: none
    /// that is local, none whose sources a local block or another of the
    /// source's blocks of the same resolution covers. Default: none.
    fn owned(&self, local: &[Arc<Block>]) -> Vec<BlockMeta> {
        let _ = local;
        Vec::new()
    }

    /// Opens the owned block `ulid` for reading; `None` when the source no
    /// longer has it.
    fn open_owned(&self, ulid: Ulid) -> cairn_storage::Result<Option<Arc<Block>>> {
        let _ = ulid;
        Ok(None)
    }
}

/// The [`BlockSource`] of a database, shared.
#[derive(Clone)]
pub struct RemoteBlocks(pub Arc<dyn BlockSource>);

impl std::fmt::Debug for RemoteBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RemoteBlocks")
    }
}

/// Says which blocks retention must keep for now: `true` keeps the block
/// (a later round deletes it once the hold lets go).
#[derive(Clone)]
pub struct RetentionHold(pub Arc<dyn Fn(&BlockMeta) -> bool + Send + Sync>);

impl std::fmt::Debug for RetentionHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetentionHold")
    }
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            block_range: 2 * HOUR,
            retention_time: 15 * DAY,
            retention_size: 0,
            max_block_duration: None,
            ooo_window: 0,
            wal: Some(WalOptions::default()),
            samples_per_chunk: 120,
            maintenance_interval: Some(Duration::from_secs(60)),
            downsample: true,
            retention_5m: 90 * DAY,
            retention_1h: 365 * DAY,
            spill_open_chunks: true,
            chunk_encoding: FloatEncoding::Dense,
            max_exemplars: cairn_head::DEFAULT_MAX_EXEMPLARS,
            max_series: 0,
            max_series_per_metric: 0,
            late_flush_samples: 10_000_000,
            retention_hold: None,
            remote_blocks: None,
            remote_max_block_duration: 0,
            external_labels: std::collections::BTreeMap::new(),
            replay_status: None,
        }
    }
}

impl DbOptions {
    fn max_block_duration(&self) -> i64 {
        self.max_block_duration.unwrap_or_else(|| {
            let r = if self.retention_time > 0 {
                self.retention_time / 10
            } else {
                i64::MAX
            };
            r.min(31 * DAY)
        })
    }
}

/// The database handle. Create with [`Db::open`].
pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    head: Head,
    /// Open blocks sorted by (min_time, ulid).
    blocks: RwLock<Vec<Arc<Block>>>,
    events: events::EventBus,
    /// Serialises cutting, compaction, retention and deletion.
    maint: Mutex<()>,
    bg: Mutex<Option<(Sender<()>, JoinHandle<()>)>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.dir)
            .field("blocks", &self.blocks.read().len())
            .finish_non_exhaustive()
    }
}

fn head_err(e: cairn_head::HeadError) -> TsdbError {
    TsdbError::Head(Box::new(e))
}

impl Db {
    /// Opens (creating if needed) the database in `dir`: cleans up leftovers,
    /// opens every block and the head (replaying its WAL), and starts the
    /// maintenance thread when `opts.maintenance_interval` is set.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<Arc<Db>> {
        if opts.block_range <= 0 {
            return Err(TsdbError::InvalidArgument(format!(
                "block_range {} is not positive",
                opts.block_range
            )));
        }
        std::fs::create_dir_all(dir).map_err(TsdbError::io("create dir", dir))?;
        let blocks = open_blocks(dir)?;
        // Replay skips what the newest block cut from the head already
        // holds (its max time is exclusive, so samples at it are still the
        // head's). Blocks of flushed out-of-order samples do not count:
        // they may lie in the head's range, as in Prometheus.
        let persisted = blocks
            .iter()
            .map(|b| b.meta())
            .filter(|m| !m.from_out_of_order())
            .map(|m| m.max_time)
            .max();
        let head_opts = HeadOptions {
            chunk_range: opts.block_range,
            ooo_window: opts.ooo_window,
            wal: opts.wal,
            samples_per_chunk: opts.samples_per_chunk,
            min_valid_time: persisted.unwrap_or(i64::MIN),
            spill_open_chunks: opts.spill_open_chunks,
            max_exemplars: opts.max_exemplars,
            max_series: opts.max_series,
            max_series_per_metric: opts.max_series_per_metric,
            replay_status: opts.replay_status.clone(),
            ..HeadOptions::default()
        };
        let head = Head::open(dir, head_opts).map_err(head_err)?;
        if let Some(last) = persisted {
            // Data already persisted must not be appended again.
            if head.min_time() < last || head.min_time() == i64::MAX {
                head.truncate(last).map_err(head_err)?;
            }
        }
        let db = Arc::new(Db {
            dir: dir.to_owned(),
            opts,
            head,
            blocks: RwLock::new(blocks),
            events: events::EventBus::default(),
            maint: Mutex::new(()),
            bg: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        if let Some(every) = db.opts.maintenance_interval {
            let (tx, rx) = std::sync::mpsc::channel();
            let weak: Weak<Db> = Arc::downgrade(&db);
            let h = std::thread::Builder::new()
                .name("cairn-tsdb-maint".into())
                .spawn(move || background::run(weak, rx, every))
                .map_err(TsdbError::io("spawn maintenance thread", dir))?;
            *db.bg.lock() = Some((tx, h));
        }
        Ok(db)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options the database runs with.
    pub fn options(&self) -> &DbOptions {
        &self.opts
    }

    /// The head.
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The open blocks, sorted by min time.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().clone()
    }

    /// The blocks a query over the closed range `[mint, maxt]` reads: the
    /// open local blocks and those of [`DbOptions::remote_blocks`], sorted
    /// by min time.
    pub fn query_blocks(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Vec<Arc<Block>>> {
        let mut blocks = self.blocks();
        if let Some(src) = &self.opts.remote_blocks {
            let more = src.0.blocks(&blocks, mint, maxt)?;
            if !more.is_empty() {
                blocks.extend(more);
                // Once per block: `meta()` clones under a lock.
                blocks.sort_by_cached_key(|b| {
                    let m = b.meta();
                    (m.min_time, m.ulid)
                });
            }
        }
        Ok(blocks)
    }

    /// A querier over `[mint, maxt]` that reads `extra` as raw data beside
    /// the head and raw blocks, wherever raw data is read: in the raw
    /// level and in the gaps of the downsampled levels (`db/levels.rs`).
    /// Query mode's remote stores join the database this way, so that
    /// downsampled levels still answer with them.
    pub fn querier_with_raw<'a>(
        &'a self,
        mint: i64,
        maxt: i64,
        extra: &'a dyn Queryable,
    ) -> cairn_storage::Result<Box<dyn Querier + 'a>> {
        Ok(Box::new(levels::LevelQuerier::with_raw(
            self,
            mint,
            maxt,
            Some(extra),
        )?))
    }

    /// A channel receiving every [`DbEvent`] from now on.
    pub fn subscribe(&self) -> Receiver<DbEvent> {
        self.events.subscribe()
    }

    /// Stops the maintenance thread. Appends and queries keep working on the
    /// handle; the WAL is synced by the head's own policy.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let bg = self.bg.lock().take();
        if let Some((tx, h)) = bg {
            let _ = tx.send(());
            if std::thread::current().id() != h.thread().id() {
                let _ = h.join();
            }
        }
    }

    /// One maintenance round: cut the head if it is due, compact,
    /// downsample, apply retention. Returns the blocks created.
    pub fn maintain(&self) -> Result<Vec<Ulid>> {
        let mut out = self.cut_head(false)?;
        let cut = !out.is_empty();
        if cut || self.head.late_stats().held >= self.opts.late_flush_samples {
            out.extend(self.flush_late()?);
        }
        out.extend(self.compact_now()?);
        out.extend(self.compact_remote()?);
        out.extend(self.downsample_now(false)?);
        out.extend(self.compact_levels()?);
        self.apply_retention()?;
        Ok(out)
    }

    /// Cuts the head into aligned `block_range` blocks. Without `force`, only
    /// while the head spans more than 1.5 × block_range (the newest data
    /// stays in memory); with `force`, everything the head holds is
    /// persisted. Returns the new blocks.
    pub fn cut_head(&self, force: bool) -> Result<Vec<Ulid>> {
        let _g = self.maint.lock();
        let r = self.opts.block_range;
        let mut out = Vec::new();
        let mut last_mint = i64::MIN;
        loop {
            // Late samples, older than the last truncation, are not the
            // head's range: `flush_late` writes them.
            let hmin = self.head.min_time().max(self.head.truncated_before());
            let hmax = self.head.max_time();
            if hmin > hmax {
                break;
            }
            if !force && hmax.saturating_sub(hmin) <= r / 2 * 3 {
                break;
            }
            let mint = align_down(hmin, r);
            if mint <= last_mint {
                // The head kept data below a range it was truncated past;
                // never loop on the same range.
                tracing::warn!(mint, hmin, "head min time did not advance after a cut");
                break;
            }
            last_mint = mint;
            let maxt = mint.saturating_add(r);
            if let Some(u) = self.cut_range(mint, maxt)? {
                out.push(u);
            }
            if force && maxt > hmax {
                break;
            }
        }
        Ok(out)
    }

    /// [`Db::cut_head`] with `force`, then [`Db::flush_late`]: persists
    /// the whole head now.
    pub fn cut_head_now(&self) -> Result<Vec<Ulid>> {
        let mut out = self.cut_head(true)?;
        out.extend(self.flush_late()?);
        Ok(out)
    }

    /// Writes the head's late samples (out-of-order samples older than its
    /// last truncation) into one block per aligned `block_range` they fall
    /// in, then drops them from the head and its out-of-order log (`wbl/`,
    /// whose older segments go even with no late sample held). The new
    /// blocks overlap older ones; compaction merges them. Returns the new
    /// blocks.
    pub fn flush_late(&self) -> Result<Vec<Ulid>> {
        let _g = self.maint.lock();
        let f = self.head.begin_late_flush().map_err(head_err)?;
        let r = self.opts.block_range;
        let opts = BlockWriteOptions {
            samples_per_chunk: self.opts.samples_per_chunk,
            head_chunk_range: Some(r),
            hints: vec![crate::meta::HINT_FROM_OOO.to_owned()],
            ..BlockWriteOptions::default()
        };
        let mut out = Vec::new();
        for mint in f.ranges(r) {
            // Never past the truncation point: what follows it is the
            // head's, and blocks there would hide it from a reader that
            // starts the head at the newest block's end (promtool does).
            let maxt = mint.saturating_add(r).min(f.below());
            let meta = {
                let q = f.querier(mint, maxt - 1);
                write_block(&self.dir, &*q, mint, maxt, &opts)?
            };
            if let Some(m) = meta {
                self.add_block(&m.ulid)?;
                out.push(m.ulid);
            }
        }
        let samples = f.finish().map_err(head_err)?;
        if samples > 0 || !out.is_empty() {
            self.events.emit(DbEvent::LateFlushed {
                blocks: out.clone(),
                samples,
            });
        }
        Ok(out)
    }

    fn cut_range(&self, mint: i64, maxt: i64) -> Result<Option<Ulid>> {
        let meta = {
            let q = self.head.querier(mint, maxt - 1)?;
            // The head's chunks pass through; anything re-encoded is cut
            // as the head cuts.
            let opts = BlockWriteOptions {
                samples_per_chunk: self.opts.samples_per_chunk,
                head_chunk_range: Some(self.opts.block_range),
                ..BlockWriteOptions::default()
            };
            write_block(&self.dir, &*q, mint, maxt, &opts)?
        };
        let id = match meta {
            Some(m) => {
                self.add_block(&m.ulid)?;
                self.events.emit(DbEvent::BlockCut {
                    ulid: m.ulid,
                    min_time: m.min_time,
                    max_time: m.max_time,
                });
                Some(m.ulid)
            }
            None => None,
        };
        self.head.truncate(maxt).map_err(head_err)?;
        Ok(id)
    }

    fn add_block(&self, id: &Ulid) -> Result<()> {
        let b = Arc::new(Block::open(&self.dir.join(id.to_string()))?);
        let mut bs = self.blocks.write();
        bs.push(b);
        bs.sort_by_key(|b| {
            let m = b.meta();
            (m.min_time, m.ulid)
        });
        Ok(())
    }

    fn remove_blocks(&self, ids: &[Ulid]) -> Result<()> {
        let gone: Vec<Arc<Block>> = {
            let mut bs = self.blocks.write();
            let (gone, keep) = bs.drain(..).partition(|b| ids.contains(&b.ulid()));
            *bs = keep;
            gone
        };
        for b in gone {
            // Rename first so a crash never leaves a half-deleted block that
            // looks valid; open queries keep their mapped files.
            let mut tmp = b.dir().as_os_str().to_owned();
            tmp.push(".tmp-for-deletion");
            let tmp = PathBuf::from(tmp);
            std::fs::rename(b.dir(), &tmp).map_err(TsdbError::io("rename", b.dir()))?;
            std::fs::remove_dir_all(&tmp).map_err(TsdbError::io("remove", &tmp))?;
        }
        sync_dir(&self.dir)
    }

    /// Compacts blocks until the planner finds nothing to do. Returns the
    /// new blocks.
    pub fn compact_now(&self) -> Result<Vec<Ulid>> {
        let _g = self.maint.lock();
        let ranges = compaction_ranges(self.opts.block_range, self.opts.max_block_duration());
        let mut out = Vec::new();
        loop {
            // Compaction merges raw blocks; downsampled levels stay as
            // written.
            let metas: Vec<BlockMeta> = self
                .blocks
                .read()
                .iter()
                .map(|b| b.meta())
                .filter(|m| m.resolution() == 0)
                .collect();
            let group = plan(&metas, &ranges);
            if group.is_empty() {
                break;
            }
            let new = self.compact_blocks(&group)?;
            if let Some(u) = new {
                out.push(u);
            }
        }
        Ok(out)
    }

    /// Merges the blocks `ids` into one (vertical merge if they overlap,
    /// tombstoned samples dropped) and removes them.
    fn compact_blocks(&self, ids: &[Ulid]) -> Result<Option<Ulid>> {
        let Some(m) = self.merge_inputs(ids)? else {
            return Ok(None);
        };
        let level = m
            .metas
            .iter()
            .map(|x| x.compaction.level)
            .max()
            .unwrap_or(0)
            + 1;
        // Only out-of-order blocks merged together stay out-of-order.
        let ooo = m.metas.iter().all(BlockMeta::from_out_of_order);
        let opts = BlockWriteOptions {
            level,
            sources: m.sources.clone(),
            parents: m.parents.clone(),
            samples_per_chunk: self.opts.samples_per_chunk,
            encoding: self.opts.chunk_encoding,
            hints: if ooo {
                vec![crate::meta::HINT_FROM_OOO.to_owned()]
            } else {
                Vec::new()
            },
            // Long-term blocks: each metric's chunks together, for
            // readers by byte range (the bucket).
            group_by_name: true,
            ..BlockWriteOptions::default()
        };
        let meta = write_block(&self.dir, &m.querier(), m.mint, m.maxt, &opts)?;
        self.finish_merge(meta.map(|x| x.ulid), &m, level)
    }

    /// The blocks `ids` (open local blocks, or owned blocks of the remote
    /// source) and the lineage of a block merged from them; `None` when
    /// none of them is found.
    pub(crate) fn merge_inputs(&self, ids: &[Ulid]) -> Result<Option<MergeInputs>> {
        let mut blocks: Vec<Arc<Block>> = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(b) = self.find_block(*id)? {
                blocks.push(b);
            }
        }
        blocks.sort_by_key(|b| {
            let m = b.meta();
            (m.min_time, m.ulid)
        });
        let metas: Vec<BlockMeta> = blocks.iter().map(|b| b.meta()).collect();
        let (Some(mint), Some(maxt)) = (
            metas.iter().map(|m| m.min_time).min(),
            metas.iter().map(|m| m.max_time).max(),
        ) else {
            return Ok(None);
        };
        let mut sources: Vec<Ulid> = metas
            .iter()
            .flat_map(|m| m.compaction.sources.iter().copied())
            .collect();
        sources.sort();
        sources.dedup();
        let parents = metas.iter().map(BlockDesc::of).collect();
        Ok(Some(MergeInputs {
            blocks,
            metas,
            mint,
            maxt,
            sources,
            parents,
        }))
    }

    /// Adds the merged block, removes its inputs and reports the merge.
    pub(crate) fn finish_merge(
        &self,
        new: Option<Ulid>,
        m: &MergeInputs,
        level: u32,
    ) -> Result<Option<Ulid>> {
        if let Some(u) = &new {
            self.add_block(u)?;
        }
        let pids: Vec<Ulid> = m.metas.iter().map(|x| x.ulid).collect();
        self.remove_blocks(&pids)?;
        self.events.emit(DbEvent::Compacted {
            ulid: new,
            parents: pids,
            level,
        });
        Ok(new)
    }

    /// Deletes blocks beyond the retention time or size. Returns them.
    pub fn apply_retention(&self) -> Result<Vec<(Ulid, RetentionReason)>> {
        let _g = self.maint.lock();
        let sized: Vec<(BlockMeta, u64)> = self
            .blocks
            .read()
            .iter()
            .map(|b| (b.meta(), b.size()))
            .collect();
        let base = dir_size(&self.dir.join("wal")) + dir_size(&self.dir.join("chunks_head"));
        let sel = retention::select_levels(
            &sized,
            &[
                (0, self.opts.retention_time),
                (crate::downsample::RES_5M, self.opts.retention_5m),
                (crate::downsample::RES_1H, self.opts.retention_1h),
            ],
            self.opts.retention_size,
            base,
        );
        let mut sel = sel;
        if let Some(hold) = &self.opts.retention_hold {
            sel.retain(|(ulid, reason)| {
                let keep = sized
                    .iter()
                    .find(|(m, _)| m.ulid == *ulid)
                    .is_some_and(|(m, _)| (hold.0)(m));
                if keep {
                    tracing::info!(block = %ulid, ?reason, "block past retention kept: held (not uploaded yet)");
                }
                !keep
            });
        }
        let ids: Vec<Ulid> = sel.iter().map(|s| s.0).collect();
        if !ids.is_empty() {
            self.remove_blocks(&ids)?;
        }
        for (ulid, reason) in &sel {
            self.events.emit(DbEvent::RetentionDeleted {
                ulid: *ulid,
                reason: *reason,
            });
        }
        Ok(sel)
    }

    /// Deletes samples in `[mint, maxt]` (inclusive) of matching series:
    /// tombstones in every block that meets the range, and from the head at
    /// once (logged in its WAL first, see `Head::delete`). Returns the number
    /// of (block or head, series) pairs touched.
    pub fn delete_series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<u64> {
        let _g = self.maint.lock();
        let mut n = 0;
        for b in self.blocks.read().iter() {
            if b.meta().overlaps_closed(mint, maxt) {
                n += b.delete(mint, maxt, matchers)?;
            }
        }
        n += self.head.delete(matchers, mint, maxt).map_err(head_err)?;
        Ok(n)
    }

    /// Rewrites every block that has tombstones without the deleted data.
    /// Returns `(old, new)` pairs (`new` is `None` when nothing survived).
    pub fn clean_tombstones(&self) -> Result<Vec<(Ulid, Option<Ulid>)>> {
        let _g = self.maint.lock();
        let dirty: Vec<Arc<Block>> = self
            .blocks
            .read()
            .iter()
            // Downsampled blocks keep their tombstones: queries apply them.
            .filter(|b| !b.tombstones().is_empty() && b.meta().resolution() == 0)
            .cloned()
            .collect();
        let mut out = Vec::new();
        for b in dirty {
            let m = b.meta();
            let opts = BlockWriteOptions {
                level: m.compaction.level,
                sources: m.compaction.sources.clone(),
                parents: m.compaction.parents.clone(),
                samples_per_chunk: self.opts.samples_per_chunk,
                // A head cut stays XOR; a compacted block keeps the
                // configured encoding.
                encoding: if m.compaction.level > 1 {
                    self.opts.chunk_encoding
                } else {
                    FloatEncoding::Xor
                },
                group_by_name: m.compaction.level > 1,
                ..BlockWriteOptions::default()
            };
            let meta = {
                let q =
                    BlockQuerier::new(BlockHandle::Shared(b.clone()), m.min_time, m.max_time - 1);
                write_block(&self.dir, &q, m.min_time, m.max_time, &opts)?
            };
            let new = meta.map(|x| x.ulid);
            if let Some(u) = &new {
                self.add_block(u)?;
            }
            self.remove_blocks(&[m.ulid])?;
            self.events
                .emit(DbEvent::TombstonesCleaned { old: m.ulid, new });
            out.push((m.ulid, new));
        }
        Ok(out)
    }

    /// Writes a consistent copy of the blocks (hard links where possible)
    /// into `dir`, plus the head as one more block when `with_head`.
    /// Returns the blocks in the snapshot.
    pub fn snapshot(&self, dir: &Path, with_head: bool) -> Result<Vec<Ulid>> {
        let _g = self.maint.lock();
        std::fs::create_dir_all(dir).map_err(TsdbError::io("create dir", dir))?;
        let mut out = Vec::new();
        for b in self.blocks.read().iter() {
            let dst = dir.join(b.ulid().to_string());
            link_tree(b.dir(), &dst)?;
            out.push(b.ulid());
        }
        if with_head {
            let (hmin, hmax) = (self.head.min_time(), self.head.max_time());
            if hmin <= hmax {
                let q = self.head.querier(hmin, hmax)?;
                let opts = BlockWriteOptions {
                    samples_per_chunk: self.opts.samples_per_chunk,
                    head_chunk_range: Some(self.opts.block_range),
                    ..BlockWriteOptions::default()
                };
                if let Some(m) = write_block(dir, &*q, hmin, hmax.saturating_add(1), &opts)? {
                    out.push(m.ulid);
                }
            }
        }
        sync_dir(dir)?;
        Ok(out)
    }
}

/// What one merge of blocks reads (sorted by min time) and the lineage of
/// the block it writes: bounds `[mint, maxt)`, the union of the inputs'
/// sources, the inputs as parents.
pub(crate) struct MergeInputs {
    pub(crate) blocks: Vec<Arc<Block>>,
    pub(crate) metas: Vec<BlockMeta>,
    pub(crate) mint: i64,
    pub(crate) maxt: i64,
    pub(crate) sources: Vec<Ulid>,
    pub(crate) parents: Vec<BlockDesc>,
}

impl MergeInputs {
    /// The inputs merged over `[mint, maxt)`, newer blocks first (they win
    /// on equal timestamps); chunks that overlap nothing pass through.
    pub(crate) fn querier(&self) -> MergeQuerier<'_> {
        let qs: Vec<Box<dyn Querier + '_>> = self
            .blocks
            .iter()
            .rev()
            .map(|b| {
                Box::new(BlockQuerier::new(
                    BlockHandle::Shared(b.clone()),
                    self.mint,
                    self.maxt - 1,
                )) as Box<dyn Querier>
            })
            .collect();
        MergeQuerier::new(qs, Some(xor_encoder()))
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.close();
    }
}

/// Hard-links (or copies, across filesystems) the files of `src` into `dst`.
fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    std::fs::create_dir_all(dst).map_err(TsdbError::io("create dir", dst))?;
    let rd = std::fs::read_dir(src).map_err(TsdbError::io("read dir", src))?;
    for e in rd {
        let e = e.map_err(TsdbError::io("read dir", src))?;
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if from.is_dir() {
            link_tree(&from, &to)?;
        } else if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(TsdbError::io("copy", &from))?;
        }
    }
    sync_dir(dst)
}

/// Opens every block in `dir`, removing leftovers of interrupted writes and
/// blocks that a later compaction already merged.
fn open_blocks(dir: &Path) -> Result<Vec<Arc<Block>>> {
    let mut blocks = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(TsdbError::io("read dir", dir))?;
    for e in rd {
        let e = e.map_err(TsdbError::io("read dir", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if name.ends_with(TMP_FOR_CREATION)
            || name.ends_with(".tmp-for-deletion")
            || name.ends_with(".tmp")
        {
            tracing::info!(dir = %p.display(), "removing leftover directory");
            std::fs::remove_dir_all(&p).map_err(TsdbError::io("remove", &p))?;
            continue;
        }
        if Ulid::from_string(&name).is_err() || !p.join(crate::meta::META_FILENAME).exists() {
            continue;
        }
        blocks.push(Arc::new(Block::open(&p)?));
    }
    // Only compaction replaces its parents, which are of the same
    // resolution; a downsampled block's input (a finer level) stays.
    let res: std::collections::BTreeMap<Ulid, i64> = blocks
        .iter()
        .map(|b| (b.ulid(), b.meta().resolution()))
        .collect();
    let merged: std::collections::BTreeSet<Ulid> = blocks
        .iter()
        .flat_map(|b| {
            let r = b.meta().resolution();
            b.meta()
                .compaction
                .parents
                .into_iter()
                .map(|p| p.ulid)
                .filter(|p| res.get(p) == Some(&r))
                .collect::<Vec<_>>()
        })
        .collect();
    let (stale, mut live): (Vec<_>, Vec<_>) =
        blocks.into_iter().partition(|b| merged.contains(&b.ulid()));
    for b in stale {
        tracing::info!(block = %b.ulid(), "removing block already compacted into another");
        std::fs::remove_dir_all(b.dir()).map_err(TsdbError::io("remove", b.dir()))?;
    }
    live.sort_by_key(|b| {
        let m = b.meta();
        (m.min_time, m.ulid)
    });
    Ok(live)
}

impl Appendable for Db {
    fn appender(&self) -> Box<dyn Appender + '_> {
        self.head.appender()
    }
}

/// Queries read raw data (the head and raw blocks) unless a selection's
/// [`cairn_storage::SelectHints::resolution`] allows a downsampled level;
/// see `db/levels.rs`.
impl Queryable for Db {
    fn querier(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        Ok(Box::new(levels::LevelQuerier::new(self, mint, maxt)?))
    }

    fn downsampled(&self) -> bool {
        true
    }

    /// Exemplars live in the head only (blocks hold none, as in
    /// Prometheus).
    fn exemplars(
        &self,
        start: i64,
        end: i64,
        selectors: &[Vec<cairn_model::Matcher>],
    ) -> cairn_storage::Result<Vec<cairn_storage::SeriesExemplars>> {
        self.head.exemplars(start, end, selectors)
    }
}
