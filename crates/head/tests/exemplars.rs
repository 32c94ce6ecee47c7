//! Exemplars in the head: staged with samples, logged to the WAL on
//! commit, kept in the bounded ring, replayed after a restart (from the
//! checkpoint too), and selected as Prometheus's `query_exemplars` selects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_head::{Head, HeadOptions};
use cairn_model::{labels, Exemplar, Labels, MatchType, Matcher};
use cairn_storage::{Appendable, Queryable, StorageError};
use support::*;

fn ex(ts: i64, v: f64, trace: &str) -> Exemplar {
    Exemplar {
        labels: labels!("trace_id" => trace),
        value: v,
        ts,
    }
}

fn series(i: usize) -> Labels {
    Labels::from_pairs([
        (
            "__name__",
            "http_request_duration_seconds_bucket".to_owned(),
        ),
        ("le", "0.5".to_owned()),
        ("pod", format!("p{i}")),
    ])
}

fn name_sel() -> Vec<Vec<Matcher>> {
    vec![vec![Matcher::new(
        MatchType::Equal,
        "__name__",
        "http_request_duration_seconds_bucket",
    )
    .unwrap()]]
}

/// Every exemplar held, as (series pod, ts, value, trace id).
fn held(h: &Head) -> Vec<(String, i64, f64, String)> {
    h.exemplars(i64::MIN, i64::MAX, &name_sel())
        .unwrap()
        .into_iter()
        .flat_map(|se| {
            let pod = se.labels.get("pod").unwrap().to_owned();
            se.exemplars.into_iter().map(move |e| {
                (
                    pod.clone(),
                    e.ts,
                    e.value,
                    e.labels.get("trace_id").unwrap_or("").to_owned(),
                )
            })
        })
        .collect()
}

/// Three series, samples at 10 s steps from `from` to `to` (exclusive),
/// an exemplar every second sample.
fn fill(h: &Head, from: i64, to: i64) {
    for t in (from..to).step_by(10_000) {
        let mut app = h.appender();
        for i in 0..3 {
            let l = series(i);
            let r = app.append(0, &l, t, t as f64).unwrap();
            if (t / 10_000) % 2 == 0 {
                app.append_exemplar(r, &l, &ex(t, i as f64 + 0.5, &format!("t{t}-{i}")))
                    .unwrap();
            }
        }
        app.commit().unwrap();
    }
}

#[test]
fn exemplars_are_stored_on_commit_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    fill(&h, 0, 100_000);
    let before = held(&h);
    // 5 exemplars (t = 0, 20, ..., 80 s) for each of 3 series.
    assert_eq!(before.len(), 15);
    assert_eq!(before[0], ("p0".to_owned(), 0, 0.5, "t0-0".to_owned()));
    assert_eq!(h.exemplar_stats().exemplars, 15);
    assert_eq!(h.exemplar_stats().series, 3);

    // Rolled back: nothing.
    let mut app = h.appender();
    let l = series(0);
    let r = app.append(0, &l, 200_000, 1.0).unwrap();
    app.append_exemplar(r, &l, &ex(200_000, 9.0, "gone"))
        .unwrap();
    app.rollback().unwrap();
    assert_eq!(held(&h), before);

    // The head snapshot carries them; so does a WAL replay.
    let plain = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), plain.path());
    assert!(h.write_snapshot().unwrap().is_some());
    drop(h);
    let h = open(dir.path(), opts());
    assert!(h.opened_from_snapshot());
    assert_eq!(held(&h), before);
    let h = open(plain.path(), opts());
    assert!(!h.opened_from_snapshot());
    assert_eq!(held(&h), before);
}

