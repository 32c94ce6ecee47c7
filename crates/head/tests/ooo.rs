//! Out-of-order samples within the window are accepted and merged on read.

mod support;

use cairn_model::labels;
use cairn_storage::{Appendable, Queryable, StorageError};
use support::*;

fn ooo_opts(window: i64) -> cairn_head::HeadOptions {
    let mut o = opts();
    o.ooo_window = window;
    o.ooo_capacity = 4;
    o
}

#[test]
fn ooo_samples_in_window_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), ooo_opts(1000));
    let l = labels!("__name__" => "m");
    let mut app = h.appender();
    for t in (0..=2000).step_by(100) {
        app.append(0, &l, t, t as f64).unwrap();
    }
    app.commit().unwrap();
    let mut app = h.appender();
    for t in [1050, 1950, 1150, 1250, 1350, 1450, 1550] {
        app.append(0, &l, t, -(t as f64)).unwrap();
    }
    // Same timestamp as an in-order sample: the in-order sample wins.
    app.append(0, &l, 1500, 99.0).unwrap();
    assert!(matches!(
        app.append(0, &l, 999, 1.0),
        Err(StorageError::TooOldSample { t: 999 })
    ));
    // A staged out-of-order sample is only checked at commit, where the
    // first one wins; a committed one is checked at once (below).
    app.append(0, &l, 1050, 1.0).unwrap();
    app.commit().unwrap();
    // Another value at a buffered out-of-order timestamp is dropped and
    // counted, not refused (Prometheus drops it at commit).
    let mut app = h.appender();
    app.append(0, &l, 1150, 1.0).unwrap();
    app.append(0, &l, 1150, -1150.0).unwrap();
    app.commit().unwrap();
    // Two conflicts: this one and the second 1050 of the commit before.
    assert_eq!(h.late_stats().conflicts_total, 2);

    let mut want: Vec<(i64, f64)> = (0..=2000).step_by(100).map(|t| (t, t as f64)).collect();
    for t in [1050, 1950, 1150, 1250, 1350, 1450, 1550] {
        want.push((t, -(t as f64)));
    }
    want.sort_by_key(|s| s.0);
    assert_eq!(dump(&h, 0, 5000, &all()), vec![(l.clone(), want.clone())]);
    assert_eq!(
        dump_chunks(&h, 0, 5000, &all(), cairn_head::DEFAULT_CHUNK_RANGE),
        vec![(l.clone(), want.clone())]
    );
    let part: Vec<_> = want
        .iter()
        .copied()
        .filter(|s| s.0 >= 1100 && s.0 <= 1400)
        .collect();
    assert_eq!(dump(&h, 1100, 1400, &all()), vec![(l.clone(), part)]);

    // Seek lands on merged samples.
    let q = h.querier(0, 5000).unwrap();
    let s = q
        .select(&Default::default(), &all())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut it = s.iter();
    assert_eq!(it.seek(1120), cairn_storage::ValueType::Float);
    assert_eq!(it.at(), (1150, -1150.0));
    assert_eq!(it.next(), cairn_storage::ValueType::Float);
    assert_eq!(it.at(), (1200, 1200.0));
}

#[test]
fn ooo_disabled_rejects_and_reopen_keeps_ooo_samples() {
    let dir = tempfile::tempdir().unwrap();
    let l = labels!("__name__" => "m");
    {
        let h = open(dir.path(), opts());
        let mut app = h.appender();
        app.append(0, &l, 100, 1.0).unwrap();
        app.commit().unwrap();
        let mut app = h.appender();
        assert!(matches!(
            app.append(0, &l, 50, 1.0),
            Err(StorageError::OutOfOrderSample { t: 50 })
        ));
    }
    let want = {
        let h = open(dir.path(), ooo_opts(100));
        for t in (50..100).rev() {
            let mut app = h.appender();
            app.append(0, &l, t, t as f64).unwrap();
            app.commit().unwrap();
        }
        assert!(h.stats().num_chunks > 1, "ooo chunks were cut");
        dump(&h, 0, 1000, &all())
    };
    assert_eq!(want[0].1.len(), 51);
    let h = open(dir.path(), ooo_opts(100));
    assert_eq!(dump(&h, 0, 1000, &all()), want);
}

mod model {
    use std::collections::BTreeMap;

    use cairn_model::Labels;
    use cairn_storage::{Appendable, Queryable, SelectHints, ValueType};
    use proptest::prelude::*;

    use super::support::*;

    const WINDOW: i64 = 1000;
    const CAP: usize = 3;

