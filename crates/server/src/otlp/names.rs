//! OTLP metric and attribute names as Prometheus names them by default
//! (`otlp.translation_strategy: UnderscoreEscapingWithSuffixes`, the
//! rules of the OpenTelemetry-to-Prometheus compatibility specification
//! that Prometheus's `otlptranslator` implements):
//!
//! - a metric name is split into tokens of `[a-zA-Z0-9:]`, joined by `_`;
//!   the unit's main part (mapped: `s` → `seconds`, `By` → `bytes`, …) and
//!   `per_` its per-part (`/s` → `per_second`) are appended unless already
//!   a token; a monotonic counter ends in `total` and a gauge of unit `1`
//!   in `ratio` (moved to the end if present elsewhere); a leading digit
//!   gets a `_` prefix. Units in braces (`{requests}`) are annotations and
//!   add nothing.
//! - an attribute name has every character outside `[a-zA-Z0-9_]`
//!   replaced by `_`; one starting with a digit gets `key_`, one starting
//!   with a single `_` gets `key` (a `__` name is kept).

/// What kind of Prometheus metric an OTLP metric becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Gauge,
    MonotonicCounter,
    /// A non-monotonic sum: a gauge, without `ratio` for unit `1`.
    NonMonotonicCounter,
    Histogram,
    Summary,
}

fn unit_name(u: &str) -> Option<&'static str> {
    Some(match u {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tebibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "1" => "",
        "%" => "percent",
        _ => return None,
    })
}

fn per_unit_name(u: &str) -> Option<&'static str> {
    Some(match u {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        "w" => "week",
        "mo" => "month",
        "y" => "year",
        _ => return None,
    })
}

fn metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == ':'
}

/// Replaces characters outside `[a-zA-Z0-9:]` with `_`, collapses runs of
/// `_` and drops a leading one.
fn clean_unit(u: &str) -> String {
    let mut out = String::with_capacity(u.len());
    for c in u.chars() {
        let c = if metric_char(c) { c } else { '_' };
        if c == '_' && (out.is_empty() || out.ends_with('_')) {
            continue;
        }
        out.push(c);
    }
    out
}

/// The main and per parts of a unit, mapped (`("bytes", "per_second")`
/// for `By/s`); empty when absent or an annotation in braces.
fn unit_suffixes(unit: &str) -> (String, String) {
    let mut parts = unit.splitn(2, '/');
    let main = parts.next().unwrap_or("").trim();
    let per = parts.next().map(str::trim).unwrap_or("");
    let main = if main.is_empty() || main.contains(['{', '}']) {
        String::new()
    } else {
        unit_name(main).map_or_else(|| main.to_owned(), str::to_owned)
    };
    let per = if per.is_empty() || per.contains(['{', '}']) {
        String::new()
    } else {
        format!("per_{}", per_unit_name(per).unwrap_or(per))
    };
    (main, per)
}

/// The Prometheus name of an OTLP metric (see the module docs); `None`
/// when nothing but underscores would be left.
pub(crate) fn metric_name(name: &str, unit: &str, kind: Kind) -> Option<String> {
    let mut tokens: Vec<String> = name
        .split(|c: char| !metric_char(c))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let (main, per) = unit_suffixes(unit);
    let (mut main, per) = (clean_unit(&main), clean_unit(&per));
    let per = if per == "per_" {
        String::new()
    } else {
        let p = per.trim_end_matches('_').to_owned();
        if tokens.contains(&p) {
            String::new()
        } else {
            p
        }
    };
    if tokens.contains(&main) {
        main.clear();
    }
    if !per.is_empty() {
        main = main.trim_end_matches('_').to_owned();
    }
    if !main.is_empty() {
        tokens.push(main);
    }
    if !per.is_empty() {
        tokens.push(per);
    }
    if kind == Kind::MonotonicCounter {
        tokens.retain(|t| t != "total");
        tokens.push("total".to_owned());
    }
    if unit == "1" && kind == Kind::Gauge {
        tokens.retain(|t| t != "ratio");
        tokens.push("ratio".to_owned());
    }
    let mut out = tokens.join("_");
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if out.chars().all(|c| c == '_') {
        return None;
    }
    Some(out)
}

/// The unit as Prometheus's metadata carries it (`bytes_per_second`).
pub(crate) fn unit(unit: &str) -> String {
    let (main, per) = unit_suffixes(unit);
    let (main, per) = (clean_unit(&main), clean_unit(&per));
    let u = match (main.is_empty(), per.is_empty()) {
        (false, false) => format!("{main}_{per}"),
        (false, true) => main,
        _ => per,
    };
    u.trim_matches('_').to_owned()
}

/// The Prometheus label name of an attribute; `None` when empty or all
/// underscores.
pub(crate) fn label_name(key: &str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let mut out: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert_str(0, "key_");
    } else if out.starts_with('_') && !out.starts_with("__") {
        out.insert_str(0, "key");
    }
    if out != key && out.chars().all(|c| c == '_') {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_follow_the_compatibility_rules() {
        use Kind::*;
        for (name, unit, kind, want) in [
            (
                "http.server.duration",
                "s",
                Histogram,
                "http_server_duration_seconds",
            ),
            (
                "requests.count",
                "1",
                MonotonicCounter,
                "requests_count_total",
            ),
            ("memory.usage", "By", Gauge, "memory_usage_bytes"),
            ("cpu.utilization", "1", Gauge, "cpu_utilization_ratio"),
            (
                "cpu.utilization",
                "1",
                NonMonotonicCounter,
                "cpu_utilization",
            ),
            ("system.io", "By/s", Gauge, "system_io_bytes_per_second"),
            ("requests", "{requests}", MonotonicCounter, "requests_total"),
            ("total.requests", "", MonotonicCounter, "requests_total"),
            ("latency_seconds", "s", Histogram, "latency_seconds"),
            ("2xx.responses", "", Gauge, "_2xx_responses"),
            ("gpu.temp", "Cel", Gauge, "gpu_temp_celsius"),
            ("packets", "{packets}/s", Gauge, "packets_per_second"),
            ("odd__name", "", Gauge, "odd_name"),
            ("a", "foo", Gauge, "a_foo"),
            ("rate", "1/s", Gauge, "rate_per_second"),
        ] {
            assert_eq!(
                metric_name(name, unit, kind).as_deref(),
                Some(want),
                "{name} {unit} {kind:?}"
            );
        }
        assert_eq!(metric_name("...", "", Kind::Gauge), None);
    }

    #[test]
    fn units_and_labels() {
        assert_eq!(unit("By/s"), "bytes_per_second");
        assert_eq!(unit("s"), "seconds");
        assert_eq!(unit("1"), "");
        assert_eq!(unit("{requests}"), "");
        assert_eq!(label_name("http.method").as_deref(), Some("http_method"));
        assert_eq!(label_name("123abc").as_deref(), Some("key_123abc"));
        assert_eq!(label_name("_private").as_deref(), Some("key_private"));
        assert_eq!(label_name("__reserved__").as_deref(), Some("__reserved__"));
        assert_eq!(label_name("host.name").as_deref(), Some("host_name"));
        assert_eq!(label_name("..."), None);
        assert_eq!(label_name(""), None);
    }
}
