//! Thanos's bucket layout (docs/objstore.md): a block is the directory
//! `<ulid>/` as on disk (`chunks/000001…`, `index`, `tombstones` when
//! there is one), its `meta.json` uploaded last with Thanos's `thanos`
//! section; a block without `meta.json` is a partial upload. Marks sit
//! beside: `<ulid>/deletion-mark.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{ObjstoreError, Result};

/// A block's metadata object.
pub const META: &str = "meta.json";

/// The deletion mark's object, as Thanos's compactor writes it.
pub const DELETION_MARK: &str = "deletion-mark.json";

/// `deletion-mark.json` (Thanos's `metadata.DeletionMark`, version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionMark {
    /// The block's ULID.
    pub id: String,
    /// Unix seconds when it was marked.
    pub deletion_time: i64,
    pub version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

/// The `meta.json` to upload for a block: the local one with Thanos's
/// `thanos` section set: `labels` (the writer's external labels),
/// `downsample.resolution` (kept from the local section, 0 for raw
/// blocks), `source`, `segment_files` and `files` (every uploaded file
/// with its size, and `meta.json` itself without one, as Thanos lists
/// them). `files` are `(relative path, size)` in upload order. Other
/// fields of the local file pass through untouched.
pub fn bucket_meta(
    block: &str,
    local: &[u8],
    files: &[(String, u64)],
    labels: &BTreeMap<String, String>,
    source: &str,
) -> Result<Vec<u8>> {
    let bad = |what: String| ObjstoreError::Meta {
        block: block.to_owned(),
        what,
    };
    let mut v: serde_json::Value =
        serde_json::from_slice(local).map_err(|e| bad(format!("meta.json: {e}")))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| bad("meta.json is not an object".into()))?;
    let resolution = obj
        .get("thanos")
        .and_then(|t| t.get("downsample"))
        .and_then(|d| d.get("resolution"))
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(0);
    let mut listed: Vec<serde_json::Value> = files
        .iter()
        .map(|(p, n)| serde_json::json!({"rel_path": p, "size_bytes": n}))
        .collect();
    listed.push(serde_json::json!({"rel_path": META}));
    let segments: Vec<&str> = files
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("chunks/"))
        .collect();
    obj.insert(
        "thanos".into(),
        serde_json::json!({
            "labels": labels,
            "downsample": {"resolution": resolution},
            "source": source,
            "segment_files": segments,
            "files": listed,
        }),
    );
    serde_json::to_vec_pretty(&v).map_err(|e| bad(format!("encoding meta.json: {e}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn the_thanos_section_is_set_and_the_rest_kept() {
        let local = br#"{"ulid":"01JZ0000000000000000000000","minTime":0,"maxTime":7200000,"stats":{"numSamples":5},"compaction":{"level":1,"sources":["01JZ0000000000000000000000"]},"version":1,"thanos":{"labels":{},"downsample":{"resolution":300000},"source":"cairn"}}"#;
        let labels = BTreeMap::from([("cluster".to_owned(), "gpu-a".to_owned())]);
        let files = vec![("chunks/000001".to_owned(), 10), ("index".to_owned(), 20)];
        let out = bucket_meta("b", local, &files, &labels, "cairn").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["stats"]["numSamples"], 5);
        assert_eq!(v["thanos"]["labels"]["cluster"], "gpu-a");
        assert_eq!(v["thanos"]["downsample"]["resolution"], 300000);
        assert_eq!(v["thanos"]["segment_files"][0], "000001");
        assert_eq!(v["thanos"]["files"][1]["size_bytes"], 20);
        assert_eq!(v["thanos"]["files"][2]["rel_path"], "meta.json");
        assert!(v["thanos"]["files"][2].get("size_bytes").is_none());
        assert!(bucket_meta("b", b"[1]", &files, &labels, "cairn").is_err());
    }
}
