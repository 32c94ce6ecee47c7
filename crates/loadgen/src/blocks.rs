//! `cairn-loadgen blocks`: writes days of the simulated GPU cluster
//! straight into Prometheus-format blocks, one per aligned window, without
//! a server or remote write. Each block is written by
//! [`cairn_tsdb::write_block`] from a [`SimQuerier`] that generates the
//! window's samples on the fly, so memory holds the window's series list
//! (labels and step ranges) but no samples; windows are written on several
//! threads at once.

mod plan;
mod source;
mod time;

pub use plan::BlockPlan;
pub use source::SimQuerier;
pub use time::{format_time, parse_time};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use cairn_tsdb::{write_block, BlockWriteOptions, Ulid};

/// Write N days of the simulated GPU cluster into Prometheus blocks.
///
/// Scrape step k of every target is at `start + k * interval` (plus up to
/// `--jitter-ms` of deterministic lateness per target and scrape), where
/// start = end - days. Samples go into aligned windows `[k * B, (k + 1) * B)`
/// of B = `--block-hours`, one block directory (level 1, XOR chunks of 120
/// samples) per window under `--out`; windows are generated and written on
/// `--threads` threads at once, and samples are generated as they are
/// written (memory holds each window's series list, not its samples).
/// Start cairn or Prometheus with `--storage.tsdb.path` on the directory to
/// query them; `promtool tsdb analyze DIR` inspects them. Prints each
/// block's ULID, series, samples and bytes, then totals and samples/s.
///
/// A node has 8 GPUs (26 DCGM series each) and ~580 node-exporter and
/// kubelet series, ~790 series in all; every GPU's pod is replaced after
/// `--pod-lifetime-scrapes` scrapes (counted from start), which starts new
/// DCGM series (new `pod`/`namespace` labels). Values are those of
/// `cairn_gpusim::ClusterSpec::value` at each step.
#[derive(Debug, Clone, clap::Args)]
pub struct BlocksArgs {
    /// Directory to write the blocks into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Nodes in the simulated cluster.
    #[arg(long, default_value_t = 100)]
    pub nodes: usize,
    /// Days of data, ending at --end (fractions allowed: 0.25 is 6 h).
    #[arg(long, default_value_t = 1.0)]
    pub days: f64,
    /// Scrape interval: a Prometheus duration (30s, 1m) or seconds.
    #[arg(long, default_value = "30s")]
    pub interval: String,
    /// Block duration in hours; blocks are aligned to multiples of it.
    #[arg(long, default_value_t = 24)]
    pub block_hours: u32,
    /// End of the data (exclusive): unix seconds or RFC 3339
    /// (2024-05-01T00:00:00Z). Default: now, aligned down to the block
    /// duration.
    #[arg(long)]
    pub end: Option<String>,
    /// Seed of the simulation (label values, value paths, pod names).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Scrapes after which a GPU's pod is replaced (0: no churn).
    #[arg(long, default_value_t = 240)]
    pub pod_lifetime_scrapes: u64,
    /// Make each target's scrapes up to this many ms late, deterministically
    /// per target and scrape (0: every sample exactly on the interval).
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: i64,
    /// Blocks written at once, each on its own thread (default: the
    /// number of CPUs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write each block's chunks grouped by metric name, as Cairn's
    /// compaction writes long-term blocks; by default they are in series
    /// order, as Prometheus and Cairn's head cuts write them.
    #[arg(long)]
    pub group_by_name: bool,
}

/// What one block holds.
#[derive(Debug, Clone)]
pub struct BlockReport {
    pub ulid: Ulid,
    /// The window, `[mint, maxt)`.
    pub mint: i64,
    pub maxt: i64,
    pub series: u64,
    pub samples: u64,
    pub chunks: u64,
    /// Bytes on disk (index, chunks, tombstones, meta.json).
    pub bytes: u64,
    /// Seconds this block took to generate and write.
    pub seconds: f64,
}

/// Every block written, in time order, and the run's wall time.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub blocks: Vec<BlockReport>,
    pub seconds: f64,
}

impl Summary {
    pub fn samples(&self) -> u64 {
        self.blocks.iter().map(|b| b.samples).sum()
    }
    pub fn bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.bytes).sum()
    }
    pub fn series(&self) -> u64 {
        self.blocks.iter().map(|b| b.series).sum()
    }
}

