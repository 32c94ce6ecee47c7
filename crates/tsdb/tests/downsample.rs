//! Downsampling end to end: raw samples appended to a `Db`, cut into
//! blocks, compacted, downsampled to 5m and 1h, then queried through the
//! PromQL engine at each resolution and compared with the raw answers
//! (docs/format/downsample.md states what must be exact).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use cairn_model::labels;
use cairn_promql::{Engine, EngineOptions, QueryValue, SourceResolution};
use cairn_storage::{Appendable, Metadata, MetricType};
use cairn_tsdb::downsample::{RES_1H, RES_5M};
use cairn_tsdb::{Db, DbOptions};
use common::copy_tree;

const H: i64 = 3_600_000;
/// A multiple of 2 h, so blocks and windows align.
const T0: i64 = 1_700_006_400_000;
const STEP: i64 = 30_000;
/// Hours of data cut into blocks; three more stay in the head.
const BLOCK_HOURS: i64 = 72;
/// `rate`/`increase` of steady counters over windows of at least four
/// downsampled points stay within 1% of raw, resets included.
const RATE_TOLERANCE: f64 = 0.01;
const SPIKE: f64 = 218_322_032.0;
const SPIKE_AT: i64 = T0 + 30 * H + 17 * STEP;

fn opts() -> DbOptions {
    DbOptions {
        maintenance_interval: None,
        retention_time: 0,
        retention_5m: 0,
        retention_1h: 0,
        wal: None,
        max_block_duration: Some(54 * H),
        ..DbOptions::default()
    }
}

