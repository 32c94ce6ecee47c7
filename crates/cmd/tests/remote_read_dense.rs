//! Remote read from a data directory whose blocks hold Cairn's dense chunks
//! (0xfe) and XOR2 chunks (4), which no Prometheus reads:
//!
//! - the real Prometheus 2.42, with no local data and `remote_read` pointed
//!   at `cairn serve` (it asks for `SAMPLES`), returns exactly the known
//!   samples, and the same raw samples, range queries and functions as
//!   Cairn's own API; again after `cairn tsdb compact --chunk-encoding dense`
//!   merged the blocks into longer dense chunks;
//! - a `STREAMED_XOR_CHUNKS` read from `cairn serve` (built and decoded by
//!   hand here) sends only XOR chunks of at most 120 samples, with the right
//!   min/max times, and promtool (Prometheus's own XOR decoder) dumps a block
//!   made of exactly those chunks as Cairn dumps the source.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use cairn_model::{Labels, Sample, STALE_NAN};
use cairn_storage::{
    ChunkIterator, EncodedChunk, MemStorage, Querier, Queryable, SelectHints, Series, SeriesSet,
};
use cairn_tsdb::{write_block, BlockWriteOptions, FloatEncoding};
use support::*;

/// Milliseconds; 2 h aligned (2023-11-14T22:00:00Z).
const T0: i64 = 1_699_999_200_000;
const H: i64 = 3_600_000;
/// The encodings of the four 2 h blocks, oldest first.
const BLOCKS: [FloatEncoding; 4] = [
    FloatEncoding::Dense,
    FloatEncoding::Xor2,
    FloatEncoding::Dense,
    FloatEncoding::Xor,
];

type Known = Vec<(Labels, Vec<(i64, f64)>)>;

