//! The bucket of `--objstore.config-file` as `cairn serve` wires it: the
//! bucket opened and checked at start, the shipper that uploads this
//! Cairn's blocks (and owns their retention and compaction in the bucket),
//! and the store that serves the bucket's blocks to queries.

use std::sync::Arc;

use anyhow::Context;

use super::{dur, label_pairs};
use crate::cli::ServeArgs;
use crate::units::parse_bytes;

/// The bucket of `--objstore.config-file`, when given, and whether it
/// answered now: wrong credentials or a missing bucket stop the start; an
/// unreachable bucket is logged (uploads and the block list wait for it).
pub(super) fn open_bucket(
    a: &ServeArgs,
) -> anyhow::Result<Option<(Arc<cairn_objstore::Bucket>, bool)>> {
    let Some(path) = &a.objstore_config_file else {
        return Ok(None);
    };
    let cfg = cairn_objstore::BucketConfig::from_file(path)
        .map_err(|e| anyhow::anyhow!("--objstore.config-file: {e}"))?;
    let bucket = Arc::new(
        cairn_objstore::Bucket::open(&cfg)
            .map_err(|e| anyhow::anyhow!("--objstore.config-file: {e}"))?,
    );
    let reachable = match bucket.check() {
        Ok(()) => {
            tracing::info!(bucket = ?bucket, "object storage reachable");
            true
        }
        Err(e) if e.is_configuration() => {
            anyhow::bail!("--objstore.config-file {}: {e}", path.display())
        }
        Err(e) => {
            tracing::warn!(bucket = ?bucket, error = %e, "object storage not reachable now; blocks stay local and are uploaded once it is, queries read it once it is");
            false
        }
    };
    Ok(Some((bucket, reachable)))
}

/// The shipper uploading this Cairn's blocks to `bucket`, once it has
/// claimed ownership of its external labels there (another live owner
/// stops the start).
pub(super) fn shipper(
    a: &ServeArgs,
    labels: &std::collections::BTreeMap<String, String>,
    bucket: Arc<cairn_objstore::Bucket>,
) -> anyhow::Result<Arc<cairn_objstore::Shipper>> {
    let path = a.objstore_config_file.clone().unwrap_or_default();
    let keep = |flag: &str, v: &str| -> anyhow::Result<std::time::Duration> {
        Ok(std::time::Duration::from_millis(dur(flag, v)?.max(0) as u64))
    };
    let s = cairn_objstore::Shipper::new(
        bucket,
        &a.tsdb_path,
        cairn_objstore::ShipperOptions {
            labels: labels.clone(),
            host: std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
            retention: vec![
                (
                    0,
                    keep(
                        "objstore.retention.resolution-raw",
                        &a.objstore_retention_raw,
                    )?,
                ),
                (
                    300_000,
                    keep("objstore.retention.resolution-5m", &a.objstore_retention_5m)?,
                ),
                (
                    3_600_000,
                    keep("objstore.retention.resolution-1h", &a.objstore_retention_1h)?,
                ),
            ],
            source: "cairn".into(),
            ..cairn_objstore::ShipperOptions::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("object storage: {e}"))?;
    // One owner per set of external labels in a bucket.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    match s.claim(now_s, OWNER_STALE) {
        Ok(()) => {}
        Err(e @ cairn_objstore::ObjstoreError::Owned { .. }) => {
            anyhow::bail!("--objstore.config-file {}: {e}", path.display())
        }
        Err(e) => {
            tracing::warn!(error = %e, "object storage: the owner check could not be made now")
        }
    }
    Ok(Arc::new(s))
}

/// The store serving the bucket's blocks to queries: its block list read
/// once now when the bucket answered at start (`reachable`; else the
/// start does not wait for it), then refreshed every
/// `--objstore.sync-interval`.
pub(super) fn bucket_store(
    a: &ServeArgs,
    bucket: Arc<cairn_objstore::Bucket>,
    reachable: bool,
    owner_labels: Option<std::collections::BTreeMap<String, String>>,
) -> anyhow::Result<Arc<cairn_objstore::BucketStore>> {
    let cache_bytes = parse_bytes(&a.objstore_cache_size)
        .map_err(|e| anyhow::anyhow!("--objstore.cache.size: {e}"))?;
    let interval = dur("objstore.sync-interval", &a.objstore_sync_interval)?;
    if interval <= 0 {
        anyhow::bail!("--objstore.sync-interval must be positive");
    }
    let cache_dir = a
        .objstore_cache_dir
        .clone()
        .unwrap_or_else(|| a.tsdb_path.join("bucket-cache"));
    let st = Arc::new(
        cairn_objstore::BucketStore::new(
            bucket,
            cairn_objstore::StoreOptions {
                cache_dir,
                cache_bytes,
                max_requests: a.objstore_max_concurrency.max(1),
                max_open_blocks: a.objstore_max_open_blocks,
                serve_labels: label_pairs(
                    "objstore.serve-external-label",
                    &a.objstore_serve_labels,
                )?,
                owner_labels,
            },
        )
        .map_err(|e| anyhow::anyhow!("object storage: {e}"))?,
    );
    if reachable {
        match st.refresh() {
            Ok(n) => tracing::info!(blocks = n, "serving the bucket's blocks to queries"),
            Err(e) => {
                tracing::warn!(error = %e, "listing the bucket's blocks failed; retried every --objstore.sync-interval")
            }
        }
    } else {
        // Tried at once in the background, so the start does not wait.
        let w = Arc::downgrade(&st);
        std::thread::Builder::new()
            .name("cairn-bucket-sync".into())
            .spawn(move || {
                if let Some(Err(e)) = w.upgrade().map(|s| s.refresh()) {
                    tracing::warn!(error = %e, "listing the bucket's blocks failed; retried every --objstore.sync-interval");
                }
            })
            .context("starting the bucket's block list refresh")?;
    }
    st.spawn_refresh(std::time::Duration::from_millis(interval as u64))
        .context("starting the bucket's block list refresh")?;
    Ok(st)
}

/// Another Cairn's owner heartbeat older than this is taken over (the
/// shipper renews its own every round, at most `SHIPPER_INTERVAL` apart).
const OWNER_STALE: std::time::Duration = std::time::Duration::from_secs(300);

/// How often the shipper retries when no block event comes.
pub(super) const SHIPPER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);
