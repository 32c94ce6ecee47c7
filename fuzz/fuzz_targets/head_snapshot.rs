//! Fuzzes the head snapshot decoder: arbitrary bytes must decode or fail
//! with an error, never panic or allocate without bound, and whatever
//! decodes must encode to bytes that decode the same.
//!
//! A second variant appends a correct checksum, so the fuzzer reaches the
//! structure past it.
#![no_main]

use cairn_head::snapshot::{decode, encode, MAGIC};
use libfuzzer_sys::fuzz_target;

fn round_trip(b: &[u8]) {
    if let Ok(s) = decode(b) {
        assert_eq!(s.header.series, s.entries.len() as u64);
        let listed: u64 = s
            .entries
            .iter()
            .map(|e| (e.chunks.len() + e.hist.len()) as u64)
            .sum();
        assert_eq!(s.header.chunks, listed);
        assert!(s.entries.windows(2).all(|w| w[0].r < w[1].r));
        let again = encode(&s).expect("decoded snapshots encode");
        let s2 = decode(&again).expect("re-encoded snapshots decode");
        assert_eq!(s2, s);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip(data);
    let mut framed = MAGIC.to_vec();
    framed.extend_from_slice(data);
    let crc = cairn_codec::crc32c(&framed);
    framed.extend_from_slice(&crc.to_le_bytes());
    round_trip(&framed);
});
