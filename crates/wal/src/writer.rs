//! The single-threaded segment writer under [`crate::Wal`] (and under the
//! checkpoint writer).
//!
//! Each [`LogWriter::log`] call cuts its records into fragments in one
//! buffer and hands the buffer to the kernel with `write(2)` before
//! returning, so nothing acknowledged sits in process memory. A record that
//! does not fit in what is left of the current segment starts a new one: the
//! old segment's last page is zero-padded, the file fsynced and closed.
//! A record larger than a whole segment gets a segment of its own, which
//! grows past the nominal size.
//!
//! With compression on, each record is snappy-compressed (block format) on
//! its own and written compressed, with [`SNAPPY_FLAG`] on every fragment,
//! when that is shorter; otherwise as is. This is what Prometheus writes
//! with `--storage.tsdb.wal-compression`, so either reads the other's log.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Result, WalError};
use crate::fragment::{append_fragments, HEADER_SIZE, PAGE_SIZE, SNAPPY_FLAG, ZEROS};
use crate::segments::{segment_path, sync_dir};

const PAGE: u64 = PAGE_SIZE as u64;

/// fsyncs issued by a WAL and the time they took, for self-monitoring.
#[derive(Debug, Default)]
pub(crate) struct FsyncStats {
    pub(crate) count: std::sync::atomic::AtomicU64,
    pub(crate) nanos: std::sync::atomic::AtomicU64,
}

impl FsyncStats {
    /// Runs `f` (an fsync) and records its duration.
    pub(crate) fn time<T>(&self, f: impl FnOnce() -> T) -> T {
        let start = std::time::Instant::now();
        let out = f();
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.nanos
            .fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        out
    }
}

pub(crate) struct LogWriter {
    dir: PathBuf,
    pages_per_segment: u64,
    seg: u32,
    file: Arc<File>,
    /// Bytes already written to the current segment file.
    off: u64,
    /// Bytes of the current call not yet written.
    buf: Vec<u8>,
    stats: Arc<FsyncStats>,
    /// Snappy-compress records (see the module docs).
    compress: bool,
    /// The compressed record being written.
    scratch: Vec<u8>,
    enc: snap::raw::Encoder,
}

fn create_segment(dir: &Path, i: u32) -> Result<File> {
    let path = segment_path(dir, i);
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| WalError::io(&path, e))?;
    // The new name must survive a power loss before anything is written
    // into it, or an fsynced record could vanish with its directory entry.
    sync_dir(dir)?;
    Ok(f)
}

impl LogWriter {
    /// Creates segment `seg` in `dir` (it must not exist) and writes there.
    pub(crate) fn create(
        dir: &Path,
        seg: u32,
        segment_size: usize,
        stats: Arc<FsyncStats>,
        compress: bool,
    ) -> Result<Self> {
        let file = create_segment(dir, seg)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            pages_per_segment: (segment_size / PAGE_SIZE) as u64,
            seg,
            file: Arc::new(file),
            off: 0,
            buf: Vec::new(),
            stats,
            compress,
            scratch: Vec::new(),
            enc: snap::raw::Encoder::new(),
        })
    }

    pub(crate) fn segment(&self) -> u32 {
        self.seg
    }

    pub(crate) fn file(&self) -> Arc<File> {
        Arc::clone(&self.file)
    }

    fn pos(&self) -> u64 {
        self.off + self.buf.len() as u64
    }

    /// Payload bytes that still fit into the current segment.
    fn room(&self) -> u64 {
        let pos = self.pos();
        let mut page = pos / PAGE;
        let mut in_page = pos % PAGE;
        if PAGE - in_page <= HEADER_SIZE as u64 {
            page += 1;
            in_page = 0;
        }
        if page >= self.pages_per_segment {
            return 0;
        }
        let per_page = PAGE - HEADER_SIZE as u64;
        (PAGE - in_page - HEADER_SIZE as u64) + per_page * (self.pages_per_segment - page - 1)
    }

    /// Writes all records, then hands the bytes to the kernel.
    pub(crate) fn log(&mut self, recs: &[&[u8]]) -> Result<()> {
        self.buf.clear();
        for rec in recs {
            self.append(rec)?;
        }
        self.flush()
    }

    fn append(&mut self, rec: &[u8]) -> Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut flag = 0;
        if self.compress && !rec.is_empty() {
            scratch.resize(snap::raw::max_compress_len(rec.len()), 0);
            match self.enc.compress(rec, &mut scratch) {
                Ok(n) if n < rec.len() => {
                    scratch.truncate(n);
                    flag = SNAPPY_FLAG;
                }
                // Incompressible (or too large for snappy): stored as is.
                _ => {}
            }
        }
        let data = if flag == 0 { rec } else { scratch.as_slice() };
        let room = self.room();
        let res = if self.pos() > 0 && (room == 0 || data.len() as u64 > room) {
            self.roll().map(|_| ())
        } else {
            Ok(())
        };
        if res.is_ok() {
            append_fragments(&mut self.buf, self.off, data, flag);
        }
        self.scratch = scratch;
        res
    }

    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let res = (&*self.file).write_all(&self.buf);
        res.map_err(|e| WalError::io(segment_path(&self.dir, self.seg), e))?;
        self.off += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Pads and fsyncs the current segment, then starts the next one.
    /// Returns the new segment's index.
    pub(crate) fn roll(&mut self) -> Result<u32> {
        let in_page = (self.pos() % PAGE) as usize;
        if in_page != 0 {
            self.buf
                .extend_from_slice(ZEROS.get(..PAGE_SIZE - in_page).unwrap_or(&[]));
        }
        self.flush()?;
        self.sync()?;
        let next = self
            .seg
            .checked_add(1)
            .ok_or_else(|| WalError::InvalidOptions {
                reason: "segment index space exhausted".into(),
            })?;
        let file = create_segment(&self.dir, next)?;
        self.file = Arc::new(file);
        self.seg = next;
        self.off = 0;
        Ok(next)
    }

    /// fsyncs the current segment's data.
    pub(crate) fn sync(&self) -> Result<()> {
        self.stats
            .time(|| self.file.sync_data())
            .map_err(|e| WalError::io(segment_path(&self.dir, self.seg), e))
    }
}
