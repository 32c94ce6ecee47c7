//! Fuzzes the object-store parsers: Thanos's bucket configuration (YAML)
//! and the shipper's state file (JSON). Arbitrary bytes must parse or fail
//! with an error, never panic; a state that parses encodes to bytes that
//! parse the same.
#![no_main]

use std::path::Path;

use cairn_objstore::{BucketConfig, ShipState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = BucketConfig::parse(text);
    }
    let p = Path::new("cairn.shipper.json");
    if let Ok(s) = ShipState::from_json(data, p) {
        let again = ShipState::from_json(&s.to_json(), p).expect("encoded states decode");
        assert_eq!(again, s);
    }
});
