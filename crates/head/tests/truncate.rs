//! Truncation drops old chunks and empty series and bounds later appends.

mod support;

use cairn_model::labels;
use cairn_storage::{Appendable, StorageError};
use support::*;

#[test]
fn truncate_drops_old_chunks_and_series() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = opts();
    o.chunk_range = 1000;
    let h = open(dir.path(), o);
    let old = labels!("__name__" => "old");
    let live = labels!("__name__" => "live");
    let mut app = h.appender();
    for t in 0..3000 {
        if t < 1000 {
            app.append(0, &old, t, 1.0).unwrap();
        }
        app.append(0, &live, t, 2.0).unwrap();
    }
    app.commit().unwrap();
    assert_eq!(h.stats().num_series, 2);
    let chunks_before = h.stats().num_chunks;
    h.truncate(2000).unwrap();
    let st = h.stats();
    assert_eq!(st.num_series, 1);
    assert!(st.num_chunks < chunks_before);
    assert!(st.min_time >= 2000 && st.max_time == 2999, "{st:?}");
    let got = dump(&h, i64::MIN, i64::MAX, &all());
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, live);
    // Chunks are cut at range boundaries, so truncating at one drops exactly the older samples.
    assert_eq!(got[0].1.first().unwrap().0, 2000);
    assert_eq!(got[0].1.len(), 1000);
    assert_eq!(h.index().names(), vec!["__name__"]);
    assert_eq!(h.index().values("__name__"), vec!["live"]);

    let mut app = h.appender();
    assert!(matches!(
        app.append(0, &old, 1999, 1.0),
        Err(StorageError::OutOfBounds { .. })
    ));
    app.append(0, &old, 3000, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(h.stats().num_series, 2);

    h.truncate(10_000).unwrap();
    let st = h.stats();
    assert_eq!(
        (st.num_series, st.num_chunks, st.min_time, st.max_time),
        (0, 0, i64::MAX, i64::MIN)
    );
}

#[test]
fn truncate_keeps_series_with_staged_samples() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let l = labels!("__name__" => "x");
    let mut app = h.appender();
    app.append(0, &l, 5000, 1.0).unwrap();
    h.truncate(10).unwrap();
    app.commit().unwrap();
    assert_eq!(dump(&h, 0, 10_000, &all()), vec![(l, vec![(5000, 1.0)])]);
}
