//! Frozen downsampling fixtures (tests/fixtures/downsample): a raw block,
//! the 5-minute and 1-hour blocks Cairn made from it, and a copy of the
//! 5-minute block whose first aggregate chunk claims a sub-chunk longer than
//! itself (its CRC recomputed, so only the aggregate decoder can tell).
//!
//! The tests recompute every window's aggregates from the raw fixture with
//! code of their own and compare them with what the frozen blocks hold, so
//! a change to the format or to the windows' meaning fails here.
//! `write_fixtures` (ignored) rewrote them once; never rerun it to make a
//! test pass. `counter-max/` holds the levels of the same raw block as the
//! writer made them once maxima held by the counter entry were left out and
//! sums of decimals became exact (`write_counter_max_fixtures`, run once).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cairn_model::{labels, Matcher};
use cairn_storage::{Aggregate, Appendable, Querier, SelectHints, ValueType};
use cairn_tsdb::block::{BlockHandle, BlockQuerier};
use cairn_tsdb::downsample::{RES_1H, RES_5M};
use cairn_tsdb::{Block, Db, DbOptions};
use common::copy_tree;

const H: i64 = 3_600_000;
const T0: i64 = 1_700_006_400_000;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/downsample")
}

type Points = BTreeMap<String, Vec<(i64, f64)>>;

fn read(b: &Block, aggregate: Aggregate) -> Result<Points, String> {
    let m = b.meta();
    let q = BlockQuerier::new(BlockHandle::Borrowed(b), m.min_time, m.max_time - 1);
    let hints = SelectHints {
        start: m.min_time,
        end: m.max_time - 1,
        aggregate,
        ..SelectHints::default()
    };
    let all = Matcher::new(cairn_model::MatchType::Regex, "__name__", ".+").unwrap();
    let mut out = Points::new();
    for s in q.select(&hints, &[all]).map_err(|e| e.to_string())? {
        let s = s.map_err(|e| e.to_string())?;
        let mut it = s.iter();
        let mut pts = Vec::new();
        while it.next() == ValueType::Float {
            pts.push(it.at());
        }
        if let Some(e) = it.err() {
            return Err(e.to_string());
        }
        out.insert(s.labels().to_string(), pts);
    }
    Ok(out)
}

/// Windows `(k·r, (k+1)·r]` of the raw points, stamped at their end, with
/// stale markers left out: computed here independently of the crate.
fn windows(raw: &[(i64, f64)], r: i64) -> BTreeMap<i64, Vec<f64>> {
    let mut w: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for &(t, v) in raw {
        if cairn_model::is_stale_nan(v) {
            continue;
        }
        let end = (t + r - 1).div_euclid(r) * r;
        w.entry(end).or_default().push(v);
    }
    w
}

fn bits_eq(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Per window (by its end), the largest of `pts`: a max read from counter
/// samples holds several points a window, window-stamped maxima one.
fn max_per_window(pts: &[(i64, f64)], r: i64) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64)> = Vec::new();
    for &(t, v) in pts {
        let end = (t + r - 1).div_euclid(r) * r;
        match out.last_mut() {
            Some((e, m)) if *e == end => {
                if v > *m || m.is_nan() {
                    *m = v;
                }
            }
            _ => out.push((end, v)),
        }
    }
    out
}

#[test]
fn frozen_levels_hold_the_aggregates_of_the_raw_fixture() {
    check_levels("", [("5m", RES_5M), ("1h", RES_1H)]);
}

