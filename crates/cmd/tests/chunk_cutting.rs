//! Chunks are cut where Prometheus cuts them, so blocks are byte-identical
//! to Prometheus's, not merely equal in samples.
//!
//! The data looks like a real scrape: 6.5 h at a 15 s interval, timestamps
//! jittered by ±40 ms, targets at their own offsets in the interval, some
//! series starting a third of the way in and some stopping two thirds of the
//! way, 1% missed scrapes, and the first sample 40 ms before the hour. Both
//! of Prometheus's paths are checked chunk by chunk (boundaries and bytes):
//!
//! - backfill: `cairn tsdb create-blocks-from openmetrics` against
//!   `promtool tsdb create-blocks-from openmetrics` (whose head-like block
//!   writer cuts with a chunk range of twice the block duration);
//! - the live head: the same samples remote-written into `cairn serve` and
//!   into a real Prometheus, both snapshotted through the admin API (the
//!   head written out as a block), and compared with promtool's backfilled
//!   blocks over the windows where the head's chunk range (2 h) ends where
//!   promtool's (4 h) does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_model::{Labels, MatchType, Matcher};
use cairn_storage::{Querier, SelectHints};
use cairn_tsdb::block::BlockHandle;
use cairn_tsdb::{Block, BlockQuerier, Db, DbOptions};
use support::*;

const HOUR: i64 = 3_600_000;
const INTERVAL: i64 = 15_000;
/// 6.5 h of scrapes.
const SCRAPES: i64 = 13 * HOUR / 2 / INTERVAL;
const TARGETS: usize = 12;

/// SplitMix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A metric family of the generated data: name and what its values do.
struct Family {
    name: &'static str,
    counter: bool,
}

const FAMILIES: [Family; 3] = [
    Family {
        name: "node_cpu_seconds_total",
        counter: true,
    },
    Family {
        name: "gpu_util",
        counter: false,
    },
    Family {
        name: "mem_used_bytes",
        counter: false,
    },
];

/// One generated series: labels, family index and samples.
struct GenSeries {
    labels: Labels,
    family: usize,
    samples: Vec<(i64, f64)>,
}

/// The data set, starting at `four_h + 2h - 40ms` where `four_h` is a
/// multiple of 4 h: the first samples of some targets fall into the 2 h
/// window before the rest, and the backfilled windows alternate between
/// ending half-way through promtool's 4 h chunk range and ending with it.
fn generate(four_h: i64) -> Vec<GenSeries> {
    assert_eq!(four_h % (4 * HOUR), 0);
    let hour = four_h + 2 * HOUR;
    let mut rng = Rng(0x00C0_FFEE_2024);
    let mut out = Vec::new();
    for target in 0..TARGETS {
        let instance = format!("node-{target:02}:9100");
        let offset = if target == 0 {
            0
        } else {
            rng.below(INTERVAL as u64) as i64
        };
        // The target's scrape times: jittered, 1% missed.
        let times: Vec<Option<i64>> = (0..SCRAPES)
            .map(|i| {
                let missed = rng.below(100) == 0;
                let jitter = if target == 0 && i == 0 {
                    -40
                } else {
                    rng.below(81) as i64 - 40
                };
                (!missed || (target == 0 && i == 0))
                    .then_some(hour + offset + i * INTERVAL + jitter)
            })
            .collect();
        for j in 0..10usize {
            let (family, idx) = match j {
                0..=3 => (0, j),
                4..=6 => (1, j - 4),
                _ => (2, j - 7),
            };
            let key = if family == 0 { "cpu" } else { "dev" };
            let labels = Labels::from_pairs([
                ("__name__", FAMILIES[family].name),
                ("instance", instance.as_str()),
                (key, idx.to_string().as_str()),
            ]);
            // Some series appear a third of the way in, some vanish two thirds of the way.
            let (from, to) = match (target * 10 + j) % 7 {
                2 => (SCRAPES / 3, SCRAPES),
                5 => (0, 2 * SCRAPES / 3),
                _ => (0, SCRAPES),
            };
            let mut v = rng.below(1_000_000) as f64;
            let mut samples = Vec::new();
            for t in times.iter().take(to as usize).skip(from as usize).flatten() {
                v = if FAMILIES[family].counter {
                    v + rng.below(2000) as f64 / 4.0
                } else {
                    rng.below(10_000) as f64 / 100.0
                };
                samples.push((*t, v));
            }
            out.push(GenSeries {
                labels,
                family,
                samples,
            });
        }
    }
    assert_eq!(
        out.iter()
            .filter_map(|s| s.samples.first())
            .map(|s| s.0)
            .min(),
        Some(hour - 40),
        "the first sample is 40 ms before the hour"
    );
    out
}

