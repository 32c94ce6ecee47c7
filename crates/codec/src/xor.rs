//! Prometheus's XOR float chunk (`chunkenc.EncXOR`), byte for byte.
//!
//! Layout of a chunk's data (what Prometheus stores as the chunk bytes):
//!
//! * 2 bytes: big-endian sample count.
//! * sample 0: signed varint timestamp, then the raw 64 value bits.
//! * sample 1: unsigned varint of the timestamp delta, then the value XOR.
//! * sample n ≥ 2: delta-of-delta of the timestamp in a prefix-coded bucket
//!   (`0` = 0; `10`+14 bits; `110`+17 bits; `1110`+20 bits; `1111`+64 bits),
//!   then the value XOR.
//! * value XOR against the previous value: `0` = unchanged; `10` = reuse the
//!   previous leading/trailing-zero window; `11` + 5-bit leading-zero count
//!   (clamped to 31) + 6-bit significant-bit count (64 stored as 0) + bits.
//!
//! All timestamp arithmetic wraps like Go's, so any `i64` sequence survives
//! a round trip. Callers must append strictly increasing timestamps for the
//! chunk to be meaningful to queries; the codec itself does not check.
//!
//! [`XorChunk::from_bytes`] restores the exact encoder state that
//! uninterrupted appending would have had (including the bit position inside
//! the last byte and whether a leading/trailing window exists yet), so a chunk
//! that is reloaded and appended to is byte-identical to one that never left
//! memory.

use crate::{BitReader, BitWriter, CodecError};

/// A chunk header counts samples in a `u16`.
pub const MAX_SAMPLES_PER_CHUNK: usize = u16::MAX as usize;

const HEADER_LEN: usize = 2;
/// Leading-zero marker meaning "no window written yet".
const NO_WINDOW: u8 = 0xff;

/// An XOR-encoded float chunk that owns its bytes and can be appended to.
#[derive(Debug, Clone, PartialEq)]
pub struct XorChunk {
    w: BitWriter,
    num: u16,
    t: i64,
    v: u64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    /// Bytes taken off the front by [`XorChunk::drain_front`] (kept
    /// elsewhere by the owner); the buffer holds the rest.
    drained: u32,
}

/// The most bytes one appended sample can take: a 10-byte varint or a
/// 68-bit delta of delta for the timestamp, and 2 + 64 bits or
/// 2 + 5 + 6 + 64 bits for the value.
pub const MAX_SAMPLE_BYTES: usize = 20;