/// The levels written after maxima went to the counter entry and sums
/// became exact decimals (docs/format/downsample.md): `energy_total`, a
/// counter of unknown type, keeps min, counter and no max; the gauges keep
/// their max; `gpu_util`'s sums are its exact sums, bit for bit (its
/// values are binary fractions, so any summation gets them exact: this
/// pins the frozen bytes; `downsample::window`'s tests check the decimal
/// rule itself).
#[test]
fn frozen_levels_with_counter_maxima_and_exact_sums() {
    check_levels("counter-max/", [("5m", RES_5M), ("1h", RES_1H)]);
    let raw_block = Block::open(&dir().join("raw")).unwrap();
    let rm = raw_block.meta();
    let raw = read(&raw_block, Aggregate::Avg).unwrap();
    let util = "{__name__=\"gpu_util\"}";
    for (name, res) in [("5m", RES_5M), ("1h", RES_1H)] {
        let path = dir().join("counter-max").join(name);
        let bytes = std::fs::read(path.join("chunks/000001")).unwrap();
        let (mut max_left_out, mut max_kept) = (0, 0);
        let mut at = 8; // segment header
        while at < bytes.len() {
            let (len, n) = cairn_codec::varint::uvarint(&bytes[at..]).unwrap();
            let data_at = at + n + 1;
            let crc_at = data_at + len as usize;
            let [_, _, min, max, counter] =
                cairn_codec::decode_aggr(&bytes[data_at..crc_at]).unwrap();
            match (min.is_some(), max.is_some(), counter.is_some()) {
                (true, false, true) => max_left_out += 1,
                (true, true, _) => max_kept += 1,
                other => panic!("{name}: unexpected entries {other:?}"),
            }
            at = crc_at + 4;
        }
        assert_eq!((max_left_out, max_kept), (1, 2), "{name}");
        let b = Block::open(&path).unwrap();
        let sums = read(&b, Aggregate::Sum).unwrap();
        let inside = raw[util].iter().filter(|p| p.0 > rm.min_time);
        let mut exact: BTreeMap<i64, i64> = BTreeMap::new();
        for &(t, v) in inside {
            let m = (v * 1000.0).round();
            assert_eq!(m / 1000.0, v);
            *exact
                .entry((t + res - 1).div_euclid(res) * res)
                .or_default() += m as i64;
        }
        let want: Vec<(i64, u64)> = exact
            .into_iter()
            .map(|(t, m)| (t, (m as f64 / 1000.0).to_bits()))
            .collect();
        let have: Vec<(i64, u64)> = sums[util].iter().map(|p| (p.0, p.1.to_bits())).collect();
        assert_eq!(want, have, "{name}: exact decimal sums");
    }
}

fn check_levels(sub: &str, levels: [(&str, i64); 2]) {
    let raw_block = Block::open(&dir().join("raw")).unwrap();
    let raw = read(&raw_block, Aggregate::Avg).unwrap();
    for (name, res) in levels {
        let name = format!("{sub}{name}");
        let b = Block::open(&dir().join(&name)).unwrap();
        assert_eq!(b.meta().resolution(), res, "{name}");
        let rm = raw_block.meta();
        assert_eq!(
            (b.meta().min_time, b.meta().max_time),
            (rm.min_time + 1, rm.max_time + 1),
            "{name}: bounds are the raw block's, shifted by 1 ms"
        );
        for (agg, f) in [
            (
                Aggregate::Count,
                (|v: &[f64]| v.len() as f64) as fn(&[f64]) -> f64,
            ),
            (Aggregate::Sum, |v: &[f64]| v.iter().sum()),
            (Aggregate::Avg, |v: &[f64]| {
                v.iter().sum::<f64>() / v.len() as f64
            }),
            (Aggregate::Min, |v: &[f64]| {
                v.iter()
                    .copied()
                    .fold(f64::NAN, |m, x| if x < m || m.is_nan() { x } else { m })
            }),
            (Aggregate::Max, |v: &[f64]| {
                v.iter()
                    .copied()
                    .fold(f64::NAN, |m, x| if x > m || m.is_nan() { x } else { m })
            }),
        ] {
            let mut got = read(&b, agg).unwrap();
            if agg == Aggregate::Max {
                for pts in got.values_mut() {
                    *pts = max_per_window(pts, res);
                }
            }
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                raw.keys().collect::<Vec<_>>()
            );
            for (k, pts) in &raw {
                // The raw block's first sample (at its min time) belongs to
                // the window before the downsampled block.
                let inside: Vec<(i64, f64)> =
                    pts.iter().copied().filter(|p| p.0 > rm.min_time).collect();
                let want: Vec<(i64, f64)> = windows(&inside, res)
                    .into_iter()
                    .map(|(t, v)| (t, f(&v)))
                    .collect();
                let have = &got[k];
                assert_eq!(want.len(), have.len(), "{name} {agg:?} {k}");
                for (w, h) in want.iter().zip(have) {
                    assert!(
                        w.0 == h.0 && bits_eq(w.1, h.1),
                        "{name} {agg:?} {k}: {w:?} vs {h:?}"
                    );
                }
            }
        }
        // The counter keeps both sides of each reset: as many drops as raw.
        let ctr = read(&b, Aggregate::Resets).unwrap();
        let drops = |p: &[(i64, f64)]| p.windows(2).filter(|w| w[1].1 < w[0].1).count();
        let k = "{__name__=\"energy_total\"}";
        let raw_inside: Vec<(i64, f64)> = raw[k]
            .iter()
            .copied()
            .filter(|p| p.0 > rm.min_time)
            .collect();
        assert_eq!(drops(&ctr[k]), drops(&raw_inside), "{name}");
        assert_eq!(
            ctr[k].last(),
            raw_inside.last(),
            "{name}: last raw sample kept"
        );
    }
}

