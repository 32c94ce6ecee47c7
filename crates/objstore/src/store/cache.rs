//! Byte ranges of bucket objects through a bounded page cache.
//!
//! Every read of a block in the bucket (series entries, postings lists,
//! chunks) goes through [`CachedObject::read_at`]. Objects are cut into
//! fixed pages ([`PAGE_SIZE`]); a read takes the pages it covers from the
//! cache and fetches the missing ones with one ranged GET per run of
//! adjacent missing pages (and a readahead of [`READAHEAD_PAGES`] when the
//! read continues where the object's last fetch ended). Reads a query is
//! about to make are announced
//! with [`cairn_codec::RangeRead::prefetch`] (a block's selected series
//! entries, then their chunks) and fetched together, ten requests at once.
//! The cache holds at most
//! `capacity` bytes and evicts the least recently used page first; at most
//! `max_requests` GETs are in flight at once across all queries
//! ([`Limiter`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cairn_tsdb::BoxError;
use parking_lot::{Condvar, Mutex};

use crate::bucket::Bucket;

/// Bytes per cached page.
pub const PAGE_SIZE: u64 = 64 * 1024;
/// Prefetched ranges less than this apart are fetched in one request.
pub const COALESCE: u64 = 64 * 1024;
/// Pages fetched past a missing one when the read continues where the
/// object's last fetch ended (a sequential scan beyond what was
/// prefetched).
pub const READAHEAD_PAGES: u64 = 16;
/// A prefetch fetches at most this share of the cache's capacity: up to
/// eight blocks are selected at once, and what one prefetches must stay
/// cached until it is read.
const PREFETCH_SHARE: u64 = 16;

/// Counters of the cache and the requests behind it (for `/metrics`).
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub requests: AtomicU64,
    pub fetched_bytes: AtomicU64,
    pub evicted_bytes: AtomicU64,
}

/// At most `n` holders at once (a counting semaphore for blocking code).
pub struct Limiter {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Limiter {
    pub fn new(n: usize) -> Self {
        Self {
            free: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        }
    }

    /// Runs `f` once a slot is free.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> T {
        {
            let mut free = self.free.lock();
            while *free == 0 {
                self.cv.wait(&mut free);
            }
            *free -= 1;
        }
        let out = f();
        *self.free.lock() += 1;
        self.cv.notify_one();
        out
    }
}

#[derive(Default)]
struct Lru {
    /// (object, page) → (bytes, last use).
    pages: HashMap<(u64, u64), (Bytes, u64)>,
    /// Last use → (object, page).
    order: BTreeMap<u64, (u64, u64)>,
    tick: u64,
    bytes: u64,
}

/// The pages of all objects read, least recently used evicted first.
pub struct PageCache {
    capacity: u64,
    inner: Mutex<Lru>,
    next_object: AtomicU64,
    pub stats: CacheStats,
}

impl PageCache {
    /// A cache of at most `capacity` bytes (0 caches nothing).
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Lru::default()),
            next_object: AtomicU64::new(1),
            stats: CacheStats::default(),
        }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().bytes
    }

    /// The configured bound.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn object_id(&self) -> u64 {
        self.next_object.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether `key` is cached (without counting it as a use).
    fn contains(&self, key: (u64, u64)) -> bool {
        self.inner.lock().pages.contains_key(&key)
    }

    fn get(&self, key: (u64, u64)) -> Option<Bytes> {
        let mut l = self.inner.lock();
        l.tick += 1;
        let tick = l.tick;
        let (bytes, old) = {
            let e = l.pages.get_mut(&key)?;
            let old = e.1;
            e.1 = tick;
            (e.0.clone(), old)
        };
        l.order.remove(&old);
        l.order.insert(tick, key);
        Some(bytes)
    }

    fn insert(&self, key: (u64, u64), page: Bytes) {
        let len = page.len() as u64;
        if len > self.capacity {
            return;
        }
        let mut l = self.inner.lock();
        l.tick += 1;
        let tick = l.tick;
        if let Some((old, t)) = l.pages.insert(key, (page, tick)) {
            l.bytes -= old.len() as u64;
            l.order.remove(&t);
        }
        l.order.insert(tick, key);
        l.bytes += len;
        while l.bytes > self.capacity {
            let Some((_, victim)) = l.order.pop_first() else {
                break;
            };
            if let Some((b, _)) = l.pages.remove(&victim) {
                l.bytes -= b.len() as u64;
                self.stats
                    .evicted_bytes
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
            }
        }
    }

    /// Drops every page of object `id` (its block left the bucket).
    fn forget(&self, id: u64) {
        let mut l = self.inner.lock();
        let keys: Vec<(u64, u64)> = l.pages.keys().filter(|k| k.0 == id).copied().collect();
        for k in keys {
            if let Some((b, t)) = l.pages.remove(&k) {
                l.bytes -= b.len() as u64;
                l.order.remove(&t);
            }
        }
    }
}

