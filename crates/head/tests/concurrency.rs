//! Parallel appenders on disjoint and shared series, with a reader running.

mod support;

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
