//! Prometheus's XOR2 float chunk (`chunkenc.EncXOR2`, encoding byte 4),
//! byte for byte.
//!
//! XOR2 is XOR's successor for float samples (opt-in in Prometheus 3.11 to
//! 3.13 through the `xor2-encoding` feature flag or the
//! `storage.tsdb.chunk_encoding.floats: xor2` setting). The full layout, with
//! diagrams, is in `docs/format/xor2.md`; in short:
//!
//! * 2 bytes big-endian sample count, then 1 start-timestamp (ST) header
//!   byte: bit 7 = the first sample carries an ST, bits 6..0 = the index of
//!   the sample from which every sample carries an ST delta (0 = none).
//! * sample 0: signed varint timestamp, 64 raw value bits, and when bit 7
//!   of the ST header is set a signed varint `t - st`.
//! * sample 1: unsigned varint timestamp delta, then the value (`0` same,
//!   `10` reuse window, `110` new window, `111` stale marker).
//! * sample n ≥ 2: one joint control for timestamp and value: `0` same
//!   delta and value; `10` same delta, new value (`0` reuse window / `1`
//!   new window); `110`+13-bit, `1110`+20-bit or `11110`+64-bit
//!   delta-of-delta followed by a value as for sample 1; `11111` same delta
//!   and the stale marker.
//! * after the timestamp and value of a sample whose index is at least the
//!   header's change index, an ST delta in Prometheus's varbit integer code.
//!
//! Values are XORed against the last value that was not the stale marker,
//! so a stale marker between two equal values costs no window change.
//!
//! [`Xor2Chunk::append`] writes samples without a start timestamp (ST 0),
//! which is what Prometheus writes for scraped floats unless ST storage is
//! on; [`Xor2Chunk::append_st`] writes one. Even without STs, Prometheus
//! writes an ST delta for every sample from index 127 on (the header's
//! 7-bit change index cannot name a later sample), and so does this
//! encoder: the output is identical for every sample sequence.
//!
//! Timestamp and ST arithmetic wraps like Go's, so any `i64` sequence
//! survives a round trip. Decoding malformed bytes gives a [`CodecError`],
//! never a panic.

mod bulk;
mod writer;

pub use bulk::{xor2_decode, xor2_decode_st};

use crate::varint;
use crate::{BitReader, CodecError};
use writer::Writer;

/// Bytes before the bit stream: the sample count and the ST header.
pub const XOR2_HEADER_LEN: usize = 3;
/// Bit pattern of Prometheus's stale marker (`value.StaleNaN`).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// ST header bit: the first sample carries a start timestamp.
const ST_FIRST_KNOWN: u8 = 0x80;
/// ST header bits: index of the first sample with a per-sample ST delta.
const ST_CHANGE_MASK: u8 = 0x7f;
/// The largest index the header's change field can hold; the sample at this
/// index always starts per-sample ST deltas if nothing started them sooner.
const MAX_ST_CHANGE_INDEX: u16 = 0x7f;
/// Leading-zero marker meaning "no window written yet".
const NO_WINDOW: u8 = 0xff;

/// An XOR2-encoded float chunk that owns its bytes and can be appended to.
#[derive(Debug, Clone, PartialEq)]
pub struct Xor2Chunk {
    w: Writer,
    num: u16,
    st: i64,
    t: i64,
    /// Bits of the last value that was not the stale marker (0 before any).
    base: u64,
    /// Bits of the last value appended, stale marker included.
    last_v: u64,
    t_delta: u64,
    /// `previous t - st` as last written (per-sample ST deltas are relative
    /// to it).
    st_diff: i64,
    /// Index of the first sample with a per-sample ST delta; 0 = none yet.
    st_change: u16,
    leading: u8,
    trailing: u8,
}

impl Default for Xor2Chunk {
    fn default() -> Self {
        Self::new()
    }
}

