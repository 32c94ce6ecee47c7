//! Late samples through the database: older than the head's range (already
//! cut into blocks), accepted within the out-of-order window, readable at
//! once, durable through `wbl/` across a crash, written into blocks of
//! their own by a flush and merged by compaction, exactly once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod common;

use std::collections::BTreeMap;

use cairn_model::{labels, Labels};
use cairn_storage::Appendable;
use cairn_tsdb::{Db, DbEvent, DbOptions};
use common::*;

const H: i64 = 3_600_000;
const MIN: i64 = 60_000;

fn opts() -> DbOptions {
    DbOptions {
        maintenance_interval: None,
        retention_time: 0,
        downsample: false,
        ooo_window: 30 * 24 * H,
        ..DbOptions::default()
    }
}

fn series(i: usize) -> Labels {
    labels!("__name__" => "gpu_util", "gpu" => &i.to_string())
}

type Model = BTreeMap<Labels, BTreeMap<i64, f64>>;

fn append(db: &Db, model: &mut Model, samples: &[(Labels, i64, f64)]) {
    let mut app = db.appender();
    for (l, t, v) in samples {
        app.append(0, l, *t, *v).unwrap();
        model.entry(l.clone()).or_default().insert(*t, *v);
    }
    app.commit().unwrap();
}

fn in_order(db: &Db, model: &mut Model, from: i64, to: i64) {
    let mut t = from;
    while t < to {
        let batch: Vec<_> = (0..3).map(|i| (series(i), t, (t / MIN) as f64)).collect();
        append(db, model, &batch);
        t += MIN;
    }
}

/// The model as `all_samples` reports (labels, t, value bits), sorted.
fn expected(model: &Model) -> Vec<(Labels, i64, u64)> {
    let mut v: Vec<_> = model
        .iter()
        .flat_map(|(l, s)| s.iter().map(move |(t, x)| (l.clone(), *t, x.to_bits())))
        .collect();
    v.sort();
    v
}

fn read_all(db: &Db) -> Vec<(Labels, i64, u64)> {
    let mut v = stepped_samples(db, i64::MIN, i64::MAX);
    v.sort();
    v
}

fn overlapping_blocks(db: &Db) -> usize {
    let metas: Vec<_> = db.blocks().iter().map(|b| b.meta()).collect();
    metas
        .windows(2)
        .filter(|w| w[1].min_time < w[0].max_time)
        .count()
}

#[test]
fn late_samples_are_kept_flushed_and_merged_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let db = Db::open(tmp.path(), opts()).unwrap();
    in_order(&db, &mut model, 0, 8 * H);
    db.maintain().unwrap();
    let cut_at = db.head().truncated_before();
    assert!(cut_at >= 4 * H, "the head was cut: {cut_at}");
    assert!(!db.blocks().is_empty());

    // A lagging shard: samples between the existing ones, a series the
    // store has never seen, all in ranges already in blocks.
    let late = vec![
        (series(0), 30 * MIN + 30_000, -1.0),
        (series(1), 3 * H + 15_000, -2.0),
        (labels!("__name__" => "gpu_util", "gpu" => "9"), H, 42.0),
    ];
    append(&db, &mut model, &late);
    assert_eq!(db.head().late_stats().held, 3);
    assert_eq!(read_all(&db), expected(&model));

    // A crash before any flush: the WAL and wbl/ bring them back.
    drop(db);
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(db.head().late_stats().held, 3);
    assert_eq!(read_all(&db), expected(&model));

    let rx = db.subscribe();
    let blocks_before = db.blocks().len();
    let flushed = db.flush_late().unwrap();
    // One block per two-hour range holding late samples: [0, 2h), [2h, 4h).
    assert_eq!(flushed.len(), 2);
    let ev: Vec<DbEvent> = rx.try_iter().collect();
    assert_eq!(
        ev,
        vec![DbEvent::LateFlushed {
            blocks: flushed.clone(),
            samples: 3
        }]
    );
    assert_eq!(db.blocks().len(), blocks_before + 2);
    assert!(overlapping_blocks(&db) > 0);
    assert_eq!(db.head().late_stats().held, 0);
    assert_eq!(read_all(&db), expected(&model));

    // Compaction merges each late block into the block it overlaps.
    db.compact_now().unwrap();
    assert_eq!(overlapping_blocks(&db), 0);
    assert_eq!(read_all(&db), expected(&model));

    // Nothing comes back twice after a restart.
    drop(db);
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(db.head().late_stats().held, 0);
    assert_eq!(read_all(&db), expected(&model));
}

