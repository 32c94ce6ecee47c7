//! Writes the frozen dense-chunk fixtures of `tests/fixtures/dense/`:
//!
//! ```sh
//! cargo run -p cairn-codec --example make_dense_fixtures -- tests/fixtures/dense
//! ```
//!
//! For every case it writes `NAME.samples` (a comment line, then one
//! `timestamp_ms value_bits_hex` line per sample) and `NAME.chunk` (the
//! bytes `encode_dense` gives for them), plus the corrupt chunks
//! `corrupt-*.chunk`, and prints each chunk in hex. The samples are
//! computed here, deterministically (no randomness), so a rerun with an
//! unchanged encoder reproduces the files byte for byte. The fixtures are
//! frozen: `crates/codec/tests/dense_fixtures.rs` only reads them, and a
//! rerun that changes a `.chunk` file means the format changed.

use cairn_codec::{dense_decode, encode_dense};
use std::error::Error;
use std::fmt::Write as _;
use std::path::Path;

/// Prometheus's stale marker, a NaN with payload 2.
const STALE: u64 = 0x7ff0_0000_0000_0002;

/// Mode byte of the value section (`docs/format/dense-chunk.md`).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Decimal,
    Float,
}

struct Case {
    name: &'static str,
    about: &'static str,
    mode: Mode,
    ts: Vec<i64>,
    vs: Vec<f64>,
}

/// A small deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

const T0: i64 = 1_700_000_000_000;

fn cases() -> Vec<Case> {
    let mut out = Vec::new();

    // The worked example of docs/format/dense-chunk.md.
    out.push(Case {
        name: "worked_example",
        about: "4 scrapes 15 s apart with 0-3 ms of jitter, values with 2 decimals",
        mode: Mode::Decimal,
        ts: vec![T0, T0 + 15_003, T0 + 30_001, T0 + 45_000],
        vs: vec![1.5, 1.75, 2.0, 2.5],
    });

    // 300 scrapes exactly 15 s apart, a random walk with 6 decimals
    // (three packed blocks per stream: 128 + 128 + 43 values).
    let mut r = Lcg(1);
    let mut m: i64 = 500_000_000; // 500.000000
    let mut vs = Vec::new();
    for _ in 0..300 {
        m += (r.next() % 2_000_001) as i64 - 1_000_000;
        vs.push(m as f64 / 1e6);
    }
    out.push(Case {
        name: "regular_15s_6dp",
        about: "300 samples exactly 15 s apart, a random walk with 6 decimals",
        mode: Mode::Decimal,
        ts: (0..300).map(|k| T0 + k * 15_000).collect(),
        vs,
    });

    // 200 scrapes every 15 s, 0-25 ms late, with 7 missed scrapes after
    // sample 80 and 2 after sample 150; a gauge with 3 decimals.
    let mut r = Lcg(2);
    let mut ts = Vec::new();
    let mut slot = 0i64;
    for k in 0..200 {
        ts.push(T0 + slot * 15_000 + (r.next() % 26) as i64);
        slot += match k {
            80 => 8,
            150 => 3,
            _ => 1,
        };
    }
    let vs = (0..200)
        .map(|k| (20_000 + (r.next() % 5_000) as i64 + k) as f64 / 1e3)
        .collect();
    out.push(Case {
        name: "jitter_gap",
        about: "200 samples every 15 s with 0-25 ms of jitter, 7 missed scrapes after sample 80 and 2 after sample 150, 3 decimals",
        mode: Mode::Decimal,
        ts,
        vs,
    });

    // A counter: increments of 0-40, a reset to 0 at sample 70, a stale
    // marker at sample 100 (the target went away for a scrape), 120
    // samples every 30 s.
    let mut r = Lcg(3);
    let mut c = 1_234_567.0f64;
    let mut vs = Vec::new();
    for k in 0..120 {
        if k == 70 {
            c = 0.0;
        } else {
            c += (r.next() % 41) as f64;
        }
        vs.push(if k == 100 { f64::from_bits(STALE) } else { c });
    }
    out.push(Case {
        name: "counter_reset_stale",
        about: "120 samples every 30 s: a counter, reset to 0 at sample 70, the stale marker at sample 100 (an exception)",
        mode: Mode::Decimal,
        ts: (0..120).map(|k| T0 + k * 30_000).collect(),
        vs,
    });

    out.push(Case {
        name: "constant",
        about: "240 samples exactly 60 s apart, all 42.0",
        mode: Mode::Decimal,
        ts: (0..240).map(|k| T0 + k * 60_000).collect(),
        vs: vec![42.0; 240],
    });

    // Full-precision doubles (square roots): not decimal at all.
    out.push(Case {
        name: "float_mode",
        about: "100 samples every 10 s, values sqrt(k + 2) (17 significant digits: not decimal), float mode",
        mode: Mode::Float,
        ts: (0..100).map(|k| T0 + k * 10_000).collect(),
        vs: (0..100).map(|k| f64::from(k + 2).sqrt()).collect(),
    });

    out.push(Case {
        name: "single_sample",
        about: "one sample",
        mode: Mode::Decimal,
        ts: vec![T0],
        vs: vec![0.25],
    });

    // Wrapping arithmetic: timestamps at the ends of i64, values that
    // are never decimal.
    out.push(Case {
        name: "extremes",
        about: "timestamps at both ends of i64, -0.0, a NaN payload, infinity, 1e300, the stale marker: float mode",
        mode: Mode::Float,
        ts: vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX],
        vs: vec![
            -0.0,
            f64::from_bits(0x7ff8_dead_beef_0001),
            f64::INFINITY,
            1e300,
            f64::from_bits(STALE),
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE / 3.0,
        ],
    });
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

