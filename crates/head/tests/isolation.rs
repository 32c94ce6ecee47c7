//! Queriers see a snapshot: commits finishing after creation are invisible.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_model::labels;
use cairn_storage::{Appendable, Queryable, SelectHints, ValueType};
use support::*;

#[test]
fn querier_does_not_see_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let a = labels!("__name__" => "a");
    let b = labels!("__name__" => "b");
    let mut app = h.appender();
    for t in 0..100 {
        app.append(0, &a, t, t as f64).unwrap();
    }
    app.commit().unwrap();

    let q_before = h.querier(0, 1000).unwrap();
    let mut app = h.appender();
    // Enough samples to cut chunks, a new series, and samples into an old one.
    for t in 100..400 {
        app.append(0, &a, t, t as f64).unwrap();
        app.append(0, &b, t, t as f64).unwrap();
    }
    app.commit().unwrap();

    let set: Vec<_> = q_before
        .select(&SelectHints::default(), &all())
        .unwrap()
        .map(|s| s.unwrap())
        .collect();
    assert_eq!(set.len(), 1, "series b was created after the querier");
    let mut it = set[0].iter();
    let mut n = 0;
    while it.next() == ValueType::Float {
        assert!(it.at().0 < 100);
        n += 1;
    }
    assert_eq!(n, 100);
    drop(it);
    // Chunks are cut to the snapshot too.
    let mut cs = set[0].chunks().unwrap();
    let mut total = 0;
    while let Some(c) = cs.next_chunk() {
        let c = c.unwrap();
        assert!(c.max_time < 100);
        total += cairn_codec::decode_all(&c.data).unwrap().len();
    }
    assert_eq!(total, 100);
    drop(cs);
    assert_eq!(
        q_before.label_values("__name__", &[labels_m()]).unwrap(),
        vec!["a"]
    );
    drop(set);
    drop(q_before);

    let now = dump(&h, 0, 1000, &all());
    assert_eq!(now.len(), 2);
    assert_eq!(now[0].1.len(), 400);
    assert_eq!(now[1].1.len(), 300);
}

fn labels_m() -> cairn_model::Matcher {
    cairn_model::Matcher::new(cairn_model::MatchType::Regex, "__name__", ".+").unwrap()
}

#[test]
fn many_commits_under_a_long_lived_querier() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let l = labels!("__name__" => "x");
    let mut app = h.appender();
    app.append(0, &l, 0, 0.0).unwrap();
    app.commit().unwrap();
    let q = h.querier(0, i64::MAX).unwrap();
    for t in 1..500 {
        let mut app = h.appender();
        app.append(0, &l, t, t as f64).unwrap();
        app.commit().unwrap();
        if t % 100 == 0 {
            let set: Vec<_> = q
                .select(&SelectHints::default(), &all())
                .unwrap()
                .map(|s| s.unwrap())
                .collect();
            let mut it = set[0].iter();
            assert_eq!(it.next(), ValueType::Float);
            assert_eq!(it.at(), (0, 0.0));
            assert_eq!(it.next(), ValueType::None);
        }
    }
    drop(q);
    assert_eq!(dump(&h, 0, i64::MAX, &all())[0].1.len(), 500);
}
