//! Reading format version 1, built by hand here: symbol references are file
//! offsets of symbol entries, series references are file offsets of series
//! entries, and the postings offset table is deliberately unsorted.
#![allow(clippy::indexing_slicing)] // test code: failing means panicking

use cairn_codec::crc32c;
use cairn_codec::varint::{put_uvarint, put_varint};
use cairn_index::{
    postings_for_matchers, ChunkMeta, IndexLike, IndexReader, FORMAT_V1, MAGIC_INDEX,
};
use cairn_model::{labels, MatchType, Matcher};

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_uvarint(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

fn section(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32c(body).to_be_bytes());
}

fn build_v1() -> (Vec<u8>, u64, u64) {
    let mut f = MAGIC_INDEX.to_be_bytes().to_vec();
    f.push(FORMAT_V1);

    // Symbol table; remember each entry's absolute offset.
    let syms = ["__name__", "job", "up", "x", "y"];
    let toc_symbols = f.len() as u64;
    let mut body = (syms.len() as u32).to_be_bytes().to_vec();
    let mut sym_off = std::collections::HashMap::new();
    for s in syms {
        sym_off.insert(s, toc_symbols + 4 + body.len() as u64);
        put_str(&mut body, s);
    }
    section(&mut f, &body);

    // Two series, unaligned on purpose (one odd padding byte).
    f.push(0);
    let toc_series = f.len() as u64;
    let mut series_off = Vec::new();
    for (job, mint) in [("x", 1000i64), ("y", -5)] {
        series_off.push(f.len() as u64);
        let mut body = Vec::new();
        put_uvarint(&mut body, 2);
        for s in ["__name__", "up", "job", job] {
            put_uvarint(&mut body, sym_off[s]);
        }
        put_uvarint(&mut body, 2);
        put_varint(&mut body, mint);
        put_uvarint(&mut body, 10);
        put_uvarint(&mut body, 8);
        put_uvarint(&mut body, 1);
        put_uvarint(&mut body, 20);
        put_varint(&mut body, 100);
        put_uvarint(&mut f, body.len() as u64);
        f.extend_from_slice(&body);
        f.extend_from_slice(&crc32c(&body).to_be_bytes());
    }
    let (a, b) = (series_off[0], series_off[1]);

    let toc_postings = f.len() as u64;
    let lists: [(&str, &str, Vec<u64>); 4] = [
        ("job", "y", vec![b]),
        ("", "", vec![a, b]),
        ("__name__", "up", vec![a, b]),
        ("job", "x", vec![a]),
    ];
    let mut table = Vec::new();
    for (n, v, refs) in &lists {
        put_uvarint(&mut table, 2);
        put_str(&mut table, n);
        put_str(&mut table, v);
        put_uvarint(&mut table, f.len() as u64);
        let mut body = (refs.len() as u32).to_be_bytes().to_vec();
        for r in refs {
            body.extend_from_slice(&(*r as u32).to_be_bytes());
        }
        section(&mut f, &body);
    }
    let toc_ptable = f.len() as u64;
    let mut body = (lists.len() as u32).to_be_bytes().to_vec();
    body.extend_from_slice(&table);
    section(&mut f, &body);

    let mut toc = Vec::new();
    for v in [toc_symbols, toc_series, 0, 0, toc_postings, toc_ptable] {
        toc.extend_from_slice(&v.to_be_bytes());
    }
    let sum = crc32c(&toc);
    f.extend_from_slice(&toc);
    f.extend_from_slice(&sum.to_be_bytes());
    (f, a, b)
}

#[test]
fn reads_version_1() {
    let (bytes, a, b) = build_v1();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    std::fs::write(&path, bytes).unwrap();
    let r = IndexReader::open(&path).unwrap();
    assert_eq!(r.version(), 1);
    assert_eq!(
        r.all_postings().unwrap().iter().collect::<Vec<_>>(),
        vec![a, b]
    );
    assert_eq!(r.label_names().unwrap(), vec!["__name__", "job"]);
    assert_eq!(r.label_values("job").unwrap(), vec!["x", "y"]);

    let mut chunks = Vec::new();
    assert_eq!(
        r.series(b, &mut chunks).unwrap(),
        labels!("__name__" => "up", "job" => "y")
    );
    assert_eq!(
        chunks,
        vec![
            ChunkMeta {
                min_time: -5,
                max_time: 5,
                chunk_ref: 8
            },
            ChunkMeta {
                min_time: 6,
                max_time: 26,
                chunk_ref: 108
            },
        ]
    );
    let ms = [Matcher::new(MatchType::NotEqual, "job", "x").unwrap()];
    assert_eq!(
        postings_for_matchers(&r, &ms)
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        vec![b]
    );
    // A reference that is not a series entry's offset fails cleanly.
    assert!(r.series(a + 1, &mut chunks).is_err());
}
