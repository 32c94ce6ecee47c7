//! Frozen head directories (WAL with a checkpoint, plus `chunks_head/`)
//! written by this crate, opened by today's code. The fixtures live in
//! `tests/fixtures/` beside this file; `regenerate` (ignored) rewrote them
//! once, and they must not be regenerated casually: they catch changes in
//! the WAL or head chunk formats that would make old data unreadable.
//!
//! - `head_v1/`: 4 series; samples every 10 s from 0 to 4 h (1,441 per
//!   series), truncated at 1 h, then 40 more minutes (so the WAL holds a
//!   checkpoint and later segments), plus metadata for `fixture_gauge`.
//! - `head_v1_torn_wal/`: the same directory with the last WAL segment cut
//!   in the middle of its last record: the head opens with what precedes it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::path::{Path, PathBuf};

use cairn_model::{labels, Labels};
use cairn_storage::{Appendable, Metadata, MetricType};
use support::*;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn series() -> Vec<Labels> {
    (0..4)
        .map(|i| labels!("__name__" => "fixture_gauge".to_string(), "gpu" => i.to_string()))
        .collect()
}

fn value(i: usize, t: i64) -> f64 {
    (t / 10_000) as f64 * 0.5 + i as f64
}

const END: i64 = 4 * 3600 * 1000 + 40 * 60 * 1000;
const TRUNC: i64 = 3600 * 1000;

/// Rewrites the fixtures. Run by hand only: `cargo test -p cairn-head --test fixture -- --ignored`.
#[test]
#[ignore]
fn regenerate() {
    let root = fixtures();
    let dir = root.join("head_v1");
    let _ = std::fs::remove_dir_all(&dir);
    {
        let h = open(&dir, opts());
        let ls = series();
        let mut t = 0;
        while t <= END {
            let mut app = h.appender();
            for (i, l) in ls.iter().enumerate() {
                app.append(0, l, t, value(i, t)).unwrap();
            }
            if t == 0 {
                app.update_metadata(
                    0,
                    &ls[0],
                    &Metadata {
                        kind: MetricType::Gauge,
                        unit: "percent".into(),
                        help: "Fixture gauge.".into(),
                    },
                )
                .unwrap();
            }
            app.commit().unwrap();
            if t == 4 * 3600 * 1000 {
                h.truncate(TRUNC).unwrap();
            }
            t += 10_000;
        }
    }
    let torn = root.join("head_v1_torn_wal");
    let _ = std::fs::remove_dir_all(&torn);
    copy_dir(&dir, &torn);
    let mut segs: Vec<PathBuf> = std::fs::read_dir(torn.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(len - 100).unwrap();
}

fn expected(from: i64, to: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    series()
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let v = (0..=END / 10_000)
                .map(|k| k * 10_000)
                .filter(|t| *t >= from && *t <= to)
                .map(|t| (t, value(i, t)))
                .collect();
            (l, v)
        })
        .collect()
}

#[test]
fn frozen_head_directory_opens() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("head_v1"), tmp.path());
    let mut o = opts();
    o.min_valid_time = TRUNC;
    let h = open(tmp.path(), o);
    assert_eq!(dump(&h, TRUNC, i64::MAX, &all()), expected(TRUNC, END));
    assert_eq!(
        dump_chunks(&h, TRUNC, i64::MAX, &all(), cairn_head::DEFAULT_CHUNK_RANGE),
        expected(TRUNC, END)
    );
    assert_eq!(h.max_time(), END);
    let md = h.metadata();
    assert_eq!(md.len(), 1);
    assert_eq!(md[0].1.kind, MetricType::Gauge);
    assert_eq!(md[0].1.help, "Fixture gauge.");
    // Appending continues.
    let mut app = h.appender();
    app.append(0, &series()[0], END + 10_000, 1.0).unwrap();
    app.commit().unwrap();
}

#[test]
fn frozen_head_directory_with_torn_wal_tail_opens_with_the_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("head_v1_torn_wal"), tmp.path());
    let mut o = opts();
    o.min_valid_time = TRUNC;
    let h = open(tmp.path(), o);
    let got = dump(&h, TRUNC, i64::MAX, &all());
    let max = h.max_time();
    assert!(
        max < END && max > END - 3600 * 1000,
        "lost only the torn tail: max {max}"
    );
    // Every series is a gap-free prefix of the full data.
    for ((l, g), (wl, w)) in got.iter().zip(expected(TRUNC, END).iter()) {
        assert_eq!(l, wl);
        assert!(w.starts_with(g), "{l}: {} of {} samples", g.len(), w.len());
        assert!(g.len() + 2 >= w.len() - ((END - max) / 10_000) as usize);
    }
    let mut app = h.appender();
    app.append(0, &series()[0], END + 10_000, 1.0).unwrap();
    app.commit().unwrap();
}
