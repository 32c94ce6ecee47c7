//! The [`Head`] handle: owns the series, the inverted index, the WAL and the
//! head chunk files, and hands out appenders and queriers.
//!
//! Durability: a commit returns only after its records are in the WAL (see
//! `wal_log`), and its samples become visible to queriers created after the
//! commit returned. On open the head reloads the chunk files and replays the
//! WAL (checkpoint, then segments).
//!
//! Time bounds: [`Head::min_time`] and [`Head::max_time`] are inclusive
//! bounds of the samples held, `i64::MAX`/`i64::MIN` when the head is empty.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use cairn_model::Labels;
use cairn_storage::{Metadata, StorageError};
use parking_lot::{Mutex, RwLock};

use crate::disk_chunks::{DiskChunks, LoadedChunk};
use crate::error::{HeadError, Result};
use crate::isolation::Isolation;
use crate::options::HeadOptions;
use crate::postings::HeadIndex;
use crate::series::{AppendBounds, ChunkPolicy, MemSeries};
use crate::stripes::StripeSeries;
use crate::wal_log::WalLog;

/// The in-memory head of the database. See the module docs.
pub struct Head {
    pub(crate) opts: HeadOptions,
    pub(crate) dir: PathBuf,
    pub(crate) series: StripeSeries,
    pub(crate) index: HeadIndex,
    pub(crate) iso: Isolation,
    pub(crate) wal: Option<WalLog>,
    /// The out-of-order log of late samples (see `late`).
    pub(crate) wbl: Option<WalLog>,
    /// Late-sample lock and counters (see `late`).
    pub(crate) late: crate::late::Late,
    pub(crate) chunks: DiskChunks,
    pub(crate) min_time: AtomicI64,
    pub(crate) max_time: AtomicI64,
    /// Samples before this were truncated away (they live in blocks).
    pub(crate) min_valid: AtomicI64,
    pub(crate) next_ref: AtomicU64,
    pub(crate) num_chunks: AtomicI64,
    pub(crate) metadata: RwLock<HashMap<String, Metadata>>,
    /// Serialises truncations.
    pub(crate) truncating: Mutex<()>,
    /// Deleted intervals per series (see `delete`).
    pub(crate) tombstones: crate::delete::Tombstones,
    /// Threads a large selection is checked and sorted on (the CPU count,
    /// read once: it costs system calls).
    pub(crate) select_threads: usize,
    /// The label order of recent large selections.
    pub(crate) orders: crate::sorted_order::SortedOrders,
    /// Whether opening loaded a head snapshot instead of replaying the WAL.
    pub(crate) from_snapshot: bool,
    /// The newest exemplars (see `exemplars`).
    pub(crate) exemplars: crate::exemplars::ExemplarStore,
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("dir", &self.dir)
            .field("min_time", &self.min_time())
            .field("max_time", &self.max_time())
            .finish_non_exhaustive()
    }
}

impl Head {
    /// Opens the head in `data_dir`, using `data_dir/wal` and
    /// `data_dir/chunks_head`, and replays what they hold.
    pub fn open(data_dir: &Path, opts: HeadOptions) -> Result<Self> {
        if opts.chunk_range <= 0 {
            return Err(HeadError::InvalidOption {
                name: "chunk_range",
                reason: format!("{} is not positive", opts.chunk_range),
            });
        }
        if opts.ooo_window < 0 {
            return Err(HeadError::InvalidOption {
                name: "ooo_window",
                reason: format!("{} is negative", opts.ooo_window),
            });
        }
        if opts.samples_per_chunk == 0 {
            return Err(HeadError::InvalidOption {
                name: "samples_per_chunk",
                reason: "must be positive".into(),
            });
        }
        if opts.ooo_capacity == 0 {
            return Err(HeadError::InvalidOption {
                name: "ooo_capacity",
                reason: "must be positive".into(),
            });
        }
        let wal_dir = data_dir.join("wal");
        let snap = data_dir.join(crate::snapshot::FILE);
        // With a snapshot to use, the chunk files are not read: it lists
        // every chunk. Without one (or when it cannot be used), they are
        // scanned and the WAL replayed.
        let try_snapshot = opts.wal.is_some() && snap.exists();
        let (mut head, mut loaded) = Self::empty(data_dir, opts, !try_snapshot)?;
        if let Some(wo) = head.opts.wal {
            let mut from_snapshot = false;
            if try_snapshot {
                match crate::snapshot::load(&head, &snap, &wal_dir) {
                    Ok(used) => from_snapshot = used,
                    Err(e) => {
                        tracing::warn!(error = %e, "head snapshot not used; replaying the WAL");
                    }
                }
                if !from_snapshot {
                    // It may be partly built, and the chunk files were
                    // not read: start again.
                    let opts = head.opts.clone();
                    drop(head);
                    (head, loaded) = Self::empty(data_dir, opts, true)?;
                }
                // It describes one moment, now past.
                std::fs::remove_file(&snap).map_err(|e| HeadError::Io {
                    context: format!("removing {}", snap.display()),
                    source: e,
                })?;
            }
            let wbl_dir = data_dir.join(crate::late::WBL_DIR);
            if from_snapshot {
                head.from_snapshot = true;
                head.replay_wbl(&wbl_dir)?;
            } else {
                crate::replay::replay(&head, &wal_dir, std::mem::take(&mut loaded), &wbl_dir)?;
            }
            let wal = WalLog::open(&wal_dir, &wo)?;
            if let Some(s) = &head.opts.replay_status {
                s.opened(wal.current_segment());
            }
            if head.opts.ooo_window > 0 || wbl_dir.exists() {
                head.wbl = Some(WalLog::open(&wbl_dir, &wo)?);
            }
            head.wal = Some(wal);
        } else {
            // Without a WAL the chunk files cannot be tied to series: start empty.
            head.chunks.clear()?;
        }
        Ok(head)
    }

