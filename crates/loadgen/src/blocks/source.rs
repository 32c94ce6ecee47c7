//! A [`Querier`] over the simulated cluster in one block window: it lists
//! the window's series (one per label set, pod churn included) sorted by
//! labels and generates their samples on the fly with
//! [`cairn_gpusim::ClusterSpec::sampler`] (the same values as
//! `ClusterSpec::value`), so writing a block holds no samples beyond the
//! chunks of the series being written.

use std::ops::Range;

use cairn_gpusim::{Exporter, Sampler, SimSeries};
use cairn_model::{Labels, Matcher};
use cairn_storage::{Querier, SampleIterator, SelectHints, Series, SeriesSet, ValueType};

use super::BlockPlan;

/// One series of the window and the steps it has samples at.
#[derive(Debug, Clone)]
struct Entry {
    sim: SimSeries,
    node: usize,
    exporter: Exporter,
    /// The first run of steps; `more` holds any later ones (the same pod
    /// name drawn again for a later pod of the GPU), ascending, disjoint.
    steps: Range<u64>,
    more: Vec<Range<u64>>,
}

impl Entry {
    fn run(&self, i: usize) -> Option<Range<u64>> {
        match i {
            0 => Some(self.steps.clone()),
            _ => self.more.get(i - 1).cloned(),
        }
    }

    fn samples(&self) -> u64 {
        let n = |r: &Range<u64>| r.end - r.start;
        n(&self.steps) + self.more.iter().map(n).sum::<u64>()
    }
}

/// The simulated cluster's series with samples in `[mint, maxt)`.
#[derive(Debug)]
pub struct SimQuerier<'p> {
    plan: &'p BlockPlan,
    entries: Vec<Entry>,
}

impl<'p> SimQuerier<'p> {
    /// Lists the series of the window `[mint, maxt)` (maxt exclusive).
    pub fn new(plan: &'p BlockPlan, mint: i64, maxt: i64) -> Self {
        let spec = &plan.cluster;
        let mut entries = Vec::new();
        let mut buf = Vec::new();
        for node in 0..spec.nodes {
            let host = plan.steps_in(node, Exporter::Node, mint, maxt);
            if !host.is_empty() {
                buf.clear();
                spec.host_series(node, &mut buf);
                entries.extend(buf.drain(..).map(|sim| Entry {
                    sim,
                    node,
                    exporter: Exporter::Node,
                    steps: host.clone(),
                    more: Vec::new(),
                }));
            }
            let dcgm = plan.steps_in(node, Exporter::Dcgm, mint, maxt);
            for gpu in 0..spec.gpus_per_node {
                // One set of series per pod that runs inside the window.
                let mut step = dcgm.start;
                while step < dcgm.end {
                    let pod = spec.pod_steps(node, gpu, step);
                    let run = step..pod.end.clamp(step + 1, dcgm.end);
                    buf.clear();
                    spec.gpu_series(node, gpu, step, &mut buf);
                    entries.extend(buf.drain(..).map(|sim| Entry {
                        sim,
                        node,
                        exporter: Exporter::Dcgm,
                        steps: run.clone(),
                        more: Vec::new(),
                    }));
                    step = run.end;
                }
            }
        }
        entries.sort_by(|a, b| {
            a.sim
                .labels
                .cmp(&b.sim.labels)
                .then(a.steps.start.cmp(&b.steps.start))
        });
        // A pod name drawn twice for one GPU is one series with two runs.
        let mut merged: Vec<Entry> = Vec::with_capacity(entries.len());
        for e in entries {
            match merged.last_mut() {
                Some(last) if last.sim.labels == e.sim.labels => {
                    if last.steps.end == e.steps.start && last.more.is_empty() {
                        last.steps.end = e.steps.end;
                    } else {
                        last.more.push(e.steps);
                    }
                }
                _ => merged.push(e),
            }
        }
        Self {
            plan,
            entries: merged,
        }
    }

    /// Number of series.
    pub fn series(&self) -> usize {
        self.entries.len()
    }

    /// Number of samples, counted without generating them.
    pub fn samples(&self) -> u64 {
        self.entries.iter().map(Entry::samples).sum()
    }

    fn matching<'a>(&'a self, matchers: &'a [Matcher]) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| {
            matchers
                .iter()
                .all(|m| m.matches(e.sim.labels.get(&m.name).unwrap_or("")))
        })
    }
}

