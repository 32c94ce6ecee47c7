//! Deleting from the head: queries (samples and chunks) stop showing the
//! deleted samples, the deletion survives a restart (WAL replay, also
//! through a checkpoint), and a model of random appends and deletes agrees.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeMap;

use cairn_head::{Head, HeadOptions};
use cairn_model::{labels, Labels, MatchType, Matcher};
use cairn_storage::Appendable;
use proptest::prelude::*;
use support::*;

fn small_opts() -> HeadOptions {
    HeadOptions {
        chunk_range: 1000,
        samples_per_chunk: 5,
        ..opts()
    }
}

fn eq(name: &str, v: &str) -> Matcher {
    Matcher::new(MatchType::Equal, name, v).unwrap()
}

type Model = BTreeMap<Labels, BTreeMap<i64, f64>>;

fn want(m: &Model, mint: i64, maxt: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    m.iter()
        .map(|(l, s)| {
            (
                l.clone(),
                s.range(mint..=maxt)
                    .map(|(t, v)| (*t, *v))
                    .collect::<Vec<_>>(),
            )
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

/// Both read paths agree with the model over the whole range and a part.
fn check(h: &Head, m: &Model, chunk_range: i64) {
    for (mint, maxt) in [(i64::MIN, i64::MAX), (0, 2500), (1500, 4000)] {
        let w = want(m, mint, maxt);
        assert_eq!(dump(h, mint, maxt, &all()), w, "iter [{mint}, {maxt}]");
        assert_eq!(
            dump_chunks(h, mint, maxt, &all(), chunk_range),
            w,
            "chunks [{mint}, {maxt}]"
        );
    }
}

fn append_all(h: &Head, m: &mut Model, samples: &[(Labels, i64, f64)]) {
    let mut app = h.appender();
    for (l, t, v) in samples {
        app.append(0, l, *t, *v).unwrap();
        m.entry(l.clone()).or_default().insert(*t, *v);
    }
    app.commit().unwrap();
}

#[test]
fn delete_hides_samples_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = labels!("__name__" => "up", "job" => "a");
    let b = labels!("__name__" => "up", "job" => "b");
    let mut m = Model::new();
    {
        let h = open(dir.path(), small_opts());
        // 0..=2990 step 10: several disk chunks per series plus an open one.
        let samples: Vec<(Labels, i64, f64)> = (0..300)
            .flat_map(|i| {
                [
                    (a.clone(), i * 10, i as f64),
                    (b.clone(), i * 10, -(i as f64)),
                ]
            })
            .collect();
        append_all(&h, &mut m, &samples);
        let chunks_before = h.stats().num_chunks;

        // Inside a chunk, across chunk and range boundaries, and the open chunk.
        assert_eq!(h.delete(&[eq("job", "a")], 15, 42).unwrap(), 1);
        assert_eq!(h.delete(&[eq("job", "a")], 980, 1230).unwrap(), 1);
        assert_eq!(h.delete(&[eq("job", "a")], 2975, 5000).unwrap(), 1);
        // Outside every series' span: nothing affected.
        assert_eq!(h.delete(&all(), 9000, 9999).unwrap(), 0);
        assert_eq!(h.delete(&all(), 50, 40).unwrap(), 0);
        let sa = m.get_mut(&a).unwrap();
        sa.retain(|t, _| !(15..=42).contains(t) && !(980..=1230).contains(t) && *t < 2975);
        check(&h, &m, 1000);
        assert!(
            h.stats().num_chunks < chunks_before,
            "emptied chunks are dropped"
        );
        assert_eq!(
            h.tombstones(),
            vec![(a.clone(), vec![(15, 42), (980, 1230), (2975, 2990)])],
            "intervals are clamped to the series span and merged"
        );

        // The newest sample of `a` is now 2970: appends after it are in order.
        let mut app = h.appender();
        app.append(0, &a, 2970, 297.0).unwrap();
        app.append(0, &a, 3000, 1.5).unwrap();
        app.commit().unwrap();
        m.get_mut(&a).unwrap().insert(3000, 1.5);
        check(&h, &m, 1000);
    }
    // kill -9 equivalent: the head is dropped without any shutdown step.
    let h = open(dir.path(), small_opts());
    check(&h, &m, 1000);
    assert_eq!(h.tombstones().len(), 1, "replayed tombstones are recorded");
}

#[test]
fn out_of_order_samples_are_deleted_too() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions {
        ooo_window: 10_000,
        ooo_capacity: 4,
        ..small_opts()
    };
    let l = labels!("__name__" => "m");
    let mut m = Model::new();
    {
        let h = open(dir.path(), o.clone());
        let inorder: Vec<_> = (0..50)
            .map(|i| (l.clone(), 1000 + i * 20, i as f64))
            .collect();
        append_all(&h, &mut m, &inorder);
        // Out-of-order samples: some encoded into chunks, some in the buffer.
        for i in 0..11 {
            append_all(&h, &mut m, &[(l.clone(), 1005 + i * 40, 100.0 + i as f64)]);
        }
        assert_eq!(h.delete(&all(), 1100, 1300).unwrap(), 1);
        m.get_mut(&l)
            .unwrap()
            .retain(|t, _| !(1100..=1300).contains(t));
        check(&h, &m, 1000);
    }
    let h = open(dir.path(), o);
    check(&h, &m, 1000);
}

#[test]
fn checkpoint_keeps_tombstones_of_live_series() {
    let dir = tempfile::tempdir().unwrap();
    let l = labels!("__name__" => "m");
    let gone = labels!("__name__" => "old");
    let mut m = Model::new();
    {
        let h = open(dir.path(), small_opts());
        let s: Vec<_> = (0..300)
            .map(|i| (l.clone(), i * 10, i as f64))
            .chain((0..50).map(|i| (gone.clone(), i * 10, 0.0)))
            .collect();
        append_all(&h, &mut m, &s);
        h.delete(&[], 300, 450).unwrap();
        h.delete(&[eq("__name__", "m")], 1500, 1700).unwrap();
        // Truncation checkpoints every closed segment: the deletion records
        // now live only in the checkpoint.
        h.truncate(1000).unwrap();
        m.remove(&gone);
        let s = m.get_mut(&l).unwrap();
        s.retain(|t, _| *t >= 1000 && !(1500..=1700).contains(t));
        check(&h, &m, 1000);
        assert_eq!(h.tombstones(), vec![(l.clone(), vec![(1500, 1700)])]);
    }
    let wal = dir.path().join("wal");
    assert!(
        std::fs::read_dir(&wal).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("checkpoint.")),
        "a checkpoint was written"
    );
    let h = open(
        dir.path(),
        HeadOptions {
            min_valid_time: 1000,
            ..small_opts()
        },
    );
    check(&h, &m, 1000);
}

