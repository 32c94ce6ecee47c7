//! `dump`: every sample of a data directory, one line each, as
//! `promtool tsdb dump` prints them: `{labels} value timestamp_ms`, series
//! in label order (merged across blocks and the head), values in Go's `%g`;
//! native histograms in their display form (`{count:N, sum:S, buckets}`),
//! as promtool since v2.44 prints them.

use std::io::Write;
use std::path::Path;

use cairn_model::Matcher;
use cairn_storage::{Aggregate, Queryable, SelectHints, ValueType};

use crate::block::writer::match_all;
use crate::{Db, DbOptions, Result, TsdbError};
use cairn_model::format_go_g;

/// Options for opening a directory read-mostly for the CLI: no background
/// work, no retention.
pub(crate) fn cli_db_options() -> DbOptions {
    DbOptions {
        retention_time: 0,
        retention_5m: 0,
        retention_1h: 0,
        maintenance_interval: None,
        ..DbOptions::default()
    }
}

/// Prints the samples in `[mint, maxt]` of the series matching `matchers`
/// (every series when empty) to `out`: raw data (blocks and head), or with
/// `level`, the chosen aggregate of that resolution's blocks only.
pub fn dump(
    dir: &Path,
    mint: i64,
    maxt: i64,
    matchers: &[Matcher],
    level: Option<(i64, Aggregate)>,
    out: &mut dyn Write,
) -> Result<()> {
    let db = Db::open(dir, cli_db_options())?;
    let q = match level {
        Some((res, _)) if res > 0 => db.level_querier(res, mint, maxt),
        _ => db.querier(mint, maxt)?,
    };
    let all = [match_all()];
    let ms = if matchers.is_empty() {
        &all[..]
    } else {
        matchers
    };
    let werr = |e| TsdbError::Io {
        op: "write",
        path: "<dump output>".into(),
        source: e,
    };
    for s in q.select(
        &SelectHints {
            start: mint,
            end: maxt,
            aggregate: level.map(|l| l.1).unwrap_or_default(),
            ..SelectHints::default()
        },
        ms,
    )? {
        let s = s?;
        let labels = s.labels().to_string();
        let mut it = s.iter();
        loop {
            match it.next() {
                ValueType::Float => {
                    let (t, v) = it.at();
                    writeln!(out, "{labels} {} {t}", format_go_g(v)).map_err(werr)?;
                }
                // As promtool (v2.44 and later) prints them: the
                // histogram's display form.
                ValueType::Histogram | ValueType::FloatHistogram => {
                    if let Some((t, h)) = it.at_float_histogram() {
                        writeln!(out, "{labels} {} {t}", h.display_string()).map_err(werr)?;
                    }
                }
                ValueType::None => break,
            }
        }
        if let Some(e) = it.err() {
            return Err(TsdbError::InvalidArgument(format!("reading {labels}: {e}")));
        }
    }
    Ok(())
}
