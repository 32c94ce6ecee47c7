//! Native histograms through the database: appended with floats, cut from
//! the head into blocks with their chunks as the head wrote them (encodings
//! 2 and 3, counted in meta.json as Prometheus v3 counts them), read back
//! from blocks and head alike, across a restart and a compaction, and
//! clipped where a chunk crosses a block boundary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use cairn_model::{labels, FloatHistogram, Histogram, Labels, MatchType, Matcher, Span};
use cairn_storage::{Appendable, Queryable, SelectHints, ValueType};
use cairn_tsdb::{Db, DbOptions};

const H: i64 = 3_600_000;
const MIN: i64 = 60_000;

fn opts() -> DbOptions {
    DbOptions {
        maintenance_interval: None,
        retention_time: 0,
        downsample: false,
        ..DbOptions::default()
    }
}

fn ints() -> Labels {
    labels!("__name__" => "dcgm_latency", "gpu" => "0")
}

fn floats() -> Labels {
    labels!("__name__" => "otel_latency", "gpu" => "0")
}

fn hist(i: u64) -> Histogram {
    Histogram {
        schema: 0,
        zero_threshold: 1e-128,
        count: 2 * i + 2,
        sum: i as f64 / 2.0,
        positive_spans: vec![Span {
            offset: 1,
            length: 2,
        }],
        positive_buckets: vec![i as i64 + 1, 0],
        ..Default::default()
    }
}

fn fhist(i: u64) -> FloatHistogram {
    FloatHistogram {
        schema: 2,
        count: i as f64 + 0.5,
        sum: i as f64 * 3.0,
        positive_spans: vec![Span {
            offset: 0,
            length: 1,
        }],
        positive_buckets: vec![i as f64 + 0.5],
        ..Default::default()
    }
}

/// What a read gives: `(series, t, kind, float value or histogram count)`;
/// kind `f` float, `h` float histogram, `i` histogram with its integer form.
type Got = Vec<(String, i64, char, f64)>;

/// Every 5 minutes over 5 hours: `ints()` takes floats for the first hour,
/// then integer histograms; `floats()` float histograms throughout.
fn fill(db: &Db) -> Got {
    let mut want = Vec::new();
    let mut app = db.appender();
    for k in 0..60u64 {
        let t = k as i64 * 5 * MIN;
        if k < 12 {
            app.append(0, &ints(), t, k as f64).unwrap();
            want.push((ints().to_string(), t, 'f', k as f64));
        } else {
            app.append_histogram(0, &ints(), t, &hist(k)).unwrap();
            want.push((ints().to_string(), t, 'i', hist(k).count as f64));
        }
        app.append_float_histogram(0, &floats(), t, &fhist(k))
            .unwrap();
        want.push((floats().to_string(), t, 'h', fhist(k).count));
    }
    app.commit().unwrap();
    want.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    want
}

fn read(db: &Db, mint: i64, maxt: i64) -> Got {
    let q = db.querier(mint, maxt).unwrap();
    let ms = [Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()];
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
                    // Integer histograms keep their integer form ('i').
                    match it.at_histogram() {
                        Some((ti, ih)) => {
                            assert_eq!((ti, ih.to_float()), (t, (*h).clone()));
                            out.push((s.labels().to_string(), t, 'i', ih.count as f64));
                        }
                        None => out.push((s.labels().to_string(), t, 'h', h.count)),
                    }
                }
                _ => break,
            }
        }
        assert!(it.err().is_none(), "{:?}", it.err());
    }
    out
}

#[test]
fn histograms_are_cut_into_blocks_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let want;
    {
        let db = Db::open(dir.path(), opts()).unwrap();
        want = fill(&db);
        assert_eq!(read(&db, i64::MIN, i64::MAX), want);
        let cut = db.cut_head_now().unwrap();
        assert_eq!(cut.len(), 3, "three 2h blocks over 5h");
        let metas: Vec<_> = db.blocks().iter().map(|b| b.meta()).collect();
        let hist_samples: u64 = metas.iter().map(|m| m.stats.num_histogram_samples).sum();
        let float_samples: u64 = metas.iter().map(|m| m.stats.num_float_samples).sum();
        assert_eq!((float_samples, hist_samples), (12, 108));
        for m in &metas {
            assert_eq!(
                m.stats.num_samples,
                m.stats.num_float_samples + m.stats.num_histogram_samples
            );
        }
        // From the blocks alone now, and a range inside one block.
        assert_eq!(read(&db, i64::MIN, i64::MAX), want);
        let part: Got = want
            .iter()
            .filter(|x| x.1 >= 50 * MIN && x.1 <= 130 * MIN)
            .cloned()
            .collect();
        assert_eq!(read(&db, 50 * MIN, 130 * MIN), part);
        // The blocks hold histogram chunks in both encodings.
        let mut encodings = std::collections::BTreeSet::new();
        for b in db.blocks() {
            let q = b.querier(i64::MIN, i64::MAX).unwrap();
            let ms = [Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()];
            for s in q.select(&SelectHints::default(), &ms).unwrap() {
                let s = s.unwrap();
                let mut cs = s.chunks().unwrap();
                while let Some(c) = cs.next_chunk() {
                    let c = c.unwrap();
                    assert!(c.min_time >= b.meta().min_time && c.max_time < b.meta().max_time);
                    encodings.insert(c.encoding);
                }
            }
        }
        assert_eq!(encodings.into_iter().collect::<Vec<_>>(), vec![1, 2, 3]);
        db.close();
    }
    // After a restart, and after compacting the blocks together.
    let db = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    db.compact_now().unwrap();
    assert!(db.blocks().len() < 3, "{} blocks", db.blocks().len());
    assert_eq!(read(&db, i64::MIN, i64::MAX), want);
    db.close();
}

