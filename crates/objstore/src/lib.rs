//! Blocks in object storage (issue 17's first part): Thanos's bucket
//! configuration ([`BucketConfig`]), a blocking [`Bucket`] over the
//! `object_store` crate (S3 and local filesystem), and the [`Shipper`],
//! which uploads every block the database completes in Thanos's bucket
//! layout (`meta.json` last, with Thanos's `thanos` section) and marks
//! the blocks a compaction replaced for deletion, as Thanos's compactor
//! does. The [`BucketStore`] serves the bucket's blocks to queries
//! (index headers cached on disk, byte ranges through a bounded cache).
//!
//! Dependencies point down: this crate reads blocks through `cairn_tsdb`'s
//! types; the server wires a shipper to a database.

mod bucket;
mod config;
mod error;
mod layout;
mod owner;
mod shipper;
mod store;

pub use bucket::{Bucket, ObjectInfo};
pub use config::{BucketConfig, S3Config, S3_IGNORED};
pub use error::{ObjstoreError, Result};
pub use layout::{bucket_meta, DeletionMark, DELETION_MARK, META};
pub use owner::{owner_key, OwnerRecord};
pub use shipper::{
    Marked, ShipState, Shipped, Shipper, ShipperEvent, ShipperOptions, SyncReport, STATE_FILE,
};
pub use store::{
    BucketStore, CacheStats, StoreEvent, StoreOptions, StoreStats, INDEX_HEADER, PAGE_SIZE,
};
