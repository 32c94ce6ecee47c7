//! Series limits: new series beyond them are refused with a named error,
//! existing series keep taking samples, and room comes back when
//! truncation removes series. A restart with a lower limit keeps every
//! series the WAL holds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_head::HeadOptions;
use cairn_model::Labels;
use cairn_storage::{Appendable, StorageError};
use support::*;

fn s(name: &str, i: usize) -> Labels {
    Labels::from_pairs([("__name__", name.to_owned()), ("i", i.to_string())])
}

#[test]
fn series_limits_refuse_new_series_only() {
    let dir = tempfile::tempdir().unwrap();
    let o = HeadOptions {
        max_series: 5,
        max_series_per_metric: 3,
        ..opts()
    };
    let h = open(dir.path(), o.clone());
    let mut app = h.appender();
    for i in 0..3 {
        app.append(0, &s("a", i), 1000, 1.0).unwrap();
    }
    // A fourth of metric a: over its own limit.
    match app.append(0, &s("a", 3), 1000, 1.0) {
        Err(StorageError::MetricSeriesLimit { metric, limit }) => {
            assert_eq!((metric.as_str(), limit), ("a", 3));
        }
        other => panic!("{other:?}"),
    }
    app.append(0, &s("b", 0), 1000, 1.0).unwrap();
    app.append(0, &s("b", 1), 1000, 1.0).unwrap();
    // Five series: the head's limit.
    assert!(matches!(
        app.append(0, &s("c", 0), 1000, 1.0),
        Err(StorageError::SeriesLimit { limit: 5 })
    ));
    // Existing series still take samples, by ref or by labels.
    app.append(0, &s("a", 0), 2000, 2.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    app.append(0, &s("b", 1), 3000, 3.0).unwrap();
    assert!(app.append(0, &s("c", 0), 3000, 1.0).is_err());
    app.commit().unwrap();
    assert_eq!(h.stats().num_series, 5);

    // Truncation removes the series without newer samples: room again.
    let mut app = h.appender();
    app.append(0, &s("b", 1), 7_300_000, 4.0).unwrap();
    app.commit().unwrap();
    h.truncate(7_200_000).unwrap();
    assert_eq!(h.stats().num_series, 1);
    let mut app = h.appender();
    app.append(0, &s("c", 0), 7_300_000, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(h.stats().num_series, 2);
}

#[test]
fn a_restart_with_a_lower_limit_keeps_what_the_wal_holds() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let mut app = h.appender();
    for i in 0..4 {
        app.append(0, &s("a", i), 1000, 1.0).unwrap();
    }
    app.commit().unwrap();
    drop(h);
    let h = open(
        dir.path(),
        HeadOptions {
            max_series: 2,
            ..opts()
        },
    );
    assert_eq!(h.stats().num_series, 4);
    let mut app = h.appender();
    app.append(0, &s("a", 3), 2000, 2.0).unwrap();
    assert!(matches!(
        app.append(0, &s("a", 9), 2000, 2.0),
        Err(StorageError::SeriesLimit { limit: 2 })
    ));
    app.commit().unwrap();
}
