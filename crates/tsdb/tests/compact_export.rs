//! `cairn tsdb compact` and `cairn tsdb export` at the library level:
//! compaction of a stopped directory keeps every sample, cuts the whole head
//! (WAL included) without replaying it twice, merges mixed chunk encodings;
//! an export keeps ULIDs and meta, applies tombstones, skips downsampled
//! blocks and is read by the real promtool exactly as Cairn reads the source.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod common;

use std::fmt::Write as _;
use std::path::Path;

use cairn_model::{Labels, MatchType, Matcher, Sample};
use cairn_storage::{Appendable, MemStorage, Queryable};
use cairn_tsdb::cli::{chunk_encodings, compact, dump, export, format_go_g, ExportOptions};
use cairn_tsdb::{write_block, Block, BlockWriteOptions, Db, DbOptions, FloatEncoding, Ulid};
use common::*;

const H: i64 = 3_600_000;
/// Aligned to 18 h, the third compaction range, so that blocks fall into
/// whole compaction windows.
const BASE: i64 = 26_234 * 18 * H;

fn db_opts(enc: FloatEncoding, wal: bool) -> DbOptions {
    DbOptions {
        maintenance_interval: None,
        retention_time: 0,
        chunk_encoding: enc,
        wal: if wal { DbOptions::default().wal } else { None },
        ..DbOptions::default()
    }
}

/// Appends `data` in time order, all series per commit, as scrapes would.
fn append(db: &Db, data: &Data) {
    let steps = data.iter().map(|d| d.1.len()).max().unwrap_or(0);
    for i in 0..steps {
        let mut app = db.appender();
        for (l, s) in data {
            if let Some(&(t, v)) = s.get(i) {
                app.append(0, l, t, v).unwrap();
            }
        }
        app.commit().unwrap();
    }
}

/// The dump lines of `data`, in promtool's order.
fn expected_dump(data: &Data) -> String {
    let mut d: Vec<&(Labels, Vec<(i64, f64)>)> = data.iter().collect();
    d.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (l, s) in d {
        for (t, v) in s {
            writeln!(out, "{l} {} {t}", format_go_g(*v)).unwrap();
        }
    }
    out
}