/// The samples written, by series (label-sorted). No sample lies on a
/// whole minute: the queries' windows start on whole minutes, and whether a
/// sample exactly on a window's start is in it differs between Prometheus
/// 2.x (closed) and 3.x (open, as Cairn).
fn known() -> Known {
    let mut out: Known = Vec::new();
    // A gauge every 15 s for 8 h: 480 samples per 2 h block, one dense chunk
    // of 480 per dense block, re-encoded as four XOR chunks.
    out.push((
        Labels::from_pairs([("__name__", "rr_gauge"), ("gpu", "0")]),
        (0..8 * 240)
            .map(|i| {
                (
                    T0 + 7 + i * 15_000,
                    ((i * 37) % 100) as f64 + 0.25 * (i % 4) as f64,
                )
            })
            .collect(),
    ));
    // Another GPU of the same target: the same timestamps, so its dense
    // chunks share the first one's (timestamp flag 2) within a block, and
    // remote read must hand them out self-contained.
    let shared: Vec<(i64, f64)> = out[0]
        .1
        .iter()
        .enumerate()
        .map(|(i, &(t, _))| (t, 1e6 + (i % 50) as f64 * 0.5))
        .collect();
    out.push((
        Labels::from_pairs([("__name__", "rr_gauge"), ("gpu", "3")]),
        shared,
    ));
    // A gauge every 10 s for the first 3 h (720 samples in the first block:
    // chunks of 480 and 240), decimals and a NaN, ending inside the XOR2 block.
    out.push((
        Labels::from_pairs([("__name__", "rr_gauge"), ("gpu", "2")]),
        (0..3 * 360)
            .map(|i| {
                let v = if i == 100 {
                    f64::NAN
                } else {
                    i as f64 * 0.1 - 20.0
                };
                (T0 + 5_000 + i * 10_000 + i % 3, v)
            })
            .collect(),
    ));
    // A counter every 30 s with jitter: a reset, a stale marker, a 10 min
    // gap, then it goes on.
    let mut c = Vec::new();
    let mut v = 1000.0;
    for i in 0..8 * 120 {
        let t = T0 + 1_000 + i * 30_000 + (i * 7) % 11;
        if (501..521).contains(&i) {
            continue;
        }
        if i == 500 {
            c.push((t, STALE_NAN));
            continue;
        }
        v = if i == 300 {
            3.0
        } else {
            v + (i % 5) as f64 + 0.5
        };
        c.push((t, v));
    }
    out.push((
        Labels::from_pairs([("__name__", "rr_requests_total"), ("gpu", "1")]),
        c,
    ));
    // A constant every 5 min.
    out.push((
        Labels::from_pairs([("__name__", "rr_up"), ("job", "x")]),
        (0..8 * 12)
            .map(|i| (T0 + 1_234 + i * 300_000, 1.0))
            .collect(),
    ));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Writes the known samples as four 2 h blocks in [`BLOCKS`]' encodings.
fn build(dir: &Path, k: &Known) {
    std::fs::create_dir_all(dir).unwrap();
    let st = MemStorage::new();
    for (l, s) in k {
        st.add(l.clone(), s.iter().map(|&(t, v)| Sample::new(t, v)));
    }
    let q = st.querier(i64::MIN, i64::MAX).unwrap();
    for (i, enc) in BLOCKS.iter().enumerate() {
        let mint = T0 + i as i64 * 2 * H;
        let opts = BlockWriteOptions {
            encoding: *enc,
            ..BlockWriteOptions::default()
        };
        let meta = write_block(dir, &*q, mint, mint + 2 * H, &opts)
            .unwrap()
            .expect("samples in every block");
        let a = run(cairn()
            .args(["tsdb", "analyze"])
            .arg(dir)
            .arg(meta.ulid.to_string()));
        assert!(
            a.contains(&format!("Chunk encodings: {enc} ")),
            "block {i} is not {enc}:\n{a}"
        );
    }
}

/// Parses a Prometheus-API matrix answer: series (JSON of the metric) to
/// (t ms, value string).
fn matrix(base: &str, path_and_query: &str) -> Matrix {
    let r = get(&format!("{base}{path_and_query}"));
    assert_eq!(r.status, 200, "{base}{path_and_query}: {}", r.text());
    let j = r.json();
    assert_eq!(j["status"], "success", "{j}");
    let mut out = BTreeMap::new();
    for s in j["data"]["result"].as_array().unwrap() {
        let pts: Vec<serde_json::Value> = match s["values"].as_array() {
            Some(v) => v.clone(),
            None => vec![s["value"].clone()],
        };
        let pts: Vec<(i64, String)> = pts
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.insert(s["metric"].to_string(), pts);
    }
    out
}

type Matrix = BTreeMap<String, Vec<(i64, String)>>;

/// Panics with the first difference between two answers.
fn assert_same(got: &Matrix, want: &Matrix, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: series"
    );
    for (k, w) in want {
        let g = &got[k];
        if let Some(i) = (0..g.len().max(w.len())).find(|&i| g.get(i) != w.get(i)) {
            panic!(
                "{what}: {k} differs at point {i}: {:?} vs {:?} ({} vs {} points)",
                g.get(i),
                w.get(i),
                g.len(),
                w.len()
            );
        }
    }
}

fn metric_json(l: &Labels) -> String {
    let m: serde_json::Map<String, serde_json::Value> = l
        .iter()
        .map(|x| (x.name.to_owned(), serde_json::Value::from(x.value)))
        .collect();
    serde_json::Value::Object(m).to_string()
}

fn same_value(got: &str, want: f64) -> bool {
    let g: f64 = match got {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap(),
    };
    (g.is_nan() && want.is_nan()) || g.to_bits() == want.to_bits()
}

