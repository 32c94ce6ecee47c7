//! Bit streams, varints, CRC32-Castagnoli and Prometheus's XOR chunk encoding.
//!
//! This crate is the lowest layer of Cairn's on-disk formats. Everything here
//! is pure computation over byte slices: no I/O, no global state.
//!
//! * [`BitWriter`] / [`BitReader`]: MSB-first bit streams, the substrate of
//!   every Gorilla-style chunk encoding.
//! * [`varint`]: Go's `encoding/binary` unsigned (LEB128) and zig-zag signed
//!   varints, byte-for-byte compatible.
//! * [`ByteCursor`] and the `put_*` functions of [`cursor`]: big-endian
//!   integers, varints and length-prefixed strings, read bounds-checked with
//!   errors that carry offsets (the index, WAL record and tombstone decoders).
//! * [`crc32c`]: the Castagnoli CRC used by every Prometheus checksum.
//! * [`XorChunk`] / [`xor_iter`]: Prometheus's float chunk encoding
//!   (`chunkenc.EncXOR`), producing byte-identical chunks; [`xor_decode`]
//!   decodes a whole chunk at once for queries.
//! * [`aggr`]: the aggregate chunk (0xff) of downsampled blocks, framing
//!   five XOR sub-chunks as Thanos's `AggrChunk` does.
//! * [`dense`]: Cairn's dense chunk (0xfe) for long-term blocks: decimal
//!   values and timestamps against the scrape interval, bit-packed.
//! * [`Encoding`]: the chunk-encoding byte stored beside chunk data on disk.

pub mod aggr;
mod bits;
mod crc;
pub mod cursor;
pub mod dense;
mod encoding;
mod error;
pub mod varint;
mod xor;
mod xor_bulk;

pub use aggr::{decode_aggr, encode_aggr, AggrKind, AggrParts, ENCODING_AGGR};
pub use bits::{BitReader, BitWriter};
pub use crc::{crc32c, crc32c_append};
pub use cursor::ByteCursor;
pub use dense::{
    dense_decode, dense_decode_append, dense_num_samples, encode_dense, ENCODING_DENSE,
};
pub use encoding::{Encoding, ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM, ENCODING_XOR};
pub use error::CodecError;
pub use xor::{decode_all, xor_iter, XorChunk, XorIterator, MAX_SAMPLES_PER_CHUNK};
pub use xor_bulk::{xor_decode, xor_decode_append};
