//! Grouping keys: a hash of a label set over chosen labels, the join key
//! of vector matching and the group key of aggregations. A leaf shared by
//! the binary-operator and aggregation kernels.

use cairn_model::{Labels, METRIC_NAME};

/// FNV-1a over the labels `names` (`on`: those listed; otherwise all but
/// those listed and the metric name).
pub(crate) fn signature(l: &Labels, names: &[String], on: bool) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    if on && names.is_empty() {
        return h;
    }
    let mut eat = |b: &[u8]| {
        for &x in b {
            h ^= u64::from(x);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    };
    // Labels come sorted by name: with `on`/`by`, none after the last
    // listed name can count, and the rest of the set (often several cache
    // lines not read yet) is left alone.
    let last = if on {
        names.iter().map(String::as_str).max()
    } else {
        None
    };
    for lb in l.iter() {
        if last.is_some_and(|m| lb.name > m) {
            break;
        }
        let listed = names.iter().any(|n| n == lb.name);
        let take = if on {
            listed
        } else {
            !listed && lb.name != METRIC_NAME
        };
        if take {
            eat(lb.name.as_bytes());
            eat(lb.value.as_bytes());
        }
    }
    h
}
