//! The head snapshot written on a graceful shutdown: the next open uses
//! it instead of replaying the WAL and builds the head a replay builds;
//! a stale, damaged or mismatching one is set aside and the WAL replayed;
//! a head holding what the file cannot carry writes none; native
//! histograms and out-of-order data are carried.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::path::Path;

use cairn_head::snapshot::{self, Entry, ExemplarEntry, Header, MetaEntry, SnapChunk, Snapshot};
use cairn_head::{Head, HeadOptions};
use cairn_model::{labels, Labels};
use cairn_storage::{Appendable, Metadata, MetricType};
use support::*;

const SNAP: &str = "head_snapshot";

fn series(n: usize) -> Vec<Labels> {
    (0..n)
        .map(|i| {
            labels!(
                "__name__" => if i % 3 == 0 { "DCGM_FI_DEV_POWER_USAGE" } else { "node_cpu_seconds_total" }.to_string(),
                "gpu" => (i % 8).to_string(),
                "Hostname" => format!("node-{}", i / 8)
            )
        })
        .collect()
}

/// Appends samples `from..to` (15 s apart) to every series; series `k`
/// gets samples only every `k % 4 + 1`-th step so chunk fills differ,
/// and the last one ends on a stale marker.
fn fill(h: &Head, ls: &[Labels], from: i64, to: i64) {
    for batch in (from..to).step_by(40) {
        let mut app = h.appender();
        for (k, l) in ls.iter().enumerate() {
            for i in batch..(batch + 40).min(to) {
                if i % (k as i64 % 4 + 1) != 0 {
                    continue;
                }
                let v = if k + 1 == ls.len() && i + 1 == to {
                    f64::from_bits(cairn_model::STALE_NAN_BITS)
                } else {
                    (i as f64 * 0.37 + k as f64).sin() * 250.0
                };
                app.append(0, l, i * 15_000, v).unwrap();
            }
        }
        app.commit().unwrap();
    }
}

fn meta(h: &Head, l: &Labels) {
    let mut app = h.appender();
    app.update_metadata(
        0,
        l,
        &Metadata {
            kind: MetricType::Gauge,
            unit: "watts".into(),
            help: "GPU power".into(),
        },
    )
    .unwrap();
    app.commit().unwrap();
}

/// Samples (values by bits), series count, time bounds, metadata.
type Observed = (
    Vec<(Labels, Vec<(i64, u64)>)>,
    u64,
    i64,
    i64,
    Vec<(String, Metadata)>,
);

/// Everything a reader can observe of a head.
fn observe(h: &Head) -> Observed {
    let data: Vec<(Labels, Vec<(i64, u64)>)> = dump_stepwise(h, i64::MIN, i64::MAX, &all())
        .into_iter()
        .map(|(l, v)| (l, v.into_iter().map(|(t, f)| (t, f.to_bits())).collect()))
        .collect();
    let s = h.stats();
    (data, s.num_series, s.min_time, s.max_time, h.metadata())
}

/// A head written, shut down with a snapshot, in `dir`; returns what a
/// head built by WAL replay of the same directory looks like.
fn written(dir: &Path, o: &HeadOptions) -> Vec<Labels> {
    let ls = series(40);
    let h = open(dir, o.clone());
    // 300 samples: full chunks in chunks_head/ and open ones of every fill.
    fill(&h, &ls, 0, 300);
    meta(&h, &ls[0]);
    let st = h.write_snapshot().unwrap().expect("a snapshot is written");
    assert_eq!(st.series, 40);
    assert!(st.sealed > 0, "open chunks are sealed");
    assert!(dir.join(SNAP).exists());
    ls
}

