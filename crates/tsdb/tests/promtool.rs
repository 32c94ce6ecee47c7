//! Interoperability with the real promtool: blocks written by Cairn are read
//! by promtool and vice versa, with identical samples.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod common;

use std::fmt::Write as _;
use std::path::Path;

use cairn_model::Labels;
use cairn_storage::Appendable;
use cairn_tsdb::cli::{
    analyze, create_blocks_from_openmetrics, dump, format_go_g, DEFAULT_BLOCK_DURATION,
};
use cairn_tsdb::{Block, Db, DbEvent, DbOptions};
use common::*;

const T0_S: i64 = 1_700_000_000; // seconds

/// An OpenMetrics text with fractional-second timestamps spanning ~5 windows.
fn om_text(data: &[(Labels, Vec<(i64, f64)>)]) -> String {
    let mut s = String::new();
    let mut by_name = std::collections::BTreeMap::<String, Vec<_>>::new();
    for d in data {
        by_name
            .entry(d.0.metric_name().unwrap().to_owned())
            .or_default()
            .push(d);
    }
    for (name, series) in by_name {
        writeln!(s, "# HELP {name} Test metric.").unwrap();
        writeln!(s, "# TYPE {name} gauge").unwrap();
        for (l, samples) in series {
            let inst = l.get("inst").unwrap();
            for (t, v) in samples {
                let v = if v.is_nan() {
                    "NaN".to_string()
                } else {
                    format!("{v:?}")
                };
                writeln!(
                    s,
                    "{name}{{inst=\"{inst}\"}} {v} {}.{:03}",
                    t / 1000,
                    t % 1000
                )
                .unwrap();
            }
        }
    }
    s.push_str("# EOF\n");
    s
}

/// The dump lines we expect for `data`, sorted as promtool prints them.
fn expected_dump(data: &[(Labels, Vec<(i64, f64)>)]) -> String {
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

fn cairn_dump(dir: &Path) -> String {
    let mut out = Vec::new();
    dump(dir, i64::MIN, i64::MAX, &[], None, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn cairn_backfilled_blocks_pass_promtool_analyze_and_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let from = T0_S * 1000 + 123;
    let data = gen_samples(12, from, from + 9 * 3_600_000, 29_500);
    let input = tmp.path().join("in.om");
    std::fs::write(&input, om_text(&data)).unwrap();
    let out = tmp.path().join("data");
    let ids = create_blocks_from_openmetrics(&input, &out, DEFAULT_BLOCK_DURATION).unwrap();
    assert!(
        ids.len() >= 5,
        "9h of data spans at least five aligned 2h windows, got {}",
        ids.len()
    );
    for id in &ids {
        let m = Block::open(&out.join(id.to_string())).unwrap().meta();
        assert_eq!(
            m.min_time.div_euclid(DEFAULT_BLOCK_DURATION),
            (m.max_time - 1).div_euclid(DEFAULT_BLOCK_DURATION),
            "block inside one aligned window"
        );
        let a = run_promtool(&["tsdb", "analyze", out.to_str().unwrap(), &id.to_string()]);
        assert!(a.contains(&format!("Block ID: {id}")), "{a}");
    }
    // promtool's own listing agrees on the sample count.
    let list = run_promtool(&["tsdb", "list", out.to_str().unwrap()]);
    let total: u64 = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(4).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        total as usize,
        data.iter().map(|d| d.1.len()).sum::<usize>()
    );
    let want = expected_dump(&data);
    assert_eq!(promtool_dump(&out), want);
    assert_eq!(cairn_dump(&out), want);
    let mut rep = Vec::new();
    let a = analyze(&out, Some(ids[1]), &mut rep).unwrap();
    assert_eq!(a.series, 12);
    assert!(
        a.bytes_per_sample > 0.1 && a.bytes_per_sample < 16.0,
        "{}",
        a.bytes_per_sample
    );
}

#[test]
fn promtool_backfilled_blocks_read_identically_by_cairn() {
    let tmp = tempfile::tempdir().unwrap();
    let from = T0_S * 1000 + 7;
    let data = gen_samples(9, from, from + 5 * 3_600_000, 61_000);
    let input = tmp.path().join("in.om");
    std::fs::write(&input, om_text(&data)).unwrap();
    let out = tmp.path().join("data");
    run_promtool(&[
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    let theirs = promtool_dump(&out);
    assert_eq!(theirs, expected_dump(&data));
    assert_eq!(cairn_dump(&out), theirs);
    // And through the Db handle, sample for sample.
    let db = Db::open(
        &out,
        DbOptions {
            maintenance_interval: None,
            retention_time: 0,
            ..DbOptions::default()
        },
    )
    .unwrap();
    let got = all_samples(&*db, i64::MIN, i64::MAX);
    assert_eq!(got.len(), data.iter().map(|d| d.1.len()).sum::<usize>());
}

#[test]
fn live_appends_cut_and_compacted_dump_identically_in_promtool() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let db = Db::open(
        &dir,
        DbOptions {
            maintenance_interval: None,
            retention_time: 0,
            // promtool reads XOR only: compacted blocks are dense by default.
            chunk_encoding: cairn_tsdb::FloatEncoding::Xor,
            ..DbOptions::default()
        },
    )
    .unwrap();
    let events = db.subscribe();
    let h = 3_600_000;
    let base = 1_700_002_800_000; // aligned to 2h
    let data = gen_samples(8, base, base + 9 * h, 30_000);
    // Append in time order, as scrapes would, running maintenance each hour.
    let mut next_maint = base + h;
    let steps = data[0].1.len();
    for i in 0..steps {
        let mut app = db.appender();
        for (l, s) in &data {
            let (t, v) = s[i];
            app.append(0, l, t, v).unwrap();
        }
        app.commit().unwrap();
        let t = data[0].1[i].0;
        if t >= next_maint {
            db.maintain().unwrap();
            next_maint += h;
        }
    }
    let cut: Vec<_> = events.try_iter().collect();
    let cuts = cut
        .iter()
        .filter(|e| matches!(e, DbEvent::BlockCut { .. }))
        .count();
    let compactions = cut
        .iter()
        .filter(|e| matches!(e, DbEvent::Compacted { .. }))
        .count();
    assert!(cuts >= 3, "{cut:?}");
    assert!(
        compactions >= 1,
        "three 2h blocks plus a newer one make a 6h block: {cut:?}"
    );
    assert!(db.blocks().iter().any(|b| b.meta().compaction.level == 2));
    // Persist the rest and compare every sample with promtool's view.
    db.cut_head_now().unwrap();
    assert_eq!(all_samples(&*db, i64::MIN, i64::MAX).len(), 8 * steps);
    db.close();
    drop(db);
    let want = expected_dump(&data);
    assert_eq!(promtool_dump(&dir), want);
    assert_eq!(cairn_dump(&dir), want);
}
