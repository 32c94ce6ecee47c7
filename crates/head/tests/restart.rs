//! The head survives a restart: WAL replay plus head chunk files.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_head::Head;
use cairn_model::{labels, Labels};
use cairn_storage::{Appendable, Metadata, MetricType};
use support::*;

fn write(h: &Head, series: &[Labels], n: i64, step: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut want: Vec<(Labels, Vec<(i64, f64)>)> =
        series.iter().map(|l| (l.clone(), Vec::new())).collect();
    // Several commits so the WAL holds several records.
    for batch in 0..4 {
        let mut app = h.appender();
        for (l, w) in want.iter_mut() {
            for i in (batch * n / 4)..((batch + 1) * n / 4) {
                let t = i * step;
                let v = (i as f64).sin() * 100.0;
                app.append(0, l, t, v).unwrap();
                w.push((t, v));
            }
        }
        app.commit().unwrap();
    }
    want.sort_by(|a, b| a.0.cmp(&b.0));
    want
}

#[test]
fn reopen_replays_wal_and_head_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let series: Vec<Labels> = (0..20)
        .map(|i| labels!("__name__" => "DCGM_FI_DEV_GPU_UTIL".to_string(), "gpu" => i.to_string()))
        .collect();
    let want;
    let stats;
    {
        let h = open(dir.path(), opts());
        want = write(&h, &series, 1000, 15_000);
        let mut app = h.appender();
        app.update_metadata(
            0,
            &series[0],
            &Metadata {
                kind: MetricType::Gauge,
                unit: "percent".into(),
                help: "GPU utilization".into(),
            },
        )
        .unwrap();
        app.commit().unwrap();
        assert_eq!(dump(&h, i64::MIN, i64::MAX, &all()), want);
        stats = h.stats();
        assert!(
            stats.num_chunks > 20 * 8,
            "1000 samples per series cut several chunks"
        );
    }
    let files: Vec<_> = std::fs::read_dir(dir.path().join("chunks_head"))
        .unwrap()
        .collect();
    assert!(!files.is_empty(), "full chunks went to chunks_head/");
    let h = open(dir.path(), opts());
    assert_eq!(dump(&h, i64::MIN, i64::MAX, &all()), want);
    assert_eq!(
        dump_chunks(
            &h,
            i64::MIN,
            i64::MAX,
            &all(),
            cairn_head::DEFAULT_CHUNK_RANGE
        ),
        want
    );
    let st = h.stats();
    assert_eq!(
        (st.num_series, st.num_chunks, st.min_time, st.max_time),
        (
            stats.num_series,
            stats.num_chunks,
            stats.min_time,
            stats.max_time
        )
    );
    assert_eq!(h.metadata().len(), 1);
    assert_eq!(h.metadata()[0].0, "DCGM_FI_DEV_GPU_UTIL");
    assert_eq!(h.metadata()[0].1.unit, "percent");

    // Appending continues where it stopped, with the same refs and rules.
    let mut app = h.appender();
    assert!(
        app.append(0, &series[0], 999 * 15_000, 1.0).is_err(),
        "duplicate with another value"
    );
    app.append(0, &series[0], 1000 * 15_000, 7.0).unwrap();
    app.commit().unwrap();
    drop(h);
    let h = open(dir.path(), opts());
    let got = dump(&h, 1000 * 15_000, i64::MAX, &all());
    assert_eq!(got, vec![(series[0].clone(), vec![(1000 * 15_000, 7.0)])]);
}

#[test]
fn reopen_after_truncate_uses_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let series: Vec<Labels> = (0..5)
        .map(|i| labels!("__name__" => "m".to_string(), "i" => i.to_string()))
        .collect();
    let gone = labels!("__name__" => "old");
    let want;
    {
        let h = open(dir.path(), opts());
        let mut app = h.appender();
        app.append(0, &gone, 0, 1.0).unwrap();
        app.commit().unwrap();
        want = write(&h, &series, 2000, 10_000); // 0 .. 20_000_000 ms
        h.truncate(7_200_000).unwrap();
        let want_after: Vec<_> = want
            .iter()
            .map(|(l, s)| {
                (
                    l.clone(),
                    s.iter()
                        .copied()
                        .filter(|x| x.0 >= 7_200_000)
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(dump(&h, i64::MIN, i64::MAX, &all()), want_after);
    }
    let names: Vec<String> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("checkpoint.")),
        "{names:?}"
    );
    // The database tells the head where its blocks end.
    let mut o = opts();
    o.min_valid_time = 7_200_000;
    let h = open(dir.path(), o);
    let got = dump(&h, i64::MIN, i64::MAX, &all());
    // Whole chunks before the truncation point are gone; the chunk that
    // straddles it may keep older samples, as in Prometheus.
    assert_eq!(got.len(), 5, "the series without recent samples is gone");
    for ((l, g), (wl, w)) in got.iter().zip(want.iter()) {
        assert_eq!(l, wl);
        assert!(g.first().unwrap().0 >= 7_200_000 - 120 * 10_000);
        let tail: Vec<_> = w
            .iter()
            .copied()
            .filter(|x| x.0 >= g.first().unwrap().0)
            .collect();
        assert_eq!(g, &tail);
    }
    assert_eq!(h.stats().num_series, 5);
}

