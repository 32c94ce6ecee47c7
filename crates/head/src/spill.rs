//! Spilled prefixes of open chunks: the settled front of each open chunk's
//! bytes moves out of memory into slots of a few files in `head_spill/`,
//! so that the head keeps only a small tail per series in memory.
//!
//! Why: an open chunk of a 6-decimal gauge grows to about 500 bytes before
//! it is cut, and the head has one per series; with millions of series
//! those bytes were the largest part of the head's memory. Full chunks
//! already leave memory for `chunks_head/`; this does the same for the
//! part of the open chunk no append will change again.
//!
//! Layout: one file per slot size, 256 bytes to 64 KiB in powers of two;
//! slot `i` of size `s` is bytes `[i·s, (i+1)·s)` of its file. A chunk's
//! prefix is contiguous in one slot, so reading it back is one `pread`.
//! A prefix that outgrows its slot moves to a larger one. Freed slots are
//! reused, so the files grow to the peak of live prefixes, not with time.
//!
//! Contracts:
//! - Nothing here is durable or needed after a restart: the WAL holds every
//!   sample of the open chunks. [`Spill::open`] deletes whatever a previous
//!   run left. Writes go to the page cache (`pwrite`), never fsynced; the
//!   kernel writes them back, and under memory pressure evicts them.
//! - Reads use `pread` into the caller's buffer and never map the files, so
//!   what queries and cuts read back does not count in the process's RSS.
//! - Slot references are `u64`, 0 meaning none. A slot is owned by one open
//!   chunk, which the caller guards (the series lock); writes to different
//!   slots may run concurrently.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::{HeadError, Result};

/// Smallest slot: twice an open chunk's in-memory tail.
const MIN_SLOT_SHIFT: u32 = 8;
/// Number of slot sizes: 256 bytes to 64 KiB. A prefix larger than the
/// largest slot stays in memory (no XOR chunk of a normal cut reaches it).
const CLASSES: usize = 9;

/// The largest prefix a slot holds.
pub(crate) const MAX_SLOT: usize = 1 << (MIN_SLOT_SHIFT as usize + CLASSES - 1);

struct Class {
    shift: u32,
    file: File,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    free: Vec<u32>,
    next: u32,
}

/// The spill files of one head.
pub(crate) struct Spill {
    dir: PathBuf,
    classes: Vec<Class>,
    live: AtomicU64,
    live_bytes: AtomicU64,
    warned: AtomicBool,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spill")
            .field("dir", &self.dir)
            .field("live", &self.live.load(Ordering::Relaxed))
            .finish()
    }
}

/// Slot reference: class + 1 in the high 32 bits, slot index in the low.
fn slot_ref(class: usize, idx: u32) -> u64 {
    ((class as u64 + 1) << 32) | u64::from(idx)
}

fn split(slot: u64) -> Option<(usize, u32)> {
    let c = (slot >> 32) as usize;
    (1..=CLASSES).contains(&c).then(|| (c - 1, slot as u32))
}

/// The smallest class whose slots hold `n` bytes.
fn class_for(n: usize) -> Option<usize> {
    (0..CLASSES).find(|&c| n <= 1 << (MIN_SLOT_SHIFT as usize + c))
}

