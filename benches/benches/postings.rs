//! Postings lookups on a GPU-cluster-sized index: 2,000 hosts × 8 GPUs × 60
//! DCGM metrics = 960,000 series, the size of a busy head block.
//!
//! Measures `{__name__="DCGM_FI_DEV_GPU_UTIL", Hostname=~"node-1.*"}`
//! (1,111 hosts × 8 GPUs = 8,888 series) against the mmapped block index
//! and against an in-memory index like the head's, plus the bare bitmap
//! intersection underneath.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use cairn_index::{
    postings_for_matchers, ChunkMeta, IndexLike, IndexReader, IndexWriter, Result, RoaringTreemap,
};
use cairn_model::{Labels, MatchType, Matcher};
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const HOSTS: usize = 2000;
const GPUS: usize = 8;
const METRICS: usize = 60;
const WANT: u64 = 1111 * GPUS as u64;

fn series() -> Vec<Labels> {
    let mut out = Vec::with_capacity(HOSTS * GPUS * METRICS);
    for m in 0..METRICS {
        let name = if m == 0 {
            "DCGM_FI_DEV_GPU_UTIL".to_owned()
        } else {
            format!("DCGM_FI_DEV_METRIC_{m:02}")
        };
        for h in 0..HOSTS {
            for g in 0..GPUS {
                out.push(Labels::from_pairs([
                    ("__name__", name.clone()),
                    ("Hostname", format!("node-{h}")),
                    ("gpu", g.to_string()),
                    ("job", "dcgm-exporter".to_owned()),
                    ("modelName", "NVIDIA H100 80GB HBM3".to_owned()),
                ]));
            }
        }
    }
    out.sort();
    out
}

/// A head-like in-memory index: label name -> value -> bitmap.
#[derive(Default)]
struct MemIndex {
    postings: HashMap<String, BTreeMap<String, RoaringTreemap>>,
    all: RoaringTreemap,
}

impl IndexLike for MemIndex {
    fn label_names(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self.postings.keys().cloned().collect();
        v.sort();
        Ok(v)
    }
    fn label_values(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .postings
            .get(name)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())
    }
    fn postings(&self, name: &str, value: &str) -> Result<RoaringTreemap> {
        Ok(self
            .postings
            .get(name)
            .and_then(|m| m.get(value))
            .cloned()
            .unwrap_or_default())
    }
    fn all_postings(&self) -> Result<RoaringTreemap> {
        Ok(self.all.clone())
    }
    fn postings_for_label_matching(
        &self,
        name: &str,
        prefix: &str,
        pred: &mut dyn FnMut(&str) -> bool,
    ) -> Result<RoaringTreemap> {
        let mut out = RoaringTreemap::new();
        if let Some(m) = self.postings.get(name) {
            for (v, p) in m.range(prefix.to_owned()..) {
                if !v.starts_with(prefix) {
                    break;
                }
                if pred(v) {
                    out |= p;
                }
            }
        }
        Ok(out)
    }
}

fn bench_postings(c: &mut Criterion) {
    let sets = series();
    let ms = vec![
        Matcher::equal("__name__", "DCGM_FI_DEV_GPU_UTIL"),
        Matcher::new(MatchType::Regex, "Hostname", "node-1.*").unwrap(),
    ];

    // Block index on disk.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let t = std::time::Instant::now();
    let mut w = IndexWriter::create(&path).unwrap();
    let syms: BTreeSet<&str> = sets
        .iter()
        .flat_map(|l| l.iter().flat_map(|x| [x.name, x.value]))
        .collect();
    for s in &syms {
        w.add_symbol(s).unwrap();
    }
    let chunk = [ChunkMeta {
        min_time: 0,
        max_time: 7_199_000,
        chunk_ref: 8,
    }];
    for l in &sets {
        w.add_series(l, &chunk).unwrap();
    }
    w.finish().unwrap();
    eprintln!(
        "wrote {} series in {:?}, index {} MiB",
        sets.len(),
        t.elapsed(),
        std::fs::metadata(&path).unwrap().len() >> 20
    );
    let t = std::time::Instant::now();
    let r = IndexReader::open(&path).unwrap();
    eprintln!("opened in {:?}", t.elapsed());
    assert_eq!(postings_for_matchers(&r, &ms).unwrap().len(), WANT);

    // Head-like in-memory index.
    let mut mem = MemIndex::default();
    for (i, l) in sets.iter().enumerate() {
        let id = i as u64;
        mem.all.push(id);
        for x in l.iter() {
            mem.postings
                .entry(x.name.to_owned())
                .or_default()
                .entry(x.value.to_owned())
                .or_default()
                .push(id);
        }
    }
    assert_eq!(postings_for_matchers(&mem, &ms).unwrap().len(), WANT);

    let mut g = c.benchmark_group("postings_960k_series");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("block_index/name_eq+host_prefix_regex", |b| {
        b.iter(|| postings_for_matchers(&r, black_box(&ms)).unwrap().len())
    });
    g.bench_function("mem_index/name_eq+host_prefix_regex", |b| {
        b.iter(|| postings_for_matchers(&mem, black_box(&ms)).unwrap().len())
    });
    let name = mem.postings("__name__", "DCGM_FI_DEV_GPU_UTIL").unwrap();
    let hosts = mem
        .postings_for_label_matching("Hostname", "node-1", &mut |_| true)
        .unwrap();
    eprintln!(
        "intersecting {} name postings with {} host postings",
        name.len(),
        hosts.len()
    );
    g.bench_function("bitmap_intersection_only", |b| {
        b.iter(|| (black_box(&name) & black_box(&hosts)).len())
    });
    g.bench_function("block_index/single_postings_read_16k", |b| {
        b.iter(|| {
            r.postings("__name__", black_box("DCGM_FI_DEV_GPU_UTIL"))
                .unwrap()
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_postings);
criterion_main!(benches);
