//! Bit streams, varints, CRC32-Castagnoli and Prometheus's XOR chunk encoding.
