//! Block writer/reader round trips with an in-memory source.

mod common;

use cairn_model::{labels, MatchType, Matcher, Sample};
use cairn_storage::{MemStorage, Queryable, SelectHints, ValueType};
use cairn_tsdb::{write_block, Block, BlockWriteOptions, TsdbError};
use common::*;

fn mem_from(data: &[(cairn_model::Labels, Vec<(i64, f64)>)]) -> MemStorage {
    let m = MemStorage::new();
    for (l, s) in data {
        m.add(l.clone(), s.iter().map(|&(t, v)| Sample::new(t, v)));
    }
    m
}

#[test]
fn block_round_trips_samples_and_meta() {
    let dir = tempfile::tempdir().unwrap();
    let data = gen_samples(20, 0, 7_200_000, 15_000);
    let mem = mem_from(&data);
    let q = mem.querier(0, 7_199_999).unwrap();
    let meta = write_block(dir.path(), &*q, 0, 7_200_000, &BlockWriteOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(meta.stats.num_series, 20);
    assert_eq!(meta.stats.num_samples, 20 * 480);
    assert_eq!(
        meta.stats.num_chunks,
        20 * 4,
        "480 samples cut into chunks of 120"
    );
    assert_eq!((meta.min_time, meta.max_time), (0, 7_200_000));
    let b = Block::open(&dir.path().join(meta.ulid.to_string())).unwrap();
    assert_eq!(
        all_samples(&b, i64::MIN, i64::MAX),
        all_samples(&mem, i64::MIN, i64::MAX)
    );
    // Sub-ranges are bounded inclusively on both ends.
    assert_eq!(
        all_samples(&b, 15_000, 30_000),
        all_samples(&mem, 15_000, 30_000)
    );
    // No tmp directory is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn samples_outside_the_block_range_are_left_out_and_chunks_reencoded() {
    let dir = tempfile::tempdir().unwrap();
    let data = gen_samples(3, 0, 10_000_000, 10_000);
    let mem = mem_from(&data);
    // Write a first block, then a second block over part of its range: its
    // series offer chunks that cross the new bounds.
    let q = mem.querier(0, 9_999_999).unwrap();
    let big = write_block(
        dir.path(),
        &*q,
        0,
        10_000_000,
        &BlockWriteOptions::default(),
    )
    .unwrap()
    .unwrap();
    let bigb = Block::open(&dir.path().join(big.ulid.to_string())).unwrap();
    let q2 = bigb.querier(1_005_000, 2_004_999).unwrap();
    let small = write_block(
        dir.path(),
        &*q2,
        1_005_000,
        2_005_000,
        &BlockWriteOptions::default(),
    )
    .unwrap()
    .unwrap();
    let sb = Block::open(&dir.path().join(small.ulid.to_string())).unwrap();
    assert_eq!(
        all_samples(&sb, i64::MIN, i64::MAX),
        all_samples(&mem, 1_005_000, 2_004_999)
    );
}

#[test]
fn empty_source_writes_no_block() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemStorage::new();
    let q = mem.querier(0, 100).unwrap();
    assert!(
        write_block(dir.path(), &*q, 0, 101, &BlockWriteOptions::default())
            .unwrap()
            .is_none()
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn tombstones_hide_samples_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemStorage::new();
    mem.add(
        labels!("__name__" => "a"),
        (0..100).map(|t| Sample::new(t * 10, t as f64)),
    );
    mem.add(
        labels!("__name__" => "b"),
        (0..100).map(|t| Sample::new(t * 10, t as f64)),
    );
    let q = mem.querier(0, 1000).unwrap();
    let meta = write_block(dir.path(), &*q, 0, 1000, &BlockWriteOptions::default())
        .unwrap()
        .unwrap();
    let bdir = dir.path().join(meta.ulid.to_string());
    let b = Block::open(&bdir).unwrap();
    let n = b
        .delete(100, 200, &[Matcher::equal("__name__", "a")])
        .unwrap();
    assert_eq!(n, 1);
    let check = |b: &Block| {
        let got = all_samples(b, i64::MIN, i64::MAX);
        let a: Vec<i64> = got
            .iter()
            .filter(|x| x.0 == labels!("__name__" => "a"))
            .map(|x| x.1)
            .collect();
        assert_eq!(a.len(), 100 - 11);
        assert!(a.iter().all(|t| !(100..=200).contains(t)));
        assert_eq!(
            got.iter()
                .filter(|x| x.0 == labels!("__name__" => "b"))
                .count(),
            100
        );
    };
    check(&b);
    drop(b);
    let b = Block::open(&bdir).unwrap();
    assert_eq!(b.meta().stats.num_tombstones, 1);
    check(&b);
    // Series with tombstones offer no raw chunks (they would resurrect data).
    let q = b.querier(0, 1000).unwrap();
    let m = Matcher::new(MatchType::Regex, "__name__", ".*").unwrap();
    let chunked: Vec<bool> = q
        .select(&SelectHints::default(), &[m])
        .unwrap()
        .map(|s| s.unwrap().chunks().is_some())
        .collect();
    assert_eq!(chunked, vec![false, true]);
}

#[test]
fn seek_works_across_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mem = MemStorage::new();
    mem.add(
        labels!("__name__" => "a"),
        (0..1000).map(|t| Sample::new(t * 10, t as f64)),
    );
    let q = mem.querier(0, 100_000).unwrap();
    let meta = write_block(dir.path(), &*q, 0, 100_000, &BlockWriteOptions::default())
        .unwrap()
        .unwrap();
    let b = Block::open(&dir.path().join(meta.ulid.to_string())).unwrap();
    let q = b.querier(0, 100_000).unwrap();
    let s = q
        .select(&SelectHints::default(), &[Matcher::equal("__name__", "a")])
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut it = s.iter();
    assert_eq!(it.seek(5_555), ValueType::Float);
    assert_eq!(it.at(), (5_560, 556.0));
    assert_eq!(it.seek(10), ValueType::Float, "seek never moves back");
    assert_eq!(it.at().0, 5_560);
    assert_eq!(it.seek(9_990), ValueType::Float);
    assert_eq!(it.next(), ValueType::None);
}

