//! What the query API reads: this Cairn's database alone, or, in query
//! mode, with the `--query.store`s read as raw data wherever the
//! database reads raw data (so its downsampled levels still answer), and
//! HA replicas merged by `--query.replica-label`. Remote read, federation
//! and rules keep reading the database alone (two Cairns naming each
//! other as stores must not loop).

use std::sync::Arc;

use cairn_storage::{Querier, Queryable};

use super::DbBackend;
use crate::cli::ServeArgs;

/// The queryable of the query API (module docs).
pub(super) fn query_view(
    a: &ServeArgs,
    backend: Arc<DbBackend>,
    timeout_ms: i64,
) -> Arc<dyn Queryable> {
    let mut view: Arc<dyn Queryable> = backend.clone();
    if !a.query_stores.is_empty() {
        let timeout = std::time::Duration::from_millis(timeout_ms.max(1) as u64);
        let stores = a
            .query_stores
            .iter()
            .map(|u| Arc::new(cairn_fanout::RemoteStore::new(u, timeout)))
            .collect();
        let f = cairn_fanout::Fanout::stores_only(stores);
        let _ = backend.query_stores.set(f.counts());
        view = Arc::new(WithStores {
            backend,
            stores: Arc::new(f),
        });
    }
    if !a.query_replica_labels.is_empty() {
        view = Arc::new(cairn_fanout::Dedup::new(
            view,
            a.query_replica_labels.clone(),
        ));
    }
    view
}

/// The database with the remote stores as an extra raw source
/// ([`cairn_tsdb::Db::querier_with_raw`]).
struct WithStores {
    backend: Arc<DbBackend>,
    stores: Arc<cairn_fanout::Fanout>,
}

impl Queryable for WithStores {
    fn querier(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        self.backend
            .db()?
            .querier_with_raw(mint, maxt, self.stores.as_ref())
    }

    fn downsampled(&self) -> bool {
        self.backend.downsampled()
    }

    /// Exemplars come from this Cairn only: remote read carries none.
    fn exemplars(
        &self,
        start: i64,
        end: i64,
        selectors: &[Vec<cairn_model::Matcher>],
    ) -> cairn_storage::Result<Vec<cairn_storage::SeriesExemplars>> {
        self.backend.exemplars(start, end, selectors)
    }
}