/// One object of the bucket, read by range through the cache.
pub struct CachedObject {
    bucket: Arc<Bucket>,
    key: String,
    size: u64,
    id: u64,
    cache: Arc<PageCache>,
    limiter: Arc<Limiter>,
    /// The page after the last one fetched: a miss there is a sequential
    /// read, which fetches a readahead too.
    next_seq: AtomicU64,
}

impl CachedObject {
    pub fn new(
        bucket: Arc<Bucket>,
        key: String,
        size: u64,
        cache: Arc<PageCache>,
        limiter: Arc<Limiter>,
    ) -> Self {
        let id = cache.object_id();
        Self {
            bucket,
            key,
            size,
            id,
            cache,
            limiter,
            next_seq: AtomicU64::new(u64::MAX),
        }
    }

    /// Fetches pages `[first, last]` (all missing) in one request and
    /// caches them; returns them in order.
    fn fetch(&self, first: u64, last: u64) -> std::io::Result<Vec<Bytes>> {
        let start = first * PAGE_SIZE;
        let end = ((last + 1) * PAGE_SIZE).min(self.size);
        let got = self
            .limiter
            .run(|| self.bucket.get_range(&self.key, start..end))
            .map_err(|e| std::io::Error::other(Box::new(e) as BoxError))?;
        tracing::debug!(key = %self.key, start, end, "range read");
        self.next_seq.store(last + 1, Ordering::Relaxed);
        let st = &self.cache.stats;
        st.requests.fetch_add(1, Ordering::Relaxed);
        st.fetched_bytes
            .fetch_add(got.len() as u64, Ordering::Relaxed);
        if got.len() as u64 != end - start {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: asked for bytes {start}..{end} of a {} byte object, got {}",
                    self.key,
                    self.size,
                    got.len()
                ),
            ));
        }
        let mut out = Vec::new();
        for p in first..=last {
            let a = ((p - first) * PAGE_SIZE) as usize;
            let b = (a + PAGE_SIZE as usize).min(got.len());
            // A copy, so that evicting some pages frees their memory.
            let page = Bytes::copy_from_slice(got.get(a..b).unwrap_or_default());
            self.cache.insert((self.id, p), page.clone());
            out.push(page);
        }
        Ok(out)
    }
}

impl Drop for CachedObject {
    fn drop(&mut self) {
        self.cache.forget(self.id);
    }
}

