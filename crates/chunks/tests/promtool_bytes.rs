//! Byte identity with Prometheus: promtool writes blocks from an OpenMetrics
//! corpus; every chunk it stored must equal, byte for byte, the XOR chunk
//! Cairn encodes from the same samples.
//!
//! Chunks are read sequentially from each block's `chunks/` with
//! [`ChunkReader::iter`]. Blocks are taken in `minTime` order; within a block
//! series come in label order (one series per metric name here, so name
//! order) and each series' chunks in time order. Each chunk's 2-byte sample
//! count says how many of the series' next samples it holds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

use cairn_chunks::ChunkReader;
use cairn_codec::{decode_all, XorChunk, ENCODING_XOR};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Go's `strconv.ParseFloat("NaN")` yields `math.NaN()`, whose bits differ
/// from Rust's NaN; Prometheus stores those bits verbatim.
const GO_NAN_BITS: u64 = 0x7FF8_0000_0000_0001;

struct Series {
    name: String,
    kind: &'static str,
    /// (timestamp text in seconds, value text)
    samples: Vec<(String, String)>,
}

/// Deterministic pseudo-random numbers (no external RNG needed).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 53) as f64
    }
}

fn ts_text(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms / 1000, ms % 1000)
    }
}

fn float_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v:?}")
    }
}

fn corpus() -> Vec<Series> {
    let mut rng = Lcg(42);
    let base: i64 = 1_600_000_000_000;
    let mut out = Vec::new();

    // Counter scraped every 15s for ~10h: regular chunks of 120 samples.
    let mut v = 0.0;
    let mut s = Vec::new();
    for i in 0..2400 {
        v += (rng.next() % 50) as f64;
        s.push((ts_text(base + i * 15_000), float_text(v)));
    }
    out.push(Series {
        name: "s01_requests_total".into(),
        kind: "counter",
        samples: s,
    });

    // Gauge with float noise and millisecond jitter.
    let mut s = Vec::new();
    let mut t = base + 7;
    for i in 0..1500 {
        t += 10_000 + (rng.next() % 400) as i64 - 200;
        let g = 60.0 + (i as f64 / 30.0).sin() * 15.0 + rng.unit() * 1e-3;
        s.push((ts_text(t), float_text(g)));
    }
    out.push(Series {
        name: "s02_gpu_temperature".into(),
        kind: "gauge",
        samples: s,
    });

    // NaN, +Inf, -Inf mixed with ordinary values.
    let mut s = Vec::new();
    for i in 0..600i64 {
        let v = match i % 7 {
            0 => f64::NAN,
            1 => f64::INFINITY,
            2 => f64::NEG_INFINITY,
            3 => -0.0,
            _ => (i as f64) * 1.25,
        };
        s.push((ts_text(base + i * 30_000), float_text(v)));
    }
    out.push(Series {
        name: "s03_special_values".into(),
        kind: "gauge",
        samples: s,
    });

    // Long and irregular gaps: every delta-of-delta bucket (0, 14, 17, 20 and
    // 64 bits), gaps within a block and across many blocks.
    let mut s = Vec::new();
    let mut t = base;
    let gaps: [i64; 14] = [
        15_000,
        15_000,
        23_191,
        15_000,
        31_384,
        80_000,
        600_000,
        1_000,
        3_600_000,
        1,
        7_000_000,
        86_400_000,
        15_000,
        604_800_000,
    ];
    for i in 0..700 {
        t += gaps[i % gaps.len()] + (rng.next() % 3) as i64;
        s.push((ts_text(t), float_text((rng.next() % 1000) as f64)));
    }
    out.push(Series {
        name: "s04_long_gaps".into(),
        kind: "gauge",
        samples: s,
    });

    // Very large timestamps (years 2096 and ~5138) with extreme magnitudes.
    let mut s = Vec::new();
    for (k, start) in [4_000_000_000_000i64, 99_999_000_000_000]
        .into_iter()
        .enumerate()
    {
        for i in 0..300i64 {
            let v = match i % 4 {
                0 => 1e300 * (i + 1) as f64,
                1 => 1e-300 / (i + 1) as f64,
                2 => -(i as f64) * 1e15,
                _ => (k as f64) + rng.unit(),
            };
            s.push((ts_text(start + i * 60_000 + 123), float_text(v)));
        }
    }
    out.push(Series {
        name: "s05_large_timestamps".into(),
        kind: "gauge",
        samples: s,
    });

    // Constant values: all-zero XOR deltas.
    let s = (0..500i64)
        .map(|i| (ts_text(base + i * 60_000), "42".to_string()))
        .collect();
    out.push(Series {
        name: "s06_constant".into(),
        kind: "gauge",
        samples: s,
    });

    // Integer-valued gauge with small steps (window reuse vs. new windows).
    let mut s = Vec::new();
    let mut g: i64 = 1_000_000;
    for i in 0..900i64 {
        g += (rng.next() % 21) as i64 - 10;
        s.push((ts_text(base + i * 5_000), float_text(g as f64)));
    }
    out.push(Series {
        name: "s07_int_gauge".into(),
        kind: "gauge",
        samples: s,
    });

    // A single sample and a pair: shortest chunks.
    out.push(Series {
        name: "s08_single".into(),
        kind: "gauge",
        samples: vec![(ts_text(base + 1), "3.5".into())],
    });
    out.push(Series {
        name: "s09_pair".into(),
        kind: "gauge",
        samples: vec![
            (ts_text(base + 1), "1".into()),
            (ts_text(base + 2), "-1".into()),
        ],
    });
    out
}