impl Xor2Chunk {
    /// An empty chunk (three zero header bytes).
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(128);
        buf.extend_from_slice(&[0; XOR2_HEADER_LEN]);
        Self {
            w: Writer::from_bytes(buf, 0),
            num: 0,
            st: 0,
            t: i64::MIN,
            base: 0,
            last_v: 0,
            t_delta: 0,
            st_diff: 0,
            st_change: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }

    /// Takes ownership of chunk data written by Prometheus or by
    /// [`Xor2Chunk::bytes`], decodes it fully and restores the state that
    /// appending its samples one by one to a new chunk would have left, so
    /// further appends give the bytes an uninterrupted chunk would have.
    ///
    /// Errors if a sample does not decode, if a whole byte follows the last
    /// sample, or if the padding bits of the last byte are not zero.
    pub fn from_bytes(b: Vec<u8>) -> Result<Self, CodecError> {
        let mut it = xor2_iter(&b);
        while it.next() {}
        if let Some(e) = it.err() {
            return Err(e.clone());
        }
        let used = it.r.position_bits();
        let total = b.len().saturating_sub(XOR2_HEADER_LEN) * 8;
        let free = total.saturating_sub(used);
        if free > 7 {
            return Err(CodecError::Corruption {
                what: "xor2 chunk length",
                expected: format!("{} bytes", XOR2_HEADER_LEN + used.div_ceil(8)),
                found: format!("{} bytes", b.len()),
            });
        }
        if free > 0 {
            let last = b.last().copied().unwrap_or(0);
            let pad = u64::from(last) & writer::low_mask(free as u32);
            if pad != 0 {
                return Err(CodecError::Corruption {
                    what: "xor2 chunk padding bits",
                    expected: "0".to_string(),
                    found: format!("{pad:#b}"),
                });
            }
        }
        let (leading, trailing) = if it.window {
            (it.leading, it.trailing)
        } else {
            (NO_WINDOW, 0)
        };
        let st_change = u16::from(it.st_change);
        if st_change == 0 && it.read > MAX_ST_CHANGE_INDEX {
            // A writer starts per-sample start-timestamp deltas at sample
            // MAX_ST_CHANGE_INDEX at the latest: a longer chunk without a
            // change index is not a writer's, and appending to it would
            // name a sample the header cannot hold.
            return Err(CodecError::Corruption {
                what: "xor2 start timestamp header",
                expected: format!(
                    "a change index in a chunk of more than {MAX_ST_CHANGE_INDEX} samples"
                ),
                found: format!("none in {} samples", it.read),
            });
        }
        if st_change > 0 && it.read <= st_change {
            // The index is written with the sample it names: a header that
            // names a sample the chunk does not have is not a writer's.
            return Err(CodecError::Corruption {
                what: "xor2 start timestamp header",
                expected: format!("a change index below the sample count {}", it.read),
                found: st_change.to_string(),
            });
        }
        Ok(Self {
            num: it.read,
            st: it.st,
            t: if it.read == 0 { i64::MIN } else { it.t },
            base: it.base,
            last_v: it.val.to_bits(),
            t_delta: it.t_delta,
            st_diff: it.st_diff,
            st_change,
            leading,
            trailing,
            w: Writer::from_bytes(b, free as u32),
        })
    }

    /// Appends a sample without a start timestamp. Timestamps must be
    /// strictly increasing (not checked). A chunk holds at most
    /// [`crate::MAX_SAMPLES_PER_CHUNK`] samples; appends beyond that are
    /// dropped (use [`Xor2Chunk::try_append`] to be told).
    pub fn append(&mut self, t: i64, v: f64) {
        let _ = self.try_append_st(0, t, v);
    }

    /// Like [`Xor2Chunk::append`] but reports a full chunk.
    pub fn try_append(&mut self, t: i64, v: f64) -> Result<(), CodecError> {
        self.try_append_st(0, t, v)
    }

