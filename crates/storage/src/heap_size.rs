//! Estimates of what in-memory structures hold, for the memory accounting
//! of the head (`Head::memory`) and of the server's write caches
//! (`/debug/memory`), which both count hash tables by capacity.

/// Bytes of a hashbrown table (the standard `HashMap`) that reports
/// `capacity` for entries of `entry` bytes: buckets are a power of two, at
/// most 7/8 full, with one control byte each and a trailing group.
pub fn hash_table_bytes(capacity: usize, entry: usize) -> u64 {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    (buckets * (entry + 1) + 16) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_hashbrown_sizing() {
        assert_eq!(hash_table_bytes(0, 16), 0);
        // capacity 3 -> 4 buckets, 7 -> 8 buckets, 14 -> 16, 28 -> 32.
        assert_eq!(hash_table_bytes(3, 16), 4 * 17 + 16);
        assert_eq!(hash_table_bytes(7, 16), 8 * 17 + 16);
        assert_eq!(hash_table_bytes(14, 16), 16 * 17 + 16);
        assert_eq!(hash_table_bytes(28, 8), 32 * 9 + 16);
    }

    #[test]
    fn real_map_capacities_match_the_estimate() {
        // The estimate inverts `capacity()`: check it against the real map.
        for n in [1usize, 3, 7, 8, 13, 14, 15, 100, 1000, 5000] {
            let m: std::collections::HashMap<u64, u64> = (0..n as u64).map(|i| (i, i)).collect();
            let buckets = (hash_table_bytes(m.capacity(), 16) - 16) / 17;
            assert!(buckets.is_power_of_two(), "{n}: {buckets}");
            assert!(
                buckets as usize * 7 / 8 >= m.capacity().min(buckets as usize - 1),
                "{n}"
            );
            assert!(
                (buckets as usize) < m.capacity() * 2 + 8,
                "{n}: {buckets} for {}",
                m.capacity()
            );
        }
    }
}
