//! Appends and queries against a simple model, append errors, chunk shape.

mod support;

use std::collections::BTreeMap;

use cairn_head::Head;
use cairn_model::{labels, Labels, MatchType, Matcher};
use cairn_storage::{Appendable, Queryable, SelectHints, StorageError};
use proptest::prelude::*;
use support::*;

#[test]
fn append_errors_follow_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let l = labels!("__name__" => "m", "job" => "a");
    let mut app = h.appender();
    let r = app.append(0, &l, 1000, 1.0).unwrap();
    assert!(matches!(
        app.append(r, &l, 1000, 2.0),
        Err(StorageError::DuplicateSampleForTimestamp { t: 1000 })
    ));
    assert_eq!(
        app.append(r, &l, 1000, 1.0).unwrap(),
        r,
        "same value is a no-op"
    );
    assert!(matches!(
        app.append(r, &l, 999, 1.0),
        Err(StorageError::OutOfOrderSample { t: 999 })
    ));
    app.commit().unwrap();

    let mut app = h.appender();
    assert!(matches!(
        app.append(0, &l, 500, 1.0),
        Err(StorageError::OutOfOrderSample { .. })
    ));
    assert!(matches!(
        app.append(0, &l, 1000, 3.0),
        Err(StorageError::DuplicateSampleForTimestamp { .. })
    ));
    // Far behind the head's max time: behind the appendable window.
    app.append(0, &l, 10 * 3600 * 1000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    assert!(matches!(
        app.append(0, &labels!("__name__" => "new"), 1000, 1.0),
        Err(StorageError::OutOfBounds { t: 1000, .. })
    ));
    assert!(matches!(
        app.append(0, &Labels::empty(), 20 * 3600 * 1000, 1.0),
        Err(StorageError::Backend(_))
    ));
    app.rollback().unwrap();
    assert_eq!(
        dump(&h, 0, i64::MAX, &all()),
        vec![(l.clone(), vec![(1000, 1.0), (10 * 3600 * 1000, 1.0)])]
    );
}

#[test]
fn invalid_options_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for o in [
        cairn_head::HeadOptions {
            chunk_range: 0,
            ..opts()
        },
        cairn_head::HeadOptions {
            ooo_window: -1,
            ..opts()
        },
        cairn_head::HeadOptions {
            samples_per_chunk: 0,
            ..opts()
        },
    ] {
        assert!(matches!(
            Head::open(dir.path(), o),
            Err(cairn_head::HeadError::InvalidOption { .. })
        ));
    }
}

#[test]
fn uncommitted_and_rolled_back_samples_are_invisible() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let l = labels!("__name__" => "m");
    let mut app = h.appender();
    app.append(0, &l, 1, 1.0).unwrap();
    assert!(dump(&h, 0, 10, &all()).is_empty());
    app.rollback().unwrap();
    assert!(dump(&h, 0, 10, &all()).is_empty());
    assert_eq!(h.min_time(), i64::MAX);
    assert_eq!(h.max_time(), i64::MIN);
}

#[test]
fn chunks_are_cut_on_the_rate_estimate_and_at_range_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.chunk_range = 1000;
    let h = open(dir.path(), o);
    let l = labels!("__name__" => "m");
    let mut app = h.appender();
    let mut want = Vec::new();
    for t in 0..3000i64 {
        app.append(0, &l, t * 3, t as f64).unwrap();
        want.push((t * 3, t as f64));
    }
    app.commit().unwrap();
    // 9 ranges of 1000 ms, each 334 samples. A quarter of the target (30
    // samples) spans 87 ms, so the rest of a range is estimated at two
    // chunks: the first ends half-way, the second at the range end.
    let got = dump_chunks(&h, 0, i64::MAX, &all(), 1000);
    assert_eq!(got, vec![(l.clone(), want.clone())]);
    assert_eq!(h.stats().num_chunks, 18);
    let q = h.querier(0, i64::MAX).unwrap();
    let s = q
        .select(&SelectHints::default(), &all())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut it = s.chunks().unwrap();
    let mut bounds = Vec::new();
    while let Some(c) = it.next_chunk() {
        let c = c.unwrap();
        bounds.push((c.min_time, c.max_time));
    }
    assert_eq!(
        &bounds[..4],
        &[(0, 498), (501, 999), (1002, 1500), (1503, 1998)]
    );
    assert_eq!(
        dump(&h, 0, i64::MAX, &all()),
        vec![(l.clone(), want.clone())]
    );
    // Bounded reads.
    let inner: Vec<_> = want
        .iter()
        .copied()
        .filter(|s| s.0 >= 1500 && s.0 <= 4500)
        .collect();
    assert_eq!(dump(&h, 1500, 4500, &all()), vec![(l, inner)]);
}