#[test]
fn a_corrupt_aggregate_chunk_is_a_named_error() {
    let b = Block::open(&dir().join("corrupt-5m")).unwrap();
    for agg in [Aggregate::Avg, Aggregate::Max, Aggregate::Resets] {
        let err = read(&b, agg).unwrap_err().to_string();
        assert!(err.contains("truncated data"), "{agg:?}: {err}");
    }
}

/// A database in `dir` that keeps everything and maintains nothing by
/// itself: the fixture writers' scratch space.
fn fixture_db(dir: &Path) -> std::sync::Arc<Db> {
    Db::open(
        dir,
        DbOptions {
            maintenance_interval: None,
            retention_time: 0,
            wal: None,
            ..DbOptions::default()
        },
    )
    .unwrap()
}

/// Rewrites the fixtures. Run by hand only when the format changes on
/// purpose: `cargo test -p cairn-tsdb --test downsample_fixtures -- --ignored`.
#[test]
#[ignore]
fn write_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let db = fixture_db(tmp.path());
    for k in 0..(2 * H / 30_000) {
        let t = T0 + k * 30_000;
        let mut app = db.appender();
        let util = if k == 100 {
            218_322_032.0
        } else {
            ((k * 37) % 101) as f64 + 0.125
        };
        app.append(0, &labels!("__name__" => "gpu_util"), t, util)
            .unwrap();
        let temp = if k % 50 == 7 {
            f64::NAN
        } else {
            40.0 + ((k * 13) % 17) as f64 / 3.0
        };
        app.append(0, &labels!("__name__" => "gpu_temp"), t + 3, temp)
            .unwrap();
        let since = [0, 57, 120, 201]
            .iter()
            .filter(|&&r| r <= k)
            .max()
            .copied()
            .unwrap_or(0);
        app.append(
            0,
            &labels!("__name__" => "energy_total"),
            t,
            (10 * (k - since) + 5) as f64,
        )
        .unwrap();
        app.commit().unwrap();
    }
    db.cut_head_now().unwrap();
    db.compact_now().unwrap();
    db.downsample_now(true).unwrap();
    let out = dir();
    let _ = std::fs::remove_dir_all(&out);
    for b in db.blocks() {
        let name = match b.meta().resolution() {
            0 => "raw",
            RES_5M => "5m",
            _ => "1h",
        };
        copy_tree(b.dir(), &out.join(name));
    }
    // The corrupt copy: the first aggregate chunk without a counter entry
    // (a gauge's) gets a counter length of 5 with nothing after it.
    copy_tree(&out.join("5m"), &out.join("corrupt-5m"));
    let seg = out.join("corrupt-5m/chunks/000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    let mut at = 8; // segment header
    loop {
        let (len, n) = cairn_codec::varint::uvarint(&bytes[at..]).unwrap();
        let (enc_at, len) = (at + n, len as usize);
        let (data_at, crc_at) = (enc_at + 1, enc_at + 1 + len);
        let parts = cairn_codec::decode_aggr(&bytes[data_at..crc_at]).unwrap();
        if parts[4].is_none() {
            bytes[crc_at - 1] = 5;
            let crc = cairn_codec::crc32c(&bytes[enc_at..crc_at]);
            bytes[crc_at..crc_at + 4].copy_from_slice(&crc.to_be_bytes());
            assert!(data_at < crc_at);
            break;
        }
        at = crc_at + 4;
    }
    std::fs::write(&seg, bytes).unwrap();
}

/// Writes `counter-max/5m` and `counter-max/1h`: the frozen raw block
/// downsampled by the writer that leaves a counter's maxima to its counter
/// entry and sums decimals exactly. Run by hand once:
/// `cargo test -p cairn-tsdb --test downsample_fixtures write_counter_max_fixtures -- --ignored`.
#[test]
#[ignore]
fn write_counter_max_fixtures() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = Block::open(&dir().join("raw")).unwrap();
    copy_tree(
        &dir().join("raw"),
        &tmp.path().join(raw.meta().ulid.to_string()),
    );
    drop(raw);
    let db = fixture_db(tmp.path());
    db.downsample_now(true).unwrap();
    let out = dir().join("counter-max");
    let _ = std::fs::remove_dir_all(&out);
    for b in db.blocks() {
        let name = match b.meta().resolution() {
            0 => continue,
            RES_5M => "5m",
            _ => "1h",
        };
        copy_tree(b.dir(), &out.join(name));
    }
}