#[test]
fn snapshot_builds_the_head_a_replay_builds() {
    let o = opts();
    let dir = tempfile::tempdir().unwrap();
    let ls = written(dir.path(), &o);
    let plain = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), plain.path());
    std::fs::remove_file(plain.path().join(SNAP)).unwrap();

    let a = open(dir.path(), o.clone());
    let b = open(plain.path(), o.clone());
    assert!(a.opened_from_snapshot());
    assert!(!b.opened_from_snapshot());
    assert!(
        !dir.path().join(SNAP).exists(),
        "a used snapshot is deleted"
    );
    assert_eq!(observe(&a), observe(&b));

    // Both judge the next appends alike: the same timestamp with the same
    // value is a duplicate, with another value an error; a new series gets
    // the same ref; later samples are taken.
    // (Series 0 has a sample at every step, the last at `t`.)
    let t = 299 * 15_000;
    for h in [&a, &b] {
        let at_t = dump_stepwise(h, t, t, &all());
        let same = at_t.iter().find(|(l, _)| *l == ls[0]).unwrap().1[0].1;
        let mut app = h.appender();
        app.append(0, &ls[0], t, same).unwrap();
        app.commit().unwrap();
        let mut app = h.appender();
        assert!(app.append(0, &ls[0], t, same + 1.0).is_err());
        app.rollback().unwrap();
    }
    let new = labels!("__name__" => "new_series".to_string());
    let refs: Vec<u64> = [&a, &b]
        .iter()
        .map(|h| {
            let mut app = h.appender();
            let r = app.append(0, &new, 300 * 15_000, 1.0).unwrap();
            app.commit().unwrap();
            r
        })
        .collect();
    assert_eq!(refs[0], refs[1]);
    fill(&a, &ls, 300, 340);
    fill(&b, &ls, 300, 340);
    assert_eq!(observe(&a), observe(&b));

    // And the next restart, from the WAL this time (no snapshot written),
    // still holds everything.
    let want = observe(&a);
    drop(a);
    let c = open(dir.path(), o);
    assert!(!c.opened_from_snapshot());
    assert_eq!(observe(&c), want);
}

#[test]
fn truncated_chunks_left_in_the_files_do_not_spoil_it() {
    let ls = series(12);
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    fill(&h, &ls, 0, 400);
    // Drops the first full chunks of the busiest series; the chunk file
    // holding them stays (it also holds newer chunks).
    let mint = 2_000 * 1_000;
    h.truncate(mint).unwrap();
    h.write_snapshot().unwrap().expect("a snapshot is written");
    drop(h);
    let plain = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), plain.path());
    std::fs::remove_file(plain.path().join(SNAP)).unwrap();
    // As the database opens it: the head starts where the blocks end.
    let o = HeadOptions {
        min_valid_time: mint,
        ..opts()
    };
    let a = open(dir.path(), o.clone());
    let b = open(plain.path(), o);
    assert!(a.opened_from_snapshot());
    assert_eq!(observe(&a), observe(&b));
    // The truncation did drop something: series 0 (a sample every step)
    // lost its first chunk, samples 0 to 119.
    let first = observe(&a)
        .0
        .into_iter()
        .find(|(l, _)| *l == ls[0])
        .unwrap()
        .1;
    assert_eq!(first.first().map(|x| x.0), Some(120 * 15_000));
}

/// Opens `dir` and checks that the WAL was replayed and everything is
/// there, as in a head that never had a snapshot.
fn replays_all(dir: &Path, o: &HeadOptions, want: &Observed) {
    let h = open(dir, o.clone());
    assert!(!h.opened_from_snapshot());
    assert!(
        !dir.join(SNAP).exists(),
        "a snapshot not used is deleted too"
    );
    assert_eq!(&observe(&h), want);
}

#[test]
fn stale_damaged_or_mismatching_snapshots_are_set_aside() {
    let o = opts();
    let dir = tempfile::tempdir().unwrap();
    let ls = written(dir.path(), &o);
    let saved = std::fs::read(dir.path().join(SNAP)).unwrap();

    // Damaged: one byte changed.
    let d1 = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), d1.path());
    let mut bad = saved.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x40;
    std::fs::write(d1.path().join(SNAP), &bad).unwrap();
    let plain = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), plain.path());
    std::fs::remove_file(plain.path().join(SNAP)).unwrap();
    let want = observe(&open(plain.path(), o.clone()));
    replays_all(d1.path(), &o, &want);

    // Stale: samples arrived after it was written (a crash later, say).
    let d2 = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), d2.path());
    let want2 = {
        let h = open(d2.path(), o.clone());
        assert!(h.opened_from_snapshot());
        fill(&h, &ls, 300, 320);
        observe(&h)
    };
    std::fs::write(d2.path().join(SNAP), &saved).unwrap();
    replays_all(d2.path(), &o, &want2);

    // Mismatch: a chunk file is gone (the WAL still has its samples).
    let d3 = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), d3.path());
    let chunks = d3.path().join("chunks_head");
    let mut files: Vec<_> = std::fs::read_dir(&chunks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    std::fs::remove_file(files.last().unwrap()).unwrap();
    replays_all(d3.path(), &o, &want);

    // Mismatch: a chunk file's length changed (the snapshot does not read
    // the files, so their lengths are what it checks).
    let d4 = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), d4.path());
    let first = d4
        .path()
        .join("chunks_head")
        .join(files[0].file_name().unwrap());
    let mut b = std::fs::read(&first).unwrap();
    b.extend_from_slice(&[0u8; 64]);
    std::fs::write(&first, b).unwrap();
    replays_all(d4.path(), &o, &want);
}