/// Bytes a new chunk's buffer starts with.
pub const INITIAL_CAPACITY: usize = 128;

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// An empty chunk (two zero header bytes). The buffer starts at 128
    /// bytes and grows by an eighth at a time (see
    /// [`BitWriter::reserve_slack`]), not by doubling: the head keeps one
    /// open chunk per series, so slack is multiplied by millions.
    pub fn new() -> Self {
        Self::with_capacity(INITIAL_CAPACITY)
    }

    /// An empty chunk whose buffer starts at `cap` bytes (at least the two
    /// header bytes).
    pub fn with_capacity(cap: usize) -> Self {
        let mut buf = Vec::with_capacity(cap.max(HEADER_LEN));
        buf.extend_from_slice(&[0, 0]);
        Self {
            w: BitWriter::from_bytes(buf, 0),
            num: 0,
            t: i64::MIN,
            v: 0,
            t_delta: 0,
            leading: NO_WINDOW,
            trailing: 0,
            drained: 0,
        }
    }

    /// Takes ownership of chunk data written by Prometheus or by
    /// [`XorChunk::bytes`], decodes it fully and restores the append state.
    ///
    /// Errors if a sample does not decode, if whole bytes follow the last
    /// sample, or if the padding bits of the last byte are not zero (no
    /// correct writer produces either).
    pub fn from_bytes(b: Vec<u8>) -> Result<Self, CodecError> {
        let mut it = xor_iter(&b);
        while it.next() {}
        if let Some(e) = it.err() {
            return Err(e.clone());
        }
        let used = it.r.position_bits();
        let total = b.len().saturating_sub(HEADER_LEN) * 8;
        let free = total - used;
        // Prometheus's writer can leave one wholly unused byte (see
        // `BitWriter`), so up to 8 trailing bits are padding.
        if free > 8 {
            return Err(CodecError::Corruption {
                what: "xor chunk length",
                expected: format!("at most {} bytes", HEADER_LEN + used / 8 + 1),
                found: format!("{} bytes", b.len()),
            });
        }
        if free > 0 {
            let last = b.last().copied().unwrap_or(0);
            let pad = ((u16::from(last)) & ((1u16 << free) - 1)) as u8;
            if pad != 0 {
                return Err(CodecError::Corruption {
                    what: "xor chunk padding bits",
                    expected: "0".to_string(),
                    found: format!("{pad:#b}"),
                });
            }
        }
        let (num, t, v, t_delta) = (it.read, it.t, it.val.to_bits(), it.t_delta);
        let (leading, trailing) = if it.window {
            (it.leading, it.trailing)
        } else {
            (NO_WINDOW, 0)
        };
        Ok(Self {
            w: BitWriter::from_bytes(b, free as u32),
            num,
            t,
            v,
            t_delta,
            leading,
            trailing,
            drained: 0,
        })
    }

    /// Appends a sample. Timestamps must be strictly increasing (not checked).
    /// A chunk holds at most [`MAX_SAMPLES_PER_CHUNK`] samples; appends beyond
    /// that are dropped (use [`XorChunk::try_append`] to be told).
    pub fn append(&mut self, t: i64, v: f64) {
        let _ = self.try_append(t, v);
    }

    /// Like [`XorChunk::append`] but reports a full chunk.
    pub fn try_append(&mut self, t: i64, v: f64) -> Result<(), CodecError> {
        if self.num == u16::MAX {
            return Err(CodecError::ChunkFull {
                max: MAX_SAMPLES_PER_CHUNK,
            });
        }
        self.w.reserve_slack(MAX_SAMPLE_BYTES);
        let mut t_delta = 0u64;
        match self.num {
            0 => {
                // Zig-zag, as `varint::put_varint` writes it.
                self.write_uvarint(((t << 1) ^ (t >> 63)) as u64);
                self.w.write_bits(v.to_bits(), 64);
            }
            1 => {
                t_delta = t.wrapping_sub(self.t) as u64;
                self.write_uvarint(t_delta);
                self.write_value(v);
            }
            _ => {
                t_delta = t.wrapping_sub(self.t) as u64;
                let dod = t_delta.wrapping_sub(self.t_delta) as i64;
                if dod == 0 {
                    self.w.write_bit(false);
                } else if fits(dod, 14) {
                    self.w.write_bits(0b10, 2);
                    self.w.write_bits(dod as u64, 14);
                } else if fits(dod, 17) {
                    self.w.write_bits(0b110, 3);
                    self.w.write_bits(dod as u64, 17);
                } else if fits(dod, 20) {
                    self.w.write_bits(0b1110, 4);
                    self.w.write_bits(dod as u64, 20);
                } else {
                    self.w.write_bits(0b1111, 4);
                    self.w.write_bits(dod as u64, 64);
                }
                self.write_value(v);
            }
        }
        self.t = t;
        self.v = v.to_bits();
        self.t_delta = t_delta;
        self.num += 1;
        if self.drained == 0 {
            if let Some(h) = self.w.bytes_mut().get_mut(..HEADER_LEN) {
                h.copy_from_slice(&self.num.to_be_bytes());
            }
        }
        Ok(())
    }

    fn write_value(&mut self, v: f64) {
        let delta = v.to_bits() ^ self.v;
        if delta == 0 {
            self.w.write_bit(false);
            return;
        }
        self.w.write_bit(true);
        // The leading count has 5 bits on disk, so it is clamped to 31.
        let leading = (delta.leading_zeros() as u8).min(31);
        let trailing = delta.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && leading >= self.leading && trailing >= self.trailing {
            self.w.write_bit(false);
            let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
            self.w.write_bits(delta >> self.trailing, sig);
        } else {
            self.leading = leading;
            self.trailing = trailing;
            self.w.write_bit(true);
            self.w.write_bits(u64::from(leading), 5);
            // 64 significant bits are stored as 0 in the 6-bit field.
            let sig = 64 - u32::from(leading) - u32::from(trailing);
            self.w.write_bits(u64::from(sig), 6);
            self.w.write_bits(delta >> trailing, sig);
        }
    }

    /// Writes `x` as a uvarint, byte by byte (no temporary buffer: a chunk
    /// start is on the append path).
    fn write_uvarint(&mut self, mut x: u64) {
        while x >= 0x80 {
            self.w.write_byte((x as u8) | 0x80);
            x >>= 7;
        }
        self.w.write_byte(x as u8);
    }

    /// Exactly the bytes Prometheus stores as this chunk's data, as long
    /// as nothing was drained; after [`XorChunk::drain_front`], the bytes
    /// that follow the drained ones (see [`XorChunk::join`]).
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Bytes taken off the front so far.
    pub fn drained(&self) -> usize {
        self.drained as usize
    }

    /// How many bytes at the front of [`XorChunk::bytes`] no later append
    /// changes (all but the last byte, which may be partial), except the
    /// two header bytes, which [`XorChunk::join`] rewrites.
    pub fn settled(&self) -> usize {
        self.w.bytes().len().saturating_sub(1)
    }

    /// Forgets the first `n` bytes of [`XorChunk::bytes`] (at most
    /// [`XorChunk::settled`]; more is clamped), which the caller keeps
    /// elsewhere: an open chunk's owner moves its settled prefix out of
    /// memory this way and appends go on into the same buffer, which keeps
    /// its capacity.
    pub fn drain_front(&mut self, n: usize) {
        let n = n.min(self.settled());
        self.w.drain_front(n);
        self.drained = self.drained.saturating_add(n as u32);
    }

    /// Lowers the buffer's capacity to at least `cap` (and its length), e.g.
    /// after [`XorChunk::drain_front`] emptied a large buffer.
    pub fn shrink_to(&mut self, cap: usize) {
        self.w.shrink_to(cap);
    }

    /// Completes the whole chunk's bytes in `out`, which holds the
    /// [`XorChunk::drained`] bytes the owner kept: appends the buffer and
    /// writes the sample count into the header.
    pub fn join(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.w.bytes());
        if let Some(h) = out.get_mut(..HEADER_LEN) {
            h.copy_from_slice(&self.num.to_be_bytes());
        }
    }

    /// Gives up the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }

    /// Number of samples in the chunk.
    pub fn num_samples(&self) -> usize {
        usize::from(self.num)
    }

    /// Bytes allocated for the chunk's buffer (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.w.capacity()
    }

    /// The most recently appended sample, if any.
    pub fn last(&self) -> Option<(i64, f64)> {
        (self.num > 0).then(|| (self.t, f64::from_bits(self.v)))
    }

    /// Iterates the chunk's samples (those of [`XorChunk::bytes`]: a chunk
    /// with a drained front must be [`XorChunk::join`]ed first).
    pub fn iter(&self) -> XorIterator<'_> {
        xor_iter(self.bytes())
    }
}

