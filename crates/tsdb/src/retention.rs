//! Retention: which blocks to delete for age or size. Pure selection over
//! block metas and sizes; the `Db` does the deleting.
//!
//! - Time: blocks are ordered newest first by `max_time`; every block whose
//!   `max_time` lies more than `retention_time` before the newest block's
//!   `max_time` goes. A `retention_time` of 0 disables this.
//! - Size: walking newest first and adding each block's bytes to
//!   `base_bytes` (WAL and head chunks), the first block that pushes the sum
//!   above `retention_size` goes with every older block. 0 disables this.
//! - Blocks marked deletable in meta.json always go.

use std::collections::BTreeSet;

use ulid::Ulid;

use crate::meta::BlockMeta;

/// Why a block was selected for deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionReason {
    Time,
    Size,
    Deletable,
}

/// Blocks to delete, each with its reason (time first, then size).
pub fn select(
    blocks: &[(BlockMeta, u64)],
    retention_time: i64,
    retention_size: u64,
    base_bytes: u64,
) -> Vec<(Ulid, RetentionReason)> {
    let mut out: Vec<(Ulid, RetentionReason)> = Vec::new();
    let mut seen = BTreeSet::new();
    for (m, _) in blocks {
        if m.compaction.deletable && seen.insert(m.ulid) {
            out.push((m.ulid, RetentionReason::Deletable));
        }
    }
    let mut order: Vec<&(BlockMeta, u64)> = blocks
        .iter()
        .filter(|(m, _)| !m.compaction.deletable)
        .collect();
    order.sort_by(|a, b| {
        b.0.max_time
            .cmp(&a.0.max_time)
            .then(b.0.ulid.cmp(&a.0.ulid))
    });
    if retention_time > 0 {
        if let Some(newest) = order.first().map(|b| b.0.max_time) {
            for (m, _) in &order {
                if newest.saturating_sub(m.max_time) > retention_time && seen.insert(m.ulid) {
                    out.push((m.ulid, RetentionReason::Time));
                }
            }
        }
    }
    if retention_size > 0 {
        let mut total = base_bytes;
        let mut over = false;
        for (m, size) in &order {
            total = total.saturating_add(*size);
            over |= total > retention_size;
            if over && seen.insert(m.ulid) {
                out.push((m.ulid, RetentionReason::Size));
            }
        }
    }
    out
}

/// [`select`] for a directory holding several resolutions: each level's
/// blocks are aged against its own retention (`(resolution, retention)`;
/// 0 keeps the level; a level not listed is kept), relative to the newest
/// block of any level; the size limit counts every level together.
pub fn select_levels(
    blocks: &[(BlockMeta, u64)],
    times: &[(i64, i64)],
    retention_size: u64,
    base_bytes: u64,
) -> Vec<(Ulid, RetentionReason)> {
    let newest = blocks
        .iter()
        .filter(|(m, _)| !m.compaction.deletable)
        .map(|(m, _)| m.max_time)
        .max();
    let mut out: Vec<(Ulid, RetentionReason)> = select(blocks, 0, retention_size, base_bytes);
    let mut seen: BTreeSet<Ulid> = out.iter().map(|x| x.0).collect();
    let Some(newest) = newest else { return out };
    for (m, _) in blocks {
        let keep = times
            .iter()
            .find(|(r, _)| *r == m.resolution())
            .map_or(0, |x| x.1);
        if keep > 0 && newest.saturating_sub(m.max_time) > keep && seen.insert(m.ulid) {
            out.push((m.ulid, RetentionReason::Time));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    fn b(id: u128, a: i64, z: i64, size: u64) -> (BlockMeta, u64) {
        (BlockMeta::new(Ulid(id), a, z), size)
    }

    #[test]
    fn time_retention_keeps_blocks_within_the_window_of_the_newest() {
        let bs = vec![
            b(1, 0, 2 * H, 1),
            b(2, 2 * H, 4 * H, 1),
            b(3, 4 * H, 6 * H, 1),
        ];
        let got = select(&bs, 3 * H, 0, 0);
        assert_eq!(got, vec![(Ulid(1), RetentionReason::Time)]);
        assert!(select(&bs, 0, 0, 0).is_empty());
    }

    #[test]
    fn size_retention_drops_the_oldest_once_over_budget() {
        let bs = vec![
            b(1, 0, 2 * H, 100),
            b(2, 2 * H, 4 * H, 100),
            b(3, 4 * H, 6 * H, 100),
        ];
        assert_eq!(
            select(&bs, 0, 250, 0),
            vec![(Ulid(1), RetentionReason::Size)]
        );
        assert_eq!(
            select(&bs, 0, 250, 60),
            vec![
                (Ulid(2), RetentionReason::Size),
                (Ulid(1), RetentionReason::Size)
            ]
        );
        assert!(select(&bs, 0, 300, 0).is_empty());
    }

    fn level(id: u128, a: i64, z: i64, size: u64, res: i64) -> (BlockMeta, u64) {
        let (mut m, s) = b(id, a, z, size);
        m.thanos = Some(crate::meta::ThanosMeta {
            downsample: crate::meta::ThanosDownsample { resolution: res },
            ..crate::meta::ThanosMeta::default()
        });
        (m, s)
    }

    #[test]
    fn each_level_ages_against_its_own_retention_and_size_counts_them_all() {
        const R5: i64 = 300_000;
        const R1: i64 = 3_600_000;
        let bs = vec![
            b(1, 0, 2 * H, 10),
            b(2, 8 * H, 10 * H, 10),
            level(3, 1, 2 * H + 1, 5, R5),
            level(4, 8 * H + 1, 10 * H + 1, 5, R5),
            level(5, 1, 2 * H + 1, 1, R1),
        ];
        // Raw keeps 4 h, 5m keeps 6 h, 1h forever: only raw block 1 goes
        // (8 h old), its 5m block (8 h old) goes too, the 1h block stays.
        let got = select_levels(&bs, &[(0, 4 * H), (R5, 6 * H), (R1, 0)], 0, 0);
        let mut ids: Vec<u128> = got.iter().map(|g| g.0 .0).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 3]);
        // 5m kept longer than raw: its block survives the raw one.
        let got = select_levels(&bs, &[(0, 4 * H), (R5, 9 * H), (R1, 0)], 0, 0);
        assert_eq!(got, vec![(Ulid(1), RetentionReason::Time)]);
        // Size: 31 bytes in all, newest first 5 + 10 + 1 + 5 + 10; a
        // 20-byte limit is passed at the fourth block (21): it and every
        // older block go, whatever their level.
        let got = select_levels(&bs, &[], 20, 0);
        let mut ids: Vec<u128> = got.iter().map(|g| g.0 .0).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 3]);
        assert!(got.iter().all(|g| g.1 == RetentionReason::Size));
    }
}
