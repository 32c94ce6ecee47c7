//! Naming and listing of segment files and checkpoint directories.
//!
//! Segments are named by their index as eight zero-padded decimal digits
//! (`00000000`, `00000001`, ...). Checkpoints are directories named
//! `checkpoint.NNNNNNNN` where `NNNNNNNN` is the last segment they cover;
//! `checkpoint.NNNNNNNN.tmp` is one being written. Any other entry in the
//! directory is ignored.

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::error::{Result, WalError};
use crate::fragment::PAGE_SIZE;
use crate::reader::{ReadError, SegmentReader};

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

/// The last of `segs` in `dir` that is not empty, with its length.
pub(crate) fn last_nonempty(dir: &Path, segs: &[u32]) -> Result<Option<(u32, u64)>> {
    for &s in segs.iter().rev() {
        let p = segment_path(dir, s);
        let len = fs::metadata(&p).map_err(|e| WalError::io(&p, e))?.len();
        if len > 0 {
            return Ok(Some((s, len)));
        }
    }
    Ok(None)
}

/// A record reader over segment `seg` of `dir`, and the segment's path.
pub(crate) fn open_reader(
    dir: &Path,
    seg: u32,
) -> Result<(PathBuf, SegmentReader<BufReader<File>>)> {
    let path = segment_path(dir, seg);
    let f = File::open(&path).map_err(|e| WalError::io(&path, e))?;
    Ok((
        path,
        SegmentReader::new(BufReader::with_capacity(PAGE_SIZE, f)),
    ))
}

/// Sorts a failure reading segment `seg` (file `path`) of `dir`: damage
/// comes back as `Ok((offset, expected, found))` for the caller to judge (a
/// damaged tail may be dropped), I/O errors and unsupported features as
/// their [`WalError`].
pub(crate) fn damage_or_error(
    e: ReadError,
    dir: &Path,
    seg: u32,
    path: &Path,
) -> Result<(u64, String, String)> {
    match e {
        ReadError::Corrupt {
            offset,
            expected,
            found,
        } => Ok((offset, expected, found)),
        ReadError::Unsupported { offset, what } => Err(WalError::Unsupported {
            dir: dir.to_path_buf(),
            segment: seg,
            offset,
            what,
        }),
        ReadError::Io(e) => Err(WalError::io(path, e)),
    }
}
