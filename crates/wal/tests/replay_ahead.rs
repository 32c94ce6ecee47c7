//! `replay_with_progress` reads segments on a thread of its own, batches
//! ahead of the decoding: many batches, several segments and a checkpoint
//! come back whole and in order, and an error from the consumer or from a
//! damaged segment stops the replay with that error (no hang, nothing
//! after it handed over).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::path::Path;

use cairn_wal::record::encode_to_vec;
use cairn_wal::{
    checkpoint_name, replay_with_progress, segment_path, FsyncPolicy, Record, RefSample, Wal,
    WalError, WalOptions,
};

/// Records `0..n` of 200 samples each (about 2 KiB encoded, so 4 MiB and
/// up span several read-ahead batches); record `i`'s samples carry `i`.
fn write(dir: &Path, from: u64, n: u64) {
    let wal = Wal::open(
        dir,
        WalOptions {
            segment_size: 32 * 32 * 1024,
            fsync: FsyncPolicy::Never,
            compress: true,
        },
    )
    .unwrap();
    for i in from..from + n {
        let rec = Record::Samples(
            (0..200)
                .map(|k| RefSample {
                    r: k,
                    t: i as i64 * 1000 + k as i64,
                    v: i as f64,
                })
                .collect(),
        );
        wal.log(&[&encode_to_vec(&rec)]).unwrap();
    }
    wal.close().unwrap();
}

/// Every sample's timestamp, in the order handed over, and the last
/// progress seen.
fn replayed(dir: &Path) -> (Vec<i64>, u32) {
    let mut got = Vec::new();
    let mut last = 0;
    replay_with_progress(dir, |at, rec| {
        assert!(at.segments_done >= last, "progress goes forward");
        last = at.segments_done;
        // A WAL segment's number lies in the range after the checkpoint.
        if let Some(seg) = at.segment {
            let (a, b) = at.segments.unwrap();
            assert!(a <= seg && seg <= b, "{at:?}");
        }
        let Record::Samples(v) = rec else {
            panic!("only samples were logged")
        };
        got.extend(v.iter().map(|s| s.t));
        Ok(())
    })
    .unwrap();
    (got, last)
}

/// The timestamps `write` logged for records `0..n`, in order.
fn logged(n: u64) -> Vec<i64> {
    (0..n as i64)
        .flat_map(|i| (0..200).map(move |k| i * 1000 + k))
        .collect()
}

/// The first and last segment numbers in `dir` (its files named by
/// number; opening the WAL would start another).
fn range(dir: &Path) -> (u32, u32) {
    let segs: Vec<u32> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.parse().ok())
        .collect();
    (*segs.iter().min().unwrap(), *segs.iter().max().unwrap())
}

#[test]
fn many_batches_come_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0, 3000);
    let (got, last) = replayed(dir.path());
    assert_eq!(got, logged(3000));
    assert!(last >= 2, "several segments: {last}");
}

#[test]
fn the_checkpoint_and_the_segments_after_it_come_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0, 3000);
    let (first, last) = range(dir.path());
    assert!(last > first + 2);
    // The first segments' samples, all kept, now come from the checkpoint.
    let upto = first + 2;
    cairn_wal::checkpoint(dir.path(), first, upto, |_| true, i64::MIN, true).unwrap();
    assert!(dir.path().join(checkpoint_name(upto)).exists());
    let (got, _) = replayed(dir.path());
    assert_eq!(got, logged(3000));
    // The checkpoint's records carry no WAL segment; the rest do.
    let mut from_checkpoint = 0;
    replay_with_progress(dir.path(), |at, _| {
        if at.segment.is_none() {
            from_checkpoint += 1;
        } else {
            assert_eq!(at.segments.map(|r| r.0), Some(upto + 1));
        }
        Ok(())
    })
    .unwrap();
    assert!(from_checkpoint > 0);
}

#[test]
fn the_stats_count_what_was_handed_over() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0, 50);
    let wal = Wal::open(
        dir.path(),
        WalOptions {
            segment_size: 32 * 32 * 1024,
            ..WalOptions::default()
        },
    )
    .unwrap();
    let h = cairn_model::Histogram {
        count: 1,
        schema: 0,
        ..Default::default()
    };
    let rec = Record::Histograms {
        custom: false,
        samples: vec![
            cairn_wal::RefHistogramSample {
                r: 1,
                t: 5,
                h: h.clone(),
            },
            cairn_wal::RefHistogramSample { r: 2, t: 5, h },
        ],
    };
    wal.log(&[&encode_to_vec(&rec)]).unwrap();
    wal.close().unwrap();
    let stats = replay_with_progress(dir.path(), |_, _| Ok(())).unwrap();
    assert_eq!(
        (stats.records, stats.samples, stats.histograms),
        (51, 50 * 200, 2)
    );
}

#[test]
fn an_error_from_the_consumer_is_returned_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0, 3000);
    let mut seen = 0;
    let err = replay_with_progress(dir.path(), |_, _| {
        seen += 1;
        if seen == 10 {
            return Err(WalError::consumer("stop here"));
        }
        Ok(())
    })
    .unwrap_err();
    assert_eq!(seen, 10, "nothing after the error");
    assert!(err.to_string().contains("stop here"), "{err}");
}

#[test]
fn a_damaged_segment_stops_the_replay_after_what_precedes_it() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), 0, 3000);
    // Damage the second segment (not the last: a torn tail ends a replay
    // quietly only there).
    let (first, _) = range(dir.path());
    let p = segment_path(dir.path(), first + 1);
    let mut b = std::fs::read(&p).unwrap();
    for x in b.iter_mut().skip(100).take(64) {
        *x ^= 0x5a;
    }
    std::fs::write(&p, &b).unwrap();
    let mut got = Vec::new();
    let err = replay_with_progress(dir.path(), |_, rec| {
        if let Record::Samples(v) = rec {
            got.extend(v.iter().map(|s| s.t));
        }
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(err, WalError::Corruption { .. }), "{err}");
    assert!(!got.is_empty(), "the first segment came back");
    assert_eq!(got, logged(3000)[..got.len()]);
}
