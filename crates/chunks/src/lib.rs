//! Chunk segment files: block chunks/ and the head's chunks_head/.
