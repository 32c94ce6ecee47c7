//! Rough append throughput of the WAL under both fsync policies.
//! Run: cargo run --release -p cairn-wal --example wal_bench [dir]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::sync::Arc;
use std::time::Instant;

use cairn_wal::{FsyncPolicy, Wal, WalOptions};

fn run(dir: &std::path::Path, fsync: FsyncPolicy, threads: usize, per_thread: usize, size: usize) {
    let _ = std::fs::remove_dir_all(dir);
    let wal = Arc::new(
        Wal::open(
            dir,
            WalOptions {
                fsync,
                ..WalOptions::default()
            },
        )
        .expect("open"),
    );
    let rec = vec![0x5au8; size];
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let wal = Arc::clone(&wal);
            let rec = &rec;
            s.spawn(move || {
                for _ in 0..per_thread {
                    wal.log(&[rec]).expect("log");
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let n = (threads * per_thread) as f64;
    println!(
        "{fsync:?} threads={threads} record={size}B: {:.0} logs/s, {:.1} MB/s, {:.1} us/log, {} fsyncs",
        n / secs,
        n * size as f64 / secs / 1e6,
        secs * 1e6 / n * threads as f64,
        wal.fsync_count()
    );
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("cairn-wal-bench"));
    run(&base, FsyncPolicy::Never, 1, 200_000, 1024);
    run(&base, FsyncPolicy::Never, 4, 50_000, 1024);
    run(&base, FsyncPolicy::Never, 1, 2_000, 100_000);
    run(&base, FsyncPolicy::Always, 1, 2_000, 1024);
    run(&base, FsyncPolicy::Always, 8, 500, 1024);
    let _ = std::fs::remove_dir_all(&base);
}
