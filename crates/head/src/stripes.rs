//! The series maps, split into lock stripes so parallel appenders rarely
//! contend: one set of stripes maps refs to series, another maps label-set
//! hashes to series (16 bytes an entry; series whose hash another series
//! already holds go to a short per-stripe list instead, so no entry pays
//! for collisions).
//!
//! Refs are handed out sequentially, and a sender repeats its series in
//! about the order they were created, so the ref side stores blocks of
//! [`BLOCK`] consecutive refs: lookups by ref then mostly land in a block
//! (and stripe) that the previous lookup already brought into the cache.
//!
//! Lock order, everywhere: hash stripe, then ref stripe, then a series' own
//! data lock. Appenders pin a series (see `MemSeries::pending`) while holding
//! a stripe lock, and truncation only removes unpinned series while holding
//! both stripe locks, so a pinned series is never dropped.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::Arc;

use cairn_model::Labels;
use parking_lot::RwLock;

use crate::series::MemSeries;

/// A hasher for keys that are already well spread (hashes) or sequential
/// (refs): one multiply-rotate instead of SipHash.
#[derive(Default)]
pub(crate) struct MixHasher(u64);

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (x ^ self.0)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }
}

pub(crate) type MixMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

/// Consecutive refs per block of the ref maps.
const BLOCK: u64 = 64;

/// The series of refs `b * BLOCK .. (b + 1) * BLOCK`, by `r % BLOCK`.
type Block = Box<[Option<Arc<MemSeries>>]>;

/// A stripe of the ref side: block number to block.
type RefStripe = RwLock<MixMap<u64, Block>>;

fn slot(blocks: &MixMap<u64, Block>, r: u64) -> Option<&Arc<MemSeries>> {
    blocks
        .get(&(r / BLOCK))?
        .get((r % BLOCK) as usize)?
        .as_ref()
}

/// A series pinned for an appender, without a reference count of its own:
/// while the pin holds, truncation leaves the series in the maps (see the
/// module docs), and the maps keep it alive; the borrow of the maps keeps
/// them alive. Dropping it unpins, after which it is never touched again.
/// This saves two atomic operations per staged series over an `Arc`.
pub(crate) struct Pinned<'a> {
    ptr: NonNull<MemSeries>,
    _maps: PhantomData<&'a StripeSeries>,
}

// SAFETY: a `Pinned` only hands out shared references to a `MemSeries`,
// which is `Sync` (atomics, an immutable ref and labels, a mutex).
unsafe impl Send for Pinned<'_> {}
// SAFETY: as above.
unsafe impl Sync for Pinned<'_> {}

impl std::ops::Deref for Pinned<'_> {
    type Target = MemSeries;
    fn deref(&self) -> &MemSeries {
        // SAFETY: the series was pinned while in the maps (under a stripe
        // lock) and stays pinned until `drop`; a pinned series is never
        // removed from the maps, whose `Arc` keeps it alive, and the maps
        // outlive `'a`.
        unsafe { self.ptr.as_ref() }
    }
}

impl Drop for Pinned<'_> {
    fn drop(&mut self) {
        self.unpin();
    }
}

/// A stripe of the hash side: the first series of each hash in a map, the
/// rare others with the same hash (a 64-bit collision) in a list.
#[derive(Debug, Default)]
struct HashStripe {
    first: MixMap<u64, Arc<MemSeries>>,
    more: Vec<(u64, Arc<MemSeries>)>,
}

impl HashStripe {
    fn find(&self, h: u64, l: &Labels) -> Option<&Arc<MemSeries>> {
        let s = self.first.get(&h)?;
        if s.labels == *l {
            return Some(s);
        }
        self.more
            .iter()
            .find(|(k, s)| *k == h && s.labels == *l)
            .map(|(_, s)| s)
    }

    fn insert(&mut self, h: u64, s: Arc<MemSeries>) {
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(s);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.more.push((h, s)),
        }
    }

    fn remove(&mut self, h: u64, s: &Arc<MemSeries>) {
        if self.first.get(&h).is_some_and(|x| Arc::ptr_eq(x, s)) {
            self.first.remove(&h);
            if let Some(i) = self.more.iter().position(|(k, _)| *k == h) {
                let (_, o) = self.more.swap_remove(i);
                self.first.insert(h, o);
            }
        } else {
            self.more.retain(|(_, x)| !Arc::ptr_eq(x, s));
        }
    }
}

