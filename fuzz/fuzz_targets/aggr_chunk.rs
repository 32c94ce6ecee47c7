//! Fuzzes the aggregate chunk (encoding 0xff) of downsampled blocks:
//! arbitrary bytes must split into sub-chunks or error, never panic; what
//! splits must re-frame to bytes that split the same; reading any aggregate
//! for a query must yield points or an error, never a panic; and so must
//! reading its windows as the next level's downsampling does.
#![no_main]

use cairn_codec::{decode_aggr, encode_aggr};
use cairn_storage::Aggregate;
use cairn_tsdb::downsample::{decode_aggregate, decode_windows, RES_5M};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parts) = decode_aggr(data) {
        let again = encode_aggr(&parts);
        assert_eq!(decode_aggr(&again).ok(), Some(parts));
    }
    for a in [
        Aggregate::Avg,
        Aggregate::Count,
        Aggregate::Sum,
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::Counter,
        Aggregate::Resets,
    ] {
        let mut n = 0usize;
        let mut last = i64::MIN;
        if let Ok(k) = decode_aggregate(data, a, |t, _| {
            n += 1;
            last = last.max(t);
        }) {
            assert_eq!(k, n);
        }
    }
    let _ = decode_windows(data, RES_5M);
});