/// A chunk that crosses a block boundary (written by a head with a longer
/// chunk range than the blocks) is split: each block holds its part.
#[test]
fn a_histogram_chunk_crossing_a_block_boundary_is_clipped() {
    let src = tempfile::tempdir().unwrap();
    let head = cairn_head::Head::open(
        src.path(),
        cairn_head::HeadOptions {
            chunk_range: 4 * H,
            ..cairn_head::HeadOptions::default()
        },
    )
    .unwrap();
    let mut app = head.appender();
    for k in 0..20u64 {
        app.append_histogram(0, &ints(), k as i64 * 10 * MIN, &hist(k))
            .unwrap();
    }
    app.commit().unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut total = 0;
    for (mint, maxt) in [(0, 2 * H), (2 * H, 4 * H)] {
        let q = head.querier(mint, maxt - 1).unwrap();
        let opts = cairn_tsdb::BlockWriteOptions::default();
        let Some(desc) = cairn_tsdb::write_block(out.path(), &*q, mint, maxt, &opts).unwrap()
        else {
            panic!("no block");
        };
        let b = cairn_tsdb::Block::open(&out.path().join(desc.ulid.to_string())).unwrap();
        assert_eq!(b.meta().stats.num_histogram_samples, 12.min(20 - total));
        total += b.meta().stats.num_histogram_samples;
        let q = b.querier(i64::MIN, i64::MAX).unwrap();
        let ms = [Matcher::new(MatchType::Equal, "gpu", "0").unwrap()];
        for s in q.select(&SelectHints::default(), &ms).unwrap() {
            let s = s.unwrap();
            let mut it = s.iter();
            let mut n = 0;
            while it.next() == ValueType::FloatHistogram {
                let (t, h) = it.at_float_histogram().unwrap();
                assert!(t >= mint && t < maxt);
                assert_eq!(h.count, hist((t / (10 * MIN)) as u64).count as f64);
                n += 1;
            }
            assert_eq!(n, 12.min(20 - (mint / (10 * MIN)) as usize));
        }
    }
    assert_eq!(total, 20);
}

/// Histograms of a shard that lags behind (older than the head, already
/// cut into blocks) are taken within the out-of-order window, as
/// Prometheus v3 takes them: readable at once, written into blocks of
/// their own by the late flush, merged with the blocks they overlap by
/// compaction, and read back after a restart.
#[test]
fn late_histograms_reach_blocks_and_merge() {
    let dir = tempfile::tempdir().unwrap();
    let o = DbOptions {
        ooo_window: 30 * 24 * H,
        ..opts()
    };
    let db = Db::open(dir.path(), o.clone()).unwrap();
    let mut want = fill(&db);
    db.cut_head_now().unwrap();
    // A newer in-order sample, so that the late ones are behind the head.
    let mut app = db.appender();
    app.append(0, &floats(), 8 * H, 1.0).unwrap();
    want.push((floats().to_string(), 8 * H, 'f', 1.0));
    // Late: between the blocks' samples (every 5 minutes) and before them.
    for k in 0..24u64 {
        let t = k as i64 * 10 * MIN + 2 * MIN;
        app.append_histogram(0, &ints(), t, &hist(k + 100)).unwrap();
        want.push((ints().to_string(), t, 'i', hist(k + 100).count as f64));
    }
    app.append_float_histogram(0, &floats(), -H, &fhist(7))
        .unwrap();
    want.push((floats().to_string(), -H, 'h', fhist(7).count));
    app.commit().unwrap();
    want.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    assert_eq!(read(&db, i64::MIN, i64::MAX), want, "read at once");
    let late = db.flush_late().unwrap();
    assert_eq!(late.len(), 3, "one block per 2 h range: {late:?}");
    assert_eq!(read(&db, i64::MIN, i64::MAX), want, "from the late blocks");
    let n: u64 = db
        .blocks()
        .iter()
        .filter(|b| late.contains(&b.meta().ulid))
        .map(|b| b.meta().stats.num_histogram_samples)
        .sum();
    assert_eq!(n, 25);
    db.close();
    let db = Db::open(dir.path(), o).unwrap();
    assert_eq!(read(&db, i64::MIN, i64::MAX), want, "after a restart");
    db.compact_now().unwrap();
    // Those overlapping older blocks were merged into them (the one before
    // 0, alone in its range, stays).
    let mut spans: Vec<(i64, i64)> = db
        .blocks()
        .iter()
        .map(|b| (b.meta().min_time, b.meta().max_time))
        .collect();
    spans.sort_unstable();
    assert!(
        spans.windows(2).all(|w| w[0].1 <= w[1].0),
        "overlapping blocks left: {spans:?}"
    );
    assert_eq!(
        db.blocks()
            .iter()
            .filter(|b| late.contains(&b.meta().ulid))
            .count(),
        1
    );
    assert_eq!(read(&db, i64::MIN, i64::MAX), want, "after compaction");
    db.close();
}
