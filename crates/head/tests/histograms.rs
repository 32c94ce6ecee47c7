//! Native histograms in the head: appended beside floats in one time line,
//! read back by sample and by chunk (Prometheus's encodings 2 and 3, the
//! chunks the codec's appenders make), refused with Prometheus's errors
//! where they do not fit, logged to the WAL and replayed after a restart,
//! dropped by truncation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_codec::{
    float_histogram_decode, histogram_chunk_header, histogram_decode, AppendOutcome,
    CounterResetHeader, HistogramChunk, ENCODING_HISTOGRAM,
};
use cairn_head::Head;
use cairn_model::{labels, CounterResetHint, FloatHistogram, Histogram, Labels, Span};
use cairn_storage::{Appendable, Queryable, SelectHints, StorageError, ValueType};
use support::*;

fn m() -> Labels {
    labels!("__name__" => "gpu_latency_seconds", "gpu" => "0")
}

/// A counter histogram at step `i`: two buckets growing by `i`.
fn hist(i: u64) -> Histogram {
    Histogram {
        schema: 0,
        zero_threshold: 1e-128,
        zero_count: i,
        count: 3 * i + 2,
        sum: 1.5 * i as f64,
        positive_spans: vec![Span {
            offset: 0,
            length: 2,
        }],
        // Delta-encoded: absolute counts i + 1 and i + 1.
        positive_buckets: vec![i as i64 + 1, 0],
        ..Default::default()
    }
}

fn fhist(count: f64) -> FloatHistogram {
    FloatHistogram {
        schema: 1,
        zero_threshold: 1e-128,
        count,
        sum: count * 2.0,
        positive_spans: vec![Span {
            offset: -1,
            length: 1,
        }],
        positive_buckets: vec![count],
        ..Default::default()
    }
}

/// A sample as read: a float, or a histogram's count and sum.
#[derive(Debug, Clone, PartialEq)]
enum Got {
    F(f64),
    H(f64, f64),
}

fn read(h: &Head, mint: i64, maxt: i64) -> Vec<(i64, Got)> {
    let q = h.querier(mint, maxt).unwrap();
    let set = q.select(&SelectHints::default(), &all()).unwrap();
    let mut out = Vec::new();
    for s in set {
        let s = s.unwrap();
        let mut it = s.iter();
        loop {
            match it.next() {
                ValueType::Float => {
                    let (t, v) = it.at();
                    out.push((t, Got::F(v)));
                }
                ValueType::FloatHistogram => {
                    let (t, x) = it.at_float_histogram().unwrap();
                    assert_eq!(t, it.at_t());
                    out.push((t, Got::H(x.count, x.sum)));
                }
                _ => break,
            }
        }
        assert!(it.err().is_none(), "{:?}", it.err());
    }
    out
}

/// `(encoding, mint, maxt, bytes)` of the series' chunks.
fn chunks(h: &Head) -> Vec<(u8, i64, i64, Vec<u8>)> {
    let q = h.querier(i64::MIN, i64::MAX).unwrap();
    let set = q.select(&SelectHints::default(), &all()).unwrap();
    let mut out = Vec::new();
    for s in set {
        let s = s.unwrap();
        let mut it = s.chunks().unwrap();
        while let Some(c) = it.next_chunk() {
            let c = c.unwrap();
            out.push((c.encoding, c.min_time, c.max_time, c.data));
        }
    }
    out
}

/// Floats at 0..5 s, integer histograms at 5..10 s, floats at 10..13 s.
fn mixed(h: &Head) {
    let mut app = h.appender();
    for i in 0..5 {
        app.append(0, &m(), i * 1000, i as f64).unwrap();
    }
    for i in 5..10 {
        app.append_histogram(0, &m(), i * 1000, &hist(i as u64))
            .unwrap();
    }
    for i in 10..13 {
        app.append(0, &m(), i * 1000, i as f64).unwrap();
    }
    app.commit().unwrap();
}

fn mixed_expected() -> Vec<(i64, Got)> {
    let mut want = Vec::new();
    for i in 0..13 {
        let t = i * 1000;
        if (5..10).contains(&i) {
            let x = hist(i as u64);
            want.push((t, Got::H(x.count as f64, x.sum)));
        } else {
            want.push((t, Got::F(i as f64)));
        }
    }
    want
}

