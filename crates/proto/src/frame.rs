//! Framing of streamed remote read responses.
//!
//! Each frame is: the payload length as an unsigned varint, the CRC32C
//! (Castagnoli) of the payload as 4 big-endian bytes, then the payload (one
//! encoded `ChunkedReadResponse`). Frames follow each other with nothing in
//! between; the HTTP body ends after the last one.

use crate::{ProtoError, Result};

/// Appends one frame holding `payload` to `out`.
pub fn write_frame(payload: &[u8], out: &mut Vec<u8>) {
    let mut v = payload.len() as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Encodes `msg` as one frame appended to `out`.
pub fn write_message_frame(msg: &impl prost::Message, out: &mut Vec<u8>) {
    let payload = msg.encode_to_vec();
    write_frame(&payload, out);
}

/// Reads frames from a complete buffer.
pub struct FrameReader<'a> {
    buf: &'a [u8],
    pos: usize,
    max_frame: usize,
}

impl<'a> FrameReader<'a> {
    /// A reader refusing frames with payloads over `max_frame` bytes.
    pub fn new(buf: &'a [u8], max_frame: usize) -> Self {
        Self {
            buf,
            pos: 0,
            max_frame,
        }
    }

    /// The next frame's payload, `None` at a clean end, or an error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Result<&'a [u8]>> {
        let rest = self.buf.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let offset = self.pos;
        let r = self.read_one(rest, offset);
        if r.is_err() {
            // Stop after the first error.
            self.pos = self.buf.len();
        }
        Some(r)
    }

    fn read_one(&mut self, rest: &'a [u8], offset: usize) -> Result<&'a [u8]> {
        let mut len: u64 = 0;
        let mut i = 0;
        loop {
            let b = *rest.get(i).ok_or(ProtoError::FrameTruncated {
                offset,
                reason: "truncated length",
            })?;
            if i == 9 && b > 1 {
                return Err(ProtoError::FrameTruncated {
                    offset,
                    reason: "length varint overflows 64 bits",
                });
            }
            len |= u64::from(b & 0x7f) << (7 * i);
            i += 1;
            if b < 0x80 {
                break;
            }
            if i >= 10 {
                return Err(ProtoError::FrameTruncated {
                    offset,
                    reason: "length varint too long",
                });
            }
        }
        if len > self.max_frame as u64 {
            return Err(ProtoError::FrameTooLarge {
                offset,
                len,
                limit: self.max_frame,
            });
        }
        let len = len as usize;
        let Some(&[c0, c1, c2, c3]) = rest.get(i..i + 4) else {
            return Err(ProtoError::FrameTruncated {
                offset,
                reason: "truncated checksum",
            });
        };
        let expected = u32::from_be_bytes([c0, c1, c2, c3]);
        let payload = rest
            .get(i + 4..i + 4 + len)
            .ok_or(ProtoError::FrameTruncated {
                offset,
                reason: "truncated payload",
            })?;
        let found = crc32c::crc32c(payload);
        if found != expected {
            return Err(ProtoError::FrameChecksum {
                offset,
                expected,
                found,
            });
        }
        self.pos += i + 4 + len;
        Ok(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_frame_layout() {
        let mut out = Vec::new();
        write_frame(b"abc", &mut out);
        // crc32c("abc") = 0x364b3fb7
        assert_eq!(out, [3, 0x36, 0x4b, 0x3f, 0xb7, b'a', b'b', b'c']);
    }

    #[test]
    fn corrupt_checksum_and_truncation_are_errors() {
        let mut out = Vec::new();
        write_frame(b"hello", &mut out);
        let mut bad = out.clone();
        bad[2] ^= 1;
        assert!(matches!(
            FrameReader::new(&bad, 100).next(),
            Some(Err(ProtoError::FrameChecksum { offset: 0, .. }))
        ));
        let cut = &out[..out.len() - 1];
        assert!(matches!(
            FrameReader::new(cut, 100).next(),
            Some(Err(ProtoError::FrameTruncated { .. }))
        ));
        assert!(matches!(
            FrameReader::new(&out, 4).next(),
            Some(Err(ProtoError::FrameTooLarge { len: 5, .. }))
        ));
    }

    proptest! {
        #[test]
        fn round_trips(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
            let mut out = Vec::new();
            for p in &payloads {
                write_frame(p, &mut out);
            }
            let mut r = FrameReader::new(&out, 1 << 20);
            let mut back = Vec::new();
            while let Some(f) = r.next() {
                back.push(f.unwrap().to_vec());
            }
            prop_assert_eq!(back, payloads);
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut r = FrameReader::new(&data, 1 << 16);
            let mut n = 0;
            while let Some(f) = r.next() {
                n += 1;
                if f.is_err() { break; }
                prop_assert!(n <= data.len());
            }
        }
    }
}
