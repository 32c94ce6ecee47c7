//! Backfilling: OpenMetrics text → blocks, like
//! `promtool tsdb create-blocks-from openmetrics`.
//!
//! Every sample needs a timestamp. Samples are grouped into windows of the
//! block duration aligned to multiples of it (the duration is rounded down
//! to one of 2h·3^k, never below 2h); each window with data becomes one
//! level-1 block whose meta.json records the samples' own bounds
//! `[first, last + 1)`. Chunks are cut as promtool's block writer cuts them:
//! it appends each window through a head whose chunk range is twice the
//! block duration (so that the head accepts the whole window), and the head
//! cuts on its rate estimate and at multiples of that range (see
//! [`cairn_head::cut`]). Within a window a series must be in time order: an
//! older sample is an error, a repeated timestamp is dropped when its value
//! is identical and an error otherwise (what Prometheus's appender does).

use std::collections::BTreeMap;
use std::path::Path;

use cairn_model::{Labels, Sample};
use cairn_storage::{MemStorage, Queryable};
use ulid::Ulid;

use super::openmetrics::{OmEntry, OmParser};
use crate::block::{write_block, BlockWriteOptions};
use crate::plan::{align_down, exponential_ranges};
use crate::{Result, TsdbError};

/// Prometheus's default (and minimum) block duration: 2h in ms.
pub const DEFAULT_BLOCK_DURATION: i64 = 2 * 3_600_000;

/// The block duration promtool would use for a requested maximum.
pub fn compatible_block_duration(max: i64) -> i64 {
    if max <= DEFAULT_BLOCK_DURATION {
        return DEFAULT_BLOCK_DURATION;
    }
    exponential_ranges(DEFAULT_BLOCK_DURATION, 10, 3)
        .into_iter()
        .filter(|r| *r <= max)
        .max()
        .unwrap_or(DEFAULT_BLOCK_DURATION)
}

/// Parses the OpenMetrics file `input` and writes its samples as blocks
/// under `out_dir` (created if missing). Returns the new blocks in time order.
pub fn create_blocks_from_openmetrics(
    input: &Path,
    out_dir: &Path,
    block_duration: i64,
) -> Result<Vec<Ulid>> {
    let text = std::fs::read_to_string(input).map_err(TsdbError::io("read", input))?;
    create_blocks_from_openmetrics_text(&text, out_dir, block_duration)
}

/// [`create_blocks_from_openmetrics`] over text already in memory.
pub fn create_blocks_from_openmetrics_text(
    text: &str,
    out_dir: &Path,
    block_duration: i64,
) -> Result<Vec<Ulid>> {
    let bd = compatible_block_duration(block_duration);
    let mut windows: BTreeMap<i64, BTreeMap<Labels, Vec<Sample>>> = BTreeMap::new();
    for (n, e) in OmParser::new(text).enumerate() {
        let OmEntry::Sample(s) = e? else { continue };
        let Some(t) = s.t else {
            return Err(TsdbError::Parse {
                line: n + 1,
                msg: format!("expected timestamp for series {}, got none", s.labels),
            });
        };
        let name = s.labels.clone();
        let series = windows
            .entry(align_down(t, bd))
            .or_default()
            .entry(s.labels)
            .or_default();
        match series.last() {
            Some(last) if t < last.t => {
                return Err(TsdbError::OutOfOrder(format!(
                    "sample at {t} after {} in series {name}",
                    last.t
                )))
            }
            Some(last) if t == last.t => {
                if last.v.to_bits() != s.v.to_bits() {
                    return Err(TsdbError::InvalidArgument(format!(
                        "duplicate sample for timestamp {t} with a different value"
                    )));
                }
            }
            _ => series.push(Sample::new(t, s.v)),
        }
    }
    std::fs::create_dir_all(out_dir).map_err(TsdbError::io("create dir", out_dir))?;
    let mut out = Vec::new();
    for (start, series) in windows {
        let mem = MemStorage::new();
        for (l, s) in series {
            mem.add(l, s);
        }
        let end = start.saturating_add(bd);
        let q = mem.querier(start, end - 1)?;
        let opts = BlockWriteOptions {
            tight_bounds: true,
            head_chunk_range: Some(bd.saturating_mul(2)),
            ..BlockWriteOptions::default()
        };
        if let Some(m) = write_block(out_dir, &*q, start, end, &opts)? {
            out.push(m.ulid);
        }
    }
    Ok(out)
}
