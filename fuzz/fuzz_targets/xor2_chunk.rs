//! Fuzzes the XOR2 chunk decoders: arbitrary bytes must decode or error,
//! never panic; the bulk decoders (`xor2_decode`, `xor2_decode_st`) must
//! yield what the iterator yields and fail alike; whatever decodes must
//! re-encode (with its start timestamps) to a chunk that decodes the same;
//! a chunk opened for appending keeps its bytes and takes one more sample.
#![no_main]

use cairn_codec::{xor2_decode, xor2_decode_st, xor2_iter, Xor2Chunk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut it = xor2_iter(data);
    let probe = data.first().map(|b| i64::from(*b) << 20).unwrap_or(0);
    let _ = it.seek(probe);

    let mut stepped = Vec::new();
    let mut it = xor2_iter(data);
    while it.next() {
        let (t, v) = it.at();
        stepped.push((it.at_st(), t, v.to_bits()));
    }
    let failed = it.err().is_some();

    let mut bulk = Vec::new();
    let res = xor2_decode_st(data, |st, t, v| bulk.push((st, t, v.to_bits())));
    assert_eq!(bulk, stepped);
    assert_eq!(res.is_err(), failed);
    let mut n = 0usize;
    let res2 = xor2_decode(data, |_, _| n += 1);
    assert_eq!(res2.is_err(), failed);
    assert_eq!(n, stepped.len());

    if !failed {
        let mut c = Xor2Chunk::new();
        for &(st, t, v) in &stepped {
            c.append_st(st, t, f64::from_bits(v));
        }
        let mut again = Vec::new();
        xor2_decode_st(c.bytes(), |st, t, v| again.push((st, t, v.to_bits())))
            .expect("re-encoded chunk must decode");
        assert_eq!(again, stepped);
    }
    if let Ok(mut c) = Xor2Chunk::from_bytes(data.to_vec()) {
        assert_eq!(c.bytes(), data);
        let n = c.num_samples();
        if let Some((t, _)) = c.last() {
            if c.try_append(t.wrapping_add(15_000), 1.5).is_ok() {
                assert_eq!(xor2_decode(c.bytes(), |_, _| {}).ok(), Some(n + 1));
            }
        }
    }
});
