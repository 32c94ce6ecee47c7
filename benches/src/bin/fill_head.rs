//! Fills a Cairn data directory's head with the simulated GPU cluster of
//! `crates/gpusim`, appending straight into the head (WAL on, as `cairn
//! serve` runs it) instead of over HTTP, then stops as `cairn serve` does
//! on SIGTERM (head snapshot unless `--no-snapshot`).
//!
//! Why: the restart target of issue 14 is "ready within 60 s with ten
//! million active series and two hours of data in the head". Sending 4.8
//! billion samples through remote write takes about two hours on this
//! machine; appending them directly leaves the same directory (WAL,
//! `chunks_head/`, snapshot) in a fraction of that, and `cairn serve` is then
//! timed on it (`scripts/bench-restart.sh`).
//!
//! Pods churn as in the load generator: a GPU's DCGM series get new
//! `namespace`/`pod`/`container` labels every `pod_lifetime_scrapes`, so
//! the head holds the churned series too. Samples end at the start time
//! (now by default) so that the head is recent.
//!
//! Usage: `fill_head --dir DIR [--nodes N] [--hours H] [--threads T]
//! [--end-ms MS] [--no-snapshot] [--no-spill] [--drop-wal]
//! [--scrape-interval-s S] [--pod-lifetime-scrapes L] [--maintain-every-hours M]`.
//!
//! `--maintain-every-hours M` runs the database's maintenance (cut the head
//! into blocks once it spans 3 h, truncate it, checkpoint the WAL, compact)
//! after every M simulated hours, all threads paused at the same step, and
//! prints one JSON line per round with the head's series and the process's
//! resident memory: issue 14's "memory stays flat over a day of churn"
//! (`--hours 24 --scrape-interval-s 300 --pod-lifetime-scrapes 31`: pods
//! live 2.6 h, so a tenth of all series are replaced every hour).
//!
//! `--no-spill` keeps open chunks in memory (`--storage.tsdb.head-spill=false`)
//! to save disk. `--drop-wal` deletes all but the newest two WAL segments
//! as it goes: something Cairn never does, here only so that ten million
//! series × two hours (about 42 GB of WAL) fit on a small disk. A restart
//! from the snapshot reads only the WAL directory's listing, never the
//! segments, so its time does not depend on them (`scripts/bench-restart.sh`
//! checks this at a smaller size); a restart without the snapshot would
//! lose the dropped samples.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::time::Instant;

use cairn_gpusim::{ClusterSpec, Sampler, SimSeries};
use cairn_model::Labels;
use cairn_storage::Appendable;
use cairn_tsdb::{Db, DbOptions};

struct Args {
    dir: PathBuf,
    nodes: usize,
    hours: f64,
    threads: usize,
    end_ms: Option<i64>,
    snapshot: bool,
    spill: bool,
    drop_wal: bool,
    scrape_s: f64,
    pod_lifetime: Option<u64>,
    maintain_hours: f64,
}

fn parse() -> Result<Args, String> {
    let mut a = Args {
        dir: PathBuf::new(),
        nodes: 100,
        hours: 2.0,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        end_ms: None,
        snapshot: true,
        spill: true,
        drop_wal: false,
        scrape_s: 15.0,
        pod_lifetime: None,
        maintain_hours: 0.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut val = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--dir" => a.dir = PathBuf::from(val()?),
            "--nodes" => a.nodes = val()?.parse().map_err(|e| format!("--nodes: {e}"))?,
            "--hours" => a.hours = val()?.parse().map_err(|e| format!("--hours: {e}"))?,
            "--threads" => a.threads = val()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--end-ms" => a.end_ms = Some(val()?.parse().map_err(|e| format!("--end-ms: {e}"))?),
            "--no-snapshot" => a.snapshot = false,
            "--no-spill" => a.spill = false,
            "--drop-wal" => a.drop_wal = true,
            "--scrape-interval-s" => {
                a.scrape_s = val()?
                    .parse()
                    .map_err(|e| format!("--scrape-interval-s: {e}"))?
            }
            "--pod-lifetime-scrapes" => {
                a.pod_lifetime = Some(
                    val()?
                        .parse()
                        .map_err(|e| format!("--pod-lifetime-scrapes: {e}"))?,
                )
            }
            "--maintain-every-hours" => {
                a.maintain_hours = val()?
                    .parse()
                    .map_err(|e| format!("--maintain-every-hours: {e}"))?
            }
            _ => return Err(format!("unknown argument {k}")),
        }
    }
    if a.dir.as_os_str().is_empty() {
        return Err("--dir is required".into());
    }
    a.threads = a.threads.max(1);
    Ok(a)
}

