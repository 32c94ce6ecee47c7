//! The byte-level primitives of Prometheus's binary formats (the index, WAL
//! records, tombstones): big-endian integers, Go varints and
//! uvarint-length-prefixed strings, written by the `put_*` functions and
//! read back by [`ByteCursor`].
//!
//! [`ByteCursor`] reads untrusted bytes: every read is bounds-checked and
//! fails with a [`CodecError`] that carries the byte offset (from the start
//! of the cursor's slice) where it failed, so a decoder built on it never
//! panics and can say where a file is damaged. A failed read leaves the
//! cursor where it was, except a failed string read, which has consumed its
//! length. [`CodecError::offset_by`] rebases an error's offset onto the
//! enclosing file; [`CodecError::expected_found`] words it for the
//! `expected …, found …` corruption errors of the crates above.

use crate::varint::{self, read_uvarint, ReadErr};
use crate::CodecError;

/// Appends `v` as 4 big-endian bytes.
pub fn put_be32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// Appends `v` as 8 big-endian bytes.
pub fn put_be64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_be_bytes());
}

/// Appends `s` as a uvarint length followed by its bytes.
pub fn put_uvarint_str(buf: &mut Vec<u8>, s: &str) {
    varint::put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A bounds-checked read cursor over a byte slice.
#[derive(Debug, Clone)]
pub struct ByteCursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> ByteCursor<'a> {
    /// A cursor at the start of `b`.
    pub fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }

    /// Bytes consumed so far: the offset of the next read.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    /// The bytes not read yet (nothing is consumed).
    pub fn rest(&self) -> &'a [u8] {
        self.b.get(self.pos..).unwrap_or_default()
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: u64) -> Result<&'a [u8], CodecError> {
        let short = CodecError::Truncated {
            offset: self.pos,
            need: n,
            have: self.remaining(),
        };
        let Some(end) = usize::try_from(n)
            .ok()
            .and_then(|n| self.pos.checked_add(n))
        else {
            return Err(short);
        };
        let s = self.b.get(self.pos..end).ok_or(short)?;
        self.pos = end;
        Ok(s)
    }

    /// The next `N` bytes as an array.
    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N as u64)?);
        Ok(a)
    }

    /// One byte.
    pub fn byte(&mut self) -> Result<u8, CodecError> {
        self.array::<1>().map(|[b]| b)
    }

    /// A big-endian `u32`.
    pub fn be32(&mut self) -> Result<u32, CodecError> {
        self.array().map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub fn be64(&mut self) -> Result<u64, CodecError> {
        self.array().map(u64::from_be_bytes)
    }

    /// A Go unsigned varint (see [`crate::varint`]).
    pub fn uvarint(&mut self) -> Result<u64, CodecError> {
        let start = self.pos;
        let mut it = self.b.get(start..).unwrap_or_default().iter().copied();
        match read_uvarint(|| it.next()) {
            Ok((v, n)) => {
                self.pos = start + n;
                Ok(v)
            }
            Err(ReadErr::Eof(n)) => Err(CodecError::Truncated {
                offset: start + n,
                need: 1,
                have: 0,
            }),
            Err(ReadErr::Overflow) => Err(CodecError::VarintOverflow { offset: start }),
        }
    }

    /// A Go zig-zag signed varint.
    pub fn varint(&mut self) -> Result<i64, CodecError> {
        self.uvarint().map(varint::unzigzag)
    }

    /// A uvarint that must fit 32 bits (e.g. symbol references).
    pub fn uvarint32(&mut self) -> Result<u32, CodecError> {
        let start = self.pos;
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| {
            self.pos = start;
            CodecError::ValueTooLarge {
                offset: start,
                bits: 32,
                found: v,
            }
        })
    }

    /// A uvarint length followed by that many bytes.
    pub fn uvarint_bytes(&mut self) -> Result<&'a [u8], CodecError> {
        let n = self.uvarint()?;
        self.bytes(n)
    }

    /// A uvarint length followed by that many UTF-8 bytes.
    pub fn uvarint_str(&mut self) -> Result<&'a str, CodecError> {
        let n = self.uvarint()?;
        let offset = self.pos;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| CodecError::NotUtf8 { offset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::varint::{put_uvarint, put_varint};
    use proptest::prelude::*;

    /// One value of each kind the cursor reads.
    #[derive(Debug, Clone)]
    enum Field {
        Byte(u8),
        Be32(u32),
        Be64(u64),
        Uvarint(u64),
        Varint(i64),
        Uvarint32(u32),
        Str(String),
    }

    fn field() -> impl Strategy<Value = Field> {
        prop_oneof![
            any::<u8>().prop_map(Field::Byte),
            any::<u32>().prop_map(Field::Be32),
            any::<u64>().prop_map(Field::Be64),
            any::<u64>().prop_map(Field::Uvarint),
            any::<i64>().prop_map(Field::Varint),
            any::<u32>().prop_map(Field::Uvarint32),
            "\\PC{0,12}".prop_map(Field::Str),
        ]
    }

    fn put(buf: &mut Vec<u8>, f: &Field) {
        match f {
            Field::Byte(v) => buf.push(*v),
            Field::Be32(v) => put_be32(buf, *v),
            Field::Be64(v) => put_be64(buf, *v),
            Field::Uvarint(v) => {
                put_uvarint(buf, *v);
            }
            Field::Varint(v) => {
                put_varint(buf, *v);
            }
            Field::Uvarint32(v) => {
                put_uvarint(buf, u64::from(*v));
            }
            Field::Str(s) => put_uvarint_str(buf, s),
        }
    }

    /// Reads a field of `f`'s kind; `Ok` holds what was read.
    fn get(d: &mut ByteCursor<'_>, f: &Field) -> Result<Field, CodecError> {
        Ok(match f {
            Field::Byte(_) => Field::Byte(d.byte()?),
            Field::Be32(_) => Field::Be32(d.be32()?),
            Field::Be64(_) => Field::Be64(d.be64()?),
            Field::Uvarint(_) => Field::Uvarint(d.uvarint()?),
            Field::Varint(_) => Field::Varint(d.varint()?),
            Field::Uvarint32(_) => Field::Uvarint32(d.uvarint32()?),
            Field::Str(_) => Field::Str(d.uvarint_str()?.to_owned()),
        })
    }

    proptest! {
        #[test]
        fn fields_round_trip(fields in proptest::collection::vec(field(), 0..16)) {
            let mut buf = Vec::new();
            let mut ends = Vec::new();
            for f in &fields {
                put(&mut buf, f);
                ends.push(buf.len());
            }
            let mut d = ByteCursor::new(&buf);
            for (f, end) in fields.iter().zip(&ends) {
                let got = get(&mut d, f);
                prop_assert_eq!(format!("{got:?}"), format!("{:?}", Ok::<_, CodecError>(f.clone())));
                prop_assert_eq!(d.pos(), *end);
            }
            prop_assert!(d.is_empty());
        }

        /// Any cut of a valid encoding fails with an offset inside the
        /// input, and never panics.
        #[test]
        fn truncations_fail_in_bounds(fields in proptest::collection::vec(field(), 1..8), cut in any::<prop::sample::Index>()) {
            let mut buf = Vec::new();
            for f in &fields {
                put(&mut buf, f);
            }
            let cut = cut.index(buf.len());
            let b = &buf[..cut];
            let mut d = ByteCursor::new(b);
            let mut failed = None;
            for f in &fields {
                if let Err(e) = get(&mut d, f) {
                    failed = Some(e);
                    break;
                }
            }
            let e = failed.expect("a cut encoding cannot read whole");
            prop_assert!(e.byte_offset().is_some_and(|o| o <= cut), "{e} past {cut}");
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..40), kinds in proptest::collection::vec(field(), 1..12)) {
            let mut d = ByteCursor::new(&b);
            for k in &kinds {
                let before = d.pos();
                match get(&mut d, k) {
                    Ok(_) => prop_assert!(d.pos() > before),
                    Err(e) => prop_assert!(e.byte_offset().is_some_and(|o| o <= b.len()), "{e}"),
                }
                prop_assert!(d.pos() <= b.len());
            }
        }
    }

    #[test]
    fn errors_carry_offsets() {
        let mut d = ByteCursor::new(&[1, 2, 3]);
        assert_eq!(d.byte(), Ok(1));
        assert_eq!(
            d.be32(),
            Err(CodecError::Truncated {
                offset: 1,
                need: 4,
                have: 2
            })
        );
        assert_eq!(d.pos(), 1, "a failed read consumes nothing");

        let mut over = vec![0u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        over.push(0x02);
        let mut d = ByteCursor::new(&over);
        d.byte().unwrap();
        assert_eq!(d.uvarint(), Err(CodecError::VarintOverflow { offset: 1 }));
        assert_eq!(
            ByteCursor::new(&[0x80; 11]).uvarint(),
            Err(CodecError::VarintOverflow { offset: 0 })
        );
        assert_eq!(
            ByteCursor::new(&[7, 0x80, 0x80]).bytes(1).map(|_| ()),
            Ok(())
        );
        let mut d = ByteCursor::new(&[7, 0x80, 0x80]);
        d.byte().unwrap();
        assert_eq!(
            d.uvarint(),
            Err(CodecError::Truncated {
                offset: 3,
                need: 1,
                have: 0
            })
        );

        let mut b = Vec::new();
        put_uvarint(&mut b, 1 << 32);
        assert_eq!(
            ByteCursor::new(&b).uvarint32(),
            Err(CodecError::ValueTooLarge {
                offset: 0,
                bits: 32,
                found: 1 << 32
            })
        );

        let mut d = ByteCursor::new(&[9, 2, 0xc3, 0x28]);
        d.byte().unwrap();
        assert_eq!(d.uvarint_str(), Err(CodecError::NotUtf8 { offset: 2 }));
        assert_eq!(
            ByteCursor::new(&[5, b'a']).uvarint_str(),
            Err(CodecError::Truncated {
                offset: 1,
                need: 5,
                have: 1
            })
        );
        assert_eq!(
            ByteCursor::new(&[]).bytes(u64::MAX),
            Err(CodecError::Truncated {
                offset: 0,
                need: u64::MAX,
                have: 0
            })
        );
    }

    #[test]
    fn offsets_rebase_and_word_themselves() {
        let e = CodecError::Truncated {
            offset: 3,
            need: 4,
            have: 1,
        };
        assert_eq!(e.clone().offset_by(100).byte_offset(), Some(103));
        assert_eq!(
            e.expected_found(),
            (
                "4 more bytes".to_owned(),
                "1 bytes before the end".to_owned()
            )
        );
        assert_eq!(
            CodecError::VarintOverflow { offset: 2 }.expected_found(),
            (
                "a varint of at most 64 bits".to_owned(),
                "an overlong varint".to_owned()
            )
        );
    }
}
