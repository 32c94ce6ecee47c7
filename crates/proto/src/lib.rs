//! Prost types for remote write 1.0/2.0 and remote read.
