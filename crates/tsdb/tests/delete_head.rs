//! Deleting data still in the head through the database, and what the head
//! replays on open when blocks already hold older data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod common;

use cairn_model::{labels, Labels, Matcher};
use cairn_storage::{Appendable, StorageError};
use cairn_tsdb::{Db, DbOptions};
use common::*;

const H: i64 = 3_600_000;

fn opts() -> DbOptions {
    DbOptions {
        maintenance_interval: None,
        retention_time: 0,
        ..DbOptions::default()
    }
}

fn lbl(i: usize) -> Labels {
    labels!("__name__" => "up", "i" => &i.to_string())
}

/// Two series, one sample a minute over `[from, to)`.
fn append_range(db: &Db, from: i64, to: i64) {
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for i in 0..2 {
            app.append(0, &lbl(i), t, (t / 60_000 + i as i64) as f64)
                .unwrap();
        }
        app.commit().unwrap();
        t += 60_000;
    }
}

fn expected(from: i64, to: i64, deleted: impl Fn(usize, i64) -> bool) -> Vec<(Labels, i64, u64)> {
    let mut out = Vec::new();
    for i in 0..2 {
        let mut t = from;
        while t < to {
            if !deleted(i, t) {
                out.push((lbl(i), t, ((t / 60_000 + i as i64) as f64).to_bits()));
            }
            t += 60_000;
        }
    }
    out
}

#[test]
fn head_deletions_are_hidden_survive_restart_and_never_reach_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let gone = |i: usize, t: i64| i == 0 && (10 * 60_000..=30 * 60_000).contains(&t);
    {
        let db = Db::open(tmp.path(), opts()).unwrap();
        append_range(&db, 0, 2 * H);
        assert!(db.blocks().is_empty(), "everything is still in the head");
        let n = db
            .delete_series(&[Matcher::equal("i", "0")], 10 * 60_000, 30 * 60_000)
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            all_samples(&*db, i64::MIN, i64::MAX),
            expected(0, 2 * H, gone)
        );
    }
    // Reopen without any shutdown step: the WAL brings the deletion back.
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(
        all_samples(&*db, i64::MIN, i64::MAX),
        expected(0, 2 * H, gone)
    );
    let ids = db.cut_head_now().unwrap();
    assert_eq!(ids.len(), 1);
    let b = &db.blocks()[0];
    assert!(
        b.tombstones().is_empty(),
        "no tombstone: the samples are gone"
    );
    let want = expected(0, 2 * H, gone);
    assert_eq!(b.meta().stats.num_samples, want.len() as u64);
    assert_eq!(all_samples(&*db, i64::MIN, i64::MAX), want);
    // promtool reads the cut block with exactly the remaining samples.
    let dump = promtool_dump(tmp.path());
    let lines = dump.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(lines, want.len(), "{dump}");
    assert!(
        dump.contains(&format!("{{__name__=\"up\", i=\"0\"}} 40 {}", 40 * 60_000)),
        "a kept sample is missing (or the dump format changed):\n{dump}"
    );
    assert!(
        !dump.contains(&format!("{{__name__=\"up\", i=\"0\"}} 1 {}", 20 * 60_000)),
        "a deleted sample is in the block:\n{dump}"
    );
}

#[test]
fn reopen_replays_only_data_after_the_newest_block() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let db = Db::open(tmp.path(), opts()).unwrap();
        append_range(&db, 0, 2 * H);
        db.cut_head_now().unwrap();
        append_range(&db, 2 * H, 2 * H + 10 * 60_000);
    }
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(db.blocks()[0].meta().max_time, 2 * H);
    assert_eq!(db.head().min_time(), 2 * H);
    // A new series cannot start inside the range the block already covers,
    // even though it is within half a chunk range of the head's newest sample.
    let mut app = db.appender();
    let r = app.append(0, &labels!("__name__" => "late"), 2 * H - 60_000, 1.0);
    assert!(
        matches!(r, Err(StorageError::OutOfBounds { .. })),
        "appended into a persisted range: {r:?}"
    );
    app.append(0, &labels!("__name__" => "late"), 2 * H, 1.0)
        .unwrap();
    app.commit().unwrap();
}
