//! Compaction planning: which blocks to compact next. Pure functions over
//! block metas, so the policy is tested without touching disk.
//!
//! Policy (Prometheus's leveled compaction):
//! 1. Overlapping blocks (a block starting before the running maximum of the
//!    earlier blocks' `max_time`) are merged first, as one group.
//! 2. Otherwise the newest block is left alone (it may still be backed up
//!    piecewise), and for each range above the smallest one (e.g. 6h, 18h)
//!    the blocks are split into aligned windows `[k·range, (k+1)·range)`;
//!    the first window holding two or more blocks that either spans the
//!    whole range or ends before the newest block starts is compacted.
//! 3. Otherwise a large enough block with more than 5% tombstones per
//!    series (or a small one entirely deleted) is rewritten alone.
//!
//! Block ranges are half-open `[min_time, max_time)`.

use ulid::Ulid;

use crate::meta::BlockMeta;

/// `min`, `min·step`, `min·step²`, ... (`steps` values).
pub fn exponential_ranges(min: i64, steps: usize, step: i64) -> Vec<i64> {
    let mut out = Vec::with_capacity(steps);
    let mut r = min;
    for _ in 0..steps {
        out.push(r);
        r = r.saturating_mul(step);
    }
    out
}

/// The compaction ranges for a database: ×3 from `block_range`, none above
/// `max_block_duration`.
pub fn compaction_ranges(block_range: i64, max_block_duration: i64) -> Vec<i64> {
    exponential_ranges(block_range, 10, 3)
        .into_iter()
        .filter(|r| *r <= max_block_duration.max(block_range))
        .collect()
}

/// The start of the aligned window of width `w` holding `t`.
pub fn align_down(t: i64, w: i64) -> i64 {
    if w <= 0 {
        return t;
    }
    t.div_euclid(w) * w
}

/// Plans one compaction; returns the ulids of the blocks to merge (empty for
/// none). `ranges` are the compaction ranges, smallest first.
pub fn plan(metas: &[BlockMeta], ranges: &[i64]) -> Vec<Ulid> {
    let mut ms: Vec<&BlockMeta> = metas.iter().filter(|m| !m.compaction.deletable).collect();
    ms.sort_by_key(|m| (m.min_time, m.ulid));
    let over = overlapping(&ms);
    if !over.is_empty() {
        return over;
    }
    if ms.is_empty() {
        return Vec::new();
    }
    let newest_min = ms.last().map_or(i64::MAX, |m| m.min_time);
    ms.pop();
    if let Some(group) = select_by_range(&ms, ranges, newest_min) {
        return group;
    }
    let half = ranges.get(ranges.len() / 2).copied().unwrap_or(i64::MAX);
    for m in ms.iter().rev() {
        let s = &m.stats;
        if m.max_time - m.min_time < half {
            if s.num_tombstones > 0 && s.num_tombstones >= s.num_series {
                return vec![m.ulid];
            }
            break;
        }
        if s.num_tombstones as f64 / (s.num_series as f64 + 1.0) > 0.05 {
            return vec![m.ulid];
        }
    }
    Vec::new()
}

/// The first run of blocks (sorted by min time) that overlap each other.
fn overlapping(ms: &[&BlockMeta]) -> Vec<Ulid> {
    let mut out = Vec::new();
    let Some(first) = ms.first() else { return out };
    let mut global_max = first.max_time;
    for w in ms.windows(2) {
        let [prev, cur] = w else { continue };
        if cur.min_time < global_max {
            if out.is_empty() {
                out.push(prev.ulid);
            }
            out.push(cur.ulid);
        } else if !out.is_empty() {
            break;
        }
        global_max = global_max.max(cur.max_time);
    }
    out
}

fn select_by_range(ms: &[&BlockMeta], ranges: &[i64], newest_min: i64) -> Option<Vec<Ulid>> {
    for &r in ranges.iter().skip(1) {
        'groups: for g in split_by_range(ms, r) {
            if g.iter().any(|m| m.compaction.failed) {
                continue 'groups;
            }
            let (Some(a), Some(b)) = (g.first(), g.last()) else {
                continue;
            };
            let (mint, maxt) = (a.min_time, b.max_time);
            if (maxt - mint == r || maxt <= newest_min) && g.len() > 1 {
                return Some(g.iter().map(|m| m.ulid).collect());
            }
        }
    }
    None
}

/// Groups blocks (sorted by min time) into aligned windows of width `r`;
/// blocks that straddle a window end are left out.
fn split_by_range<'m>(ms: &[&'m BlockMeta], r: i64) -> Vec<Vec<&'m BlockMeta>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(m) = ms.get(i) {
        let t0 = align_down(m.min_time, r);
        if m.max_time > t0 + r {
            i += 1;
            continue;
        }
        let mut g = Vec::new();
        while let Some(m) = ms.get(i) {
            if m.max_time > t0 + r {
                break;
            }
            g.push(*m);
            i += 1;
        }
        if !g.is_empty() {
            out.push(g);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn m(id: u128, a: i64, b: i64) -> BlockMeta {
        BlockMeta::new(Ulid(id), a, b)
    }

    #[test]
    fn ranges_grow_by_three_and_stop_at_the_maximum() {
        assert_eq!(
            compaction_ranges(2 * H, 31 * 24 * H),
            vec![2 * H, 6 * H, 18 * H, 54 * H, 162 * H, 486 * H]
        );
        assert_eq!(compaction_ranges(2 * H, 10 * H), vec![2 * H, 6 * H]);
    }

    #[test]
    fn overlapping_blocks_come_first() {
        let ms = vec![
            m(1, 0, 2 * H),
            m(2, 2 * H, 4 * H),
            m(3, 3 * H, 5 * H),
            m(4, 6 * H, 8 * H),
        ];
        assert_eq!(plan(&ms, &[2 * H, 6 * H]), vec![Ulid(2), Ulid(3)]);
    }

    #[test]
    fn three_2h_blocks_make_a_6h_block_but_the_newest_waits() {
        let r = [2 * H, 6 * H, 18 * H];
        let two = vec![m(1, 0, 2 * H), m(2, 2 * H, 4 * H)];
        // Only two blocks, and the newest is excluded: nothing to do.
        assert!(plan(&two, &r).is_empty());
        let mut four = two.clone();
        four.push(m(3, 4 * H, 6 * H));
        four.push(m(4, 6 * H, 8 * H));
        assert_eq!(plan(&four, &r), vec![Ulid(1), Ulid(2), Ulid(3)]);
        // A partial window before the newest block also compacts.
        let gap = vec![m(1, 0, 2 * H), m(2, 2 * H, 4 * H), m(5, 6 * H, 8 * H)];
        assert_eq!(plan(&gap, &r), vec![Ulid(1), Ulid(2)]);
    }

    #[test]
    fn tombstone_heavy_big_block_is_rewritten() {
        let mut big = m(1, 0, 18 * H);
        big.stats.num_series = 10;
        big.stats.num_tombstones = 5;
        let ms = vec![big, m(2, 18 * H, 20 * H)];
        assert_eq!(plan(&ms, &[2 * H, 6 * H, 18 * H]), vec![Ulid(1)]);
    }

    #[test]
    fn negative_times_align_down() {
        assert_eq!(align_down(-1, 10), -10);
        assert_eq!(align_down(10, 10), 10);
    }
}
