//! The head's inverted index: label name -> label value -> series refs.
//!
//! Series are added when created and removed when truncation drops them.
//! One lock guards the whole index; it is taken for writing only when a
//! series is created or removed, never on the sample append path.
//! [`HeadIndex`] implements the shared `IndexLike` trait, so matchers are
//! evaluated on the head exactly as on a block. Refs in the head follow
//! creation order, not label order: readers sort series by labels.

use std::collections::HashMap;

/// Label names and values hash with foldhash (randomly seeded, several
/// times faster than SipHash on short strings): every series created looks
/// up each of its labels here.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

use cairn_model::Labels;
use parking_lot::RwLock;
use roaring::RoaringTreemap;

use crate::index_adapter::{IndexError, IndexLike};

type IxResult<T> = Result<T, IndexError>;

#[derive(Debug, Default)]
struct Inner {
    by_name: FastMap<String, FastMap<String, RoaringTreemap>>,
    all: RoaringTreemap,
}

/// The head's in-memory postings.
#[derive(Debug, Default)]
pub struct HeadIndex {
    inner: RwLock<Inner>,
}

/// One entry of a top-N cardinality list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCount {
    pub name: String,
    pub count: u64,
}

/// Cardinality figures, as Prometheus's `/api/v1/status/tsdb` reports them;
/// each list is sorted by count, largest first, then by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardinalityStats {
    /// Series per metric name (`__name__` value).
    pub series_count_by_metric_name: Vec<NameCount>,
    /// Distinct values per label name.
    pub label_value_count_by_label_name: Vec<NameCount>,
    /// Bytes of label values per label name, each value counted once per series.
    pub memory_in_bytes_by_label_name: Vec<NameCount>,
    /// Series per `name=value` pair.
    pub series_count_by_label_value_pair: Vec<NameCount>,
    /// Number of distinct `name=value` pairs.
    pub num_label_pairs: u64,
}

fn top(mut v: Vec<NameCount>, limit: usize) -> Vec<NameCount> {
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v.truncate(limit);
    v
}

impl HeadIndex {
    /// Indexes series `r`.
    pub(crate) fn add(&self, r: u64, labels: &Labels) {
        self.add_all([(r, labels)]);
    }

