//! Accounting of the head's memory, by what holds it: see
//! [`Head::memory`].
//!
//! Why: "memory per active series" is the figure that decides how many
//! series one machine can hold, and RSS alone does not say which structure
//! to shrink. The figures are computed by walking the structures and adding
//! up what each one asked the allocator for (lengths and capacities, hash
//! tables estimated from their capacity with
//! [`cairn_storage::hash_table_bytes`]); the allocator's own rounding and
//! free pages are not in them, so RSS minus the total is what the allocator
//! and everything outside the head (caches of the write path, queries,
//! buffers) hold. `docs/head.md` describes how to use it.
//!
//! Contract: a walk takes each stripe lock and each series lock briefly, one
//! at a time; it is a snapshot of nothing (series may be added meanwhile)
//! and costs about as much as touching every series once.

use std::mem::size_of;

use roaring::RoaringTreemap;

use crate::head::Head;
use crate::series::{FullChunk, MemSeries, Stored};

/// The head's memory by component, in bytes (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeadMemory {
    /// Series in the head.
    pub series: u64,
    /// The series records (`MemSeries` and its reference counts), open
    /// chunk state included, its buffer not.
    pub series_records: u64,
    /// The label sets (one shared allocation per series).
    pub labels: u64,
    /// Buffers of the open chunks (their capacity).
    pub open_chunks: u64,
    /// Bytes written into the open chunks (not a component: the part of
    /// `open_chunks` in use; the rest is slack).
    pub open_chunk_bytes: u64,
    /// Bytes of the open chunks moved to the spill files (not memory: the
    /// settled fronts of open chunks, see `docs/head.md`).
    pub open_chunk_spilled: u64,
    /// Bytes of spill-file slots in use (not memory: the files' live part).
    pub spill_slot_bytes: u64,
    /// Lists of full chunks (references into `chunks_head/`).
    pub chunk_refs: u64,
    /// Full chunks kept in memory because writing them failed.
    pub chunks_in_memory: u64,
    /// Out-of-order buffers and chunks.
    pub out_of_order: u64,
    /// Append-id runs beyond the one kept inline.
    pub isolation: u64,
    /// The ref -> series map.
    pub series_by_ref: u64,
    /// The label hash -> series map.
    pub series_by_hash: u64,
    /// The inverted index: label names, values and postings bitmaps.
    pub postings: u64,
    /// The sorted-order cache of large selections.
    pub sorted_orders: u64,
    /// The exemplar ring, its index and the exemplars' label sets.
    pub exemplars: u64,
}

impl HeadMemory {
    /// Every component with its name, in a fixed order.
    pub fn components(&self) -> [(&'static str, u64); 12] {
        [
            ("series_records", self.series_records),
            ("labels", self.labels),
            ("open_chunks", self.open_chunks),
            ("chunk_refs", self.chunk_refs),
            ("chunks_in_memory", self.chunks_in_memory),
            ("out_of_order", self.out_of_order),
            ("isolation", self.isolation),
            ("series_by_ref", self.series_by_ref),
            ("series_by_hash", self.series_by_hash),
            ("postings", self.postings),
            ("sorted_orders", self.sorted_orders),
            ("exemplars", self.exemplars),
        ]
    }

    /// The sum of the components.
    pub fn total(&self) -> u64 {
        self.components().iter().map(|(_, b)| b).sum()
    }
}

/// Bytes held by a postings bitmap: the B-tree of 32-bit halves (one node
/// for the refs below 2^32 that the head uses) and each bitmap's containers
/// and their stores.
pub(crate) fn treemap_bytes(t: &RoaringTreemap) -> u64 {
    // A B-tree leaf: 11 keys and values, a parent pointer, lengths.
    const NODE: usize = 11 * (4 + size_of::<roaring::RoaringBitmap>()) + 16;
    let mut b = size_of::<RoaringTreemap>() as u64 + NODE as u64;
    for (_, bm) in t.bitmaps() {
        let st = bm.statistics();
        // A container: its key, length and store handle.
        b += u64::from(st.n_containers) * 32
            + st.n_bytes_array_containers
            + st.n_bytes_run_containers
            + st.n_bytes_bitset_containers;
    }
    b
}

impl Head {
    /// Walks the head and adds up its memory by component (see the
    /// module docs for what is and is not counted).
    pub fn memory(&self) -> HeadMemory {
        let mut m = HeadMemory::default();
        self.series.for_each(|s| {
            m.series += 1;
            // The `Arc`'s two counts precede the record.
            m.series_records += (size_of::<MemSeries>() + 16) as u64;
            m.labels += (s.labels.encoded_len() + 16) as u64;
            let d = s.data.lock();
            if let Some(o) = &d.open {
                m.open_chunks += o.chunk.capacity() as u64;
                m.open_chunk_bytes += o.chunk.bytes().len() as u64;
                m.open_chunk_spilled += o.chunk.drained() as u64;
            }
            m.chunk_refs += (d.full.capacity() * size_of::<FullChunk>()) as u64;
            for c in &d.full {
                if let Stored::Mem(b) = &c.stored {
                    m.chunks_in_memory += b.len() as u64;
                }
            }
            if d.txs.spilled() {
                m.isolation += (d.txs.capacity() * size_of::<(u64, i64)>()) as u64;
            }
            if let Some(o) = &d.ooo {
                m.out_of_order += (size_of::<crate::series::Ooo>()
                    + o.buf.capacity() * size_of::<(i64, f64, u64)>())
                    as u64;
                for (c, _, _) in &o.chunks {
                    m.out_of_order +=
                        (size_of::<(crate::xor::Chunk, i64, i64)>() + c.capacity()) as u64;
                }
            }
            if let Some(h) = &d.hist {
                m.chunks_in_memory += (size_of::<crate::hist::HistData>() + h.heap_bytes()) as u64;
                m.out_of_order += crate::hist_ooo::heap_bytes(&h.ooo) as u64;
            }
        });
        let (by_ref, by_hash) = self.series.map_bytes();
        m.series_by_ref = by_ref;
        m.series_by_hash = by_hash;
        m.postings = self.index.heap_bytes();
        m.sorted_orders = self.orders.heap_bytes();
        m.exemplars = self.exemplars.heap_bytes();
        m.spill_slot_bytes = self.chunks.spill().map_or(0, |s| s.usage().1);
        m
    }
}