/// The striped series maps.
#[derive(Debug)]
pub(crate) struct StripeSeries {
    mask: u64,
    /// Whether prefetches may be for writing (see `series::has_prefetchw`).
    pub(crate) write_prefetch: bool,
    by_ref: Box<[RefStripe]>,
    by_hash: Box<[RwLock<HashStripe>]>,
}

impl StripeSeries {
    pub(crate) fn new(stripes: usize) -> Self {
        let n = stripes.max(1).next_power_of_two();
        Self {
            mask: (n - 1) as u64,
            write_prefetch: crate::series::has_prefetchw(),
            by_ref: (0..n).map(|_| RwLock::new(MixMap::default())).collect(),
            by_hash: (0..n).map(|_| RwLock::new(HashStripe::default())).collect(),
        }
    }

    /// Makes room for `n` more series, so that loading millions of them
    /// does not rehash the maps again and again.
    pub(crate) fn reserve(&self, n: usize) {
        let per = n / self.by_hash.len().max(1) + 1;
        for s in &self.by_hash {
            s.write().first.reserve(per);
        }
        let blocks = n / BLOCK as usize / self.by_ref.len().max(1) + 1;
        for s in &self.by_ref {
            s.write().reserve(blocks);
        }
    }

    fn ref_stripe(&self, r: u64) -> &RefStripe {
        let i = ((r / BLOCK) & self.mask) as usize;
        // The mask keeps the index below the slice length (a power of two).
        #[allow(clippy::indexing_slicing)] // in bounds: `% len`, and `new` makes len >= 1
        &self.by_ref[i % self.by_ref.len()]
    }

    fn hash_stripe(&self, h: u64) -> &RwLock<HashStripe> {
        let i = (h & self.mask) as usize;
        #[allow(clippy::indexing_slicing)] // in bounds: `% len`, and `new` makes len >= 1
        &self.by_hash[i % self.by_hash.len()]
    }

    /// The series with ref `r`.
    pub(crate) fn get(&self, r: u64) -> Option<Arc<MemSeries>> {
        slot(&self.ref_stripe(r).read(), r).cloned()
    }