/// The data as OpenMetrics text: families contiguous, each series' samples
/// in time order.
fn openmetrics(data: &[GenSeries]) -> String {
    let mut s = String::new();
    for (f, fam) in FAMILIES.iter().enumerate() {
        writeln!(s, "# HELP {} Generated.", fam.name).unwrap();
        writeln!(s, "# TYPE {} gauge", fam.name).unwrap();
        for g in data.iter().filter(|g| g.family == f) {
            let name = g.labels.metric_name().unwrap();
            let rest: Vec<String> = g
                .labels
                .iter()
                .filter(|l| l.name != "__name__")
                .map(|l| format!("{}=\"{}\"", l.name, l.value))
                .collect();
            let rest = rest.join(",");
            for (t, v) in &g.samples {
                writeln!(s, "{name}{{{rest}}} {v:?} {}.{:03}", t / 1000, t % 1000).unwrap();
            }
        }
    }
    s.push_str("# EOF\n");
    s
}

/// A chunk as stored: min time, max time, bytes.
type Chunk = (i64, i64, Vec<u8>);

/// A block's bounds and its chunks by series.
struct BlockChunks {
    min_time: i64,
    max_time: i64,
    series: BTreeMap<String, Vec<Chunk>>,
}

impl BlockChunks {
    fn chunks(&self) -> usize {
        self.series.values().map(Vec::len).sum()
    }
}

/// Every block under `dir`, in time order, with its chunks untouched.
fn read_blocks(dir: &Path) -> Vec<BlockChunks> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.join("meta.json").exists() {
            continue;
        }
        let b = Block::open(&p).unwrap();
        let m = b.meta();
        let q = BlockQuerier::new(BlockHandle::Borrowed(&b), i64::MIN, i64::MAX);
        let all = [Matcher::new(MatchType::Regex, "__name__", ".+").unwrap()];
        let mut series = BTreeMap::new();
        for s in q.select(&SelectHints::default(), &all).unwrap() {
            let s = s.unwrap();
            let mut cs = Vec::new();
            let mut it = s.chunks().expect("block series offer chunks");
            while let Some(c) = it.next_chunk() {
                let c = c.unwrap();
                cs.push((c.min_time, c.max_time, c.data));
            }
            series.insert(s.labels().to_string(), cs);
        }
        out.push(BlockChunks {
            min_time: m.min_time,
            max_time: m.max_time,
            series,
        });
    }
    out.sort_by_key(|b| b.min_time);
    out
}

/// Every series' chunks over all blocks under `dir` (a snapshot: the head
/// as a block beside blocks cut earlier), sorted by time.
fn all_chunks(dir: &Path) -> BTreeMap<String, Vec<Chunk>> {
    let mut out: BTreeMap<String, Vec<Chunk>> = BTreeMap::new();
    for b in read_blocks(dir) {
        for (l, cs) in b.series {
            out.entry(l).or_default().extend(cs);
        }
    }
    for cs in out.values_mut() {
        cs.sort_by_key(|c| c.0);
    }
    out
}

/// Per-series chunks restricted to those starting in `[mint, maxt)`.
fn window(
    all: &BTreeMap<String, Vec<Chunk>>,
    mint: i64,
    maxt: i64,
) -> BTreeMap<String, Vec<Chunk>> {
    all.iter()
        .map(|(l, cs)| {
            let w: Vec<Chunk> = cs
                .iter()
                .filter(|c| c.0 >= mint && c.0 < maxt)
                .cloned()
                .collect();
            (l.clone(), w)
        })
        .filter(|(_, w)| !w.is_empty())
        .collect()
}

/// Describes the first difference between two per-series chunk maps, or
/// `None` when they are identical (boundaries and bytes).
fn first_difference(
    ours: &BTreeMap<String, Vec<Chunk>>,
    theirs: &BTreeMap<String, Vec<Chunk>>,
) -> Option<String> {
    let bounds = |cs: &[Chunk]| -> Vec<(i64, i64, usize)> {
        cs.iter()
            .map(|c| (c.0, c.1, u16::from_be_bytes([c.2[0], c.2[1]]) as usize))
            .collect()
    };
    let names: std::collections::BTreeSet<&String> = ours.keys().chain(theirs.keys()).collect();
    for l in names {
        let (o, t) = (ours.get(l), theirs.get(l));
        if o != t {
            return Some(format!(
                "series {l}:\n  cairn  (min, max, samples): {:?}\n  theirs (min, max, samples): {:?}",
                o.map(|c| bounds(c)),
                t.map(|c| bounds(c)),
            ));
        }
    }
    None
}

