//! kill -9 at a random moment loses no acknowledged record.
//!
//! The parent test re-executes this test binary, running only
//! `crash_child`, which logs records and prints `ACK <id>` after each
//! `Wal::log` returns. The parent SIGKILLs it after a random number of
//! acknowledgements, reads whatever acknowledgements reached the pipe, and
//! checks that replay returns every acknowledged record intact. Each round
//! reopens the same directory, so the torn tail a kill leaves behind is
//! repaired by the next child's `Wal::open`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use cairn_model::Labels;
use cairn_wal::fragment::PAGE_SIZE;
use cairn_wal::record::encode_to_vec;
use cairn_wal::{replay, FsyncPolicy, Record, RefSample, RefSeries, Wal, WalOptions};

const DIR_ENV: &str = "CAIRN_WAL_CRASH_DIR";
const START_ENV: &str = "CAIRN_WAL_CRASH_START";
const POLICY_ENV: &str = "CAIRN_WAL_CRASH_FSYNC";
const ROUNDS: u64 = 4;

fn expected_series(id: u64) -> RefSeries {
    RefSeries {
        r: id,
        labels: Labels::from_pairs([("__name__", "crash"), ("id", &id.to_string())]),
    }
}

fn expected_samples(id: u64) -> Vec<RefSample> {
    // Every tenth record spans several pages.
    let n = if id.is_multiple_of(10) {
        7000
    } else {
        1 + (id * 7919) % 600
    };
    (0..n)
        .map(|j| RefSample {
            r: id,
            t: (id * 100_000 + j) as i64,
            v: (id as f64) * 0.5 + j as f64,
        })
        .collect()
}

fn options(policy: &str) -> WalOptions {
    WalOptions {
        segment_size: 4 * PAGE_SIZE,
        fsync: if policy == "always" {
            FsyncPolicy::Always
        } else {
            FsyncPolicy::Never
        },
        compress: true,
    }
}

/// The child: only does anything when started by the parent.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let start: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
    let policy = std::env::var(POLICY_ENV).unwrap();
    let wal = Wal::open(Path::new(&dir), options(&policy)).unwrap();
    let mut out = std::io::stdout().lock();
    // Bounded in case the parent never kills us; it always does far sooner.
    for id in start..start + 200_000 {
        let s = encode_to_vec(&Record::Series(vec![expected_series(id)]));
        let m = encode_to_vec(&Record::Samples(expected_samples(id)));
        wal.log(&[&s, &m]).unwrap();
        writeln!(out, "ACK {id}").unwrap();
        out.flush().unwrap();
    }
}

fn next_rand(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn kill_9_loses_no_acknowledged_record() {
    let tmp = tempfile::tempdir().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed {seed}");
    let exe = std::env::current_exe().unwrap();
    let mut acked: Vec<u64> = Vec::new();
    for round in 0..ROUNDS {
        let policy = if round % 2 == 0 { "never" } else { "always" };
        let kill_after = 5 + next_rand(&mut seed) % 300;
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env(DIR_ENV, tmp.path())
            .env(START_ENV, (round * 1_000_000).to_string())
            .env(POLICY_ENV, policy)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = 0;
        let mut killed = false;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            let Some(id) = line.strip_prefix("ACK ") else {
                continue;
            };
            acked.push(id.parse().unwrap());
            seen += 1;
            if seen == kill_after && !killed {
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
        }
        let status = child.wait().unwrap();
        assert!(killed, "child exited on its own: {status:?}");
        eprintln!("round {round} ({policy}): killed after {seen} acknowledgements");
        check(tmp.path(), &acked);
    }
}

fn check(dir: &Path, acked: &[u64]) {
    let mut series = BTreeMap::new();
    let mut samples: BTreeMap<u64, Vec<RefSample>> = BTreeMap::new();
    replay(dir, |rec| {
        match rec {
            Record::Series(v) => {
                for s in v {
                    series.insert(s.r, s);
                }
            }
            Record::Samples(v) => {
                if let Some(f) = v.first() {
                    samples.insert(f.r, v);
                }
            }
            other => panic!("unexpected record {other:?}"),
        }
        Ok(())
    })
    .unwrap();
    for &id in acked {
        assert!(
            series.get(&id) == Some(&expected_series(id)),
            "acknowledged series {id} missing or damaged"
        );
        assert!(
            samples.get(&id) == Some(&expected_samples(id)),
            "acknowledged samples of {id} missing or damaged"
        );
    }
}
