//! Checkpoints keep exactly the live series and recent samples, replay reads
//! the newest checkpoint then the newer segments, and old checkpoints go.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::BTreeSet;

use cairn_model::Labels;
use cairn_wal::record::encode_to_vec;
use cairn_wal::{
    checkpoint, checkpoint_name, replay, Record, RefExemplar, RefMetadata, RefSample, RefSeries,
    Stone, Wal, WalError, WalOptions,
};

fn series(r: u64) -> Record {
    Record::Series(vec![RefSeries {
        r,
        labels: Labels::from_pairs([("__name__", "m"), ("i", &r.to_string())]),
    }])
}

fn samples(refs: std::ops::Range<u64>, t: i64) -> Record {
    Record::Samples(
        refs.map(|r| RefSample {
            r,
            t,
            v: (r as f64) + t as f64 / 1000.0,
        })
        .collect(),
    )
}

fn log(wal: &Wal, recs: &[Record]) {
    let enc: Vec<Vec<u8>> = recs.iter().map(encode_to_vec).collect();
    let refs: Vec<&[u8]> = enc.iter().map(Vec::as_slice).collect();
    wal.log(&refs).unwrap();
}

fn replay_all(dir: &std::path::Path) -> (Vec<Record>, cairn_wal::ReplayStats) {
    let mut out = Vec::new();
    let st = replay(dir, |r| {
        out.push(r);
        Ok(())
    })
    .unwrap();
    (out, st)
}

#[test]
fn checkpoint_then_replay() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let wal = Wal::open(dir, WalOptions::default()).unwrap();
    // Segment 0: ten series, samples at t = 0..50.
    log(&wal, &(0..10).map(series).collect::<Vec<_>>());
    for t in 0..50 {
        log(&wal, &[samples(0..10, t)]);
    }
    log(
        &wal,
        &[Record::Metadata(vec![RefMetadata {
            r: 2,
            kind: 1,
            unit: "old".into(),
            help: "h".into(),
        }])],
    );
    // Exemplars of kept and dropped series, before and after mint.
    log(
        &wal,
        &[Record::Exemplars(
            [(2, 10), (2, 70), (3, 70), (4, 80)]
                .into_iter()
                .map(|(r, t)| RefExemplar {
                    r,
                    t,
                    v: 0.5,
                    labels: Labels::from_pairs([("trace_id", format!("{r}-{t}"))]),
                })
                .collect(),
        )],
    );
    // Histogram samples (integer and float) of kept and dropped series,
    // before and after mint.
    log(
        &wal,
        &[
            Record::Histograms {
                custom: false,
                samples: [(2, 10), (2, 70), (3, 70)]
                    .into_iter()
                    .map(|(r, t)| cairn_wal::RefHistogramSample {
                        r,
                        t,
                        h: cairn_model::Histogram::default(),
                    })
                    .collect(),
            },
            Record::FloatHistograms {
                custom: true,
                samples: vec![cairn_wal::RefFloatHistogramSample {
                    r: 4,
                    t: 90,
                    h: cairn_model::FloatHistogram {
                        schema: cairn_model::CUSTOM_BUCKETS_SCHEMA,
                        custom_values: vec![1.0],
                        ..cairn_model::FloatHistogram::default()
                    },
                }],
            },
        ],
    );
    wal.next_segment().unwrap();
    // Segment 1: more samples, a tombstone, newer metadata.
    for t in 50..100 {
        log(&wal, &[samples(0..10, t)]);
    }
    log(
        &wal,
        &[
            Record::Tombstones(vec![
                Stone {
                    r: 4,
                    intervals: vec![(0, 10), (60, 70)],
                },
                Stone {
                    r: 5,
                    intervals: vec![(60, 70)],
                },
            ]),
            Record::Metadata(vec![RefMetadata {
                r: 2,
                kind: 2,
                unit: "new".into(),
                help: "h".into(),
            }]),
        ],
    );
    wal.next_segment().unwrap();
    // Segment 2 (active): one more series and sample, never checkpointed.
    log(&wal, &[series(11), samples(11..12, 100)]);

    let keep = |r: u64| r.is_multiple_of(2) || r == 11;
    checkpoint(dir, 0, 1, keep, 60, true).unwrap();
    assert!(dir.join(checkpoint_name(1)).is_dir());
    wal.truncate(2).unwrap();
    assert_eq!(wal.segment_range().unwrap(), (2, 2));

    let (recs, st) = replay_all(dir);
    assert_eq!(st.checkpoint, Some(1));
    assert_eq!(st.segments, Some((2, 2)));
    let mut series_refs = BTreeSet::new();
    let mut sample_count = 0;
    let mut stones = Vec::new();
    let mut metas = Vec::new();
    let mut exemplars = Vec::new();
    let mut hists = Vec::new();
    for r in &recs {
        match r {
            Record::Series(v) => series_refs.extend(v.iter().map(|s| s.r)),
            Record::Samples(v) => {
                for s in v {
                    assert!(keep(s.r), "sample of dropped series {}", s.r);
                    assert!(s.t >= 60, "sample at {} survived mint", s.t);
                    assert_eq!(s.v, s.r as f64 + s.t as f64 / 1000.0);
                    sample_count += 1;
                }
            }
            Record::Tombstones(v) => stones.extend(v.iter().cloned()),
            Record::Metadata(v) => metas.extend(v.iter().cloned()),
            Record::Exemplars(v) => exemplars.extend(v.iter().map(|e| (e.r, e.t))),
            Record::MmapMarkers(_) => panic!("a checkpoint holds no markers"),
            Record::Histograms { custom, samples } => {
                assert!(!custom);
                hists.extend(samples.iter().map(|s| (s.r, s.t)));
            }
            Record::FloatHistograms { custom, samples } => {
                assert!(custom, "kept in its custom-bucket record");
                hists.extend(samples.iter().map(|s| (s.r, s.t)));
            }
        }
    }
    assert_eq!(hists, vec![(2, 70), (4, 90)]);
    // Kept series (even refs), at or after mint (60).
    assert_eq!(exemplars, vec![(2, 70), (4, 80)]);
    assert_eq!(series_refs, [0, 2, 4, 6, 8, 11].into_iter().collect());
    // Five kept series with t in 60..100, plus series 11's sample.
    assert_eq!(sample_count, 5 * 40 + 1);
    assert_eq!(
        stones,
        vec![Stone {
            r: 4,
            intervals: vec![(60, 70)]
        }]
    );
    assert_eq!(metas.len(), 1);
    assert_eq!(metas[0].unit, "new");

    // A second checkpoint folds the first in and replaces it.
    wal.next_segment().unwrap();
    log(&wal, &[samples(11..12, 101)]);
    checkpoint(dir, 2, 2, keep, 60, true).unwrap();
    assert!(!dir.join(checkpoint_name(1)).exists());
    assert!(dir.join(checkpoint_name(2)).is_dir());
    wal.truncate(3).unwrap();
    let (recs2, st2) = replay_all(dir);
    assert_eq!(st2.checkpoint, Some(2));
    assert_eq!(st2.samples, st.samples + 1);
    assert_eq!(st2.series, st.series);
    assert!(recs2.len() >= 2);
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Checkpointing an already covered range is a no-op; leaving a hole is refused.
    checkpoint(dir, 0, 2, keep, 60, true).unwrap();
    assert!(matches!(
        checkpoint(dir, 4, 4, keep, 60, true),
        Err(WalError::Checkpoint { .. })
    ));
}