    /// A head with nothing loaded, and (with `scan`) the chunks
    /// `chunks_head/` holds.
    fn empty(data_dir: &Path, opts: HeadOptions, scan: bool) -> Result<(Self, Vec<LoadedChunk>)> {
        let spill_dir = opts.spill_open_chunks.then(|| data_dir.join("head_spill"));
        let (chunks, loaded) =
            DiskChunks::open(&data_dir.join("chunks_head"), spill_dir.as_deref(), scan)?;
        let head = Self {
            series: StripeSeries::new(opts.stripes),
            index: HeadIndex::default(),
            iso: Isolation::default(),
            wal: None,
            wbl: None,
            late: Default::default(),
            chunks,
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid: AtomicI64::new(opts.min_valid_time),
            next_ref: AtomicU64::new(1),
            num_chunks: AtomicI64::new(0),
            metadata: RwLock::new(HashMap::new()),
            truncating: Mutex::new(()),
            tombstones: Default::default(),
            select_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            orders: Default::default(),
            from_snapshot: false,
            exemplars: crate::exemplars::ExemplarStore::new(opts.max_exemplars),
            dir: data_dir.to_path_buf(),
            opts,
        };
        Ok((head, loaded))
    }

    /// Whether opening loaded the head snapshot (`head_snapshot`, written
    /// on the last graceful shutdown) instead of replaying the WAL.
    pub fn opened_from_snapshot(&self) -> bool {
        self.from_snapshot
    }

    /// Inclusive lower bound of the samples held; `i64::MAX` when empty.
    pub fn min_time(&self) -> i64 {
        self.min_time.load(Ordering::Acquire)
    }

    /// Inclusive upper bound of the samples held; `i64::MIN` when empty.
    pub fn max_time(&self) -> i64 {
        self.max_time.load(Ordering::Acquire)
    }

    /// The exemplar store's counters.
    pub fn exemplar_stats(&self) -> crate::ExemplarStats {
        self.exemplars.stats()
    }

    /// The options the head runs with.
    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    /// The head's inverted index.
    pub fn index(&self) -> &HeadIndex {
        &self.index
    }

    /// Metadata per metric name, sorted by name.
    pub fn metadata(&self) -> Vec<(String, Metadata)> {
        let mut v: Vec<(String, Metadata)> = self
            .metadata
            .read()
            .iter()
            .map(|(k, m)| (k.clone(), m.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Number of series held.
    pub fn num_series(&self) -> u64 {
        self.index.num_series()
    }

    /// Oldest timestamp an in-order append may have: samples must not land
    /// in a range already cut into a block (before the last truncation) nor
    /// in the half chunk range behind the head's newest sample, which block
    /// cutting may be reading.
    pub fn appendable_min_valid_time(&self) -> i64 {
        let max = self.max_time();
        let window_end = if max == i64::MIN {
            i64::MIN
        } else {
            max.saturating_sub(self.opts.chunk_range / 2)
        };
        window_end.max(self.min_valid.load(Ordering::Acquire))
    }

    pub(crate) fn bounds(&self) -> AppendBounds {
        AppendBounds {
            min_valid: self.appendable_min_valid_time(),
            truncated_before: self.min_valid.load(Ordering::Acquire),
            head_max: self.max_time(),
            ooo_window: self.opts.ooo_window,
        }
    }

    pub(crate) fn policy(&self) -> ChunkPolicy {
        ChunkPolicy {
            cut: crate::cut::CutPolicy {
                chunk_range: self.opts.chunk_range,
                samples_per_chunk: self.opts.samples_per_chunk,
            },
            ooo_capacity: self.opts.ooo_capacity,
        }
    }

    /// Widens the head's time bounds to include `[mint, maxt]`.
    pub(crate) fn widen(&self, mint: i64, maxt: i64) {
        if mint <= maxt {
            self.min_time.fetch_min(mint, Ordering::AcqRel);
            self.max_time.fetch_max(maxt, Ordering::AcqRel);
        }
    }

    /// The series with `labels`, pinned, created (and indexed) when absent.
    /// Whether creating the series `labels` stays within the limits of
    /// [`HeadOptions::max_series`] and [`HeadOptions::max_series_per_metric`].
    pub(crate) fn check_series_limits(
        &self,
        labels: &Labels,
    ) -> std::result::Result<(), StorageError> {
        let limit = self.opts.max_series;
        if limit > 0 && self.index.num_series() >= limit {
            return Err(StorageError::SeriesLimit { limit });
        }
        let limit = self.opts.max_series_per_metric;
        if limit > 0 {
            if let Some(name) = labels.metric_name() {
                if self.index.series_with(cairn_model::METRIC_NAME, name) >= limit {
                    return Err(StorageError::MetricSeriesLimit {
                        metric: name.to_owned(),
                        limit,
                    });
                }
            }
        }
        Ok(())
    }

    pub(crate) fn get_or_create_pinned(&self, labels: &Labels) -> (Arc<MemSeries>, bool) {
        self.series.get_or_create_pinned(
            labels,
            || self.next_ref.fetch_add(1, Ordering::AcqRel),
            |s| self.index.add(s.r, &s.labels),
        )
    }
}
