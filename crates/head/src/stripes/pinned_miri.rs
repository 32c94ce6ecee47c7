//! `Pinned`'s unsafe paths, small enough for Miri (`scripts/miri.sh` runs
//! this module under `cargo miri test`; it also runs as ordinary tests):
//! pinning through both lookups and `adopt`, dereferencing on several
//! threads, truncation attempts while pinned, unpinning on another thread,
//! and the series being freed only after the last pin is gone. Miri checks
//! that no pointer outlives its series and that the pin count and the
//! maps' locks order every access (data races, weak memory).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cairn_model::labels;

use super::{Pinned, StripeSeries};

/// Loop counts: Miri interprets, so it gets fewer rounds.
const ROUNDS: usize = if cfg!(miri) { 16 } else { 2_000 };

/// What truncation asks before it removes a series.
fn unpinned(s: &crate::series::MemSeries) -> bool {
    !s.is_pinned()
}

/// Pins `r` the way an appender pins a new series: created pinned, the
/// extra `Arc` handed back to the maps by `adopt`.
fn create_pinned(st: &StripeSeries, r: u64) -> Pinned<'_> {
    let l = labels!("__name__" => "m", "r" => &r.to_string());
    let (s, _) = st.get_or_create_pinned(&l, || r, |_| {});
    // SAFETY: `s` was pinned by `get_or_create_pinned` on `st` and not unpinned.
    unsafe { st.adopt(s) }
}

#[test]
fn pinned_series_survive_truncation_attempts_until_unpinned() {
    let st = StripeSeries::new(2);
    let p = create_pinned(&st, 7);
    // Only the two maps (and this lookup) hold the series now: the pin is
    // no reference count.
    assert_eq!(st.get(7).map(|s| Arc::strong_count(&s)), Some(3));
    let q = st.get_pinned(7).expect("series 7");
    assert_eq!(p.pending.load(Ordering::Acquire), 2);

    std::thread::scope(|sc| {
        // Truncation, attempted over and over while both pins hold.
        sc.spawn(|| {
            for _ in 0..ROUNDS {
                assert!(st.remove_if(7, unpinned).is_none());
            }
        });
        // Readers and writers through the pins, on other threads.
        for pin in [&p, &q] {
            sc.spawn(move || {
                for i in 0..ROUNDS {
                    assert_eq!(pin.r, 7);
                    assert_eq!(pin.labels.get("r"), Some("7"));
                    pin.data.lock().last_v += i as f64;
                }
            });
        }
    });

    // Unpinning on another thread (`Pinned` is `Send`).
    std::thread::scope(|sc| {
        sc.spawn(move || drop(q));
    });
    assert!(st.remove_if(7, unpinned).is_none(), "still pinned once");
    let total: f64 = (0..ROUNDS).map(|i| i as f64).sum::<f64>() * 2.0;
    assert_eq!(p.data.lock().last_v, total);
    drop(p);

    let gone = st
        .remove_if(7, unpinned)
        .expect("unpinned series is removed");
    assert_eq!(Arc::strong_count(&gone), 1, "the maps let go of it");
    assert_eq!(gone.pending.load(Ordering::Acquire), 0);
    drop(gone); // frees the series
    assert!(st.get_pinned(7).is_none());
}

#[test]
fn pinned_lookups_race_with_truncation() {
    let st = StripeSeries::new(1);
    let stop = AtomicBool::new(false);
    let l = labels!("__name__" => "m", "r" => "1");
    std::thread::scope(|sc| {
        // An appender: pins by ref or by labels (creating), reads, unpins.
        sc.spawn(|| {
            for i in 0..ROUNDS {
                let p = if i % 2 == 0 {
                    st.get_pinned(1)
                } else {
                    Some(create_pinned(&st, 1))
                };
                if let Some(p) = p {
                    assert!(p.is_pinned());
                    assert_eq!((p.r, &p.labels), (1, &l));
                    p.data.lock().last_v = i as f64;
                }
            }
            stop.store(true, Ordering::Release);
        });
        // Truncation: removes the series whenever it is unpinned; the
        // removed `Arc` is the last one, so the series is freed right here
        // while the appender may be about to pin it again.
        sc.spawn(|| {
            while !stop.load(Ordering::Acquire) {
                if let Some(s) = st.remove_if(1, unpinned) {
                    assert!(!s.is_pinned());
                    drop(s);
                }
                std::thread::yield_now();
            }
        });
    });
    if let Some(s) = st.get(1) {
        assert!(!s.is_pinned(), "every pin was released");
    }
}
