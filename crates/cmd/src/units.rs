//! Parsing of Prometheus-style durations (`15d`, `1h30m`, `500ms`) and
//! byte sizes (`512MB`, `1GB`), as Prometheus's flags accept them.

/// Parses a Prometheus duration into milliseconds. Units: y (365d), w, d, h,
/// m, s, ms; several may be combined in descending order (`1h30m`). `0` alone
/// is accepted.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err("empty duration string".into());
    }
    let units: [(&str, i64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1_000),
    ];
    let mut rest = s;
    let mut total: i64 = 0;
    let mut last_unit = i64::MAX;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        let (num, tail) = rest.split_at(digits);
        let n: i64 = num
            .parse()
            .map_err(|_| format!("not a valid duration string: {s:?}"))?;
        let Some((u, mult)) = units.iter().find(|(u, _)| tail.starts_with(u)) else {
            return Err(format!("not a valid duration string: {s:?}"));
        };
        if *mult >= last_unit {
            return Err(format!("not a valid duration string: {s:?}"));
        }
        last_unit = *mult;
        total = n
            .checked_mul(*mult)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(|| format!("duration out of range: {s:?}"))?;
        rest = &tail[u.len()..];
    }
    Ok(total)
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
        assert!(parse_duration_ms("30m1h").is_err());
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