#[test]
fn nothing_written_when_the_head_holds_what_it_cannot_carry() {
    let ls = series(4);
    // Deletions.
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    fill(&h, &ls, 0, 50);
    h.delete(&all(), 0, 15_000).unwrap();
    assert_eq!(h.write_snapshot().unwrap(), None);
    assert!(!dir.path().join(SNAP).exists());
}

/// Every series' samples: `(t, kind, value or count bits, sum bits)`.
type AllSamples = Vec<(Labels, Vec<(i64, char, u64, u64)>)>;

/// Every sample of every series (floats by bits, histograms as their
/// count and sum), and the out-of-order samples held.
fn observe_all(h: &Head) -> (AllSamples, u64) {
    use cairn_storage::{Queryable, SelectHints, ValueType};
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let mut out = Vec::new();
    for s in q.select(&SelectHints::default(), &all()).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        let mut v = Vec::new();
        loop {
            match it.next() {
                ValueType::Float => {
                    let (t, x) = it.at();
                    v.push((t, 'f', x.to_bits(), 0));
                }
                ValueType::FloatHistogram => {
                    let (t, x) = it.at_float_histogram().unwrap();
                    let kind = if it.at_histogram().is_some() {
                        'i'
                    } else {
                        'h'
                    };
                    v.push((t, kind, x.count.to_bits(), x.sum.to_bits()));
                }
                _ => break,
            }
        }
        assert!(it.err().is_none(), "{:?}", it.err());
        out.push((s.labels().clone(), v));
    }
    (out, h.late_stats().held)
}

/// Native histograms (closed chunks in `chunks_head/`, an open one) and
/// out-of-order data (floats and histograms, in range and late, a series
/// holding nothing else, a sample overtaken at commit) are carried: the
/// snapshot lists the histogram chunks and the out-of-order series, and
/// `wbl/` (logged again first) gives the rest back.
#[test]
fn histograms_and_out_of_order_data_are_carried() {
    use cairn_model::{Histogram, Span};
    let hist = |i: u64| Histogram {
        schema: 1,
        zero_threshold: 1e-128,
        count: 2 * i + 1,
        sum: i as f64 * 0.5,
        zero_count: 1,
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        positive_buckets: vec![i as i64, 0],
        ..Default::default()
    };
    let ls = series(6);
    let hs =
        labels!("__name__" => "gpu_kernel_latency_seconds".to_string(), "gpu" => "0".to_string());
    let lone = labels!("__name__" => "late_only".to_string());
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions {
        ooo_window: 3_600_000,
        ..opts()
    };
    let h = open(dir.path(), o.clone());
    for from in (0..300).step_by(20) {
        fill(&h, &ls, from, from + 20);
        let mut app = h.appender();
        for i in from..from + 20 {
            app.append_histogram(0, &hs, i * 15_000, &hist(i as u64))
                .unwrap();
        }
        app.commit().unwrap();
    }
    let (m1, m2) = (1_000_000, 2_000_000);
    h.truncate(m1).unwrap();
    // A series whose in-order chunk a truncation drops, leaving a late
    // sample: it holds nothing but out-of-order data.
    let mut app = h.appender();
    app.append(0, &lone, 1_500_000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    app.append(0, &lone, 900_000, 2.0).unwrap();
    app.commit().unwrap();
    h.truncate(m2).unwrap();
    // Out of order in range: a float and a histogram between samples.
    let mut app = h.appender();
    app.append(0, &ls[0], 3_000_003, -1.0).unwrap();
    app.append_histogram(0, &hs, 3_000_007, &hist(1000))
        .unwrap();
    app.commit().unwrap();
    // Overtaken at commit: staged in order by one appender, committed
    // after a newer sample of another; it went to the WAL only.
    let mut first = h.appender();
    first.append(0, &ls[1], 4_500_000, 5.0).unwrap();
    let mut second = h.appender();
    second.append(0, &ls[1], 4_600_000, 6.0).unwrap();
    second.commit().unwrap();
    first.commit().unwrap();
    let want = observe_all(&h);
    assert!(want.1 >= 3, "out-of-order samples held: {}", want.1);
    let st = h.write_snapshot().unwrap().expect("a snapshot is written");
    assert!(st.sealed > 0);
    drop(h);
    let plain = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), plain.path());
    std::fs::remove_file(plain.path().join(SNAP)).unwrap();
    let o = HeadOptions {
        min_valid_time: m2,
        ..o
    };
    let a = open(dir.path(), o.clone());
    assert!(a.opened_from_snapshot());
    assert_eq!(observe_all(&a), want, "from the snapshot");
    let b = open(plain.path(), o);
    assert!(!b.opened_from_snapshot());
    assert_eq!(observe_all(&b), want, "from the WAL");
    // The series with out-of-order data only is there.
    assert!(want
        .0
        .iter()
        .any(|(l, v)| *l == lone && v == &vec![(900_000, 'f', 2f64.to_bits(), 0)]));
    // Appends after a start from the snapshot see the histograms.
    let mut app = a.appender();
    assert!(app
        .append_histogram(0, &hs, 299 * 15_000, &hist(7))
        .is_err());
    app.append_histogram(0, &hs, 300 * 15_000, &hist(300))
        .unwrap();
    app.commit().unwrap();
}

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/snapshot")
        .join(name)
}