    /// One series as the head should hold it.
    #[derive(Default)]
    struct S {
        in_order: BTreeMap<i64, f64>,
        /// Out-of-order samples; the first written at a timestamp wins.
        ooo: BTreeMap<i64, f64>,
        /// Samples still in the unencoded out-of-order buffer. A timestamp
        /// can be here with a later value than `ooo`'s when the first sample
        /// at it was already encoded into a chunk (reads keep the chunk's).
        buf: BTreeMap<i64, f64>,
    }

    impl S {
        fn merged(&self) -> Vec<(i64, f64)> {
            let mut m = self.ooo.clone();
            m.extend(self.in_order.iter().map(|(t, v)| (*t, *v)));
            m.into_iter().collect()
        }
    }

    /// Applies Prometheus's rules; Ok(()) when accepted.
    fn model_append(s: &mut S, head_max: i64, t: i64, v: f64) -> Result<(), ()> {
        match s.in_order.last_key_value().map(|(a, b)| (*a, *b)) {
            None => {
                s.in_order.insert(t, v);
                return Ok(());
            }
            Some((m, _)) if t > m => {
                s.in_order.insert(t, v);
                return Ok(());
            }
            Some((m, lv)) if t == m => {
                return if lv.to_bits() == v.to_bits() {
                    Ok(())
                } else {
                    Err(())
                }
            }
            Some(_) => {}
        }
        if t < head_max - WINDOW {
            return Err(());
        }
        // A duplicate is judged against the buffer's sample at `t`, the only
        // one the head can see without decoding chunks; another value is
        // dropped (and counted), not refused, as Prometheus drops it.
        if s.buf.contains_key(&t) {
            return Ok(());
        }
        s.ooo.entry(t).or_insert(v);
        s.buf.insert(t, v);
        if s.buf.len() >= CAP {
            s.buf.clear();
            s.buf.insert(t, v);
        }
        Ok(())
    }

    fn lbl(i: usize) -> Labels {
        Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn ooo_appends_and_seeks_match_a_model(
            ops in proptest::collection::vec((0usize..3, 0i64..4000, 0u8..4), 1..200),
            seeks in proptest::collection::vec(0i64..4200, 0..10),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut o = opts();
            o.ooo_window = WINDOW;
            o.ooo_capacity = CAP;
            o.samples_per_chunk = 5;
            o.chunk_range = 1_000_000;
            let h = open(dir.path(), o);
            let mut m: BTreeMap<usize, S> = BTreeMap::new();
            let mut head_max = i64::MIN;
            for (i, t, v) in ops {
                let v = f64::from(v);
                let s = m.entry(i).or_default();
                let want = model_append(s, head_max, t, v);
                let mut app = h.appender();
                let got = app.append(0, &lbl(i), t, v);
                prop_assert_eq!(got.is_ok(), want.is_ok(), "{} at {} = {}: {:?}", i, t, v, got);
                app.commit().unwrap();
                if want.is_ok() {
                    head_max = head_max.max(t);
                }
            }
            let want: Vec<_> = m.iter().map(|(i, s)| (lbl(*i), s.merged())).filter(|x| !x.1.is_empty()).collect();
            prop_assert_eq!(&dump(&h, 0, i64::MAX, &all()), &want);
            prop_assert_eq!(&dump_chunks(&h, 0, i64::MAX, &all(), 1_000_000), &want);
            // Seeks (never backwards) then next, against the model.
            let q = h.querier(0, i64::MAX).unwrap();
            let set: Vec<_> = q.select(&SelectHints::default(), &all()).unwrap().map(|s| s.unwrap()).collect();
            for (s, (_, w)) in set.iter().zip(want.iter()) {
                let mut it = s.iter();
                let mut pos: Option<i64> = None;
                for &x in &seeks {
                    let target = pos.map_or(x, |p| p.max(x));
                    let exp = w.iter().find(|p| p.0 >= target).copied();
                    let vt = it.seek(x);
                    prop_assert_eq!(vt == ValueType::Float, exp.is_some());
                    if let Some(e) = exp {
                        prop_assert_eq!(it.at(), e);
                        let nx = w.iter().find(|p| p.0 > e.0).copied();
                        let vt = it.next();
                        prop_assert_eq!(vt == ValueType::Float, nx.is_some());
                        match nx {
                            Some(n) => { prop_assert_eq!(it.at(), n); pos = Some(n.0); }
                            None => break,
                        }
                    } else {
                        break;
                    }
                }
            }
        }
    }
}