/// (labels, t, bits) of `data` in `[mint, maxt]`, sorted.
fn expected_samples(data: &Data, mint: i64, maxt: i64) -> Vec<(Labels, i64, u64)> {
    let mut v: Vec<(Labels, i64, u64)> = data
        .iter()
        .flat_map(|(l, s)| {
            s.iter()
                .filter(|(t, _)| (mint..=maxt).contains(t))
                .map(move |&(t, v)| (l.clone(), t, v.to_bits()))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    v
}

fn cairn_dump(dir: &Path) -> String {
    let mut out = Vec::new();
    dump(dir, i64::MIN, i64::MAX, &[], None, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The blocks of `dir`, sorted by min time.
fn blocks(dir: &Path) -> Vec<Block> {
    let mut v: Vec<Block> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("meta.json").exists())
        .map(|e| Block::open(&e.path()).unwrap())
        .collect();
    v.sort_by_key(|b| (b.meta().min_time, b.ulid()));
    v
}

/// The encodings of `b`'s chunks, names only.
fn encodings(b: &Block) -> Vec<String> {
    let mut v: Vec<String> = chunk_encodings(b)
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    v.sort();
    v
}

/// Writes `data` over `[mint, maxt)` as one level-1 block in `enc`.
fn put_block(dir: &Path, data: &Data, mint: i64, maxt: i64, enc: FloatEncoding) -> Ulid {
    let mem = MemStorage::new();
    for (l, s) in data {
        mem.add(l.clone(), s.iter().map(|&(t, v)| Sample::new(t, v)));
    }
    let q = mem.querier(mint, maxt - 1).unwrap();
    let opts = BlockWriteOptions {
        encoding: enc,
        ..BlockWriteOptions::default()
    };
    write_block(dir, &*q, mint, maxt, &opts)
        .unwrap()
        .unwrap()
        .ulid
}

#[test]
fn compact_turns_xor_blocks_into_dense_and_keeps_every_sample() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let data = gen_samples(12, BASE, BASE + 14 * H, 60_000);
    {
        let db = Db::open(&dir, db_opts(FloatEncoding::Xor, false)).unwrap();
        append(&db, &data);
        assert_eq!(db.cut_head_now().unwrap().len(), 7);
        db.close();
    }
    let before = cairn_dump(&dir);
    assert_eq!(before, expected_dump(&data));
    assert!(blocks(&dir).iter().all(|b| encodings(b) == ["xor"]));

    let mut out = Vec::new();
    let sum = compact(&dir, FloatEncoding::Dense, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(sum.cut.is_empty(), "{out}");
    assert_eq!(sum.blocks_before, 7, "{out}");
    assert_eq!(sum.samples_before, 12 * 840);
    assert_eq!(sum.samples_after, 12 * 840);
    assert_eq!(cairn_dump(&dir), before);
    // 2h → 6h → 12h: everything but the newest 2h block (which the server
    // leaves alone too) is merged into one dense block.
    let bs = blocks(&dir);
    assert_eq!(bs.len(), 2, "{out}");
    assert_eq!(sum.blocks_after, 2);
    assert_eq!(sum.written, vec![bs[0].ulid()], "{out}");
    let (big, newest) = (&bs[0], &bs[1]);
    assert_eq!(
        (big.meta().min_time, big.meta().max_time),
        (BASE, BASE + 12 * H)
    );
    assert_eq!(big.meta().compaction.level, 3);
    assert_eq!(big.meta().compaction.sources.len(), 6);
    assert_eq!(encodings(big), ["dense"]);
    assert_eq!(newest.meta().compaction.level, 1);
    assert_eq!(encodings(newest), ["xor"]);
    assert!(
        out.contains(&format!("BLOCK {} compacted level 3", big.ulid())),
        "{out}"
    );
    assert!(out.contains("encodings dense"), "{out}");
    assert!(
        out.contains("blocks 7 -> 2, raw samples 10080 -> 10080"),
        "{out}"
    );

    // A second run finds nothing to do.
    let mut out = Vec::new();
    let again = compact(&dir, FloatEncoding::Dense, &mut out).unwrap();
    assert!(
        again.written.is_empty(),
        "{}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(cairn_dump(&dir), before);
}

#[test]
fn mixed_encodings_are_read_and_compacted_into_one_block() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let all = gen_samples(12, BASE, BASE + 4 * H, 30_000);
    let (xor, rest) = all.split_at(4);
    let (dense, xor2) = rest.split_at(4);
    let (xor, dense, xor2) = (xor.to_vec(), dense.to_vec(), xor2.to_vec());
    // Head cuts (XOR) of the first series; a dense and an XOR2 block of the
    // others over the same 4 hours.
    {
        let db = Db::open(&dir, db_opts(FloatEncoding::Dense, false)).unwrap();
        append(&db, &xor);
        assert_eq!(db.cut_head_now().unwrap().len(), 2);
        db.close();
    }
    let d = put_block(&dir, &dense, BASE, BASE + 4 * H, FloatEncoding::Dense);
    let x2 = put_block(&dir, &xor2, BASE, BASE + 4 * H, FloatEncoding::Xor2);
    let mut encs: Vec<(Ulid, Vec<String>)> = blocks(&dir)
        .iter()
        .map(|b| (b.ulid(), encodings(b)))
        .collect();
    encs.sort_by_key(|e| e.1.clone());
    assert_eq!(encs.len(), 4);
    assert_eq!(encs[0], (d, vec!["dense".to_owned()]));
    assert_eq!(encs[1].1, ["xor"]);
    assert_eq!(encs[2].1, ["xor"]);
    assert_eq!(encs[3], (x2, vec!["xor2".to_owned()]));

    // Queries over all of it and over a part answer the known data.
    {
        let db = Db::open(&dir, db_opts(FloatEncoding::Dense, false)).unwrap();
        assert_eq!(
            stepped_samples(&*db, i64::MIN, i64::MAX),
            expected_samples(&all, i64::MIN, i64::MAX)
        );
        let (a, z) = (BASE + H + 15_000, BASE + 3 * H - 1);
        assert_eq!(stepped_samples(&*db, a, z), expected_samples(&all, a, z));
        db.close();
    }
    let before = cairn_dump(&dir);
    assert_eq!(before, expected_dump(&all));

    // The blocks overlap, so the planner merges all four into one.
    let mut out = Vec::new();
    let sum = compact(&dir, FloatEncoding::Dense, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let bs = blocks(&dir);
    assert_eq!(bs.len(), 1, "{out}");
    assert_eq!(sum.blocks_after, 1);
    assert_eq!(encodings(&bs[0]), ["dense"]);
    assert_eq!(
        (bs[0].meta().min_time, bs[0].meta().max_time),
        (BASE, BASE + 4 * H)
    );
    assert_eq!(bs[0].meta().stats.num_samples, 12 * 480);
    assert_eq!(sum.samples_before, sum.samples_after);
    assert_eq!(cairn_dump(&dir), before);
    let db = Db::open(&dir, db_opts(FloatEncoding::Dense, false)).unwrap();
    assert_eq!(
        stepped_samples(&*db, i64::MIN, i64::MAX),
        expected_samples(&all, i64::MIN, i64::MAX)
    );
}

#[test]
fn compact_cuts_the_wal_and_reopening_does_not_replay_it_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let data = gen_samples(6, BASE, BASE + 5 * H, 60_000);
    let last = BASE + 5 * H - 60_000;
    {
        let db = Db::open(&dir, db_opts(FloatEncoding::Dense, true)).unwrap();
        append(&db, &data);
        // Stopped without a cut: everything is in the WAL.
        db.close();
    }
    assert!(blocks(&dir).is_empty());
    assert_eq!(cairn_dump(&dir), expected_dump(&data));

    let mut out = Vec::new();
    let sum = compact(&dir, FloatEncoding::Dense, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(sum.cut.len(), 3, "{out}");
    assert_eq!(sum.samples_before, 6 * 300, "{out}");
    assert_eq!(sum.samples_after, 6 * 300, "{out}");
    // [0, 2h) and [2h, 4h) merge (dense); the partial last range ends just
    // after the newest sample and stays as cut.
    let bs = blocks(&dir);
    assert_eq!(bs.len(), 2, "{out}");
    assert_eq!(
        (bs[0].meta().min_time, bs[0].meta().max_time),
        (BASE, BASE + 4 * H)
    );
    assert_eq!(encodings(&bs[0]), ["dense"]);
    assert_eq!(
        (bs[1].meta().min_time, bs[1].meta().max_time),
        (BASE + 4 * H, last + 1)
    );
    assert_eq!(encodings(&bs[1]), ["xor"]);
    assert!(out.contains(" cut level 1 "), "{out}");

    // Reopening replays nothing: the head is empty, every sample is there
    // once, and a restarted server appends right after the newest sample.
    for _ in 0..2 {
        assert_eq!(cairn_dump(&dir), expected_dump(&data));
    }
    let db = Db::open(&dir, db_opts(FloatEncoding::Dense, true)).unwrap();
    assert!(
        db.head().min_time() > db.head().max_time(),
        "head not empty"
    );
    assert_eq!(
        stepped_samples(&*db, i64::MIN, i64::MAX),
        expected_samples(&data, i64::MIN, i64::MAX)
    );
    // ... and when it cuts the rest of the partial range, the planner
    // merges the overlapping blocks first; nothing is lost or doubled.
    let more = gen_samples(6, last + 1, last + 1 + 4 * H, 60_000);
    append(&db, &more);
    assert!(!db.cut_head(false).unwrap().is_empty());
    let merged = db.compact_now().unwrap();
    assert!(!merged.is_empty());
    let mut want = data.clone();
    for (w, m) in want.iter_mut().zip(&more) {
        assert_eq!(w.0, m.0);
        w.1.extend_from_slice(&m.1);
    }
    assert_eq!(
        stepped_samples(&*db, i64::MIN, i64::MAX),
        expected_samples(&want, i64::MIN, i64::MAX)
    );
    let bs = db.blocks();
    for w in bs.windows(2) {
        assert!(w[0].meta().max_time <= w[1].meta().min_time, "overlap left");
    }
    db.close();
    drop(db);
    assert_eq!(cairn_dump(&dir), expected_dump(&want));
}

#[test]
fn export_keeps_ulids_and_meta_applies_tombstones_skips_downsampled_and_promtool_reads_it() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let dst = tmp.path().join("dst");
    let data = gen_samples(8, BASE, BASE + 14 * H, 60_000);
    {
        let db = Db::open(&src, db_opts(FloatEncoding::Dense, false)).unwrap();
        append(&db, &data);
        db.cut_head_now().unwrap();
        db.compact_now().unwrap();
        let inst = Matcher::new(MatchType::Equal, "inst", "i001").unwrap();
        assert!(db.delete_series(&[inst], BASE + H, BASE + 3 * H).unwrap() > 0);
        db.close();
    }
    let mut sink = Vec::new();
    assert!(cairn_tsdb::cli::downsample(&src, &mut sink).unwrap() > 0);
    let src_blocks = blocks(&src);
    let raw: Vec<&Block> = src_blocks
        .iter()
        .filter(|b| b.meta().resolution() == 0)
        .collect();
    assert_eq!(raw.len(), 2);
    assert!(raw.iter().any(|b| encodings(b) == ["dense"]));
    assert!(raw.iter().any(|b| !b.tombstones().is_empty()));
    let src_dump = cairn_dump(&src);
    assert_eq!(
        src_dump.lines().count(),
        8 * 840 - 121,
        "tombstones hide [1h, 3h] (closed) of one series"
    );

    let mut out = Vec::new();
    let sum = export(&src, &dst, &ExportOptions::default(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    let mut want: Vec<Ulid> = raw.iter().map(|b| b.ulid()).collect();
    want.sort();
    let mut got = sum.exported.clone();
    got.sort();
    assert_eq!(got, want, "{out}");
    assert_eq!(sum.skipped.len(), src_blocks.len() - 2, "{out}");
    assert!(
        out.contains("SKIP") && out.contains("downsampled (5m)"),
        "{out}"
    );
    assert_eq!(sum.samples, 8 * 840 - 121);
    for b in blocks(&dst) {
        let s = raw.iter().find(|r| r.ulid() == b.ulid()).unwrap().meta();
        let m = b.meta();
        assert_eq!((m.min_time, m.max_time), (s.min_time, s.max_time));
        assert_eq!(m.compaction.level, s.compaction.level);
        assert_eq!(m.compaction.sources, s.compaction.sources);
        assert_eq!(m.compaction.parents, s.compaction.parents);
        assert_eq!(m.resolution(), 0);
        assert!(b.tombstones().is_empty());
        assert_eq!(encodings(&b), ["xor"]);
    }
    assert_eq!(cairn_dump(&dst), src_dump);
    assert_eq!(promtool_dump(&dst), src_dump);
    run_promtool(&["tsdb", "analyze", dst.to_str().unwrap()]);

    // Exporting again refuses and writes nothing.
    let err = export(&src, &dst, &ExportOptions::default(), &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("already holds block"), "{err}");
    assert_eq!(blocks(&dst).len(), 2);

    // One block as the source, in XOR2.
    let one = tmp.path().join("one");
    let b = raw[0].ulid();
    let sum = export(
        &src.join(b.to_string()),
        &one,
        &ExportOptions {
            encoding: FloatEncoding::Xor2,
            ..ExportOptions::default()
        },
        &mut Vec::new(),
    )
    .unwrap();
    assert_eq!(sum.exported, vec![b]);
    let bs = blocks(&one);
    assert_eq!(bs.len(), 1);
    assert_eq!(encodings(&bs[0]), ["xor2"]);
    let m = raw[0].meta();
    let mut part = Vec::new();
    dump(&src, m.min_time, m.max_time - 1, &[], None, &mut part).unwrap();
    assert_eq!(cairn_dump(&one), String::from_utf8(part).unwrap());
}
