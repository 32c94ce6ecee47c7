//! Frozen native-histogram fixtures, written once by `regenerate` (ignored)
//! and opened by today's code forever (`tests/fixtures/histograms/`, see its
//! README):
//!
//! - `head/`: a head directory whose WAL holds integer, float and
//!   custom-bucket histograms (records 7, 8 and 10) interleaved with floats
//!   of the same series, as commits logged them;
//! - `block/`: the block cut from that head (histogram chunks of
//!   encodings 2 and 3 beside XOR chunks, `numHistogramSamples` in its
//!   meta);
//! - `corrupt-chunk/`: that block with one bit of a histogram chunk's data
//!   flipped: it opens, and reading the series fails with a named error
//!   instead of a panic or wrong values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod common;

use std::path::{Path, PathBuf};

use cairn_model::{labels, CounterResetHint, FloatHistogram, Histogram, Labels, Span};
use cairn_storage::{Appendable, Queryable, SelectHints, ValueType};
use cairn_tsdb::{Block, Db, DbOptions};
use common::copy_tree;

const STEP: i64 = 10_000;
/// Samples per series.
const N: i64 = 40;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/histograms")
}

fn opts() -> DbOptions {
    DbOptions {
        maintenance_interval: None,
        retention_time: 0,
        downsample: false,
        ..DbOptions::default()
    }
}

fn ints() -> Labels {
    labels!("__name__" => "fx_latency_seconds", "kind" => "int")
}
fn floats() -> Labels {
    labels!("__name__" => "fx_power_watts", "kind" => "float_gauge")
}
fn nhcb() -> Labels {
    labels!("__name__" => "fx_queue_seconds", "kind" => "nhcb")
}
fn mixed() -> Labels {
    labels!("__name__" => "fx_mixed", "kind" => "floats_then_histograms")
}

/// A counter histogram that resets at sample 25.
fn int_at(k: i64) -> Histogram {
    let n = if k < 25 { k as u64 } else { (k - 25) as u64 };
    Histogram {
        schema: 2,
        zero_threshold: 1e-128,
        zero_count: n,
        count: 5 * n + 3,
        sum: n as f64 * 1.25,
        positive_spans: vec![
            Span {
                offset: -3,
                length: 2,
            },
            Span {
                offset: 4,
                length: 1,
            },
        ],
        // Delta-encoded: three buckets of n + 1 each.
        positive_buckets: vec![n as i64 + 1, 0, 0],
        negative_spans: vec![Span {
            offset: 0,
            length: 1,
        }],
        negative_buckets: vec![n as i64],
        ..Default::default()
    }
}

/// Absolute counts behind [`int_at`], for checking what is read.
fn int_count(k: i64) -> f64 {
    int_at(k).count as f64
}

fn float_at(k: i64) -> FloatHistogram {
    let w = [1.5, 4.0, 2.25, 3.0][(k % 4) as usize];
    FloatHistogram {
        counter_reset_hint: CounterResetHint::Gauge,
        schema: 0,
        zero_threshold: 0.001,
        count: w + 0.5,
        sum: w * 100.0,
        positive_spans: vec![Span {
            offset: 8,
            length: 2,
        }],
        positive_buckets: vec![w, 0.5],
        ..Default::default()
    }
}

fn nhcb_at(k: i64) -> FloatHistogram {
    let n = k as f64;
    FloatHistogram {
        schema: cairn_model::CUSTOM_BUCKETS_SCHEMA,
        count: 3.0 * n,
        sum: 0.7 * n,
        positive_spans: vec![Span {
            offset: 0,
            length: 3,
        }],
        positive_buckets: vec![n, n, n],
        custom_values: vec![0.1, 0.5, 1.0],
        ..Default::default()
    }
}

/// What each series holds at sample `k`: a float, or a histogram's count.
fn expected(l: &Labels, k: i64) -> (char, f64) {
    match l.get("kind") {
        Some("int") => ('h', int_count(k)),
        Some("float_gauge") => ('h', float_at(k).count),
        Some("nhcb") => ('h', nhcb_at(k).count),
        _ if k < N / 2 => ('f', k as f64),
        _ => ('h', int_count(k)),
    }
}

fn read(q: &dyn Queryable) -> Vec<(String, i64, char, f64)> {
    let q = q.querier(i64::MIN, i64::MAX).unwrap();
    let ms =
        [cairn_model::Matcher::new(cairn_model::MatchType::Regex, "__name__", "fx_.+").unwrap()];
    let mut out = Vec::new();
    for s in q.select(&SelectHints::default(), &ms).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        loop {
            match it.next() {
                ValueType::Float => {
                    let (t, v) = it.at();
                    out.push((s.labels().to_string(), t, 'f', v));
                }
                ValueType::FloatHistogram => {
                    let (t, h) = it.at_float_histogram().unwrap();
                    out.push((s.labels().to_string(), t, 'h', h.count));
                }
                _ => break,
            }
        }
        if let Some(e) = it.err() {
            panic!("{}: {e}", s.labels());
        }
    }
    out
}

