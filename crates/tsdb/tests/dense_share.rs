//! Dense chunks of one block share the timestamps of a scrape target
//! (docs/format/dense-chunk.md, timestamp flag 2): a compacted block
//! stores each target's jittered timestamps once, every sample reads back
//! exactly, and chunks handed to other blocks (compaction, remote read)
//! come out self-contained.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // test code

mod common;

use cairn_codec::{dense_shared_source, ENCODING_DENSE};
use cairn_index::IndexLike;
use cairn_model::{Labels, LabelsBuilder, MatchType, Matcher, Sample};
use cairn_storage::{MemStorage, Queryable, SelectHints};
use cairn_tsdb::{write_block, Block, BlockWriteOptions, FloatEncoding};
use common::stepped_samples;

const H: i64 = 3_600_000;

/// Two targets of 30 series each, scraped every 15 s with up to 25 ms of
/// jitter per target and scrape; one series of each starts late (a new
/// pod), one carries a stale marker.
fn data() -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut out = Vec::new();
    for target in 0..2u64 {
        let ts: Vec<i64> = (0..960i64)
            .map(|k| k * 15_000 + ((k as u64 * 2654435761 + target * 97) % 26) as i64)
            .collect();
        for m in 0..30u64 {
            let mut b = LabelsBuilder::new();
            b.set("__name__", &format!("metric_{m:02}"))
                .set("instance", &format!("node-{target}"));
            let first = if m == 7 { 300 } else { 0 };
            let s: Vec<(i64, f64)> = ts[first..]
                .iter()
                .enumerate()
                .map(|(i, &t)| {
                    let v = if m == 3 && i == 500 {
                        f64::from_bits(0x7ff0_0000_0000_0002)
                    } else {
                        ((i as u64 * 7919 + m * 31) % 100_000) as f64 / 1000.0
                    };
                    (t, v)
                })
                .collect();
            out.push((b.build(), s));
        }
    }
    out
}

fn write(dir: &std::path::Path, q: &dyn Queryable, enc: FloatEncoding) -> Block {
    let qq = q.querier(0, 4 * H - 1).unwrap();
    let opts = BlockWriteOptions {
        encoding: enc,
        ..BlockWriteOptions::default()
    };
    let m = write_block(dir, &*qq, 0, 4 * H, &opts).unwrap().unwrap();
    Block::open(&dir.join(m.ulid.to_string())).unwrap()
}

/// (chunks, chunks sharing timestamps) of a block, read raw from its files.
fn shared_counts(b: &Block) -> (usize, usize) {
    let ix = b.index();
    let (mut all, mut shared) = (0, 0);
    let mut metas = Vec::new();
    for r in ix.all_postings().unwrap() {
        ix.series(r, &mut metas).unwrap();
        for c in &metas {
            let (enc, data) = b.chunk_reader().chunk(c.chunk_ref).unwrap();
            all += 1;
            if enc == ENCODING_DENSE && dense_shared_source(&data).unwrap().is_some() {
                shared += 1;
            }
        }
    }
    (all, shared)
}

#[test]
fn a_target_pays_for_its_timestamps_once_and_every_sample_reads_back() {
    let tmp = tempfile::tempdir().unwrap();
    let mem = MemStorage::new();
    let data = data();
    for (l, s) in &data {
        mem.add(l.clone(), s.iter().map(|&(t, v)| Sample::new(t, v)));
    }
    let want = stepped_samples(&mem, i64::MIN, i64::MAX);
    let dense = write(tmp.path(), &mem, FloatEncoding::Dense);
    assert_eq!(stepped_samples(&dense, i64::MIN, i64::MAX), want);
    let (all, shared) = shared_counts(&dense);
    // Per target, the first series' two chunks and the late pod's first
    // chunk hold their own timestamps (the late pod's second chunk starts
    // mid-way through a source's run and is found there).
    assert!(
        shared >= all - 8,
        "{shared} of {all} chunks share timestamps"
    );
    // Sharing saves most of what jittered timestamps cost.
    let dir2 = tmp.path().join("xor");
    std::fs::create_dir_all(&dir2).unwrap();
    let xor = write(&dir2, &mem, FloatEncoding::Xor);
    assert!(
        dense.size() * 3 < xor.size(),
        "{} vs {}",
        dense.size(),
        xor.size()
    );

    // Re-written into another block (compaction, export), chunks come out
    // self-contained and are shared anew there.
    let dir3 = tmp.path().join("again");
    std::fs::create_dir_all(&dir3).unwrap();
    let again = write(&dir3, &dense, FloatEncoding::Dense);
    assert_eq!(stepped_samples(&again, i64::MIN, i64::MAX), want);
    assert_eq!(shared_counts(&again), (all, shared));
    let q = dense.querier(i64::MIN, i64::MAX).unwrap();
    let m = Matcher::new(MatchType::Regex, "__name__", ".+").unwrap();
    for s in q.select(&SelectHints::default(), &[m]).unwrap() {
        let s = s.unwrap();
        let mut it = s.chunks().unwrap();
        while let Some(c) = it.next_chunk() {
            let c = c.unwrap();
            assert_eq!(dense_shared_source(&c.data).unwrap(), None);
        }
    }
}
