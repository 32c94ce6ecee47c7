//! Shared helpers for the criterion benches (data generators).
