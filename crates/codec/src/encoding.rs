//! The chunk-encoding byte that Prometheus stores beside every chunk.
//!
//! Values are Prometheus's `chunkenc.Encoding`: 1 = XOR floats,
//! 2 = native histograms, 3 = float histograms. Only XOR is decoded by Cairn
//! today; the others are recognised so readers can report a precise error.

use crate::CodecError;

/// Encoding byte of XOR float chunks (Prometheus `chunkenc.EncXOR`).
pub const ENCODING_XOR: u8 = 1;
/// Encoding byte of integer native-histogram chunks (`chunkenc.EncHistogram`).
pub const ENCODING_HISTOGRAM: u8 = 2;
/// Encoding byte of float native-histogram chunks (`chunkenc.EncFloatHistogram`).
pub const ENCODING_FLOAT_HISTOGRAM: u8 = 3;

/// A chunk encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// Gorilla-style XOR float samples.
    Xor = ENCODING_XOR,
    /// Native histograms with integer counts (not implemented yet).
    Histogram = ENCODING_HISTOGRAM,
    /// Native histograms with float counts (not implemented yet).
    FloatHistogram = ENCODING_FLOAT_HISTOGRAM,
}

impl Encoding {
    /// The on-disk byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Errors with [`CodecError::UnsupportedEncoding`] unless Cairn can decode
    /// this encoding.
    pub fn ensure_supported(self) -> Result<(), CodecError> {
        match self {
            Encoding::Xor => Ok(()),
            other => Err(CodecError::UnsupportedEncoding(other)),
        }
    }
}

impl TryFrom<u8> for Encoding {
    type Error = CodecError;

    fn try_from(b: u8) -> Result<Self, CodecError> {
        match b {
            ENCODING_XOR => Ok(Encoding::Xor),
            ENCODING_HISTOGRAM => Ok(Encoding::Histogram),
            ENCODING_FLOAT_HISTOGRAM => Ok(Encoding::FloatHistogram),
            other => Err(CodecError::UnknownEncoding(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_values_match_prometheus() {
        assert_eq!(Encoding::Xor.as_u8(), 1);
        assert_eq!(Encoding::Histogram.as_u8(), 2);
        assert_eq!(Encoding::FloatHistogram.as_u8(), 3);
        for b in 1..=3u8 {
            assert_eq!(Encoding::try_from(b).unwrap().as_u8(), b);
        }
        assert_eq!(Encoding::try_from(0), Err(CodecError::UnknownEncoding(0)));
        assert_eq!(Encoding::try_from(9), Err(CodecError::UnknownEncoding(9)));
    }

    #[test]
    fn histograms_are_named_unsupported() {
        assert!(Encoding::Xor.ensure_supported().is_ok());
        assert_eq!(
            Encoding::Histogram.ensure_supported(),
            Err(CodecError::UnsupportedEncoding(Encoding::Histogram))
        );
        assert_eq!(
            Encoding::FloatHistogram.ensure_supported(),
            Err(CodecError::UnsupportedEncoding(Encoding::FloatHistogram))
        );
    }
}
