//! Opens the frozen index fixtures in tests/fixtures/index/ (see the README
//! there for how they were made).

use std::path::PathBuf;

use cairn_index::{postings_for_matchers, ChunkMeta, IndexError, IndexLike, IndexReader};
use cairn_model::{labels, MatchType, Matcher};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/index")
        .join(name)
}

#[test]
fn promtool_fixture_reads_exactly() {
    let r = IndexReader::open(&fixture("promtool-2.42-small.index")).unwrap();
    assert_eq!(r.version(), 2);
    let all: Vec<u64> = r.all_postings().unwrap().iter().collect();
    assert_eq!(all, vec![5, 7, 9]);

    let mut chunks = Vec::new();
    let l = r.series(5, &mut chunks).unwrap();
    assert_eq!(
        l,
        labels!("__name__" => "gpu_util", "Hostname" => "node-1", "gpu" => "0")
    );
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        (chunks[0].min_time, chunks[0].max_time),
        (1_700_000_000_000, 1_700_000_015_000)
    );
    // The first chunk of the first segment sits right after its 8-byte header.
    assert_eq!(chunks[0].chunk_ref, 8);
    let l = r.series(9, &mut chunks).unwrap();
    assert_eq!(l, labels!("__name__" => "up", "job" => "x"));
    assert_eq!(
        chunks,
        vec![ChunkMeta {
            min_time: 1_700_000_000_000,
            max_time: 1_700_000_000_000,
            chunk_ref: chunks[0].chunk_ref
        }]
    );
    assert!(chunks[0].chunk_ref > 8);

    assert_eq!(
        r.label_names().unwrap(),
        vec!["Hostname", "__name__", "gpu", "job"]
    );
    assert_eq!(
        r.label_values("Hostname").unwrap(),
        vec!["node-1", "node-2"]
    );
    assert_eq!(
        r.postings("__name__", "gpu_util")
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        vec![5, 7]
    );
    let ms = [
        Matcher::new(MatchType::Regex, "__name__", "gpu_.*").unwrap(),
        Matcher::new(MatchType::NotEqual, "gpu", "0").unwrap(),
    ];
    assert_eq!(
        postings_for_matchers(&r, &ms)
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        vec![7]
    );
    assert!(matches!(
        r.series(6, &mut chunks),
        Err(IndexError::Corrupt { .. }
            | IndexError::Checksum { .. }
            | IndexError::SeriesNotFound { .. })
    ));
}

#[test]
fn corrupt_series_is_a_checksum_error() {
    let r = IndexReader::open(&fixture("corrupt-series-crc.index")).unwrap();
    let mut chunks = Vec::new();
    match r.series(5, &mut chunks) {
        Err(IndexError::Checksum {
            section,
            offset,
            expected,
            found,
            ..
        }) => {
            assert_eq!(section, "series");
            assert_eq!(offset, 5 * 16);
            assert_ne!(expected, found);
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    // The other series are intact.
    assert!(r.series(7, &mut chunks).is_ok());
}

#[test]
fn truncated_file_fails_to_open_with_a_named_error() {
    match IndexReader::open(&fixture("corrupt-truncated-toc.index")) {
        Err(
            e @ IndexError::Checksum {
                section: "table of contents",
                ..
            },
        ) => {
            assert!(e.to_string().contains("corrupt-truncated-toc.index"), "{e}");
        }
        other => panic!("expected a TOC checksum error, got {other:?}"),
    }
    let e = IndexReader::open(&fixture("promtool-2.42-small.om")).unwrap_err();
    assert!(
        matches!(
            e,
            IndexError::BadMagic {
                expected: 0xBAAA_D700,
                ..
            }
        ),
        "{e}"
    );
}
