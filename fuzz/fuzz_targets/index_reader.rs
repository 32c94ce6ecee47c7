//! Fuzzes the index reader: arbitrary bytes must open or fail with an error,
//! and every read on an opened index must return, never panic.
//!
//! Besides the raw input, a second variant stamps a valid header and
//! recomputes the table-of-contents checksum, so the fuzzer gets past the
//! cheap checks and into the symbol and postings offset tables.
//!
//! Each input that opens is also read as an index in object storage: its
//! index header written (`write_index_header`), opened over the bytes as a
//! range source (`open_sparse`), and every read must answer as the
//! in-memory reader's (differential: the same values, errors in the same
//! places).
#![no_main]

use std::sync::{Arc, LazyLock};

use cairn_index::{
    postings_for_matchers, write_index_header, IndexLike, IndexReader, MAGIC_INDEX, TOC_LEN,
};
use cairn_model::{MatchType, Matcher};
use libfuzzer_sys::fuzz_target;

/// `!~"a.*"`, compiled once: compiling the regex per label name cost more
/// than everything else in an execution. Each use renames a clone.
static NOT_A: LazyLock<Option<Matcher>> =
    LazyLock::new(|| Matcher::new(MatchType::NotRegex, "", "a.*").ok());

/// Every read, as plain data (errors without their text, which names the
/// file).
fn reads(r: &IndexReader) -> Vec<String> {
    let mut out = vec![format!("{:?}", r.symbols().ok())];
    let mut chunks = Vec::new();
    if let Ok(all) = r.all_postings() {
        for id in all.iter().take(256) {
            out.push(format!("{:?} {chunks:?}", r.series(id, &mut chunks).ok()));
        }
    }
    for id in [0, 1, 5, u64::MAX] {
        out.push(format!("{:?} {chunks:?}", r.series(id, &mut chunks).ok()));
    }
    for n in r.label_names().unwrap_or_default() {
        for v in r.label_values(&n).unwrap_or_default().iter().take(64) {
            out.push(format!("{:?}", r.postings(&n, v).ok()));
        }
        if let Some(mut m) = NOT_A.clone() {
            m.name = n;
            out.push(format!("{:?}", postings_for_matchers(r, &[m]).ok()));
        }
    }
    out
}

fn exercise(bytes: Vec<u8>) {
    let Ok(r) = IndexReader::from_bytes(bytes.clone()) else {
        return;
    };
    let want = reads(&r);
    let header =
        std::env::temp_dir().join(format!("cairn-fuzz-index-header-{}", std::process::id()));
    let src: Arc<dyn cairn_codec::RangeRead> = Arc::new(bytes);
    // The header writer is stricter than the reader (a section must end
    // below the TOC): it may refuse; where both open, they agree.
    if write_index_header(src.as_ref(), &header).is_err() {
        return;
    }
    let sparse = IndexReader::open_sparse(&header, src).expect("a header that was just written");
    assert_eq!(reads(&sparse), want);
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
