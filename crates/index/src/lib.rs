//! Prometheus index format v2: symbols, series, postings and table of contents.
