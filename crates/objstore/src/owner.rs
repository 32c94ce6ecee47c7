//! One owner per set of external labels: the Cairn that uploads, marks
//! and deletes the blocks carrying those labels. Two Cairns with the same
//! external labels would mark and delete each other's blocks; the second
//! one is refused at start with a message naming the first.
//!
//! The check is a heartbeat object, `cairn/owners/<hash>.json` (the hash
//! of the sorted labels), holding the owner's instance id (a ULID kept in
//! its data directory's shipper state, so a restart of the same Cairn is
//! the same owner), host, data directory and last heartbeat. A start
//! finding another instance's heartbeat fresher than the stale period is
//! refused; a stale one is taken over (its owner is gone). Every shipper
//! round renews the heartbeat. Best effort: two Cairns started within
//! the same moment can both pass; the docs say so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The heartbeat object's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRecord {
    pub labels: BTreeMap<String, String>,
    pub instance: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub dir: String,
    /// Unix seconds.
    pub heartbeat: i64,
}

/// The heartbeat object's key for `labels`.
pub fn owner_key(labels: &BTreeMap<String, String>) -> String {
    // FNV-1a over "name=value\\n" lines: stable across versions.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (k, v) in labels {
        for b in k.bytes().chain([b'=']).chain(v.bytes()).chain([b'\n']) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("cairn/owners/{h:016x}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_the_labels_only() {
        let a = BTreeMap::from([("cluster".to_owned(), "a".to_owned())]);
        let b = BTreeMap::from([("cluster".to_owned(), "b".to_owned())]);
        assert_eq!(owner_key(&a), owner_key(&a.clone()));
        assert_ne!(owner_key(&a), owner_key(&b));
        assert!(owner_key(&a).starts_with("cairn/owners/"));
    }
}