#[test]
fn floats_and_histograms_share_one_time_line() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    mixed(&h);
    assert_eq!(read(&h, i64::MIN, i64::MAX), mixed_expected());
    assert_eq!(read(&h, 4500, 10_000), mixed_expected()[5..=10].to_vec());
    assert!(h.min_time() <= 0 && h.max_time() >= 12_000);

    // Three chunks, the kind changing twice, in time order, not overlapping.
    let cs = chunks(&h);
    let shape: Vec<(u8, i64, i64)> = cs.iter().map(|c| (c.0, c.1, c.2)).collect();
    assert_eq!(
        shape,
        vec![
            (1, 0, 4000),
            (ENCODING_HISTOGRAM, 5000, 9000),
            (1, 10_000, 12_000)
        ]
    );
    // The histogram chunk is the codec's chunk for the same appends
    // (byte-identical to Prometheus's: see cairn-codec's tests).
    let mut want = HistogramChunk::new();
    for i in 5..10u64 {
        let r = want.append(None, i as i64 * 1000, &hist(i), false).unwrap();
        assert_eq!(r, AppendOutcome::Appended);
    }
    assert_eq!(cs[1].3, want.bytes());
    let decoded = histogram_decode(&cs[1].3).unwrap();
    assert_eq!(decoded.len(), 5);
    assert_eq!(decoded[2].1.positive_buckets, hist(7).positive_buckets);
}

#[test]
fn histograms_are_refused_where_prometheus_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    mixed(&h);
    let mut app = h.appender();
    // Older than the newest sample.
    assert!(matches!(
        app.append_histogram(0, &m(), 3000, &hist(3)),
        Err(StorageError::OutOfOrderSample { t: 3000 })
    ));
    // At a float's timestamp.
    assert!(matches!(
        app.append_histogram(0, &m(), 12_000, &hist(12)),
        Err(StorageError::DuplicateHistogramForTimestamp { t: 12_000 })
    ));
    // Buckets that do not fit the spans.
    let mut bad = hist(20);
    bad.positive_buckets.push(1);
    assert!(matches!(
        app.append_histogram(0, &m(), 20_000, &bad),
        Err(StorageError::InvalidHistogram { .. })
    ));
    let mut bad = hist(20);
    bad.schema = 9;
    assert!(matches!(
        app.append_histogram(0, &m(), 20_000, &bad),
        Err(StorageError::InvalidHistogram { .. })
    ));
    // Staged in this appender: a float at the staged histogram's time is a
    // duplicate, an earlier one out of order.
    app.append_histogram(0, &m(), 13_000, &hist(13)).unwrap();
    assert!(matches!(
        app.append(0, &m(), 13_000, 1.0),
        Err(StorageError::DuplicateSampleForTimestamp { t: 13_000 })
    ));
    assert!(matches!(
        app.append(0, &m(), 12_500, 1.0),
        Err(StorageError::OutOfOrderSample { .. })
    ));
    app.commit().unwrap();
    let mut app = h.appender();
    // The same histogram again at the newest timestamp: nothing to do.
    app.append_histogram(0, &m(), 13_000, &hist(13)).unwrap();
    // Another one there: refused.
    assert!(matches!(
        app.append_histogram(0, &m(), 13_000, &hist(14)),
        Err(StorageError::DuplicateHistogramForTimestamp { t: 13_000 })
    ));
    // A float at a committed histogram's timestamp.
    assert!(matches!(
        app.append(0, &m(), 13_000, 1.0),
        Err(StorageError::DuplicateSampleForTimestamp { t: 13_000 })
    ));
    app.commit().unwrap();
    let mut want = mixed_expected();
    want.push((13_000, Got::H(41.0, 19.5)));
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);
}

