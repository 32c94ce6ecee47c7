//! What `cairn-loadgen blocks` writes: the simulated cluster, the scrape
//! times and the block windows, resolved from the command line.

use cairn_gpusim::{mix, ClusterSpec, Exporter};

use super::BlocksArgs;

const DAY_MS: i64 = 86_400_000;

/// The resolved run: everything a block's samples follow from.
#[derive(Debug, Clone)]
pub struct BlockPlan {
    /// The cluster; its `scrape_interval_ms` is the scrape interval.
    pub cluster: ClusterSpec,
    /// Time of scrape step 0, ms.
    pub start_ms: i64,
    /// Number of scrape steps: `0..steps`.
    pub steps: u64,
    /// Each scrape of a target is up to this many ms late (0: none).
    pub jitter_ms: i64,
    /// Block duration, ms; windows are `[k * block_ms, (k + 1) * block_ms)`.
    pub block_ms: i64,
}

impl BlockPlan {
    /// Resolves the command line; `now_ms` is used when `--end` is absent.
    pub fn from_args(a: &BlocksArgs, now_ms: i64) -> Result<Self, String> {
        let interval_ms = cairn_model::parse_duration_or_seconds(&a.interval)
            .map_err(|e| format!("--interval {:?}: {e}", a.interval))?;
        if interval_ms <= 0 {
            return Err(format!("--interval {:?} must be positive", a.interval));
        }
        if a.nodes == 0 {
            return Err("--nodes must be at least 1".into());
        }
        if !(a.days.is_finite() && a.days > 0.0 && a.days <= 36_500.0) {
            return Err(format!(
                "--days {} must be above 0 and at most 36500",
                a.days
            ));
        }
        if !(1..=100_000).contains(&a.block_hours) {
            return Err(format!(
                "--block-hours {} must be from 1 to 100000",
                a.block_hours
            ));
        }
        if a.jitter_ms < 0 || a.jitter_ms >= interval_ms {
            return Err(format!(
                "--jitter-ms {} must be at least 0 and below the interval ({interval_ms} ms)",
                a.jitter_ms
            ));
        }
        let block_ms = i64::from(a.block_hours) * 3_600_000;
        let end_ms = match &a.end {
            Some(s) => super::parse_time(s).map_err(|e| format!("--end: {e}"))?,
            None => now_ms.div_euclid(block_ms) * block_ms,
        };
        let span_ms = (a.days * DAY_MS as f64).round() as i64;
        let steps = (span_ms / interval_ms) as u64;
        if steps == 0 {
            return Err(format!(
                "--days {} is shorter than one --interval {:?}",
                a.days, a.interval
            ));
        }
        let start_ms = end_ms
            .checked_sub(span_ms)
            .filter(|s| s.checked_sub(block_ms).is_some())
            .ok_or_else(|| format!("--end {end_ms} ms minus --days {} is out of range", a.days))?;
        Ok(Self {
            cluster: ClusterSpec {
                nodes: a.nodes,
                scrape_interval_ms: interval_ms,
                pod_lifetime_scrapes: a.pod_lifetime_scrapes,
                seed: a.seed,
                ..ClusterSpec::default()
            },
            start_ms,
            steps,
            jitter_ms: a.jitter_ms,
            block_ms,
        })
    }

    /// The scrape interval, ms.
    pub fn interval_ms(&self) -> i64 {
        self.cluster.scrape_interval_ms
    }

    /// One past the last scrape's earliest time: no sample is at or after it.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + self.steps as i64 * self.interval_ms()
    }

    /// The aligned block windows `[mint, maxt)` that hold samples, in order.
    pub fn windows(&self) -> Vec<(i64, i64)> {
        let b = self.block_ms;
        let first = self.start_ms.div_euclid(b);
        // The last scrape may be late by up to the jitter.
        let last = (self.end_ms() - self.interval_ms() + self.jitter_ms).div_euclid(b);
        (first..=last).map(|k| (k * b, (k + 1) * b)).collect()
    }

    /// How late a target's scrape at `step` is: deterministic, in `0..=jitter_ms`.
    pub fn jitter(&self, node: usize, exporter: Exporter, step: u64) -> i64 {
        if self.jitter_ms == 0 {
            return 0;
        }
        let target = (node as u64) << 1 | u64::from(exporter == Exporter::Node);
        let h = mix(self.cluster.seed ^ mix(target ^ 0x5C4A_7E00_0000_0000) ^ step);
        (h % (self.jitter_ms as u64 + 1)) as i64
    }

    /// The timestamp of a target's scrape at `step` (every series of the
    /// scrape shares it, as in Prometheus).
    pub fn scrape_time(&self, node: usize, exporter: Exporter, step: u64) -> i64 {
        self.start_ms + step as i64 * self.interval_ms() + self.jitter(node, exporter, step)
    }

    /// The steps of a target whose samples fall in `[mint, maxt)`.
    pub fn steps_in(
        &self,
        node: usize,
        exporter: Exporter,
        mint: i64,
        maxt: i64,
    ) -> std::ops::Range<u64> {
        let iv = self.interval_ms();
        // First step whose earliest time reaches mint less the jitter, then
        // the exact check for the one or two steps the jitter blurs.
        let lo = (mint - self.jitter_ms - self.start_ms).max(0);
        let mut first = (lo.div_euclid(iv) as u64).min(self.steps);
        while first < self.steps && self.scrape_time(node, exporter, first) < mint {
            first += 1;
        }
        let hi = (maxt - self.start_ms).max(0);
        let mut end = ((hi + iv - 1).div_euclid(iv) as u64).min(self.steps);
        while end > first && self.scrape_time(node, exporter, end - 1) >= maxt {
            end -= 1;
        }
        first..end.max(first)
    }
}