/// Prometheus (remote-reading Cairn) and Cairn answer alike, and the raw
/// samples are exactly the known ones (stale markers are not returned).
fn compare(prom: &str, cairn: &str, k: &Known) {
    let eval = (T0 + 8 * H) / 1000;
    let raw = format!(
        "/api/v1/query?query={}&time={eval}",
        enc("{__name__=~\"rr_.+\"}[9h]")
    );
    let theirs = matrix(prom, &raw);
    assert_same(&theirs, &matrix(cairn, &raw), "raw samples");
    assert_eq!(theirs.len(), k.len(), "{:?}", theirs.keys());
    let mut n = 0;
    for (l, s) in k {
        let got = &theirs[&metric_json(l)];
        let want: Vec<&(i64, f64)> = s
            .iter()
            .filter(|x| !cairn_model::is_stale_nan(x.1))
            .collect();
        assert_eq!(got.len(), want.len(), "{l}: sample count");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.0, w.0, "{l}: timestamp");
            assert!(same_value(&g.1, w.1), "{l} at {}: {} != {}", w.0, g.1, w.1);
        }
        n += got.len();
    }
    // Evaluated queries over the remote data: the stale marker ends the
    // counter's series until it resumes, the reset is seen, counts exact.
    let start = T0 / 1000;
    for q in [
        "{__name__=~\"rr_.+\"}",
        "resets(rr_requests_total[9h])",
        "count_over_time({__name__=~\"rr_.+\"}[2h])",
        "max_over_time(rr_gauge[30m])",
    ] {
        let path = format!(
            "/api/v1/query_range?query={}&start={start}&end={eval}&step=60",
            enc(q)
        );
        let theirs = matrix(prom, &path);
        assert!(!theirs.is_empty(), "{q}");
        assert_same(&theirs, &matrix(cairn, &path), q);
        if q.starts_with('{') {
            // The stale marker (in a dense block) ends the counter at once,
            // not 5 min of lookback later; it resumes after the gap.
            let (l, s) = k
                .iter()
                .find(|x| x.0.get("__name__") == Some("rr_requests_total"))
                .unwrap();
            let stale = s.iter().find(|x| cairn_model::is_stale_nan(x.1)).unwrap();
            let resume = s.iter().find(|x| x.0 > stale.0).unwrap().0;
            let pts = &theirs[&metric_json(l)];
            assert!(
                pts.iter().all(|p| p.0 < stale.0 || p.0 >= resume),
                "{l}: points after the stale marker"
            );
            assert!(pts.iter().any(|p| p.0 < stale.0 && p.0 > stale.0 - 60_000));
            assert!(pts.iter().any(|p| p.0 >= resume));
        }
    }
    let resets = matrix(
        prom,
        &format!(
            "/api/v1/query?query={}&time={eval}",
            enc("resets(rr_requests_total[9h])")
        ),
    );
    assert_eq!(resets.values().next().unwrap()[0].1, "1");
    eprintln!("{n} raw samples identical through Prometheus's remote read");
}

// ---------------------------------------------------------------------
// STREAMED_XOR_CHUNKS by hand: protobuf, frames, CRC32C.

fn put_uvarint(b: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        b.push((v as u8) | 0x80);
        v >>= 7;
    }
    b.push(v as u8);
}

fn put_bytes(b: &mut Vec<u8>, field: u64, data: &[u8]) {
    put_uvarint(b, field << 3 | 2);
    put_uvarint(b, data.len() as u64);
    b.extend_from_slice(data);
}

fn put_varint_field(b: &mut Vec<u8>, field: u64, v: u64) {
    put_uvarint(b, field << 3);
    put_uvarint(b, v);
}

/// A snappy `ReadRequest` of one query `{__name__=~re}` over `[mint, maxt]`
/// accepting only STREAMED_XOR_CHUNKS.
fn streamed_request(mint: i64, maxt: i64, re: &str) -> Vec<u8> {
    let mut m = Vec::new();
    put_varint_field(&mut m, 1, 2); // RE
    put_bytes(&mut m, 2, b"__name__");
    put_bytes(&mut m, 3, re.as_bytes());
    let mut q = Vec::new();
    put_varint_field(&mut q, 1, mint as u64);
    put_varint_field(&mut q, 2, maxt as u64);
    put_bytes(&mut q, 3, &m);
    let mut r = Vec::new();
    put_bytes(&mut r, 1, &q);
    put_varint_field(&mut r, 2, 1); // STREAMED_XOR_CHUNKS
    snap::raw::Encoder::new().compress_vec(&r).unwrap()
}

