//! Checkpoints: the live part of a WAL prefix, rewritten compactly so the
//! prefix's segments can be deleted.
//!
//! [`checkpoint`] folds the previous checkpoint (if any) and segments
//! `from..=to` into `checkpoint.NNNNNNNN` (`NNNNNNNN` = `to`), a directory
//! holding ordinary WAL segments. It keeps:
//! * series records of series for which `keep(ref)` is true;
//! * samples of kept series with `t >= mint`;
//! * tombstone intervals of kept series with `maxt >= mint`;
//! * the newest metadata of each kept series (written last).
//!
//! Records of types this crate does not decode are dropped.
//!
//! The directory is written as `checkpoint.NNNNNNNN.tmp`, fsynced, renamed
//! into place and the parent fsynced, so a crash leaves either the old or the
//! new checkpoint complete. Older checkpoints are deleted afterwards; the
//! caller deletes segments `<= to` with [`crate::Wal::truncate`]`(to + 1)`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Result, WalError};
use crate::fragment::DEFAULT_SEGMENT_SIZE;
use crate::record::{decode, encode, Record, RefMetadata};
use crate::replay::read_segments;
use crate::segments::{check_consecutive, checkpoint_name, list, sync_dir, TMP_SUFFIX};
use crate::writer::LogWriter;

/// Records are written to the checkpoint in batches of about this many bytes.
const BATCH_BYTES: usize = 1 << 20;

fn bad(dir: &Path, reason: String) -> WalError {
    WalError::Checkpoint {
        dir: dir.to_path_buf(),
        reason,
    }
}

/// Writes `checkpoint.{to:08}` in `dir`; see the module docs. Does nothing
/// when a checkpoint at or after `to` already exists. `compress`: snappy
/// records, as [`crate::WalOptions::compress`] does for the log.
pub fn checkpoint(
    dir: &Path,
    from: u32,
    to: u32,
    keep: impl Fn(u64) -> bool,
    mint: i64,
    compress: bool,
) -> Result<()> {
    if from > to {
        return Err(bad(dir, format!("from {from} is after to {to}")));
    }
    let listing = list(dir)?;
    let prev = listing.checkpoints.last().copied();
    let mut first = from;
    if let Some(c) = prev {
        if c >= to {
            return Ok(());
        }
        if from > c.saturating_add(1) {
            return Err(bad(
                dir,
                format!(
                    "segments {} to {} would be lost: last checkpoint is {c}, from is {from}",
                    c + 1,
                    from - 1
                ),
            ));
        }
        first = first.max(c + 1);
    }
    let segs: Vec<u32> = (first..=to).collect();
    for s in &segs {
        if listing.segments.binary_search(s).is_err() {
            return Err(bad(dir, format!("segment {s:08} does not exist")));
        }
    }
    for t in &listing.tmp_checkpoints {
        std::fs::remove_dir_all(t).map_err(|e| WalError::io(t, e))?;
    }

    let final_dir = dir.join(checkpoint_name(to));
    let tmp_dir = dir.join(format!("{}{TMP_SUFFIX}", checkpoint_name(to)));
    std::fs::create_dir(&tmp_dir).map_err(|e| WalError::io(&tmp_dir, e))?;
    let mut out = Filter {
        w: LogWriter::create(
            &tmp_dir,
            0,
            DEFAULT_SEGMENT_SIZE,
            Default::default(),
            compress,
        )?,
        keep: &keep,
        mint,
        batch: Vec::new(),
        batch_bytes: 0,
        metadata: BTreeMap::new(),
    };
    if let Some(c) = prev {
        let cdir = dir.join(checkpoint_name(c));
        let inner = list(&cdir)?;
        check_consecutive(&cdir, &inner.segments)?;
        read_segments(&cdir, &inner.segments, false, &mut |seg, off, rec| {
            out.add(&cdir, seg, off, rec)
        })?;
    }
    read_segments(dir, &segs, false, &mut |seg, off, rec| {
        out.add(dir, seg, off, rec)
    })?;
    out.finish()?;
    sync_dir(&tmp_dir)?;
    std::fs::rename(&tmp_dir, &final_dir).map_err(|e| WalError::io(&final_dir, e))?;
    sync_dir(dir)?;

    for c in listing.checkpoints.iter().filter(|&&c| c < to) {
        let p = dir.join(checkpoint_name(*c));
        std::fs::remove_dir_all(&p).map_err(|e| WalError::io(&p, e))?;
    }
    sync_dir(dir)
}

