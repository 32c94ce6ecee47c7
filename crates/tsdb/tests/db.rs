//! Db behaviour: head cutting, compaction, retention, tombstones, restart,
//! observed through the event channel (never by sleeping).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod common;

use std::sync::mpsc::Receiver;
use std::time::Duration;

use cairn_model::{labels, Matcher, Sample};
use cairn_storage::{Appendable, MemStorage, Queryable};
use cairn_tsdb::{write_block, BlockWriteOptions, Db, DbEvent, DbOptions, RetentionReason, Ulid};
use common::*;

const H: i64 = 3_600_000;

fn opts() -> DbOptions {
    DbOptions {
        maintenance_interval: None,
        retention_time: 0,
        wal: None,
        ..DbOptions::default()
    }
}

fn append_range(db: &Db, series: usize, from: i64, to: i64, step: i64) {
    let mut t = from;
    while t < to {
        let mut app = db.appender();
        for i in 0..series {
            app.append(
                0,
                &labels!("__name__" => "up", "i" => &i.to_string()),
                t,
                (t / step) as f64,
            )
            .unwrap();
        }
        app.commit().unwrap();
        t += step;
    }
}

/// Writes a level-1 block with one series "x" holding `samples` directly into `dir`.
fn put_block(dir: &std::path::Path, mint: i64, maxt: i64, samples: &[(i64, f64)]) -> Ulid {
    let mem = MemStorage::new();
    mem.add(
        labels!("__name__" => "x"),
        samples.iter().map(|&(t, v)| Sample::new(t, v)),
    );
    let q = mem.querier(mint, maxt - 1).unwrap();
    write_block(dir, &*q, mint, maxt, &BlockWriteOptions::default())
        .unwrap()
        .unwrap()
        .ulid
}

fn drain(rx: &Receiver<DbEvent>) -> Vec<DbEvent> {
    rx.try_iter().collect()
}

#[test]
fn head_is_cut_only_past_one_and_a_half_block_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    let rx = db.subscribe();
    append_range(&db, 3, 0, 3 * H, 60_000);
    assert!(
        db.cut_head(false).unwrap().is_empty(),
        "head spans < 3h: nothing to cut"
    );
    append_range(&db, 3, 3 * H, 3 * H + 120_000, 60_000);
    let cut = db.cut_head(false).unwrap();
    assert_eq!(cut.len(), 1);
    assert_eq!(
        drain(&rx),
        vec![DbEvent::BlockCut {
            ulid: cut[0],
            min_time: 0,
            max_time: 2 * H
        }]
    );
    assert!(db.head().min_time() >= 2 * H);
    // Nothing lost, nothing doubled.
    assert_eq!(
        all_samples(&*db, i64::MIN, i64::MAX).len(),
        3 * (3 * 60 + 2)
    );
}

#[test]
fn compaction_merges_levels_and_vertical_overlaps() {
    let tmp = tempfile::tempdir().unwrap();
    let a = put_block(tmp.path(), 0, 2 * H, &[(0, 1.0), (H, 2.0)]);
    let b = put_block(tmp.path(), 2 * H, 4 * H, &[(2 * H, 3.0)]);
    let c = put_block(tmp.path(), 4 * H, 6 * H, &[(5 * H, 4.0)]);
    let d = put_block(tmp.path(), 6 * H, 8 * H, &[(7 * H, 5.0)]);
    let db = Db::open(tmp.path(), opts()).unwrap();
    let rx = db.subscribe();
    let new = db.compact_now().unwrap();
    assert_eq!(new.len(), 1);
    let ev = drain(&rx);
    assert_eq!(
        ev,
        vec![DbEvent::Compacted {
            ulid: Some(new[0]),
            parents: vec![a, b, c],
            level: 2
        }]
    );
    let metas: Vec<_> = db.blocks().iter().map(|b| b.meta()).collect();
    assert_eq!(metas.len(), 2);
    assert_eq!(
        (
            metas[0].min_time,
            metas[0].max_time,
            metas[0].compaction.level
        ),
        (0, 6 * H, 2)
    );
    let mut srcs = vec![a, b, c];
    srcs.sort();
    assert_eq!(metas[0].compaction.sources, srcs);
    assert_eq!(metas[1].ulid, d);
    assert!(!tmp.path().join(a.to_string()).exists());
    assert_eq!(all_samples(&*db, i64::MIN, i64::MAX).len(), 5);
    drop(db);

    // An overlapping block is merged vertically; equal timestamps dedup.
    let e = put_block(tmp.path(), 5 * H, 7 * H, &[(5 * H, 4.0), (6 * H, 9.0)]);
    let db = Db::open(tmp.path(), opts()).unwrap();
    let rx = db.subscribe();
    db.compact_now().unwrap();
    let ev = drain(&rx);
    match &ev[0] {
        DbEvent::Compacted { parents, .. } => {
            assert!(parents.contains(&e) && parents.contains(&d), "{ev:?}");
        }
        other => panic!("{other:?}"),
    }
    let bs = db.blocks();
    for w in bs.windows(2) {
        assert!(
            w[0].meta().max_time <= w[1].meta().min_time,
            "no overlaps remain"
        );
    }
    let got: Vec<i64> = all_samples(&*db, i64::MIN, i64::MAX)
        .iter()
        .map(|s| s.1)
        .collect();
    assert_eq!(got, vec![0, H, 2 * H, 5 * H, 6 * H, 7 * H]);
}

