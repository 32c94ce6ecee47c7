//! Series churn: pods come and go, and the head's memory stays flat over a
//! day of simulated time, because series that stop receiving samples leave
//! at the next truncation with their chunks, spill slots and index entries.

mod support;

use cairn_model::{labels, Labels};
use cairn_storage::Appendable;
use support::*;

const HOUR: i64 = 3_600_000;
const ACTIVE: usize = 600;
/// A tenth of the series are replaced every hour.
const REPLACED_PER_HOUR: usize = ACTIVE / 10;
const SCRAPE: i64 = 60_000;

fn pod(id: usize) -> Labels {
    labels!(
        "__name__" => "container_cpu_usage_seconds_total",
        "namespace" => "train",
        "pod" => &format!("job-{id}"),
        "node" => &format!("node-{}", id % 50),
    )
}

/// A day of 1-minute scrapes of `ACTIVE` pods with a tenth replaced every
/// hour, truncated as the database does (once the head spans 1.5 chunk
/// ranges, the oldest range leaves); the head's memory after each
/// truncation of the second half of the day stays within a fifth of the
/// first one's, and the series held stay bounded.
#[test]
fn memory_stays_flat_over_a_day_of_churn() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let range = opts().chunk_range;
    // Pods alive now: ids [first, first + ACTIVE).
    let mut first = 0usize;
    let mut truncated_to = 0i64;
    let mut after_truncation = Vec::new();
    let mut t = 0i64;
    while t < 24 * HOUR {
        if t > 0 && t % HOUR == 0 {
            first += REPLACED_PER_HOUR;
        }
        let mut app = h.appender();
        for id in first..first + ACTIVE {
            app.append(0, &pod(id), t, (t / SCRAPE) as f64 * 1.5 + id as f64)
                .unwrap();
        }
        app.commit().unwrap();
        t += SCRAPE;
        if h.max_time() - truncated_to >= range * 3 / 2 {
            truncated_to += range;
            h.truncate(truncated_to).unwrap();
            let m = h.memory();
            after_truncation.push((t, m.series, m.total(), m.spill_slot_bytes));
        }
    }
    assert!(after_truncation.len() >= 10, "{after_truncation:?}");
    let (_, _, base, base_slots) = after_truncation[after_truncation.len() / 2];
    for &(at, series, total, slots) in &after_truncation[after_truncation.len() / 2..] {
        // Active pods plus those replaced within the 2-3 h the head spans.
        assert!(
            series <= (ACTIVE + 3 * REPLACED_PER_HOUR) as u64,
            "{series} series at {at}"
        );
        assert!(
            total * 5 <= base * 6 && slots * 5 <= base_slots * 6,
            "memory grew with churn: {after_truncation:?}"
        );
    }
    // A day of churn created far more series than the head holds.
    assert!(first + ACTIVE > 3 * ACTIVE);
}