/// A deterministic pseudo-random value in [0, 1).
fn rnd(i: i64, salt: u64) -> f64 {
    let mut x = (i as u64) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((x ^ (x >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// Raw samples of every test series at scrape `k` (time `T0 + k·STEP`).
fn samples_at(k: i64) -> Vec<(cairn_model::Labels, i64, f64)> {
    let t = T0 + k * STEP;
    let mut out = Vec::new();
    // A gauge on aligned timestamps (every 10th sample on a 5m boundary),
    // with six decimals and one bogus spike.
    let util = if t == SPIKE_AT {
        SPIKE
    } else {
        (rnd(k, 1) * 100.0 * 1e6).round() / 1e6
    };
    out.push((labels!("__name__" => "gpu_util", "gpu" => "0"), t, util));
    // A gauge with jittered timestamps, an occasional NaN and negatives.
    let v = if k % 997 == 5 {
        f64::NAN
    } else {
        rnd(k, 2) * 50.0 - 10.0
    };
    out.push((labels!("__name__" => "gpu_temp", "gpu" => "1"), t + 7, v));
    // A counter that resets: inside a 5m window, on the first sample of
    // one, on the last sample of one, and on a block boundary.
    let resets = [
        7 * 120 + 3, // inside a window
        9 * 120 + 1, // first sample of a window (t = boundary + 30 s)
        11 * 120,    // last sample of a window (t on the boundary)
        18 * 120,    // on a 2 h / 18 h block boundary
        40 * 120 + 55,
    ];
    let since = resets
        .iter()
        .filter(|&&r| r <= k)
        .max()
        .copied()
        .unwrap_or(0);
    let mut c = 0.0;
    for j in since..=k {
        c += (rnd(j, 3) * 1000.0).round();
    }
    out.push((labels!("__name__" => "energy_total", "gpu" => "0"), t, c));
    // The same resets on a steady counter.
    out.push((
        labels!("__name__" => "steady_resets_total"),
        t,
        10.0 * (k - since + 1) as f64,
    ));
    // A gauge scraped irregularly: windows hold different counts.
    if rnd(k, 5) > 0.3 {
        out.push((labels!("__name__" => "gpu_sparse"), t + 11, rnd(k, 6) * 7.0));
    }
    // A steady counter with jittered scrapes.
    let jitter = (rnd(k, 4) * 400.0) as i64;
    out.push((
        labels!("__name__" => "steady_total"),
        t + jitter,
        10.0 * k as f64,
    ));
    out
}

fn build() -> (tempfile::TempDir, Arc<Db>) {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    let append = |from: i64, to: i64| {
        for k in from..to {
            let mut app = db.appender();
            for (l, t, v) in samples_at(k) {
                app.append(0, &l, t, v).unwrap();
            }
            app.commit().unwrap();
        }
    };
    let per_h = H / STEP;
    append(0, BLOCK_HOURS * per_h);
    db.cut_head_now().unwrap();
    // Three more hours stay in the head: raw data after the last block.
    append(BLOCK_HOURS * per_h, (BLOCK_HOURS + 3) * per_h);
    db.compact_now().unwrap();
    let new = db.downsample_now(true).unwrap();
    assert!(!new.is_empty());
    let levels: Vec<i64> = db.blocks().iter().map(|b| b.meta().resolution()).collect();
    assert!(
        levels.contains(&RES_5M) && levels.contains(&RES_1H),
        "{levels:?}"
    );
    (tmp, db)
}

type Answer = BTreeMap<String, Vec<(i64, f64)>>;

fn range(db: &Db, q: &str, res: SourceResolution, start: i64, end: i64, step: i64) -> Answer {
    range_on(db, q, res, start, end, step)
}

/// [`range`] over any storage.
fn range_on(
    db: &dyn cairn_storage::Queryable,
    q: &str,
    res: SourceResolution,
    start: i64,
    end: i64,
    step: i64,
) -> Answer {
    let e = Engine::new(EngineOptions {
        max_source_resolution: res,
        parallelism: 1,
        ..EngineOptions::default()
    });
    let r = e.range_query(db, q, start, end, step).unwrap();
    let QueryValue::Matrix(m) = r.value else {
        panic!("{q}: not a matrix")
    };
    m.into_iter()
        .map(|s| {
            (
                s.metric.to_string(),
                s.floats.iter().map(|p| (p.t, p.f)).collect(),
            )
        })
        .collect()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= rel * a.abs().max(b.abs())
}

fn assert_close(q: &str, level: &str, raw: &Answer, got: &Answer, rel: f64) {
    assert_eq!(
        raw.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{q} at {level}: series differ"
    );
    for (k, want) in raw {
        let have = &got[k];
        assert_eq!(
            want.iter().map(|p| p.0).collect::<Vec<_>>(),
            have.iter().map(|p| p.0).collect::<Vec<_>>(),
            "{q} at {level}: steps of {k} differ"
        );
        for (w, h) in want.iter().zip(have) {
            assert!(
                close(w.1, h.1, rel),
                "{q} at {level}: {k} at {}: raw {} downsampled {}",
                w.0,
                w.1,
                h.1
            );
        }
    }
}

/// A copy of the database's downsampled blocks alone (no raw blocks, no
/// head): what answers from it can only come from downsampled data.
fn downsampled_only(db: &Db) -> (tempfile::TempDir, Arc<Db>) {
    let (tmp, copy) = copy_blocks(db, |m| m.resolution() > 0);
    assert!(copy.blocks().iter().all(|b| b.meta().resolution() > 0));
    (tmp, copy)
}

/// A copy of the blocks of `db` that `keep` selects (no head).
fn copy_blocks(
    db: &Db,
    keep: impl Fn(&cairn_tsdb::BlockMeta) -> bool,
) -> (tempfile::TempDir, Arc<Db>) {
    let tmp = tempfile::tempdir().unwrap();
    for b in db.blocks() {
        if !keep(&b.meta()) {
            continue;
        }
        copy_tree(b.dir(), &tmp.path().join(b.ulid().to_string()));
    }
    let copy = Db::open(tmp.path(), opts()).unwrap();
    (tmp, copy)
}

#[test]
fn missing_levels_are_filled_from_finer_data() {
    let (_tmp, db) = build();
    // Drop the 5m and 1h blocks that cover hour 20 (those of the raw
    // block of hours 6..60): reads fall back to finer data there.
    let hole = |m: &cairn_tsdb::BlockMeta| {
        m.resolution() > 0 && m.min_time <= T0 + 20 * H && m.max_time > T0 + 20 * H
    };
    let (_t2, holey) = copy_blocks(&db, |m| !hole(m));
    let (_t3, only_1h_hole) = copy_blocks(&db, |m| !(hole(m) && m.resolution() == RES_1H));
    assert!(holey.blocks().len() < db.blocks().len() - 1);
    let (start, end) = (T0 + 3 * H, T0 + BLOCK_HOURS * H);
    for q in [
        "max_over_time(gpu_util[1h])",
        "sum_over_time(gpu_temp[2h])",
        "count_over_time(energy_total[1h])",
        "count_over_time(gpu_sparse[1h])",
        "resets(energy_total[1h])",
    ] {
        let raw = range(&db, q, SourceResolution::Raw, start, end, H);
        for (what, d) in [("5m and 1h missing", &holey), ("1h missing", &only_1h_hole)] {
            for res in [RES_5M, RES_1H] {
                let got = range(d, q, SourceResolution::Max(res), start, end, H);
                assert_close(q, &format!("{what}, {res}"), &raw, &got, 1e-9);
            }
        }
    }
    // Where the 5m level is missing, a plain selector at 5m reads raw
    // values; elsewhere averages.
    let at = |t: i64, d: &Db| range(d, "gpu_util", SourceResolution::Max(RES_5M), t, t, H);
    let raw_at = |t: i64| range(&db, "gpu_util", SourceResolution::Raw, t, t, H);
    assert_eq!(at(T0 + 20 * H, &holey), raw_at(T0 + 20 * H));
    assert_ne!(at(T0 + 65 * H, &holey), raw_at(T0 + 65 * H));
}

#[test]
fn the_background_pass_downsamples_what_compaction_finished_and_retention_ages_levels() {
    let tmp = tempfile::tempdir().unwrap();
    let o = DbOptions {
        // Ranges 2h, 6h: a raw block is done once it spans 6 h.
        max_block_duration: Some(6 * H),
        ..opts()
    };
    let db = Db::open(tmp.path(), o.clone()).unwrap();
    let events = db.subscribe();
    let per_h = H / STEP;
    for k in 0..(20 * per_h) {
        let mut app = db.appender();
        for (l, t, v) in samples_at(k) {
            app.append(0, &l, t, v).unwrap();
        }
        app.commit().unwrap();
        if k % per_h == 0 {
            db.maintain().unwrap();
        }
    }
    db.maintain().unwrap();
    let got: Vec<cairn_tsdb::DbEvent> = events.try_iter().collect();
    let downsampled: Vec<(i64, cairn_tsdb::Ulid)> = got
        .iter()
        .filter_map(|e| match e {
            cairn_tsdb::DbEvent::Downsampled {
                resolution, input, ..
            } => Some((*resolution, *input)),
            _ => None,
        })
        .collect();
    assert!(downsampled.iter().any(|d| d.0 == RES_5M), "{got:?}");
    assert!(downsampled.iter().any(|d| d.0 == RES_1H), "{got:?}");
    // Every raw block of 6 h has its 5m block; none of the 2 h blocks does.
    for b in db.blocks() {
        let m = b.meta();
        if m.resolution() == 0 {
            let has = downsampled.iter().any(|d| d.1 == m.ulid);
            assert_eq!(has, m.max_time - m.min_time >= 6 * H, "{m:?}");
        }
    }
    // Retention per level: 5m data older than 4 h before the newest block
    // goes, raw and 1h data stay.
    drop(db);
    let db = Db::open(
        tmp.path(),
        DbOptions {
            retention_5m: 4 * H,
            ..o
        },
    )
    .unwrap();
    let before = db.blocks().len();
    let gone = db.apply_retention().unwrap();
    assert!(!gone.is_empty());
    let ids: Vec<cairn_tsdb::Ulid> = gone.iter().map(|g| g.0).collect();
    assert_eq!(db.blocks().len(), before - gone.len());
    let newest = db.blocks().iter().map(|b| b.meta().max_time).max().unwrap();
    for b in db.blocks() {
        let m = b.meta();
        assert!(
            !(m.resolution() == RES_5M && newest - m.max_time > 4 * H),
            "{m:?} kept"
        );
        assert!(!ids.contains(&m.ulid));
    }
    assert!(db.blocks().iter().any(|b| b.meta().resolution() == RES_1H));
}

#[test]
fn over_time_functions_and_rates_match_raw_at_aligned_times() {
    let (_tmp, db) = build();
    let (_tmp2, only) = downsampled_only(&db);
    // Aligned steps, from inside the first block to three hours past the
    // last downsampled window (raw head data fills the end).
    let (start, end) = (T0 + 3 * H, T0 + (BLOCK_HOURS + 3) * H);
    let exact = [
        "min_over_time({__name__=~\"gpu_.*\"}[1h])",
        "max_over_time({__name__=~\"gpu_.*\"}[1h])",
        "count_over_time({__name__=~\"gpu_.*\"}[1h])",
        "count_over_time(energy_total[1h])",
        "count_over_time(gpu_sparse[1h])",
        "max_over_time(gpu_util[3h])",
        "min_over_time(energy_total[2h])",
        // Counters of unknown type keep no max where their counter
        // samples hold it: read from those, still exact.
        "max_over_time(energy_total[1h])",
        "max_over_time(steady_resets_total[1h])",
        "max_over_time(steady_total[2h])",
        "resets(energy_total[1h])",
        "resets(energy_total[3h])",
    ];
    let summed = [
        "sum_over_time({__name__=~\"gpu_.*\"}[1h])",
        "avg_over_time(gpu_util[1h])",
        "avg_over_time(gpu_sparse[1h])",
        "avg_over_time(gpu_sparse[3h])",
        "sum_over_time(gpu_util[3h])",
    ];
    let rates = [
        "rate(steady_resets_total[1h])",
        "increase(steady_resets_total[3h])",
        "rate(steady_total[2h])",
    ];
    for (level, res) in [("5m", RES_5M), ("1h", RES_1H)] {
        for (queries, rel) in [
            (&exact[..], 0.0),
            (&summed[..], 1e-9),
            (&rates[..], RATE_TOLERANCE),
        ] {
            for q in queries {
                let raw = range(&db, q, SourceResolution::Raw, start, end, H);
                let got = range(&db, q, SourceResolution::Max(res), start, end, H);
                assert!(!raw.is_empty(), "{q}: no raw answer");
                assert_close(q, level, &raw, &got, rel);
                // Up to the end of the blocks, the downsampled blocks alone
                // give the same answers.
                let end_ds = T0 + BLOCK_HOURS * H;
                let raw = range(&db, q, SourceResolution::Raw, start, end_ds, H);
                let alone = range(&only, q, SourceResolution::Max(res), start, end_ds, H);
                assert_close(q, &format!("{level} alone"), &raw, &alone, rel);
            }
        }
    }
}

#[test]
fn rates_off_the_grid_stay_within_one_percent_for_steady_counters() {
    let (_tmp, db) = build();
    // Steps 7 minutes off the hour grid: windows cut downsampled windows.
    // (Series start at T0: raw and downsampled rates extrapolate
    // differently there, so windows begin after it.)
    let (start, end) = (T0 + 5 * H + 7 * 60_000, T0 + 70 * H);
    for (res, q) in [
        (RES_5M, "rate(steady_total[20m])"),
        (RES_5M, "increase(steady_resets_total[1h])"),
        (RES_1H, "rate(steady_total[4h])"),
        (RES_1H, "rate(steady_resets_total[5h])"),
    ] {
        let raw = range(&db, q, SourceResolution::Raw, start, end, H);
        let got = range(&db, q, SourceResolution::Max(res), start, end, H);
        assert!(!raw.is_empty());
        assert_close(q, &format!("{res}ms off the grid"), &raw, &got, 0.01);
    }
}

#[test]
fn spikes_survive_every_level_and_plain_selectors_read_averages() {
    let (_tmp, db) = build();
    let q = "max_over_time(gpu_util[1h])";
    let at = (SPIKE_AT / H + 1) * H;
    for res in [
        SourceResolution::Raw,
        SourceResolution::Max(RES_5M),
        SourceResolution::Max(RES_1H),
    ] {
        let a = range(&db, q, res, at, at, H);
        assert_eq!(a.values().next().unwrap()[0].1, SPIKE, "{res:?}");
    }
    // A plain selector over 5m data is the window's average, not the last
    // raw value: the proof that downsampled data was read.
    let t = T0 + 20 * H;
    let ds = range(&db, "gpu_util", SourceResolution::Max(RES_5M), t, t, H);
    let raw = range(&db, "gpu_util", SourceResolution::Raw, t, t, H);
    let want: f64 = (1..=10)
        .map(|i| samples_at((t - T0) / STEP - 10 + i)[0].2)
        .sum::<f64>()
        / 10.0;
    let got = ds.values().next().unwrap()[0].1;
    assert!(close(got, want, 1e-12), "avg {got} want {want}");
    assert_ne!(got, raw.values().next().unwrap()[0].1);
}

#[test]
fn auto_reads_raw_for_short_steps_and_downsampled_for_long_ones() {
    let (_tmp, db) = build();
    let t = T0 + 20 * H;
    let raw = range(&db, "gpu_util", SourceResolution::Raw, t, t + H, H);
    // Step 1 m: a fifth is 12 s, finer than any level: raw.
    let fine = range(&db, "gpu_util", SourceResolution::Auto, t, t + H, 60_000);
    assert_eq!(
        fine.values().next().unwrap()[0],
        raw.values().next().unwrap()[0]
    );
    // Step 1 h: a fifth is 12 m: 5m data (1h is coarser than the 5m
    // lookback of a plain selector).
    let coarse = range(&db, "gpu_util", SourceResolution::Auto, t, t + H, H);
    let five = range(&db, "gpu_util", SourceResolution::Max(RES_5M), t, t + H, H);
    assert_eq!(coarse, five);
    assert_ne!(coarse, raw);
}

#[test]
fn known_types_drop_what_they_do_not_need_and_queries_fall_back() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), opts()).unwrap();
    {
        let mut app = db.appender();
        let meta = |kind| Metadata {
            kind,
            unit: String::new(),
            help: String::new(),
        };
        for c in ["energy_total", "steady_resets_total"] {
            app.update_metadata(0, &labels!("__name__" => c), &meta(MetricType::Counter))
                .unwrap();
        }
        app.update_metadata(
            0,
            &labels!("__name__" => "gpu_util"),
            &meta(MetricType::Gauge),
        )
        .unwrap();
        app.commit().unwrap();
    }
    for k in 0..(6 * H / STEP) {
        let mut app = db.appender();
        for (l, t, v) in samples_at(k) {
            app.append(0, &l, t, v).unwrap();
        }
        app.commit().unwrap();
    }
    db.cut_head_now().unwrap();
    let untyped_bytes = |db: &Db| -> u64 {
        db.blocks()
            .iter()
            .filter(|b| b.meta().resolution() == RES_5M)
            .map(|b| b.size())
            .sum()
    };
    db.downsample_now(true).unwrap();
    assert!(untyped_bytes(&db) > 0);
    let (start, end) = (T0 + 2 * H, T0 + 5 * H);
    // The counter kept no min/max: max_over_time reads its counter samples,
    // which hold the true maximum of a counter between resets.
    for q in [
        "max_over_time(energy_total[1h])",
        "rate(steady_resets_total[1h])",
        "max_over_time(gpu_util[1h])",
    ] {
        let raw = range(&db, q, SourceResolution::Raw, start, end, H);
        let got = range(&db, q, SourceResolution::Max(RES_5M), start, end, H);
        assert_close(q, "5m typed", &raw, &got, 0.01);
    }
}

#[test]
fn downsampling_off_writes_no_levels_but_serves_existing_ones() {
    let (tmp, db) = build();
    let levels = db
        .blocks()
        .iter()
        .filter(|b| b.meta().resolution() > 0)
        .count();
    drop(db);
    let off = DbOptions {
        downsample: false,
        ..opts()
    };
    let db = Db::open(tmp.path(), off).unwrap();
    // New raw data past the blocks, cut and compacted: no new level block.
    for k in (BLOCK_HOURS + 3) * H / STEP..(BLOCK_HOURS + 30) * H / STEP {
        let mut app = db.appender();
        for (l, t, v) in samples_at(k) {
            app.append(0, &l, t, v).unwrap();
        }
        app.commit().unwrap();
    }
    db.maintain().unwrap();
    db.cut_head_now().unwrap();
    assert!(db.downsample_now(true).unwrap().is_empty());
    assert!(db.compact_levels().unwrap().is_empty());
    let now = db
        .blocks()
        .iter()
        .filter(|b| b.meta().resolution() > 0)
        .count();
    assert_eq!(now, levels);
    // The levels already written still answer.
    let t = T0 + 20 * H;
    let ds = range(&db, "gpu_util", SourceResolution::Max(RES_5M), t, t, H);
    let raw = range(&db, "gpu_util", SourceResolution::Raw, t, t, H);
    assert_ne!(ds, raw);
}

/// A database whose raw data is partly elsewhere: its blocks, and an
/// extra source read as raw data (query mode's remote stores).
struct WithExtra {
    db: Arc<Db>,
    extra: cairn_storage::MemStorage,
}

impl cairn_storage::Queryable for WithExtra {
    fn querier(
        &self,
        mint: i64,
        maxt: i64,
    ) -> cairn_storage::Result<Box<dyn cairn_storage::Querier + '_>> {
        self.db.querier_with_raw(mint, maxt, &self.extra)
    }
    fn downsampled(&self) -> bool {
        true
    }
}