#[test]
fn retention_by_time_and_size_emits_events() {
    let tmp = tempfile::tempdir().unwrap();
    let ids: Vec<Ulid> = (0..4)
        .map(|i| put_block(tmp.path(), i * 2 * H, (i + 1) * 2 * H, &[(i * 2 * H, 1.0)]))
        .collect();
    let db = Db::open(
        tmp.path(),
        DbOptions {
            retention_time: 5 * H,
            ..opts()
        },
    )
    .unwrap();
    let rx = db.subscribe();
    let gone = db.apply_retention().unwrap();
    assert_eq!(gone, vec![(ids[0], RetentionReason::Time)]);
    assert_eq!(
        drain(&rx),
        vec![DbEvent::RetentionDeleted {
            ulid: ids[0],
            reason: RetentionReason::Time
        }]
    );
    assert!(!tmp.path().join(ids[0].to_string()).exists());
    drop(db);
    let one = db_block_size(tmp.path(), ids[3]);
    let db = Db::open(
        tmp.path(),
        DbOptions {
            retention_size: one * 2 + one / 2,
            ..opts()
        },
    )
    .unwrap();
    let rx = db.subscribe();
    let gone = db.apply_retention().unwrap();
    assert_eq!(gone, vec![(ids[1], RetentionReason::Size)]);
    assert_eq!(drain(&rx).len(), 1);
    assert_eq!(db.blocks().len(), 2);
}

fn db_block_size(dir: &std::path::Path, id: Ulid) -> u64 {
    fn walk(p: &std::path::Path) -> u64 {
        std::fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                if e.file_type().unwrap().is_dir() {
                    walk(&e.path())
                } else {
                    e.metadata().unwrap().len()
                }
            })
            .sum()
    }
    walk(&dir.join(id.to_string()))
}

#[test]
fn deletions_survive_restart_and_are_dropped_by_compaction() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    append_range(&db, 2, 0, 2 * H, 60_000);
    db.cut_head_now().unwrap();
    let n = db
        .delete_series(&[Matcher::equal("i", "0")], 0, H - 1)
        .unwrap();
    assert_eq!(n, 1);
    let count = |db: &Db| all_samples(db, i64::MIN, i64::MAX).len();
    assert_eq!(count(&db), 120 + 60);
    drop(db);
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(count(&db), 120 + 60, "tombstones persisted");
    let rx = db.subscribe();
    let cleaned = db.clean_tombstones().unwrap();
    assert_eq!(cleaned.len(), 1);
    let ev = drain(&rx);
    assert!(
        matches!(ev.as_slice(), [DbEvent::TombstonesCleaned { .. }]),
        "{ev:?}"
    );
    let b = &db.blocks()[0];
    assert!(b.tombstones().is_empty());
    assert_eq!(b.meta().stats.num_samples, 180);
    assert_eq!(count(&db), 180);
}