    /// Indexes several series under one lock (loading a head snapshot).
    pub(crate) fn add_all<'a>(&self, series: impl IntoIterator<Item = (u64, &'a Labels)>) {
        let mut g = self.inner.write();
        for (r, labels) in series {
            for l in labels.iter() {
                let vals = match g.by_name.get_mut(l.name) {
                    Some(v) => v,
                    None => g.by_name.entry(l.name.to_owned()).or_default(),
                };
                match vals.get_mut(l.value) {
                    Some(p) => {
                        p.insert(r);
                    }
                    None => {
                        let mut p = RoaringTreemap::new();
                        p.insert(r);
                        vals.insert(l.value.to_owned(), p);
                    }
                }
            }
            g.all.insert(r);
        }
    }

    /// Removes series `r`, dropping values and names left without series.
    pub(crate) fn remove(&self, r: u64, labels: &Labels) {
        let mut g = self.inner.write();
        for l in labels.iter() {
            let mut name_empty = false;
            if let Some(vals) = g.by_name.get_mut(l.name) {
                let mut value_empty = false;
                if let Some(p) = vals.get_mut(l.value) {
                    p.remove(r);
                    value_empty = p.is_empty();
                }
                if value_empty {
                    vals.remove(l.value);
                }
                name_empty = vals.is_empty();
            }
            if name_empty {
                g.by_name.remove(l.name);
            }
        }
        g.all.remove(r);
    }

    /// Bytes held by the index: name and value strings, their tables and
    /// the postings bitmaps (see `crate::memory`).
    pub(crate) fn heap_bytes(&self) -> u64 {
        use crate::memory::treemap_bytes;
        use cairn_storage::hash_table_bytes as table_bytes;
        use std::mem::size_of;
        let g = self.inner.read();
        let mut b = table_bytes(
            g.by_name.capacity(),
            size_of::<(String, FastMap<String, RoaringTreemap>)>(),
        ) + treemap_bytes(&g.all);
        for (name, vals) in &g.by_name {
            b += name.capacity() as u64
                + table_bytes(vals.capacity(), size_of::<(String, RoaringTreemap)>());
            for (v, p) in vals {
                b += v.capacity() as u64 + treemap_bytes(p);
            }
        }
        b
    }

    /// Every label name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.inner.read().by_name.keys().cloned().collect();
        v.sort_unstable();
        v
    }

    /// Every value of label `name`, sorted.
    pub fn values(&self, name: &str) -> Vec<String> {
        let g = self.inner.read();
        let mut v: Vec<String> = g
            .by_name
            .get(name)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    /// Number of series with label `name`=`value`.
    pub fn series_with(&self, name: &str, value: &str) -> u64 {
        self.inner
            .read()
            .by_name
            .get(name)
            .and_then(|m| m.get(value))
            .map_or(0, RoaringTreemap::len)
    }

    /// One series with label `name`=`value` (the lowest ref), if any.
    pub fn first_with(&self, name: &str, value: &str) -> Option<u64> {
        self.inner
            .read()
            .by_name
            .get(name)
            .and_then(|m| m.get(value))
            .and_then(RoaringTreemap::min)
    }

    /// Number of indexed series.
    pub fn num_series(&self) -> u64 {
        self.inner.read().all.len()
    }

    /// Top-`limit` cardinality lists computed from the postings.
    pub fn cardinality(&self, limit: usize) -> CardinalityStats {
        let g = self.inner.read();
        let mut by_metric = Vec::new();
        let mut value_counts = Vec::new();
        let mut memory = Vec::new();
        let mut pairs = Vec::new();
        let mut num_pairs = 0u64;
        for (name, vals) in &g.by_name {
            value_counts.push(NameCount {
                name: name.clone(),
                count: vals.len() as u64,
            });
            let mut bytes = 0u64;
            for (v, p) in vals {
                let n = p.len();
                num_pairs += 1;
                bytes += v.len() as u64 * n;
                if name == cairn_model::METRIC_NAME {
                    by_metric.push(NameCount {
                        name: v.clone(),
                        count: n,
                    });
                }
                pairs.push(NameCount {
                    name: format!("{name}={v}"),
                    count: n,
                });
            }
            memory.push(NameCount {
                name: name.clone(),
                count: bytes,
            });
        }
        CardinalityStats {
            series_count_by_metric_name: top(by_metric, limit),
            label_value_count_by_label_name: top(value_counts, limit),
            memory_in_bytes_by_label_name: top(memory, limit),
            series_count_by_label_value_pair: top(pairs, limit),
            num_label_pairs: num_pairs,
        }
    }
}

impl IndexLike for HeadIndex {
    fn label_names(&self) -> IxResult<Vec<String>> {
        Ok(self.names())
    }

    fn label_values(&self, name: &str) -> IxResult<Vec<String>> {
        Ok(self.values(name))
    }

    fn postings(&self, name: &str, value: &str) -> IxResult<RoaringTreemap> {
        let g = self.inner.read();
        Ok(g.by_name
            .get(name)
            .and_then(|m| m.get(value))
            .cloned()
            .unwrap_or_default())
    }

    fn all_postings(&self) -> IxResult<RoaringTreemap> {
        Ok(self.inner.read().all.clone())
    }

    fn postings_for_label_matching(
        &self,
        name: &str,
        prefix: &str,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> IxResult<RoaringTreemap> {
        let g = self.inner.read();
        let mut out = RoaringTreemap::new();
        if let Some(vals) = g.by_name.get(name) {
            for (v, p) in vals {
                if v.starts_with(prefix) && pred(v) {
                    out |= p;
                }
            }
        }
        Ok(out)
    }
}
