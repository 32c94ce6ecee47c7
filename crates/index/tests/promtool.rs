//! Interoperability with the real Prometheus tooling (`promtool`, 2.42):
//! Cairn reads the index of a block promtool built, and promtool reads a
//! block whose index Cairn wrote.
//!
//! These tests need `promtool` on the PATH (or in `PROMTOOL`); they fail,
//! never skip, when it is missing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use cairn_codec::XorChunk;
use cairn_index::{postings_for_matchers, ChunkMeta, IndexLike, IndexReader, IndexWriter};
use cairn_model::{Labels, MatchType, Matcher};
use roaring::RoaringTreemap;

fn promtool() -> PathBuf {
    let p = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("promtool"));
    match Command::new(&p).arg("--version").output() {
        Ok(o) if o.status.success() => p,
        _ => panic!(
            "promtool not found (looked for {}); run scripts/install-deps.sh to install Prometheus's tools",
            p.display()
        ),
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// A small GPU-cluster-like data set: (labels, samples in ms).
fn dataset(base_s: i64) -> BTreeMap<Labels, Vec<(i64, f64)>> {
    let mut out = BTreeMap::new();
    for host in 0..4 {
        for gpu in 0..3 {
            for metric in ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED"] {
                let l = Labels::from_pairs([
                    ("__name__", metric.to_owned()),
                    ("Hostname", format!("node-{host}")),
                    ("gpu", gpu.to_string()),
                ]);
                let samples = (0..20)
                    .map(|i| {
                        (
                            (base_s + 15 * i) * 1000,
                            f64::from(host * 10 + gpu) + 0.5 * i as f64,
                        )
                    })
                    .collect();
                out.insert(l, samples);
            }
        }
    }
    out.insert(
        Labels::from_pairs([("__name__", "up"), ("job", "node")]),
        vec![(base_s * 1000, 1.0)],
    );
    out
}

fn block_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("meta.json").exists())
        .collect();
    v.sort();
    v
}

fn brute_force(sets: &[Labels], ms: &[Matcher]) -> Vec<Labels> {
    sets.iter()
        .filter(|l| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
        .cloned()
        .collect()
}

fn queries() -> Vec<Vec<Matcher>> {
    let m = |k, n: &str, v: &str| Matcher::new(k, n, v).unwrap();
    use MatchType::*;
    vec![
        vec![
            m(Equal, "__name__", "DCGM_FI_DEV_GPU_UTIL"),
            m(Regex, "Hostname", "node-1.*"),
        ],
        vec![m(Regex, "Hostname", "node-(0|3)"), m(NotEqual, "gpu", "1")],
        vec![m(NotRegex, "__name__", "DCGM.*")],
        vec![m(Equal, "job", "")],
        vec![m(NotEqual, "job", ""), m(Regex, "__name__", ".+")],
        vec![
            m(Regex, "gpu", "2|nope"),
            m(NotRegex, "Hostname", "node-[12]"),
        ],
    ]
}

/// Start of a 2h-aligned window, so promtool puts everything in one block.
const BASE_S: i64 = 1_700_006_400 + 60;

#[test]
fn reads_an_index_written_by_promtool() {
    let promtool = promtool();
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(BASE_S);
    let mut om = String::new();
    for (l, samples) in &data {
        for (t, v) in samples {
            // `Display` of Labels is Prometheus's `{a="b", ...}`; OpenMetrics
            // wants the name outside the braces.
            let name = l.metric_name().unwrap();
            let rest = l.without(&["__name__"]);
            let inner = rest.to_string().replace(", ", ",");
            writeln!(om, "{name}{inner} {v} {}", t / 1000).unwrap();
        }
    }
    om.push_str("# EOF\n");
    let input = dir.path().join("in.om");
    std::fs::write(&input, om).unwrap();
    let out = dir.path().join("out");
    run(Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&input)
        .arg(&out));
    let blocks = block_dirs(&out);
    assert_eq!(blocks.len(), 1, "expected one block, got {blocks:?}");

    let r = IndexReader::open(&blocks[0].join("index")).unwrap();
    assert_eq!(r.version(), 2);
    let all = r.all_postings().unwrap();
    assert_eq!(all.len(), data.len() as u64);

    // Iterating postings yields label-sorted series with one chunk each.
    let mut chunks = Vec::new();
    let mut by_labels = BTreeMap::new();
    for (id, (want_l, samples)) in all.iter().zip(&data) {
        let l = r.series(id, &mut chunks).unwrap();
        assert_eq!(&l, want_l);
        assert_eq!(chunks.len(), 1, "{l}");
        assert_eq!(chunks[0].min_time, samples.first().unwrap().0);
        assert_eq!(chunks[0].max_time, samples.last().unwrap().0);
        by_labels.insert(l, id);
    }

    let mut want_values: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut want_syms = BTreeSet::new();
    for l in data.keys() {
        for x in l.iter() {
            want_values
                .entry(x.name.into())
                .or_default()
                .insert(x.value.into());
            want_syms.insert(x.name.to_owned());
            want_syms.insert(x.value.to_owned());
        }
    }
    // Prometheus always adds the empty string to a block's symbol table.
    want_syms.insert(String::new());
    assert_eq!(
        r.symbols().unwrap(),
        want_syms.into_iter().collect::<Vec<_>>()
    );
    assert_eq!(
        r.label_names().unwrap(),
        want_values.keys().cloned().collect::<Vec<_>>()
    );
    for (n, vs) in &want_values {
        assert_eq!(
            r.label_values(n).unwrap(),
            vs.iter().cloned().collect::<Vec<_>>()
        );
        for v in vs {
            let want: RoaringTreemap = data
                .keys()
                .filter(|l| l.get(n) == Some(v.as_str()))
                .map(|l| by_labels[l])
                .collect();
            assert_eq!(r.postings(n, v).unwrap(), want, "{n}={v}");
        }
    }
    let sets: Vec<Labels> = data.keys().cloned().collect();
    for ms in queries() {
        let got: Vec<Labels> = postings_for_matchers(&r, &ms)
            .unwrap()
            .iter()
            .map(|id| r.series(id, &mut chunks).unwrap())
            .collect();
        let want = brute_force(&sets, &ms);
        assert!(
            !want.is_empty() || ms.len() == 1,
            "query {ms:?} selects nothing"
        );
        assert_eq!(got, want, "{ms:?}");
    }
}

