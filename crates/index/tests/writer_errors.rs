//! The writer refuses input the format cannot represent, with named errors,
//! and a refused series leaves it usable.

use cairn_index::{ChunkMeta, IndexError, IndexLike, IndexReader, IndexWriter};
use cairn_model::labels;

fn cm(min_time: i64, max_time: i64) -> ChunkMeta {
    ChunkMeta {
        min_time,
        max_time,
        chunk_ref: 8,
    }
}

#[test]
fn rejects_misordered_input_and_stays_usable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let mut w = IndexWriter::create(&path).unwrap();
    for s in ["1", "2", "a", "b"] {
        w.add_symbol(s).unwrap();
    }
    assert!(matches!(
        w.add_symbol("a"),
        Err(IndexError::OutOfOrder { what: "symbol", .. })
    ));

    // Unknown symbol: refused, nothing recorded.
    let e = w.add_series(&labels!("a" => "zzz"), &[]).unwrap_err();
    assert!(
        matches!(e, IndexError::InvalidInput { what: "series", .. }),
        "{e}"
    );
    assert!(matches!(
        w.add_series(&labels!("a" => "1"), &[cm(5, 4)]),
        Err(IndexError::InvalidInput { what: "chunk", .. })
    ));
    assert!(matches!(
        w.add_series(&labels!("a" => "1"), &[cm(0, 10), cm(10, 20)]),
        Err(IndexError::InvalidInput { what: "chunk", .. })
    ));
    assert!(matches!(
        w.add_series(&cairn_model::Labels::empty(), &[]),
        Err(IndexError::InvalidInput { .. })
    ));

    let r1 = w
        .add_series(&labels!("a" => "2"), &[cm(0, 10), cm(11, 20)])
        .unwrap();
    assert!(matches!(
        w.add_series(&labels!("a" => "1"), &[]),
        Err(IndexError::OutOfOrder { what: "series", .. })
    ));
    assert!(matches!(
        w.add_series(&labels!("a" => "2"), &[]),
        Err(IndexError::OutOfOrder { what: "series", .. })
    ));
    assert!(matches!(
        w.add_symbol("c"),
        Err(IndexError::InvalidInput { .. })
    ));
    let r2 = w.add_series(&labels!("a" => "2", "b" => "1"), &[]).unwrap();
    assert!(r2 > r1);
    w.finish().unwrap();

    let r = IndexReader::open(&path).unwrap();
    assert_eq!(
        r.all_postings().unwrap().iter().collect::<Vec<_>>(),
        vec![r1, r2]
    );
    assert_eq!(r.label_values("a").unwrap(), vec!["2"]);
    assert_eq!(
        r.postings("b", "1").unwrap().iter().collect::<Vec<_>>(),
        vec![r2]
    );
    let mut chunks = Vec::new();
    r.series(r1, &mut chunks).unwrap();
    assert_eq!(chunks, vec![cm(0, 10), cm(11, 20)]);
}