    /// Appends a sample with start timestamp `st` (0 = unknown), as
    /// Prometheus's `Append(st, t, v)`.
    pub fn append_st(&mut self, st: i64, t: i64, v: f64) {
        let _ = self.try_append_st(st, t, v);
    }

    /// Like [`Xor2Chunk::append_st`] but reports a full chunk.
    pub fn try_append_st(&mut self, st: i64, t: i64, v: f64) -> Result<(), CodecError> {
        if self.num == u16::MAX {
            return Err(CodecError::ChunkFull {
                max: crate::MAX_SAMPLES_PER_CHUNK,
            });
        }
        let bits = v.to_bits();
        let mut t_delta = 0u64;
        match self.num {
            0 => {
                self.write_varint_bytes(|buf| varint::put_varint(buf, t));
                self.w.write_bits(bits, 64);
                if st != 0 {
                    self.write_varint_bytes(|buf| varint::put_varint(buf, t.wrapping_sub(st)));
                    self.set_st_header(ST_FIRST_KNOWN);
                }
                self.st_diff = 0;
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                self.write_varint_bytes(|buf| varint::put_uvarint(buf, t_delta));
                self.write_value(bits);
                self.st_diff = 0;
                if st != self.st {
                    self.start_st_deltas(1, self.t.wrapping_sub(st));
                }
            }
            n => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                self.write_joint(dod, bits);
                let st_diff = self.t.wrapping_sub(st);
                if self.st_change > 0 {
                    put_varbit(&mut self.w, st_diff.wrapping_sub(self.st_diff));
                    self.st_diff = st_diff;
                } else if st != self.st || n == MAX_ST_CHANGE_INDEX {
                    self.start_st_deltas(n, st_diff);
                }
            }
        }
        self.st = st;
        self.t = t;
        if bits != STALE_NAN_BITS {
            self.base = bits;
        }
        self.last_v = bits;
        self.t_delta = t_delta;
        self.num += 1;
        if let Some(h) = self.w.bytes_mut().get_mut(..2) {
            h.copy_from_slice(&self.num.to_be_bytes());
        }
        Ok(())
    }

    /// Marks sample `n` as the first with a per-sample ST delta and writes
    /// its delta, `previous t - st`, in full.
    fn start_st_deltas(&mut self, n: u16, st_diff: i64) {
        self.st_change = n;
        // `n` is at most MAX_ST_CHANGE_INDEX here.
        self.set_st_header((n as u8) & ST_CHANGE_MASK);
        put_varbit(&mut self.w, st_diff);
        self.st_diff = st_diff;
    }

    fn set_st_header(&mut self, bits: u8) {
        if let Some(h) = self.w.bytes_mut().get_mut(2) {
            *h |= bits;
        }
    }

    fn write_varint_bytes(&mut self, put: impl FnOnce(&mut Vec<u8>) -> usize) {
        let mut buf = Vec::with_capacity(varint::MAX_VARINT_LEN64);
        put(&mut buf);
        for b in buf {
            self.w.write_bits(u64::from(b), 8);
        }
    }

    /// The joint control of samples n ≥ 2 and the value that follows it.
    fn write_joint(&mut self, dod: i64, bits: u64) {
        if dod == 0 {
            if bits == STALE_NAN_BITS {
                self.w.write_bits(0b11111, 5);
                return;
            }
            let delta = bits ^ self.base;
            if delta == 0 {
                self.w.write_bit(false);
                return;
            }
            self.w.write_bits(0b10, 2);
            // Window control: `0` reuse, `1` new.
            self.write_window(delta, (0, 1), (1, 1));
            return;
        }
        let d = dod as u64;
        if (-(1i64 << 12)..(1i64 << 12)).contains(&dod) {
            self.w.write_bits((0b110 << 13) | (d & 0x1fff), 16);
        } else if (-(1i64 << 19)..(1i64 << 19)).contains(&dod) {
            self.w.write_bits((0b1110 << 20) | (d & 0xf_ffff), 24);
        } else {
            self.w.write_bits(0b11110, 5);
            self.w.write_bits(d, 64);
        }
        self.write_value(bits);
    }

    /// A value after an explicit timestamp: `0` same, `10` reuse window,
    /// `110` new window, `111` stale marker.
    fn write_value(&mut self, bits: u64) {
        if bits == STALE_NAN_BITS {
            self.w.write_bits(0b111, 3);
            return;
        }
        let delta = bits ^ self.base;
        if delta == 0 {
            self.w.write_bit(false);
            return;
        }
        self.write_window(delta, (0b10, 2), (0b110, 3));
    }

    /// The XOR `delta` (non-zero) in the current leading/trailing-zero
    /// window if it fits, after `reuse` (bits, length); else a new window
    /// after `new`: 5-bit leading zeros (clamped to 31), 6-bit significant
    /// bit count (64 stored as 0), the significant bits.
    fn write_window(&mut self, delta: u64, reuse: (u64, u32), new: (u64, u32)) {
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bits(reuse.0, reuse.1);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w.write_bits(
                delta.checked_shr(u32::from(self.trailing)).unwrap_or(0),
                sig,
            );
            return;
        }
        self.leading = leading;
        self.trailing = trailing;
        self.w.write_bits(new.0, new.1);
        self.w.write_bits(u64::from(leading), 5);
        let sig = 64 - u32::from(leading) - u32::from(trailing);
        self.w.write_bits(u64::from(sig), 6);
        self.w
            .write_bits(delta.checked_shr(u32::from(trailing)).unwrap_or(0), sig);
    }

    /// Exactly the bytes Prometheus stores as this chunk's data.
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Gives up the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// The most recently appended sample, if any.
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.num > 0).then(|| (self.t, f64::from_bits(self.last_v)))
    }

    /// Iterates the chunk's samples.
    pub fn iter(&self) -> Xor2Iterator<'_> {
        xor2_iter(self.bytes())
    }
}

