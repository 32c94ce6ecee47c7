//! The shipper's state file (docs/format/shipper.md): the frozen fixture
//! reads back as written, a damaged one is a named error, another version
//! is refused, and what is saved loads back equal.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)] // test code

use std::path::{Path, PathBuf};

use cairn_objstore::{ObjstoreError, ShipState};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/shipper")
        .join(name)
}

#[test]
fn frozen_fixtures_read_forever() {
    let s = ShipState::load(&fixture("v1.json")).unwrap();
    assert_eq!(s.version, 1);
    assert_eq!(s.uploaded.len(), 2);
    assert_eq!(s.uploaded[0].ulid.to_string(), "01KBTR3Z6Q0000000000000000");
    assert_eq!(s.uploaded[0].max_time, 1_796_400_000_000);
    // Absent: 0, which any bucket retention that is set has passed.
    assert_eq!(s.uploaded[1].max_time, 0);
    assert_eq!(s.uploaded[1].resolution, 300_000);
    assert_eq!(s.uploaded[1].sources.len(), 2);
    assert_eq!(s.marked.len(), 1);
    assert_eq!(s.marked[0].deletion_time, 1_796_500_000);
    match ShipState::load(&fixture("corrupt.json")) {
        Err(ObjstoreError::StateCorrupt { path, .. }) => assert!(path.ends_with("corrupt.json")),
        other => panic!("{other:?}"),
    }
    // Saved and loaded again: equal.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("state.json");
    s.save(&p).unwrap();
    assert_eq!(ShipState::load(&p).unwrap(), s);
    // Another version is refused, an absent file is an empty state.
    std::fs::write(&p, r#"{"version": 2, "uploaded": []}"#).unwrap();
    let e = ShipState::load(&p).unwrap_err().to_string();
    assert!(e.contains("version 1"), "{e}");
    let empty = ShipState::load(&dir.path().join("none.json")).unwrap();
    assert!(empty.uploaded.is_empty());
}
