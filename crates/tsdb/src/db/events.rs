//! Events the database reports about its background work, so callers and
//! tests can wait for work to happen instead of sleeping.

use std::sync::mpsc::{channel, Receiver, Sender};

use parking_lot::Mutex;
use ulid::Ulid;

use crate::retention::RetentionReason;

/// Something the database did to its blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbEvent {
    /// The head's `[min_time, max_time)` was persisted as a new block.
    BlockCut {
        ulid: Ulid,
        min_time: i64,
        max_time: i64,
    },
    /// Late samples (older than the head's range; see
    /// `cairn_head::LateFlush`) were written into `blocks`, one per
    /// block range they fall in; compaction merges each with the blocks it
    /// overlaps.
    LateFlushed { blocks: Vec<Ulid>, samples: u64 },
    /// `parents` were merged into `ulid` (`None` when nothing survived
    /// tombstones) and removed.
    Compacted {
        ulid: Option<Ulid>,
        parents: Vec<Ulid>,
        level: u32,
    },
    /// `input` (a raw or 5-minute block) was summarised at `resolution` ms
    /// into the new block `ulid`.
    Downsampled {
        ulid: Ulid,
        input: Ulid,
        resolution: i64,
    },
    /// A block was deleted by retention.
    RetentionDeleted { ulid: Ulid, reason: RetentionReason },
    /// A block was rewritten without its tombstones.
    TombstonesCleaned { old: Ulid, new: Option<Ulid> },
    /// A background maintenance round failed.
    Failed { message: String },
}

/// Fan-out to every subscriber; closed receivers are dropped.
#[derive(Default)]
pub(crate) struct EventBus {
    subs: Mutex<Vec<Sender<DbEvent>>>,
}

impl EventBus {
    pub(crate) fn subscribe(&self) -> Receiver<DbEvent> {
        let (tx, rx) = channel();
        self.subs.lock().push(tx);
        rx
    }

    pub(crate) fn emit(&self, e: DbEvent) {
        tracing::info!(event = ?e, "tsdb");
        self.subs.lock().retain(|s| s.send(e.clone()).is_ok());
    }
}