/// What `v4.snap` holds: `v3.snap`'s contents and two entries of version
/// 4, a histogram series with out-of-order data and a series with
/// out-of-order data only.
fn fixture_contents() -> Snapshot {
    let mut s = fixture_contents_v3();
    s.entries.push(Entry {
        r: 9,
        labels: labels!("__name__" => "gpu_kernel_latency_seconds".to_string(), "gpu" => "0".to_string()),
        chunks: vec![],
        last_v: 0.0,
        hist: vec![
            (
                2,
                SnapChunk {
                    chunk_ref: (2 << 32) | 120,
                    mint: 1_796_567_820_000,
                    maxt: 1_796_569_605_000,
                },
            ),
            (
                3,
                SnapChunk {
                    chunk_ref: (2 << 32) | 200,
                    mint: 1_796_569_620_000,
                    maxt: 1_796_569_990_000,
                },
            ),
        ],
        ooo: true,
    });
    s.entries.push(Entry {
        r: 12,
        labels: labels!("__name__" => "late_only".to_string()),
        chunks: vec![],
        last_v: 0.0,
        hist: vec![],
        ooo: true,
    });
    s.header.chunks = 5;
    s.header.series = 4;
    s.header.next_ref = 13;
    s
}

/// What `v3.snap` holds; `v2.snap` holds the same without exemplars.
fn fixture_contents_v3() -> Snapshot {
    let entries = vec![
        Entry {
            r: 1,
            labels: labels!("__name__" => "DCGM_FI_DEV_GPU_TEMP".to_string(), "gpu" => "0".to_string()),
            chunks: vec![
                SnapChunk {
                    chunk_ref: (1 << 32) | 8,
                    mint: 1_796_567_820_000,
                    maxt: 1_796_569_605_000,
                },
                SnapChunk {
                    chunk_ref: (2 << 32) | 8,
                    mint: 1_796_569_620_000,
                    maxt: 1_796_570_000_000,
                },
            ],
            last_v: 61.0,
            hist: vec![],
            ooo: false,
        },
        Entry {
            r: 7,
            labels: labels!("__name__" => "DCGM_FI_DEV_GPU_TEMP".to_string(), "gpu" => "1".to_string()),
            chunks: vec![SnapChunk {
                chunk_ref: (1 << 32) | 312,
                mint: 1_796_567_835_000,
                maxt: 1_796_569_590_000,
            }],
            last_v: f64::from_bits(cairn_model::STALE_NAN_BITS),
            hist: vec![],
            ooo: false,
        },
    ];
    let h = Header {
        wal_files: vec![("00000000".into(), 32768), ("00000001".into(), 0)],
        chunk_files: vec![(1, 616, 1_796_569_605_000), (2, 312, 1_796_570_000_000)],
        chunks: 3,
        min_valid: 1_796_567_820_000,
        next_ref: 8,
        series: 2,
    };
    let meta = vec![MetaEntry {
        name: "DCGM_FI_DEV_GPU_TEMP".into(),
        kind: 2,
        unit: "celsius".into(),
        help: "GPU temperature".into(),
    }];
    let exemplars = vec![
        ExemplarEntry {
            series: entries[0].labels.clone(),
            ts: 1_796_569_990_000,
            value: 61.5,
            labels: labels!("trace_id" => "4bf92f3577b34da6".to_string()),
        },
        ExemplarEntry {
            // A series no longer in the head.
            series: labels!("__name__" => "DCGM_FI_DEV_GPU_TEMP".to_string(), "gpu" => "9".to_string()),
            ts: 1_796_569_995_000,
            value: 70.0,
            labels: Labels::default(),
        },
    ];
    Snapshot {
        header: h,
        entries,
        meta,
        exemplars,
    }
}