fn count(m: &BTreeMap<String, Vec<Chunk>>) -> usize {
    m.values().map(Vec::len).sum()
}

fn backfill_with_both(om: &Path, root: &Path) -> (PathBuf, PathBuf) {
    let (ours, theirs) = (root.join("cairn"), root.join("promtool"));
    run(Command::new(env!("CARGO_BIN_EXE_cairn"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(om)
        .arg(&ours));
    run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(om)
        .arg(&theirs));
    (ours, theirs)
}

#[test]
fn backfilled_chunks_are_cut_where_promtool_cuts_them() {
    require_tool("/usr/bin/promtool");
    let tmp = tempfile::tempdir().unwrap();
    // 2023-11-15T00:00:00Z, a multiple of 4 h.
    let data = generate(1_700_006_400_000);
    let om = tmp.path().join("in.om");
    std::fs::write(&om, openmetrics(&data)).unwrap();
    let (ours, theirs) = backfill_with_both(&om, tmp.path());
    let (o, t) = (read_blocks(&ours), read_blocks(&theirs));
    let summary: Vec<String> = o
        .iter()
        .zip(&t)
        .map(|(o, t)| {
            format!(
                "[{}, {}): cairn {} chunks, promtool {}",
                t.min_time,
                t.max_time,
                o.chunks(),
                t.chunks()
            )
        })
        .collect();
    eprintln!("{}", summary.join("\n"));
    assert_eq!(o.len(), t.len(), "block count; {summary:?}");
    assert_eq!(
        t.len(),
        5,
        "6.5 h from 40 ms before a 2 h boundary spans five 2 h windows"
    );
    for (i, (o, t)) in o.iter().zip(&t).enumerate() {
        assert_eq!(
            (o.min_time, o.max_time),
            (t.min_time, t.max_time),
            "block {i} bounds"
        );
        if let Some(d) = first_difference(&o.series, &t.series) {
            panic!("block {i} differs ({summary:?}); first difference in {d}");
        }
    }

    // Compacting promtool's blocks copies their chunks, as Prometheus's
    // compactor does for chunks that overlap nothing: no chunk changes.
    let before = all_chunks(&theirs);
    {
        let db = Db::open(
            &theirs,
            DbOptions {
                maintenance_interval: None,
                retention_time: 0,
                // Prometheus's compactor writes XOR; Cairn's default,
                // dense, re-encodes every chunk by design.
                chunk_encoding: cairn_tsdb::FloatEncoding::Xor,
                ..DbOptions::default()
            },
        )
        .unwrap();
        let merged = db.compact_now().unwrap();
        assert!(
            !merged.is_empty(),
            "the first three blocks fill a 6 h window"
        );
        assert!(db.blocks().iter().any(|b| b.meta().compaction.level >= 2));
        db.close();
    }
    if let Some(d) = first_difference(&all_chunks(&theirs), &before) {
        panic!("compaction changed chunks; first difference in {d}");
    }
}

/// Sends `data` in time order, scrape by scrape, as remote-write requests.
fn remote_write_all(url: &str, data: &[GenSeries]) {
    let mut all: Vec<(i64, usize, f64)> = data
        .iter()
        .enumerate()
        .flat_map(|(i, g)| g.samples.iter().map(move |(t, v)| (*t, i, *v)))
        .collect();
    all.sort_by_key(|s| (s.0, s.1));
    for batch in all.chunks(4000) {
        let req: Vec<(Labels, i64, f64)> = batch
            .iter()
            .map(|(t, i, v)| (data[*i].labels.clone(), *t, *v))
            .collect();
        let r = remote_write(url, &req).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(r.status / 100, 2, "{url}: {}", r.text());
    }
}

/// Takes a snapshot with the head through the admin API; returns its directory.
fn snapshot(base: &str, data_dir: &Path) -> PathBuf {
    let r = post(&format!("{base}/api/v1/admin/tsdb/snapshot"), &[], b"").unwrap();
    assert_eq!(r.status, 200, "{base}: {}", r.text());
    let name = r.json()["data"]["name"].as_str().unwrap().to_owned();
    data_dir.join("snapshots").join(name)
}

#[test]
fn head_chunks_from_remote_write_are_cut_where_prometheus_cuts_them() {
    require_tool("/usr/bin/prometheus");
    require_tool("/usr/bin/promtool");
    let tmp = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Recent enough for Prometheus's retention, ending before now.
    let four_h = (now - 10 * HOUR).div_euclid(4 * HOUR) * (4 * HOUR);
    let data = generate(four_h);

    let pport = free_port();
    let prom_dir = tmp.path().join("prom");
    let _prom = start_prometheus(
        &prom_dir,
        pport,
        "global:\n  scrape_interval: 1h\n",
        &[
            "--web.enable-remote-write-receiver",
            "--web.enable-admin-api",
        ],
    );
    let cport = free_port();
    let cairn_dir = tmp.path().join("cairn-data");
    std::fs::create_dir_all(&cairn_dir).unwrap();
    let mut cairn = start_cairn(
        &cairn_dir,
        cport,
        &[
            "--web.enable-remote-write-receiver",
            "--web.enable-admin-api",
        ],
    );
    let (pbase, cbase) = (
        format!("http://127.0.0.1:{pport}"),
        format!("http://127.0.0.1:{cport}"),
    );
    remote_write_all(&format!("{pbase}/api/v1/write"), &data);
    remote_write_all(&format!("{cbase}/api/v1/write"), &data);
    let theirs = all_chunks(&snapshot(&pbase, &prom_dir.join("data")));
    let ours = all_chunks(&snapshot(&cbase, &cairn_dir));
    let samples: usize = data.iter().map(|g| g.samples.len()).sum();
    let stored = |m: &BTreeMap<String, Vec<Chunk>>| -> usize {
        m.values()
            .flatten()
            .map(|c| u16::from_be_bytes([c.2[0], c.2[1]]) as usize)
            .sum()
    };
    assert_eq!(stored(&theirs), samples, "Prometheus stored every sample");
    assert_eq!(stored(&ours), samples, "Cairn stored every sample");
    eprintln!(
        "head chunks: cairn {}, prometheus {}",
        count(&ours),
        count(&theirs)
    );
    if let Some(d) = first_difference(&ours, &theirs) {
        panic!(
            "head chunks differ from Prometheus's (cairn {}, prometheus {}); first difference in {d}",
            count(&ours),
            count(&theirs)
        );
    }

    // Cairn restarted on its data (head chunk files and WAL replayed), the
    // head cut into 2 h blocks as the database does: the same chunks again.
    assert!(
        cairn.terminate(std::time::Duration::from_secs(30)),
        "cairn did not stop"
    );
    {
        let db = Db::open(
            &cairn_dir,
            DbOptions {
                maintenance_interval: None,
                ..DbOptions::default()
            },
        )
        .unwrap();
        let cut = db.cut_head(false).unwrap();
        assert_eq!(
            cut.len(),
            3,
            "6.5 h of head from 40 ms before a 2 h boundary: three cuts leave 2.5 h"
        );
        db.cut_head_now().unwrap();
        db.close();
    }
    let cut = all_chunks(&cairn_dir);
    eprintln!("cut blocks: cairn {} chunks", count(&cut));
    if let Some(d) = first_difference(&cut, &theirs) {
        panic!("chunks of the blocks cut from the replayed head differ from Prometheus's; first difference in {d}");
    }

    // promtool's backfill cuts with a 4 h chunk range; where that range ends
    // with a 2 h window (the second and the fourth block), its blocks hold
    // exactly the head's chunks.
    let om = tmp.path().join("in.om");
    std::fs::write(&om, openmetrics(&data)).unwrap();
    let pt = tmp.path().join("promtool");
    run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&pt));
    let blocks = read_blocks(&pt);
    assert_eq!(blocks.len(), 5);
    for b in [&blocks[1], &blocks[3]] {
        let start = b.min_time.div_euclid(2 * HOUR) * (2 * HOUR);
        assert_eq!((start + 2 * HOUR) % (4 * HOUR), 0);
        let w = window(&ours, start, start + 2 * HOUR);
        eprintln!(
            "[{start}, +2h): cairn head {} chunks, promtool {}",
            count(&w),
            b.chunks()
        );
        if let Some(d) = first_difference(&w, &b.series) {
            panic!("head chunks in [{start}, +2h) differ from promtool's block; first difference in {d}");
        }
    }
}