/// Whether `x` fits the `n`-bit bucket of the varbit integer code:
/// `-(2^(n-1) - 1) ..= 2^(n-1)`, Prometheus's asymmetric range.
#[inline]
fn fits(x: i64, n: u32) -> bool {
    let half = 1i64 << (n - 1);
    -(half - 1) <= x && x <= half
}

/// Prometheus's varbit signed integer (`putVarbitInt`): a unary bucket
/// prefix of up to eight 1 bits, then the value in the bucket's width.
fn put_varbit(w: &mut Writer, x: i64) {
    let u = x as u64;
    if x == 0 {
        w.write_bit(false);
        return;
    }
    for (prefix, plen, width) in VARBIT_BUCKETS {
        if fits(x, width) {
            w.write_bits(prefix, plen);
            w.write_bits(u, width);
            return;
        }
    }
    w.write_bits(0xff, 8);
    w.write_bits(u, 64);
}

/// (prefix, prefix length, value width) of the varbit buckets after `0`.
const VARBIT_BUCKETS: [(u64, u32, u32); 7] = [
    (0b10, 2, 3),
    (0b110, 3, 6),
    (0b1110, 4, 9),
    (0b11110, 5, 12),
    (0b111110, 6, 18),
    (0b1111110, 7, 25),
    (0b1111_1110, 8, 56),
];

/// The value width of the varbit bucket with `ones` leading 1 bits (0..=8).
#[inline]
fn varbit_width(ones: u32) -> u32 {
    match ones {
        0 => 0,
        1 => 3,
        2 => 6,
        3 => 9,
        4 => 12,
        5 => 18,
        6 => 25,
        7 => 56,
        _ => 64,
    }
}

