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
}