/// Writes a complete block (chunks, index, meta.json) with Cairn's writer.
fn write_block(root: &Path, data: &BTreeMap<Labels, Vec<(i64, f64)>>) -> String {
    let ulid = ulid::Ulid::from_parts(1_700_000_000_000, 42).to_string();
    let block = root.join(&ulid);
    std::fs::create_dir_all(block.join("chunks")).unwrap();

    // Chunk segment 000001: header, then len | encoding | data | crc32c.
    let mut seg = vec![0x85, 0xBD, 0x40, 0xDD, 1, 0, 0, 0];
    let mut metas = Vec::new();
    let mut num_chunks = 0;
    for samples in data.values() {
        // Series with many samples are split in two chunks to exercise deltas.
        let parts: Vec<&[(i64, f64)]> = if samples.len() > 10 {
            let (a, b) = samples.split_at(samples.len() / 2);
            vec![a, b]
        } else {
            vec![samples.as_slice()]
        };
        let mut cm = Vec::new();
        for part in parts {
            let mut c = XorChunk::new();
            for &(t, v) in part {
                c.append(t, v);
            }
            let chunk_ref = seg.len() as u64; // segment index 0
            cairn_codec::varint::put_uvarint(&mut seg, c.bytes().len() as u64);
            let mut enc = vec![cairn_codec::ENCODING_XOR];
            enc.extend_from_slice(c.bytes());
            seg.extend_from_slice(&enc);
            seg.extend_from_slice(&cairn_codec::crc32c(&enc).to_be_bytes());
            cm.push(ChunkMeta {
                min_time: part.first().unwrap().0,
                max_time: part.last().unwrap().0,
                chunk_ref,
            });
            num_chunks += 1;
        }
        metas.push(cm);
    }
    std::fs::write(block.join("chunks").join("000001"), seg).unwrap();

    let mut w = IndexWriter::create(&block.join("index")).unwrap();
    let syms: BTreeSet<&str> = data
        .keys()
        .flat_map(|l| l.iter().flat_map(|x| [x.name, x.value]))
        .collect();
    for s in syms {
        w.add_symbol(s).unwrap();
    }
    for (l, cm) in data.keys().zip(&metas) {
        w.add_series(l, cm).unwrap();
    }
    w.finish().unwrap();

    let min_t = data.values().map(|s| s[0].0).min().unwrap();
    let max_t = data.values().map(|s| s.last().unwrap().0).max().unwrap();
    let samples: usize = data.values().map(Vec::len).sum();
    let meta = serde_json::json!({
        "ulid": ulid,
        "minTime": min_t,
        "maxTime": max_t + 1,
        "stats": {"numSamples": samples, "numSeries": data.len(), "numChunks": num_chunks},
        "compaction": {"level": 1, "sources": [ulid]},
        "version": 1
    });
    std::fs::write(block.join("meta.json"), meta.to_string()).unwrap();
    ulid
}

#[test]
fn promtool_reads_an_index_written_by_cairn() {
    let promtool = promtool();
    let dir = tempfile::tempdir().unwrap();
    let data = dataset(BASE_S);
    let ulid = write_block(dir.path(), &data);
    // `tsdb dump` opens the directory as a database, which wants a WAL dir.
    std::fs::create_dir_all(dir.path().join("wal")).unwrap();

    let analyze = run(Command::new(&promtool)
        .args(["tsdb", "analyze"])
        .arg(dir.path())
        .arg(&ulid));
    let pairs: BTreeSet<(&str, &str)> = data
        .keys()
        .flat_map(|l| l.iter().map(|x| (x.name, x.value)))
        .collect();
    let names: BTreeSet<&str> = pairs.iter().map(|p| p.0).collect();
    let entries: usize = data.keys().map(Labels::len).sum();
    for line in [
        format!("Block ID: {ulid}"),
        format!("Series: {}", data.len()),
        format!("Label names: {}", names.len()),
        format!("Postings (unique label pairs): {}", pairs.len()),
        format!("Postings entries (total label pairs): {entries}"),
        "12 __name__=DCGM_FI_DEV_GPU_UTIL".to_owned(),
    ] {
        assert!(
            analyze.lines().any(|l| l.trim() == line),
            "analyze output lacks {line:?}:\n{analyze}"
        );
    }

    let min_t = data.values().map(|s| s[0].0).min().unwrap();
    let max_t = data.values().map(|s| s.last().unwrap().0).max().unwrap();
    let dump = run(Command::new(&promtool)
        .args(["tsdb", "dump"])
        .arg(format!("--min-time={min_t}"))
        .arg(format!("--max-time={max_t}"))
        .arg(dir.path()));
    let mut want = String::new();
    for (l, samples) in &data {
        for (t, v) in samples {
            writeln!(want, "{l} {v} {t}").unwrap();
        }
    }
    assert_eq!(dump, want);
}
