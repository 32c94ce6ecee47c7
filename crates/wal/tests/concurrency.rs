//! Many threads logging at once: every record lands whole, each thread's
//! records stay in its own order, under both fsync policies.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::sync::Arc;

use cairn_wal::fragment::PAGE_SIZE;
use cairn_wal::{replay_raw, FsyncPolicy, Wal, WalOptions};

const THREADS: u64 = 8;

fn rec(thread: u64, i: u64) -> Vec<u8> {
    // Sizes vary so some records span pages and force rollovers.
    let len = 16 + ((thread * 7919 + i * 104_729) % 9000) as usize;
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(&thread.to_be_bytes());
    b.extend_from_slice(&i.to_be_bytes());
    b.extend((16..len).map(|j| (j as u64 ^ thread ^ i) as u8));
    b
}

fn run(policy: FsyncPolicy, per_thread: u64) {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_size: 4 * PAGE_SIZE,
        fsync: policy,
        compress: true,
    };
    let wal = Arc::new(Wal::open(dir.path(), opts).unwrap());
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    let r = rec(t, i);
                    if i % 3 == 0 {
                        let r2 = rec(t, i + 1_000_000);
                        wal.log(&[&r, &r2]).unwrap();
                    } else {
                        wal.log(&[&r]).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let logs = THREADS * per_thread;
    match policy {
        // Never more fsyncs than log calls; shared ones make it fewer.
        FsyncPolicy::Always => assert!((1..=logs).contains(&wal.fsync_count())),
        FsyncPolicy::Never => assert_eq!(wal.fsync_count(), 0),
    }
    drop(wal);

    let mut next = vec![0u64; THREADS as usize];
    let mut total = 0;
    replay_raw(dir.path(), |b| {
        let t = u64::from_be_bytes(b[..8].try_into().unwrap());
        let i = u64::from_be_bytes(b[8..16].try_into().unwrap());
        assert_eq!(b, rec(t, i).as_slice(), "record {t}/{i} damaged");
        if i >= 1_000_000 {
            assert_eq!(i - 1_000_000, next[t as usize] - 1, "pair split");
        } else {
            assert_eq!(i, next[t as usize], "thread {t} out of order");
            next[t as usize] += 1;
        }
        total += 1;
        Ok(())
    })
    .unwrap();
    assert!(next.iter().all(|&n| n == per_thread), "{next:?}");
    assert_eq!(
        total,
        THREADS * per_thread + THREADS * per_thread.div_ceil(3)
    );
}

#[test]
fn concurrent_logging_without_fsync() {
    run(FsyncPolicy::Never, 400);
}

#[test]
fn concurrent_logging_with_group_commit_fsync() {
    run(FsyncPolicy::Always, 100);
}
