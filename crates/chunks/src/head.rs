//! Writes (and reads back) the head's chunk files in `chunks_head/`.
//!
//! Full head chunks are written here so memory holds only the open chunk of
//! each series. Files are numbered `000001`, `000002`, ... without gaps; a
//! [`HeadChunkRef`] is `(file number << 32) | record offset`.
//!
//! Durability: records are written straight to the file (no user-space
//! buffer), so they survive a process crash as soon as `write` returns; they
//! reach stable storage when the file is finalized (cut, [`HeadChunkWriter::sync`],
//! [`HeadChunkWriter::close`]). The open file is preallocated (sparse) to the
//! maximum file size and mapped at that length, so reads of freshly written
//! records need no remap; a crash leaves zero padding, which readers treat as
//! end of file. Finalizing shrinks the file to its written length.
//!
//! [`HeadChunkWriter::open`] never appends to files of a previous run: the
//! first write after opening starts a new file.

use crate::files::{header, map_file, segment_path, sync_dir};
use crate::head_reader::{
    chunk_in, iterate_file, open_files, HeadChunkMeta, MappedFile, MAX_RECORD_META,
};
use crate::{ChunksError, HeadChunkRef, Result, FORMAT_V1, MAGIC_HEAD_CHUNKS, SEGMENT_HEADER_SIZE};
use cairn_codec::{crc32c, varint};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prometheus's head chunk file size limit: 128 MiB.
pub const MAX_HEAD_CHUNK_FILE_SIZE: u64 = 128 * 1024 * 1024;

/// Tuning of [`HeadChunkWriter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadChunkOptions {
    /// A new file is cut when a record would push the open one past this.
    pub max_file_size: u64,
}

impl Default for HeadChunkOptions {
    fn default() -> Self {
        Self {
            max_file_size: MAX_HEAD_CHUNK_FILE_SIZE,
        }
    }
}

struct OpenFile {
    seq: u32,
    path: PathBuf,
    file: File,
    size: u64,
}

/// Appends chunks to `chunks_head/`, reads them back, iterates them on
/// startup and deletes old files.
///
/// Writes and deletions take `&mut self`; reads borrow `&self` and return
/// slices of the mapped files, so the borrow checker keeps a file mapped
/// while any slice of it lives. Wrap in a lock to share between threads.
pub struct HeadChunkWriter {
    dir: PathBuf,
    opts: HeadChunkOptions,
    files: BTreeMap<u32, MappedFile>,
    /// Largest maxt per file, known once the file was iterated or written.
    maxt: BTreeMap<u32, i64>,
    cur: Option<OpenFile>,
    /// Highest file number ever used here; new files continue after it even
    /// when truncation removed every file, so stale refs never alias.
    last_seq: u32,
    buf: Vec<u8>,
}