#[test]
fn head_without_wal_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.wal = None;
    {
        let h = open(dir.path(), o.clone());
        write(&h, &[labels!("__name__" => "m")], 400, 1000);
        assert_eq!(h.stats().num_series, 1);
    }
    let h = open(dir.path(), o);
    assert_eq!(h.stats().num_series, 0);
    assert!(dump(&h, i64::MIN, i64::MAX, &all()).is_empty());
}

#[test]
fn damaged_head_chunk_file_is_refilled_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let series: Vec<Labels> = (0..3)
        .map(|i| labels!("__name__" => "m".to_string(), "i" => i.to_string()))
        .collect();
    let want = {
        let h = open(dir.path(), opts());
        write(&h, &series, 1000, 1000)
    };
    let f = dir.path().join("chunks_head").join("000001");
    let mut b = std::fs::read(&f).unwrap();
    assert!(b.len() > 4000, "chunks were written: {} bytes", b.len());
    let mid = b.len() / 2;
    for x in b.iter_mut().skip(mid).take(16) {
        *x ^= 0x5a;
    }
    std::fs::write(&f, &b).unwrap();
    let h = open(dir.path(), opts());
    assert!(
        std::fs::read(&f).map_or(true, |now| now != b),
        "the damaged file was dropped"
    );
    assert_eq!(dump(&h, i64::MIN, i64::MAX, &all()), want);
    assert_eq!(
        dump_chunks(
            &h,
            i64::MIN,
            i64::MAX,
            &all(),
            cairn_head::DEFAULT_CHUNK_RANGE
        ),
        want
    );
}

/// Replay split among threads (series by label hash) rebuilds the same head
/// as replay on one thread: samples, chunks, out-of-order data, deletions,
/// a series that came back with a new ref, metadata and bounds.
#[test]
fn parallel_replay_rebuilds_the_same_head() {
    let dir = tempfile::tempdir().unwrap();
    let with = |threads: usize| cairn_head::HeadOptions {
        ooo_window: 3_600_000,
        replay_threads: threads,
        ..opts()
    };
    let series: Vec<Labels> = (0..40)
        .map(|i| labels!("__name__" => format!("m{}", i % 3), "i" => i.to_string()))
        .collect();
    let back = labels!("__name__" => "comes_back");
    {
        let h = open(dir.path(), with(1));
        let mut app = h.appender();
        app.append(0, &back, 0, 1.0).unwrap();
        app.commit().unwrap();
        write(&h, &series, 1200, 10_000); // 0 .. 12_000_000 ms
                                          // Gone at truncation, then back with a new ref.
        h.truncate(7_200_000).unwrap();
        let mut app = h.appender();
        app.append(0, &back, 11_000_000, 2.0).unwrap();
        // Out of order, within the window.
        for (k, l) in series.iter().enumerate().take(10) {
            app.append(0, l, 9_000_005 + k as i64, -1.0).unwrap();
        }
        app.update_metadata(
            0,
            &series[1],
            &Metadata {
                kind: MetricType::Counter,
                unit: "seconds".into(),
                help: "m1".into(),
            },
        )
        .unwrap();
        app.commit().unwrap();
        let m = cairn_model::Matcher::new(cairn_model::MatchType::Equal, "__name__", "m2").unwrap();
        h.delete(&[m], 8_000_000, 8_500_000).unwrap();
        let mut app = h.appender();
        for l in &series {
            app.append(0, l, 12_000_000, 3.0).unwrap();
        }
        app.commit().unwrap();
    }
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        for sub in ["wal", "chunks_head"] {
            copy_dir(&dir.path().join(sub), &d.join(sub));
        }
    }
    let one = open(&a, with(1));
    let four = open(&b, with(4));
    let got = dump(&four, i64::MIN, i64::MAX, &all());
    assert_eq!(got, dump(&one, i64::MIN, i64::MAX, &all()));
    assert_eq!(got.len(), 41);
    assert!(got
        .iter()
        .any(|(l, s)| *l == back && s == &vec![(11_000_000, 2.0)]));
    assert_eq!(
        dump_chunks(
            &four,
            i64::MIN,
            i64::MAX,
            &all(),
            cairn_head::DEFAULT_CHUNK_RANGE
        ),
        dump_chunks(
            &one,
            i64::MIN,
            i64::MAX,
            &all(),
            cairn_head::DEFAULT_CHUNK_RANGE
        )
    );
    let (s1, s4) = (one.stats(), four.stats());
    assert_eq!(
        (s4.num_series, s4.num_chunks, s4.min_time, s4.max_time),
        (s1.num_series, s1.num_chunks, s1.min_time, s1.max_time)
    );
    assert_eq!(four.metadata().len(), 1);
    assert_eq!(four.tombstones(), one.tombstones());
}

