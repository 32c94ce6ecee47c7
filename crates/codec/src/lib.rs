//! Bit streams, varints, CRC32-Castagnoli and Prometheus's XOR, XOR2 and
//! native-histogram chunk encodings.
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
//! * [`Xor2Chunk`] / [`xor2_iter`]: Prometheus's newer float chunk encoding
//!   (`chunkenc.EncXOR2`, byte 4) with joint timestamp/value controls and
//!   optional start timestamps, byte-identical; [`xor2_decode`] is its bulk
//!   decoder.
//! * [`histogram`]: Prometheus's native-histogram chunks, byte-identical:
//!   [`HistogramChunk`] (`chunkenc.EncHistogram`, byte 2: integer counts,
//!   varbit delta-of-delta) and [`FloatHistogramChunk`]
//!   (`chunkenc.EncFloatHistogram`, byte 3: XOR-encoded float counts), with
//!   Prometheus's appenders (appendability, recoding to wider bucket
//!   layouts, counter-reset headers, gauges), iterators and the bulk
//!   decoders [`histogram_decode`] / [`float_histogram_decode`].
//! * [`aggr`]: the aggregate chunk (0xff) of downsampled blocks, framing
//!   five XOR sub-chunks as Thanos's `AggrChunk` does.
//! * [`dense`]: Cairn's dense chunk (0xfe) for long-term blocks: decimal
//!   values and timestamps against the scrape interval, bit-packed.
//! * [`FloatEncoding`] / [`decode_float_chunk`] / [`FloatChunkBuilder`]:
//!   one interface over the float encodings (XOR, XOR2, dense) for block
//!   readers and writers.
//! * [`Encoding`]: the chunk-encoding byte stored beside chunk data on disk.
//! * [`RangeRead`]: the interface through which index and chunk readers
//!   read a file held in object storage by byte range.

pub mod aggr;
mod bits;
mod crc;
pub mod cursor;
pub mod dense;
mod encoding;
mod error;
mod float_chunk;
pub mod histogram;
mod range_read;
pub mod varint;
mod xor;
mod xor2;
mod xor_bulk;

pub use aggr::{decode_aggr, encode_aggr, AggrKind, AggrParts, SubChunk, ENCODING_AGGR};
pub use bits::{BitReader, BitWriter};
pub use crc::{crc32c, crc32c_append};
pub use cursor::ByteCursor;
pub use dense::{
    dense_decode, dense_decode_append, dense_decode_with, dense_num_samples, dense_share,
    dense_shared_source, dense_timestamps, encode_dense, SourceLookup, ENCODING_DENSE,
};
pub use encoding::{
    Encoding, ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM, ENCODING_XOR, ENCODING_XOR2,
};
pub use error::CodecError;
pub use float_chunk::{
    decode_float_chunk, decode_float_chunk_with, float_chunk_samples, is_float_encoding,
    FloatChunkBuilder, FloatEncoding,
};
pub use histogram::{
    decode_histogram_samples, encode_float_histograms, encode_histogram_runs, encode_histograms,
    float_histogram_decode, float_histogram_iter, histogram_chunk_header, histogram_decode,
    histogram_iter, AppendOutcome, Appendable, CounterResetHeader, FloatHistogramChunk,
    FloatHistogramIterator, GaugeAppendable, HistogramChunk, HistogramIterator,
    HISTOGRAM_HEADER_LEN,
};
pub use range_read::{group_ranges, RangeRead};
pub use xor::{
    decode_all, xor_iter, XorChunk, XorIterator, INITIAL_CAPACITY as XOR_INITIAL_CAPACITY,
    MAX_SAMPLES_PER_CHUNK, MAX_SAMPLE_BYTES as XOR_MAX_SAMPLE_BYTES,
};
pub use xor2::{
    xor2_decode, xor2_decode_all, xor2_decode_st, xor2_iter, Xor2Chunk, Xor2Iterator,
    STALE_NAN_BITS, XOR2_HEADER_LEN,
};
pub use xor_bulk::{xor_decode, xor_decode_append};
