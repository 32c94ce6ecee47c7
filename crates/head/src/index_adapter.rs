//! Adapter over cairn-index's `IndexLike` and `postings_for_matchers`.
//!
//! The head's inverted index implements the shared `IndexLike` trait so the
//! same matcher evaluation serves blocks and the head. Everything the head
//! needs from cairn-index goes through here, so the backing crate is
//! swapped in this one file.

use cairn_model::Matcher;
use roaring::RoaringTreemap;

pub use cairn_index::{IndexError, IndexLike};

use crate::error::{HeadError, Result};

/// The series of `ix` that satisfy every matcher; every series when `ms`
/// is empty (as the `Querier` contract reads; cairn-index returns none).
pub(crate) fn postings_for_matchers<I: IndexLike + ?Sized>(
    ix: &I,
    ms: &[Matcher],
) -> Result<RoaringTreemap> {
    let res = if ms.is_empty() {
        ix.all_postings()
    } else {
        cairn_index::postings_for_matchers(ix, ms)
    };
    res.map_err(|source| HeadError::Index {
        matchers: ms
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        source,
    })
}