/// A `width`-bit varbit payload as a signed value: above `2^(width-1)` is
/// negative (the 64-bit bucket is plain two's complement).
#[inline]
fn varbit_signed(bits: u64, width: u32) -> i64 {
    if width > 0 && width < 64 && bits > 1u64 << (width - 1) {
        bits.wrapping_sub(1u64 << width) as i64
    } else {
        bits as i64
    }
}

/// A `width`-bit two's-complement delta-of-delta as a signed value.
#[inline]
fn dod_signed(bits: u64, width: u32) -> i64 {
    if width < 64 && bits >= 1u64 << (width - 1) {
        bits.wrapping_sub(1u64 << width) as i64
    } else {
        bits as i64
    }
}

/// The sample count and ST header of chunk data, and the bit stream after
/// them.
fn split_header(data: &[u8]) -> Result<(u16, u8, &[u8]), CodecError> {
    match data {
        [a, b, st, rest @ ..] => Ok((u16::from_be_bytes([*a, *b]), *st, rest)),
        _ => Err(CodecError::UnexpectedEof {
            what: "xor2 chunk header",
            bit_offset: data.len() * 8,
        }),
    }
}

/// Iterates borrowed (e.g. mmapped) XOR2 chunk data without copying it.
pub fn xor2_iter(data: &[u8]) -> Xor2Iterator<'_> {
    let (total, st_header, body, err) = match split_header(data) {
        Ok((n, h, body)) => (n, h, body, None),
        Err(e) => (0, 0, &[][..], Some(e)),
    };
    Xor2Iterator {
        r: BitReader::new(body),
        total,
        read: 0,
        st_first_known: st_header & ST_FIRST_KNOWN != 0,
        st_change: st_header & ST_CHANGE_MASK,
        st: 0,
        t: 0,
        val: 0.0,
        base: 0,
        t_delta: 0,
        st_diff: 0,
        leading: 0,
        trailing: 0,
        window: false,
        err,
    }
}

/// Cursor over the samples of an XOR2 chunk.
///
/// Call [`Xor2Iterator::next`] before the first [`Xor2Iterator::at`]. After
/// `next` returns false, [`Xor2Iterator::err`] tells a clean end from
/// corrupt data; the iterator then stays exhausted. Error offsets count
/// bits from the start of the chunk data (header included).
#[derive(Debug, Clone)]
pub struct Xor2Iterator<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    st_first_known: bool,
    st_change: u8,
    st: i64,
    t: i64,
    val: f64,
    /// Bits of the last value that was not the stale marker.
    base: u64,
    t_delta: u64,
    st_diff: i64,
    leading: u8,
    trailing: u8,
    /// Whether a leading/trailing window was read.
    window: bool,
    err: Option<CodecError>,
}

