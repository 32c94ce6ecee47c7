//! Snappy block format (not the framed stream format), as remote write and
//! remote read bodies use it.
//!
//! The decompressed length sits in a varint at the start of a block, so the
//! limit is enforced before allocating anything.

use crate::{ProtoError, Result};

/// Decompresses a snappy block whose decompressed size is at most `limit`.
pub fn decompress(block: &[u8], limit: usize) -> Result<Vec<u8>> {
    let len = snap::raw::decompress_len(block)?;
    if len > limit {
        return Err(ProtoError::TooLarge { len, limit });
    }
    let mut out = vec![0u8; len];
    let n = snap::raw::Decoder::new().decompress(block, &mut out)?;
    out.truncate(n);
    Ok(out)
}

/// [`decompress`] into a buffer the caller reuses: `out` is replaced by the
/// decompressed bytes, keeping its allocation when it is large enough.
pub fn decompress_into(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<()> {
    let len = snap::raw::decompress_len(block)?;
    if len > limit {
        return Err(ProtoError::TooLarge { len, limit });
    }
    // Only grows when needed: zeroing the whole buffer every request would
    // cost as much as decompressing it.
    if out.len() < len {
        out.resize(len, 0);
    }
    let dst = out
        .get_mut(..len)
        .ok_or(ProtoError::Malformed("snappy buffer"))?;
    let n = snap::raw::Decoder::new().decompress(block, dst)?;
    out.truncate(n);
    Ok(())
}

/// Compresses `data` into one snappy block.
pub fn compress(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; snap::raw::max_compress_len(data.len())];
    match snap::raw::Encoder::new().compress(data, &mut out) {
        Ok(n) => {
            out.truncate(n);
            out
        }
        // Only fails for inputs over ~4 GiB, which no caller produces; an
        // empty result then decodes as an error on the other side.
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn limit_is_checked_before_decompressing() {
        let block = compress(&[7u8; 1000]);
        assert_eq!(decompress(&block, 1000).unwrap(), vec![7u8; 1000]);
        assert!(matches!(
            decompress(&block, 999),
            Err(ProtoError::TooLarge {
                len: 1000,
                limit: 999
            })
        ));
    }

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            prop_assert_eq!(decompress(&compress(&data), 1 << 20).unwrap(), data);
        }

        #[test]
        fn decompress_into_reuses_and_agrees(
            a in proptest::collection::vec(any::<u8>(), 0..4096),
            b in proptest::collection::vec(any::<u8>(), 0..4096),
        ) {
            let mut out = Vec::new();
            decompress_into(&compress(&a), 1 << 20, &mut out).unwrap();
            prop_assert_eq!(&out, &a);
            decompress_into(&compress(&b), 1 << 20, &mut out).unwrap();
            prop_assert_eq!(&out, &b);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decompress(&data, 1 << 16);
            let mut out = vec![1u8; 10];
            let _ = decompress_into(&data, 1 << 16, &mut out);
        }
    }
}
