//! A selection asked for again, after series came and went, is still
//! every matching series with samples in range, sorted by labels (the head
//! keeps the label order of recent large selections for the next query).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_model::{Labels, MatchType, Matcher};
use cairn_storage::Appendable;
use support::*;

fn gpu(host: usize, gpu: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", "DCGM_FI_DEV_GPU_UTIL".to_string()),
        ("Hostname", format!("node-{host:03}")),
        ("gpu", gpu.to_string()),
    ])
}

fn names(h: &cairn_head::Head, mint: i64, maxt: i64) -> Vec<Labels> {
    let m = vec![Matcher::new(MatchType::Equal, "__name__", "DCGM_FI_DEV_GPU_UTIL").unwrap()];
    dump(h, mint, maxt, &m)
        .into_iter()
        .map(|(l, _)| l)
        .collect()
}

fn sorted(mut v: Vec<Labels>) -> Vec<Labels> {
    v.sort();
    v
}

#[test]
fn repeated_selections_follow_series_that_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.chunk_range = 1000;
    let h = open(dir.path(), o);
    // Hosts created out of label order (odd ones first), 8 GPUs each:
    // 640 series, more than one thread's share of a check.
    let mut app = h.appender();
    let order: Vec<usize> = (0..80)
        .filter(|x| x % 2 == 1)
        .chain((0..80).step_by(2))
        .collect();
    let mut expect = Vec::new();
    for &host in &order {
        for g in (0..8).rev() {
            app.append(0, &gpu(host, g), 100, 1.0).unwrap();
            expect.push(gpu(host, g));
        }
    }
    app.commit().unwrap();
    let expect = sorted(expect);
    assert_eq!(names(&h, 0, 5000), expect);
    // Asked again: the same answer.
    assert_eq!(names(&h, 0, 5000), expect);

    // New series that sort between the old ones, and old ones that get no
    // newer samples.
    let mut app = h.appender();
    let mut later = Vec::new();
    for host in 0..80 {
        if host % 3 == 0 {
            continue;
        }
        app.append(0, &gpu(host, 3), 1500, 2.0).unwrap();
        later.push(gpu(host, 3));
        app.append(0, &gpu(host, 100 + host), 1500, 2.0).unwrap();
        later.push(gpu(host, 100 + host));
    }
    app.commit().unwrap();
    let mut all = expect.clone();
    all.extend(later.iter().filter(|l| !expect.contains(l)).cloned());
    let all = sorted(all);
    assert_eq!(names(&h, 0, 5000), all);
    assert_eq!(names(&h, 0, 5000), all);
    // Only the series with samples in a later range, in label order, on
    // the order found for the whole set.
    assert_eq!(names(&h, 1200, 5000), sorted(later.clone()));

    // Truncation removes the series without newer samples.
    h.truncate(1000).unwrap();
    assert_eq!(names(&h, 0, 5000), sorted(later.clone()));
    assert_eq!(names(&h, 0, 5000), sorted(later));
}
