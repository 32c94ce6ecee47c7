//! Where in-order chunks are cut: Prometheus's head policy, so that blocks
//! cut from the head, and backfilled blocks, hold the very chunks (bounds
//! and bytes) Prometheus would write for the same samples.
//!
//! The policy (Prometheus 2.42's `appendPreprocessor`; v3 keeps it for float
//! chunks and adds a 1 KiB size cap, which 2.42 does not have):
//! - A new chunk's deadline is the end of the chunk range holding its first
//!   sample: chunks never cross a multiple of the range.
//! - When a chunk holds a quarter of the target (`samples_per_chunk / 4`,
//!   30 of 120), the deadline is moved earlier so that the rest of the range
//!   splits into equal chunks at the rate seen so far
//!   ([`chunk_end_time`]).
//! - A sample at or past the deadline, or arriving when the chunk already
//!   holds twice the target, starts a new chunk.
//!
//! The target is thus a rate estimate, not a cap: a chunk may hold up to
//! `2 × samples_per_chunk` samples (after a gap early in the chunk made the
//! rate look slower) and often holds a few less than the target (jitter).

/// First timestamp of the chunk range after the one holding `t`.
pub fn range_end(t: i64, range: i64) -> i64 {
    t.div_euclid(range).saturating_add(1).saturating_mul(range)
}

/// The deadline of a chunk that started at `start`, whose newest sample is
/// at `cur` (a quarter of the target in), in a chunk range ending at `max`:
/// assuming samples keep arriving at the same rate, the rest of the range is
/// split into `n` equal chunks and this one ends after the first of them.
/// Integer arithmetic, truncating, as Prometheus 2.42 does.
pub fn chunk_end_time(start: i64, cur: i64, max: i64) -> i64 {
    let span = cur
        .saturating_sub(start)
        .saturating_add(1)
        .saturating_mul(4);
    let n = max.saturating_sub(start) / span.max(1);
    if n <= 1 {
        return max;
    }
    start.saturating_add(max.saturating_sub(start) / n)
}

/// The cutting settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CutPolicy {
    /// Width (ms) of the ranges chunks never cross, aligned to multiples of it.
    pub chunk_range: i64,
    /// The target number of samples per chunk (Prometheus: 120).
    pub samples_per_chunk: usize,
}

/// What the policy needs to know of the chunk being filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenState {
    /// Timestamp of the chunk's first sample.
    pub mint: i64,
    /// Timestamp of its newest sample.
    pub maxt: i64,
    /// Samples it holds.
    pub samples: usize,
    /// The first timestamp that goes into the next chunk.
    pub next_at: i64,
}

impl CutPolicy {
    /// The state of a chunk whose first sample is at `t`.
    pub fn start(&self, t: i64) -> OpenState {
        OpenState {
            mint: t,
            maxt: t,
            samples: 1,
            next_at: range_end(t, self.chunk_range.max(1)),
        }
    }

    /// Whether a sample at `t`, newer than every sample of `open`, starts a
    /// new chunk. Moves `open.next_at` earlier when the chunk is a quarter
    /// full; the caller records the sample (in `open` or a new state).
    pub fn cuts_before(&self, open: &mut OpenState, t: i64) -> bool {
        let quarter = self.samples_per_chunk / 4;
        if quarter > 0 && open.samples == quarter {
            open.next_at = chunk_end_time(open.mint, open.maxt, open.next_at);
        }
        t >= open.next_at || open.samples >= self.samples_per_chunk.saturating_mul(2)
    }
}

/// Cuts a stream of time-ordered samples into chunks with a [`CutPolicy`].
#[derive(Debug, Clone)]
pub struct Cutter {
    policy: CutPolicy,
    open: Option<OpenState>,
}

impl Cutter {
    pub fn new(policy: CutPolicy) -> Self {
        Self { policy, open: None }
    }

    /// Records a sample at `t` (newer than every one before); returns true
    /// when it is the first of a new chunk (so for the very first sample).
    pub fn push(&mut self, t: i64) -> bool {
        if let Some(o) = self.open.as_mut() {
            if !self.policy.cuts_before(o, t) {
                o.maxt = t;
                o.samples += 1;
                return false;
            }
        }
        self.open = Some(self.policy.start(t));
        true
    }

    /// Forgets the open chunk: the next sample starts a new one.
    pub fn reset(&mut self) {
        self.open = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;

    #[test]
    fn end_time_splits_the_rest_of_the_range_evenly() {
        // 30 samples 15 s apart from the start of a 2 h range: four chunks.
        assert_eq!(chunk_end_time(0, 29 * 15_000, 2 * H), 2 * H / 4);
        // Within a 4 h range, eight.
        assert_eq!(chunk_end_time(0, 29 * 15_000, 4 * H), 4 * H / 8);
        // Half-way through the range with a missed scrape: 1 h over
        // 4 × 450 001 ms rounds down to one chunk, so the deadline stays at
        // the range end.
        assert_eq!(chunk_end_time(H, H + 30 * 15_000, 2 * H), 2 * H);
        // Integer division truncates, as in Prometheus.
        assert_eq!(
            chunk_end_time(1000, 1000 + 435_000, 2 * H),
            1000 + (2 * H - 1000) / 4
        );
        // Degenerate inputs do not panic.
        assert_eq!(chunk_end_time(5, 5, 5), 5);
        assert_eq!(chunk_end_time(i64::MIN, i64::MAX, i64::MAX), i64::MAX);
    }

    #[test]
    fn cutter_follows_the_estimate_and_the_hard_limit() {
        let p = CutPolicy {
            chunk_range: 2 * H,
            samples_per_chunk: 120,
        };
        // Regular 15 s samples over a whole range: four chunks of 120.
        let mut c = Cutter::new(p);
        let starts: Vec<i64> = (0..480)
            .map(|i| i * 15_000)
            .filter(|t| c.push(*t))
            .collect();
        assert_eq!(starts, vec![0, 1_800_000, 3_600_000, 5_400_000]);
        // A chunk starting half-way through the range with a missed scrape
        // in its first quarter: the estimate leaves the deadline at the
        // range end; when samples then come faster, the chunk is cut at
        // twice the target.
        let mut c = Cutter::new(p);
        let mut ts: Vec<i64> = (0..30)
            .map(|i| H + if i < 10 { i * 15_000 } else { (i + 1) * 15_000 })
            .collect();
        ts.extend((1..=300).map(|k| H + 450_000 + k * 5_000));
        let starts: Vec<usize> = (0..ts.len()).filter(|&i| c.push(ts[i])).collect();
        assert_eq!(starts, vec![0, 240]);
        // A range boundary always cuts.
        let mut c = Cutter::new(p);
        assert!(c.push(2 * H - 1));
        assert!(c.push(2 * H));
        // Tiny targets skip the estimate.
        let mut c = Cutter::new(CutPolicy {
            chunk_range: 1000,
            samples_per_chunk: 2,
        });
        let starts: Vec<i64> = (0..10).filter(|t| c.push(*t)).collect();
        assert_eq!(starts, vec![0, 4, 8]);
    }
}
