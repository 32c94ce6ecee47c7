//! The maintenance thread: every interval it cuts the head, compacts and
//! applies retention. It holds only a weak reference, so dropping the last
//! `Arc<Db>` (or calling `Db::close`) stops it.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Weak;
use std::time::Duration;

use super::{Db, DbEvent};

pub(crate) fn run(db: Weak<Db>, stop: Receiver<()>, every: Duration) {
    loop {
        match stop.recv_timeout(every) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(db) = db.upgrade() else { return };
        if let Err(e) = db.maintain() {
            tracing::error!(error = %e, "tsdb maintenance failed");
            db.events.emit(DbEvent::Failed {
                message: e.to_string(),
            });
        }
    }
}