impl cairn_codec::RangeRead for CachedObject {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, off: u64, len: u64) -> std::io::Result<Vec<u8>> {
        let end = off.saturating_add(len).min(self.size);
        if off >= end {
            return Ok(Vec::new());
        }
        let (first, last) = (off / PAGE_SIZE, (end - 1) / PAGE_SIZE);
        let last_page = (self.size - 1) / PAGE_SIZE;
        let mut out = Vec::with_capacity((end - off) as usize);
        let mut p = first;
        while p <= last {
            let pages = match self.cache.get((self.id, p)) {
                Some(b) => {
                    self.cache.stats.hits.fetch_add(1, Ordering::Relaxed);
                    vec![b]
                }
                None => {
                    self.cache.stats.misses.fetch_add(1, Ordering::Relaxed);
                    // The run of missing pages from p within the read, and
                    // a readahead past it when the read is sequential.
                    let ahead = if self.next_seq.load(Ordering::Relaxed) == p {
                        READAHEAD_PAGES
                    } else {
                        0
                    };
                    let limit = (last + ahead).min(last_page);
                    let mut q = p;
                    while q < limit && self.cache.get((self.id, q + 1)).is_none() {
                        q += 1;
                    }
                    self.fetch(p, q)?
                }
            };
            for page in pages {
                if p > last {
                    break;
                }
                let base = p * PAGE_SIZE;
                let a = off.saturating_sub(base) as usize;
                let b = ((end - base) as usize).min(page.len());
                out.extend_from_slice(page.get(a..b).unwrap_or_default());
                p += 1;
            }
        }
        Ok(out)
    }

    fn name(&self) -> String {
        self.key.clone()
    }

    /// Fetches the missing pages of `ranges` in one concurrent call
    /// (coalesced by the bucket client), at most 1/[`PREFETCH_SHARE`] of
    /// the cache's capacity of them (more would evict what this query is
    /// about to read, and hold that much memory in flight); what is left
    /// is read on demand, with readahead. Errors are left for the reads.
    fn prefetch(&self, ranges: &[(u64, u64)]) {
        if self.size == 0 {
            return;
        }
        let last_page = (self.size - 1) / PAGE_SIZE;
        let budget = self.cache.capacity / PREFETCH_SHARE;
        let mut runs: Vec<(u64, u64)> = Vec::new();
        let mut pages = 0u64;
        'outer: for &(off, len) in ranges {
            if off >= self.size || len == 0 {
                continue;
            }
            let first = off / PAGE_SIZE;
            let last = ((off.saturating_add(len) - 1) / PAGE_SIZE).min(last_page);
            for p in first..=last {
                if self.cache.contains((self.id, p)) {
                    continue;
                }
                if (pages + 1) * PAGE_SIZE > budget {
                    break 'outer;
                }
                pages += 1;
                match runs.last_mut() {
                    Some((_, z)) if *z + 1 == p => *z = p,
                    Some((_, z)) if *z >= p => {}
                    _ => runs.push((p, p)),
                }
            }
        }
        if runs.is_empty() {
            return;
        }
        let byte_ranges: Vec<std::ops::Range<u64>> = runs
            .iter()
            .map(|&(a, z)| a * PAGE_SIZE..((z + 1) * PAGE_SIZE).min(self.size))
            .collect();
        let Ok(got) = self
            .limiter
            .run(|| self.bucket.get_ranges(&self.key, &byte_ranges, COALESCE))
        else {
            return;
        };
        tracing::debug!(key = %self.key, ranges = ?byte_ranges, "prefetch");
        if let Some(&(_, z)) = runs.last() {
            self.next_seq.store(z + 1, Ordering::Relaxed);
        }
        let st = &self.cache.stats;
        st.requests.fetch_add(1, Ordering::Relaxed);
        for ((a, z), bytes) in runs.iter().zip(got) {
            st.fetched_bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            for p in *a..=*z {
                let lo = ((p - a) * PAGE_SIZE) as usize;
                let hi = (lo + PAGE_SIZE as usize).min(bytes.len());
                if let Some(page) = bytes.get(lo..hi) {
                    // A copy: a slice would keep the whole response alive
                    // while any of its pages is cached, beyond the bound.
                    self.cache
                        .insert((self.id, p), Bytes::copy_from_slice(page));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_stays_within_capacity_and_evicts_the_oldest() {
        let c = PageCache::new(3 * 10);
        for i in 0..3 {
            c.insert((1, i), Bytes::from(vec![i as u8; 10]));
        }
        assert!(c.get((1, 0)).is_some()); // 0 is now the newest
        c.insert((1, 3), Bytes::from(vec![3; 10]));
        assert_eq!(c.bytes(), 30);
        assert!(c.get((1, 1)).is_none(), "the least recently used page goes");
        assert!(c.get((1, 0)).is_some());
        c.forget(1);
        assert_eq!(c.bytes(), 0);
        let none = PageCache::new(0);
        none.insert((1, 0), Bytes::from(vec![0; 10]));
        assert!(none.get((1, 0)).is_none());
    }
}
