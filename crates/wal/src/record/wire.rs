//! Primitive encodings used inside records: big-endian fixed-width integers,
//! Go-compatible varints (from `cairn-codec`) and uvarint-length-prefixed
//! strings.
//!
//! [`Dec`] is a cursor over untrusted bytes: every read is bounds-checked and
//! reports the offset where it failed, so decoders never panic on input.

use crate::error::WalError;

pub(crate) fn put_be64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_be_bytes());
}

pub(crate) use cairn_codec::varint::{put_uvarint, put_varint};

pub(crate) fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A bounds-checked read cursor over one record.
pub(crate) struct Dec<'a> {
    b: &'a [u8],
    off: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Self { b, off: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.off >= self.b.len()
    }

    pub(crate) fn corrupt(
        &self,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> WalError {
        WalError::RecordCorrupt {
            offset: self.off,
            expected: expected.into(),
            found: found.into(),
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WalError> {
        let left = self.b.len().saturating_sub(self.off);
        match self
            .off
            .checked_add(n)
            .and_then(|end| self.b.get(self.off..end))
        {
            Some(s) => {
                self.off += n;
                Ok(s)
            }
            None => Err(self.corrupt(format!("{n} bytes of {what}"), format!("{left} bytes left"))),
        }
    }

    pub(crate) fn byte(&mut self, what: &str) -> Result<u8, WalError> {
        let s = self.take(1, what)?;
        Ok(s.first().copied().unwrap_or(0))
    }

    pub(crate) fn be64(&mut self, what: &str) -> Result<u64, WalError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u64, WalError> {
        let rest = self.b.get(self.off..).unwrap_or(&[]);
        match cairn_codec::varint::uvarint(rest) {
            Ok((v, n)) => {
                self.off += n;
                Ok(v)
            }
            Err(e) => Err(self.corrupt(format!("uvarint {what}"), e.to_string())),
        }
    }

    pub(crate) fn varint(&mut self, what: &str) -> Result<i64, WalError> {
        let u = self.uvarint(what)?;
        Ok(cairn_codec::varint::unzigzag(u))
    }

    pub(crate) fn str(&mut self, what: &str) -> Result<&'a str, WalError> {
        let start = self.off;
        let n = self.uvarint(what)?;
        let n = usize::try_from(n)
            .map_err(|_| self.corrupt(format!("length of {what}"), n.to_string()))?;
        let s = self.take(n, what)?;
        std::str::from_utf8(s).map_err(|e| {
            let mut c = self.corrupt(format!("UTF-8 {what}"), e.to_string());
            if let WalError::RecordCorrupt { offset, .. } = &mut c {
                *offset = start;
            }
            c
        })
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
            let mut d = Dec::new(&b);
            prop_assert_eq!(d.uvarint("u").unwrap(), u);
            prop_assert_eq!(d.varint("i").unwrap(), i);
            prop_assert!(d.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut d = Dec::new(&b);
            let _ = d.uvarint("x");
            let _ = d.varint("x");
            let _ = d.str("x");
            let _ = d.be64("x");
        }
    }

    #[test]
    fn overlong_uvarint_is_an_error() {
        let b = [0xffu8; 11];
        assert!(Dec::new(&b).uvarint("x").is_err());
        let mut ok = vec![0xffu8; 9];
        ok.push(0x01);
        assert_eq!(Dec::new(&ok).uvarint("x").unwrap(), u64::MAX);
        let mut bad = vec![0xffu8; 9];
        bad.push(0x02);
        assert!(Dec::new(&bad).uvarint("x").is_err());
    }
}