    /// The series with ref `r`, pinned for an appender.
    pub(crate) fn get_pinned(&self, r: u64) -> Option<Pinned<'_>> {
        let g = self.ref_stripe(r).read();
        let s = slot(&g, r)?;
        s.pin();
        Some(Pinned {
            ptr: NonNull::from(&**s),
            _maps: PhantomData,
        })
    }

    /// The series with labels `l`, pinned for an appender; `None` when the
    /// head has no such series (nothing is created).
    pub(crate) fn get_pinned_by_labels(&self, l: &Labels) -> Option<Pinned<'_>> {
        let h = l.hash64();
        let g = self.hash_stripe(h).read();
        let s = g.find(h, l)?;
        s.pin();
        Some(Pinned {
            ptr: NonNull::from(&**s),
            _maps: PhantomData,
        })
    }

    /// Takes over the pin of `s`, dropping the extra reference count.
    ///
    /// # Safety
    /// `s` must be a series of these maps that the caller pinned (as
    /// [`Self::get_or_create_pinned`] returns it) and has not unpinned.
    pub(crate) unsafe fn adopt(&self, s: Arc<MemSeries>) -> Pinned<'_> {
        Pinned {
            ptr: NonNull::from(&*s),
            _maps: PhantomData,
        }
    }

    /// Prefetches the lock stripe that series `r` is looked up in: the
    /// first of the dependent misses of a lookup by ref.
    pub(crate) fn prefetch_stripe(&self, r: u64) {
        let p = (self.ref_stripe(r) as *const RefStripe).cast::<u8>();
        let w = self.write_prefetch;
        crate::series::prefetch_line(p, w);
        crate::series::prefetch_line(p.wrapping_add(std::mem::size_of::<RefStripe>() - 1), w);
    }

    /// Prefetches the memory of series `r` (see `MemSeries::prefetch`);
    /// does nothing when there is no such series.
    pub(crate) fn prefetch(&self, r: u64) {
        if let Some(s) = slot(&self.ref_stripe(r).read(), r) {
            s.prefetch(self.write_prefetch);
        }
    }

    /// The series with labels `l`, pinned, creating it with a ref from
    /// `new_ref` when absent; `on_create` runs (under the stripe lock) for a
    /// new series. Returns the series and whether it was created.
    pub(crate) fn get_or_create_pinned(
        &self,
        l: &Labels,
        new_ref: impl FnOnce() -> u64,
        on_create: impl FnOnce(&Arc<MemSeries>),
    ) -> (Arc<MemSeries>, bool) {
        self.get_or_create_hashed(l.hash64(), l, new_ref, on_create)
    }

    /// [`Self::get_or_create_pinned`] with the hash given (tests force collisions).
    pub(crate) fn get_or_create_hashed(
        &self,
        h: u64,
        l: &Labels,
        new_ref: impl FnOnce() -> u64,
        on_create: impl FnOnce(&Arc<MemSeries>),
    ) -> (Arc<MemSeries>, bool) {
        let stripe = self.hash_stripe(h);
        {
            let g = stripe.read();
            if let Some(s) = g.find(h, l) {
                s.pin();
                return (s.clone(), false);
            }
        }
        let mut g = stripe.write();
        if let Some(s) = g.find(h, l) {
            s.pin();
            return (s.clone(), false);
        }
        let s = Arc::new(MemSeries::new(new_ref(), l.clone()));
        s.pin();
        {
            let mut rg = self.ref_stripe(s.r).write();
            let block = rg
                .entry(s.r / BLOCK)
                .or_insert_with(|| (0..BLOCK).map(|_| None).collect());
            if let Some(x) = block.get_mut((s.r % BLOCK) as usize) {
                *x = Some(s.clone());
            }
        }
        g.insert(h, s.clone());
        on_create(&s);
        (s, true)
    }

    /// Inserts a series with a known ref (replay). If a series with the same
    /// labels exists, returns it instead and inserts nothing.
    pub(crate) fn insert_replayed(&self, r: u64, l: &Labels) -> (Arc<MemSeries>, bool) {
        let (s, created) = self.get_or_create_pinned(l, || r, |_| {});
        s.unpin();
        (s, created)
    }

    /// Removes series `r` when `can_drop` still holds for it under both
    /// stripe locks. Returns the removed series.
    pub(crate) fn remove_if(
        &self,
        r: u64,
        can_drop: impl Fn(&MemSeries) -> bool,
    ) -> Option<Arc<MemSeries>> {
        let s = self.get(r)?;
        let h = s.labels.hash64();
        let mut hg = self.hash_stripe(h).write();
        let mut rg = self.ref_stripe(r).write();
        if !slot(&rg, r).is_some_and(|x| Arc::ptr_eq(x, &s)) || !can_drop(&s) {
            return None;
        }
        let b = r / BLOCK;
        let mut empty = false;
        if let Some(block) = rg.get_mut(&b) {
            if let Some(x) = block.get_mut((r % BLOCK) as usize) {
                *x = None;
            }
            empty = block.iter().all(Option::is_none);
        }
        if empty {
            rg.remove(&b);
        }
        hg.remove(h, &s);
        Some(s)
    }

    /// Every series (a snapshot of the maps, stripe by stripe).
    pub(crate) fn all(&self) -> Vec<Arc<MemSeries>> {
        let mut out = Vec::new();
        for st in self.by_ref.iter() {
            out.extend(st.read().values().flat_map(|b| b.iter().flatten().cloned()));
        }
        out
    }

    /// Bytes of the ref side (tables and blocks) and of the hash side
    /// (tables and collision lists); see `crate::memory`.
    pub(crate) fn map_bytes(&self) -> (u64, u64) {
        use cairn_storage::hash_table_bytes as table_bytes;
        use std::mem::size_of;
        let mut by_ref = 0;
        for st in self.by_ref.iter() {
            let g = st.read();
            by_ref += table_bytes(g.capacity(), size_of::<(u64, Block)>())
                + (g.len() * BLOCK as usize * size_of::<Option<Arc<MemSeries>>>()) as u64;
        }
        let mut by_hash = 0;
        for st in self.by_hash.iter() {
            let g = st.read();
            by_hash += table_bytes(g.first.capacity(), size_of::<(u64, Arc<MemSeries>)>())
                + (g.more.capacity() * size_of::<(u64, Arc<MemSeries>)>()) as u64;
        }
        (by_ref, by_hash)
    }

    /// Calls `f` on every series, one stripe at a time (no snapshot).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<MemSeries>)) {
        for st in self.by_ref.iter() {
            for s in st.read().values().flat_map(|b| b.iter().flatten()) {
                f(s);
            }
        }
    }
}

