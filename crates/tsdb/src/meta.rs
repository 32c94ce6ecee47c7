//! A block's `meta.json`: identity, time range, statistics and lineage.
//!
//! Contracts: `min_time` is inclusive and `max_time` is EXCLUSIVE (a block
//! cut from samples ending at `t` records `t + 1`), as Prometheus writes.
//! The file is written last when a block is created, so a directory without
//! a readable `meta.json` is not a block. Unknown JSON fields (Thanos adds
//! some) are ignored on read; `version` must be 1.

use std::path::Path;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::fsutil::write_atomic;
use crate::{Result, TsdbError};

/// The file name inside a block directory.
pub const META_FILENAME: &str = "meta.json";
/// The only meta.json version there is.
pub const META_VERSION: u32 = 1;

/// Contents of `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    pub ulid: Ulid,
    /// Inclusive lower bound, ms.
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// Exclusive upper bound, ms.
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    #[serde(default)]
    pub stats: BlockStats,
    #[serde(default)]
    pub compaction: BlockCompaction,
    pub version: u32,
    /// Thanos's section: external labels and, for downsampled blocks, the
    /// resolution (docs/format/downsample.md). Absent on raw blocks Cairn
    /// writes, as Prometheus writes none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thanos: Option<ThanosMeta>,
}

/// The `thanos` section of meta.json, as far as Cairn reads and writes it
/// (other fields Thanos adds are dropped on rewrite).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosMeta {
    /// External labels of the writer.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub downsample: ThanosDownsample,
    /// Which component wrote the block (`cairn`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// `thanos.downsample`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThanosDownsample {
    /// Window width in ms; 0 for raw data.
    #[serde(default)]
    pub resolution: i64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// Counters over the block's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    #[serde(rename = "numSamples", default, skip_serializing_if = "is_zero")]
    pub num_samples: u64,
    /// Float samples (Prometheus v3 writes it; older writers do not).
    #[serde(rename = "numFloatSamples", default, skip_serializing_if = "is_zero")]
    pub num_float_samples: u64,
    /// Native histogram samples (Prometheus v3 writes it when non-zero).
    #[serde(
        rename = "numHistogramSamples",
        default,
        skip_serializing_if = "is_zero"
    )]
    pub num_histogram_samples: u64,
    #[serde(rename = "numSeries", default, skip_serializing_if = "is_zero")]
    pub num_series: u64,
    #[serde(rename = "numChunks", default, skip_serializing_if = "is_zero")]
    pub num_chunks: u64,
    #[serde(rename = "numTombstones", default, skip_serializing_if = "is_zero")]
    pub num_tombstones: u64,
}

impl BlockStats {
    /// Whether the block may hold native histogram chunks: it counts some,
    /// or its writer did not count floats apart (Prometheus before v3,
    /// Cairn before it kept histograms), so nobody can tell without
    /// reading its chunks.
    pub fn may_hold_histograms(&self) -> bool {
        self.num_histogram_samples > 0 || (self.num_float_samples == 0 && self.num_samples > 0)
    }
}

/// Where the block came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockCompaction {
    /// 1 for blocks cut from the head or backfilled; parents' max + 1 after compaction.
    pub level: u32,
    /// The level-1 blocks whose data this block holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Ulid>,
    /// Set on a block that holds no data and only awaits deletion.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deletable: bool,
    /// The blocks compacted into this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<BlockDesc>,
    /// Set when compacting this block failed; the planner skips it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

/// A parent block's identity and range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDesc {
    pub ulid: Ulid,
    #[serde(rename = "minTime")]
    pub min_time: i64,
    #[serde(rename = "maxTime")]
    pub max_time: i64,
}

impl BlockDesc {
    /// The identity and range of the block `m` describes.
    pub fn of(m: &BlockMeta) -> Self {
        Self {
            ulid: m.ulid,
            min_time: m.min_time,
            max_time: m.max_time,
        }
    }
}

/// Prometheus's compaction hint of blocks written from out-of-order data.
pub const HINT_FROM_OOO: &str = "from-out-of-order";

impl BlockMeta {
    /// A level-1 meta for a new block over `[min_time, max_time)`.
    pub fn new(ulid: Ulid, min_time: i64, max_time: i64) -> Self {
        Self {
            ulid,
            min_time,
            max_time,
            stats: BlockStats::default(),
            compaction: BlockCompaction {
                level: 1,
                sources: vec![ulid],
                ..BlockCompaction::default()
            },
            version: META_VERSION,
            thanos: None,
        }
    }

    /// Whether the block holds only out-of-order samples flushed from the
    /// head (Prometheus's `from-out-of-order` hint): its range says nothing
    /// about what the head has cut.
    pub fn from_out_of_order(&self) -> bool {
        self.compaction.hints.iter().any(|h| h == HINT_FROM_OOO)
    }

    /// The block's resolution in ms: 0 for raw data, else the window width
    /// of a downsampled block.
    pub fn resolution(&self) -> i64 {
        self.thanos.as_ref().map_or(0, |t| t.downsample.resolution)
    }