fn uvarint(b: &[u8], pos: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let x = b[*pos];
        *pos += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x < 0x80 {
            return v;
        }
        shift += 7;
        assert!(shift < 64, "varint too long");
    }
}

/// Protobuf fields of `b`: (number, varint value or bytes).
fn fields(b: &[u8]) -> Vec<(u64, u64, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let key = uvarint(b, &mut pos);
        match key & 7 {
            0 => out.push((key >> 3, uvarint(b, &mut pos), &b[..0])),
            2 => {
                let n = uvarint(b, &mut pos) as usize;
                out.push((key >> 3, 0, &b[pos..pos + n]));
                pos += n;
            }
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A chunk of a streamed answer.
struct Got {
    min: i64,
    max: i64,
    kind: u64,
    data: Vec<u8>,
}

/// Decodes the frames of a streamed answer: per frame, (query index,
/// labels, chunks).
fn decode_frames(body: &[u8]) -> Vec<(u64, Labels, Vec<Got>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let n = uvarint(body, &mut pos) as usize;
        let crc = u32::from_be_bytes(body[pos..pos + 4].try_into().unwrap());
        pos += 4;
        let payload = &body[pos..pos + n];
        pos += n;
        assert_eq!(crc32c(payload), crc, "frame checksum");
        let mut qi = 0;
        let mut series = Vec::new();
        for (f, v, b) in fields(payload) {
            match f {
                1 => series.push(b),
                2 => qi = v,
                _ => {}
            }
        }
        assert_eq!(series.len(), 1, "one series per frame");
        let mut pairs = Vec::new();
        let mut chunks = Vec::new();
        for (f, _, b) in fields(series[0]) {
            match f {
                1 => {
                    let (mut name, mut value) = (String::new(), String::new());
                    for (lf, _, lb) in fields(b) {
                        let s = String::from_utf8(lb.to_vec()).unwrap();
                        if lf == 1 {
                            name = s;
                        } else if lf == 2 {
                            value = s;
                        }
                    }
                    pairs.push((name, value));
                }
                2 => {
                    let mut c = Got {
                        min: 0,
                        max: 0,
                        kind: 0,
                        data: Vec::new(),
                    };
                    for (cf, cv, cb) in fields(b) {
                        match cf {
                            1 => c.min = cv as i64,
                            2 => c.max = cv as i64,
                            3 => c.kind = cv,
                            4 => c.data = cb.to_vec(),
                            _ => {}
                        }
                    }
                    chunks.push(c);
                }
                _ => {}
            }
        }
        out.push((qi, Labels::from_pairs(pairs), chunks));
    }
    out
}

/// The first timestamp of an XOR chunk: a zig-zag varint after the 2-byte
/// sample count.
fn xor_first_t(data: &[u8]) -> i64 {
    let mut pos = 2;
    let u = uvarint(data, &mut pos);
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

/// A querier over chunks received from remote read, for `write_block`.
struct Received(Vec<(Labels, Vec<EncodedChunk>)>);
struct ReceivedSeries<'a>(&'a (Labels, Vec<EncodedChunk>));

impl Series for ReceivedSeries<'_> {
    fn labels(&self) -> &Labels {
        &self.0 .0
    }
    fn iter(&self) -> Box<dyn cairn_storage::SampleIterator + '_> {
        panic!("write_block must copy the received XOR chunks as they are")
    }
    fn chunks(&self) -> Option<Box<dyn ChunkIterator + '_>> {
        struct It<'a>(std::slice::Iter<'a, EncodedChunk>);
        impl ChunkIterator for It<'_> {
            fn next_chunk(&mut self) -> Option<cairn_storage::Result<EncodedChunk>> {
                self.0.next().map(|c| Ok(c.clone()))
            }
        }
        Some(Box::new(It(self.0 .1.iter())))
    }
}

