//! The chunk-encoding byte that Prometheus stores beside every chunk.
//!
//! Values are Prometheus's `chunkenc.Encoding`: 1 = XOR floats,
//! 2 = native histograms, 3 = float histograms, 4 = XOR2 floats. Each has
//! its own decoder in this crate ([`crate::xor_decode`],
//! [`crate::xor2_decode`], [`crate::histogram_decode`],
//! [`crate::float_histogram_decode`]); [`Encoding::ensure_supported`]
//! names the ones a float-sample reader can take, so readers that do not
//! handle histograms yet report a precise error.
//! Prometheus's 5 and 6 (histograms with start timestamps) are not known
//! here yet and read as unknown.

use crate::CodecError;

/// Encoding byte of XOR float chunks (Prometheus `chunkenc.EncXOR`).
pub const ENCODING_XOR: u8 = 1;
/// Encoding byte of integer native-histogram chunks (`chunkenc.EncHistogram`).
pub const ENCODING_HISTOGRAM: u8 = 2;
/// Encoding byte of float native-histogram chunks (`chunkenc.EncFloatHistogram`).
pub const ENCODING_FLOAT_HISTOGRAM: u8 = 3;
/// Encoding byte of XOR2 float chunks (Prometheus `chunkenc.EncXOR2`).
pub const ENCODING_XOR2: u8 = 4;

/// A chunk encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Encoding {
    /// Gorilla-style XOR float samples.
    Xor = ENCODING_XOR,
    /// Native histograms with integer counts ([`crate::HistogramChunk`]).
    Histogram = ENCODING_HISTOGRAM,
    /// Native histograms with float counts ([`crate::FloatHistogramChunk`]).
    FloatHistogram = ENCODING_FLOAT_HISTOGRAM,
    /// XOR with joint timestamp/value controls and optional start
    /// timestamps (decoded by [`crate::xor2_decode`], not
    /// [`crate::xor_decode`]).
    Xor2 = ENCODING_XOR2,
}

impl Encoding {
    /// The on-disk byte.
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Errors with [`CodecError::UnsupportedEncoding`] unless this is a
    /// float-sample encoding: [`Encoding::Xor`] → [`crate::xor_decode`],
    /// [`Encoding::Xor2`] → [`crate::xor2_decode`]. The histogram
    /// encodings have their own decoders and sample types
    /// ([`crate::histogram_decode`], [`crate::float_histogram_decode`])
    /// and are refused here.
    pub fn ensure_supported(self) -> Result<(), CodecError> {
        match self {
            Encoding::Xor | Encoding::Xor2 => Ok(()),
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
            ENCODING_XOR2 => Ok(Encoding::Xor2),
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
        assert_eq!(Encoding::Xor2.as_u8(), 4);
        assert_eq!(ENCODING_XOR2, 4);
        for b in 1..=4u8 {
            assert_eq!(Encoding::try_from(b).unwrap().as_u8(), b);
        }
        assert_eq!(Encoding::try_from(0), Err(CodecError::UnknownEncoding(0)));
        assert_eq!(Encoding::try_from(9), Err(CodecError::UnknownEncoding(9)));
        // Prometheus's histogram-with-start-timestamp encodings are not known yet.
        assert_eq!(Encoding::try_from(5), Err(CodecError::UnknownEncoding(5)));
        assert_eq!(Encoding::try_from(6), Err(CodecError::UnknownEncoding(6)));
    }

    #[test]
    fn histograms_are_named_unsupported() {
        assert!(Encoding::Xor.ensure_supported().is_ok());
        assert!(Encoding::Xor2.ensure_supported().is_ok());
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