impl Spill {
    /// Creates `dir` afresh (removing what a previous run left) with one
    /// empty file per slot size.
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        let io = |what: &str, e| HeadError::Io {
            context: format!("spill files {what} in {}", dir.display()),
            source: e,
        };
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("removing old", e)),
        }
        std::fs::create_dir_all(dir).map_err(|e| io("creating", e))?;
        let mut classes = Vec::with_capacity(CLASSES);
        for c in 0..CLASSES {
            let shift = MIN_SLOT_SHIFT + c as u32;
            let path = dir.join(format!("{:05}", 1u32 << shift));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| io("creating", e))?;
            classes.push(Class {
                shift,
                file,
                slots: Mutex::default(),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            classes,
            live: AtomicU64::new(0),
            live_bytes: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        })
    }

    fn io(&self, op: &str, slot: u64, e: std::io::Error) -> HeadError {
        HeadError::Io {
            context: format!("spill {op} of slot {slot:#x} in {}", self.dir.display()),
            source: e,
        }
    }

    fn bad_slot(&self, slot: u64) -> HeadError {
        HeadError::Io {
            context: format!("spill slot {slot:#x} in {}", self.dir.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no such slot"),
        }
    }

    fn alloc(&self, n: usize) -> Option<u64> {
        let c = class_for(n)?;
        let class = self.classes.get(c)?;
        let idx = {
            let mut s = class.slots.lock();
            match s.free.pop() {
                Some(i) => i,
                None => {
                    let i = s.next;
                    s.next = s.next.checked_add(1)?;
                    i
                }
            }
        };
        self.live.fetch_add(1, Ordering::Relaxed);
        self.live_bytes
            .fetch_add(1 << class.shift, Ordering::Relaxed);
        Some(slot_ref(c, idx))
    }

    /// Returns a slot for reuse (no-op for 0).
    pub(crate) fn free(&self, slot: u64) {
        let Some((c, idx)) = split(slot) else { return };
        let Some(class) = self.classes.get(c) else {
            return;
        };
        class.slots.lock().free.push(idx);
        self.live.fetch_sub(1, Ordering::Relaxed);
        self.live_bytes
            .fetch_sub(1 << class.shift, Ordering::Relaxed);
    }

    fn locate(&self, slot: u64) -> Option<(&Class, u64)> {
        let (c, idx) = split(slot)?;
        let class = self.classes.get(c)?;
        Some((class, u64::from(idx) << class.shift))
    }

    /// Writes `bytes` at offset `at` of the prefix in `*slot`, taking a
    /// slot first (0: none yet) or moving the first `at` bytes to a larger
    /// one when they no longer fit. `want` is the size the prefix is
    /// expected to reach, so that it rarely moves. On error the slot and
    /// its first `at` bytes are as they were.
    pub(crate) fn write(&self, slot: &mut u64, at: usize, bytes: &[u8], want: usize) -> Result<()> {
        let end = at + bytes.len();
        if end > MAX_SLOT {
            return Err(self.io(
                "write",
                *slot,
                std::io::Error::new(
                    std::io::ErrorKind::FileTooLarge,
                    "prefix larger than a slot",
                ),
            ));
        }
        let fits = self.locate(*slot).is_some_and(|(c, _)| end <= 1 << c.shift);
        if !fits {
            let new = self
                .alloc(end.max(want.min(MAX_SLOT)))
                .ok_or_else(|| self.bad_slot(*slot))?;
            if *slot != 0 && at > 0 {
                let mut old = Vec::new();
                let moved = self
                    .read(*slot, at, &mut old)
                    .and_then(|()| self.write_at(new, 0, &old));
                if let Err(e) = moved {
                    self.free(new);
                    return Err(e);
                }
            }
            self.free(*slot);
            *slot = new;
        }
        self.write_at(*slot, at, bytes)
    }

    fn write_at(&self, slot: u64, at: usize, bytes: &[u8]) -> Result<()> {
        let (class, base) = self.locate(slot).ok_or_else(|| self.bad_slot(slot))?;
        class
            .file
            .write_all_at(bytes, base + at as u64)
            .map_err(|e| self.io("write", slot, e))
    }

    /// Reads the first `len` bytes of the prefix in `slot` into `out`
    /// (replacing its contents).
    pub(crate) fn read(&self, slot: u64, len: usize, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        if len == 0 {
            return Ok(());
        }
        let (class, base) = self.locate(slot).ok_or_else(|| self.bad_slot(slot))?;
        if len > 1 << class.shift {
            return Err(self.bad_slot(slot));
        }
        out.resize(len, 0);
        class
            .file
            .read_exact_at(out, base)
            .map_err(|e| self.io("read", slot, e))
    }

    /// Logs a failed spill write once per run (later ones would repeat it
    /// for every series); the chunk keeps its bytes in memory.
    pub(crate) fn report_failure(&self, series: u64, e: &HeadError) {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(series, error = %e, "spilling an open chunk's prefix failed; open chunks keep their bytes in memory while it fails");
        }
    }

    /// Slots in use and the bytes they reserve in the files.
    pub(crate) fn usage(&self) -> (u64, u64) {
        (
            self.live.load(Ordering::Relaxed),
            self.live_bytes.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_round_trip_move_and_reuse_slots() {
        let dir = tempfile::tempdir().unwrap();
        let s = Spill::open(&dir.path().join("spill")).unwrap();
        let mut a = 0u64;
        let mut b = 0u64;
        let data: Vec<u8> = (0..2000u32).map(|i| (i * 7) as u8).collect();
        s.write(&mut a, 0, &data[..100], 200).unwrap();
        s.write(&mut b, 0, &data[..50], 0).unwrap();
        assert_ne!(a, b);
        // Grows past its 256-byte slot: moves, keeping what it had.
        s.write(&mut a, 100, &data[100..1500], 0).unwrap();
        let mut out = Vec::new();
        s.read(a, 1500, &mut out).unwrap();
        assert_eq!(out, &data[..1500]);
        s.read(b, 50, &mut out).unwrap();
        assert_eq!(out, &data[..50]);
        assert_eq!(s.usage(), (2, 2048 + 256));
        // A freed slot is the next one handed out.
        s.free(b);
        let mut c = 0u64;
        s.write(&mut c, 0, &data[..10], 0).unwrap();
        assert_eq!(c, b);
        assert_eq!(s.usage().0, 2);
        // Reading past a slot or from no slot is an error, not a panic.
        assert!(s.read(c, 257, &mut out).is_err());
        assert!(s.read(0, 1, &mut out).is_err());
        assert!(s.write(&mut c, 0, &vec![0; MAX_SLOT + 1], 0).is_err());
    }

    #[test]
    fn open_removes_what_a_previous_run_left() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("spill");
        {
            let s = Spill::open(&p).unwrap();
            let mut a = 0;
            s.write(&mut a, 0, &[1; 300], 0).unwrap();
        }
        let _s = Spill::open(&p).unwrap();
        let total: u64 = std::fs::read_dir(&p)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(total, 0);
    }
}