#[derive(Debug, Clone)]
enum Op {
    /// Samples at the next timestamp for these series (bitmask of 4).
    Append(u8, i64, f64),
    /// Delete `[a, a + w]` from series matching the selector.
    Delete(u8, i64, i64),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u8..16, 1i64..40, -1e3f64..1e3).prop_map(|(s, dt, v)| Op::Append(s, dt, v)),
        2 => (0u8..6, 0i64..3000, 0i64..800).prop_map(|(s, a, w)| Op::Delete(s, a, w)),
        1 => Just(Op::Reopen),
    ]
}

fn lbl(i: usize) -> Labels {
    labels!("__name__" => format!("m{}", i % 2), "i" => i.to_string())
}

/// Selector `k`: one series (0..4), a metric name (4: m0), or all (5).
fn selector(k: u8) -> (Vec<Matcher>, Vec<Labels>) {
    match k {
        0..=3 => (vec![eq("i", &k.to_string())], vec![lbl(k as usize)]),
        4 => (vec![eq("__name__", "m0")], vec![lbl(0), lbl(2)]),
        _ => (all(), (0..4).map(lbl).collect()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]
    #[test]
    fn random_appends_and_deletes_match_a_model(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut h = Some(open(dir.path(), small_opts()));
        let mut m = Model::new();
        let mut t = 0i64;
        for o in ops {
            let head = h.as_ref().unwrap();
            match o {
                Op::Append(mask, dt, v) => {
                    t += dt;
                    let s: Vec<_> = (0..4)
                        .filter(|i| mask & (1 << i) != 0)
                        .map(|i| (lbl(i), t, v + i as f64))
                        .collect();
                    append_all(head, &mut m, &s);
                }
                Op::Delete(k, a, w) => {
                    let (ms, ls) = selector(k);
                    let b = a + w;
                    let hit = ls
                        .iter()
                        .filter(|l| {
                            // The series' span meets the interval.
                            m.get(*l).is_some_and(|s| {
                                s.keys().next().is_some_and(|f| *f <= b)
                                    && s.keys().next_back().is_some_and(|l| *l >= a)
                            })
                        })
                        .count() as u64;
                    prop_assert_eq!(head.delete(&ms, a, b).unwrap(), hit);
                    for l in &ls {
                        if let Some(s) = m.get_mut(l) {
                            s.retain(|t, _| *t < a || *t > b);
                        }
                    }
                }
                Op::Reopen => {
                    drop(h.take());
                    h = Some(open(dir.path(), small_opts()));
                }
            }
            check(h.as_ref().unwrap(), &m, 1000);
        }
        drop(h);
        let h = open(dir.path(), small_opts());
        check(&h, &m, 1000);
    }
}
