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
/// `thanos` section set (Thanos's `metadata.Thanos`, version 1):
/// `labels` (the writer's external labels),
/// `downsample.resolution` (kept from the local section, 0 for raw
/// blocks), `source`, `segment_files` (sorted) and `files` (every
/// uploaded file with its size and `meta.json` itself without one, sorted
/// by relative path, as Thanos lists them). `files` are `(relative path,
/// size)`. Other fields of the local file pass through untouched.
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
    // Sorted by relative path, meta.json without a size (Thanos's
    // `metadata.File` list).
    let mut listed: Vec<(String, Option<u64>)> = files
        .iter()
        .map(|(p, n)| (p.clone(), Some(*n)))
        .chain([(META.to_owned(), None)])
        .collect();
    listed.sort();
    let listed: Vec<serde_json::Value> = listed
        .into_iter()
        .map(|(p, n)| match n {
            Some(n) => serde_json::json!({"rel_path": p, "size_bytes": n}),
            None => serde_json::json!({"rel_path": p}),
        })
        .collect();
    let mut segments: Vec<&str> = files
        .iter()
        .filter_map(|(p, _)| p.strip_prefix("chunks/"))
        .collect();
    segments.sort_unstable();
    obj.insert(
        "thanos".into(),
        serde_json::json!({
            "version": 1,
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
        // Field by field, Thanos's `metadata.Thanos` (pkg/block/metadata):
        // version int, labels map[string]string, downsample {resolution
        // int64}, source string, segment_files []string (sorted), files
        // []{rel_path string, size_bytes int64 (omitted when 0)} sorted by
        // rel_path. Nothing else.
        let t = v["thanos"].as_object().unwrap();
        let mut keys: Vec<&str> = t.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "downsample",
                "files",
                "labels",
                "segment_files",
                "source",
                "version"
            ]
        );
        assert_eq!(t["version"], 1);
        assert!(t["labels"]
            .as_object()
            .unwrap()
            .values()
            .all(|x| x.is_string()));
        assert_eq!(t["downsample"].as_object().unwrap().len(), 1);
        assert!(t["downsample"]["resolution"].is_i64());
        assert!(t["source"].is_string());
        let paths: Vec<&str> = t["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let o = f.as_object().unwrap();
                assert!(o.keys().all(|k| k == "rel_path" || k == "size_bytes"));
                assert!(o.get("size_bytes").is_none_or(serde_json::Value::is_i64));
                o["rel_path"].as_str().unwrap()
            })
            .collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        assert_eq!(paths, sorted);
        // The Prometheus part is the local file's.
        for k in [
            "ulid",
            "minTime",
            "maxTime",
            "stats",
            "compaction",
            "version",
        ] {
            assert!(v.get(k).is_some(), "{k}");
        }
        assert!(bucket_meta("b", b"[1]", &files, &labels, "cairn").is_err());
    }
}
