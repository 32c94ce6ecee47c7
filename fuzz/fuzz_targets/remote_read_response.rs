//! Fuzzes the remote read client's decoder (`--query.store` answers):
//! arbitrary bytes, as a streamed answer (frames of ChunkedReadResponse
//! with XOR and histogram chunks) or a SAMPLES one, must decode or fail
//! with an error, never panic; what decodes is sorted, unique per series
//! and within the asked range.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let (lo, hi) = (100, 1_000_000);
    if let Ok(series) = cairn_fanout::decode_read_response("fuzz", body, mode & 1 == 1, lo, hi) {
        for w in series.windows(2) {
            assert!(w[0].labels < w[1].labels || w[0].labels == w[1].labels);
        }
        for s in &series {
            assert!(s.floats.windows(2).all(|w| w[0].t < w[1].t));
            assert!(s.floats.iter().all(|x| x.t >= lo && x.t <= hi));
            assert!(s.hists.iter().all(|h| h.0 >= lo && h.0 <= hi));
        }
    }
});
