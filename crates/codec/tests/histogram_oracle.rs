//! Differential test against Prometheus's own histogram chunk code (the
//! oracle of tests/fixtures/histogram-chunk/oracle, built from Prometheus
//! v3.8.1's tsdb/chunkenc). Skipped unless `CAIRN_HISTOGRAM_ORACLE` names
//! the oracle binary (it needs Go, which the test suite does not):
//!
//! ```text
//! export CAIRN_HISTOGRAM_ORACLE=$(tests/fixtures/histogram-chunk/oracle/build.sh PROMETHEUS_GIT_DIR)
//! cargo test -p cairn-codec --test histogram_oracle -- --nocapture
//! ```
//!
//! Generated sequences (`CAIRN_HISTOGRAM_ORACLE_CASES` of each encoding,
//! default 2000) go through Cairn's `append` and Prometheus's
//! `AppendHistogram` in the same head-like loop: the chunk bytes, every
//! append's outcome and every decoded sample must be identical. Then
//! mutated chunks (bit flips, truncations, byte swaps) are decoded by both:
//! where both decode, the samples must be identical; Cairn may only differ
//! by reporting an error where Prometheus's reader does not notice one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: failing means panicking

#[path = "support/histogram_json.rs"]
mod support;

use cairn_codec::{float_histogram_decode, histogram_decode, CodecError};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};
use support::*;

