//! The crate's one error type.

use std::path::PathBuf;

/// What went wrong with the bucket, its configuration or an upload.
#[derive(Debug, thiserror::Error)]
pub enum ObjstoreError {
    /// The configuration file could not be read.
    #[error("reading the object-store configuration {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The configuration is not valid (Thanos's format; `what` says where).
    #[error("object-store configuration: {what}")]
    Config { what: String },
    /// The bucket refused or failed an operation on `key`.
    #[error("bucket {op} {key}: {source}")]
    Bucket {
        op: &'static str,
        key: String,
        source: Box<object_store::Error>,
    },
    /// A local file of a block could not be read.
    #[error("reading {path}: {source}")]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A block's `meta.json` (local or in the bucket) is not what was
    /// expected.
    #[error("block {block}: {what}")]
    Meta { block: String, what: String },
    /// The shipper's state file is damaged: expected and found.
    #[error("shipper state {path}: expected {expected}, found {found}")]
    StateCorrupt {
        path: PathBuf,
        expected: String,
        found: String,
    },
    /// Another Cairn owns the blocks of these external labels.
    #[error("another Cairn ({host}, data directory {dir}) uploads and compacts the blocks of the external labels {labels} in this bucket (its heartbeat is {age_s} s old); give this one other external labels (--storage.external-label), or stop the other")]
    Owned {
        labels: String,
        host: String,
        dir: String,
        age_s: i64,
    },
    /// A block in the bucket could not be read for a query (its index
    /// header, a segment, its tombstones): the block is named.
    #[error("block {block} in the bucket: {source}")]
    BlockRead {
        block: String,
        source: cairn_tsdb::BoxError,
    },
    /// The runtime for the bucket's requests could not be started.
    #[error("starting the object-store runtime: {0}")]
    Runtime(std::io::Error),
}

pub type Result<T> = std::result::Result<T, ObjstoreError>;

impl ObjstoreError {
    /// Whether this says the configuration is wrong (credentials,
    /// permissions, a bucket that does not exist, a bad file), as opposed
    /// to a bucket that cannot be reached for now: the first stops a
    /// start, the second only delays uploads.
    pub fn is_configuration(&self) -> bool {
        match self {
            ObjstoreError::Config { .. } | ObjstoreError::ConfigRead { .. } => true,
            ObjstoreError::Bucket { source, .. } => match **source {
                object_store::Error::Unauthenticated { .. }
                | object_store::Error::PermissionDenied { .. }
                | object_store::Error::NotFound { .. } => true,
                _ => {
                    let m = source.to_string();
                    [
                        "InvalidAccessKeyId",
                        "SignatureDoesNotMatch",
                        "AccessDenied",
                        "NoSuchBucket",
                        "Forbidden",
                        "403",
                    ]
                    .iter()
                    .any(|s| m.contains(s))
                }
            },
            _ => false,
        }
    }
}
