//! `cairn tsdb ...`: the promtool-style tools over data directories.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use cairn_storage::Aggregate;

use crate::units::parse_duration_ms;

/// `cairn tsdb create-blocks-from openmetrics INPUT OUTPUT`.
pub fn create_blocks(input: &Path, output: &Path, max_block_duration: &str) -> anyhow::Result<()> {
    let d = parse_duration_ms(max_block_duration)
        .map_err(|e| anyhow::anyhow!("--max-block-duration: {e}"))?;
    let blocks = cairn_tsdb::cli::create_blocks_from_openmetrics(input, output, d)
        .with_context(|| format!("importing {}", input.display()))?;
    for b in &blocks {
        println!("BLOCK ULID {b}");
    }
    Ok(())
}

/// `cairn tsdb dump DIR [--min-time] [--max-time] [--match]... [--resolution
/// R --aggregate A]`: each `--match` selector is dumped in turn.
pub fn dump(
    dir: &Path,
    min_time: i64,
    max_time: i64,
    matchers: &[String],
    resolution: Option<&str>,
    aggregate: &str,
) -> anyhow::Result<()> {
    let level = match resolution {
        None | Some("raw") => None,
        Some(r) => {
            let ms = parse_duration_ms(r).map_err(|e| anyhow::anyhow!("--resolution: {e}"))?;
            let a = match aggregate {
                "avg" => Aggregate::Avg,
                "count" => Aggregate::Count,
                "sum" => Aggregate::Sum,
                "min" => Aggregate::Min,
                "max" => Aggregate::Max,
                "counter" => Aggregate::Resets,
                other => anyhow::bail!(
                    "--aggregate {other:?} is not one of avg, count, sum, min, max, counter"
                ),
            };
            Some((ms, a))
        }
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if matchers.is_empty() {
        cairn_tsdb::cli::dump(dir, min_time, max_time, &[], level, &mut out)
            .with_context(|| format!("dumping {}", dir.display()))?;
    }
    for m in matchers {
        for set in
            cairn_api::parse_selector(m).map_err(|e| anyhow::anyhow!("--match {m:?}: {e}"))?
        {
            cairn_tsdb::cli::dump(dir, min_time, max_time, &set, level, &mut out)
                .with_context(|| format!("dumping {}", dir.display()))?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `cairn tsdb downsample DIR`.
pub fn downsample(dir: &Path) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    cairn_tsdb::cli::downsample(dir, &mut out)
        .with_context(|| format!("downsampling {}", dir.display()))?;
    out.flush()?;
    Ok(())
}

/// `cairn tsdb compact [--chunk-encoding E] [--max-block-duration D]
/// [--downsample B] DIR`.
pub fn compact(
    dir: &Path,
    encoding: &str,
    max_block_duration: Option<&str>,
    downsample: bool,
) -> anyhow::Result<()> {
    let encoding = encoding
        .parse()
        .map_err(|e| anyhow::anyhow!("--chunk-encoding: {e}"))?;
    let max_block_duration = max_block_duration
        .map(|d| parse_duration_ms(d).map_err(|e| anyhow::anyhow!("--max-block-duration: {e}")))
        .transpose()?;
    let opts = cairn_tsdb::cli::CompactOptions {
        encoding,
        max_block_duration,
        downsample,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    cairn_tsdb::cli::compact_with(dir, &opts, &mut out)
        .with_context(|| format!("compacting {}", dir.display()))?;
    out.flush()?;
    Ok(())
}

/// `cairn tsdb export [--chunk-encoding E] SRC DST`.
pub fn export(src: &Path, dst: &Path, encoding: &str) -> anyhow::Result<()> {
    let opts = cairn_tsdb::cli::ExportOptions {
        encoding: encoding
            .parse()
            .map_err(|e| anyhow::anyhow!("--chunk-encoding: {e}"))?,
        ..cairn_tsdb::cli::ExportOptions::default()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    cairn_tsdb::cli::export(src, dst, &opts, &mut out)
        .with_context(|| format!("exporting {} to {}", src.display(), dst.display()))?;
    out.flush()?;
    Ok(())
}

/// `cairn tsdb analyze DIR [BLOCK]`.
pub fn analyze(dir: &Path, block: Option<&str>, _limit: usize) -> anyhow::Result<()> {
    let id = block
        .map(|b| {
            b.parse::<cairn_tsdb::Ulid>()
                .map_err(|e| anyhow::anyhow!("block id {b:?}: {e}"))
        })
        .transpose()?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    cairn_tsdb::cli::analyze(dir, id, &mut out)
        .with_context(|| format!("analyzing {}", dir.display()))?;
    out.flush()?;
    Ok(())
}
