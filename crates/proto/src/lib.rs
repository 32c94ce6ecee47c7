//! Wire types for Prometheus's remote storage protocols, hand-written as
//! `prost` messages so that no `protoc` is needed at build time.
//!
//! - [`write`]: remote write 1.0 (`prometheus.WriteRequest`).
//! - [`write_v2`]: remote write 2.0 (`io.prometheus.write.v2.Request`), whose
//!   strings live once in a symbol table and are referenced by index.
//! - [`read`]: remote read requests and both response kinds (`SAMPLES` and
//!   `STREAMED_XOR_CHUNKS`).
//! - [`otlp`]: OpenTelemetry's OTLP metrics export request (the receiver's
//!   subset).
//! - [`frame`]: the length + CRC32C framing of streamed read responses.
//! - [`snappy`]: block-format snappy with a decompressed-size limit checked
//!   before any allocation.
//!
//! Field numbers follow Prometheus's `prompb` schemas; `proto/*.md` in the
//! repository root describes them. Strings that arrive from senders (label
//! names and values, v2 symbols) are decoded as `bytes::Bytes` so that
//! decoding from a `Bytes` buffer slices it instead of copying, and so that
//! invalid UTF-8 refuses one series rather than the whole request; callers
//! check UTF-8 with [`utf8`].

mod error;
pub mod exposition;
pub mod frame;
pub mod histogram;
pub mod otlp;
pub mod read;
pub mod snappy;
pub mod write;
pub mod write_v2;

pub use error::ProtoError;
pub use prost::Message;

/// Result alias for this crate.
pub type Result<T, E = ProtoError> = std::result::Result<T, E>;

/// Checks that wire bytes hold UTF-8 and borrows them as `&str`.
pub fn utf8(b: &[u8]) -> Result<&str> {
    std::str::from_utf8(b).map_err(|e| ProtoError::InvalidUtf8 {
        valid_up_to: e.valid_up_to(),
    })
}