#[test]
fn float_histograms_cut_on_a_counter_reset_and_keep_the_hint() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let mut app = h.appender();
    for (i, c) in [1.0, 2.0, 4.0, 1.0, 3.0].iter().enumerate() {
        app.append_float_histogram(0, &m(), i as i64 * 1000, &fhist(*c))
            .unwrap();
    }
    app.commit().unwrap();
    let cs = chunks(&h);
    let shape: Vec<(u8, i64, i64)> = cs.iter().map(|c| (c.0, c.1, c.2)).collect();
    assert_eq!(shape, vec![(3, 0, 2000), (3, 3000, 4000)]);
    // The second chunk's header says it starts with a reset (its first
    // sample reads back with an unknown hint, as in Prometheus).
    assert_eq!(
        histogram_chunk_header(&cs[1].3).unwrap(),
        CounterResetHeader::CounterReset
    );
    assert_eq!(
        histogram_chunk_header(&cs[0].3).unwrap(),
        CounterResetHeader::Unknown
    );
    let second = float_histogram_decode(&cs[1].3).unwrap();
    assert_eq!(second[0].1.counter_reset_hint, CounterResetHint::Unknown);
    assert_eq!(
        second[1].1.counter_reset_hint,
        CounterResetHint::NotCounterReset
    );
    assert_eq!(second[1].1.count, 3.0);
}

#[test]
fn histograms_survive_a_restart_through_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let before;
    {
        let h = open(dir.path(), opts());
        mixed(&h);
        let mut app = h.appender();
        let mut custom = fhist(5.0);
        custom.schema = cairn_model::CUSTOM_BUCKETS_SCHEMA;
        custom.zero_threshold = 0.0;
        custom.positive_spans = vec![Span {
            offset: 0,
            length: 1,
        }];
        custom.custom_values = vec![0.5, 1.0];
        app.append_float_histogram(0, &labels!("__name__" => "nhcb"), 1000, &custom)
            .unwrap();
        app.commit().unwrap();
        before = chunks(&h);
        // Dropped without a snapshot: the next start replays the WAL
        // (tests/snapshot.rs has the snapshot's way).
    }
    let h = open(dir.path(), opts());
    let got = read(&h, i64::MIN, i64::MAX);
    // Series in label order: gpu_latency_seconds, then nhcb.
    let mut want = mixed_expected();
    want.push((1000, Got::H(5.0, 10.0)));
    assert_eq!(got, want);
    // And the same chunks, byte for byte, as before the restart: the
    // WAL replays floats and histograms in the order they were committed.
    let cs = chunks(&h);
    assert_eq!(cs, before);
    assert_eq!(cs[1].0, ENCODING_HISTOGRAM);
    assert_eq!(cs.last().unwrap().0, 3);
    // Appending goes on after the replayed samples.
    let mut app = h.appender();
    app.append_histogram(0, &m(), 14_000, &hist(14)).unwrap();
    app.commit().unwrap();
}

#[test]
fn truncation_drops_old_histogram_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(
        dir.path(),
        cairn_head::HeadOptions {
            chunk_range: 4000,
            ..opts()
        },
    );
    let mut app = h.appender();
    for i in 0..12u64 {
        app.append_histogram(0, &m(), i as i64 * 1000, &hist(i))
            .unwrap();
    }
    app.commit().unwrap();
    let shape: Vec<(i64, i64)> = chunks(&h).iter().map(|c| (c.1, c.2)).collect();
    assert_eq!(shape, vec![(0, 3000), (4000, 7000), (8000, 11_000)]);
    h.truncate(4000).unwrap();
    let shape: Vec<(i64, i64)> = chunks(&h).iter().map(|c| (c.1, c.2)).collect();
    assert_eq!(shape, vec![(4000, 7000), (8000, 11_000)]);
    assert_eq!(read(&h, i64::MIN, i64::MAX).len(), 8);
}

#[test]
fn deletions_remove_histogram_samples_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let want: Vec<(i64, Got)> = mixed_expected()
        .into_iter()
        .filter(|(t, _)| !(6000..=7000).contains(t))
        .collect();
    {
        let h = open(dir.path(), opts());
        mixed(&h);
        h.delete(&all(), 6000, 7000).unwrap();
        assert_eq!(read(&h, i64::MIN, i64::MAX), want);
        // The histogram chunk was split around the hole, in time order.
        let shape: Vec<(u8, i64, i64)> = chunks(&h).iter().map(|c| (c.0, c.1, c.2)).collect();
        assert_eq!(
            shape,
            vec![
                (1, 0, 4000),
                (ENCODING_HISTOGRAM, 5000, 9000),
                (1, 10_000, 12_000)
            ]
        );
        // Appending goes on.
        let mut app = h.appender();
        app.append_histogram(0, &m(), 13_000, &hist(13)).unwrap();
        app.commit().unwrap();
    }
    let h = open(dir.path(), opts());
    let mut want = want;
    want.push((13_000, Got::H(41.0, 19.5)));
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);
}

