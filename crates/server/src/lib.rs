//! HTTP: remote write/read, the query API, health and metrics.