fn metric_name(s: &Series) -> String {
    s.name.clone()
}

fn write_openmetrics(path: &Path, corpus: &[Series]) {
    let mut text = String::new();
    for s in corpus {
        let family = s.name.strip_suffix("_total").unwrap_or(&s.name);
        text.push_str(&format!("# TYPE {family} {}\n", s.kind));
        for (t, v) in &s.samples {
            text.push_str(&format!("{} {v} {t}\n", metric_name(s)));
        }
    }
    text.push_str("# EOF\n");
    std::fs::write(path, text).unwrap();
}

/// Prometheus's conversion: parse seconds as float64, multiply by 1000,
/// truncate toward zero.
fn parse_ts(t: &str) -> i64 {
    (t.parse::<f64>().unwrap() * 1000.0) as i64
}

fn parse_value(v: &str) -> f64 {
    match v {
        "NaN" => f64::from_bits(GO_NAN_BITS),
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => v.parse().unwrap(),
    }
}

pub fn promtool() -> Command {
    let ok = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "promtool is not installed or not runnable; run scripts/install-deps.sh (Debian's prometheus package provides it)"
    );
    Command::new("promtool")
}

/// A series being consumed chunk by chunk: name, samples, next position.
type Cursor<'a> = (&'a String, Vec<(i64, f64)>, usize);

struct Block {
    min_time: i64,
    max_time: i64,
    dir: std::path::PathBuf,
}

fn blocks(out: &Path) -> Vec<Block> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(out).unwrap() {
        let dir = e.unwrap().path();
        let meta = dir.join("meta.json");
        if !meta.exists() {
            continue;
        }
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
        v.push(Block {
            min_time: m["minTime"].as_i64().unwrap(),
            max_time: m["maxTime"].as_i64().unwrap(),
            dir,
        });
    }
    v.sort_by_key(|b| b.min_time);
    v
}