#[test]
fn frozen_fixtures_decode_forever() {
    let v4 = fixture_contents();
    let bytes = std::fs::read(fixture("v4.snap")).unwrap();
    assert_eq!(snapshot::decode(&bytes).unwrap(), v4);
    // Written today, the same bytes.
    assert_eq!(snapshot::encode(&v4).unwrap(), bytes);
    // Version 3 (no histogram chunks or flags) is still read.
    let want = fixture_contents_v3();
    let v3 = std::fs::read(fixture("v3.snap")).unwrap();
    assert_eq!(snapshot::decode(&v3).unwrap(), want);
    // Version 2 (no exemplars either) is still read.
    let v2 = std::fs::read(fixture("v2.snap")).unwrap();
    assert_eq!(
        snapshot::decode(&v2).unwrap(),
        Snapshot {
            exemplars: vec![],
            ..want
        }
    );
    for bad in ["v2-corrupt.snap", "v3-corrupt.snap", "v4-corrupt.snap"] {
        let bad = std::fs::read(fixture(bad)).unwrap();
        let e = snapshot::decode(&bad).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
    }
    // Version 1 (chunk counts, not lists; written by Cairn before the
    // chunk files were listed) is refused by its magic: a start that
    // finds one replays the WAL.
    let v1 = std::fs::read(fixture("v1.snap")).unwrap();
    let e = snapshot::decode(&v1).unwrap_err().to_string();
    assert!(e.contains("magic"), "{e}");
}

#[test]
fn a_start_from_the_snapshot_reads_no_chunk_file_and_a_damaged_chunk_fails_its_read() {
    use cairn_storage::{Queryable, SelectHints, ValueType};
    let o = opts();
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), &o);
    // One byte inside the first chunk's data (after the 8-byte file header
    // and the record's 24-byte series ref, mint and maxt, encoding and
    // length): the file keeps its length, its checksum no longer matches.
    let mut files: Vec<_> = std::fs::read_dir(dir.path().join("chunks_head"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut b = std::fs::read(&files[0]).unwrap();
    b[8 + 24 + 2 + 4] ^= 0x10;
    std::fs::write(&files[0], &b).unwrap();
    let plain = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), plain.path());
    std::fs::remove_file(plain.path().join(SNAP)).unwrap();

    // From the snapshot: the damage was not seen at open (no scan); the
    // read of that chunk fails with its checksum.
    let h = open(dir.path(), o.clone());
    assert!(h.opened_from_snapshot());
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let mut errors = Vec::new();
    for s in q.select(&SelectHints::default(), &all()).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        while it.next() != ValueType::None {}
        if let Some(e) = it.err() {
            errors.push(e.to_string());
        }
    }
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("checksum"), "{errors:?}");

    // Without it, the open scan finds the damage, drops the file and those
    // after it, and the WAL refills them: nothing is missing.
    let h = open(plain.path(), o.clone());
    assert!(!h.opened_from_snapshot());
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    for s in q.select(&SelectHints::default(), &all()).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        while it.next() != ValueType::None {}
        assert!(it.err().is_none(), "{:?}", it.err());
    }
}

#[test]
fn a_version_1_snapshot_left_by_an_older_cairn_is_set_aside() {
    let o = opts();
    let dir = tempfile::tempdir().unwrap();
    written(dir.path(), &o);
    let plain = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), plain.path());
    std::fs::remove_file(plain.path().join(SNAP)).unwrap();
    let want = observe(&open(plain.path(), o.clone()));
    std::fs::copy(fixture("v1.snap"), dir.path().join(SNAP)).unwrap();
    replays_all(dir.path(), &o, &want);
}

/// Writes the fixtures (run once, by hand, when the format version
/// changes: `cargo test -p cairn-head --test snapshot -- --ignored`).
#[test]
#[ignore]
fn write_fixtures() {
    let bytes = snapshot::encode(&fixture_contents()).unwrap();
    std::fs::create_dir_all(fixture("")).unwrap();
    std::fs::write(fixture("v4.snap"), &bytes).unwrap();
    let mut bad = bytes;
    // A byte of the first exemplar's trace id: the structure still parses,
    // the checksum fails.
    let i = bad.len() - 40;
    bad[i] ^= 0x01;
    std::fs::write(fixture("v4-corrupt.snap"), &bad).unwrap();
}