#[test]
fn missing_or_corrupt_block_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(Block::open(dir.path()), Err(TsdbError::Io { .. })));
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn arb_data() -> impl Strategy<Value = Vec<(String, Vec<(i64, f64)>)>> {
        proptest::collection::btree_map(
            "[a-d]{1,3}",
            proptest::collection::btree_map(-5_000i64..5_000, any::<f64>(), 1..300),
            1..6,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|(k, v)| (k, v.into_iter().collect()))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]
        #[test]
        fn write_then_read_equals_source(data in arb_data(), a in -6_000i64..6_000, len in 1i64..12_000, per_chunk in 1usize..200) {
            let dir = tempfile::tempdir().unwrap();
            let mem = MemStorage::new();
            for (n, s) in &data {
                mem.add(labels!("__name__" => n.as_str()), s.iter().map(|&(t, v)| Sample::new(t, v)));
            }
            let (mint, maxt) = (a, a + len);
            let q = mem.querier(mint, maxt - 1).unwrap();
            let opts = BlockWriteOptions { samples_per_chunk: per_chunk, ..BlockWriteOptions::default() };
            let want = all_samples(&mem, mint, maxt - 1);
            match write_block(dir.path(), &*q, mint, maxt, &opts).unwrap() {
                None => prop_assert!(want.is_empty()),
                Some(meta) => {
                    prop_assert_eq!(meta.stats.num_samples as usize, want.len());
                    let b = Block::open(&dir.path().join(meta.ulid.to_string())).unwrap();
                    prop_assert_eq!(all_samples(&b, i64::MIN, i64::MAX), want);
                    // Re-writing a sub-range from the block (chunks pass through
                    // or get cut at the bounds) keeps exactly that sub-range.
                    let (m2, x2) = (mint + len / 3, maxt - len / 3);
                    if x2 > m2 {
                        let q = b.querier(m2, x2 - 1).unwrap();
                        let want2 = all_samples(&mem, m2, x2 - 1);
                        match write_block(dir.path(), &*q, m2, x2, &opts).unwrap() {
                            None => prop_assert!(want2.is_empty()),
                            Some(m) => {
                                let b2 = Block::open(&dir.path().join(m.ulid.to_string())).unwrap();
                                prop_assert_eq!(all_samples(&b2, i64::MIN, i64::MAX), want2);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A block series' iterator against a model, under any mix of `next`,
/// `seek` and `read_floats`, with querier bounds cutting chunks and
/// tombstones hiding parts of some chunks.
mod iter_model {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Next,
        Seek(i64),
        Read(i64),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Next),
            (-100i64..3_100).prop_map(Op::Seek),
            (-100i64..3_100).prop_map(Op::Read),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn next_seek_and_read_floats_match_a_model(
            times in proptest::collection::btree_set(0i64..3_000, 1..400),
            per_chunk in 1usize..60,
            (qmin, qlen) in (-50i64..2_000, 0i64..3_200),
            dels in proptest::collection::vec((0i64..3_000, 0i64..200), 0..3),
            ops in proptest::collection::vec(arb_op(), 1..40),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mem = MemStorage::new();
            mem.add(labels!("__name__" => "a"), times.iter().map(|&t| Sample::new(t, t as f64 / 2.0)));
            let q = mem.querier(0, 3_000).unwrap();
            let opts = BlockWriteOptions { samples_per_chunk: per_chunk, ..BlockWriteOptions::default() };
            let meta = write_block(dir.path(), &*q, 0, 3_001, &opts).unwrap().unwrap();
            let b = Block::open(&dir.path().join(meta.ulid.to_string())).unwrap();
            let m = [Matcher::equal("__name__", "a")];
            for &(d, len) in &dels {
                b.delete(d, d + len, &m).unwrap();
            }
            let qmax = qmin + qlen;
            let model: Vec<i64> = times
                .iter()
                .copied()
                .filter(|&t| t >= qmin && t <= qmax)
                .filter(|&t| !dels.iter().any(|&(d, len)| d <= t && t <= d + len))
                .collect();
            let q = b.querier(qmin, qmax).unwrap();
            let Some(s) = q.select(&SelectHints::default(), &m).unwrap().next() else {
                // A series with no chunk left in the range is not selected.
                prop_assert!(model.is_empty());
                return Ok(());
            };
            let s = s.unwrap();
            let mut it = s.iter();
            // Index into `model` of the current sample; None before the start.
            let mut pos: Option<usize> = None;
            let mut done = false;
            for op in ops {
                let want_vt = |p: usize| if p < model.len() { ValueType::Float } else { ValueType::None };
                match op {
                    Op::Next => {
                        if done { continue; }
                        let p = pos.map_or(0, |p| p + 1);
                        let vt = it.next();
                        prop_assert_eq!(vt, want_vt(p), "next");
                        pos = Some(p);
                        done = vt == ValueType::None;
                    }
                    Op::Seek(t) => {
                        if done { continue; }
                        let from = pos.unwrap_or(0);
                        let p = match pos {
                            Some(p) if model.get(p).is_some_and(|&x| x >= t) => p,
                            _ => from + model.get(from..).unwrap_or(&[]).partition_point(|&x| x < t),
                        };
                        let vt = it.seek(t);
                        prop_assert_eq!(vt, want_vt(p), "seek {}", t);
                        pos = Some(p);
                        done = vt == ValueType::None;
                    }
                    Op::Read(maxt) => {
                        // read_floats needs the iterator on a sample.
                        let Some(p) = pos.filter(|&p| p < model.len()) else { continue; };
                        let mut out = Vec::new();
                        let vt = it.read_floats(maxt, &mut out);
                        let end = p + model.get(p..).unwrap_or(&[]).partition_point(|&x| x <= maxt);
                        let got: Vec<i64> = out.iter().map(|s| s.t).collect();
                        prop_assert_eq!(&got[..], model.get(p..end).unwrap_or(&[]), "read_floats {}", maxt);
                        prop_assert!(out.iter().all(|s| s.v == s.t as f64 / 2.0));
                        prop_assert_eq!(vt, want_vt(end), "read_floats {} type", maxt);
                        pos = Some(end);
                        done = vt == ValueType::None;
                    }
                }
                if !done {
                    if let Some(&t) = pos.and_then(|p| model.get(p)) {
                        prop_assert_eq!(it.at(), (t, t as f64 / 2.0));
                    }
                }
            }
            prop_assert!(it.err().is_none());
        }
    }
}

/// Every series' labels and chunk references, in index order.
#[allow(clippy::unwrap_used)] // test helper: failing means panicking
fn series_refs(b: &Block) -> Vec<(cairn_model::Labels, Vec<u64>)> {
    use cairn_index::IndexLike;
    let ix = b.index();
    let mut out = Vec::new();
    for r in ix.all_postings().unwrap().iter() {
        let mut metas = Vec::new();
        let l = ix.series(r, &mut metas).unwrap();
        out.push((l, metas.iter().map(|m| m.chunk_ref).collect()));
    }
    out
}

#[test]
fn chunks_grouped_by_metric_name_lie_together_and_read_the_same() {
    // GPUs whose labels sort before `__name__`, as DCGM's do, three
    // metrics each, and a series without a name.
    let mem = MemStorage::new();
    for h in 0..4 {
        for g in 0..3 {
            for (k, name) in [
                "DCGM_FI_DEV_GPU_TEMP",
                "DCGM_FI_DEV_GPU_UTIL",
                "DCGM_FI_DEV_POWER_USAGE",
            ]
            .iter()
            .enumerate()
            {
                mem.add(
                    labels!(
                        "Hostname" => format!("node-{h}").as_str(),
                        "UUID" => format!("GPU-{h}-{g}").as_str(),
                        "__name__" => *name
                    ),
                    (0..480i64)
                        .map(|i| Sample::new(i * 15_000, (i * (h + g + k as i64 + 1)) as f64)),
                );
            }
        }
    }
    mem.add(labels!("job" => "no-name"), [Sample::new(0, 1.0)]);
    // node-exporter's CPU seconds: 8 modes per CPU (`mode` takes the
    // fewest values, so the metric's chunks are split by it; nine
    // instances and nine CPUs take more), one series without a `mode`
    // label at all.
    for inst in 0..9 {
        for cpu in 0..9 {
            for mode in [
                "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
            ] {
                mem.add(
                    labels!(
                        "__name__" => "node_cpu_seconds_total",
                        "cpu" => cpu.to_string().as_str(),
                        "instance" => format!("node-{inst}:9100").as_str(),
                        "mode" => mode
                    ),
                    (0..24i64).map(|i| Sample::new(i * 300_000, (i * (cpu + 1)) as f64)),
                );
            }
        }
    }
    mem.add(
        labels!("__name__" => "node_cpu_seconds_total", "cpu" => "0", "instance" => "odd:9100"),
        [Sample::new(0, 1.0)],
    );
    let q = mem.querier(0, 7_199_999).unwrap();
    let write = |dir: &std::path::Path, group_by_name: bool| {
        let opts = BlockWriteOptions {
            group_by_name,
            ..BlockWriteOptions::default()
        };
        let m = write_block(dir, &*q, 0, 7_200_000, &opts).unwrap().unwrap();
        Block::open(&dir.join(m.ulid.to_string())).unwrap()
    };
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (plain, grouped) = (write(d1.path(), false), write(d2.path(), true));
    assert_eq!(plain.meta().stats, grouped.meta().stats);
    // (`all_samples` also reads in 1 ms pieces: too slow for 700 series.)
    let samples = |st: &dyn Queryable| {
        let q = st.querier(i64::MIN, i64::MAX).unwrap();
        let m = Matcher::new(MatchType::Regex, "__name__", ".*").unwrap();
        let mut out = Vec::new();
        for s in q.select(&SelectHints::default(), &[m]).unwrap() {
            let s = s.unwrap();
            let mut it = s.iter();
            while it.next() == ValueType::Float {
                let (t, v) = it.at();
                out.push((s.labels().clone(), t, v.to_bits()));
            }
        }
        out
    };
    assert_eq!(samples(&grouped), samples(&mem));
    assert_eq!(samples(&plain), samples(&mem));
    let (p, g) = (series_refs(&plain), series_refs(&grouped));
    // The same series in the same index order; only the chunks moved.
    assert_eq!(
        p.iter().map(|x| &x.0).collect::<Vec<_>>(),
        g.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    // The series' name (and mode, where it has one) in file order.
    let name_at = |refs: &[(cairn_model::Labels, Vec<u64>)]| {
        let mut by_ref: Vec<(u64, String)> = refs
            .iter()
            .flat_map(|(l, rs)| {
                let mut n = l.get("__name__").unwrap_or("").to_owned();
                if n.starts_with("node") {
                    n.push_str(&format!("/{}", l.get("mode").unwrap_or("")));
                }
                rs.iter().map(move |r| (*r, n.clone()))
            })
            .collect();
        by_ref.sort();
        by_ref.into_iter().map(|x| x.1).collect::<Vec<_>>()
    };
    // In file order: series order interleaves the metrics, grouping puts
    // each metric's chunks in one run, names in order ("" first).
    let runs = |names: Vec<String>| {
        let mut v = names;
        v.dedup();
        v
    };
    assert_eq!(
        runs(name_at(&g)),
        [
            "",
            "DCGM_FI_DEV_GPU_TEMP",
            "DCGM_FI_DEV_GPU_UTIL",
            "DCGM_FI_DEV_POWER_USAGE",
            "node_cpu_seconds_total/",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain(
            ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"]
                .iter()
                .map(|m| format!("node_cpu_seconds_total/{m}"))
        )
        .collect::<Vec<_>>()
    );
    assert!(runs(name_at(&p)).len() > 30, "{:?}", runs(name_at(&p)));
}

/// A source that answers a different series the second time it is asked
/// for every series (a head being appended to).
struct Shifting {
    mem: MemStorage,
    calls: std::sync::atomic::AtomicUsize,
}

#[allow(clippy::unwrap_used)] // test double
impl cairn_storage::Querier for Shifting {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        ms: &[Matcher],
    ) -> cairn_storage::Result<cairn_storage::SeriesSet<'a>> {
        let n = self
            .calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n == 1 {
            self.mem.add(
                labels!("__name__" => "late", "x" => "1"),
                [Sample::new(1, 1.0)],
            );
        }
        let q = self.mem.querier(hints.start, hints.end)?;
        let all: Vec<_> = q
            .select(hints, ms)?
            .collect::<cairn_storage::Result<Vec<_>>>()?;
        let all: Vec<Box<dyn cairn_storage::Series + 'a>> = all
            .into_iter()
            .map(|s| {
                Box::new(cairn_storage::VecSeries::new(s.labels().clone(), {
                    let mut v = Vec::new();
                    let mut it = s.iter();
                    while it.next() == ValueType::Float {
                        let (t, f) = it.at();
                        v.push(Sample::new(t, f));
                    }
                    v
                })) as Box<dyn cairn_storage::Series + 'a>
            })
            .collect();
        Ok(Box::new(all.into_iter().map(Ok)))
    }
    fn label_names(&self, _: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        Ok(Vec::new())
    }
    fn label_values(&self, _: &str, _: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        Ok(Vec::new())
    }
}

#[test]
fn a_source_that_changes_between_grouped_passes_is_an_error_and_leaves_nothing() {
    let mem = mem_from(&gen_samples(5, 0, 7_200_000, 15_000));
    let q = Shifting {
        mem,
        calls: Default::default(),
    };
    let dir = tempfile::tempdir().unwrap();
    let opts = BlockWriteOptions {
        group_by_name: true,
        ..BlockWriteOptions::default()
    };
    let e = write_block(dir.path(), &q, 0, 7_200_000, &opts).unwrap_err();
    assert!(
        matches!(e, TsdbError::InvalidArgument(ref m) if m.contains("changed")),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