/// A series holding histograms only (no float chunk) is deleted from too:
/// the deletion's range is clamped to the series' samples, histogram
/// chunks included.
#[test]
fn deletions_reach_a_series_of_histograms_only() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let mut app = h.appender();
    for i in 0..10u64 {
        app.append_histogram(0, &m(), i as i64 * 1000, &hist(i))
            .unwrap();
    }
    app.commit().unwrap();
    h.delete(&all(), 2000, 4000).unwrap();
    let want: Vec<(i64, Got)> = (0..10u64)
        .filter(|i| !(2..=4).contains(i))
        .map(|i| {
            let x = hist(i);
            (i as i64 * 1000, Got::H(x.count as f64, x.sum))
        })
        .collect();
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);
}

/// Closed histogram chunks go to `chunks_head/` with their encoding, as
/// Prometheus writes them; a restart attaches them from there (the WAL
/// only fills in the open chunk) and reads the same chunks.
#[test]
fn closed_histogram_chunks_are_in_the_head_chunk_files() {
    let dir = tempfile::tempdir().unwrap();
    let o = cairn_head::HeadOptions {
        chunk_range: 4000,
        ..opts()
    };
    let before;
    {
        let h = open(dir.path(), o.clone());
        let mut app = h.appender();
        for i in 0..12u64 {
            app.append_histogram(0, &m(), i as i64 * 1000, &hist(i))
                .unwrap();
        }
        app.commit().unwrap();
        before = chunks(&h);
        assert_eq!(before.len(), 3);
    }
    // Two chunks are closed (cut at the chunk range) and on disk: their
    // records carry encoding 2 and the same bytes; the open one is not.
    let r = cairn_chunks::HeadChunkReader::open(&dir.path().join("chunks_head")).unwrap();
    let mut on_disk = Vec::new();
    r.iterate(|meta| {
        let (enc, data) = r.chunk(meta.chunk_ref).unwrap();
        on_disk.push((enc, meta.min_time, meta.max_time, data.to_vec()));
        Ok(())
    })
    .unwrap();
    assert_eq!(on_disk, before[..2].to_vec());
    // After a restart, the same chunks; appending goes on.
    let h = open(dir.path(), o);
    assert_eq!(chunks(&h), before);
    let mut app = h.appender();
    app.append_histogram(0, &m(), 12_000, &hist(12)).unwrap();
    app.commit().unwrap();
    assert_eq!(read(&h, i64::MIN, i64::MAX).len(), 13);
}

