//! The head's memory accounting (`Head::memory`) and the mechanisms that
//! keep memory per series small: each test fails if its mechanism goes.

mod support;

use cairn_model::labels;
use cairn_storage::Appendable;
use support::*;

/// 15 s samples of six-decimal gauges, as DCGM exporters send them.
fn value(s: usize, i: i64) -> f64 {
    ((s as i64 * 7919 + i * 104_729) % 1_000_000) as f64 / 1e6 + 50.0
}

#[test]
fn accounting_counts_every_series_and_its_parts() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let empty = h.memory();
    assert_eq!((empty.series, empty.labels, empty.open_chunks), (0, 0, 0));
    let mut app = h.appender();
    for s in 0..100usize {
        let l = labels!("__name__" => "gpu_util", "gpu" => &s.to_string(), "host" => "node-1");
        for i in 0..10i64 {
            app.append(0, &l, i * 15_000, value(s, i)).unwrap();
        }
    }
    app.commit().unwrap();
    let m = h.memory();
    assert_eq!(m.series, 100);
    // Each label set: its encoded bytes (about 40) and the shared count.
    assert!(m.labels > 100 * 40 && m.labels < 100 * 80, "{m:?}");
    assert!(m.open_chunks >= 100 * 60, "{m:?}");
    assert!(m.series_records >= 100 * 100, "{m:?}");
    assert!(
        m.postings > 0 && m.series_by_hash > 0 && m.series_by_ref > 0,
        "{m:?}"
    );
    assert_eq!(m.chunk_refs, 0, "no chunk is full yet");
    assert_eq!(
        m.total(),
        m.components().iter().map(|(_, b)| b).sum::<u64>()
    );
}

/// Full chunks are listed with no spare capacity: one 32-byte entry per
/// chunk, not a list grown by doubling (4 entries for the first cut).
#[test]
fn full_chunk_lists_hold_no_slack() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let mut app = h.appender();
    for s in 0..10usize {
        let l = labels!("__name__" => "gpu_util", "gpu" => &s.to_string());
        // 2 h at 15 s: four chunks of 120, three of them full.
        for i in 0..480i64 {
            app.append(0, &l, i * 15_000, value(s, i)).unwrap();
        }
    }
    app.commit().unwrap();
    let m = h.memory();
    assert_eq!(m.chunk_refs, 10 * 3 * 32, "{m:?}");
}

/// An open chunk's buffer holds little more than its bytes: it grows by
/// an eighth at a time, not by doubling (which leaves up to half of it
/// unused).
#[test]
fn open_chunks_grow_in_small_steps() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let mut app = h.appender();
    for s in 0..20usize {
        let l = labels!("__name__" => "gpu_util", "gpu" => &s.to_string());
        for i in 0..100i64 {
            app.append(0, &l, i * 15_000 + (i * 37) % 11, value(s, i))
                .unwrap();
        }
    }
    app.commit().unwrap();
    let m = h.memory();
    assert!(m.open_chunk_bytes > 20 * 400, "{m:?}");
    assert!(
        m.open_chunks * 100 <= m.open_chunk_bytes * 115,
        "{} bytes allocated for {} written",
        m.open_chunks,
        m.open_chunk_bytes
    );
}

/// Series that truncation removes do not stay alive in the sorted-order
/// cache of large selections: removing series empties it.
#[test]
fn truncation_releases_cached_orders_of_removed_series() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.chunk_range = 1000;
    let h = open(dir.path(), o);
    let mut app = h.appender();
    for s in 0..300usize {
        let l = labels!("__name__" => "pod_cpu", "pod" => &s.to_string());
        // Half the pods stop before 1000 (churn), half go on.
        let end = if s % 2 == 0 { 900 } else { 3000 };
        for t in (0..end).step_by(100) {
            app.append(0, &l, t, value(s, t)).unwrap();
        }
    }
    app.commit().unwrap();
    assert_eq!(dump(&h, i64::MIN, i64::MAX, &all()).len(), 300);
    assert!(
        h.memory().sorted_orders > 0,
        "a selection of 300 series is cached"
    );
    h.truncate(2000).unwrap();
    let m = h.memory();
    assert_eq!((m.series, m.sorted_orders), (150, 0), "{m:?}");
    // Queries still answer, and cache again.
    assert_eq!(dump(&h, i64::MIN, i64::MAX, &all()).len(), 150);
    assert!(h.memory().sorted_orders > 0);
}
