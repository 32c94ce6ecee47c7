//! Small filesystem helpers: durable writes and directory syncs.
//!
//! A file counts as written only after its bytes and its directory entry
//! are both synced, so every writer here goes through these helpers.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::{Result, TsdbError};

/// Fsyncs a directory so that entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let f = File::open(dir).map_err(TsdbError::io("open dir", dir))?;
    f.sync_all().map_err(TsdbError::io("fsync dir", dir))
}

/// Writes `bytes` to `path` through `path.tmp`: write, fsync, rename, fsync dir.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp).map_err(TsdbError::io("create", &tmp))?;
        f.write_all(bytes).map_err(TsdbError::io("write", &tmp))?;
        f.sync_all().map_err(TsdbError::io("fsync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(TsdbError::io("rename", &tmp))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Total size in bytes of the regular files under `dir` (recursively).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = fs::read_dir(dir) else { return 0 };
    for e in rd.flatten() {
        match e.metadata() {
            Ok(m) if m.is_dir() => total += dir_size(&e.path()),
            Ok(m) => total += m.len(),
            Err(_) => {}
        }
    }
    total
}