#[test]
fn reopening_after_truncation_continues_after_the_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    {
        let wal = Wal::open(dir, WalOptions::default()).unwrap();
        log(&wal, &[series(1), samples(1..2, 5)]);
        wal.next_segment().unwrap();
        checkpoint(dir, 0, 0, |_| true, 0, true).unwrap();
        wal.truncate(1).unwrap();
    }
    // Remove even the active segment: the next one must still be numbered
    // after the checkpoint, or replay would skip it.
    std::fs::remove_file(cairn_wal::segment_path(dir, 1)).unwrap();
    let wal = Wal::open(dir, WalOptions::default()).unwrap();
    assert_eq!(wal.current_segment(), 1);
    log(&wal, &[samples(1..2, 6)]);
    drop(wal);
    let (_, st) = replay_all(dir);
    assert_eq!((st.series, st.samples), (1, 2));
}

#[test]
fn replay_reports_segments_done_out_of_total() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let wal = Wal::open(dir, WalOptions::default()).unwrap();
    log(&wal, &[series(1), samples(1..2, 0)]);
    wal.next_segment().unwrap();
    log(&wal, &[samples(1..2, 1)]);
    wal.next_segment().unwrap();
    log(&wal, &[samples(1..2, 2)]);
    wal.next_segment().unwrap();
    log(&wal, &[samples(1..2, 3)]);
    // Segments 0 and 1 go into checkpoint 1 (one segment), 2 and 3 remain.
    checkpoint(dir, 0, 1, |_| true, 0, true).unwrap();
    wal.truncate(2).unwrap();
    let mut seen = Vec::new();
    cairn_wal::replay_with_progress(dir, |p, r| {
        if let Record::Samples(v) = r {
            seen.extend(v.iter().map(|s| (p.segments_done, p.segments_total, s.t)));
        }
        Ok(())
    })
    .unwrap();
    let cp_segs = std::fs::read_dir(dir.join(checkpoint_name(1)))
        .unwrap()
        .count();
    assert_eq!(cp_segs, 1, "a checkpoint this small is one segment");
    assert_eq!(seen, [(0, 3, 0), (0, 3, 1), (1, 3, 2), (2, 3, 3)]);
}
