//! Fuzzes the index reader: arbitrary bytes must open or fail with an error,
//! and every read on an opened index must return, never panic.
//!
//! Besides the raw input, a second variant stamps a valid header and
//! recomputes the table-of-contents checksum, so the fuzzer gets past the
//! cheap checks and into the symbol and postings offset tables.
#![no_main]

use std::sync::LazyLock;

use cairn_index::{postings_for_matchers, IndexLike, IndexReader, MAGIC_INDEX, TOC_LEN};
use cairn_model::{MatchType, Matcher};
use libfuzzer_sys::fuzz_target;

/// `!~"a.*"`, compiled once: compiling the regex per label name cost more
/// than everything else in an execution. Each use renames a clone.
static NOT_A: LazyLock<Option<Matcher>> =
    LazyLock::new(|| Matcher::new(MatchType::NotRegex, "", "a.*").ok());

fn exercise(bytes: Vec<u8>) {
    let Ok(r) = IndexReader::from_bytes(bytes) else {
        return;
    };
    let _ = r.symbols();
    let mut chunks = Vec::new();
    if let Ok(all) = r.all_postings() {
        for id in all.iter().take(256) {
            let _ = r.series(id, &mut chunks);
        }
    }
    for id in [0, 1, 5, u64::MAX] {
        let _ = r.series(id, &mut chunks);
    }
    for n in r.label_names().unwrap_or_default() {
        for v in r.label_values(&n).unwrap_or_default().iter().take(64) {
            let _ = r.postings(&n, v);
        }
        if let Some(mut m) = NOT_A.clone() {
            m.name = n;
            let _ = postings_for_matchers(&r, &[m]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data.to_vec());

    if data.len() >= TOC_LEN {
        let mut b = MAGIC_INDEX.to_be_bytes().to_vec();
        b.push(2);
        b.extend_from_slice(data);
        let body_end = b.len() - 4;
        let sum = cairn_codec::crc32c(&b[body_end - (TOC_LEN - 4)..body_end]);
        b[body_end..].copy_from_slice(&sum.to_be_bytes());
        exercise(b);
    }
});