/// Whether `x` fits the `nbits` delta-of-delta bucket. The range is
/// asymmetric, `-(2^(n-1) - 1) ..= 2^(n-1)`, exactly as Prometheus's writer.
#[inline]
fn fits(x: i64, nbits: u32) -> bool {
    let half = 1i64 << (nbits - 1);
    -(half - 1) <= x && x <= half
}

/// Iterates borrowed (e.g. mmapped) XOR chunk data without copying it.
pub fn xor_iter(data: &[u8]) -> XorIterator<'_> {
    let (total, body, err) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]), rest, None),
        _ => (
            0,
            &[][..],
            Some(CodecError::UnexpectedEof {
                what: "xor chunk header",
                bit_offset: data.len() * 8,
            }),
        ),
    };
    XorIterator {
        r: BitReader::new(body),
        total,
        read: 0,
        t: i64::MIN,
        val: 0.0,
        t_delta: 0,
        leading: 0,
        trailing: 0,
        window: false,
        err,
    }
}

/// Cursor over the samples of an XOR chunk.
///
/// Call [`XorIterator::next`] before the first [`XorIterator::at`]. After
/// `next` returns false, [`XorIterator::err`] tells a clean end from corrupt
/// data; the iterator then stays exhausted.
#[derive(Debug, Clone)]
pub struct XorIterator<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    val: f64,
    t_delta: u64,
    leading: u8,
    trailing: u8,
    /// Whether a leading/trailing window was read (a `11` control).
    window: bool,
    err: Option<CodecError>,
}