impl Querier for Received {
    fn select<'a>(
        &'a self,
        _h: &SelectHints,
        _m: &[cairn_model::Matcher],
    ) -> cairn_storage::Result<SeriesSet<'a>> {
        Ok(Box::new(self.0.iter().map(|s| {
            Ok(Box::new(ReceivedSeries(s)) as Box<dyn Series + 'a>)
        })))
    }
    fn label_names(&self, _m: &[cairn_model::Matcher]) -> cairn_storage::Result<Vec<String>> {
        Ok(vec![])
    }
    fn label_values(
        &self,
        _n: &str,
        _m: &[cairn_model::Matcher],
    ) -> cairn_storage::Result<Vec<String>> {
        Ok(vec![])
    }
}

/// Reads everything from `cairn serve` as STREAMED_XOR_CHUNKS, checks each
/// chunk against the known samples, and has promtool dump a block made of
/// exactly the received chunks.
fn check_streamed(cairn_base: &str, dir: &Path, k: &Known, tmp: &Path, tag: &str) {
    let r = post(
        &format!("{cairn_base}/api/v1/read"),
        &[
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Read-Version", "0.1.0"),
        ],
        &streamed_request(T0, T0 + 8 * H, "rr_.+"),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let frames = decode_frames(&r.body);
    let mut received: Vec<(Labels, Vec<EncodedChunk>)> = Vec::new();
    let mut nchunks = 0u64;
    for (qi, l, chunks) in frames {
        assert_eq!(qi, 0);
        let known = &k
            .iter()
            .find(|x| x.0 == l)
            .unwrap_or_else(|| panic!("{l}"))
            .1;
        if received.last().map(|x| &x.0) != Some(&l) {
            assert!(
                received.iter().all(|x| x.0 != l),
                "{l}: series sent twice, not in consecutive frames"
            );
            received.push((l.clone(), Vec::new()));
        }
        let got = &mut received.last_mut().unwrap().1;
        for c in chunks {
            assert_eq!(c.kind, 1, "{l}: chunk type {} is not XOR", c.kind);
            let n = usize::from(u16::from_be_bytes([c.data[0], c.data[1]]));
            assert!((1..=120).contains(&n), "{l}: chunk of {n} samples");
            assert_eq!(
                xor_first_t(&c.data),
                c.min,
                "{l}: min time is the first sample's"
            );
            // The chunk holds the n known samples from its min time on (the
            // last one is its max time), following on the previous chunk.
            let at = known
                .iter()
                .position(|x| x.0 == c.min)
                .unwrap_or_else(|| panic!("{l}: chunk min {} is no sample", c.min));
            let next = got.last().map_or(0, |p: &EncodedChunk| {
                known.iter().position(|x| x.0 == p.max_time).unwrap() + 1
            });
            assert_eq!(at, next, "{l}: chunk at {} leaves a gap or overlaps", c.min);
            assert!(at + n <= known.len(), "{l}: chunk runs past the series");
            assert_eq!(
                known[at + n - 1].0,
                c.max,
                "{l}: max time is the last sample's"
            );
            got.push(EncodedChunk {
                min_time: c.min,
                max_time: c.max,
                encoding: 1,
                data: c.data,
            });
            nchunks += 1;
        }
    }
    for (l, s) in k {
        let got = &received.iter().find(|x| &x.0 == l).unwrap().1;
        assert_eq!(
            got.last().unwrap().max_time,
            s.last().unwrap().0,
            "{l}: whole series"
        );
    }
    // Prometheus's own XOR decoder on exactly these chunks.
    let out = tmp.join(format!("streamed-{tag}"));
    // promtool opens the directory as a database: it wants a WAL folder.
    std::fs::create_dir_all(out.join("wal")).unwrap();
    let meta = write_block(
        &out,
        &Received(received),
        T0,
        T0 + 8 * H,
        &BlockWriteOptions::default(),
    )
    .unwrap()
    .unwrap();
    assert_eq!(meta.stats.num_chunks, nchunks, "chunks copied unchanged");
    let promtool = run(Command::new("/usr/bin/promtool")
        .args(["tsdb", "dump"])
        .arg(&out));
    let source = run(cairn().args(["tsdb", "dump"]).arg(dir));
    assert_eq!(
        source.lines().count(),
        k.iter().map(|x| x.1.len()).sum::<usize>()
    );
    assert_eq!(sorted_lines(&promtool), sorted_lines(&source));
    eprintln!(
        "{tag}: {nchunks} streamed XOR chunks, decoded by promtool as Cairn dumps the source"
    );
}

fn serve_args() -> [&'static str; 4] {
    [
        "--storage.tsdb.retention.time=0",
        "--storage.tsdb.downsample=false",
        "--storage.tsdb.max-block-duration=2h",
        "--storage.tsdb.min-block-duration=2h",
    ]
}

fn metric(base: &str, name: &str) -> f64 {
    get(&format!("{base}/metrics"))
        .text()
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Starts Cairn on `dir` and a Prometheus reading it; runs both checks.
fn serve_and_check(tmp: &Path, dir: &Path, k: &Known, tag: &str) {
    let start = Instant::now();
    let cp = free_port();
    let mut c = start_cairn(dir, cp, &serve_args());
    let cairn_base = format!("http://127.0.0.1:{cp}");
    let pp = free_port();
    let cfg = format!(
        "global:\n  scrape_interval: 1h\nremote_read:\n  - url: {cairn_base}/api/v1/read\n    read_recent: true\n"
    );
    let mut p = start_prometheus(&tmp.join(format!("prom-{tag}")), pp, &cfg, &[]);
    let before = metric(&cairn_base, "cairn_remote_read_series_total");
    let frames = metric(&cairn_base, "cairn_remote_read_frames_total");
    compare(&format!("http://127.0.0.1:{pp}"), &cairn_base, k);
    let after = metric(&cairn_base, "cairn_remote_read_series_total");
    assert!(
        after > before,
        "Prometheus did not read through Cairn's remote read"
    );
    // Prometheus 2.x asks for SAMPLES, so no frames are expected here.
    eprintln!(
        "{tag}: Prometheus read {} series, {} streamed frames",
        after - before,
        metric(&cairn_base, "cairn_remote_read_frames_total") - frames
    );
    check_streamed(&cairn_base, dir, k, tmp, tag);
    p.kill9();
    assert!(
        c.terminate(std::time::Duration::from_secs(20)),
        "cairn did not stop"
    );
    eprintln!("{tag}: checked in {:?}", start.elapsed());
}

#[test]
fn prometheus_reads_dense_and_xor2_blocks_through_remote_read() {
    require_tool("/usr/bin/prometheus");
    require_tool("/usr/bin/promtool");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let k = known();
    build(&dir, &k);
    assert_eq!(blocks(&dir).len(), 4);
    serve_and_check(tmp.path(), &dir, &k, "written");

    // Offline compaction merges blocks into dense ones with 480-sample
    // chunks made of several source chunks (the XOR2 block included).
    let out = run(cairn()
        .args([
            "tsdb",
            "compact",
            "--chunk-encoding",
            "dense",
            "--downsample=false",
        ])
        .arg(&dir));
    assert!(out.contains(" compacted level "), "{out}");
    eprintln!("{out}");
    let dense: Vec<String> = blocks(&dir)
        .into_iter()
        .filter(|b| {
            let a = run(cairn().args(["tsdb", "analyze"]).arg(&dir).arg(b));
            a.contains("Chunk encodings: dense ") && !a.contains("xor2")
        })
        .collect();
    assert!(
        blocks(&dir).len() < 4 && !dense.is_empty(),
        "compaction made no dense block: {out}"
    );
    serve_and_check(tmp.path(), &dir, &k, "compacted");
}