/// One series this filler appends to: its ref in the head once created.
struct Slot {
    r: u64,
    sampler: Sampler,
}

/// What one thread keeps per node: the host series and, per GPU, the pod
/// generation its DCGM series were created for.
struct Node {
    node: usize,
    host: Vec<Slot>,
    gpus: Vec<(u64, Vec<Slot>)>,
}

fn slots(spec: &ClusterSpec, v: Vec<SimSeries>) -> (Vec<Slot>, Vec<Labels>) {
    let mut labels = Vec::with_capacity(v.len());
    let s = v
        .into_iter()
        .map(|s| {
            let sampler = spec.sampler(&s);
            labels.push(s.labels);
            Slot { r: 0, sampler }
        })
        .collect();
    (s, labels)
}

/// Deletes all but the newest two segment files of `wal` (see `--drop-wal`).
fn drop_old_segments(wal: &std::path::Path) {
    let Ok(rd) = std::fs::read_dir(wal) else {
        return;
    };
    let mut segs: Vec<(u32, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .collect();
    segs.sort();
    let n = segs.len().saturating_sub(2);
    for (_, p) in segs.into_iter().take(n) {
        let _ = std::fs::remove_file(p);
    }
}

/// Maintenance rounds: every `every` steps all threads meet at `barrier`;
/// the leader runs [`maintain`] in between.
struct Rounds<'a> {
    every: u64,
    barrier: &'a std::sync::Barrier,
    started: Instant,
}

/// Resident memory of this process from /proc/self/status, in KiB:
/// (VmRSS, RssAnon, RssFile, VmHWM).
fn memory() -> (u64, u64, u64, u64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (
        get("VmRSS:"),
        get("RssAnon:"),
        get("RssFile:"),
        get("VmHWM:"),
    )
}