    /// True when the block's `[min_time, max_time)` meets `[mint, maxt]`.
    pub fn overlaps_closed(&self, mint: i64, maxt: i64) -> bool {
        self.min_time <= maxt && mint < self.max_time
    }

    /// Parses meta.json bytes; `path` only names the file in errors.
    pub fn from_json(bytes: &[u8], path: &Path) -> Result<Self> {
        let m: BlockMeta = serde_json::from_slice(bytes).map_err(|source| TsdbError::Json {
            path: path.to_owned(),
            source,
        })?;
        if m.version != META_VERSION {
            return Err(TsdbError::Corrupt {
                path: path.to_owned(),
                what: "meta.json version",
                expected: META_VERSION.to_string(),
                found: m.version.to_string(),
            });
        }
        if m.max_time < m.min_time {
            return Err(TsdbError::Corrupt {
                path: path.to_owned(),
                what: "meta.json time range",
                expected: format!("maxTime >= minTime {}", m.min_time),
                found: m.max_time.to_string(),
            });
        }
        Ok(m)
    }

    /// The JSON Prometheus writes: tab-indented.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // Serialising plain structs of numbers and strings into a Vec cannot fail.
        if self.serialize(&mut ser).is_err() {
            out.clear();
        }
        out
    }

    /// Reads `<dir>/meta.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(META_FILENAME);
        let b = std::fs::read(&path).map_err(TsdbError::io("read", &path))?;
        Self::from_json(&b, &path)
    }

    /// Writes `<dir>/meta.json` atomically and durably.
    pub fn write(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(META_FILENAME), &self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PROMTOOL_META: &str = r#"{
	"ulid": "01M80NB9PPJ3SN6PJ3M3X9ZWNP",
	"minTime": 1600000000000,
	"maxTime": 1600000200001,
	"stats": {
		"numSamples": 6,
		"numSeries": 2,
		"numChunks": 2
	},
	"compaction": {
		"level": 1,
		"sources": [
			"01M80NB9PPJ3SN6PJ3M3X9ZWNP"
		]
	},
	"version": 1
}"#;

    #[test]
    fn reads_and_rewrites_promtool_meta_byte_for_byte() {
        let m = BlockMeta::from_json(PROMTOOL_META.as_bytes(), Path::new("x")).unwrap();
        assert_eq!(m.max_time, 1_600_000_200_001);
        assert_eq!(m.stats.num_series, 2);
        assert_eq!(m.compaction.sources, vec![m.ulid]);
        assert_eq!(String::from_utf8(m.to_json()).unwrap(), PROMTOOL_META);
    }

    #[test]
    fn ignores_unknown_fields_and_rejects_bad_versions() {
        let with_thanos = PROMTOOL_META.replace(
            "\"version\": 1",
            "\"version\": 1, \"thanos\": {\"labels\": {}}",
        );
        assert!(BlockMeta::from_json(with_thanos.as_bytes(), Path::new("x")).is_ok());
        let v2 = PROMTOOL_META.replace("\"version\": 1", "\"version\": 2");
        assert!(matches!(
            BlockMeta::from_json(v2.as_bytes(), Path::new("x")),
            Err(TsdbError::Corrupt { .. })
        ));
    }

    fn arb_meta() -> impl Strategy<Value = BlockMeta> {
        (
            any::<u128>(),
            any::<i64>(),
            0i64..1 << 40,
            any::<[u64; 6]>(),
            1u32..8,
            any::<bool>(),
            proptest::collection::vec(any::<u128>(), 0..3),
        )
            .prop_map(|(u, mint, d, st, level, del, parents)| {
                let mut m = BlockMeta::new(Ulid(u), mint, mint.saturating_add(d));
                m.stats = BlockStats {
                    num_samples: st[0],
                    num_series: st[1],
                    num_chunks: st[2],
                    num_tombstones: st[3],
                    num_float_samples: st[4],
                    num_histogram_samples: st[5],
                };
                m.compaction.level = level;
                m.compaction.deletable = del;
                if level % 2 == 0 {
                    m.thanos = Some(ThanosMeta {
                        downsample: ThanosDownsample {
                            resolution: 300_000 * i64::from(level),
                        },
                        source: "cairn".into(),
                        ..ThanosMeta::default()
                    });
                }
                m.compaction.parents = parents
                    .into_iter()
                    .map(|p| BlockDesc {
                        ulid: Ulid(p),
                        min_time: mint,
                        max_time: mint,
                    })
                    .collect();
                m
            })
    }

    proptest! {
        #[test]
        fn round_trips(m in arb_meta()) {
            let back = BlockMeta::from_json(&m.to_json(), Path::new("x")).unwrap();
            prop_assert_eq!(back, m);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = BlockMeta::from_json(&b, Path::new("x"));
        }

        #[test]
        fn mangled_json_never_panics(m in arb_meta(), cut in 0usize..400, byte in any::<u8>()) {
            let mut j = m.to_json();
            if let Some(x) = j.get_mut(cut) { *x = byte; }
            let _ = BlockMeta::from_json(&j, Path::new("x"));
        }
    }
}
