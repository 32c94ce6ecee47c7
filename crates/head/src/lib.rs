//! The in-memory head.
