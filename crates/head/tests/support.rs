//! Helpers shared by the head's integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking
#![allow(dead_code)]

use std::path::Path;

use cairn_head::{Head, HeadOptions};
use cairn_model::{Labels, MatchType, Matcher};
use cairn_storage::{Appendable, Queryable, SelectHints, Series, ValueType};

/// Options with a small chunk range and no OOO window.
pub fn opts() -> HeadOptions {
    HeadOptions {
        stripes: 16,
        ..HeadOptions::default()
    }
}

/// Copies the directory `from` into `to` (created), recursively.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

pub fn open(dir: &Path, o: HeadOptions) -> Head {
    Head::open(dir, o).unwrap()
}

/// Matches every series with a metric name.
pub fn all() -> Vec<Matcher> {
    vec![Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()]
}

/// A series' samples, by stepping its iterator.
fn stepped(s: &dyn Series) -> Vec<(i64, f64)> {
    let mut it = s.iter();
    let mut v = Vec::new();
    while it.next() == ValueType::Float {
        v.push(it.at());
    }
    assert!(it.err().is_none(), "iterator error: {:?}", it.err());
    v
}

/// Every selected series with its samples, via `Series::iter`, stepping
/// only: for readers that race with truncation, where two reads of one
/// series may legitimately differ.
pub fn dump_stepwise(
    q: &dyn Queryable,
    mint: i64,
    maxt: i64,
    ms: &[Matcher],
) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = q.querier(mint, maxt).unwrap();
    let set = q.select(&SelectHints::default(), ms).unwrap();
    set.map(|s| {
        let s = s.unwrap();
        (s.labels().clone(), stepped(&*s))
    })
    .collect()
}

/// Every selected series with its samples, via `Series::iter`; checks
/// that bulk reads (`read_floats`) give the same samples as stepping.
pub fn dump(
    q: &dyn Queryable,
    mint: i64,
    maxt: i64,
    ms: &[Matcher],
) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = q.querier(mint, maxt).unwrap();
    let set = q.select(&SelectHints::default(), ms).unwrap();
    let mut out = Vec::new();
    for s in set {
        let s = s.unwrap();
        let v = stepped(&*s);
        // Bulk reads, whole and in pieces that end between and on
        // samples, give the same samples.
        for piece in [i64::MAX, 1, 7, 250] {
            let mut it = s.iter();
            let mut got = Vec::new();
            let mut vt = it.next();
            let mut upto = v.first().map_or(0, |x| x.0);
            while vt == ValueType::Float {
                let from = got.len();
                vt = it.read_floats(upto, &mut got);
                assert!(got[from..].iter().all(|x| x.t <= upto), "read past {upto}");
                assert!(
                    vt != ValueType::Float || it.at().0 > upto,
                    "stopped early at {upto}"
                );
                upto = upto.saturating_add(piece);
            }
            assert!(it.err().is_none(), "iterator error: {:?}", it.err());
            let got: Vec<(i64, f64)> = got.iter().map(|x| (x.t, x.v)).collect();
            assert_eq!(
                got.iter().map(|x| (x.0, x.1.to_bits())).collect::<Vec<_>>(),
                v.iter().map(|x| (x.0, x.1.to_bits())).collect::<Vec<_>>(),
                "bulk read in pieces of {piece}"
            );
        }
        out.push((s.labels().clone(), v));
    }
    out
}

/// Every selected series with its samples, decoded from `Series::chunks`
/// and filtered to the range; also checks chunk invariants.
pub fn dump_chunks(
    q: &dyn Queryable,
    mint: i64,
    maxt: i64,
    ms: &[Matcher],
    chunk_range: i64,
) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let q = q.querier(mint, maxt).unwrap();
    let set = q.select(&SelectHints::default(), ms).unwrap();
    let mut out = Vec::new();
    for s in set {
        let s = s.unwrap();
        let mut chunks = s.chunks().expect("head series have chunks");
        let mut v = Vec::new();
        let mut prev_max = i64::MIN;
        while let Some(c) = chunks.next_chunk() {
            let c = c.unwrap();
            assert_eq!(c.encoding, 1);
            assert!(
                c.min_time > prev_max || prev_max == i64::MIN,
                "chunks overlap"
            );
            assert_eq!(
                c.min_time.div_euclid(chunk_range),
                c.max_time.div_euclid(chunk_range),
                "chunk crosses a chunk-range boundary"
            );
            prev_max = c.max_time;
            let samples = cairn_codec::decode_all(&c.data).unwrap();
            // The target is 120; an estimate gone wrong cuts at twice that.
            assert!(samples.len() <= 240);
            assert_eq!(samples.first().map(|s| s.0), Some(c.min_time));
            assert_eq!(samples.last().map(|s| s.0), Some(c.max_time));
            v.extend(samples.into_iter().filter(|s| s.0 >= mint && s.0 <= maxt));
        }
        if !v.is_empty() {
            out.push((s.labels().clone(), v));
        }
    }
    out
}

/// Chunks of a series: bounds and encoded bytes.
pub type RawChunks = Vec<(i64, i64, Vec<u8>)>;

/// Every chunk of every selected series, as encoded bytes with bounds.
pub fn dump_raw_chunks(h: &Head) -> Vec<(Labels, RawChunks)> {
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let set = q.select(&SelectHints::default(), &all()).unwrap();
    set.map(|s| {
        let s = s.unwrap();
        let mut it = s.chunks().unwrap();
        let mut v = Vec::new();
        while let Some(c) = it.next_chunk() {
            let c = c.unwrap();
            v.push((c.min_time, c.max_time, c.data));
        }
        (s.labels().clone(), v)
    })
    .collect()
}

/// Samples `samples` (indices), 15 s apart with a few ms of jitter, of
/// `series` series `gpu_util{gpu="<i>"}`, valued by `value(series, sample)`.
pub fn fill(
    h: &Head,
    series: usize,
    samples: std::ops::Range<i64>,
    value: impl Fn(usize, i64) -> f64,
) {
    let mut app = h.appender();
    for s in 0..series {
        let l = cairn_model::labels!("__name__" => "gpu_util", "gpu" => &s.to_string());
        for i in samples.clone() {
            app.append(0, &l, i * 15_000 + (i * 37) % 11, value(s, i))
                .unwrap();
        }
    }
    app.commit().unwrap();
}
