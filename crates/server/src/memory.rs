//! `/debug/memory`: where the server's memory goes, per component and per
//! head series, beside the process's resident set.
//!
//! Why: the figure operators size machines by is memory per active series,
//! and RSS alone does not say which structure holds it. The storage reports
//! its components (see [`crate::Backend::memory`]), the write path its
//! caches; the rest of RSS (allocator rounding and free pages, queries,
//! buffers, code) is shown as "other". The method is in `docs/head.md`.

use std::fmt::Write as _;

use crate::backend::MemoryReport;

/// Reads `VmRSS` and `VmHWM` (bytes) from `/proc/self/status`; `None` off Linux.
fn rss() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = s.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// The page: one line per component with bytes and bytes per series.
pub(crate) fn render(storage: Option<MemoryReport>, conn_caches: u64, shared_cache: u64) -> String {
    let report = storage.unwrap_or_default();
    let series = report.series;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# bytes per component; per_series = bytes / {series} head series"
    );
    let _ = writeln!(
        o,
        "{:<32} {:>14} {:>10}",
        "component", "bytes", "per_series"
    );
    let mut line = |name: &str, b: u64| {
        let per = if series > 0 {
            b as f64 / series as f64
        } else {
            0.0
        };
        let _ = writeln!(o, "{name:<32} {b:>14} {per:>10.1}");
    };
    let mut counted = 0u64;
    for (name, b) in &report.components {
        line(&format!("storage.{name}"), *b);
        counted += b;
    }
    for (name, b) in &report.details {
        line(&format!("  {name}"), *b);
    }
    line("write.connection_caches", conn_caches);
    line("write.shared_cache", shared_cache);
    counted += conn_caches + shared_cache;
    line("counted", counted);
    if let Some((rss, hwm)) = rss() {
        line("other (rss - counted)", rss.saturating_sub(counted));
        line("rss", rss);
        line("rss_peak", hwm);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_components_per_series_and_the_sum() {
        let page = render(
            Some(MemoryReport {
                series: 4,
                components: vec![("labels", 400), ("open_chunks", 800)],
                details: vec![("(of which) storage.open_chunk_bytes", 600)],
            }),
            40,
            8,
        );
        assert!(page.contains("storage.labels"), "{page}");
        let row = |name: &str| -> Vec<String> {
            page.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(row("storage.open_chunks")[1..], ["800", "200.0"]);
        assert_eq!(row("write.connection_caches")[1..], ["40", "10.0"]);
        assert_eq!(row("counted")[1..], ["1248", "312.0"]);
        assert!(
            page.contains("(of which) storage.open_chunk_bytes"),
            "{page}"
        );
    }
}
