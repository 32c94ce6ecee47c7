//! Fuzzes the tombstones decoder and the meta.json parser: arbitrary bytes
//! must decode or fail with an error, never panic, and whatever decodes must
//! encode to bytes that decode the same.
//!
//! A second variant wraps the input in a valid frame (magic, version and a
//! correct CRC) so the fuzzer reaches the entry decoder past the checksum.
#![no_main]

use std::path::Path;

use cairn_tsdb::{BlockMeta, Tombstones};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = Path::new("fuzz");
    let _ = Tombstones::decode(data, p);
    if let Ok(m) = BlockMeta::from_json(data, p) {
        let again = BlockMeta::from_json(&m.to_json(), p).expect("written meta.json parses");
        assert_eq!(again, m);
    }

    let mut framed = 0x0130_BA30u32.to_be_bytes().to_vec();
    framed.push(1);
    framed.extend_from_slice(data);
    framed.extend_from_slice(&cairn_codec::crc32c(data).to_be_bytes());
    if let Ok(t) = Tombstones::decode(&framed, p) {
        // A series is listed only with at least one interval.
        assert_eq!(t.is_empty(), t.total() == 0);
        assert!(t.iter().all(|(_, ivs)| !ivs.is_empty()));
        // What decodes must re-encode to something that decodes the same.
        let again = Tombstones::decode(&t.encode(), p).expect("re-encoded tombstones decode");
        assert_eq!(again, t);
    }
});