impl Xor2Iterator<'_> {
    /// Advances to the next sample; false at the end or on error.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> bool {
        if self.err.is_some() || self.read == self.total {
            return false;
        }
        match self.step() {
            Ok(()) => {
                self.read += 1;
                true
            }
            Err(e) => {
                self.err = Some(e.offset_by(XOR2_HEADER_LEN));
                false
            }
        }
    }

    /// Advances to the first sample with timestamp `>= t` (staying put if the
    /// current one already qualifies); never moves backwards. False if there
    /// is none or on error.
    pub fn seek(&mut self, t: i64) -> bool {
        if self.err.is_some() {
            return false;
        }
        while self.read == 0 || self.t < t {
            if !self.next() {
                return false;
            }
        }
        true
    }

    /// The current sample.
    pub fn at(&self) -> (i64, f64) {
        (self.t, self.val)
    }

    /// The current sample's start timestamp (0 when the chunk has none).
    pub fn at_st(&self) -> i64 {
        self.st
    }

    /// The error that stopped iteration, if any.
    pub fn err(&self) -> Option<&CodecError> {
        self.err.as_ref()
    }

    /// Whether the current sample is the last one the header announces.
    pub fn at_last(&self) -> bool {
        self.read == self.total && self.err.is_none()
    }

    /// The number of samples the chunk header announces.
    pub fn num_samples(&self) -> usize {
        usize::from(self.total)
    }

    fn step(&mut self) -> Result<(), CodecError> {
        let n = self.read;
        let prev_t = self.t;
        match n {
            0 => {
                let t = self
                    .r
                    .read_varint()
                    .map_err(|e| what(e, "xor2 first timestamp"))?;
                let v = self
                    .r
                    .read_bits(64)
                    .map_err(|e| what(e, "xor2 first value"))?;
                self.t = t;
                self.val = f64::from_bits(v);
                if v != STALE_NAN_BITS {
                    self.base = v;
                }
                if self.st_first_known {
                    let d = self
                        .r
                        .read_varint()
                        .map_err(|e| what(e, "xor2 first start timestamp"))?;
                    self.st = t.wrapping_sub(d);
                }
                return Ok(());
            }
            1 => {
                let d = self
                    .r
                    .read_uvarint()
                    .map_err(|e| what(e, "xor2 timestamp delta"))?;
                self.t_delta = d;
                self.t = self.t.wrapping_add(d as i64);
                self.read_value()?;
            }
            _ => {
                let mut ones = 0u32;
                while ones < 5 {
                    if !self.r.read_bit().map_err(|e| what(e, "xor2 control"))? {
                        break;
                    }
                    ones += 1;
                }
                match ones {
                    0 => self.same_delta(None),
                    1 => {
                        self.same_delta(None);
                        if self
                            .r
                            .read_bit()
                            .map_err(|e| what(e, "xor2 value control"))?
                        {
                            self.read_new_window()?;
                        } else {
                            self.read_same_window()?;
                        }
                    }
                    2..=4 => {
                        let width = match ones {
                            2 => 13,
                            3 => 20,
                            _ => 64,
                        };
                        let b = self
                            .r
                            .read_bits(width)
                            .map_err(|e| what(e, "xor2 timestamp delta-of-delta"))?;
                        let dod = dod_signed(b, width);
                        self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
                        self.t = self.t.wrapping_add(self.t_delta as i64);
                        self.read_value()?;
                    }
                    _ => self.same_delta(Some(STALE_NAN_BITS)),
                }
            }
        }
        if self.st_change > 0 && n >= u16::from(self.st_change) {
            let d = read_varbit(&mut self.r).map_err(|e| what(e, "xor2 start timestamp delta"))?;
            if n == u16::from(self.st_change) {
                self.st_diff = d;
            } else {
                self.st_diff = self.st_diff.wrapping_add(d);
            }
            self.st = prev_t.wrapping_sub(self.st_diff);
        }
        Ok(())
    }

    /// Timestamp with an unchanged delta; the value is `v`, or the baseline.
    fn same_delta(&mut self, v: Option<u64>) {
        self.t = self.t.wrapping_add(self.t_delta as i64);
        self.val = f64::from_bits(v.unwrap_or(self.base));
    }

    /// `0` same, `10` reuse window, `110` new window, `111` stale marker.
    fn read_value(&mut self) -> Result<(), CodecError> {
        let ctl = |e| what(e, "xor2 value control");
        if !self.r.read_bit().map_err(ctl)? {
            self.val = f64::from_bits(self.base);
            return Ok(());
        }
        if !self.r.read_bit().map_err(ctl)? {
            return self.read_same_window();
        }
        if !self.r.read_bit().map_err(ctl)? {
            return self.read_new_window();
        }
        self.val = f64::from_bits(STALE_NAN_BITS);
        Ok(())
    }

    fn read_same_window(&mut self) -> Result<(), CodecError> {
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self
            .r
            .read_bits(sig)
            .map_err(|e| what(e, "xor2 value bits"))?;
        self.apply(bits);
        Ok(())
    }

    fn read_new_window(&mut self) -> Result<(), CodecError> {
        let hdr = self
            .r
            .read_bits(11)
            .map_err(|e| what(e, "xor2 value window"))?;
        let leading = (hdr >> 6) as u8;
        let mut sig = (hdr & 0x3f) as u8;
        if sig == 0 {
            sig = 64;
        }
        if u32::from(leading) + u32::from(sig) > 64 {
            return Err(CodecError::Corruption {
                what: "xor2 value window",
                expected: "leading + significant bits <= 64".to_string(),
                found: format!("{leading} + {sig}"),
            });
        }
        self.leading = leading;
        self.trailing = 64 - leading - sig;
        self.window = true;
        self.read_same_window()
    }

    fn apply(&mut self, bits: u64) {
        let shifted = bits.checked_shl(u32::from(self.trailing)).unwrap_or(0);
        self.base ^= shifted;
        self.val = f64::from_bits(self.base);
    }
}

