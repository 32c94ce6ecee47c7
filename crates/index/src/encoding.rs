//! Byte-level helpers shared by the writer and the reader: Go-compatible
//! varints, big-endian integers, CRC32-Castagnoli, and a bounds-checked
//! cursor that never panics on short or malformed input.
//!
//! Varints follow Go's `encoding/binary`: unsigned values are little-endian
//! base-128, signed ones are zig-zag encoded first. At most ten bytes are
//! read; an eleventh, or a tenth byte above 1, is an overflow.

/// CRC32-Castagnoli, the checksum of every index section.
pub(crate) fn crc32(b: &[u8]) -> u32 {
    crc32c::crc32c(b)
}

pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

pub(crate) fn put_be32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_be64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_uvarint_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// Why a [`Decbuf`] read failed; the caller adds file and section context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// `need` more bytes were wanted at position `at`, only `have` remain.
    Short { at: usize, need: u64, have: usize },
    /// A varint ran past ten bytes or past 64 bits.
    VarintOverflow { at: usize },
    /// A string's bytes were not UTF-8.
    NotUtf8 { at: usize },
}

impl DecodeError {
    /// Position, relative to the start of the decoded buffer, of the failure.
    pub(crate) fn at(&self) -> usize {
        match self {
            DecodeError::Short { at, .. }
            | DecodeError::VarintOverflow { at }
            | DecodeError::NotUtf8 { at } => *at,
        }
    }

    /// `(expected, found)` wording for a corruption error.
    pub(crate) fn describe(&self) -> (String, String) {
        match self {
            DecodeError::Short { need, have, .. } => (
                format!("{need} more bytes"),
                format!("{have} bytes before the end"),
            ),
            DecodeError::VarintOverflow { .. } => (
                "a varint of at most 64 bits".to_owned(),
                "an overlong varint".to_owned(),
            ),
            DecodeError::NotUtf8 { .. } => (
                "a UTF-8 string".to_owned(),
                "invalid UTF-8 bytes".to_owned(),
            ),
        }
    }
}

/// A read cursor over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Decbuf<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Decbuf<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }

    /// Bytes consumed so far.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub(crate) fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    pub(crate) fn bytes(&mut self, n: u64) -> Result<&'a [u8], DecodeError> {
        let short = DecodeError::Short {
            at: self.pos,
            need: n,
            have: self.remaining(),
        };
        let n = usize::try_from(n).map_err(|_| short.clone())?;
        let end = self.pos.checked_add(n).ok_or_else(|| short.clone())?;
        let s = self.b.get(self.pos..end).ok_or(short)?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = self.bytes(1)?;
        Ok(b.first().copied().unwrap_or(0))
    }

    pub(crate) fn be32(&mut self) -> Result<u32, DecodeError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.bytes(4)?);
        Ok(u32::from_be_bytes(a))
    }

    pub(crate) fn be64(&mut self) -> Result<u64, DecodeError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut x: u64 = 0;
        let mut shift = 0u32;
        for i in 0..10 {
            let Some(&b) = self.b.get(self.pos) else {
                return Err(DecodeError::Short {
                    at: self.pos,
                    need: 1,
                    have: 0,
                });
            };
            self.pos += 1;
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(DecodeError::VarintOverflow { at: start });
                }
                return Ok(x | (u64::from(b) << shift));
            }
            x |= u64::from(b & 0x7f) << shift;
            shift += 7;
        }
        Err(DecodeError::VarintOverflow { at: start })
    }

    pub(crate) fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A uvarint that must fit 32 bits (symbol references).
    pub(crate) fn uvarint32(&mut self) -> Result<u32, DecodeError> {
        let at = self.pos;
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| DecodeError::VarintOverflow { at })
    }

    /// A uvarint length followed by that many UTF-8 bytes.
    pub(crate) fn uvarint_str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.uvarint()?;
        let at = self.pos;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| DecodeError::NotUtf8 { at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut b = Vec::new();
            put_uvarint(&mut b, u);
            put_varint(&mut b, i);
            let mut d = Decbuf::new(&b);
            prop_assert_eq!(d.uvarint().unwrap(), u);
            prop_assert_eq!(d.varint().unwrap(), i);
            prop_assert_eq!(d.remaining(), 0);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut d = Decbuf::new(&b);
            while d.remaining() > 0 {
                if d.uvarint_str().is_err() { break; }
            }
            let mut d = Decbuf::new(&b);
            let _ = (d.be64(), d.varint(), d.be32(), d.uvarint32());
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let b = [0xffu8; 11];
        assert!(matches!(
            Decbuf::new(&b).uvarint(),
            Err(DecodeError::VarintOverflow { at: 0 })
        ));
        let mut b = vec![0xffu8; 9];
        b.push(2);
        assert!(Decbuf::new(&b).uvarint().is_err());
        assert!(matches!(
            Decbuf::new(&[0x80]).uvarint(),
            Err(DecodeError::Short { .. })
        ));
    }
}
