//! Isolation: a querier sees the commits that had finished when it was
//! created, and none that finish later.
//!
//! Every commit takes an *append id* (increasing) when it starts applying
//! samples and releases it when done. A querier captures the largest id
//! handed out so far and the ids still being applied (`incomplete`); a sample
//! is visible to it when its id is at most that maximum and not incomplete.
//!
//! Series remember the append ids of their recent in-order samples as runs
//! `(id, first timestamp of the run)`. Because in-order samples of a series
//! have increasing timestamps, "the first invisible run starts at `t`" means
//! "samples before `t` are visible": a querier turns the runs into one time
//! cut per series, which keeps reads cheap.
//!
//! Runs whose id is below the *low watermark* are visible to every current
//! and future querier and are forgotten. The low watermark is the smallest
//! of: the ids still being applied, each open querier's own lowest relevant
//! id, and the next id to hand out.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

#[derive(Debug)]
struct Inner {
    /// The next append id to hand out; ids start at 1.
    next_id: u64,
    /// Append ids whose commit is still being applied.
    open: BTreeMap<u64, ()>,
    /// Open queriers, counted by their low watermark.
    readers: BTreeMap<u64, usize>,
}

/// Shared isolation bookkeeping of one head.
#[derive(Debug)]
pub(crate) struct Isolation {
    inner: Mutex<Inner>,
    low_watermark: AtomicU64,
}

/// What one querier may see. Dropping it does not release it: call
/// [`Isolation::release`].
#[derive(Debug, Clone)]
pub(crate) struct IsoState {
    max_id: u64,
    /// Sorted ids that were being applied when the state was taken.
    incomplete: Vec<u64>,
    low: u64,
}

impl IsoState {
    /// True when a sample written under `id` is visible.
    pub(crate) fn visible(&self, id: u64) -> bool {
        id <= self.max_id && self.incomplete.binary_search(&id).is_err()
    }
}

impl Default for Isolation {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Inner {
                next_id: 1,
                open: BTreeMap::new(),
                readers: BTreeMap::new(),
            }),
            low_watermark: AtomicU64::new(1),
        }
    }
}

impl Isolation {
    fn update_low(&self, g: &Inner) {
        let mut low = g.next_id;
        if let Some((&id, _)) = g.open.first_key_value() {
            low = low.min(id);
        }
        if let Some((&id, _)) = g.readers.first_key_value() {
            low = low.min(id);
        }
        self.low_watermark.store(low, Ordering::Release);
    }

    /// Starts applying a commit; returns its append id.
    pub(crate) fn begin_append(&self) -> u64 {
        let mut g = self.inner.lock();
        let id = g.next_id;
        g.next_id += 1;
        g.open.insert(id, ());
        self.update_low(&g);
        id
    }

    /// Marks a commit as fully applied.
    pub(crate) fn close_append(&self, id: u64) {
        let mut g = self.inner.lock();
        g.open.remove(&id);
        self.update_low(&g);
    }

    /// Takes and registers a querier's view.
    pub(crate) fn reader(&self) -> IsoState {
        let mut g = self.inner.lock();
        let max_id = g.next_id - 1;
        let incomplete: Vec<u64> = g.open.keys().copied().collect();
        let low = incomplete.first().copied().unwrap_or(max_id + 1);
        *g.readers.entry(low).or_insert(0) += 1;
        self.update_low(&g);
        IsoState {
            max_id,
            incomplete,
            low,
        }
    }

    /// Unregisters a querier's view taken with [`Isolation::reader`].
    pub(crate) fn release(&self, st: &IsoState) {
        let mut g = self.inner.lock();
        if let Some(n) = g.readers.get_mut(&st.low) {
            *n -= 1;
            if *n == 0 {
                g.readers.remove(&st.low);
            }
        }
        self.update_low(&g);
    }

    /// Append ids below this are visible to every current and future reader.
    pub(crate) fn low_watermark(&self) -> u64 {
        self.low_watermark.load(Ordering::Acquire)
    }

    /// Number of commits being applied right now.
    #[cfg(test)]
    pub(crate) fn open_appends(&self) -> usize {
        self.inner.lock().open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_sees_only_closed_appends_from_before_it() {
        let iso = Isolation::default();
        let a = iso.begin_append();
        let b = iso.begin_append();
        iso.close_append(b);
        let r = iso.reader();
        assert!(!r.visible(a), "still open when the reader was taken");
        assert!(r.visible(b));
        iso.close_append(a);
        let c = iso.begin_append();
        iso.close_append(c);
        assert!(!r.visible(c), "started after the reader");
        assert!(!r.visible(a), "closing later does not make it visible");
        assert_eq!(iso.low_watermark(), a, "the reader still needs run a");
        iso.release(&r);
        assert_eq!(iso.low_watermark(), c + 1);
        assert_eq!(iso.open_appends(), 0);
    }
}
