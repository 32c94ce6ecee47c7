//! `downsample`: the background downsampling run once over a stopped data
//! directory: every raw block gets its 5-minute block and every 5-minute
//! block its 1-hour block, whatever its span; then each level's blocks are
//! merged as the server merges them (ranges from the default retentions).

use std::io::Write;
use std::path::Path;

use crate::block::Block;
use crate::cli::analyze::resolution_name;
use crate::cli::dump::cli_db_options;
use crate::{Db, DbOptions, Result, TsdbError};

/// Downsamples every block of `dir` that has no downsampled counterpart
/// yet and prints one line per new block. Returns the number of blocks
/// written.
pub fn downsample(dir: &Path, out: &mut dyn Write) -> Result<usize> {
    let db = Db::open(
        dir,
        DbOptions {
            downsample: true,
            retention_5m: DbOptions::default().retention_5m,
            retention_1h: DbOptions::default().retention_1h,
            ..cli_db_options()
        },
    )?;
    let werr = |e| TsdbError::Io {
        op: "write",
        path: "<downsample output>".into(),
        source: e,
    };
    let start = std::time::Instant::now();
    let mut new = db.downsample_now(true)?;
    new.extend(db.compact_levels()?);
    // Blocks merged away are gone; report what is left of the new ones.
    new.retain(|u| dir.join(u.to_string()).exists());
    for u in &new {
        let b = Block::open(&dir.join(u.to_string()))?;
        let m = b.meta();
        writeln!(
            out,
            "BLOCK {u} resolution {} [{}, {}) series {} windows {} bytes {}",
            resolution_name(m.resolution()),
            m.min_time,
            m.max_time,
            m.stats.num_series,
            m.stats.num_samples,
            b.size()
        )
        .map_err(werr)?;
    }
    writeln!(
        out,
        "{} downsampled blocks written in {:.1}s",
        new.len(),
        start.elapsed().as_secs_f64()
    )
    .map_err(werr)?;
    Ok(new.len())
}