/// Names what was being read in an end-of-data error.
fn what(e: CodecError, what: &'static str) -> CodecError {
    match e {
        CodecError::UnexpectedEof { bit_offset, .. } => {
            CodecError::UnexpectedEof { what, bit_offset }
        }
        other => other,
    }
}

/// Reads a varbit signed integer (see [`put_varbit`]).
fn read_varbit(r: &mut BitReader<'_>) -> Result<i64, CodecError> {
    let mut ones = 0u32;
    while ones < 8 {
        if !r.read_bit()? {
            break;
        }
        ones += 1;
    }
    let width = varbit_width(ones);
    let bits = r.read_bits(width)?;
    Ok(varbit_signed(bits, width))
}

/// Decodes every sample of XOR2 chunk data, or the first error.
pub fn xor2_decode_all(data: &[u8]) -> Result<Vec<(i64, f64)>, CodecError> {
    let mut it = xor2_iter(data);
    let mut out = Vec::with_capacity(it.num_samples().min(1024));
    while it.next() {
        out.push(it.at());
    }
    match it.err() {
        Some(e) => Err(e.clone()),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varbit_round_trip(x: i64) -> (Vec<u8>, i64) {
        let mut w = Writer::default();
        put_varbit(&mut w, x);
        let bytes = w.into_bytes();
        let mut r = BitReader::new(&bytes);
        let got = read_varbit(&mut r).unwrap();
        (bytes, got)
    }

    #[test]
    fn varbit_bucket_edges() {
        for x in [
            0,
            1,
            -1,
            4,
            -3,
            5,
            -4,
            32,
            -31,
            33,
            256,
            -255,
            257,
            2048,
            -2047,
            2049,
            131_072,
            -131_071,
            16_777_216,
            -16_777_215,
            1 << 55,
            -(1 << 55) + 1,
            (1 << 55) + 1,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(varbit_round_trip(x).1, x, "{x}");
        }
        assert_eq!(varbit_round_trip(0).0, [0x00]);
        // 4 → `10` + 100.
        assert_eq!(varbit_round_trip(4).0, [0b1010_0000]);
        // -3 → `10` + 101.
        assert_eq!(varbit_round_trip(-3).0, [0b1010_1000]);
        // 5 → `110` + 000101.
        assert_eq!(varbit_round_trip(5).0, [0b1100_0010, 0b1000_0000]);
    }

    #[test]
    fn dod_buckets_are_twos_complement() {
        assert_eq!(dod_signed(0x1000, 13), -4096);
        assert_eq!(dod_signed(0x0fff, 13), 4095);
        assert_eq!(dod_signed(0x8_0000, 20), -(1 << 19));
        assert_eq!(dod_signed(u64::MAX, 64), -1);
    }

    #[test]
    fn header_shorter_than_three_bytes_is_error() {
        for data in [&[][..], &[0], &[0, 0]] {
            let mut it = xor2_iter(data);
            assert!(!it.next());
            assert!(matches!(it.err(), Some(CodecError::UnexpectedEof { .. })));
        }
    }
}
