//! Metadata sent for a metric family by name alone (remote write 1.0's
//! `metadata`): stored without creating a series; logged under one of the
//! family's series when it has one, so it survives a restart.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use cairn_model::Labels;
use cairn_storage::{Appendable, Metadata, MetricType};
use support::*;

fn meta(help: &str) -> Metadata {
    Metadata {
        kind: MetricType::Counter,
        unit: String::new(),
        help: help.to_owned(),
    }
}

#[test]
fn family_metadata_creates_no_series() {
    let dir = tempfile::tempdir().unwrap();
    let h = open(dir.path(), opts());
    let name_only = Labels::from_pairs([("__name__", "requests_total")]);
    let mut app = h.appender();
    app.update_metadata(0, &name_only, &meta("before any series"))
        .unwrap();
    app.commit().unwrap();
    assert_eq!(h.stats().num_series, 0);
    assert_eq!(h.metadata()[0].1.help, "before any series");

    // With a series of the family: logged under it, kept after a restart.
    let s = Labels::from_pairs([("__name__", "requests_total"), ("job", "api")]);
    let mut app = h.appender();
    app.append(0, &s, 1000, 1.0).unwrap();
    app.commit().unwrap();
    let mut app = h.appender();
    app.update_metadata(0, &name_only, &meta("with a series"))
        .unwrap();
    app.commit().unwrap();
    assert_eq!(h.stats().num_series, 1);
    drop(h);
    let h = open(dir.path(), opts());
    assert_eq!(h.stats().num_series, 1);
    let m = h.metadata();
    assert_eq!(m.len(), 1);
    assert_eq!(
        (m[0].0.as_str(), m[0].1.help.as_str()),
        ("requests_total", "with a series")
    );
}
