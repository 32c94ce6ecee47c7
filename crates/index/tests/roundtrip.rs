//! Property tests: whatever the writer writes, the reader reads back exactly,
//! and postings for random matchers equal a brute-force filter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::{BTreeMap, BTreeSet};

use cairn_index::{postings_for_matchers, ChunkMeta, IndexLike, IndexReader, IndexWriter, Result};
use cairn_model::{Labels, MatchType, Matcher};
use proptest::prelude::*;
use roaring::RoaringTreemap;

const NAMES: &[&str] = &["__name__", "a", "b", "job", "zone"];

fn write_index(dir: &std::path::Path, series: &[(Labels, Vec<ChunkMeta>)]) -> Vec<u64> {
    let path = dir.join("index");
    let mut w = IndexWriter::create(&path).unwrap();
    let mut syms = BTreeSet::new();
    for (l, _) in series {
        for x in l.iter() {
            syms.insert(x.name.to_owned());
            syms.insert(x.value.to_owned());
        }
    }
    for s in &syms {
        w.add_symbol(s).unwrap();
    }
    let refs = series
        .iter()
        .map(|(l, c)| w.add_series(l, c).unwrap())
        .collect();
    w.finish().unwrap();
    refs
}

fn label_sets() -> impl Strategy<Value = Vec<Labels>> {
    let one = proptest::collection::btree_map(
        proptest::sample::select(NAMES),
        "[abc]{0,2}|node-[0-9]{1,2}",
        1..5,
    );
    proptest::collection::vec(one, 0..40).prop_map(|v| {
        let set: BTreeSet<Labels> = v
            .into_iter()
            .map(Labels::from_pairs)
            .filter(|l| !l.is_empty())
            .collect();
        set.into_iter().collect()
    })
}

fn chunk_metas() -> impl Strategy<Value = Vec<ChunkMeta>> {
    (
        any::<i64>().prop_map(|t| t / 4),
        proptest::collection::vec((1u32..100_000, 0u32..100_000, any::<u32>()), 0..6),
    )
        .prop_map(|(start, v)| {
            let mut out = Vec::new();
            let mut t = start;
            let mut r: u64 = 0;
            for (gap, dur, rd) in v {
                let min_time = t + i64::from(gap);
                let max_time = min_time + i64::from(dur);
                r = r.wrapping_add(u64::from(rd));
                out.push(ChunkMeta {
                    min_time,
                    max_time,
                    chunk_ref: r,
                });
                t = max_time;
            }
            out
        })
}

fn matcher() -> impl Strategy<Value = Matcher> {
    let kinds = proptest::sample::select(vec![
        MatchType::Equal,
        MatchType::NotEqual,
        MatchType::Regex,
        MatchType::NotRegex,
    ]);
    let values = proptest::sample::select(vec![
        "",
        "a",
        "b",
        "ab",
        "c",
        "a|b",
        "a|",
        "a.*",
        ".*",
        ".+",
        "b?",
        "node-1.*",
        "node-[0-9]",
        "(a|ab)c?",
        "node-.+|c",
    ]);
    (proptest::sample::select(NAMES), kinds, values)
        .prop_map(|(n, k, v)| Matcher::new(k, n, v).unwrap())
}