impl Querier for SimQuerier<'_> {
    fn select<'a>(
        &'a self,
        _hints: &SelectHints,
        matchers: &[Matcher],
    ) -> cairn_storage::Result<SeriesSet<'a>> {
        let matchers = matchers.to_vec();
        let plan = self.plan;
        Ok(Box::new(
            self.entries
                .iter()
                .filter(move |e| {
                    matchers
                        .iter()
                        .all(|m| m.matches(e.sim.labels.get(&m.name).unwrap_or("")))
                })
                .map(move |entry| Ok(Box::new(SimSeriesRef { plan, entry }) as Box<dyn Series>)),
        ))
    }

    fn label_names(&self, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        let mut names = std::collections::BTreeSet::new();
        for e in self.matching(matchers) {
            for l in &e.sim.labels {
                if !names.contains(l.name) {
                    names.insert(l.name.to_owned());
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> cairn_storage::Result<Vec<String>> {
        let mut values = std::collections::BTreeSet::new();
        for e in self.matching(matchers) {
            if let Some(v) = e.sim.labels.get(name) {
                if !values.contains(v) {
                    values.insert(v.to_owned());
                }
            }
        }
        Ok(values.into_iter().collect())
    }
}

struct SimSeriesRef<'a> {
    plan: &'a BlockPlan,
    entry: &'a Entry,
}

impl Series for SimSeriesRef<'_> {
    fn labels(&self) -> &Labels {
        &self.entry.sim.labels
    }

    fn iter(&self) -> Box<dyn SampleIterator + '_> {
        Box::new(SimIter {
            plan: self.plan,
            entry: self.entry,
            sampler: self.plan.cluster.sampler(&self.entry.sim),
            run: 0,
            step: 0,
            started: false,
            done: false,
            cur: (i64::MIN, 0.0),
        })
    }
}

/// Generates one series' samples, step by step.
struct SimIter<'a> {
    plan: &'a BlockPlan,
    entry: &'a Entry,
    sampler: Sampler,
    /// Index of the current run of steps (see [`Entry::run`]).
    run: usize,
    step: u64,
    started: bool,
    done: bool,
    cur: (i64, f64),
}

impl SimIter<'_> {
    /// Positions on `self.step` or the first step after it that has a
    /// sample, and computes that sample.
    fn settle(&mut self) -> ValueType {
        while let Some(r) = self.entry.run(self.run) {
            self.step = self.step.max(r.start);
            if self.step < r.end {
                let e = self.entry;
                let t = self.plan.scrape_time(e.node, e.exporter, self.step);
                self.cur = (t, self.sampler.at(self.step));
                return ValueType::Float;
            }
            self.run += 1;
        }
        self.done = true;
        ValueType::None
    }
}