struct Filter<'a, K: Fn(u64) -> bool> {
    w: LogWriter,
    keep: &'a K,
    mint: i64,
    batch: Vec<Vec<u8>>,
    batch_bytes: usize,
    metadata: BTreeMap<u64, RefMetadata>,
}

impl<K: Fn(u64) -> bool> Filter<'_, K> {
    fn add(&mut self, dir: &Path, seg: u32, off: u64, bytes: &[u8]) -> Result<()> {
        let rec = match decode(bytes) {
            Ok(r) => r,
            Err(WalError::UnknownRecordType { .. }) => return Ok(()),
            Err(WalError::RecordCorrupt {
                offset,
                expected,
                found,
            }) => {
                return Err(WalError::Corruption {
                    dir: dir.to_path_buf(),
                    segment: seg,
                    offset: off,
                    expected,
                    found: format!("{found} (byte {offset} of the record)"),
                })
            }
            Err(e) => return Err(e),
        };
        let keep = self.keep;
        let mint = self.mint;
        let kept = match rec {
            Record::Series(mut v) => {
                v.retain(|s| keep(s.r));
                (!v.is_empty()).then_some(Record::Series(v))
            }
            Record::Samples(mut v) => {
                v.retain(|s| s.t >= mint && keep(s.r));
                (!v.is_empty()).then_some(Record::Samples(v))
            }
            Record::Tombstones(mut v) => {
                v.retain_mut(|s| {
                    s.intervals.retain(|&(_, maxt)| maxt >= mint);
                    !s.intervals.is_empty() && keep(s.r)
                });
                (!v.is_empty()).then_some(Record::Tombstones(v))
            }
            Record::Exemplars(mut v) => {
                v.retain(|e| e.t >= mint && keep(e.r));
                (!v.is_empty()).then_some(Record::Exemplars(v))
            }
            // Only Prometheus's out-of-order log holds markers.
            Record::MmapMarkers(_) => None,
            Record::Histograms {
                custom,
                mut samples,
            } => {
                samples.retain(|s| s.t >= mint && keep(s.r));
                (!samples.is_empty()).then_some(Record::Histograms { custom, samples })
            }
            Record::FloatHistograms {
                custom,
                mut samples,
            } => {
                samples.retain(|s| s.t >= mint && keep(s.r));
                (!samples.is_empty()).then_some(Record::FloatHistograms { custom, samples })
            }
            Record::Metadata(v) => {
                for m in v.into_iter().filter(|m| keep(m.r)) {
                    self.metadata.insert(m.r, m);
                }
                None
            }
        };
        if let Some(r) = kept {
            self.push(&r)?;
        }
        Ok(())
    }

    fn push(&mut self, rec: &Record) -> Result<()> {
        let mut b = Vec::new();
        encode(rec, &mut b);
        self.batch_bytes += b.len();
        self.batch.push(b);
        if self.batch_bytes >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let refs: Vec<&[u8]> = self.batch.iter().map(Vec::as_slice).collect();
        self.w.log(&refs)?;
        self.batch.clear();
        self.batch_bytes = 0;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        if !self.metadata.is_empty() {
            let m: Vec<RefMetadata> = std::mem::take(&mut self.metadata).into_values().collect();
            self.push(&Record::Metadata(m))?;
        }
        self.flush()?;
        self.w.sync()
    }
}
