//! Adapter over the head chunk files in `chunks_head/` (cairn-chunks).
//!
//! Full chunks leave memory: the head keeps only their reference and time
//! bounds and reads the bytes back when a query needs them: a copy, so no
//! borrow outlives the lock, or in place under the lock for a short decode. Everything the head needs from the chunk files
//! goes through [`DiskChunks`], so the backing crate is swapped in this one
//! file.
//!
//! The spill files of open-chunk prefixes ([`crate::spill`]) travel with
//! it, so that everything that reads a series' chunks has both.
//!
//! Contracts: [`DiskChunks::truncate`] drops only chunks whose max time is
//! before `mint`. The files are not fsynced per chunk: the WAL keeps every
//! sample the head still holds, so a chunk lost in a crash is rebuilt from
//! the WAL on replay; a damaged file found on open is deleted with every
//! later file, for the same reason.

use std::path::{Path, PathBuf};

use cairn_chunks::{ChunksError, HeadChunkWriter};
use parking_lot::RwLock;

use crate::error::{HeadError, Result};
use crate::spill::Spill;
use crate::xor::ENCODING_XOR;

/// A chunk found in the chunk files when the head opens.
#[derive(Debug, Clone)]
pub(crate) struct LoadedChunk {
    pub series: u64,
    /// XOR, or a native-histogram encoding (2, 3).
    pub encoding: u8,
    pub chunk_ref: u64,
    pub mint: i64,
    pub maxt: i64,
}

/// The head's store of full chunks.
pub(crate) struct DiskChunks {
    dir: PathBuf,
    w: RwLock<Option<HeadChunkWriter>>,
    spill: Option<Spill>,
}

impl std::fmt::Debug for DiskChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskChunks")
            .field("dir", &self.dir)
            .finish()
    }
}

fn file_seq(path: &Path) -> Option<u32> {
    path.file_name()?.to_str()?.parse().ok()
}

impl DiskChunks {
    fn err(&self, op: &'static str, e: ChunksError) -> HeadError {
        chunks_err(&self.dir, op, e)
    }

    /// Opens (creating) the store in `dir` and, with `scan`, lists the
    /// chunks it holds (reading every file); with `spill_dir`, open chunks
    /// spill their settled prefixes there. Without `scan` the caller knows
    /// the chunks from elsewhere (a head snapshot) and must tell each
    /// file's newest maxt with [`DiskChunks::set_file_maxt`].
    pub(crate) fn open(
        dir: &Path,
        spill_dir: Option<&Path>,
        scan: bool,
    ) -> Result<(Self, Vec<LoadedChunk>)> {
        let spill = spill_dir.map(Spill::open).transpose()?;
        let mut w = HeadChunkWriter::open(dir).map_err(|e| chunks_err(dir, "open", e))?;
        let mut loaded = Vec::new();
        let res = if !scan {
            Ok(())
        } else {
            w.iterate_all(|m| {
                if matches!(
                    m.encoding,
                    ENCODING_XOR
                        | cairn_codec::ENCODING_HISTOGRAM
                        | cairn_codec::ENCODING_FLOAT_HISTOGRAM
                ) {
                    loaded.push(LoadedChunk {
                        series: m.series_ref,
                        encoding: m.encoding,
                        chunk_ref: m.chunk_ref,
                        mint: m.min_time,
                        maxt: m.max_time,
                    });
                }
                Ok(())
            })
        };
        if let Err(e) = res {
            let bad = match &e {
                ChunksError::Corruption { path, .. } => file_seq(path),
                _ => None,
            };
            let Some(seq) = bad else {
                return Err(chunks_err(dir, "iterate", e));
            };
            tracing::warn!(error = %e, file = seq, "damaged head chunk file: dropping it and later ones; the WAL refills them");
            w.delete_from(seq)
                .map_err(|e| chunks_err(dir, "delete damaged files", e))?;
            loaded.retain(|c| (c.chunk_ref >> 32) < u64::from(seq));
        }
        Ok((
            Self {
                dir: dir.to_path_buf(),
                w: RwLock::new(Some(w)),
                spill,
            },
            loaded,
        ))
    }

    /// The spill files of open-chunk prefixes, if spilling is on.
    pub(crate) fn spill(&self) -> Option<&Spill> {
        self.spill.as_ref()
    }

    /// Stores a full XOR chunk of `series`; returns its reference.
    pub(crate) fn write(&self, series: u64, mint: i64, maxt: i64, data: &[u8]) -> Result<u64> {
        self.write_encoded(series, mint, maxt, ENCODING_XOR, data)
    }