#[test]
fn a_maintenance_round_that_cuts_the_head_flushes_late_samples() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let db = Db::open(tmp.path(), opts()).unwrap();
    in_order(&db, &mut model, 0, 6 * H);
    db.maintain().unwrap();
    append(&db, &mut model, &[(series(2), 10 * MIN + 1, 7.5)]);
    // No cut due, fewer than `late_flush_samples`: kept in the head.
    db.maintain().unwrap();
    assert_eq!(db.head().late_stats().held, 1);
    let rx = db.subscribe();
    in_order(&db, &mut model, 6 * H, 8 * H);
    db.maintain().unwrap();
    let ev: Vec<DbEvent> = rx.try_iter().collect();
    assert!(
        ev.iter()
            .any(|e| matches!(e, DbEvent::LateFlushed { samples: 1, .. })),
        "{ev:?}"
    );
    assert_eq!(db.head().late_stats().held, 0);
    assert_eq!(overlapping_blocks(&db), 0, "compacted in the same round");
    assert_eq!(read_all(&db), expected(&model));
}

#[test]
fn a_threshold_of_held_late_samples_flushes_without_a_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let o = DbOptions {
        late_flush_samples: 2,
        ..opts()
    };
    let db = Db::open(tmp.path(), o).unwrap();
    in_order(&db, &mut model, 0, 6 * H);
    db.maintain().unwrap();
    append(
        &db,
        &mut model,
        &[(series(0), MIN + 1, 1.0), (series(1), MIN + 2, 2.0)],
    );
    let rx = db.subscribe();
    db.maintain().unwrap();
    let ev: Vec<DbEvent> = rx.try_iter().collect();
    assert!(
        ev.iter()
            .any(|e| matches!(e, DbEvent::LateFlushed { samples: 2, .. })),
        "{ev:?}"
    );
    assert_eq!(read_all(&db), expected(&model));
}

#[test]
fn the_out_of_order_log_is_emptied_at_every_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let db = Db::open(tmp.path(), opts()).unwrap();
    let wbl_bytes = || -> u64 {
        std::fs::read_dir(tmp.path().join("wbl"))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum()
    };
    let mut sizes = Vec::new();
    for k in 0..6 {
        let from = k * 2 * H;
        in_order(&db, &mut model, from, from + 2 * H);
        // Out-of-order samples inside the head's range only: they are in
        // the WAL and, for Prometheus, in wbl/ too.
        let ooo: Vec<_> = (0..50)
            .map(|i| (series(0), from + 2 * H - 30 * MIN + i * 1000 + 1, -1.0))
            .collect();
        append(&db, &mut model, &ooo);
        db.maintain().unwrap();
        sizes.push(wbl_bytes());
    }
    assert_eq!(db.head().late_stats().appended_total, 0);
    // Each cut deletes the segments before it: the log holds at most what
    // came since, never the whole history.
    let max = *sizes.iter().max().unwrap();
    eprintln!("wbl/ bytes after each cut: {sizes:?}");
    assert!(max <= 2 * sizes[0], "wbl/ grows: {sizes:?}");
    assert_eq!(read_all(&db), expected(&model));
}

/// An out-of-order sample inside the head's range stays in the head
/// through a flush (a head cut writes it), and survives a crash after the
/// flush deleted the log segment it was first written to.
#[test]
fn in_range_out_of_order_samples_survive_a_flush_and_a_crash() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    let db = Db::open(tmp.path(), opts()).unwrap();
    in_order(&db, &mut model, 0, 8 * H);
    db.maintain().unwrap();
    let cut = db.head().truncated_before();
    append(&db, &mut model, &[(series(1), cut + 30 * MIN + 1, -5.0)]);
    assert!(db.flush_late().unwrap().is_empty(), "nothing late to write");
    assert!(db.blocks().iter().all(|b| b.meta().max_time <= cut));
    drop(db);
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(db.head().truncated_before(), cut);
    assert_eq!(read_all(&db), expected(&model));
    // Cutting that range writes it with the in-order samples.
    in_order(&db, &mut model, 8 * H, 10 * H);
    db.maintain().unwrap();
    assert_eq!(overlapping_blocks(&db), 0);
    assert_eq!(db.head().late_stats().held, 0);
    drop(db);
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(read_all(&db), expected(&model));
}
