//! The shipper: uploads every block the database completes to the bucket
//! in Thanos's layout, and marks for deletion the uploaded blocks a newer
//! upload replaces (a compaction's result covers its sources), as
//! Thanos's compactor marks the blocks it compacted.
//!
//! Contracts:
//! - A block is uploaded file by file, `meta.json` last: a reader that
//!   sees `meta.json` sees the whole block; an upload cut short leaves a
//!   partial block, which the next round uploads again from the start.
//! - The state file (`<data>/cairn.shipper.json`, docs/format/shipper.md)
//!   lists the uploaded blocks not yet replaced, with their resolution and
//!   sources; it is written atomically after every change. A block in it
//!   is never uploaded again, nor is one it marked or one already past the
//!   bucket retention; [`Shipper::holds`] tells local retention which
//!   blocks it must keep until they are uploaded.
//! - A block replaces an uploaded one when both have the same resolution
//!   and the uploaded one's sources are all among its own: the replaced
//!   block gets `deletion-mark.json` (Thanos's format) and leaves the
//!   state. Blocks of other resolutions (downsampled levels) never replace
//!   raw ones.
//! - A round stops at the first failure (the bucket is likely away) and
//!   the next round retries; nothing local is deleted because of a failure.
//! - The blocks it marked are deleted from the bucket `delete_delay`
//!   after the mark (`meta.json` first, the mark last); a block without
//!   `meta.json` whose objects have not changed for `partial_delay` is an
//!   abandoned partial upload and is deleted (the bucket is scanned for
//!   them at most every `partial_scan_every`).
//! - What happens is reported on channels ([`Shipper::subscribe`]), so
//!   tests wait for uploads instead of sleeping.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_tsdb::BlockMeta;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::bucket::Bucket;
use crate::error::{ObjstoreError, Result};
use crate::layout::{bucket_meta, DeletionMark, DELETION_MARK, META};

/// The state file's name in the data directory.
pub const STATE_FILE: &str = "cairn.shipper.json";

/// What the shipper writes into uploaded blocks' `thanos` section, and
/// its delays.
#[derive(Debug, Clone)]
pub struct ShipperOptions {
    /// External labels (`--storage.external-label`).
    pub labels: BTreeMap<String, String>,
    /// `thanos.source`.
    pub source: String,
    /// This machine's name, written into the owner heartbeat (see
    /// `owner`) so that a refused second Cairn names the first.
    pub host: String,
    /// How long a block it marked for deletion stays in the bucket before
    /// it deletes it (Thanos's compactor's `--delete-delay`, 48 h), so
    /// that readers never lose a block under a running query.
    pub delete_delay: Duration,
    /// A block without `meta.json` whose objects have not changed for this
    /// long is an abandoned partial upload and is deleted (6 h).
    pub partial_delay: Duration,
    /// How often the bucket is scanned for abandoned partial uploads (1 h).
    pub partial_scan_every: Duration,
    /// Bucket retention by resolution (ms; 0 raw, 300000, 3600000): the
    /// uploaded blocks of that resolution ending longer ago than the
    /// duration are marked for deletion (`--objstore.retention.*`).
    /// Resolutions not listed, or a zero duration: kept forever.
    pub retention: Vec<(i64, Duration)>,
}

impl Default for ShipperOptions {
    fn default() -> Self {
        Self {
            labels: BTreeMap::new(),
            source: "cairn".into(),
            host: String::new(),
            delete_delay: Duration::from_secs(48 * 3600),
            partial_delay: Duration::from_secs(6 * 3600),
            partial_scan_every: Duration::from_secs(3600),
            retention: Vec::new(),
        }
    }
}

/// One uploaded block the state keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipped {
    pub ulid: Ulid,
    /// Downsampling resolution in ms (0: raw).
    #[serde(default)]
    pub resolution: i64,
    /// `compaction.sources` of the block.
    pub sources: Vec<Ulid>,
    /// The block's `maxTime` (exclusive, ms), for bucket retention.
    #[serde(default, rename = "maxTime")]
    pub max_time: i64,
}

