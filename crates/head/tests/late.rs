//! Out-of-order samples and late ones (older than the last truncation):
//! accepted within the window, readable at once, logged to `wbl/` (never
//! the WAL), survive a restart, late ones kept by truncation, all of them
//! gone with a flush.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_head::{Head, HeadOptions};
use cairn_model::{labels, Labels};
use cairn_storage::{Appendable, StorageError};
use support::*;

fn late_opts() -> HeadOptions {
    HeadOptions {
        chunk_range: 1000,
        ooo_window: 1_000_000,
        ooo_capacity: 4,
        ..opts()
    }
}

fn m() -> Labels {
    labels!("__name__" => "m")
}

/// In-order samples every 100 ms over `[0, 5000]`, then a truncation at 3050.
fn filled(dir: &std::path::Path) -> Head {
    let h = open(dir, late_opts());
    let mut app = h.appender();
    for t in (0..=5000).step_by(100) {
        app.append(0, &m(), t, t as f64).unwrap();
    }
    app.commit().unwrap();
    h.truncate(3050).unwrap();
    h
}

fn samples(h: &Head, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
    dump(h, mint, maxt, &all())
        .into_iter()
        .flat_map(|(_, s)| s)
        .collect()
}

fn wbl_segments(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("wbl"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn late_samples_are_taken_read_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let h = filled(dir.path());
    assert_eq!(h.truncated_before(), 3050);
    let mut app = h.appender();
    for t in [1550, 1500, 3020] {
        app.append(0, &m(), t, -(t as f64)).unwrap();
    }
    app.commit().unwrap();
    // Readable at once, merged with what the head still holds.
    assert_eq!(
        samples(&h, 1000, 3099),
        vec![
            (1500, -1500.0),
            (1550, -1550.0),
            (3000, 3000.0),
            (3020, -3020.0)
        ]
    );
    assert!(h.min_time() <= 1500);
    let st = h.late_stats();
    assert_eq!((st.held, st.appended_total), (3, 3));
    // A late sample with a buffered timestamp and another value is
    // dropped and counted; the same value is a no-op.
    let mut app = h.appender();
    app.append(0, &m(), 1500, 7.0).unwrap();
    app.append(0, &m(), 1550, -1550.0).unwrap();
    app.commit().unwrap();
    assert_eq!(h.late_stats().conflicts_total, 1);
    assert_eq!(samples(&h, 1500, 1500), vec![(1500, -1500.0)]);

    // An out-of-order sample inside the head's range, then a kill before
    // any truncation: the WAL and wbl/ bring everything back, and only the
    // samples older than the truncation point count as late.
    let mut app = h.appender();
    app.append(0, &m(), 3550, -3550.0).unwrap();
    app.commit().unwrap();
    drop(h);
    let h = open(
        dir.path(),
        HeadOptions {
            min_valid_time: 3050,
            ..late_opts()
        },
    );
    // Three late samples and the in-range one, all out of order.
    assert_eq!(h.late_stats().held, 4);
    assert_eq!(
        samples(&h, 0, 3599),
        vec![
            (1500, -1500.0),
            (1550, -1550.0),
            // Kept in the in-order chunk that starts at 3000.
            (3000, 3000.0),
            (3020, -3020.0),
            (3100, 3100.0),
            (3200, 3200.0),
            (3300, 3300.0),
            (3400, 3400.0),
            (3500, 3500.0),
            (3550, -3550.0)
        ]
    );
    assert_eq!(samples(&h, 3600, 5000).len(), 15);

    // Truncation keeps late samples; it drops the out-of-order samples it
    // cut (between the previous truncation point and the new one).
    h.truncate(4000).unwrap();
    assert_eq!(
        samples(&h, 0, 3999),
        vec![(1500, -1500.0), (1550, -1550.0), (3020, -3020.0)]
    );
    assert!(h.min_time() <= 1500);
}

#[test]
fn a_flush_reads_late_samples_alone_and_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = filled(dir.path());
    let mut app = h.appender();
    // Late: 1500 and 3020 (before 3050); 3550 is out of order in range.
    for t in [3020, 1500, 3550] {
        app.append(0, &m(), t, -(t as f64)).unwrap();
    }
    app.commit().unwrap();
    let f = h.begin_late_flush().unwrap();
    assert_eq!(f.below(), 3050);
    assert_eq!(f.ranges(1000), vec![1000, 3000]);
    // Only the late samples: not the in-order 3000 below 3050, not 3550.
    assert_eq!(
        read(&*f.querier(3000, 3999)),
        vec![(m(), vec![(3020, -3020.0)])]
    );
    assert_eq!(
        read(&*f.querier(0, 9999)),
        vec![(m(), vec![(1500, -1500.0), (3020, -3020.0)])]
    );
    assert_eq!(f.finish().unwrap(), 2);
    let st = h.late_stats();
    // 3550 stays (a head cut writes it), logged again.
    assert_eq!((st.held, st.flushed_total), (1, 2));
    let f = h.begin_late_flush().unwrap();
    assert!(f.ranges(1000).is_empty(), "nothing late");
    assert!(read(&*f.querier(0, 9999)).is_empty());
    assert_eq!(f.finish().unwrap(), 0);
    // The head's range starts at its truncation point again.
    assert_eq!(h.min_time(), 3050);
    assert_eq!(samples(&h, 0, 3049), vec![]);
    assert_eq!(samples(&h, 3550, 3550), vec![(3550, -3550.0)]);
    // The log segments that held them are gone: a restart does not bring
    // them back.
    assert_eq!(wbl_segments(dir.path()).len(), 1);
    drop(h);
    let h = open(
        dir.path(),
        HeadOptions {
            min_valid_time: 3050,
            ..late_opts()
        },
    );
    assert_eq!(h.late_stats().held, 1);
    assert_eq!(samples(&h, 0, 2999), vec![]);
    // The in-range sample came back from the segment the flush started.
    assert_eq!(samples(&h, 3550, 3550), vec![(3550, -3550.0)]);
}

