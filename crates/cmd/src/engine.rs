//! Adapts the PromQL engine to the HTTP API's [`QueryEngine`] seam and
//! enforces `--query.max-concurrency` (queries beyond it wait their turn,
//! as in Prometheus).

use std::sync::Arc;

use cairn_api::{
    QueryEngine, QueryError, QueryOptions, QueryOutput, QueryResult, RangeSeries, SampleValue,
};
use cairn_promql::{Engine, EngineOptions, PromqlError, QueryValue, SourceResolution};
use cairn_storage::Queryable;
use parking_lot::{Condvar, Mutex};

/// A counting gate for concurrent queries.
struct Gate {
    running: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

impl Gate {
    fn enter(&self) -> GateGuard<'_> {
        let mut n = self.running.lock();
        while *n >= self.max {
            self.freed.wait(&mut n);
        }
        *n += 1;
        GateGuard(self)
    }
}

struct GateGuard<'a>(&'a Gate);

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        *self.0.running.lock() -= 1;
        self.0.freed.notify_one();
    }
}

/// The engine over a store, as the API sees it.
pub struct PromqlEngine {
    store: Arc<dyn Queryable>,
    opts: EngineOptions,
    gate: Gate,
}

impl PromqlEngine {
    pub fn new(store: Arc<dyn Queryable>, opts: EngineOptions, max_concurrency: usize) -> Self {
        Self {
            store,
            opts,
            gate: Gate {
                running: Mutex::new(0),
                freed: Condvar::new(),
                max: max_concurrency.max(1),
            },
        }
    }

    fn engine(&self, q: &QueryOptions) -> Engine {
        let mut o = self.opts.clone();
        if let Some(t) = q.timeout {
            o.timeout = o.timeout.min(t);
        }
        // The API checked the spelling; anything unparsable keeps the default.
        if let Some(r) = q
            .max_source_resolution
            .as_deref()
            .and_then(SourceResolution::parse)
        {
            o.max_source_resolution = r;
        }
        Engine::new(o)
    }
}

fn map_err(e: PromqlError) -> QueryError {
    match e {
        PromqlError::Parse(m) => QueryError::BadData(m),
        // Prometheus rejects a wrong result type for range queries as bad data.
        PromqlError::Eval(m) if m.starts_with("invalid expression type") => QueryError::BadData(m),
        PromqlError::Eval(m) => QueryError::Execution(m),
        e @ PromqlError::TooManySamples => QueryError::Execution(e.to_string()),
        e @ PromqlError::Timeout => QueryError::Timeout(e.to_string()),
        e => QueryError::Internal(e.to_string()),
    }
}

fn convert(r: cairn_promql::QueryResult) -> Result<QueryResult, QueryError> {
    let output = match r.value {
        QueryValue::Scalar { t, v } => QueryOutput::Scalar { t, v },
        QueryValue::String { t, v } => QueryOutput::String { t, s: v },
        QueryValue::Vector(v) => QueryOutput::Vector(
            v.into_iter()
                .map(|s| {
                    let value = match s.value {
                        cairn_promql::SampleValue::Float(f) => SampleValue::Float(f),
                        cairn_promql::SampleValue::Histogram(h) => SampleValue::Histogram(h),
                    };
                    (s.metric, s.t, value)
                })
                .collect(),
        ),
        QueryValue::Matrix(m) => QueryOutput::Matrix(
            m.into_iter()
                .map(|s| RangeSeries {
                    labels: s.metric,
                    floats: s.floats.iter().map(|p| (p.t, p.f)).collect(),
                    histograms: s.histograms.into_iter().map(|p| (p.t, p.h)).collect(),
                })
                .collect(),
        ),
    };
    Ok(QueryResult {
        output,
        warnings: r.annotations.warnings,
        infos: r.annotations.infos,
    })
}

impl QueryEngine for PromqlEngine {
    fn instant(&self, query: &str, t: i64, q: &QueryOptions) -> Result<QueryResult, QueryError> {
        let _g = self.gate.enter();
        let r = self
            .engine(q)
            .instant_query(self.store.as_ref(), query, t)
            .map_err(map_err)?;
        convert(r)
    }

    fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        q: &QueryOptions,
    ) -> Result<QueryResult, QueryError> {
        let _g = self.gate.enter();
        let r = self
            .engine(q)
            .range_query(self.store.as_ref(), query, start, end, step)
            .map_err(map_err)?;
        convert(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_model::{FloatHistogram, Labels, Sample};
    use cairn_storage::MemStorage;

    /// Histogram results reach the API as histograms (they were refused
    /// before), next to floats of the same series.
    #[test]
    fn histogram_results_are_carried_through() {
        let st = MemStorage::new();
        let l = Labels::from_pairs([("__name__", "h".to_string())]);
        let h = Arc::new(FloatHistogram {
            count: 2.0,
            sum: 1.5,
            zero_count: 2.0,
            zero_threshold: 0.001,
            ..Default::default()
        });
        st.add(l.clone(), [Sample::new(10_000, 1.0)]);
        st.add_float_histograms(l.clone(), [(20_000, h.clone()), (30_000, h.clone())]);
        let e = PromqlEngine::new(Arc::new(st), EngineOptions::default(), 1);
        let q = QueryOptions::default();
        let r = e.instant("h", 30_000, &q).expect("instant query");
        assert_eq!(
            r.output,
            QueryOutput::Vector(vec![(l.clone(), 30_000, SampleValue::Histogram(h.clone()))])
        );
        let r = e
            .range("h", 10_000, 30_000, 10_000, &q)
            .expect("range query");
        assert_eq!(
            r.output,
            QueryOutput::Matrix(vec![RangeSeries {
                labels: l,
                floats: vec![(10_000, 1.0)],
                histograms: vec![(20_000, h.clone()), (30_000, h)],
            }])
        );
    }

    #[test]
    fn queries_beyond_max_concurrency_wait_for_a_free_slot() {
        let gate = Arc::new(Gate {
            running: Mutex::new(0),
            freed: Condvar::new(),
            max: 1,
        });
        let first = gate.enter();
        let (tx, rx) = std::sync::mpsc::channel();
        let g = gate.clone();
        let waiter = std::thread::spawn(move || {
            let _second = g.enter();
            let _ = tx.send(());
        });
        // While the only slot is held, the second query does not start.
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(100))
            .is_err());
        drop(first);
        rx.recv()
            .expect("the waiting query runs once the slot is free");
        waiter.join().unwrap();
        assert_eq!(*gate.running.lock(), 0);
    }
}