/// A replay skips the samples already in chunk files without looking at
/// their series, but only until the series gets a sample past them: a
/// sample staged in order and overtaken at commit by a whole chunk's worth
/// of newer samples is logged after them with an older timestamp, and
/// must come back as out-of-order data, as it was before the restart.
#[test]
fn replay_keeps_a_sample_overtaken_by_a_chunk_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = || cairn_head::HeadOptions {
        ooo_window: 3_600_000,
        ..opts()
    };
    let l = labels!("__name__" => "overtaken");
    let want;
    {
        let h = open(dir.path(), o());
        let mut app = h.appender();
        for i in 0..10 {
            app.append(0, &l, i * 10, i as f64).unwrap();
        }
        app.commit().unwrap();
        // Staged in order (after 90), committed after 300 newer samples.
        let mut late = h.appender();
        late.append(0, &l, 95, -1.0).unwrap();
        let mut app = h.appender();
        for i in 10..310 {
            app.append(0, &l, i * 10, i as f64).unwrap();
        }
        app.commit().unwrap();
        late.commit().unwrap();
        want = dump(&h, i64::MIN, i64::MAX, &all());
        assert_eq!(want[0].1.len(), 311);
        assert!(want[0].1.contains(&(95, -1.0)));
    }
    let files = std::fs::read_dir(dir.path().join("chunks_head"))
        .unwrap()
        .count();
    assert!(files > 0, "the full chunks are in chunk files");
    for threads in [1, 2] {
        let copy = dir.path().join(format!("copy{threads}"));
        for sub in ["wal", "chunks_head"] {
            copy_dir(&dir.path().join(sub), &copy.join(sub));
        }
        let h = open(
            &copy,
            cairn_head::HeadOptions {
                replay_threads: threads,
                ..o()
            },
        );
        assert_eq!(
            dump(&h, i64::MIN, i64::MAX, &all()),
            want,
            "{threads} threads"
        );
    }
}

/// `/api/v1/status/walreplay`'s numbers, as Prometheus gives them: the
/// segments replayed and, once open, the one the head writes next.
#[test]
fn replay_status_names_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let series: Vec<Labels> = (0..50)
        .map(|i| labels!("__name__" => "m".to_string(), "i" => i.to_string()))
        .collect();
    let small = || cairn_head::HeadOptions {
        wal: Some(cairn_head::WalOptions {
            segment_size: 32 * 1024,
            ..cairn_head::WalOptions::default()
        }),
        ..opts()
    };
    {
        let h = open(dir.path(), small());
        write(&h, &series, 2000, 15_000);
    }
    let mut segs: Vec<u32> = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse().ok())
        .collect();
    segs.sort_unstable();
    assert!(segs.len() > 3, "{segs:?}");
    let status = std::sync::Arc::new(cairn_head::ReplayStatus::default());
    let _h = open(
        dir.path(),
        cairn_head::HeadOptions {
            replay_status: Some(status.clone()),
            ..small()
        },
    );
    let last = *segs.last().unwrap();
    let s = status.get();
    assert_eq!((s.min, s.max, s.current), (segs[0], last + 1, last + 1));
}

/// A torn WAL tail (a write cut by a crash) is counted once, as
/// Prometheus's `corruptionCount`; an intact WAL counts none.
#[test]
fn replay_status_counts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let series = vec![labels!("__name__" => "m".to_string())];
    {
        let h = open(dir.path(), opts());
        write(&h, &series, 100, 15_000);
    }
    let status = || std::sync::Arc::new(cairn_head::ReplayStatus::default());
    let copy = dir.path().join("intact");
    copy_dir(&dir.path().join("wal"), &copy.join("wal"));
    let s = status();
    drop(open(
        &copy,
        cairn_head::HeadOptions {
            replay_status: Some(s.clone()),
            ..opts()
        },
    ));
    assert_eq!(s.corruptions(), 0);
    // Half a record's header after the last record.
    let last = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .parse::<u32>()
                .is_ok()
        })
        .max()
        .unwrap();
    let mut b = std::fs::read(&last).unwrap();
    b.extend_from_slice(&[1, 0, 0x40]);
    std::fs::write(&last, &b).unwrap();
    let s = status();
    let h = open(
        dir.path(),
        cairn_head::HeadOptions {
            replay_status: Some(s.clone()),
            ..opts()
        },
    );
    assert_eq!(s.corruptions(), 1);
    assert_eq!(dump(&h, i64::MIN, i64::MAX, &all())[0].1.len(), 100);
}