#[test]
fn leftover_tmp_dirs_and_merged_parents_are_removed_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(
        tmp.path()
            .join("01HXXXXXXXXXXXXXXXXXXXXXXX.tmp-for-creation/chunks"),
    )
    .unwrap();
    let a = put_block(tmp.path(), 0, 2 * H, &[(1, 1.0)]);
    // A compacted child listing `a` as a parent (as if we crashed before deleting it).
    let child = put_block(tmp.path(), 0, 2 * H, &[(1, 1.0)]);
    let cdir = tmp.path().join(child.to_string());
    let mut m = cairn_tsdb::BlockMeta::read(&cdir).unwrap();
    m.compaction.parents = vec![cairn_tsdb::BlockDesc {
        ulid: a,
        min_time: 0,
        max_time: 2 * H,
    }];
    m.write(&cdir).unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(
        db.blocks().iter().map(|b| b.ulid()).collect::<Vec<_>>(),
        vec![child]
    );
    assert!(!tmp.path().join(a.to_string()).exists());
    assert!(!tmp
        .path()
        .join("01HXXXXXXXXXXXXXXXXXXXXXXX.tmp-for-creation")
        .exists());
}

#[test]
fn background_thread_cuts_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(
        tmp.path(),
        DbOptions {
            maintenance_interval: Some(Duration::from_millis(10)),
            ..opts()
        },
    )
    .unwrap();
    let rx = db.subscribe();
    append_range(&db, 1, 0, 3 * H + 120_000, 60_000);
    // Wait for the event itself (bounded so a broken thread fails the test).
    let ev = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("background cut");
    assert!(
        matches!(ev, DbEvent::BlockCut { min_time: 0, max_time, .. } if max_time == 2 * H),
        "{ev:?}"
    );
    db.close();
}

#[test]
fn snapshot_copies_blocks_and_head() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(&tmp.path().join("db"), opts()).unwrap();
    append_range(&db, 2, 0, 4 * H, 60_000);
    db.cut_head(false).unwrap();
    let snap = tmp.path().join("snap");
    let ids = db.snapshot(&snap, true).unwrap();
    assert_eq!(ids.len(), 2);
    let s = Db::open(&snap, opts()).unwrap();
    assert_eq!(
        all_samples(&*s, i64::MIN, i64::MAX),
        all_samples(&*db, i64::MIN, i64::MAX)
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        /// Any mix of aligned and overlapping blocks compacts into
        /// non-overlapping blocks holding exactly the union of the samples.
        #[test]
        fn compaction_preserves_the_union(blocks in proptest::collection::vec((0i64..12, 1i64..4, proptest::collection::vec(0i64..7_200, 1..20)), 1..7)) {
            let tmp = tempfile::tempdir().unwrap();
            let mut want = BTreeSet::new();
            for (start_h, len_h, offs) in &blocks {
                let (mint, maxt) = (start_h * H, (start_h + len_h) * H);
                let mem = MemStorage::new();
                for (k, o) in offs.iter().enumerate() {
                    let t = mint + o * (maxt - mint) / 7_200;
                    let name = ["a", "b"][k % 2];
                    // The value is a function of (series, t): duplicates agree.
                    mem.add(labels!("__name__" => name), [Sample::new(t, t as f64 + k as f64 % 2.0)]);
                    want.insert((name.to_string(), t));
                }
                let q = mem.querier(mint, maxt - 1).unwrap();
                write_block(tmp.path(), &*q, mint, maxt, &BlockWriteOptions::default()).unwrap();
            }
            let db = Db::open(tmp.path(), DbOptions { max_block_duration: Some(54 * H), ..opts() }).unwrap();
            db.compact_now().unwrap();
            let bs = db.blocks();
            for w in bs.windows(2) {
                prop_assert!(w[0].meta().max_time <= w[1].meta().min_time, "overlap left");
            }
            let got: BTreeSet<(String, i64)> = all_samples(&*db, i64::MIN, i64::MAX)
                .into_iter()
                .map(|(l, t, _)| (l.metric_name().unwrap().to_string(), t))
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
