//! Label sets in Prometheus's text exposition format (version 0.0.4), as
//! `/federate` and the GPU simulator's scrape pages print them.
//!
//! A label set is `{name="value",...}`: no spaces, names as they are,
//! values in double quotes with backslash, double quote and line feed
//! escaped as `\\`, `\"` and `\n` (and nothing else escaped). An empty set
//! prints nothing, so `metric` and `metric{}` never both appear.

/// Appends `v` with the exposition format's label value escapes.
pub fn push_escaped_label_value(out: &mut String, v: &str) {
    let mut rest = v;
    while let Some(i) = rest.find(['\\', '"', '\n']) {
        let (plain, tail) = rest.split_at(i);
        out.push_str(plain);
        let mut chars = tail.chars();
        match chars.next() {
            Some('\\') => out.push_str("\\\\"),
            Some('"') => out.push_str("\\\""),
            Some(_) => out.push_str("\\n"),
            None => {}
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
}

/// Appends the label set of `pairs` (name, value), in the order given;
/// nothing when there are no pairs.
pub fn push_label_set<'a>(out: &mut String, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) {
    let mut first = true;
    for (name, value) in pairs {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(name);
        out.push_str("=\"");
        push_escaped_label_value(out, value);
        out.push('"');
    }
    if !first {
        out.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(pairs: &[(&str, &str)]) -> String {
        let mut s = String::new();
        push_label_set(&mut s, pairs.iter().copied());
        s
    }

    #[test]
    fn prints_like_prometheus() {
        assert_eq!(set(&[]), "");
        assert_eq!(set(&[("a", "b")]), "{a=\"b\"}");
        assert_eq!(set(&[("a", "b"), ("c", "d")]), "{a=\"b\",c=\"d\"}");
        assert_eq!(
            set(&[
                ("path", "C:\\dir\\\"x\"\nnext"),
                ("tab", "a\tb"),
                ("u", "ünï")
            ]),
            "{path=\"C:\\\\dir\\\\\\\"x\\\"\\nnext\",tab=\"a\tb\",u=\"ünï\"}"
        );
    }

    /// Reads an escaped value back (the exposition parser's rule).
    fn unescape(s: &str) -> Option<String> {
        let mut out = String::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            match c {
                '\\' => match it.next()? {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    _ => return None,
                },
                '"' | '\n' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn escaping_round_trips(v in "\\PC{0,16}|[\\\\\"\nab]{0,16}") {
            let mut s = String::new();
            push_escaped_label_value(&mut s, &v);
            prop_assert_eq!(unescape(&s), Some(v));
        }
    }
}
