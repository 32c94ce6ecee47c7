//! Measures what Cairn's dense chunk encoding would make of a block:
//! `cargo run --release -p cairn-tsdb --example dense_size -- BLOCK_DIR [SAMPLES_PER_CHUNK]`.
//! Prints bytes per sample of the block's XOR chunks and of dense chunks
//! cut every SAMPLES_PER_CHUNK samples (default 480), overall and per
//! metric name (the twelve biggest), and the timestamp share.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_storage::{Queryable, SelectHints};
use cairn_tsdb::Block;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .ok_or("usage: dense_size BLOCK_DIR [SAMPLES_PER_CHUNK]")?;
    let per: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(480);
    let b = Block::open(Path::new(dir))?;
    let q = b.querier(i64::MIN, i64::MAX)?;
    let all = [cairn_model::Matcher::new(
        cairn_model::MatchType::Regex,
        "__name__",
        ".*",
    )?];
    // name -> (samples, xor bytes, dense bytes, dense ts-only bytes)
    let mut by: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    let (mut ts, mut vs) = (Vec::new(), Vec::new());
    let zeros = vec![0.0; per.max(1)];
    let mut out = Vec::new();
    for s in q.select(&SelectHints::default(), &all)? {
        let s = s?;
        let name = s.labels().get("__name__").unwrap_or("").to_owned();
        let e = by.entry(name).or_default();
        ts.clear();
        vs.clear();
        if let Some(mut it) = s.chunks() {
            while let Some(ch) = it.next_chunk() {
                let ch = ch?;
                e[1] += ch.data.len() as u64;
                cairn_codec::xor_decode(&ch.data, |t, v| {
                    ts.push(t);
                    vs.push(v);
                })?;
            }
        }
        e[0] += ts.len() as u64;
        for (t, v) in ts.chunks(per).zip(vs.chunks(per)) {
            out.clear();
            cairn_codec::encode_dense(t, v, &mut out)?;
            e[2] += out.len() as u64;
            let mut back = Vec::new();
            cairn_codec::dense_decode(&out, |a, b| back.push((a, b.to_bits())))?;
            let want: Vec<(i64, u64)> = t
                .iter()
                .copied()
                .zip(v.iter().map(|x| x.to_bits()))
                .collect();
            if back != want {
                return Err(format!("round trip failed for {}", s.labels()).into());
            }
            out.clear();
            cairn_codec::encode_dense(t, zeros.get(..t.len()).unwrap_or(&[]), &mut out)?;
            e[3] += out.len() as u64;
        }
    }
    let tot = by.values().fold([0u64; 4], |mut a, x| {
        for (a, x) in a.iter_mut().zip(x) {
            *a += x;
        }
        a
    });
    let bps = |b: u64, n: u64| b as f64 / n.max(1) as f64;
    println!(
        "all: {} samples, xor {:.3} B/sample, dense {:.3} B/sample (timestamps ~{:.3}), index {:.3} B/sample",
        tot[0],
        bps(tot[1], tot[0]),
        bps(tot[2], tot[0]),
        bps(tot[3], tot[0]),
        bps(std::fs::metadata(Path::new(dir).join("index"))?.len(), tot[0])
    );
    let mut v: Vec<_> = by.into_iter().collect();
    v.sort_by_key(|(_, x)| std::cmp::Reverse(x[2]));
    for (n, x) in v.iter().take(14) {
        println!(
            "{n:45} {:>10} samples  xor {:.3}  dense {:.3}  (ts {:.3})  share {:.1}%",
            x[0],
            bps(x[1], x[0]),
            bps(x[2], x[0]),
            bps(x[3], x[0]),
            100.0 * x[2] as f64 / tot[2].max(1) as f64
        );
    }
    Ok(())
}