#[cfg(test)]
mod pinned_miri;

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::labels;

    #[test]
    fn colliding_hashes_keep_series_apart() {
        let st = StripeSeries::new(4);
        let a = labels!("a" => "1");
        let b = labels!("a" => "2");
        let (sa, ca) = st.get_or_create_hashed(7, &a, || 1, |_| {});
        let (sb, cb) = st.get_or_create_hashed(7, &b, || 2, |_| {});
        let (sa2, ca2) = st.get_or_create_hashed(7, &a, || 3, |_| {});
        assert!(ca && cb && !ca2);
        assert_eq!((sa.r, sb.r, sa2.r), (1, 2, 1));
        assert_eq!(sa.pending.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(st.get(2).map(|s| s.labels.clone()), Some(b));
        assert_eq!(st.all().len(), 2);
    }

    #[test]
    fn removing_a_colliding_series_keeps_the_others_found() {
        let mut st = HashStripe::default();
        let ls = [
            labels!("a" => "1"),
            labels!("a" => "2"),
            labels!("a" => "3"),
        ];
        let ss: Vec<_> = ls
            .iter()
            .enumerate()
            .map(|(i, l)| Arc::new(MemSeries::new(i as u64, l.clone())))
            .collect();
        for s in &ss {
            st.insert(7, s.clone());
        }
        st.insert(8, Arc::new(MemSeries::new(9, labels!("b" => "1"))));
        assert_eq!((st.first.len(), st.more.len()), (2, 2));
        // The map's own entry goes: one of the list takes its place.
        st.remove(7, &ss[0]);
        assert!(st.find(7, &ls[0]).is_none());
        assert_eq!(st.find(7, &ls[1]).map(|s| s.r), Some(1));
        assert_eq!(st.find(7, &ls[2]).map(|s| s.r), Some(2));
        st.remove(7, &ss[2]);
        st.remove(7, &ss[1]);
        assert!(st.find(7, &ls[1]).is_none());
        assert_eq!((st.first.len(), st.more.len()), (1, 0));
        assert_eq!(st.find(8, &labels!("b" => "1")).map(|s| s.r), Some(9));
    }

    #[test]
    fn refs_across_blocks_and_removal() {
        let st = StripeSeries::new(2);
        let refs = [1u64, 2, 63, 64, 65, 200, 4096 * 64 + 3];
        for (i, &r) in refs.iter().enumerate() {
            let l = labels!("i" => i.to_string());
            let (s, created) = st.get_or_create_pinned(&l, || r, |_| {});
            assert!(created);
            s.unpin();
        }
        for (i, &r) in refs.iter().enumerate() {
            let s = st.get(r).unwrap();
            assert_eq!((s.r, s.labels.clone()), (r, labels!("i" => i.to_string())));
        }
        assert!(st.get(3).is_none() && st.get(66).is_none());
        let mut n = 0;
        st.for_each(|_| n += 1);
        assert_eq!(n, refs.len());
        // Removing every ref of a block drops the block; others stay.
        assert!(st.remove_if(64, |_| true).is_some());
        assert!(st.remove_if(65, |_| false).is_none());
        assert!(st.remove_if(65, |_| true).is_some());
        assert!(st.get(64).is_none() && st.get(65).is_none());
        assert_eq!(st.all().len(), refs.len() - 2);
        assert_eq!(st.get(63).map(|s| s.r), Some(63));
    }
}