fn want() -> Vec<(String, i64, char, f64)> {
    let mut ls = vec![ints(), floats(), nhcb(), mixed()];
    ls.sort();
    let mut out = Vec::new();
    for l in ls {
        for k in 0..N {
            let (c, v) = expected(&l, k);
            out.push((l.to_string(), k * STEP, c, v));
        }
    }
    out
}

/// Rewrites the fixtures. Run by hand only:
/// `cargo test -p cairn-tsdb --test histogram_fixtures -- --ignored`.
#[test]
#[ignore]
fn regenerate() {
    let root = root();
    let _ = std::fs::remove_dir_all(&root);
    let head = root.join("head");
    {
        let db = Db::open(&head, opts()).unwrap();
        for k in 0..N {
            let t = k * STEP;
            let mut app = db.appender();
            app.append_histogram(0, &ints(), t, &int_at(k)).unwrap();
            app.append_float_histogram(0, &floats(), t, &float_at(k))
                .unwrap();
            app.append_float_histogram(0, &nhcb(), t, &nhcb_at(k))
                .unwrap();
            if k < N / 2 {
                app.append(0, &mixed(), t, k as f64).unwrap();
            } else {
                app.append_histogram(0, &mixed(), t, &int_at(k)).unwrap();
            }
            app.commit().unwrap();
        }
        // No snapshot is written while histograms are held: only the WAL.
        db.close();
    }
    let _ = std::fs::remove_file(head.join("lock"));
    // Open chunks' spill slots: recreated on open, nothing in them here.
    let _ = std::fs::remove_dir_all(head.join("head_spill"));
    // The block, cut from a copy of the head.
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&head, tmp.path());
    let db = Db::open(tmp.path(), opts()).unwrap();
    let cut = db.cut_head_now().unwrap();
    assert_eq!(cut.len(), 1);
    let id = cut[0].to_string();
    db.close();
    copy_tree(&tmp.path().join(&id), &root.join("block"));
    let corrupt = root.join("corrupt-chunk");
    copy_tree(&root.join("block"), &corrupt);
    // Flip a bit in the data of the first integer-histogram chunk (the
    // segment: an 8-byte header, then per chunk a uvarint length, the
    // encoding byte, the data and a 4-byte CRC).
    let f = corrupt.join("chunks/000001");
    let mut b = std::fs::read(&f).unwrap();
    let mut at = 8;
    loop {
        let (mut len, mut shift, mut i) = (0usize, 0, at);
        loop {
            let x = b[i];
            len |= usize::from(x & 0x7f) << shift;
            shift += 7;
            i += 1;
            if x & 0x80 == 0 {
                break;
            }
        }
        if b[i] == cairn_codec::ENCODING_HISTOGRAM {
            b[i + 1 + len / 2] ^= 0x10;
            break;
        }
        at = i + 1 + len + 4;
    }
    std::fs::write(&f, b).unwrap();
}

#[test]
fn the_frozen_head_replays_its_histograms() {
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&root().join("head"), tmp.path());
    let db = Db::open(tmp.path(), opts()).unwrap();
    assert_eq!(read(&*db), want());
    // And appending goes on after them.
    let mut app = db.appender();
    app.append_histogram(0, &ints(), N * STEP, &int_at(N))
        .unwrap();
    app.commit().unwrap();
    db.close();
}

#[test]
fn the_frozen_block_reads_its_histogram_chunks() {
    let b = Block::open(&root().join("block")).unwrap();
    let m = b.meta();
    assert_eq!(m.stats.num_histogram_samples, (3 * N + N / 2) as u64);
    assert_eq!(m.stats.num_float_samples, (N / 2) as u64);
    assert_eq!(read(&b), want());
}

#[test]
fn a_corrupt_histogram_chunk_is_an_error_not_a_panic() {
    let b = Block::open(&root().join("corrupt-chunk")).unwrap();
    let q = b.querier(i64::MIN, i64::MAX).unwrap();
    let ms =
        [cairn_model::Matcher::new(cairn_model::MatchType::Regex, "__name__", "fx_.+").unwrap()];
    let mut failed = 0;
    for s in q.select(&SelectHints::default(), &ms).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        while it.next() != ValueType::None {}
        if let Some(e) = it.err() {
            assert!(e.to_string().contains("chunk"), "{e}");
            failed += 1;
        }
    }
    assert_eq!(failed, 1, "exactly the series of the damaged chunk fails");
}