/// Out-of-order and late histograms (older than the last truncation) are
/// taken within the window, as Prometheus v3 takes them: readable at once
/// beside the in-order ones (integer form kept), in the chunks a reader
/// gets, logged to `wbl/` and back after a kill, a conflicting one dropped
/// and counted, one outside the window refused, deleted by a deletion,
/// kept by a truncation when late and dropped with the flush.
#[test]
fn out_of_order_histograms_are_taken_within_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let o = cairn_head::HeadOptions {
        chunk_range: 10_000,
        ooo_window: 1_000_000,
        ..opts()
    };
    let h = open(dir.path(), o.clone());
    mixed(&h);
    // Drops the float chunk of 0..4 s.
    h.truncate(4500).unwrap();
    let mut app = h.appender();
    // In range but older than the newest (12 s): out of order; 1500 and
    // 2000 older than the truncation: late. A float between histograms too.
    app.append_histogram(0, &m(), 7500, &hist(75)).unwrap();
    app.append_float_histogram(0, &m(), 2000, &fhist(2.5))
        .unwrap();
    app.append_histogram(0, &m(), 1500, &hist(15)).unwrap();
    app.append(0, &m(), 6500, -6.5).unwrap();
    app.commit().unwrap();
    let mut want: Vec<(i64, Got)> = mixed_expected()
        .into_iter()
        .filter(|x| x.0 >= 5000)
        .collect();
    let extra = [
        (1500, Got::H(47.0, 22.5)),
        (2000, Got::H(2.5, 5.0)),
        (6500, Got::F(-6.5)),
        (7500, Got::H(227.0, 112.5)),
    ];
    want.extend(extra.iter().cloned());
    want.sort_by_key(|x| x.0);
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);
    assert_eq!(h.late_stats().held, 4);
    // The integer form of an out-of-order integer histogram is kept.
    {
        let q = h.querier(7500, 7500).unwrap();
        let s = q
            .select(&SelectHints::default(), &all())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let mut it = s.iter();
        assert_eq!(it.next(), ValueType::FloatHistogram);
        assert_eq!(it.at_histogram().map(|x| x.1.count), Some(227));
    }
    // Chunks carry them: re-encoded, integer runs as integer chunks.
    let got: Vec<(i64, Got)> = chunks(&h)
        .into_iter()
        .flat_map(|(enc, _, _, data)| match enc {
            1 => Vec::new(),
            2 => histogram_decode(&data)
                .unwrap()
                .into_iter()
                .map(|(t, x)| (t, Got::H(x.count as f64, x.sum)))
                .collect(),
            _ => float_histogram_decode(&data)
                .unwrap()
                .into_iter()
                .map(|(t, x)| (t, Got::H(x.count, x.sum)))
                .collect(),
        })
        .collect();
    let want_h: Vec<(i64, Got)> = want
        .iter()
        .filter(|x| matches!(x.1, Got::H(..)))
        .cloned()
        .collect();
    let mut got = got;
    got.sort_by_key(|x| x.0);
    assert_eq!(got, want_h);

    let mut app = h.appender();
    // Another histogram at a held out-of-order timestamp: dropped and
    // counted; the same one again: nothing to do.
    app.append_histogram(0, &m(), 7500, &hist(1)).unwrap();
    app.append_histogram(0, &m(), 1500, &hist(15)).unwrap();
    // Outside the window.
    assert!(matches!(
        app.append_histogram(0, &m(), 12_000 - 1_000_001, &hist(1)),
        Err(StorageError::TooOldSample { .. })
    ));
    app.commit().unwrap();
    assert_eq!(h.late_stats().conflicts_total, 1);
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);

    // A kill: the WAL and wbl/ bring them all back.
    drop(h);
    let h = open(
        dir.path(),
        cairn_head::HeadOptions {
            min_valid_time: 4500,
            ..o.clone()
        },
    );
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);

    // A deletion takes out-of-order histograms too, and holds after a kill.
    h.delete(&all(), 7400, 7600).unwrap();
    want.retain(|x| x.0 != 7500);
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);
    drop(h);
    let h = open(
        dir.path(),
        cairn_head::HeadOptions {
            min_valid_time: 4500,
            ..o.clone()
        },
    );
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);

    // A truncation keeps the late ones (it drops the histogram chunk of
    // 5..9 s and the out-of-order float); the flush reads them alone and
    // drops them.
    h.truncate(9500).unwrap();
    want.retain(|x| x.0 < 4500 || x.0 >= 10_000);
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);
    let f = h.begin_late_flush().unwrap();
    assert_eq!(f.ranges(1000), vec![1000, 2000]);
    let q = f.querier(0, 9999);
    let late: Vec<i64> = {
        let set = q.select(&SelectHints::default(), &all()).unwrap();
        let mut v = Vec::new();
        for s in set {
            let s = s.unwrap();
            let mut it = s.iter();
            while it.next() != ValueType::None {
                v.push(it.at_t());
            }
        }
        v
    };
    drop(q);
    assert_eq!(late, vec![1500, 2000]);
    assert_eq!(f.finish().unwrap(), 2);
    want.retain(|x| x.0 >= 10_000);
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);
    drop(h);
    let h = open(
        dir.path(),
        cairn_head::HeadOptions {
            min_valid_time: 9500,
            ..o
        },
    );
    assert_eq!(read(&h, i64::MIN, i64::MAX), want);
}