    /// Stores a full chunk of `series` in `encoding` (XOR or a histogram
    /// encoding); returns its reference.
    pub(crate) fn write_encoded(
        &self,
        series: u64,
        mint: i64,
        maxt: i64,
        encoding: u8,
        data: &[u8],
    ) -> Result<u64> {
        let mut g = self.w.write();
        let w = g.as_mut().ok_or_else(|| closed(&self.dir))?;
        w.write(series, mint, maxt, encoding, data)
            .map_err(|e| self.err("write", e))
    }

    /// Runs `f` over the bytes of a stored chunk, in place (the store's
    /// read lock is held meanwhile, so `f` must be short).
    pub(crate) fn with_chunk<R>(
        &self,
        series: u64,
        chunk_ref: u64,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R> {
        let g = self.w.read();
        let w = g.as_ref().ok_or_else(|| closed(&self.dir))?;
        let (_, data) = w.chunk(chunk_ref).map_err(|e| HeadError::Chunks {
            op: "read",
            dir: self.dir.display().to_string(),
            source: format!("series {series}, chunk {chunk_ref:#x}: {e}").into(),
        })?;
        Ok(f(data))
    }

    /// Hints the CPU to start loading these stored chunks, which a query
    /// is about to decode one after another.
    pub(crate) fn prefetch(&self, refs: impl Iterator<Item = u64>) {
        if let Some(w) = self.w.read().as_ref() {
            refs.for_each(|r| w.prefetch(r));
        }
    }

    /// A copy of the bytes of a stored chunk.
    pub(crate) fn read(&self, series: u64, chunk_ref: u64) -> Result<Vec<u8>> {
        self.with_chunk(series, chunk_ref, <[u8]>::to_vec)
    }

    /// Deletes chunk files that only hold chunks ending before `mint`.
    pub(crate) fn truncate(&self, mint: i64) -> Result<()> {
        let mut g = self.w.write();
        let w = g.as_mut().ok_or_else(|| closed(&self.dir))?;
        w.truncate(mint).map_err(|e| self.err("truncate", e))?;
        Ok(())
    }

    /// fsyncs the chunk files written so far.
    pub(crate) fn sync(&self) -> Result<()> {
        let mut g = self.w.write();
        let w = g.as_mut().ok_or_else(|| closed(&self.dir))?;
        w.sync().map_err(|e| self.err("sync", e))
    }

    /// Every chunk file as (number, length, newest chunk maxt), after
    /// finalizing the open one so that the lengths stay as listed.
    pub(crate) fn finish_and_list(&self) -> Result<Vec<(u32, u64, i64)>> {
        let mut g = self.w.write();
        let w = g.as_mut().ok_or_else(|| closed(&self.dir))?;
        w.finish_file().map_err(|e| self.err("finish file", e))?;
        Ok(w.file_listing())
    }

    /// Every chunk file as (number, length), as opened.
    pub(crate) fn listing(&self) -> Result<Vec<(u32, u64)>> {
        let g = self.w.read();
        let w = g.as_ref().ok_or_else(|| closed(&self.dir))?;
        Ok(w.file_listing()
            .into_iter()
            .map(|(s, n, _)| (s, n))
            .collect())
    }

    /// See [`DiskChunks::open`] without `scan`.
    pub(crate) fn set_file_maxt(&self, seq: u32, maxt: i64) -> Result<()> {
        let mut g = self.w.write();
        let w = g.as_mut().ok_or_else(|| closed(&self.dir))?;
        w.set_file_maxt(seq, maxt);
        Ok(())
    }

    /// Deletes every chunk file (used when there is no WAL to tie chunks to series).
    pub(crate) fn clear(&self) -> Result<()> {
        let mut g = self.w.write();
        let w = g.as_mut().ok_or_else(|| closed(&self.dir))?;
        w.delete_from(0).map_err(|e| self.err("clear", e))?;
        Ok(())
    }
}

impl Drop for DiskChunks {
    fn drop(&mut self) {
        if let Some(w) = self.w.write().take() {
            if let Err(e) = w.close() {
                tracing::warn!(error = %e, dir = %self.dir.display(), "closing head chunk files");
            }
        }
    }
}

fn chunks_err(dir: &Path, op: &'static str, e: ChunksError) -> HeadError {
    HeadError::Chunks {
        op,
        dir: dir.display().to_string(),
        source: Box::new(e),
    }
}

fn closed(dir: &Path) -> HeadError {
    HeadError::Chunks {
        op: "use",
        dir: dir.display().to_string(),
        source: "head chunk files are closed".into(),
    }
}
