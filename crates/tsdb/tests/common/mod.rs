//! Helpers shared by the integration tests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_model::Labels;
use cairn_storage::{Queryable, SelectHints, ValueType};

/// The real promtool; tests that need it fail (not skip) without it.
pub fn promtool() -> PathBuf {
    let p = PathBuf::from(std::env::var("PROMTOOL").unwrap_or_else(|_| "/usr/bin/promtool".into()));
    assert!(
        p.exists(),
        "promtool not found at {}: run scripts/install-deps.sh",
        p.display()
    );
    p
}

/// Runs promtool with `args`, asserting success; returns stdout.
pub fn run_promtool(args: &[&str]) -> String {
    let out = Command::new(promtool())
        .args(args)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `promtool tsdb dump dir` (it needs a wal/ directory to exist).
pub fn promtool_dump(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("wal")).unwrap();
    run_promtool(&["tsdb", "dump", dir.to_str().unwrap()])
}

/// Every (labels, t, v-bits) a queryable holds in [mint, maxt].
pub fn all_samples(q: &dyn Queryable, mint: i64, maxt: i64) -> Vec<(Labels, i64, u64)> {
    let q = q.querier(mint, maxt).unwrap();
    let m = cairn_model::Matcher::new(cairn_model::MatchType::Regex, "__name__", ".*").unwrap();
    let mut out = vec![];
    for s in q.select(&SelectHints::default(), &[m]).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        let mut stepped = vec![];
        while it.next() == ValueType::Float {
            let (t, v) = it.at();
            stepped.push((t, v.to_bits()));
        }
        assert!(it.err().is_none(), "{:?}", it.err());
        // Bulk reads, whole and in pieces, give the same samples.
        for piece in [i64::MAX, 1, 999, 7_777] {
            let mut it = s.iter();
            let mut got = vec![];
            let mut vt = it.next();
            let mut upto = stepped.first().map_or(0, |x| x.0);
            while vt == ValueType::Float {
                let from = got.len();
                vt = it.read_floats(upto, &mut got);
                assert!(got[from..].iter().all(|x| x.t <= upto), "read past {upto}");
                assert!(
                    vt != ValueType::Float || it.at().0 > upto,
                    "stopped early at {upto}"
                );
                upto = upto.saturating_add(piece);
            }
            assert!(it.err().is_none(), "{:?}", it.err());
            let got: Vec<(i64, u64)> = got.iter().map(|x| (x.t, x.v.to_bits())).collect();
            assert!(
                got == stepped,
                "bulk read in pieces of {piece} differs for {}",
                s.labels()
            );
        }
        out.extend(stepped.into_iter().map(|(t, v)| (s.labels().clone(), t, v)));
    }
    out
}

/// Every (labels, t, v-bits) a queryable holds in [mint, maxt], stepped
/// through once and sorted: [`all_samples`] without its bulk-read checks,
/// whose 1 ms pieces take seconds over hours of data.
pub fn stepped_samples(q: &dyn Queryable, mint: i64, maxt: i64) -> Vec<(Labels, i64, u64)> {
    let q = q.querier(mint, maxt).unwrap();
    let m = cairn_model::Matcher::new(cairn_model::MatchType::Regex, "__name__", ".+").unwrap();
    let mut v = Vec::new();
    for s in q.select(&SelectHints::default(), &[m]).unwrap() {
        let s = s.unwrap();
        let mut it = s.iter();
        while it.next() == ValueType::Float {
            let (t, x) = it.at();
            v.push((s.labels().clone(), t, x.to_bits()));
        }
        assert!(it.err().is_none(), "{:?}", it.err());
    }
    v.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    v
}

/// Test data: label set and (t, v) samples per series.
pub type Data = Vec<(Labels, Vec<(i64, f64)>)>;

/// Deterministic test data: `n` series, samples every `step` ms over [from, to).
pub fn gen_samples(n: usize, from: i64, to: i64, step: i64) -> Data {
    (0..n)
        .map(|i| {
            let l = Labels::from_pairs([
                ("__name__", format!("m{}", i % 3)),
                ("inst", format!("i{i:03}")),
            ]);
            let mut x: u64 = 0x9E37_79B9 ^ i as u64;
            let s = (from..to)
                .step_by(step as usize)
                .map(|t| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let v = match i % 4 {
                        0 => (t / 1000) as f64,
                        1 => (x >> 40) as f64 / 7.0,
                        2 => {
                            if x.is_multiple_of(10) {
                                f64::NAN
                            } else {
                                (x % 1000) as f64 * 1e-9
                            }
                        }
                        _ => 1e6 + (x % 100) as f64,
                    };
                    (t, v)
                })
                .collect();
            (l, s)
        })
        .collect()
}

/// Copies the directory `src` into `dst` (created), recursively.
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}
