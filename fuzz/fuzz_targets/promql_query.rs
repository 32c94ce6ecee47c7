//! Fuzzes the PromQL parser as the query API meets it (the fork in
//! `third_party/promql-parser`, with duration expressions and extended
//! range selectors): any text must parse or fail with an error, never
//! panic, at an instant query's step and at a range query's; what parses
//! prints and prettifies without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use promql_parser::parser::{parse, parse_with_step};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the step of `step()`: 0 (instant) or 1 ms to
    // ~4 min.
    let Some((&b, rest)) = data.split_first() else {
        return;
    };
    let Ok(q) = std::str::from_utf8(rest) else {
        return;
    };
    let parsed = if b == 0 {
        parse(q)
    } else {
        parse_with_step(q, i64::from(b) * 1_000)
    };
    if let Ok(e) = parsed {
        let _ = e.to_string();
        let _ = e.prettify();
    }
});
