//! The head's memory accounting (`Head::memory`) and the mechanisms that
//! keep memory per series small: each test fails if its mechanism goes.

mod support;

use cairn_head::HeadOptions;
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

/// The label-hash map holds one 16-byte entry per series (hash and
/// pointer); series whose hash is taken live in a side list, so no entry
/// pays for a collision list.
#[test]
fn hash_map_entries_are_two_words() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let mut app = h.appender();
    for s in 0..10_000usize {
        let l = labels!("__name__" => "gpu_util", "gpu" => &s.to_string());
        app.append(0, &l, 0, 1.0).unwrap();
    }
    app.commit().unwrap();
    let m = h.memory();
    // 16 stripes of 625 series: 1,024 buckets of 17 bytes each (entry and
    // control byte), 28 bytes a series; 32-byte entries took 54.
    assert!(m.series_by_hash < 10_000 * 40, "{m:?}");
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
    let h = open(
        dir.path(),
        HeadOptions {
            spill_open_chunks: false,
            ..opts()
        },
    );
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

/// Open chunks keep only a small tail in memory: the settled front goes
/// to the spill files, and reads (samples and encoded chunks, open and
/// cut) are the same as without spilling.
#[test]
fn open_chunks_spill_their_settled_bytes() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let spilled = open(a.path(), opts());
    let kept = open(
        b.path(),
        HeadOptions {
            spill_open_chunks: false,
            ..opts()
        },
    );
    // 100 samples: open chunks of about 450 bytes; then 200 more: cuts.
    for h in [&spilled, &kept] {
        fill(h, 20, 0..100, value);
    }
    let m = spilled.memory();
    assert!(
        m.open_chunks <= 20 * 104 && m.open_chunk_spilled > 20 * 300,
        "{m:?}"
    );
    assert!(m.spill_slot_bytes >= m.open_chunk_spilled, "{m:?}");
    assert_eq!(kept.memory().open_chunk_spilled, 0);
    assert_eq!(dump_raw_chunks(&spilled), dump_raw_chunks(&kept));
    assert_eq!(
        dump(&spilled, i64::MIN, i64::MAX, &all()),
        dump(&kept, i64::MIN, i64::MAX, &all())
    );
    for h in [&spilled, &kept] {
        fill(h, 20, 100..300, value);
    }
    let chunks = dump_raw_chunks(&spilled);
    assert!(chunks.iter().all(|(_, c)| c.len() >= 2), "chunks were cut");
    assert_eq!(chunks, dump_raw_chunks(&kept));
}

/// Cutting a chunk and truncating the head free the spill slots: the
/// slots in use follow the open chunks, not the samples ever written.
#[test]
fn spill_slots_are_freed_by_cuts_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    fill(&h, 20, 0..100, value);
    let one_chunk = h.memory().spill_slot_bytes;
    assert!(one_chunk > 0);
    // Eight chunks' worth: each cut frees its slot for the next chunk.
    fill(&h, 20, 100..1000, value);
    let m = h.memory();
    assert!(m.spill_slot_bytes <= 2 * one_chunk, "{m:?} vs {one_chunk}");
    h.truncate(i64::MAX).unwrap();
    let m = h.memory();
    assert_eq!((m.series, m.spill_slot_bytes), (0, 0), "{m:?}");
}
