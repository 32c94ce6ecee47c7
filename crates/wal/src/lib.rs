//! Cairn's segmented write-ahead log: pages, records, checkpoints and replay.