impl HeadChunkWriter {
    /// Opens (creating if needed) `dir` with default options.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with_options(dir, HeadChunkOptions::default())
    }

    /// Opens `dir`: removes an empty last file (a crash right after creating
    /// it), checks that file numbers have no gaps and that headers are valid,
    /// and maps every file.
    pub fn open_with_options(dir: &Path, opts: HeadChunkOptions) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| ChunksError::io(dir, e))?;
        let files = open_files(dir, true)?;
        let last_seq = files.keys().next_back().copied().unwrap_or(0);
        Ok(Self {
            dir: dir.to_path_buf(),
            opts: HeadChunkOptions {
                max_file_size: opts.max_file_size.clamp(
                    SEGMENT_HEADER_SIZE as u64 + MAX_RECORD_META as u64,
                    u64::from(u32::MAX),
                ),
            },
            files,
            maxt: BTreeMap::new(),
            cur: None,
            last_seq,
            buf: Vec::with_capacity(256),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// File numbers present, ascending.
    pub fn file_numbers(&self) -> Vec<u32> {
        self.files.keys().copied().collect()
    }

    /// Every file as (number, mapped length in bytes, newest chunk maxt
    /// known for it: from writes, [`HeadChunkWriter::iterate_all`] or
    /// [`HeadChunkWriter::set_file_maxt`]; `i64::MIN` when none), ascending.
    /// Finalize the open file first ([`HeadChunkWriter::finish_file`]) for
    /// lengths that stay what they are on disk.
    pub fn file_listing(&self) -> Vec<(u32, u64, i64)> {
        self.files
            .iter()
            .map(|(&seq, mf)| {
                let maxt = self.maxt.get(&seq).copied().unwrap_or(i64::MIN);
                (seq, mf.map.len() as u64, maxt)
            })
            .collect()
    }

    /// Records the newest chunk maxt of file `seq` without reading it (its
    /// chunks are known from elsewhere, e.g. a head snapshot), so that
    /// [`HeadChunkWriter::truncate`] can delete it in time.
    pub fn set_file_maxt(&mut self, seq: u32, maxt: i64) {
        if self.files.contains_key(&seq) {
            let m = self.maxt.entry(seq).or_insert(i64::MIN);
            *m = (*m).max(maxt);
        }
    }

    /// Finalizes the open file (shrinks it to its written length and
    /// fsyncs it); the next write starts a new file.
    pub fn finish_file(&mut self) -> Result<()> {
        self.finalize_current()
    }

    /// Appends one chunk; `[mint, maxt]` is its inclusive time range.
    pub fn write(
        &mut self,
        series_ref: u64,
        mint: i64,
        maxt: i64,
        encoding: u8,
        data: &[u8],
    ) -> Result<HeadChunkRef> {
        let need = (data.len() + MAX_RECORD_META) as u64;
        if need + SEGMENT_HEADER_SIZE as u64 > self.opts.max_file_size {
            return Err(ChunksError::ChunkTooLarge {
                path: self.dir.clone(),
                len: data.len(),
            });
        }
        let cut = match &self.cur {
            None => true,
            Some(c) => c.size + need > self.opts.max_file_size,
        };
        if cut {
            self.cut_new_file()?;
        }
        self.buf.clear();
        self.buf.extend_from_slice(&series_ref.to_be_bytes());
        self.buf.extend_from_slice(&mint.to_be_bytes());
        self.buf.extend_from_slice(&maxt.to_be_bytes());
        self.buf.push(encoding);
        varint::put_uvarint(&mut self.buf, data.len() as u64);
        self.buf.extend_from_slice(data);
        let crc = crc32c(&self.buf);
        self.buf.extend_from_slice(&crc.to_be_bytes());
        let Some(cur) = self.cur.as_mut() else {
            return Err(ChunksError::BadRef {
                chunk_ref: 0,
                reason: "no open head chunk file".into(),
            });
        };
        let r = (u64::from(cur.seq) << 32) | cur.size;
        cur.file
            .write_all(&self.buf)
            .map_err(|e| ChunksError::io(&cur.path, e))?;
        cur.size += self.buf.len() as u64;
        let m = self.maxt.entry(cur.seq).or_insert(i64::MIN);
        *m = (*m).max(maxt);
        Ok(r)
    }

    /// The encoding byte and data of the chunk at `r`, CRC-checked.
    pub fn chunk(&self, r: HeadChunkRef) -> Result<(u8, &[u8])> {
        let limit = self.cur.as_ref().map(|c| (c.seq, c.size as usize));
        chunk_in(&self.files, limit, r)
    }

    /// Hints the CPU to start loading the chunk at `r` (see
    /// [`HeadChunkWriter::chunk`]), so reads of several chunks overlap.
    pub fn prefetch(&self, r: HeadChunkRef) {
        crate::head_reader::prefetch_in(&self.files, r);
    }

    /// Calls `f` for every chunk on disk, files ascending, records in file
    /// order; records each file's maxt for [`HeadChunkWriter::truncate`].
    /// Stops at the first error; on [`ChunksError::Corruption`] the caller may
    /// [`HeadChunkWriter::delete_from`] the damaged file onwards.
    pub fn iterate_all(&mut self, mut f: impl FnMut(HeadChunkMeta) -> Result<()>) -> Result<()> {
        let limit = self.cur.as_ref().map(|c| (c.seq, c.size as usize));
        for (&seq, mf) in &self.files {
            let valid = match limit {
                Some((s, n)) if s == seq => n.min(mf.map.len()),
                _ => mf.map.len(),
            };
            let b = mf.map.get(..valid).unwrap_or(&[]);
            let m = iterate_file(&mf.path, seq, b, &mut f)?;
            self.maxt.insert(seq, m);
        }
        Ok(())
    }

    /// Deletes whole files, oldest first, whose chunks all end before `mint`
    /// (maxt < mint), stopping at the first file that does not qualify and
    /// never deleting the open file; the open file is finalized if it holds
    /// chunks, so it can go in a later truncation. Returns the deleted file
    /// numbers.
    pub fn truncate(&mut self, mint: i64) -> Result<Vec<u32>> {
        let cur_seq = self.cur.as_ref().map(|c| c.seq);
        let mut doomed = Vec::new();
        let seqs: Vec<u32> = self.files.keys().copied().collect();
        for seq in seqs {
            if Some(seq) == cur_seq {
                break;
            }
            let maxt = match self.maxt.get(&seq) {
                Some(m) => *m,
                None => {
                    let Some(mf) = self.files.get(&seq) else {
                        break;
                    };
                    let m = iterate_file(&mf.path, seq, &mf.map, &mut |_| Ok(()))?;
                    self.maxt.insert(seq, m);
                    m
                }
            };
            if maxt >= mint {
                break;
            }
            doomed.push(seq);
        }
        if self
            .cur
            .as_ref()
            .is_some_and(|c| c.size > SEGMENT_HEADER_SIZE as u64)
        {
            self.finalize_current()?;
        }
        self.delete(&doomed)?;
        Ok(doomed)
    }

    /// Deletes file `from` and every later one (recovery after corruption).
    pub fn delete_from(&mut self, from: u32) -> Result<Vec<u32>> {
        if self.cur.as_ref().is_some_and(|c| c.seq >= from) {
            self.finalize_current()?;
        }
        let doomed: Vec<u32> = self.files.range(from..).map(|(k, _)| *k).collect();
        self.delete(&doomed)?;
        Ok(doomed)
    }

    /// Finalizes the open file (if any) and starts a new, empty one.
    pub fn cut_new_file(&mut self) -> Result<()> {
        self.finalize_current()?;
        let seq = self
            .last_seq
            .checked_add(1)
            .ok_or_else(|| ChunksError::BadRef {
                chunk_ref: 0,
                reason: "head chunk file numbers exhausted".into(),
            })?;
        let path = segment_path(&self.dir, seq);
        let mut file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| ChunksError::io(&path, e))?;
        file.write_all(&header(MAGIC_HEAD_CHUNKS, FORMAT_V1))
            .map_err(|e| ChunksError::io(&path, e))?;
        // Sparse preallocation: the mapping below covers the whole file.
        file.set_len(self.opts.max_file_size)
            .map_err(|e| ChunksError::io(&path, e))?;
        sync_dir(&self.dir)?;
        let map = map_file(&path, Some(self.opts.max_file_size as usize))?;
        self.files.insert(
            seq,
            MappedFile {
                path: path.clone(),
                map,
            },
        );
        self.maxt.insert(seq, i64::MIN);
        self.last_seq = seq;
        self.cur = Some(OpenFile {
            seq,
            path,
            file,
            size: SEGMENT_HEADER_SIZE as u64,
        });
        Ok(())
    }

    /// fsyncs the open file.
    pub fn sync(&mut self) -> Result<()> {
        if let Some(c) = &self.cur {
            c.file.sync_all().map_err(|e| ChunksError::io(&c.path, e))?;
        }
        Ok(())
    }

    /// Finalizes the open file and releases everything.
    pub fn close(mut self) -> Result<()> {
        self.finalize_current()
    }

    /// Shrinks the open file to its written length, fsyncs it and remaps it
    /// at that length.
    fn finalize_current(&mut self) -> Result<()> {
        let Some(cur) = self.cur.take() else {
            return Ok(());
        };
        // Unmap before shrinking so no mapping outlives the file's end.
        self.files.remove(&cur.seq);
        cur.file
            .set_len(cur.size)
            .map_err(|e| ChunksError::io(&cur.path, e))?;
        cur.file
            .sync_all()
            .map_err(|e| ChunksError::io(&cur.path, e))?;
        let map = map_file(&cur.path, None)?;
        self.files.insert(
            cur.seq,
            MappedFile {
                path: cur.path,
                map,
            },
        );
        Ok(())
    }

    fn delete(&mut self, seqs: &[u32]) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        for seq in seqs {
            self.maxt.remove(seq);
            if let Some(mf) = self.files.remove(seq) {
                drop(mf.map);
                std::fs::remove_file(&mf.path).map_err(|e| ChunksError::io(&mf.path, e))?;
            }
        }
        sync_dir(&self.dir)
    }
}

impl Drop for HeadChunkWriter {
    fn drop(&mut self) {
        if let Err(e) = self.finalize_current() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "finalizing head chunk file on drop");
        }
    }
}
