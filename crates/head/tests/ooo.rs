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
    let mut app = h.appender();
    assert!(matches!(
        app.append(0, &l, 1150, 1.0),
        Err(StorageError::DuplicateSampleForTimestamp { t: 1150 })
    ));
    app.append(0, &l, 1150, -1150.0).unwrap();
    app.rollback().unwrap();

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