/// One maintenance round; prints what it did and the memory after it.
fn maintain(db: &Db, spec: &ClusterSpec, step: u64, started: Instant) -> Result<(), String> {
    let t = Instant::now();
    let blocks = db.maintain().map_err(|e| format!("maintenance: {e}"))?;
    let (rss, anon, file, hwm) = memory();
    println!(
        r#"{{"hour":{:.2},"series":{},"blocks_made":{},"blocks":{},"maintain_s":{:.1},"rss_mib":{},"anon_mib":{},"file_mib":{},"hwm_mib":{},"elapsed_s":{:.0}}}"#,
        step as f64 * spec.scrape_interval_ms as f64 / 3_600_000.0,
        db.head().num_series(),
        blocks.len(),
        db.blocks().len(),
        t.elapsed().as_secs_f64(),
        rss / 1024,
        anon / 1024,
        file / 1024,
        hwm / 1024,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn fill(
    db: &Db,
    spec: &ClusterSpec,
    nodes: Vec<usize>,
    t0: i64,
    steps: u64,
    drop_wal: bool,
    rounds: Option<&Rounds<'_>>,
) -> Result<u64, String> {
    let head = db.head();
    let mut state: Vec<Node> = nodes
        .into_iter()
        .map(|node| Node {
            node,
            host: Vec::new(),
            gpus: Vec::new(),
        })
        .collect();
    let mut appended = 0u64;
    for step in 0..steps {
        if let Some(r) = rounds.filter(|r| step > 0 && step % r.every == 0) {
            let leader = r.barrier.wait().is_leader();
            let res = if leader {
                maintain(db, spec, step, r.started)
            } else {
                Ok(())
            };
            r.barrier.wait();
            res?;
        }
        if drop_wal && step % 8 == 0 {
            drop_old_segments(&db.dir().join("wal"));
        }
        if step % 48 == 0 {
            eprintln!("fill_head: step {step} of {steps}");
        }
        let t = t0 + step as i64 * spec.scrape_interval_ms;
        for n in &mut state {
            let mut app = head.appender();
            let empty = Labels::empty();
            if n.host.is_empty() {
                let mut v = Vec::new();
                spec.host_series(n.node, &mut v);
                let (mut s, labels) = slots(spec, v);
                for (slot, l) in s.iter_mut().zip(&labels) {
                    slot.r = app
                        .append(0, l, t, slot.sampler.at(step))
                        .map_err(|e| e.to_string())?;
                }
                n.host = s;
            } else {
                for slot in &n.host {
                    app.append(slot.r, &empty, t, slot.sampler.at(step))
                        .map_err(|e| e.to_string())?;
                }
            }
            appended += n.host.len() as u64;
            for gpu in 0..spec.gpus_per_node {
                let gen = spec.pod_generation(n.node, gpu, step);
                if n.gpus.len() <= gpu {
                    n.gpus.push((u64::MAX, Vec::new()));
                }
                let Some(g) = n.gpus.get_mut(gpu) else {
                    continue;
                };
                if g.0 != gen {
                    let mut v = Vec::new();
                    spec.gpu_series(n.node, gpu, step, &mut v);
                    let (mut s, labels) = slots(spec, v);
                    for (slot, l) in s.iter_mut().zip(&labels) {
                        slot.r = app
                            .append(0, l, t, slot.sampler.at(step))
                            .map_err(|e| e.to_string())?;
                    }
                    *g = (gen, s);
                } else {
                    for slot in &g.1 {
                        app.append(slot.r, &empty, t, slot.sampler.at(step))
                            .map_err(|e| e.to_string())?;
                    }
                }
                appended += g.1.len() as u64;
            }
            app.commit().map_err(|e| e.to_string())?;
        }
    }
    Ok(appended)
}

fn main() -> std::process::ExitCode {
    let a = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("fill_head: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut spec = ClusterSpec {
        nodes: a.nodes,
        scrape_interval_ms: (a.scrape_s * 1000.0).round() as i64,
        ..ClusterSpec::default()
    };
    if let Some(l) = a.pod_lifetime {
        spec.pod_lifetime_scrapes = l;
    }
    let steps = (a.hours * 3_600_000.0 / spec.scrape_interval_ms as f64).round() as u64;
    let end = a.end_ms.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    });
    let end = end - end.rem_euclid(spec.scrape_interval_ms);
    let t0 = end - (steps as i64 - 1).max(0) * spec.scrape_interval_ms;
    let db = match Db::open(
        &a.dir,
        DbOptions {
            maintenance_interval: None,
            spill_open_chunks: a.spill,
            ..DbOptions::default()
        },
    ) {
        Ok(db) => db,
        Err(e) => {
            eprintln!("fill_head: opening {}: {e}", a.dir.display());
            return std::process::ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let barrier = std::sync::Barrier::new(a.threads);
    let every = (a.maintain_hours * 3_600_000.0 / spec.scrape_interval_ms as f64).round() as u64;
    let rounds = (every > 0).then_some(Rounds {
        every,
        barrier: &barrier,
        started,
    });
    let result = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..a.threads)
            .map(|k| {
                let nodes: Vec<usize> = (k..a.nodes).step_by(a.threads).collect();
                let (db, spec, rounds) = (&db, &spec, rounds.as_ref());
                let drop_wal = a.drop_wal && k == 0;
                sc.spawn(move || {
                    let r = fill(db, spec, nodes, t0, steps, drop_wal, rounds);
                    if let Err(e) = &r {
                        // The others may be waiting at a maintenance round.
                        eprintln!("fill_head: {e}");
                        std::process::exit(1);
                    }
                    r
                })
            })
            .collect();
        let mut total = 0u64;
        for h in handles {
            total += h
                .join()
                .map_err(|_| "a filler thread panicked".to_string())??;
        }
        Ok::<u64, String>(total)
    });
    let samples = match result {
        Ok(n) => n,
        Err(e) => {
            eprintln!("fill_head: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let secs = started.elapsed().as_secs_f64();
    db.close();
    if a.drop_wal {
        drop_old_segments(&a.dir.join("wal"));
    }
    let snap = Instant::now();
    if a.snapshot {
        if let Err(e) = db.head().write_snapshot() {
            eprintln!("fill_head: head snapshot: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    println!(
        r#"{{"nodes":{},"hours":{},"steps":{steps},"end_ms":{end},"samples":{samples},"series":{},"active":{},"seconds":{secs:.1},"samples_per_s":{:.0},"snapshot_s":{:.1}}}"#,
        a.nodes,
        a.hours,
        db.head().num_series(),
        a.nodes * spec.series_per_node(),
        samples as f64 / secs,
        snap.elapsed().as_secs_f64()
    );
    std::process::ExitCode::SUCCESS
}
