//! Per-series work spread over threads.
//!
//! A query's cost is mostly per series (decoding its chunks, evaluating a
//! range function at every step), and series are independent, so a large
//! selection is cut into contiguous parts that scoped threads (the calling
//! one among them) take in turn. Results come back in input order, so
//! everything downstream (label order, the order aggregations see series in,
//! and so every floating-point sum) is the same as a serial run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Maps `f` over `items`, in order, on up to `threads` threads (the caller's
/// included), giving each at least `min_per_thread` items; small inputs run
/// on the calling thread alone. A panic in `f` is re-raised here.
pub(crate) fn map_ordered<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    min_per_thread: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    map_ordered_with(
        items,
        threads,
        min_per_thread,
        |_, _| {},
        |_: &mut (), x| f(x),
    )
    .0
}

/// The distance at which `ahead` sees the item mapped next.
pub(crate) const NEXT: usize = 1;
/// The farther distance at which `ahead` sees an item.
pub(crate) const FAR: usize = 3;
/// How far ahead of the item being mapped `ahead` is called, farthest
/// first: see [`map_ordered_with`].
pub(crate) const LOOKAHEAD: [usize; 2] = [FAR, NEXT];

/// [`map_ordered`] with scratch state `S`, created once per thread and
/// handed to every call on that thread (reusable buffers, or partial sums
/// the caller combines): returns the results and every thread's state.
///
/// The items are cut into a few parts per thread that threads take in
/// turn, so a thread that got slow parts (or the caller's, which starts
/// last) does not hold up the rest.
///
/// Before mapping an item, a thread calls `ahead(item, d)` on the items
/// `d` places further in its part, for each `d` of [`LOOKAHEAD`]: a hook
/// for prefetching what mapping them will read.
pub(crate) fn map_ordered_with<T: Send, R: Send, S: Default + Send>(
    items: Vec<T>,
    threads: usize,
    min_per_thread: usize,
    ahead: impl Fn(&T, usize) + Sync,
    f: impl Fn(&mut S, T) -> R + Sync,
) -> (Vec<R>, Vec<S>) {
    let n = items.len();
    let k = threads.min(n / min_per_thread.max(1)).max(1);
    if k == 1 {
        let mut st = S::default();
        let out = map_part(&mut st, items, &ahead, &f);
        return (out, vec![st]);
    }
    let per = n.div_ceil(k * PARTS_PER_THREAD).max(1);
    let mut parts: Vec<Mutex<Option<Vec<T>>>> = Vec::new();
    let mut it = items.into_iter();
    loop {
        let p: Vec<T> = it.by_ref().take(per).collect();
        if p.is_empty() {
            break;
        }
        parts.push(Mutex::new(Some(p)));
    }
    let next = AtomicUsize::new(0);
    // Takes parts until none is left; returns (part index, results) and
    // the thread's state.
    let work = || -> (Vec<(usize, Vec<R>)>, S) {
        let mut st = S::default();
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(slot) = parts.get(i) else {
                return (done, st);
            };
            let part = slot.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(p) = part {
                done.push((i, map_part(&mut st, p, &ahead, &f)));
            }
        }
    };
    let work = &work;
    let (mut all, states) = std::thread::scope(|s| {
        let others: Vec<_> = (1..k).map(|_| s.spawn(work)).collect();
        let (mut all, st) = work();
        let mut states = vec![st];
        for h in others {
            match h.join() {
                Ok((v, st)) => {
                    all.extend(v);
                    states.push(st);
                }
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        (all, states)
    });
    all.sort_unstable_by_key(|(i, _)| *i);
    let mut out = Vec::with_capacity(n);
    for (_, v) in all {
        out.extend(v);
    }
    (out, states)
}

/// Maps one part in order, calling `ahead` on the items coming up.
fn map_part<T, R, S>(
    st: &mut S,
    part: Vec<T>,
    ahead: &impl Fn(&T, usize),
    f: &impl Fn(&mut S, T) -> R,
) -> Vec<R> {
    let mut out = Vec::with_capacity(part.len());
    let mut rest = part.into_iter();
    loop {
        let upcoming = rest.as_slice();
        for d in LOOKAHEAD {
            if let Some(x) = upcoming.get(d) {
                ahead(x, d);
            }
        }
        let Some(x) = rest.next() else {
            return out;
        };
        out.push(f(st, x));
    }
}

/// Parts each thread's share is cut into.
pub(crate) const PARTS_PER_THREAD: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_for_every_split() {
        for n in [0usize, 1, 2, 7, 64, 1000] {
            for threads in [1, 2, 3, 8] {
                for min in [1, 10, 100] {
                    let v: Vec<usize> = (0..n).collect();
                    let got = map_ordered(v, threads, min, |x| x * 2);
                    assert_eq!(got, (0..n).map(|x| x * 2).collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn looks_ahead_of_each_item_within_its_part() {
        // One thread, one part: before item i, the hook sees i + d for
        // each lookahead distance d that is still in the part.
        let seen = Mutex::new(Vec::new());
        let n = 10usize;
        let got = map_ordered_with(
            (0..n).collect::<Vec<_>>(),
            1,
            1,
            |&x, d| seen.lock().unwrap().push((x, d)),
            |_: &mut (), x| {
                seen.lock().unwrap().push((x, 0));
                x
            },
        )
        .0;
        assert_eq!(got, (0..n).collect::<Vec<_>>());
        let seen = seen.into_inner().unwrap();
        let mut want = Vec::new();
        for i in 0..n {
            for d in LOOKAHEAD {
                if i + d < n {
                    want.push((i + d, d));
                }
            }
            want.push((i, 0));
        }
        assert_eq!(seen, want);
    }

    #[test]
    fn uses_other_threads_for_large_inputs() {
        let me = std::thread::current().id();
        // Each thread waits at its first item until the other arrives, so
        // both must take part.
        let both = std::sync::Barrier::new(2);
        let ids = map_ordered_with(
            (0..100).collect::<Vec<_>>(),
            2,
            10,
            |_, _| {},
            |seen: &mut bool, _| {
                if !*seen {
                    *seen = true;
                    both.wait();
                }
                std::thread::current().id()
            },
        )
        .0;
        assert_eq!(ids.len(), 100);
        assert!(ids.contains(&me));
        assert!(ids.iter().any(|&i| i != me));
        let ids = map_ordered((0..100).collect::<Vec<_>>(), 2, 60, |_| {
            std::thread::current().id()
        });
        assert!(ids.iter().all(|&i| i == me));
    }
}