#[test]
fn duplicates_are_skipped_and_older_ones_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let l = series(0);
    let mut app = h.appender();
    let r = app.append(0, &l, 1000, 1.0).unwrap();
    app.append_exemplar(r, &l, &ex(1000, 1.0, "a")).unwrap();
    // The same again in this appender: skipped.
    app.append_exemplar(r, &l, &ex(1000, 1.0, "a")).unwrap();
    // Older than what this appender staged: refused.
    assert!(matches!(
        app.append_exemplar(r, &l, &ex(999, 2.0, "b")),
        Err(StorageError::OutOfOrderExemplar { ts: 999 })
    ));
    app.commit().unwrap();
    let mut app = h.appender();
    // Equal to the stored newest: skipped, not an error.
    app.append_exemplar(r, &l, &ex(1000, 1.0, "a")).unwrap();
    // Same timestamp, other value: out of order.
    assert!(matches!(
        app.append_exemplar(r, &l, &ex(1000, 3.0, "a")),
        Err(StorageError::OutOfOrderExemplar { ts: 1000 })
    ));
    // Labels over 128 code points.
    let long = Exemplar {
        labels: labels!("trace_id" => "x".repeat(121)),
        value: 1.0,
        ts: 2000,
    };
    assert!(matches!(
        app.append_exemplar(r, &l, &long),
        Err(StorageError::ExemplarLabelsTooLong { len: 129 })
    ));
    app.commit().unwrap();
    assert_eq!(held(&h), vec![("p0".to_owned(), 1000, 1.0, "a".to_owned())]);
    // By labels alone (ref 0), as Prometheus sends them in series entries
    // without samples; a series the head does not hold is not created.
    let mut app = h.appender();
    app.append_exemplar(0, &l, &ex(3000, 1.0, "c")).unwrap();
    assert!(matches!(
        app.append_exemplar(0, &series(9), &ex(3000, 1.0, "c")),
        Err(StorageError::SeriesNotFound { .. })
    ));
    app.commit().unwrap();
    assert_eq!(h.stats().num_series, 1);
    assert_eq!(
        held(&h),
        vec![
            ("p0".to_owned(), 1000, 1.0, "a".to_owned()),
            ("p0".to_owned(), 3000, 1.0, "c".to_owned())
        ]
    );
}

#[test]
fn the_ring_keeps_the_newest_and_a_replay_keeps_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions {
        max_exemplars: 4,
        ..opts()
    };
    let h = open(dir.path(), o.clone());
    fill(&h, 0, 100_000);
    let got = held(&h);
    // The newest four of all: t = 60 s for p2, t = 80 s for all three
    // (p0..p2 in commit order), sorted by series.
    let keys: Vec<(String, i64)> = got.iter().map(|(p, t, ..)| (p.clone(), *t)).collect();
    assert_eq!(
        keys,
        vec![
            ("p0".to_owned(), 80_000),
            ("p1".to_owned(), 80_000),
            ("p2".to_owned(), 60_000),
            ("p2".to_owned(), 80_000)
        ]
    );
    let plain = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), plain.path());
    assert!(h.write_snapshot().unwrap().is_some());
    drop(h);
    let h = open(
        plain.path(),
        HeadOptions {
            replay_threads: 1,
            ..o.clone()
        },
    );
    assert_eq!(held(&h), got);
    // From the snapshot, with a smaller ring: the newest two.
    let h = open(
        dir.path(),
        HeadOptions {
            max_exemplars: 2,
            ..o
        },
    );
    assert!(h.opened_from_snapshot());
    let t: Vec<i64> = held(&h).iter().map(|(_, t, ..)| *t).collect();
    assert_eq!(t, vec![80_000, 80_000]);
}

#[test]
fn disabled_storage_refuses_and_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions {
        max_exemplars: 0,
        ..opts()
    };
    let h = open(dir.path(), o);
    let l = series(0);
    let mut app = h.appender();
    let r = app.append(0, &l, 1000, 1.0).unwrap();
    assert!(matches!(
        app.append_exemplar(r, &l, &ex(1000, 1.0, "a")),
        Err(StorageError::ExemplarStorageDisabled)
    ));
    app.commit().unwrap();
    assert!(held(&h).is_empty());
}

#[test]
fn the_checkpoint_keeps_exemplars_at_or_after_the_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    // Two chunk ranges' worth (the default range is 2 h), so truncation
    // at 2 h drops the first.
    let two_h = 2 * 3600 * 1000;
    for t in [0, 60_000, two_h, two_h + 60_000] {
        let mut app = h.appender();
        let l = series(0);
        let r = app.append(0, &l, t, 1.0).unwrap();
        app.append_exemplar(r, &l, &ex(t, 1.0, &format!("t{t}")))
            .unwrap();
        app.commit().unwrap();
    }
    h.truncate(two_h).unwrap();
    // Still held in memory: the ring is not truncated (as in Prometheus).
    assert_eq!(held(&h).len(), 4);
    drop(h);
    let h = open(dir.path(), opts());
    let ts: Vec<i64> = held(&h).into_iter().map(|(_, t, ..)| t).collect();
    // Truncation closed the segment and checkpointed everything before
    // it: the checkpoint kept the exemplars at or after 2 h only.
    assert_eq!(ts, vec![two_h, two_h + 60_000]);
}