/// Total size of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Writes one block per window of `plan` under `dir` on `threads` threads,
/// calling `on_block` as each is done. Stops at the first error.
pub fn write_blocks(
    plan: &BlockPlan,
    dir: &Path,
    threads: usize,
    group_by_name: bool,
    on_block: &(dyn Fn(&BlockReport) + Sync),
) -> Result<Summary, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let t0 = Instant::now();
    let windows = plan.windows();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Result<BlockReport, String>>> = Mutex::new(Vec::new());
    let opts = BlockWriteOptions {
        group_by_name,
        ..BlockWriteOptions::default()
    };
    let worker = || {
        while !failed.load(Ordering::Relaxed) {
            let Some(&(mint, maxt)) = windows.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let t = Instant::now();
            let q = SimQuerier::new(plan, mint, maxt);
            let r = match write_block(dir, &q, mint, maxt, &opts) {
                Ok(Some(meta)) => {
                    let report = BlockReport {
                        ulid: meta.ulid,
                        mint,
                        maxt,
                        series: meta.stats.num_series,
                        samples: meta.stats.num_samples,
                        chunks: meta.stats.num_chunks,
                        bytes: dir_bytes(&dir.join(meta.ulid.to_string())),
                        seconds: t.elapsed().as_secs_f64(),
                    };
                    on_block(&report);
                    Ok(report)
                }
                // A window between scrapes (an interval longer than the block).
                Ok(None) => continue,
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    Err(format!("block [{mint}, {maxt}): {e}"))
                }
            };
            if let Ok(mut v) = results.lock() {
                v.push(r);
            }
        }
    };
    let threads = threads.clamp(1, windows.len().max(1));
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(worker);
        }
        worker();
    });
    let mut blocks = Vec::new();
    for r in results
        .into_inner()
        .map_err(|_| "a block writer panicked")?
    {
        blocks.push(r?);
    }
    blocks.sort_by_key(|b| b.mint);
    Ok(Summary {
        blocks,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Counts the block directories (those with a meta.json) already in `dir`.
fn existing_blocks(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| {
        rd.flatten()
            .filter(|e| e.path().join("meta.json").is_file())
            .count()
    })
}

/// Runs the subcommand, printing a line per block and the totals to `out`.
pub fn run(a: &BlocksArgs, out: &mut (dyn Write + Send)) -> Result<Summary, String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let plan = BlockPlan::from_args(a, now_ms)?;
    let threads = match a.threads {
        Some(0) => return Err("--threads must be at least 1".into()),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let existing = existing_blocks(&a.out);
    if existing > 0 {
        eprintln!(
            "note: {} already holds {existing} blocks; the new ones may overlap them",
            a.out.display()
        );
    }
    let windows = plan.windows();
    let per_node = plan.cluster.series_per_node();
    let io = |e: std::io::Error| format!("writing the report: {e}");
    writeln!(
        out,
        "writing {} blocks of {} h to {}: {} nodes ({} series each at a time), {} scrapes every {} ms from {} to {}, {} threads",
        windows.len(),
        a.block_hours,
        a.out.display(),
        plan.cluster.nodes,
        per_node,
        plan.steps,
        plan.interval_ms(),
        format_time(plan.start_ms),
        format_time(plan.end_ms()),
        threads.min(windows.len().max(1)),
    )
    .map_err(io)?;
    let out = Mutex::new(out);
    let print = |b: &BlockReport| {
        if let Ok(mut o) = out.lock() {
            let _ = writeln!(
                o,
                "block {} [{}, {}) series {} samples {} chunks {} bytes {} in {:.1}s ({:.1}M samples/s)",
                b.ulid,
                format_time(b.mint),
                format_time(b.maxt),
                b.series,
                b.samples,
                b.chunks,
                b.bytes,
                b.seconds,
                b.samples as f64 / b.seconds.max(1e-9) / 1e6,
            );
            let _ = o.flush();
        }
    };
    let summary = write_blocks(&plan, &a.out, threads, a.group_by_name, &print)?;
    let out = out.into_inner().map_err(|_| "report output poisoned")?;
    writeln!(
        out,
        "total: {} blocks, {} series (summed over blocks), {} samples, {} bytes ({:.2} bytes/sample) in {:.1}s wall: {:.0} samples/s",
        summary.blocks.len(),
        summary.series(),
        summary.samples(),
        summary.bytes(),
        summary.bytes() as f64 / summary.samples().max(1) as f64,
        summary.seconds,
        summary.samples() as f64 / summary.seconds.max(1e-9),
    )
    .map_err(io)?;
    Ok(summary)
}