impl SampleIterator for SimIter<'_> {
    fn next(&mut self) -> ValueType {
        if self.done {
            return ValueType::None;
        }
        if self.started {
            self.step += 1;
        }
        self.started = true;
        self.settle()
    }

    fn seek(&mut self, t: i64) -> ValueType {
        if self.done {
            return ValueType::None;
        }
        if self.started && self.cur.0 >= t {
            return ValueType::Float;
        }
        // Steps whose time, even at the latest jitter, is before t are skipped.
        let p = self.plan;
        let lo = (t - p.jitter_ms - p.start_ms).max(0);
        let skip = lo.div_euclid(p.interval_ms()) as u64;
        if self.started {
            self.step += 1;
        }
        self.started = true;
        self.step = self.step.max(skip);
        loop {
            let vt = self.settle();
            if vt == ValueType::None || self.cur.0 >= t {
                return vt;
            }
            self.step += 1;
        }
    }

    fn at(&self) -> (i64, f64) {
        self.cur
    }

    fn at_t(&self) -> i64 {
        self.cur.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use cairn_gpusim::ClusterSpec;

    fn plan(jitter_ms: i64) -> BlockPlan {
        BlockPlan {
            cluster: ClusterSpec {
                nodes: 2,
                scrape_interval_ms: 30_000,
                pod_lifetime_scrapes: 7,
                ..ClusterSpec::default()
            },
            start_ms: 1_700_000_000_000,
            steps: 100,
            jitter_ms,
            block_ms: 600_000,
        }
    }

    /// Every (labels, t, v) of the run, generated the slow way: all of the
    /// cluster's series at every step; sorted by labels, then time.
    fn expected(p: &BlockPlan) -> Vec<(Labels, i64, u64)> {
        let mut out = Vec::new();
        for step in 0..p.steps {
            for node in 0..p.cluster.nodes {
                let mut v = Vec::new();
                p.cluster.node_series(node, step, &mut v);
                for s in v {
                    let exp = if s.labels.get("job") == Some("dcgm-exporter") {
                        Exporter::Dcgm
                    } else {
                        Exporter::Node
                    };
                    let t = p.scrape_time(node, exp, step);
                    out.push((s.labels.clone(), t, p.cluster.value(&s, step).to_bits()));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        out
    }

    fn generated(q: &SimQuerier<'_>) -> Vec<(Labels, i64, u64)> {
        let mut out = Vec::new();
        let all = [Matcher::new(cairn_model::MatchType::Regex, "__name__", ".*").unwrap()];
        for s in q.select(&SelectHints::default(), &all).unwrap() {
            let s = s.unwrap();
            let mut it = s.iter();
            while it.next() == ValueType::Float {
                let (t, v) = it.at();
                out.push((s.labels().clone(), t, v.to_bits()));
            }
        }
        out
    }

    #[test]
    fn windows_hold_what_the_simulation_scrapes() {
        for jitter in [0, 25] {
            let p = plan(jitter);
            let windows = p.windows();
            assert_eq!(windows.len(), 6, "{windows:?}");
            let all = expected(&p);
            let mut total = 0;
            for (mint, maxt) in windows {
                let q = SimQuerier::new(&p, mint, maxt);
                let got = generated(&q);
                let want: Vec<_> = all
                    .iter()
                    .filter(|x| (mint..maxt).contains(&x.1))
                    .cloned()
                    .collect();
                assert_eq!(got.len(), want.len());
                assert!(got == want, "window {mint}..{maxt}, jitter {jitter}");
                assert_eq!(q.samples(), got.len() as u64);
                total += got.len();
            }
            let per_step = p.cluster.series_per_node() * p.cluster.nodes;
            assert_eq!(total, per_step * p.steps as usize);
        }
    }

    #[test]
    fn seek_lands_on_the_first_sample_at_or_after() {
        let p = plan(25);
        let (mint, maxt) = (p.start_ms, p.end_ms());
        let q = SimQuerier::new(&p, mint, maxt);
        let all = [Matcher::new(cairn_model::MatchType::Regex, "pod", ".+").unwrap()];
        let s = q
            .select(&SelectHints::default(), &all)
            .unwrap()
            .nth(5)
            .unwrap()
            .unwrap();
        let mut ts = Vec::new();
        let mut it = s.iter();
        while it.next() == ValueType::Float {
            ts.push(it.at_t());
        }
        assert!(ts.len() > 2);
        for (i, &t) in ts.iter().enumerate() {
            for probe in [t - 1, t] {
                let mut it = s.iter();
                assert_eq!(it.seek(probe), ValueType::Float);
                assert_eq!(it.at_t(), t, "seek({probe})");
                // Seeking backwards stays put; next moves on.
                assert_eq!(it.seek(probe - 100_000), ValueType::Float);
                assert_eq!(it.at_t(), t);
                match ts.get(i + 1) {
                    Some(&n) => {
                        assert_eq!(it.next(), ValueType::Float);
                        assert_eq!(it.at_t(), n);
                    }
                    None => assert_eq!(it.next(), ValueType::None),
                }
            }
        }
        let mut it = s.iter();
        assert_eq!(it.seek(ts[ts.len() - 1] + 1), ValueType::None);
    }

    #[test]
    fn matchers_and_label_queries() {
        let p = plan(0);
        let q = SimQuerier::new(&p, p.start_ms, p.end_ms());
        let m = [Matcher::equal("__name__", "DCGM_FI_DEV_GPU_UTIL")];
        let n = q.select(&SelectHints::default(), &m).unwrap().count();
        let pods: usize = (0..2)
            .flat_map(|node| (0..8).map(move |gpu| (node, gpu)))
            .map(|(node, gpu)| {
                (0..p.steps)
                    .map(|s| p.cluster.pod(node, gpu, s))
                    .collect::<std::collections::HashSet<_>>()
                    .len()
            })
            .sum();
        assert_eq!(n, pods);
        let jobs = q.label_values("job", &[]).unwrap();
        assert_eq!(jobs, ["dcgm-exporter", "node-exporter"]);
        let names = q.label_names(&m).unwrap();
        assert!(names.contains(&"UUID".to_string()) && !names.contains(&"cpu".to_string()));
    }
}