#[test]
fn promtool_chunks_are_byte_identical_to_ours() {
    let corpus = corpus();
    let tmp = tempfile::tempdir().unwrap();
    let om = tmp.path().join("in.om");
    let out = tmp.path().join("out");
    write_openmetrics(&om, &corpus);
    let res = promtool()
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        res.status.success(),
        "promtool failed: {}\n{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );

    // Name-sorted series with Prometheus-converted samples.
    let series: BTreeMap<String, Vec<(i64, f64)>> = corpus
        .iter()
        .map(|s| {
            let samples = s
                .samples
                .iter()
                .map(|(t, v)| (parse_ts(t), parse_value(v)))
                .collect();
            (metric_name(s), samples)
        })
        .collect();
    let total_samples: usize = series.values().map(Vec::len).sum();

    let blocks = blocks(&out);
    assert!(
        blocks.len() > 5,
        "expected many 2h blocks, got {}",
        blocks.len()
    );
    let mut compared_chunks = 0usize;
    let mut compared_samples = 0usize;
    let mut count_histogram: BTreeMap<u16, usize> = BTreeMap::new();
    let mut full_chunks_of_counter = 0usize;
    for b in &blocks {
        // Each series' samples in this block's [minTime, maxTime) range.
        let mut queue: Vec<(&String, Vec<(i64, f64)>)> = series
            .iter()
            .map(|(n, s)| {
                let inside = s
                    .iter()
                    .copied()
                    .filter(|(t, _)| *t >= b.min_time && *t < b.max_time)
                    .collect();
                (n, inside)
            })
            .filter(|(_, s): &(&String, Vec<(i64, f64)>)| !s.is_empty())
            .collect();
        queue.reverse();
        let reader = ChunkReader::open(&b.dir.join("chunks")).unwrap();
        let mut current: Option<Cursor<'_>> = None;
        for item in reader.iter() {
            let (r, enc, data) = item.unwrap();
            assert_eq!(enc, ENCODING_XOR);
            if current.as_ref().is_none_or(|(_, s, pos)| *pos == s.len()) {
                let (n, s) = queue.pop().expect("more chunks than series in block");
                current = Some((n, s, 0));
            }
            let Some((name, samples, pos)) = current.as_mut() else {
                unreachable!()
            };
            let n = u16::from_be_bytes([data[0], data[1]]) as usize;
            assert!(
                n >= 1 && *pos + n <= samples.len(),
                "chunk {r:#x} of {name} claims {n} samples"
            );
            *count_histogram.entry(n as u16).or_default() += 1;
            if name.as_str() == "s01_requests_total" && n == 120 {
                full_chunks_of_counter += 1;
            }
            let mut ours = XorChunk::new();
            for &(t, v) in &samples[*pos..*pos + n] {
                ours.append(t, v);
            }
            if ours.bytes() != data {
                let theirs = decode_all(data).unwrap();
                panic!(
                    "chunk {r:#x} of {name} in block {} differs\nours:   {:02x?}\ntheirs: {:02x?}\ntheir samples: {:?}",
                    b.dir.display(),
                    ours.bytes(),
                    data,
                    &theirs[..theirs.len().min(5)]
                );
            }
            // Resuming from promtool's bytes and appending the rest of the
            // chunk's samples one at a time stays identical too.
            if n > 2 {
                let mut head = XorChunk::new();
                for &(t, v) in &samples[*pos..*pos + n / 2] {
                    head.append(t, v);
                }
                let mut resumed = XorChunk::from_bytes(head.into_bytes()).unwrap();
                for &(t, v) in &samples[*pos + n / 2..*pos + n] {
                    resumed.append(t, v);
                }
                assert_eq!(resumed.bytes(), data);
            }
            *pos += n;
            compared_chunks += 1;
            compared_samples += n;
        }
        let leftover = current.map_or(0, |(_, s, pos)| s.len() - pos);
        assert_eq!(
            leftover,
            0,
            "samples without chunk in block {}",
            b.dir.display()
        );
        assert!(
            queue.is_empty(),
            "series without chunks in block {}",
            b.dir.display()
        );
    }
    assert_eq!(compared_samples, total_samples);
    // promtool's head cuts a regular 15s series into 120-sample chunks.
    assert!(full_chunks_of_counter >= 15, "counts: {count_histogram:?}");
    eprintln!(
        "compared {compared_chunks} chunks / {compared_samples} samples over {} blocks; chunk sizes: {count_histogram:?}",
        blocks.len()
    );
}