fn brute_force(
    series: &[(Labels, Vec<ChunkMeta>)],
    refs: &[u64],
    ms: &[Matcher],
) -> RoaringTreemap {
    let mut out = RoaringTreemap::new();
    if ms.is_empty() {
        return out;
    }
    for ((l, _), &r) in series.iter().zip(refs) {
        if ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))) {
            out.insert(r);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn written_index_reads_back_identically(
        sets in label_sets(),
        chunks in proptest::collection::vec(chunk_metas(), 40),
        queries in proptest::collection::vec(proptest::collection::vec(matcher(), 0..4), 12),
    ) {
        let series: Vec<(Labels, Vec<ChunkMeta>)> =
            sets.into_iter().zip(chunks).collect();
        let dir = tempfile::tempdir().unwrap();
        let refs = write_index(dir.path(), &series);
        let r = IndexReader::open(&dir.path().join("index")).unwrap();

        // Series refs grow with label order.
        prop_assert!(refs.windows(2).all(|w| w[0] < w[1]));
        let mut got = Vec::new();
        for ((l, c), &id) in series.iter().zip(&refs) {
            let back = r.series(id, &mut got).unwrap();
            prop_assert_eq!(&back, l);
            prop_assert_eq!(&got, c);
        }
        let all: RoaringTreemap = refs.iter().copied().collect();
        prop_assert_eq!(r.all_postings().unwrap(), all);

        let mut want: BTreeMap<String, BTreeMap<String, RoaringTreemap>> = BTreeMap::new();
        let mut syms = BTreeSet::new();
        for ((l, _), &id) in series.iter().zip(&refs) {
            for x in l.iter() {
                want.entry(x.name.to_owned()).or_default()
                    .entry(x.value.to_owned()).or_default().insert(id);
                syms.insert(x.name.to_owned());
                syms.insert(x.value.to_owned());
            }
        }
        prop_assert_eq!(r.symbols().unwrap(), syms.into_iter().collect::<Vec<_>>());
        prop_assert_eq!(r.label_names().unwrap(), want.keys().cloned().collect::<Vec<_>>());
        for (name, values) in &want {
            prop_assert_eq!(r.label_values(name).unwrap(), values.keys().cloned().collect::<Vec<_>>());
            for (v, p) in values {
                prop_assert_eq!(&r.postings(name, v).unwrap(), p);
            }
        }
        prop_assert!(r.label_values("nope").unwrap().is_empty());
        prop_assert!(r.postings("a", "nope").unwrap().is_empty());

        for ms in &queries {
            let got = postings_for_matchers(&r, ms).unwrap();
            prop_assert_eq!(got, brute_force(&series, &refs, ms), "matchers {:?}", ms);
        }
    }

    #[test]
    fn arbitrary_bytes_are_rejected_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        exercise(bytes);
    }

    #[test]
    fn damaged_indexes_never_panic(
        sets in label_sets(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let series: Vec<(Labels, Vec<ChunkMeta>)> = sets
            .into_iter()
            .map(|l| (l, vec![ChunkMeta { min_time: 0, max_time: 10, chunk_ref: 8 }]))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        write_index(dir.path(), &series);
        let mut bytes = std::fs::read(dir.path().join("index")).unwrap();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= b.max(1);
        }
        if truncate {
            let n = cut.index(bytes.len());
            bytes.truncate(n);
        }
        exercise(bytes);
    }
}

/// Opens `bytes` and calls every read method; only errors may come back.
fn exercise(bytes: Vec<u8>) {
    let Ok(r) = IndexReader::from_bytes(bytes) else {
        return;
    };
    let _ = r.symbols();
    let all = r.all_postings().unwrap_or_default();
    let mut chunks = Vec::new();
    for id in all.iter().take(64) {
        let _ = r.series(id, &mut chunks);
    }
    for id in [0u64, 1, 2, 3, 100, u64::MAX / 16, u64::MAX] {
        let _ = r.series(id, &mut chunks);
    }
    let names: Vec<String> = r.label_names().unwrap_or_default();
    for n in names {
        for v in r.label_values(&n).unwrap_or_default() {
            let _ = r.postings(&n, &v);
        }
        let _: Result<RoaringTreemap> =
            postings_for_matchers(&r, &[Matcher::new(MatchType::Regex, n, ".+").unwrap()]);
    }
}

#[test]
fn empty_index_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let refs = write_index(dir.path(), &[]);
    assert!(refs.is_empty());
    let r = IndexReader::open(&dir.path().join("index")).unwrap();
    assert_eq!(r.version(), 2);
    assert!(r.all_postings().unwrap().is_empty());
    assert!(r.label_names().unwrap().is_empty());
    assert!(r.symbols().unwrap().is_empty());
}
