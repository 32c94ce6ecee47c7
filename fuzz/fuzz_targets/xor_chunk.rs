//! Fuzzes the XOR chunk decoder: arbitrary bytes must decode or error, never
//! panic; whatever decodes must re-encode to a chunk that decodes the same;
//! the bulk decoders (`xor_decode`, `xor_decode_append`) must yield what the
//! iterator yields.
#![no_main]

use cairn_codec::{decode_all, xor_decode, xor_decode_append, xor_iter, XorChunk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut it = xor_iter(data);
    while it.next() {}
    let mut it = xor_iter(data);
    let probe = data.first().map(|b| i64::from(*b) << 20).unwrap_or(0);
    let _ = it.seek(probe);

    let mut stepped = Vec::new();
    let mut it = xor_iter(data);
    while it.next() {
        let (t, v) = it.at();
        stepped.push((t, v.to_bits()));
    }
    let mut bulk = Vec::new();
    let res = xor_decode(data, |t, v| bulk.push((t, v.to_bits())));
    assert_eq!(bulk, stepped);
    assert_eq!(res.is_err(), it.err().is_some());
    let mut appended = vec![(0i64, 0u64)];
    let res2 = xor_decode_append(data, &mut appended, |t, v| (t, v.to_bits()));
    assert_eq!(res2.is_err(), res.is_err());
    let want = if res.is_ok() { bulk.len() + 1 } else { 1 };
    assert_eq!(appended.len(), want);
    if res.is_ok() {
        assert_eq!(appended.get(1..), Some(bulk.as_slice()));
    }

    if let Ok(samples) = decode_all(data) {
        let mut c = XorChunk::new();
        for &(t, v) in &samples {
            c.append(t, v);
        }
        let again = decode_all(c.bytes()).expect("re-encoded chunk must decode");
        assert_eq!(samples.len(), again.len());
        for (a, b) in samples.iter().zip(&again) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits());
        }
    }
    if let Ok(mut c) = XorChunk::from_bytes(data.to_vec()) {
        assert_eq!(c.bytes(), data);
        let n = c.num_samples();
        if let Some((t, _)) = c.last() {
            if c.try_append(t.wrapping_add(15_000), 1.5).is_ok() {
                assert_eq!(decode_all(c.bytes()).map(|s| s.len()).ok(), Some(n + 1));
            }
        }
    }
});