#[test]
fn outside_the_window_is_too_old_and_without_a_window_out_of_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(
        dir.path(),
        HeadOptions {
            ooo_window: 2000,
            ..late_opts()
        },
    );
    let mut app = h.appender();
    app.append(0, &m(), 5000, 1.0).unwrap();
    app.commit().unwrap();
    h.truncate(4000).unwrap();
    let mut app = h.appender();
    assert!(matches!(
        app.append(0, &m(), 2999, 1.0),
        Err(StorageError::TooOldSample { t: 2999 })
    ));
    app.append(0, &m(), 3000, 1.0).unwrap();
    app.commit().unwrap();
    drop(h);

    let dir = tempfile::tempdir().unwrap();
    let h = open(
        dir.path(),
        HeadOptions {
            ooo_window: 0,
            ..late_opts()
        },
    );
    let mut app = h.appender();
    app.append(0, &m(), 5000, 1.0).unwrap();
    app.commit().unwrap();
    h.truncate(4000).unwrap();
    let mut app = h.appender();
    assert!(matches!(
        app.append(0, &m(), 3000, 1.0),
        Err(StorageError::OutOfBounds { t: 3000, .. })
    ));
    // Without a window nothing is late and no wbl/ is made.
    assert!(!dir.path().join("wbl").exists());
}

/// A Prometheus out-of-order log holds every out-of-order sample and m-map
/// markers: every sample is taken from it, markers skipped, unknown refs
/// counted.
#[test]
fn a_prometheus_style_wbl_gives_its_late_samples() {
    use cairn_wal::{Record, RefSample, Wal, WalOptions};
    let dir = tempfile::tempdir().unwrap();
    drop(filled(dir.path()));
    // The series' ref: the first one handed out.
    let r = 1u64;
    {
        let w = Wal::open(&dir.path().join("wbl"), WalOptions::default()).unwrap();
        let recs = [
            Record::Samples(vec![
                RefSample {
                    r,
                    t: 1500,
                    v: -1.0,
                },
                RefSample {
                    r,
                    t: 4550,
                    v: -2.0,
                },
                RefSample {
                    r: 999,
                    t: 1560,
                    v: -3.0,
                },
            ]),
            Record::MmapMarkers(vec![(r, 1 << 32)]),
        ];
        let bytes: Vec<Vec<u8>> = recs.iter().map(cairn_wal::record::encode_to_vec).collect();
        let refs: Vec<&[u8]> = bytes.iter().map(Vec::as_slice).collect();
        w.log(&refs).unwrap();
        w.close().unwrap();
    }
    let h = open(
        dir.path(),
        HeadOptions {
            min_valid_time: 3050,
            ..late_opts()
        },
    );
    assert_eq!(samples(&h, 1500, 1500), vec![(1500, -1.0)]);
    assert_eq!(samples(&h, 4550, 4550), vec![(4550, -2.0)]);
    assert_eq!(h.late_stats().held, 2);
}

/// Out-of-order samples go to `wbl/` and not to the WAL; they come back
/// after a restart even when the series' newest chunk in `chunks_head/`
/// is newer than they are (replay skips WAL samples older than it).
#[test]
fn out_of_order_samples_are_logged_to_wbl_only() {
    use cairn_wal::Record;
    let dir = tempfile::tempdir().unwrap();
    let h = filled(dir.path());
    let mut app = h.appender();
    app.append(0, &m(), 4550, -4550.0).unwrap();
    app.append(0, &m(), 1000, -1000.0).unwrap();
    app.commit().unwrap();
    drop(h);
    let mut logged = Vec::new();
    cairn_wal::replay(&dir.path().join("wbl"), |r| {
        if let Record::Samples(v) = r {
            logged.extend(v.into_iter().map(|s| s.t));
        }
        Ok(())
    })
    .unwrap();
    logged.sort_unstable();
    assert_eq!(logged, vec![1000, 4550]);
    let mut in_wal = Vec::new();
    cairn_wal::replay(&dir.path().join("wal"), |r| {
        if let Record::Samples(v) = r {
            in_wal.extend(v.into_iter().map(|s| s.t));
        }
        Ok(())
    })
    .unwrap();
    assert!(
        !in_wal.contains(&4550) && !in_wal.contains(&1000),
        "{in_wal:?}"
    );
    let h = open(
        dir.path(),
        HeadOptions {
            min_valid_time: 3050,
            ..late_opts()
        },
    );
    assert_eq!(samples(&h, 4550, 4550), vec![(4550, -4550.0)]);
    assert_eq!(samples(&h, 1000, 1000), vec![(1000, -1000.0)]);
    assert_eq!(h.late_stats().held, 2);
}

/// Every series the querier selects, with its samples.
fn read(q: &dyn cairn_storage::Querier) -> Vec<(Labels, Vec<(i64, f64)>)> {
    q.select(&Default::default(), &all())
        .unwrap()
        .map(|s| {
            let s = s.unwrap();
            let mut it = s.iter();
            let mut v = Vec::new();
            while it.next() == cairn_storage::ValueType::Float {
                v.push(it.at());
            }
            (s.labels().clone(), v)
        })
        .collect()
}
