//! Chunks grouped by metric name ([`BlockWriteOptions::group_by_name`]).
//!
//! The index lists series in label order, and Prometheus's writer puts
//! their chunks in the same order. Where labels sort before `__name__`
//! (DCGM's `Hostname` and `UUID`), one metric's chunks are then spread
//! through the whole file, one between every 26 of other metrics, and a
//! reader fetching by byte range (a bucket) fetches nearly everything to
//! answer one metric. Chunk references are offsets, and no reader depends
//! on their order, so this writer puts each metric's chunks together:
//!
//! 1. the symbol pass (in `writer.rs`) also records each series' ordinal
//!    in label order, its metric name and a hash of its labels ([`Plan`]);
//! 2. for each metric name in order, the series of that name (label
//!    order) are selected and their chunks written; their index entries
//!    are kept by ordinal;
//! 3. a last pass over every series in label order writes the index.
//!
//! The source must answer the same series in every pass; a difference
//! (the hash or the count of a name's series) is an error, never a wrong
//! block.
//!
//! [`BlockWriteOptions::group_by_name`]: super::BlockWriteOptions::group_by_name

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::Path;

use cairn_index::{ChunkMeta, IndexWriter};
use cairn_model::{Labels, Matcher};
use cairn_storage::{Querier, SelectHints};

use super::{match_all, SeriesWriter, GROUP_MAX_SERIES};
use crate::{Result, TsdbError};

/// What the symbol pass learns for the grouped writing; given up (`None`
/// from [`Plan::finish`]) past [`GROUP_MAX_SERIES`] series.
#[derive(Default)]
pub(crate) struct Plan {
    /// Metric name → ordinals of its series, ascending. Series without a
    /// name are under "".
    names: BTreeMap<String, Vec<u32>>,
    /// Hash of each series' labels, by ordinal.
    hashes: Vec<u64>,
    over: bool,
}

fn hash(l: &Labels) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    l.hash(&mut h);
    h.finish()
}

impl Plan {
    /// Records the next series in label order.
    pub(crate) fn add(&mut self, l: &Labels) {
        if self.over {
            return;
        }
        if self.hashes.len() >= GROUP_MAX_SERIES {
            self.over = true;
            self.names.clear();
            self.hashes = Vec::new();
            return;
        }
        let ord = self.hashes.len() as u32;
        self.hashes.push(hash(l));
        let name = l.get("__name__").unwrap_or("");
        match self.names.get_mut(name) {
            Some(v) => v.push(ord),
            None => {
                self.names.insert(name.to_owned(), vec![ord]);
            }
        }
    }

    /// The plan, unless the block has too many series for it.
    pub(crate) fn finish(self) -> Option<Self> {
        (!self.over).then_some(self)
    }
}

fn changed(what: &str) -> TsdbError {
    TsdbError::InvalidArgument(format!(
        "the source's series changed between the block writer's passes ({what})"
    ))
}

/// Steps 2 and 3 of the module docs.
pub(super) fn write(
    q: &dyn Querier,
    hints: &SelectHints,
    plan: &Plan,
    w: &mut SeriesWriter<'_, '_>,
    ix: &mut IndexWriter,
    index_path: &Path,
) -> Result<()> {
    let n = plan.hashes.len();
    let mut metas: Vec<ChunkMeta> = Vec::new();
    // (start, len) in `metas` by ordinal; len 0: no chunks.
    let mut spans: Vec<(u32, u32)> = vec![(0, 0); n];
    for (name, ords) in &plan.names {
        let mut k = 0usize;
        let all = [match_all()];
        let named = [Matcher::equal("__name__", name)];
        // Series without a name are picked out of all of them.
        let set = q.select(hints, if name.is_empty() { &all } else { &named })?;
        for s in set {
            let s = s?;
            if name.is_empty() && s.labels().get("__name__").is_some() {
                continue;
            }
            let ord = *ords.get(k).ok_or_else(|| changed(name))?;
            if plan.hashes.get(ord as usize) != Some(&hash(s.labels())) {
                return Err(changed(&s.labels().to_string()));
            }
            k += 1;
            if let Some(m) = w.write(&*s)? {
                if let Some(sp) = spans.get_mut(ord as usize) {
                    *sp = (metas.len() as u32, m.len() as u32);
                }
                metas.extend(m);
            }
        }
        if k != ords.len() {
            return Err(changed(name));
        }
    }
    let mut k = 0usize;
    for s in q.select(hints, &[match_all()])? {
        let s = s?;
        let labels = s.labels();
        if plan.hashes.get(k) != Some(&hash(labels)) {
            return Err(changed(&labels.to_string()));
        }
        let (a, len) = spans.get(k).copied().unwrap_or((0, 0));
        k += 1;
        if len == 0 {
            continue;
        }
        let m = metas
            .get(a as usize..(a + len) as usize)
            .ok_or_else(|| changed(&labels.to_string()))?;
        ix.add_series(labels, m).map_err(|e| TsdbError::Index {
            path: index_path.to_path_buf(),
            source: Box::new(e),
        })?;
        w.count_series();
    }
    if k != n {
        return Err(changed("series count"));
    }
    Ok(())
}