#[test]
fn an_extra_raw_source_fills_what_the_levels_leave_as_local_raw_data_would() {
    let (_tmp, db) = build();
    // The blocks alone, and the last nine hours' raw samples in another
    // store: six hours that the blocks hold too (an ingester's copy of
    // what it uploaded), and the three that only the head held.
    let (_t2, blocks_only) = copy_blocks(&db, |_| true);
    let extra = cairn_storage::MemStorage::new();
    let mut series: BTreeMap<cairn_model::Labels, Vec<cairn_model::Sample>> = BTreeMap::new();
    let per_h = H / STEP;
    for k in (BLOCK_HOURS - 6) * per_h..(BLOCK_HOURS + 3) * per_h {
        for (l, t, v) in samples_at(k) {
            series
                .entry(l)
                .or_default()
                .push(cairn_model::Sample::new(t, v));
        }
    }
    for (l, s) in series {
        extra.add(l, s);
    }
    let view = WithExtra {
        db: blocks_only.clone(),
        extra,
    };
    let (start, end) = (T0 + 3 * H, T0 + (BLOCK_HOURS + 3) * H);
    for q in [
        "max_over_time(gpu_util[1h])",
        "sum_over_time(gpu_temp[2h])",
        "count_over_time(energy_total[1h])",
        "count_over_time(gpu_sparse[1h])",
        "rate(energy_total[4h])",
        "increase(steady_resets_total[4h])",
        "resets(energy_total[1h])",
        "gpu_util",
    ] {
        for res in [
            SourceResolution::Raw,
            SourceResolution::Max(RES_5M),
            SourceResolution::Max(RES_1H),
        ] {
            // The whole database (blocks and head) is the reference.
            let want = range(&db, q, res, start, end, H);
            let got = range_on(&view, q, res, start, end, H);
            assert_close(q, &format!("{res:?}"), &want, &got, 1e-9);
            // Without the extra source the head's hours are missing.
            if res == SourceResolution::Raw && q == "gpu_util" {
                let without = range(&blocks_only, q, res, start, end, H);
                assert_ne!(without, want);
            }
        }
    }
}