/// Byte offset and mode of the value section. It starts right after the
/// timestamps, and its first byte is the mode (0 or 1): the one byte
/// whose change to 7 makes the decoder report "value mode ... 7 at byte
/// offset" that same offset.
fn mode_of(chunk: &[u8], n: usize) -> Result<(usize, Mode), Box<dyn Error>> {
    for (i, &b) in chunk.iter().enumerate() {
        if b > 1 {
            continue;
        }
        let mut bad = chunk.to_vec();
        if let Some(x) = bad.get_mut(i) {
            *x = 7;
        }
        if let Err(e) = dense_decode(&bad, |_, _| {}) {
            let e = e.to_string();
            if e.contains("value mode") && e.ends_with(&format!("7 at byte offset {i}")) {
                let mode = if b == 0 { Mode::Decimal } else { Mode::Float };
                return Ok((i, mode));
            }
        }
    }
    Err(format!("no mode byte found in a chunk of {n} samples").into())
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: make_dense_fixtures DIR (normally tests/fixtures/dense)")?;
    let dir = Path::new(&dir);
    std::fs::create_dir_all(dir)?;
    let mut first_valid: Option<(Vec<u8>, usize)> = None;
    for c in cases() {
        let mut chunk = Vec::new();
        encode_dense(&c.ts, &c.vs, &mut chunk)?;
        let mut back = Vec::new();
        dense_decode(&chunk, |t, v| back.push((t, v.to_bits())))?;
        let want: Vec<(i64, u64)> =
            c.ts.iter()
                .copied()
                .zip(c.vs.iter().map(|v| v.to_bits()))
                .collect();
        if back != want {
            return Err(format!("{}: does not round-trip", c.name).into());
        }
        let (at, mode) = mode_of(&chunk, c.ts.len())?;
        if mode != c.mode {
            return Err(format!("{}: encoded in {mode:?} mode, meant {:?}", c.name, c.mode).into());
        }
        let mut text = format!("# {}\n", c.about);
        for (t, v) in &want {
            let _ = writeln!(text, "{t} {v:016x}");
        }
        std::fs::write(dir.join(format!("{}.samples", c.name)), text)?;
        std::fs::write(dir.join(format!("{}.chunk", c.name)), &chunk)?;
        println!(
            "{:20} {:4} samples {:5} bytes, {mode:?} mode at byte {at}: {}",
            c.name,
            c.ts.len(),
            chunk.len(),
            hex(chunk.get(..48).unwrap_or(&chunk))
        );
        if c.name == "jitter_gap" {
            first_valid = Some((chunk, at));
        }
    }
    // Corrupt chunks, cut from jitter_gap: the value mode byte set to 2,
    // and the chunk cut in the middle of its value stream.
    let (chunk, at) = first_valid.ok_or("jitter_gap missing")?;
    let mut bad_mode = chunk.clone();
    if let Some(b) = bad_mode.get_mut(at) {
        *b = 2;
    }
    let truncated = chunk
        .get(..at + (chunk.len() - at) / 2)
        .ok_or("short chunk")?;
    for (name, data) in [
        ("corrupt-bad-mode", bad_mode.as_slice()),
        ("corrupt-truncated", truncated),
    ] {
        let err = dense_decode(data, |_, _| {})
            .err()
            .ok_or(format!("{name} decodes"))?;
        std::fs::write(dir.join(format!("{name}.chunk")), data)?;
        println!("{name:20} {:5} bytes: {err}", data.len());
    }
    Ok(())
}
