//! Parsing of Prometheus-style durations (`15d`, `1h30m`, `500ms`) and
//! byte sizes (`512MB`, `1GB`), as Prometheus's flags accept them.

/// Parses a Prometheus duration flag value into milliseconds with
/// [`cairn_model::parse_duration`] (surrounding white space ignored).
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    cairn_model::parse_duration(s.trim()).map_err(|e| e.to_string())
}

/// Parses a byte size such as `512MB` (units B, KB, MB, GB, TB, PB, EB, in
/// powers of 1024, as Prometheus's `--storage.tsdb.retention.size`). `0` means unset.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = s.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a valid size: {s:?}"))?;
    let mult: u64 = match unit.to_ascii_uppercase().as_str() {
        "B" => 1,
        "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        "PB" => 1 << 50,
        "EB" => 1 << 60,
        _ => {
            return Err(format!(
                "not a valid size unit in {s:?}: use B, KB, MB, GB, TB, PB or EB"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size out of range: {s:?}"))
}

/// `n` bytes as Prometheus prints a byte size (Go's `units.Base2Bytes`):
/// each power of 1024 that has a remainder, largest first, `10GiB`,
/// `1GiB512MiB`, `1KiB512B`, `0B`.
pub fn format_bytes(n: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut parts = Vec::new();
    let mut n = n;
    for (i, u) in UNITS.iter().enumerate() {
        if !n.is_multiple_of(1024) || (i == 0 && n == 0) {
            parts.push(format!("{}{u}", n % 1024));
        }
        n /= 1024;
        if n == 0 {
            break;
        }
    }
    parts.reverse();
    parts.concat()
}

/// The retention as Prometheus's runtime information prints it: the time
/// (ms, 0 for none), " or ", the size (bytes, 0 for none).
pub fn format_retention(time_ms: i64, size: u64) -> String {
    let mut out = String::new();
    if time_ms > 0 && time_ms != i64::MAX {
        out = cairn_model::format_duration(time_ms);
    }
    if size > 0 {
        if !out.is_empty() {
            out.push_str(" or ");
        }
        out.push_str(&format_bytes(size));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("15d"), Ok(15 * 86_400_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("0"), Ok(0));
        assert_eq!(parse_duration_ms(" 2h "), Ok(7_200_000));
        assert_eq!(
            parse_duration_ms("30m1h"),
            Err("not a valid duration string: \"30m1h\"".into())
        );
        assert!(parse_duration_ms("5").is_err());
        assert!(parse_duration_ms("abc").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1GB"), Ok(1 << 30));
        assert_eq!(parse_bytes("0"), Ok(0));
        assert!(parse_bytes("12XB").is_err());
    }

    #[test]
    fn bytes_and_retention_print_as_prometheus_does() {
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(10 << 30), "10GiB");
        assert_eq!(format_bytes((1 << 30) + (512 << 20)), "1GiB512MiB");
        assert_eq!(format_bytes(1536), "1KiB512B");
        assert_eq!(format_bytes(parse_bytes("512MB").unwrap()), "512MiB");
        assert_eq!(format_retention(15 * 86_400_000, 0), "15d");
        assert_eq!(format_retention(15 * 86_400_000, 10 << 30), "15d or 10GiB");
        assert_eq!(format_retention(0, 10 << 30), "10GiB");
        assert_eq!(format_retention(0, 0), "");
    }
}
