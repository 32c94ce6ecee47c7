//! The time-series database: head, blocks, meta.json, compaction, retention.
