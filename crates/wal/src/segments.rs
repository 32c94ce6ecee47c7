//! Naming and listing of segment files and checkpoint directories.
//!
//! Segments are named by their index as eight zero-padded decimal digits
//! (`00000000`, `00000001`, ...). Checkpoints are directories named
//! `checkpoint.NNNNNNNN` where `NNNNNNNN` is the last segment they cover;
//! `checkpoint.NNNNNNNN.tmp` is one being written. Any other entry in the
//! directory is ignored.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Result, WalError};

pub(crate) const CHECKPOINT_PREFIX: &str = "checkpoint.";
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// The file name of segment `i`.
pub fn segment_name(i: u32) -> String {
    format!("{i:08}")
}

/// The path of segment `i` in `dir`.
pub fn segment_path(dir: &Path, i: u32) -> PathBuf {
    dir.join(segment_name(i))
}

/// The directory name of the checkpoint covering segments up to `i`.
pub fn checkpoint_name(i: u32) -> String {
    format!("{CHECKPOINT_PREFIX}{i:08}")
}

fn parse_index(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// One directory listing: segment indexes and checkpoint indexes, both
/// ascending.
#[derive(Debug, Default, Clone)]
pub(crate) struct Listing {
    pub segments: Vec<u32>,
    pub checkpoints: Vec<u32>,
    pub tmp_checkpoints: Vec<PathBuf>,
}

pub(crate) fn list(dir: &Path) -> Result<Listing> {
    let mut out = Listing::default();
    let rd = fs::read_dir(dir).map_err(|e| WalError::io(dir, e))?;
    for ent in rd {
        let ent = ent.map_err(|e| WalError::io(dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(i) = parse_index(name) {
            out.segments.push(i);
        } else if let Some(rest) = name.strip_prefix(CHECKPOINT_PREFIX) {
            if rest.ends_with(TMP_SUFFIX) {
                out.tmp_checkpoints.push(ent.path());
            } else if let Some(i) = parse_index(rest) {
                out.checkpoints.push(i);
            }
        }
    }
    out.segments.sort_unstable();
    out.checkpoints.sort_unstable();
    Ok(out)
}

/// Checks that `segs` (ascending) has no holes.
pub(crate) fn check_consecutive(dir: &Path, segs: &[u32]) -> Result<()> {
    for w in segs.windows(2) {
        if let [a, b] = w {
            if a.checked_add(1) != Some(*b) {
                return Err(WalError::SegmentGap {
                    dir: dir.to_path_buf(),
                    expected: a.saturating_add(1),
                    found: *b,
                });
            }
        }
    }
    Ok(())
}

/// fsyncs a directory so entries created, renamed or removed in it persist.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let f = fs::File::open(dir).map_err(|e| WalError::io(dir, e))?;
    f.sync_all().map_err(|e| WalError::io(dir, e))
}