impl XorIterator<'_> {
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
                self.err = Some(e);
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

    /// The error that stopped iteration, if any.
    pub fn err(&self) -> Option<&CodecError> {
        self.err.as_ref()
    }

    /// Whether the current sample is the last one the header announces
    /// (the next `next` returns false without reading anything).
    pub fn at_last(&self) -> bool {
        self.read == self.total && self.err.is_none()
    }

    /// The number of samples the chunk header announces.
    pub fn num_samples(&self) -> usize {
        usize::from(self.total)
    }

    fn step(&mut self) -> Result<(), CodecError> {
        match self.read {
            0 => {
                let t = self.r.read_varint()?;
                let v = self.r.read_bits(64)?;
                self.t = t;
                self.val = f64::from_bits(v);
                Ok(())
            }
            1 => {
                let d = self.r.read_uvarint()?;
                self.t_delta = d;
                self.t = self.t.wrapping_add(d as i64);
                self.read_value()
            }
            _ => {
                let mut prefix = 0u8;
                for _ in 0..4 {
                    prefix <<= 1;
                    if !self.r.read_bit()? {
                        break;
                    }
                    prefix |= 1;
                }
                let dod = match prefix {
                    0b0 => 0,
                    0b10 => self.read_signed(14)?,
                    0b110 => self.read_signed(17)?,
                    0b1110 => self.read_signed(20)?,
                    _ => self.r.read_bits(64)? as i64,
                };
                self.t_delta = (self.t_delta as i64).wrapping_add(dod) as u64;
                self.t = self.t.wrapping_add(self.t_delta as i64);
                self.read_value()
            }
        }
    }

    /// Reads an `n`-bit bucket value; values above `2^(n-1)` are negative.
    fn read_signed(&mut self, n: u32) -> Result<i64, CodecError> {
        let mut bits = self.r.read_bits(n)?;
        if bits > 1u64 << (n - 1) {
            bits = bits.wrapping_sub(1u64 << n);
        }
        Ok(bits as i64)
    }

    fn read_value(&mut self) -> Result<(), CodecError> {
        if !self.r.read_bit()? {
            return Ok(());
        }
        if self.r.read_bit()? {
            let leading = self.r.read_bits(5)? as u8;
            let mut sig = self.r.read_bits(6)? as u8;
            if sig == 0 {
                sig = 64;
            }
            if u32::from(leading) + u32::from(sig) > 64 {
                return Err(CodecError::Corruption {
                    what: "xor value window",
                    expected: "leading + significant bits <= 64".to_string(),
                    found: format!("{leading} + {sig}"),
                });
            }
            self.leading = leading;
            self.trailing = 64 - leading - sig;
            self.window = true;
        }
        let sig = 64 - u32::from(self.leading) - u32::from(self.trailing);
        let bits = self.r.read_bits(sig)?;
        let shifted = bits.checked_shl(u32::from(self.trailing)).unwrap_or(0);
        self.val = f64::from_bits(self.val.to_bits() ^ shifted);
        Ok(())
    }
}

/// Decodes every sample of XOR chunk data, or the first error.
pub fn decode_all(data: &[u8]) -> Result<Vec<(i64, f64)>, CodecError> {
    let mut it = xor_iter(data);
    let mut out = Vec::with_capacity(it.num_samples().min(1024));
    while it.next() {
        out.push(it.at());
    }
    match it.err() {
        Some(e) => Err(e.clone()),
        None => Ok(out),
    }
}