/// Copies block `b` into `dir` as a block of the writer with external
/// labels `w=<writer>` (a new ULID when `fresh`).
fn copy_as_writer(b: &cairn_tsdb::Block, dir: &std::path::Path, writer: &str, fresh: bool) {
    let ulid = if fresh {
        cairn_tsdb::Ulid::new().to_string()
    } else {
        b.ulid().to_string()
    };
    let to = dir.join(&ulid);
    copy_tree(b.dir(), &to);
    let p = to.join("meta.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    m["ulid"] = ulid.clone().into();
    let res = m["thanos"]["downsample"]["resolution"]
        .as_i64()
        .unwrap_or(0);
    m["thanos"] = serde_json::json!({
        "labels": {"w": writer},
        "downsample": {"resolution": res},
        "source": "test",
    });
    if fresh {
        m["compaction"]["sources"] = serde_json::json!([ulid]);
    }
    std::fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
}

#[test]
fn a_level_answers_only_where_every_writer_has_it() {
    let (_tmp, db) = build();
    // Writer a: every block, levels included. Writer b: the same raw
    // data under other external labels, not downsampled yet.
    let both = tempfile::tempdir().unwrap();
    let only_a = tempfile::tempdir().unwrap();
    for b in db.blocks() {
        copy_as_writer(&b, both.path(), "a", false);
        copy_as_writer(&b, only_a.path(), "a", false);
        if b.meta().resolution() == 0 {
            copy_as_writer(&b, both.path(), "b", true);
        }
    }
    let both = Db::open(both.path(), opts()).unwrap();
    let only_a = Db::open(only_a.path(), opts()).unwrap();
    let (start, end) = (T0 + 3 * H, T0 + BLOCK_HOURS * H - 1);
    for q in [
        "gpu_util",
        "max_over_time(gpu_util[1h])",
        "count_over_time(gpu_sparse[1h])",
    ] {
        let raw = range(&db, q, SourceResolution::Raw, start, end, H);
        let five = range(&db, q, SourceResolution::Max(RES_5M), start, end, H);
        // Writer a alone reads its levels.
        assert_eq!(
            range(&only_a, q, SourceResolution::Max(RES_5M), start, end, H),
            five
        );
        // With b lagging, both read raw data: b's series are all there,
        // and a's never mix aggregate points with b's raw samples.
        let got = range(&both, q, SourceResolution::Max(RES_5M), start, end, H);
        assert_close(q, "5m, b not downsampled", &raw, &got, 1e-9);
    }
    assert_ne!(
        range(
            &db,
            "gpu_util",
            SourceResolution::Max(RES_5M),
            start,
            end,
            H
        ),
        range(&db, "gpu_util", SourceResolution::Raw, start, end, H)
    );
}

#[test]
fn uploaded_copies_and_local_levels_of_one_database_are_one_writer() {
    let (_tmp, db) = build();
    let (start, end) = (T0 + 3 * H, T0 + BLOCK_HOURS * H - 1);
    let five = range(
        &db,
        "gpu_util",
        SourceResolution::Max(RES_5M),
        start,
        end,
        H,
    );
    // The raw blocks as their bucket copies carry them (the database's
    // external labels), the levels as written locally (no labels).
    let open = |own: bool| {
        let dir = tempfile::tempdir().unwrap();
        for b in db.blocks() {
            if b.meta().resolution() == 0 {
                copy_as_writer(&b, dir.path(), "a", false);
            } else {
                copy_tree(b.dir(), &dir.path().join(b.ulid().to_string()));
            }
        }
        let external_labels = if own {
            BTreeMap::from([("w".to_owned(), "a".to_owned())])
        } else {
            BTreeMap::new()
        };
        let d = Db::open(
            dir.path(),
            DbOptions {
                external_labels,
                ..opts()
            },
        )
        .unwrap();
        (dir, d)
    };
    let (_d1, mine) = open(true);
    assert_eq!(
        range(
            &mine,
            "gpu_util",
            SourceResolution::Max(RES_5M),
            start,
            end,
            H
        ),
        five
    );
    // Not knowing its labels, the copies look like another writer's that
    // lacks the level: raw data answers.
    let (_d2, stranger) = open(false);
    assert_ne!(
        range(
            &stranger,
            "gpu_util",
            SourceResolution::Max(RES_5M),
            start,
            end,
            H
        ),
        five
    );
}
