//! Per-series work spread over threads.
//!
//! A query's cost is mostly per series (decoding its chunks, evaluating a
//! range function at every step), and series are independent, so a large
//! selection is cut into contiguous parts that run on scoped threads, the
//! calling thread taking the first. Results come back in input order, so
//! everything downstream (label order, the order aggregations see series in,
//! and so every floating-point sum) is the same as a serial run.

/// Maps `f` over `items`, in order, on up to `threads` threads (the caller's
/// included), giving each at least `min_per_thread` items; small inputs run
/// on the calling thread alone. A panic in `f` is re-raised here.
pub(crate) fn map_ordered<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    min_per_thread: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    map_ordered_with(items, threads, min_per_thread, |_: &mut (), x| f(x))
}

/// [`map_ordered`] with scratch state `S`, created once per thread and
/// handed to every call on that thread (reusable buffers).
pub(crate) fn map_ordered_with<T: Send, R: Send, S: Default>(
    items: Vec<T>,
    threads: usize,
    min_per_thread: usize,
    f: impl Fn(&mut S, T) -> R + Sync,
) -> Vec<R> {
    let n = items.len();
    let k = threads.min(n / min_per_thread.max(1)).max(1);
    let run = |p: Vec<T>| -> Vec<R> {
        let mut st = S::default();
        p.into_iter().map(|x| f(&mut st, x)).collect()
    };
    if k == 1 {
        return run(items);
    }
    let per = n.div_ceil(k);
    let mut parts: Vec<Vec<T>> = Vec::with_capacity(k);
    let mut it = items.into_iter();
    loop {
        let p: Vec<T> = it.by_ref().take(per).collect();
        if p.is_empty() {
            break;
        }
        parts.push(p);
    }
    let run = &run;
    std::thread::scope(|s| {
        let mut parts = parts.into_iter();
        let first = parts.next();
        let others: Vec<_> = parts.map(|p| s.spawn(move || run(p))).collect();
        let mut out: Vec<R> = Vec::with_capacity(n);
        out.extend(first.map(run).into_iter().flatten());
        for h in others {
            match h.join() {
                Ok(v) => out.extend(v),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        out
    })
}

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
    fn uses_other_threads_for_large_inputs() {
        let me = std::thread::current().id();
        let ids = map_ordered((0..100).collect::<Vec<_>>(), 2, 10, |_| {
            std::thread::current().id()
        });
        assert_eq!(ids.first(), Some(&me));
        assert!(ids.iter().any(|&i| i != me));
        let ids = map_ordered((0..100).collect::<Vec<_>>(), 2, 60, |_| {
            std::thread::current().id()
        });
        assert!(ids.iter().all(|&i| i == me));
    }
}
