//! `process_*` metrics, as Prometheus's Go client exports them, read from
//! Linux's `/proc/self` at each scrape. Elsewhere, or when a file cannot be
//! read, the metric is left out (never reported as 0).

use std::fmt::Write as _;

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// Appends the process metrics to `o`.
pub(crate) fn render(o: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // Fields after the command name (which may hold spaces), 1-based from
    // field 3 (state) on.
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rsplit_once(')'))
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| -> Option<f64> { fields.get(n.checked_sub(3)?)?.parse().ok() };
    if let (Some(u), Some(s)) = (field(14), field(15)) {
        metric(
            o,
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            "counter",
            (u + s) / TICKS,
        );
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| -> Option<f64> {
        let l = status.lines().find(|l| l.starts_with(key))?;
        let v: f64 = l.split_whitespace().nth(1)?.parse().ok()?;
        Some(v * 1024.0)
    };
    if let Some(v) = kib("VmRSS:") {
        metric(
            o,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            "gauge",
            v,
        );
    }
    if let Some(v) = kib("VmSize:") {
        metric(
            o,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            "gauge",
            v,
        );
    }
    if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
        metric(
            o,
            "process_open_fds",
            "Number of open file descriptors.",
            "gauge",
            rd.count() as f64,
        );
    }
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<f64>().ok())
        });
    if let Some(v) = max_fds {
        metric(
            o,
            "process_max_fds",
            "Maximum number of open file descriptors.",
            "gauge",
            v,
        );
    }
    let btime = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    });
    if let (Some(b), Some(start)) = (btime, field(22)) {
        metric(
            o,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            "gauge",
            b + start / TICKS,
        );
    }
}

fn metric(o: &mut String, name: &str, help: &str, kind: &str, v: f64) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let mut o = String::new();
        super::render(&mut o);
        let get = |name: &str| -> f64 {
            o.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} missing in {o}"))
        };
        assert!(get("process_resident_memory_bytes") > 1e6);
        assert!(get("process_virtual_memory_bytes") >= get("process_resident_memory_bytes"));
        assert!(get("process_open_fds") >= 3.0);
        assert!(get("process_max_fds") >= get("process_open_fds"));
        assert!(get("process_cpu_seconds_total") >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = get("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start > now - 3600.0,
            "{start} vs {now}"
        );
    }
}