fn run_oracle(oracle: &std::ffi::OsStr, mode: &str, input: &str) -> Vec<Value> {
    let mut child = Command::new(oracle)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("oracle starts");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "oracle {mode} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Cairn's decoding of a chunk in the oracle's form: samples and an error
/// string (empty when none).
fn cairn_decode(float: bool, b: &[u8]) -> (Vec<Value>, bool) {
    if float {
        match float_histogram_decode(b) {
            Ok(s) => (
                s.iter()
                    .map(|(t, h)| json!({"t": t, "h": float_json(h)}))
                    .collect(),
                false,
            ),
            Err(_) => (Vec::new(), true),
        }
    } else {
        match histogram_decode(b) {
            Ok(s) => (
                s.iter()
                    .map(|(t, h)| json!({"t": t, "h": int_json(h)}))
                    .collect(),
                false,
            ),
            Err(_) => (Vec::new(), true),
        }
    }
}

fn mutate(rng: &mut Rng, b: &[u8]) -> Vec<u8> {
    let mut m = b.to_vec();
    match rng.below(4) {
        0 if m.len() > 3 => {
            let n = rng.range(3, m.len() as i64 - 1) as usize;
            m.truncate(n);
        }
        1 if m.len() > 3 => {
            let i = rng.range(3, m.len() as i64 - 1) as usize;
            m[i] ^= 1 << rng.below(8);
        }
        2 if m.len() > 3 => {
            let i = rng.range(3, m.len() as i64 - 1) as usize;
            m[i] = rng.below(256) as u8;
        }
        _ => {
            if let Some(x) = m.get_mut(rng.below(3) as usize) {
                *x ^= 1 << rng.below(8);
            }
        }
    }
    m
}

fn check(float: bool, oracle: &std::ffi::OsStr, cases: usize) {
    let mut rng = Rng(if float { 0xf10a7 } else { 0x1a7 });
    let seqs: Vec<Value> = (0..cases)
        .map(|_| {
            if float {
                ops_json(&gen_float(&mut rng), float_json)
            } else {
                ops_json(&gen_int(&mut rng), int_json)
            }
        })
        .collect();
    let input: String = seqs.iter().map(|s| format!("{s}\n")).collect();
    let want = run_oracle(
        oracle,
        if float { "encode-float" } else { "encode-int" },
        &input,
    );
    assert_eq!(want.len(), seqs.len());
    let mut all_chunks: Vec<Vec<u8>> = Vec::new();
    let (mut n_chunks, mut n_samples, mut n_recoded, mut n_new, mut n_err) = (0, 0, 0, 0, 0);
    for (i, (seq, want)) in seqs.iter().zip(&want).enumerate() {
        let (chunks, outcomes): (Vec<Vec<u8>>, Vec<String>) = if float {
            let (c, o) = run_float(&ops_of(seq, float_of));
            (c.into_iter().map(|c| c.into_bytes()).collect(), o)
        } else {
            let (c, o) = run_int(&ops_of(seq, int_of));
            (c.into_iter().map(|c| c.into_bytes()).collect(), o)
        };
        let want_outcomes: Vec<String> = want["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(outcomes, want_outcomes, "case {i}: outcomes\n{seq}");
        let got_hex: Vec<String> = chunks.iter().map(|c| hex(c)).collect();
        let want_hex: Vec<String> = want["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got_hex, want_hex, "case {i}: chunk bytes\n{seq}");
        for (k, c) in chunks.iter().enumerate() {
            assert_eq!(
                want["errors"][k], "",
                "case {i}: Prometheus cannot decode chunk {k}"
            );
            let (samples, failed) = cairn_decode(float, c);
            assert!(!failed, "case {i}: Cairn cannot decode chunk {k}");
            assert_eq!(
                Value::Array(samples.clone()),
                want["decoded"][k],
                "case {i}: decoded chunk {k}\n{seq}"
            );
            n_samples += samples.len();
        }
        n_chunks += chunks.len();
        n_recoded += outcomes.iter().filter(|o| *o == "recoded").count();
        n_new += outcomes.iter().filter(|o| *o == "new").count();
        n_err += outcomes.iter().filter(|o| o.starts_with("error")).count();
        all_chunks.extend(chunks);
    }
    eprintln!(
        "{}: {cases} sequences, {n_chunks} chunks, {n_samples} samples identical; {n_recoded} recodings, {n_new} new chunks, {n_err} append-only refusals",
        if float { "float" } else { "int" }
    );

    // Mutated chunks. Those whose layout claims more buckets than the data
    // can hold, or a span length or offset beyond 32 bits (which Prometheus
    // truncates), are left out: Prometheus allocates for them and can run
    // out of memory (Cairn reports them as corrupt before allocating).
    let claims_too_much = |m: &[u8]| {
        let e = if float {
            float_histogram_decode(m).err()
        } else {
            histogram_decode(m).err()
        };
        matches!(
            e,
            Some(CodecError::Corruption {
                what: "histogram chunk bucket count"
                    | "histogram span length"
                    | "histogram span offset",
                ..
            })
        )
    };
    let mut oom_guarded = 0;
    let mutated: Vec<Vec<u8>> = all_chunks
        .iter()
        .filter(|c| c.len() > 3)
        .flat_map(|c| (0..4).map(|_| mutate(&mut rng, c)).collect::<Vec<_>>())
        .filter(|m| {
            let skip = claims_too_much(m);
            oom_guarded += usize::from(skip);
            !skip
        })
        .collect();
    let input: String = mutated.iter().map(|m| format!("{}\n", hex(m))).collect();
    let want = run_oracle(
        oracle,
        if float { "decode-float" } else { "decode-int" },
        &input,
    );
    let (mut same, mut both_err, mut cairn_only_err, mut reserved) = (0, 0, 0, 0);
    let mut why = std::collections::BTreeMap::<String, usize>::new();
    for (m, w) in mutated.iter().zip(&want) {
        let (samples, failed) = cairn_decode(float, m);
        let prom_failed = w["error"] != "";
        match (failed, prom_failed) {
            (false, false)
                if samples
                    .iter()
                    .any(|s| s["h"]["schema"].as_i64().unwrap() > 8) =>
            {
                // Prometheus reduces schemas 9..=52 to 8 on reading; Cairn's
                // decoders give them as stored (the module docs say so).
                reserved += 1;
            }
            (false, false) => {
                assert_eq!(Value::Array(samples), w["samples"], "mutated {}", hex(m));
                same += 1;
            }
            (true, true) => both_err += 1,
            (true, false) => {
                cairn_only_err += 1;
                *why.entry(cairn_error(float, m)).or_insert(0) += 1;
            }
            (false, true) => panic!(
                "Cairn decodes what Prometheus rejects ({}): {}",
                w["error"],
                hex(m)
            ),
        }
    }
    eprintln!(
        "{}: {} mutated chunks: {same} decoded identically, {both_err} rejected by both, {cairn_only_err} rejected by Cairn only, {reserved} with schemas 9..=52 (not compared); {oom_guarded} claiming too many buckets or too long spans not sent",
        if float { "float" } else { "int" },
        mutated.len()
    );
    eprintln!("  Cairn-only errors: {why:?}");
}

/// A short name for the error Cairn reports for `m`.
fn cairn_error(float: bool, m: &[u8]) -> String {
    let e = if float {
        float_histogram_decode(m).err()
    } else {
        histogram_decode(m).err()
    };
    match e {
        Some(CodecError::UnexpectedEof { what, .. }) => format!("end of data in {what}"),
        Some(CodecError::Corruption { what, .. }) => what.to_string(),
        other => format!("{other:?}"),
    }
}

#[test]
fn matches_prometheus_oracle() {
    let Some(oracle) = std::env::var_os("CAIRN_HISTOGRAM_ORACLE") else {
        eprintln!("CAIRN_HISTOGRAM_ORACLE not set: skipped (see the file's docs)");
        return;
    };
    let cases = std::env::var("CAIRN_HISTOGRAM_ORACLE_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    check(false, &oracle, cases);
    check(true, &oracle, cases);
}