/// A block the shipper marked for deletion and will delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marked {
    pub ulid: Ulid,
    /// Unix seconds of the mark (`deletion_time` in the mark).
    pub deletion_time: i64,
}

/// The state file's contents.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ShipState {
    pub version: u32,
    pub uploaded: Vec<Shipped>,
    /// Blocks it marked for deletion, not deleted yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub marked: Vec<Marked>,
    /// This Cairn's identity as the owner of its external labels' blocks
    /// (see `owner`); made on first use.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
}

impl ShipState {
    /// Reads the state file at `path`; an absent file is an empty state.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    version: 1,
                    uploaded: Vec::new(),
                    marked: Vec::new(),
                    instance: String::new(),
                })
            }
            Err(source) => {
                return Err(ObjstoreError::Local {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Self::from_json(&bytes, path)
    }

    /// Decodes the state file's bytes; `path` names it in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let s: Self = serde_json::from_slice(bytes).map_err(|e| ObjstoreError::StateCorrupt {
            path: path.to_path_buf(),
            expected: "the shipper's JSON state".into(),
            found: e.to_string(),
        })?;
        if s.version != 1 {
            return Err(ObjstoreError::StateCorrupt {
                path: path.to_path_buf(),
                expected: "version 1".into(),
                found: format!("version {}", s.version),
            });
        }
        Ok(s)
    }

    /// The state file's bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // A plain struct of strings, integers and lists: encoding cannot
        // fail (an empty result would be refused on reading).
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Writes it atomically (temporary file, fsync, rename, directory fsync).
    pub fn save(&self, path: &Path) -> Result<()> {
        let io = |source| ObjstoreError::Local {
            path: path.to_path_buf(),
            source,
        };
        let bytes = self.to_json();
        let tmp = path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io)?;
        }
        Ok(())
    }
}

/// What the shipper did, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShipperEvent {
    /// `ulid` is in the bucket, `meta.json` included; `bytes` uploaded.
    Uploaded { ulid: Ulid, bytes: u64 },
    /// Uploading `ulid` failed; the next round retries.
    UploadFailed { ulid: Ulid, error: String },
    /// `ulid` got `deletion-mark.json`: `by` replaces it (`by == ulid`:
    /// it is past the bucket retention).
    MarkedForDeletion { ulid: Ulid, by: Ulid },
    /// `ulid`, marked `delete_delay` ago, was deleted from the bucket.
    Deleted { ulid: Ulid },
    /// An abandoned partial upload of `ulid` was deleted.
    PartialDeleted { ulid: Ulid },
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub uploaded: Vec<Ulid>,
    pub marked: Vec<Ulid>,
    /// Marked blocks deleted, and abandoned partial uploads deleted.
    pub deleted: Vec<Ulid>,
    pub partials_deleted: Vec<Ulid>,
    pub bytes: u64,
    /// The first failure, if the round stopped at one.
    pub failed: Option<String>,
}

/// Uploads a data directory's blocks (see the module docs).
pub struct Shipper {
    bucket: Arc<Bucket>,
    state_path: PathBuf,
    opts: ShipperOptions,
    state: Mutex<ShipState>,
    /// Serialises rounds; when the bucket was last scanned for partial
    /// uploads.
    round: Mutex<Option<std::time::Instant>>,
    subs: Mutex<Vec<Sender<ShipperEvent>>>,
}

impl std::fmt::Debug for Shipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shipper")
            .field("bucket", &self.bucket)
            .field("state", &self.state_path)
            .finish_non_exhaustive()
    }
}

