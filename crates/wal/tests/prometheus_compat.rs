//! A WAL written by real Prometheus (2.42, snappy-compressed records) replays
//! to exactly the samples `promtool tsdb dump` reports for it.
//!
//! Needs `promtool`; fails (does not skip) when it is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use cairn_wal::{replay, Record};

fn fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/wal/prometheus-2.42")
}

/// (labels as Prometheus prints them, timestamp, value bits with every NaN
/// folded to one pattern since promtool prints them all as `NaN`).
type Row = (String, i64, u64);

fn norm(v: f64) -> u64 {
    if v.is_nan() {
        f64::NAN.to_bits()
    } else {
        v.to_bits()
    }
}

fn promtool_rows(data_dir: &Path) -> Vec<Row> {
    let out = Command::new("promtool")
        .args(["tsdb", "dump"])
        .arg(data_dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool not runnable ({e}); run scripts/install-deps.sh to install it")
        });
    assert!(
        out.status.success(),
        "promtool failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines()
        .map(|l| {
            let (rest, ts) = l.rsplit_once(' ').unwrap();
            let (labels, v) = rest.rsplit_once(' ').unwrap();
            let v: f64 = match v {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => other.parse().unwrap(),
            };
            (labels.to_string(), ts.parse().unwrap(), norm(v))
        })
        .collect()
}

#[test]
fn prometheus_written_wal_matches_promtool_dump() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("wal")).unwrap();
    std::fs::copy(
        fixture().join("wal/00000000"),
        tmp.path().join("wal/00000000"),
    )
    .unwrap();

    let mut labels = HashMap::new();
    let mut rows: Vec<Row> = Vec::new();
    let mut samples = Vec::new();
    let stats = replay(&fixture().join("wal"), |rec| {
        match rec {
            Record::Series(v) => {
                for s in v {
                    labels.insert(s.r, s.labels.to_string());
                }
            }
            Record::Samples(v) => samples.extend(v),
            _ => {}
        }
        Ok(())
    })
    .unwrap();
    for s in samples {
        rows.push((labels[&s.r].clone(), s.t, norm(s.v)));
    }
    assert!(stats.series > 100, "{stats:?}");
    assert_eq!(stats.torn_tail, None);

    let mut want = promtool_rows(tmp.path());
    assert!(!want.is_empty());
    rows.sort();
    want.sort();
    assert_eq!(rows.len(), want.len());
    assert_eq!(rows, want);
}

#[test]
fn promtool_reads_a_cairn_written_wal() {
    // Compressed (the default, as in Prometheus) and not.
    let (compressed, c_segs) = promtool_reads_a_cairn_written_wal_with(true);
    let (plain, p_segs) = promtool_reads_a_cairn_written_wal_with(false);
    assert!(c_segs > 1 && p_segs > 2, "{c_segs} {p_segs}");
    assert!(compressed < plain * 3 / 4, "{compressed} vs {plain} bytes");
}

/// Writes a WAL, has promtool dump it, compares; returns the WAL's bytes
/// and entries.
fn promtool_reads_a_cairn_written_wal_with(compress: bool) -> (u64, usize) {
    use cairn_model::Labels;
    use cairn_wal::fragment::PAGE_SIZE;
    use cairn_wal::record::encode_to_vec;
    use cairn_wal::{RefSample, RefSeries, Wal, WalOptions};

    let tmp = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 2 * PAGE_SIZE,
        compress,
        ..WalOptions::default()
    };
    let wal = Wal::open(&tmp.path().join("wal"), opts).unwrap();
    let series: Vec<RefSeries> = (1..=300u64)
        .map(|r| RefSeries {
            r,
            labels: Labels::from_pairs([
                ("__name__", "dcgm_gpu_temp"),
                ("gpu", &(r % 8).to_string()),
                ("host", &format!("node-{:04}", r / 8)),
            ]),
        })
        .collect();
    wal.log(&[&encode_to_vec(&Record::Series(series.clone()))])
        .unwrap();
    let mut want = Vec::new();
    for step in 0..60i64 {
        let t = 1_700_000_000_000 + step * 15_000;
        let batch: Vec<RefSample> = series
            .iter()
            .map(|s| RefSample {
                r: s.r,
                t,
                v: (s.r as f64) / 7.0 + step as f64,
            })
            .collect();
        for s in &batch {
            want.push((
                series[(s.r - 1) as usize].labels.to_string(),
                s.t,
                norm(s.v),
            ));
        }
        wal.log(&[&encode_to_vec(&Record::Samples(batch))]).unwrap();
    }
    drop(wal);
    let entries: Vec<_> = std::fs::read_dir(tmp.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    // Written bytes: the last page of each closed segment is padded.
    let used: u64 = std::fs::read_dir(tmp.path().join("wal"))
        .unwrap()
        .map(|e| {
            let b = std::fs::read(e.unwrap().path()).unwrap();
            b.iter().rposition(|&x| x != 0).map_or(0, |i| i as u64 + 1)
        })
        .sum();
    let mut got = promtool_rows(tmp.path());
    got.sort();
    want.sort();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    (used, entries.len())
}
