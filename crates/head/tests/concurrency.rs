//! Parallel appenders on disjoint and shared series, with a reader running.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use cairn_model::labels;
use cairn_storage::{Appendable, StorageError};
use support::*;

#[test]
fn parallel_appenders_on_disjoint_and_shared_series() {
    let dir = tempfile::tempdir().unwrap();
    let h = Arc::new(open(dir.path(), opts()));
    let threads = 4;
    let per = 300i64;
    std::thread::scope(|sc| {
        for th in 0..threads {
            let h = h.clone();
            sc.spawn(move || {
                let own: Vec<_> = (0..10).map(|i| labels!("__name__" => "own".to_string(), "th" => th.to_string(), "i" => i.to_string())).collect();
                let shared = labels!("__name__" => "shared");
                for t in 0..per {
                    let mut app = h.appender();
                    for l in &own {
                        app.append(0, l, t, t as f64).unwrap();
                    }
                    // Every thread writes the same value at each shared
                    // timestamp: each is accepted once, duplicates are
                    // no-ops, and late ones are out of order.
                    match app.append(0, &shared, t, t as f64) {
                        Ok(_) | Err(StorageError::OutOfOrderSample { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                    app.commit().unwrap();
                }
            });
        }
        let h = h.clone();
        sc.spawn(move || {
            for _ in 0..50 {
                for (_, s) in dump(&*h, 0, i64::MAX, &all()) {
                    assert!(s.windows(2).all(|w| w[0].0 < w[1].0));
                }
            }
        });
    });
    let got = dump(&*h, 0, i64::MAX, &all());
    assert_eq!(got.len(), threads * 10 + 1);
    for (l, s) in &got {
        if l.metric_name() == Some("own") {
            assert_eq!(s.len(), per as usize);
        } else {
            assert!(!s.is_empty());
            assert!(s.iter().all(|x| x.1 == x.0 as f64));
        }
    }
    assert_eq!(h.stats().num_series, (threads * 10 + 1) as u64);
    drop(got);
    // Everything committed is in the WAL.
    let expected = dump(&*h, 0, i64::MAX, &all());
    drop(h);
    let h = open(dir.path(), opts());
    assert_eq!(dump(&h, 0, i64::MAX, &all()), expected);
}

#[test]
fn truncation_and_queries_race_with_appends() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.chunk_range = 100_000;
    let h = Arc::new(open(dir.path(), o));
    let per = 3000i64;
    // Each appender publishes how far it got, so truncation stays behind both.
    let progress = [AtomicI64::new(0), AtomicI64::new(0)];
    let progress = &progress;
    std::thread::scope(|sc| {
        for (th, mine) in progress.iter().enumerate() {
            let h = h.clone();
            sc.spawn(move || {
                for t in 0..per {
                    mine.store(t, Ordering::SeqCst);
                    let mut app = h.appender();
                    for i in 0..5 {
                        let l = labels!("__name__" => "x".to_string(), "th" => th.to_string(), "i" => i.to_string());
                        app.append(0, &l, t, t as f64).unwrap();
                    }
                    // A series that lives only briefly, so truncation removes series.
                    let l = labels!("__name__" => "short".to_string(), "t" => t.to_string());
                    match app.append(0, &l, t, 1.0) {
                        Ok(_) | Err(StorageError::OutOfBounds { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                    app.commit().unwrap();
                }
            });
        }
        let hq = h.clone();
        sc.spawn(move || {
            for _ in 0..30 {
                for (_, s) in dump_stepwise(&*hq, 0, i64::MAX, &all()) {
                    assert!(s.windows(2).all(|w| w[0].0 < w[1].0));
                }
            }
        });
        let ht = h.clone();
        sc.spawn(move || {
            for _ in 0..20 {
                let behind = progress
                    .iter()
                    .map(|p| p.load(Ordering::SeqCst))
                    .min()
                    .unwrap_or(0);
                ht.truncate((behind - 200).max(0)).unwrap();
            }
        });
    });
    let got = dump(&*h, 0, i64::MAX, &all());
    let xs: Vec<_> = got
        .iter()
        .filter(|(l, _)| l.metric_name() == Some("x"))
        .collect();
    assert_eq!(xs.len(), 10);
    for (_, s) in xs {
        assert_eq!(s.last().unwrap().0, per - 1);
        // Contiguous from wherever truncation left off.
        assert!(s.windows(2).all(|w| w[1].0 == w[0].0 + 1));
    }
    let expected = dump(&*h, 0, i64::MAX, &all());
    let st = h.stats();
    drop(h);
    let mut o = opts();
    o.chunk_range = 100_000;
    let h = open(dir.path(), o);
    let again = dump(&h, 0, i64::MAX, &all());
    // Replay may bring back short series samples the checkpoint kept; the
    // long-lived series are identical.
    let pick = |v: &Vec<(cairn_model::Labels, Vec<(i64, f64)>)>| {
        v.iter()
            .filter(|(l, _)| l.metric_name() == Some("x"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(pick(&again).len(), 10);
    for ((la, sa), (lb, sb)) in pick(&again).iter().zip(pick(&expected).iter()) {
        assert_eq!(la, lb);
        assert!(sa.ends_with(sb), "replay holds at least what the head held");
    }
    assert!(h.stats().num_series >= 10 && st.num_series >= 10);
}