/// The files of a block directory to upload, `meta.json` aside, as
/// `(relative path, local path)`, sorted: `chunks/*`, `index`,
/// `tombstones`. Hidden and temporary files are left out.
fn block_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ObjstoreError::Local { path, source }
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io(dir))? {
        let e = e.map_err(io(dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == META || name.starts_with('.') || name.ends_with(".tmp") {
            continue;
        }
        let p = e.path();
        if e.file_type().map_err(io(&p))?.is_dir() {
            for c in std::fs::read_dir(&p).map_err(io(&p))? {
                let c = c.map_err(io(&p))?;
                let cn = c.file_name().to_string_lossy().into_owned();
                if cn.starts_with('.') || cn.ends_with(".tmp") {
                    continue;
                }
                out.push((format!("{name}/{cn}"), c.path()));
            }
        } else {
            out.push((name, p));
        }
    }
    out.sort();
    Ok(out)
}

impl Shipper {
    /// A shipper for the data directory `data_dir` (its state file is
    /// read now) uploading to `bucket`.
    pub fn new(bucket: Arc<Bucket>, data_dir: &Path, opts: ShipperOptions) -> Result<Self> {
        let state_path = data_dir.join(STATE_FILE);
        let mut state = ShipState::load(&state_path)?;
        if state.instance.is_empty() {
            state.version = 1;
            state.instance = Ulid::new().to_string();
            state.save(&state_path)?;
        }
        Ok(Self {
            bucket,
            state_path,
            opts,
            state: Mutex::new(state),
            round: Mutex::new(None),
            subs: Mutex::new(Vec::new()),
        })
    }

    /// Claims the ownership of its external labels' blocks (see `owner`):
    /// refused with [`ObjstoreError::Owned`] when another Cairn's heartbeat
    /// is younger than `stale_after`; otherwise writes its own heartbeat.
    pub fn claim(&self, now_s: i64, stale_after: Duration) -> Result<()> {
        let key = crate::owner::owner_key(&self.opts.labels);
        let instance = self.state.lock().instance.clone();
        if let Some(b) = self.bucket.get(&key)? {
            if let Ok(r) = serde_json::from_slice::<crate::owner::OwnerRecord>(&b) {
                let age = now_s.saturating_sub(r.heartbeat);
                if r.instance != instance && age < stale_after.as_secs() as i64 {
                    return Err(ObjstoreError::Owned {
                        labels: format!("{:?}", self.opts.labels),
                        host: r.host,
                        dir: r.dir,
                        age_s: age,
                    });
                }
            }
        }
        self.heartbeat(now_s)
    }

    /// Writes its heartbeat object.
    fn heartbeat(&self, now_s: i64) -> Result<()> {
        let key = crate::owner::owner_key(&self.opts.labels);
        let r = crate::owner::OwnerRecord {
            labels: self.opts.labels.clone(),
            instance: self.state.lock().instance.clone(),
            host: self.opts.host.clone(),
            dir: self
                .state_path
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            heartbeat: now_s,
        };
        let b = serde_json::to_vec(&r).map_err(|e| ObjstoreError::Meta {
            block: key.clone(),
            what: format!("encoding the owner record: {e}"),
        })?;
        self.bucket.put(&key, Bytes::from(b))
    }

    /// The bucket it uploads to.
    pub fn bucket(&self) -> &Arc<Bucket> {
        &self.bucket
    }

    /// Events from now on.
    pub fn subscribe(&self) -> Receiver<ShipperEvent> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.subs.lock().push(tx);
        rx
    }

    fn emit(&self, e: ShipperEvent) {
        self.subs.lock().retain(|s| s.send(e.clone()).is_ok());
    }

    /// Whether `ulid` was uploaded (and not replaced since).
    pub fn is_uploaded(&self, ulid: &Ulid) -> bool {
        self.state.lock().uploaded.iter().any(|s| s.ulid == *ulid)
    }

    /// Whether a block of `resolution` ending at `max_time` is past the
    /// bucket retention at `now_s`.
    fn expired(&self, resolution: i64, max_time: i64, now_s: i64) -> bool {
        self.opts.retention.iter().any(|(res, keep)| {
            *res == resolution
                && !keep.is_zero()
                && max_time
                    < now_s
                        .saturating_mul(1000)
                        .saturating_sub(keep.as_millis() as i64)
        })
    }

    /// Whether local retention must keep `meta`'s block for now: it is not
    /// in the bucket yet and is to go there (not uploaded, not marked,
    /// not already past the bucket retention).
    pub fn holds(&self, meta: &BlockMeta) -> bool {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        !self.done(meta, now_s)
    }

    /// Uploaded, marked, or never to be uploaded (past the bucket
    /// retention).
    fn done(&self, meta: &BlockMeta, now_s: i64) -> bool {
        {
            let st = self.state.lock();
            if st.uploaded.iter().any(|s| s.ulid == meta.ulid)
                || st.marked.iter().any(|m| m.ulid == meta.ulid)
            {
                return true;
            }
        }
        self.expired(meta.resolution(), meta.max_time, now_s)
    }

    /// The state as it stands.
    pub fn state(&self) -> ShipState {
        self.state.lock().clone()
    }

    /// Uploads one block directory: every file, then `meta.json` with the
    /// `thanos` section. Returns the bytes uploaded.
    pub fn upload_block(&self, dir: &Path, meta: &BlockMeta) -> Result<u64> {
        let id = meta.ulid.to_string();
        let mut files = Vec::new();
        let mut bytes = 0u64;
        for (rel, path) in block_files(dir)? {
            let n = self.bucket.upload_file(&format!("{id}/{rel}"), &path)?;
            bytes += n;
            files.push((rel, n));
        }
        let local_meta = dir.join(META);
        let local = std::fs::read(&local_meta).map_err(|source| ObjstoreError::Local {
            path: local_meta.clone(),
            source,
        })?;
        let m = bucket_meta(&id, &local, &files, &self.opts.labels, &self.opts.source)?;
        bytes += m.len() as u64;
        self.bucket.put(&format!("{id}/{META}"), Bytes::from(m))?;
        Ok(bytes)
    }

    /// Deletes a block from the bucket: `meta.json` first (readers stop
    /// taking it as complete), its deletion mark last (a deletion cut
    /// short is found again).
    fn delete_block(&self, ulid: Ulid) -> Result<()> {
        let id = ulid.to_string();
        self.bucket.delete(&format!("{id}/{META}"))?;
        let mark = format!("{id}/{DELETION_MARK}");
        for o in self.bucket.list_objects(&id)? {
            if o.key != mark {
                self.bucket.delete(&o.key)?;
            }
        }
        self.bucket.delete(&mark)
    }

    /// Deletes the blocks it marked `delete_delay` ago or earlier, and
    /// (at most every `partial_scan_every`) abandoned partial uploads.
    fn collect_garbage(
        &self,
        now_s: i64,
        last_scan: &mut Option<std::time::Instant>,
        report: &mut SyncReport,
    ) -> Result<()> {
        // Bucket retention: uploaded blocks past their resolution's
        // retention are marked (and deleted after the delay below).
        let expired: Vec<Ulid> = {
            let st = self.state.lock();
            st.uploaded
                .iter()
                .filter(|u| self.expired(u.resolution, u.max_time, now_s))
                .map(|u| u.ulid)
                .collect()
        };
        for ulid in expired {
            let marked = self.mark_with(ulid, now_s, "past the bucket retention".into())?;
            let mut st = self.state.lock();
            st.uploaded.retain(|u| u.ulid != ulid);
            if marked {
                st.marked.push(Marked {
                    ulid,
                    deletion_time: now_s,
                });
            }
            st.save(&self.state_path)?;
            drop(st);
            if marked {
                tracing::info!(block = %ulid, "block past the bucket retention marked for deletion");
                report.marked.push(ulid);
                self.emit(ShipperEvent::MarkedForDeletion { ulid, by: ulid });
            }
        }
        let delay = self.opts.delete_delay.as_secs() as i64;
        let due: Vec<Ulid> = self
            .state
            .lock()
            .marked
            .iter()
            .filter(|m| m.deletion_time.saturating_add(delay) <= now_s)
            .map(|m| m.ulid)
            .collect();
        for ulid in due {
            self.delete_block(ulid)?;
            {
                let mut st = self.state.lock();
                st.marked.retain(|m| m.ulid != ulid);
                st.save(&self.state_path)?;
            }
            tracing::info!(block = %ulid, "marked block deleted from the bucket");
            report.deleted.push(ulid);
            self.emit(ShipperEvent::Deleted { ulid });
        }
        if last_scan.is_some_and(|t| t.elapsed() < self.opts.partial_scan_every) {
            return Ok(());
        }
        *last_scan = Some(std::time::Instant::now());
        let idle = self.opts.partial_delay.as_secs() as i64;
        for dir in self.bucket.list_dirs("")? {
            let Ok(ulid) = dir.parse::<Ulid>() else {
                continue;
            };
            if self.bucket.exists(&format!("{dir}/{META}"))? {
                continue;
            }
            let objects = self.bucket.list_objects(&dir)?;
            // No objects: an empty directory left by a filesystem bucket.
            let Some(newest) = objects.iter().map(|o| o.modified_s).max() else {
                continue;
            };
            if newest.saturating_add(idle) > now_s {
                continue;
            }
            for o in &objects {
                self.bucket.delete(&o.key)?;
            }
            tracing::info!(block = %ulid, objects = objects.len(), "abandoned partial upload deleted from the bucket");
            report.partials_deleted.push(ulid);
            self.emit(ShipperEvent::PartialDeleted { ulid });
        }
        Ok(())
    }

    /// Marks `ulid` for deletion in the bucket (if it is there, complete
    /// and not marked yet).
    fn mark(&self, ulid: Ulid, by: Ulid, now_s: i64) -> Result<bool> {
        self.mark_with(
            ulid,
            now_s,
            format!("replaced by {by} (compacted by Cairn)"),
        )
    }

    fn mark_with(&self, ulid: Ulid, now_s: i64, details: String) -> Result<bool> {
        let id = ulid.to_string();
        if !self.bucket.exists(&format!("{id}/{META}"))?
            || self.bucket.exists(&format!("{id}/{DELETION_MARK}"))?
        {
            return Ok(false);
        }
        let m = DeletionMark {
            id: id.clone(),
            deletion_time: now_s,
            version: 1,
            details,
        };
        let b = serde_json::to_vec(&m).map_err(|e| ObjstoreError::Meta {
            block: id.clone(),
            what: format!("encoding the deletion mark: {e}"),
        })?;
        self.bucket
            .put(&format!("{id}/{DELETION_MARK}"), Bytes::from(b))?;
        Ok(true)
    }

    /// One round over the database's blocks (`(directory, meta)`): uploads
    /// those not uploaded yet, oldest first, and marks what they replace.
    pub fn sync(&self, blocks: &[(PathBuf, BlockMeta)]) -> SyncReport {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        self.sync_at(blocks, now_s)
    }

    /// [`Shipper::sync`] as if the time were `now_s` (Unix seconds).
    pub fn sync_at(&self, blocks: &[(PathBuf, BlockMeta)], now_s: i64) -> SyncReport {
        let mut last_scan = self.round.lock();
        let mut report = SyncReport::default();
        let mut todo: Vec<&(PathBuf, BlockMeta)> = blocks
            .iter()
            .filter(|(_, m)| !self.done(m, now_s))
            .collect();
        todo.sort_by_key(|(_, m)| (m.resolution(), m.min_time, m.ulid));
        for (dir, meta) in todo {
            match self.ship_one(dir, meta, now_s, &mut report) {
                Ok(()) => {}
                Err(e) => {
                    let error = e.to_string();
                    tracing::warn!(block = %meta.ulid, error = %error, "upload failed; retried next round");
                    self.emit(ShipperEvent::UploadFailed {
                        ulid: meta.ulid,
                        error: error.clone(),
                    });
                    report.failed = Some(error);
                    return report;
                }
            }
        }
        if let Err(e) = self.heartbeat(now_s) {
            tracing::warn!(error = %e, "renewing the owner heartbeat failed");
        }
        if let Err(e) = self.collect_garbage(now_s, &mut last_scan, &mut report) {
            tracing::warn!(error = %e, "cleaning the bucket failed; retried next round");
            report.failed = Some(e.to_string());
        }
        report
    }

    fn ship_one(
        &self,
        dir: &Path,
        meta: &BlockMeta,
        now_s: i64,
        report: &mut SyncReport,
    ) -> Result<()> {
        let bytes = self.upload_block(dir, meta)?;
        let entry = Shipped {
            ulid: meta.ulid,
            resolution: meta.resolution(),
            sources: meta.compaction.sources.clone(),
            max_time: meta.max_time,
        };
        {
            let mut st = self.state.lock();
            st.version = 1;
            st.uploaded.push(entry);
            st.save(&self.state_path)?;
        }
        tracing::info!(block = %meta.ulid, bytes, "block uploaded");
        report.uploaded.push(meta.ulid);
        report.bytes += bytes;
        self.emit(ShipperEvent::Uploaded {
            ulid: meta.ulid,
            bytes,
        });
        // What this block replaces.
        let mine: BTreeSet<Ulid> = meta.compaction.sources.iter().copied().collect();
        let replaced: Vec<Ulid> = self
            .state
            .lock()
            .uploaded
            .iter()
            .filter(|s| {
                s.ulid != meta.ulid
                    && s.resolution == meta.resolution()
                    && !s.sources.is_empty()
                    && s.sources.iter().all(|x| mine.contains(x))
            })
            .map(|s| s.ulid)
            .collect();
        for old in replaced {
            let marked = self.mark(old, meta.ulid, now_s)?;
            {
                let mut st = self.state.lock();
                st.uploaded.retain(|s| s.ulid != old);
                if marked {
                    st.marked.push(Marked {
                        ulid: old,
                        deletion_time: now_s,
                    });
                }
                st.save(&self.state_path)?;
            }
            if marked {
                tracing::info!(block = %old, by = %meta.ulid, "block marked for deletion in the bucket");
                report.marked.push(old);
                self.emit(ShipperEvent::MarkedForDeletion {
                    ulid: old,
                    by: meta.ulid,
                });
            }
        }
        Ok(())
    }

    /// Runs rounds on a thread of its own: at start, after every event of
    /// `events` (the database's), and every `interval` (retries), over the
    /// blocks `blocks` returns, until `events` closes.
    pub fn spawn<T: Send + 'static>(
        self: &Arc<Self>,
        events: Receiver<T>,
        interval: Duration,
        blocks: impl Fn() -> Vec<(PathBuf, BlockMeta)> + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("cairn-shipper".into())
            .spawn(move || loop {
                me.sync(&blocks());
                match events.recv_timeout(interval) {
                    Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        // Let a burst of events settle into one round.
                        while events.try_recv().is_ok() {}
                    }
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        me.sync(&blocks());
                        return;
                    }
                }
            })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn ulid() -> impl Strategy<Value = Ulid> {
        any::<u128>().prop_map(Ulid::from)
    }

    proptest! {
        /// What is written reads back equal; bytes that are not a state
        /// are a named error, never a panic.
        #[test]
        fn state_round_trips(
            uploaded in prop::collection::vec(
                (
                    ulid(),
                    prop::sample::select(vec![0i64, 300_000, 3_600_000]),
                    any::<i64>(),
                    prop::collection::vec(ulid(), 0..3),
                ),
                0..5,
            ),
            marked in prop::collection::vec((ulid(), any::<i64>()), 0..3),
            instance in "[0-9A-Z]{0,26}",
            noise in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let s = ShipState {
                version: 1,
                uploaded: uploaded
                    .into_iter()
                    .map(|(ulid, resolution, max_time, sources)| Shipped {
                        ulid,
                        resolution,
                        sources,
                        max_time,
                    })
                    .collect(),
                marked: marked
                    .into_iter()
                    .map(|(ulid, deletion_time)| Marked { ulid, deletion_time })
                    .collect(),
                instance,
            };
            let p = Path::new("state.json");
            prop_assert_eq!(ShipState::from_json(&s.to_json(), p).unwrap(), s);
            let _ = ShipState::from_json(&noise, p);
        }
    }
}
