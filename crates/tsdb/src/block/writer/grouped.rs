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
//!    in label order, its metric name and a hash of its labels ([`Plan`]),
//!    and, per metric, the values of its labels that take few values;
//! 2. for each metric name in order, the series of that name are selected
//!    and their chunks written; their index entries are kept by ordinal.
//!    Where a metric has a label of 2 to [`SPLIT_MAX_VALUES`] values (the
//!    fewest wins: node-exporter's `mode`, DCGM's `gpu`), its series are
//!    selected one value at a time (series without the label first, then
//!    values in order), so that a query filtering on it
//!    (`node_cpu_seconds_total{mode="idle"}`) finds its chunks together
//!    too. Within a selection, series come in label order;
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

/// A label with at most this many values within one metric splits the
/// metric's chunks by value.
pub const SPLIT_MAX_VALUES: usize = 16;

/// What the symbol pass learns for the grouped writing; given up (`None`
/// from [`Plan::finish`]) past [`GROUP_MAX_SERIES`] series.
#[derive(Default)]
pub(crate) struct Plan {
    /// Metric name → its series. Series without a name are under "".
    names: BTreeMap<String, Metric>,
    /// Hash of each series' labels, by ordinal.
    hashes: Vec<u64>,
    over: bool,
}

/// One metric's series and its labels of few values.
#[derive(Default)]
struct Metric {
    /// Ordinals of its series, ascending.
    ords: Vec<u32>,
    /// Label name → its values so far and, per series of the metric, the
    /// index of its value + 1 (0: the series lacks the label); `None` once
    /// the label has more than [`SPLIT_MAX_VALUES`] values.
    labels: BTreeMap<String, Option<Track>>,
}

/// A label's values within one metric (at most [`SPLIT_MAX_VALUES`]) and,
/// per series of the metric, its value's index + 1 (0: absent).
type Track = (Vec<String>, Vec<u8>);

impl Metric {
    fn add(&mut self, ord: u32, l: &Labels) {
        let k = self.ords.len();
        self.ords.push(ord);
        for x in l.iter() {
            if x.name == "__name__" {
                continue;
            }
            if !self.labels.contains_key(x.name) {
                // Series before this one lack the label.
                self.labels
                    .insert(x.name.to_owned(), Some((Vec::new(), vec![0; k])));
            }
            let Some(slot) = self.labels.get_mut(x.name) else {
                continue;
            };
            let Some((values, idx)) = slot.as_mut() else {
                continue;
            };
            let i = match values.iter().position(|v| v == x.value) {
                Some(i) => i,
                None if values.len() < SPLIT_MAX_VALUES => {
                    values.push(x.value.to_owned());
                    values.len() - 1
                }
                None => {
                    *slot = None;
                    continue;
                }
            };
            idx.push(i as u8 + 1);
        }
        // Tracked labels this series lacks.
        for (_, idx) in self.labels.values_mut().flatten() {
            if idx.len() == k {
                idx.push(0);
            }
        }
    }

    /// The selections writing this metric's chunks, in order: each with
    /// its extra matcher (none: every series of the metric) and the
    /// ordinals it yields, ascending.
    fn parts(&self) -> Vec<(Option<Matcher>, Vec<u32>)> {
        let split = self
            .labels
            .iter()
            .filter_map(|(n, t)| t.as_ref().map(|(v, idx)| (n, v, idx)))
            .filter(|(_, v, _)| v.len() >= 2)
            .min_by_key(|(_, v, _)| v.len());
        let Some((name, values, idx)) = split else {
            return vec![(None, self.ords.clone())];
        };
        // Values in byte order; code 0 (label absent) first.
        let mut order: Vec<(u8, &str)> = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u8 + 1, v.as_str()))
            .collect();
        order.sort_by(|a, b| a.1.cmp(b.1));
        order.insert(0, (0, ""));
        order
            .into_iter()
            .map(|(code, v)| {
                let ords: Vec<u32> = self
                    .ords
                    .iter()
                    .zip(idx)
                    .filter(|(_, c)| **c == code)
                    .map(|(o, _)| *o)
                    .collect();
                (Some(Matcher::equal(name, v)), ords)
            })
            .filter(|(_, ords)| !ords.is_empty())
            .collect()
    }
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
        if !self.names.contains_key(name) {
            self.names.insert(name.to_owned(), Metric::default());
        }
        if let Some(m) = self.names.get_mut(name) {
            m.add(ord, l);
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
    for (name, metric) in &plan.names {
        for (extra, ords) in metric.parts() {
            let mut ms = vec![if name.is_empty() {
                match_all()
            } else {
                Matcher::equal("__name__", name)
            }];
            ms.extend(extra);
            let mut k = 0usize;
            for s in q.select(hints, &ms)? {
                let s = s?;
                // Series without a name are picked out of all of them.
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
