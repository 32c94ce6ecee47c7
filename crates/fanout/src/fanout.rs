//! The local view and the remote stores as one queryable.
//!
//! Contracts: series are merged by labels, samples at equal timestamps
//! once (the local view first); a store that fails a selection is left
//! out of that answer (logged and counted in [`StoreCounts`]), as Thanos's
//! querier answers with a partial response by default. A `Fanout` with a
//! local view reads raw data when remote stores are configured: a store's
//! samples would mix with the local downsampled levels' aggregate points
//! otherwise. [`Fanout::stores_only`] is the stores alone, for a database
//! that reads them as raw data wherever it reads raw data itself
//! (`cairn_tsdb::Db::querier_with_raw`), which keeps its levels usable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cairn_model::Matcher;
use cairn_storage::{MergeQuerier, Querier, Queryable, SelectHints, SeriesSet};

use crate::remote::RemoteStore;

/// Requests to the remote stores and how many failed.
#[derive(Debug, Default)]
pub struct StoreCounts {
    pub selects: AtomicU64,
    pub failures: AtomicU64,
}

/// The local view merged with remote stores (module docs).
pub struct Fanout {
    local: Option<Arc<dyn Queryable>>,
    stores: Vec<Arc<RemoteStore>>,
    counts: Arc<StoreCounts>,
}

impl Fanout {
    pub fn new(local: Arc<dyn Queryable>, stores: Vec<Arc<RemoteStore>>) -> Self {
        Self {
            local: Some(local),
            stores,
            counts: Arc::default(),
        }
    }

    /// The remote stores alone, merged, each tolerated as above.
    pub fn stores_only(stores: Vec<Arc<RemoteStore>>) -> Self {
        Self {
            local: None,
            stores,
            counts: Arc::default(),
        }
    }

    /// The remote stores' request counts.
    pub fn counts(&self) -> Arc<StoreCounts> {
        self.counts.clone()
    }
}

impl Queryable for Fanout {
    fn querier(&self, mint: i64, maxt: i64) -> cairn_storage::Result<Box<dyn Querier + '_>> {
        let mut qs: Vec<Box<dyn Querier + '_>> = Vec::new();
        if let Some(l) = &self.local {
            qs.push(l.querier(mint, maxt)?);
        }
        for s in &self.stores {
            qs.push(Box::new(Tolerant {
                inner: s.querier(mint, maxt)?,
                url: s.url(),
                counts: &self.counts,
            }));
        }
        Ok(Box::new(MergeQuerier::new(qs, None)))
    }

    fn downsampled(&self) -> bool {
        self.stores.is_empty() && self.local.as_ref().is_some_and(|l| l.downsampled())
    }

    fn exemplars(
        &self,
        start: i64,
        end: i64,
        selectors: &[Vec<Matcher>],
    ) -> cairn_storage::Result<Vec<cairn_storage::SeriesExemplars>> {
        match &self.local {
            Some(l) => l.exemplars(start, end, selectors),
            None => Ok(Vec::new()),
        }
    }
}

/// A remote store's querier whose failures leave it out of the answer.
struct Tolerant<'a> {
    inner: Box<dyn Querier + 'a>,
    url: &'a str,
    counts: &'a StoreCounts,
}

impl Tolerant<'_> {
    fn or_empty<T: Default>(&self, r: cairn_storage::Result<T>) -> T {
        self.counts.selects.fetch_add(1, Ordering::Relaxed);
        r.unwrap_or_else(|e| {
            self.counts.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(store = self.url, error = %e, "a --query.store failed; answering without it");
            T::default()
        })
    }
}

impl Querier for Tolerant<'_> {
    fn select<'a>(
        &'a self,
        hints: &SelectHints,
        matchers: &[Matcher],
    ) -> cairn_storage::Result<SeriesSet<'a>> {
        // The remote querier reads eagerly: its errors surface here.
        let r = self
            .inner
            .select(hints, matchers)
            .and_then(|set| set.collect::<cairn_storage::Result<Vec<_>>>());
        let all = self.or_empty(r);
        Ok(Box::new(all.into_iter().map(Ok)))
    }

    fn label_names(&self, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        Ok(self.or_empty(self.inner.label_names(matchers)))
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        Ok(self.or_empty(self.inner.label_values(name, matchers)))
    }
}