#[test]
fn label_names_and_values_honour_matchers() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let mut app = h.appender();
    app.append(0, &labels!("__name__" => "a", "x" => "1"), 10, 1.0)
        .unwrap();
    app.append(0, &labels!("__name__" => "b", "y" => "2"), 10, 1.0)
        .unwrap();
    app.append(0, &labels!("__name__" => "b", "y" => "3"), 10, 1.0)
        .unwrap();
    app.commit().unwrap();
    let q = h.querier(0, 100).unwrap();
    assert_eq!(q.label_names(&[]).unwrap(), vec!["__name__", "x", "y"]);
    assert_eq!(
        q.label_names(&[Matcher::equal("__name__", "b")]).unwrap(),
        vec!["__name__", "y"]
    );
    assert_eq!(q.label_values("y", &[]).unwrap(), vec!["2", "3"]);
    let m = Matcher::new(MatchType::NotEqual, "y", "3").unwrap();
    assert_eq!(q.label_values("__name__", &[m]).unwrap(), vec!["a", "b"]);
    let q = h.querier(11, 100).unwrap();
    assert!(
        q.label_values("y", &[]).unwrap().is_empty(),
        "no data in range"
    );
    let st = h.stats();
    assert_eq!(st.num_series, 3);
    assert_eq!((st.min_time, st.max_time), (10, 10));
    assert_eq!(st.cardinality.series_count_by_metric_name[0].name, "b");
    assert_eq!(st.cardinality.series_count_by_metric_name[0].count, 2);
    assert_eq!(st.cardinality.num_label_pairs, 5);
}

/// One step of the random workload: (series index, timestamp, value).
fn workload() -> impl Strategy<Value = Vec<Vec<(usize, i64, f64)>>> {
    let sample = (0usize..6, 0i64..5000, -1e6f64..1e6);
    proptest::collection::vec(proptest::collection::vec(sample, 0..80), 1..8)
}

fn series_labels(i: usize) -> Labels {
    labels!("__name__" => format!("m{}", i % 3), "i" => i.to_string())
}

/// The model: accepted samples per series, with Prometheus's in-order rules.
type Model = BTreeMap<Labels, BTreeMap<i64, f64>>;

fn model_append(
    m: &Model,
    staged: &Model,
    l: &Labels,
    t: i64,
    v: f64,
    min_valid: i64,
) -> Result<bool, ()> {
    if t < min_valid {
        return Err(());
    }
    let last = staged
        .get(l)
        .and_then(|s| s.last_key_value())
        .or_else(|| m.get(l).and_then(|s| s.last_key_value()));
    match last {
        None => Ok(true),
        Some((&lt, _)) if t > lt => Ok(true),
        Some((&lt, &lv)) if t == lt && lv.to_bits() == v.to_bits() => Ok(false),
        _ => Err(()),
    }
}

fn check(h: &Head, m: &Model, mint: i64, maxt: i64) {
    let want: Vec<(Labels, Vec<(i64, f64)>)> = m
        .iter()
        .map(|(l, s)| {
            (
                l.clone(),
                s.range(mint..=maxt)
                    .map(|(t, v)| (*t, *v))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, s)| !s.is_empty())
        .collect();
    assert_eq!(dump(h, mint, maxt, &all()), want);
    assert_eq!(dump_chunks(h, mint, maxt, &all(), 1000), want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_appends_match_a_model(batches in workload(), ranges in proptest::collection::vec((0i64..5000, 0i64..5000), 3)) {
        let dir = tempfile::tempdir().unwrap();
        let mut o = opts();
        o.chunk_range = 1000;
        o.samples_per_chunk = 7;
        let h = open(dir.path(), o);
        let mut m: Model = BTreeMap::new();
        for b in batches {
            let mut app = h.appender();
            let mut staged: Model = BTreeMap::new();
            // Appends more than half a chunk range behind the head's max are out of bounds.
            let head_max = m.values().filter_map(|s| s.last_key_value()).map(|x| *x.0).max();
            let min_valid = head_max.map_or(i64::MIN, |x| x - 500);
            for (i, t, v) in b {
                let l = series_labels(i);
                let res = app.append(0, &l, t, v);
                match model_append(&m, &staged, &l, t, v, min_valid) {
                    Ok(add) => {
                        prop_assert!(res.is_ok(), "{:?} at {} rejected: {:?}", l, t, res);
                        if add {
                            staged.entry(l).or_default().insert(t, v);
                        }
                    }
                    Err(()) => prop_assert!(res.is_err(), "{:?} at {} accepted", l, t),
                }
            }
            app.commit().unwrap();
            for (l, s) in staged {
                m.entry(l).or_default().extend(s);
            }
        }
        check(&h, &m, i64::MIN, i64::MAX);
        for (a, b) in ranges {
            check(&h, &m, a.min(b), a.max(b));
        }
    }
}

#[test]
fn large_selections_come_back_sorted_and_complete() {
    // Enough series for the two-thread matching path; created in an order
    // unrelated to label order, some without samples in the queried range.
    // Values that are prefixes of others ("1" < "10"), a label some sets
    // lack, and NUL bytes exercise every branch of the label order.
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let mut app = h.appender();
    let n = 5000u64;
    let mk = |k: u64| {
        let mut b = cairn_model::LabelsBuilder::new();
        b.set("__name__", "big");
        b.set("k", &format!("{}", k / 4));
        if !k.is_multiple_of(5) {
            b.set("odd", &(k % 2).to_string());
        }
        b.set("z", ["a", "a\0", "a\0b", "ab"][(k % 4) as usize]);
        b.build()
    };
    for i in 0..n {
        let k = (i * 7919) % n;
        let t = if k.is_multiple_of(3) { 10 } else { 1_000 };
        app.append(0, &mk(k), t, k as f64).unwrap();
    }
    app.commit().unwrap();
    let got = dump(&h, 500, 2_000, &all());
    let mut want: Vec<cairn_model::Labels> =
        (0..n).filter(|k| !k.is_multiple_of(3)).map(mk).collect();
    want.sort();
    let ls: Vec<cairn_model::Labels> = got.iter().map(|(l, _)| l.clone()).collect();
    assert_eq!(ls, want);
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
}
