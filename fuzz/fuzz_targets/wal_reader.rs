//! Fuzzes the WAL segment reader and the record decoder: arbitrary bytes
//! must yield records or an error, never a panic or a runaway allocation.
//!
//! Two variants per input: the raw bytes read as a segment, and the bytes
//! cut into records and framed with valid fragment headers and CRCs, so the
//! fuzzer gets past the checksums into snappy handling and record decoding.
#![no_main]

use std::io::Cursor;

use cairn_wal::fragment::frame_segment;
use cairn_wal::record::decode;
use cairn_wal::SegmentReader;
use libfuzzer_sys::fuzz_target;

fn read_segment(bytes: Vec<u8>) {
    let mut r = SegmentReader::new(Cursor::new(bytes));
    while let Ok(Some(rec)) = r.next_record() {
        let _ = decode(&rec);
    }
    let _ = r.valid_prefix();
}

fuzz_target!(|data: &[u8]| {
    read_segment(data.to_vec());
    // Records separated by 0xff bytes, framed correctly.
    let recs: Vec<&[u8]> = data.split(|&b| b == 0xff).collect();
    read_segment(frame_segment(&recs));
    for r in &recs {
        let _ = decode(r);
    }
});
