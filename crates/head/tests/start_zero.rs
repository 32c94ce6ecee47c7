//! Start (created) timestamps ingested as zero samples: only in order,
//! never out of order whatever the window, duplicates skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_head::HeadOptions;
use cairn_model::labels;
use cairn_storage::{Appendable, StorageError};
use support::*;

#[test]
fn start_zero_lands_only_in_order() {
    for ooo_window in [0, 3_600_000] {
        let dir = tempfile::tempdir().unwrap();
        let h = open(
            dir.path(),
            HeadOptions {
                ooo_window,
                ..opts()
            },
        );
        let l = labels!("__name__" => "requests_total");
        let mut app = h.appender();
        // A new series: the zero at its start, then the sample.
        let r = app.append_start_zero(0, &l, 10_000, 5_000).unwrap();
        app.append(r, &l, 10_000, 3.0).unwrap();
        // The next sample with the same start: not after the newest
        // sample (staged in this appender), so skipped as out of order.
        assert!(matches!(
            app.append_start_zero(r, &l, 20_000, 5_000),
            Err(StorageError::OutOfOrderStart { st: 5_000 })
        ));
        app.append(r, &l, 20_000, 4.0).unwrap();
        app.commit().unwrap();
        let mut app = h.appender();
        // Against what is committed: still out of order, even inside the
        // out-of-order window.
        assert!(matches!(
            app.append_start_zero(r, &l, 30_000, 5_000),
            Err(StorageError::OutOfOrderStart { st: 5_000 })
        ));
        // Not before its sample.
        assert!(matches!(
            app.append_start_zero(r, &l, 30_000, 30_000),
            Err(StorageError::StartTimestampNotBefore { .. })
        ));
        // A reset: a new start after the newest sample.
        app.append_start_zero(r, &l, 40_000, 25_000).unwrap();
        app.append(r, &l, 40_000, 1.0).unwrap();
        app.commit().unwrap();
        let got = dump(&h, i64::MIN, i64::MAX, &all());
        assert_eq!(got.len(), 1, "window {ooo_window}");
        let pts: Vec<(i64, f64)> = got[0].1.clone();
        assert_eq!(
            pts,
            vec![
                (5_000, 0.0),
                (10_000, 3.0),
                (20_000, 4.0),
                (25_000, 0.0),
                (40_000, 1.0)
            ],
            "window {ooo_window}"
        );
    }
}
