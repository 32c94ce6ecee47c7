//! The templates of alert labels and annotations: the part of Go's
//! `text/template` that Prometheus rule files use.
//!
//! Supported: text and `{{ }}` actions (with `{{-`/`-}}` trimming),
//! variables `$labels`, `$value`, `$externalLabels`, `$externalURL` and
//! their fields (`$labels.instance`), the dot forms (`.Labels.job`,
//! `.Value`), `$x := pipeline` declarations, string and number literals,
//! pipes (`$value | humanize`) and the functions `humanize`,
//! `humanize1024`, `humanizePercentage`, `humanizeDuration`, `printf`,
//! `toUpper`, `toLower`, `title`. A missing label is the empty string
//! (Prometheus's `missingkey=zero`).
//!
//! Anything else (`if`, `range`, `query`, ...) is refused when the rule file
//! is loaded, with the construct named: a rule never fails at evaluation
//! time for a template Cairn cannot run.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cairn_model::format_go_g;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    /// A pipeline; with a name, a declaration (prints nothing).
    Action(Option<String>, Vec<Command>),
}

/// One command of a pipeline: a function and its arguments, or one operand.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    Call(String, Vec<Operand>),
    Value(Operand),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// `$name.field.field` (fields may be empty).
    Var(String, Vec<String>),
    /// `.Field.field`; empty for `.` itself.
    Dot(Vec<String>),
    Str(String),
    Num(f64),
}

const FUNCS: [&str; 8] = [
    "humanize",
    "humanize1024",
    "humanizePercentage",
    "humanizeDuration",
    "printf",
    "toUpper",
    "toLower",
    "title",
];

/// What a template is expanded with.
#[derive(Debug, Clone, Default)]
pub struct Data {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub external_labels: BTreeMap<String, String>,
    pub external_url: String,
}

#[derive(Debug, Clone)]
enum Val {
    Str(String),
    Num(f64),
    Map(BTreeMap<String, String>),
}

impl Val {
    fn render(&self, out: &mut String) {
        match self {
            Val::Str(s) => out.push_str(s),
            Val::Num(v) => out.push_str(&format_go_g(*v)),
            Val::Map(m) => {
                out.push_str("map[");
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{k}:{v}");
                }
                out.push(']');
            }
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        self.render(&mut s);
        s
    }

    fn num(&self) -> Result<f64, String> {
        match self {
            Val::Num(v) => Ok(*v),
            Val::Str(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{s:?} is not a number")),
            Val::Map(_) => Err("a map is not a number".into()),
        }
    }
}

impl Template {
    /// Parses `src`; the error says what is not supported or malformed.
    pub fn parse(src: &str) -> Result<Self, String> {
        let mut nodes = Vec::new();
        let mut rest = src;
        let mut trim_next = false;
        while let Some(open) = rest.find("{{") {
            let mut text = &rest[..open];
            if trim_next {
                text = text.trim_start();
            }
            let after = &rest[open + 2..];
            let (trim_left, after) = match after.strip_prefix('-') {
                Some(a) if a.starts_with(|c: char| c.is_whitespace()) => (true, a),
                _ => (false, after),
            };
            if trim_left {
                text = text.trim_end();
            }
            if !text.is_empty() {
                nodes.push(Node::Text(text.to_owned()));
            }
            let close = after
                .find("}}")
                .ok_or_else(|| format!("unclosed action in {src:?}"))?;
            let mut inner = &after[..close];
            trim_next = false;
            if let Some(i) = inner.strip_suffix('-') {
                if i.ends_with(|c: char| c.is_whitespace()) {
                    inner = i;
                    trim_next = true;
                }
            }
            nodes.push(parse_action(inner.trim())?);
            rest = &after[close + 2..];
        }
        let text = if trim_next { rest.trim_start() } else { rest };
        if !text.is_empty() {
            nodes.push(Node::Text(text.to_owned()));
        }
        Ok(Self { nodes })
    }

    /// Expands the template.
    pub fn expand(&self, data: &Data) -> Result<String, String> {
        let mut vars: BTreeMap<String, Val> = BTreeMap::new();
        vars.insert("labels".into(), Val::Map(data.labels.clone()));
        vars.insert("value".into(), Val::Num(data.value));
        vars.insert(
            "externalLabels".into(),
            Val::Map(data.external_labels.clone()),
        );
        vars.insert("externalURL".into(), Val::Str(data.external_url.clone()));
        let mut out = String::new();
        for n in &self.nodes {
            match n {
                Node::Text(t) => out.push_str(t),
                Node::Action(decl, cmds) => {
                    let v = run(cmds, data, &vars)?;
                    match decl {
                        Some(name) => {
                            vars.insert(name.clone(), v);
                        }
                        None => v.render(&mut out),
                    }
                }
            }
        }
        Ok(out)
    }

    /// Whether the template is plain text (no action).
    pub fn is_plain(&self) -> bool {
        self.nodes.iter().all(|n| matches!(n, Node::Text(_)))
    }
}

fn parse_action(s: &str) -> Result<Node, String> {
    if s.starts_with("/*") {
        return Ok(Node::Text(String::new()));
    }
    let (decl, pipe) = match s.split_once(":=") {
        Some((lhs, rhs)) if lhs.trim().starts_with('$') => {
            let name = lhs.trim().trim_start_matches('$');
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                return Err(format!("bad variable name in {{{{{s}}}}}"));
            }
            (Some(name.to_owned()), rhs)
        }
        _ => (None, s),
    };
    let mut cmds = Vec::new();
    for part in split_pipes(pipe) {
        let toks = tokens(part.trim())?;
        let mut it = toks.into_iter();
        let Some(first) = it.next() else {
            return Err(format!("empty command in {{{{{s}}}}}"));
        };
        let args: Vec<Operand> = it.map(|t| operand(&t)).collect::<Result<_, _>>()?;
        if first.starts_with(['$', '.', '"', '`']) || first.parse::<f64>().is_ok() {
            if !args.is_empty() {
                return Err(format!("{first} is not a function, in {{{{{s}}}}}"));
            }
            cmds.push(Command::Value(operand(&first)?));
        } else if FUNCS.contains(&first.as_str()) {
            cmds.push(Command::Call(first, args));
        } else {
            return Err(format!(
                "{first:?} in {{{{{s}}}}} is not supported by Cairn's templates (variables, \
                 printf, humanize*, toUpper, toLower, title)"
            ));
        }
    }
    if cmds.is_empty() {
        return Err("empty action {{}}".into());
    }
    Ok(Node::Action(decl, cmds))
}

/// Splits a pipeline at `|` outside string literals.
fn split_pipes(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quote) = (0, None::<char>);
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match quote {
            Some(q) if c == q && (q == '`' || prev != '\\') => quote = None,
            Some(_) => {}
            None if c == '"' || c == '`' => quote = Some(c),
            None if c == '|' => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            None => {}
        }
        prev = c;
    }
    out.push(&s[start..]);
    out
}

/// Splits a command into words, keeping string literals whole.
fn tokens(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut t = String::new();
        if c == '"' || c == '`' {
            t.push(c);
            chars.next();
            let mut closed = false;
            while let Some(d) = chars.next() {
                t.push(d);
                if d == '\\' && c == '"' {
                    if let Some(e) = chars.next() {
                        t.push(e);
                    }
                    continue;
                }
                if d == c {
                    closed = true;
                    break;
                }
            }
            if !closed {
                return Err(format!("unterminated string in {s:?}"));
            }
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                t.push(d);
                chars.next();
            }
        }
        out.push(t);
    }
    Ok(out)
}

fn operand(t: &str) -> Result<Operand, String> {
    if let Some(rest) = t.strip_prefix('$') {
        let mut parts = rest.split('.');
        let name = parts.next().unwrap_or_default().to_owned();
        return Ok(Operand::Var(name, parts.map(str::to_owned).collect()));
    }
    if let Some(rest) = t.strip_prefix('.') {
        let fields: Vec<String> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('.').map(str::to_owned).collect()
        };
        return Ok(Operand::Dot(fields));
    }
    if let Some(inner) = t.strip_prefix('`').and_then(|x| x.strip_suffix('`')) {
        return Ok(Operand::Str(inner.to_owned()));
    }
    if t.starts_with('"') {
        return serde_json::from_str::<String>(t)
            .map(Operand::Str)
            .map_err(|_| format!("bad string literal {t}"));
    }
    t.parse::<f64>()
        .map(Operand::Num)
        .map_err(|_| format!("{t:?} is not supported by Cairn's templates"))
}

fn field(v: Val, f: &str) -> Result<Val, String> {
    match v {
        Val::Map(m) => Ok(Val::Str(m.get(f).cloned().unwrap_or_default())),
        _ => Err(format!("can't take field {f} of a non-map")),
    }
}

fn eval_operand(o: &Operand, data: &Data, vars: &BTreeMap<String, Val>) -> Result<Val, String> {
    match o {
        Operand::Str(s) => Ok(Val::Str(s.clone())),
        Operand::Num(n) => Ok(Val::Num(*n)),
        Operand::Var(name, fields) => {
            let mut v = vars
                .get(name)
                .cloned()
                .ok_or_else(|| format!("undefined variable ${name}"))?;
            for f in fields {
                v = field(v, f)?;
            }
            Ok(v)
        }
        Operand::Dot(fields) => {
            let mut it = fields.iter();
            let mut v = match it.next().map(String::as_str) {
                None => return Err("`.` alone is not supported".into()),
                Some("Labels") => Val::Map(data.labels.clone()),
                Some("Value") => Val::Num(data.value),
                Some("ExternalLabels") => Val::Map(data.external_labels.clone()),
                Some("ExternalURL") => Val::Str(data.external_url.clone()),
                Some(other) => return Err(format!("unknown field .{other}")),
            };
            for f in it {
                v = field(v, f)?;
            }
            Ok(v)
        }
    }
}

fn run(cmds: &[Command], data: &Data, vars: &BTreeMap<String, Val>) -> Result<Val, String> {
    let mut piped: Option<Val> = None;
    for c in cmds {
        let v = match c {
            Command::Value(o) => eval_operand(o, data, vars)?,
            Command::Call(f, args) => {
                let mut a: Vec<Val> = args
                    .iter()
                    .map(|o| eval_operand(o, data, vars))
                    .collect::<Result<_, _>>()?;
                if let Some(p) = piped.take() {
                    a.push(p);
                }
                call(f, &a)?
            }
        };
        piped = Some(v);
    }
    piped.ok_or_else(|| "empty pipeline".into())
}

fn one<'a>(f: &str, a: &'a [Val]) -> Result<&'a Val, String> {
    match a {
        [v] => Ok(v),
        _ => Err(format!("{f} takes one argument, got {}", a.len())),
    }
}

fn call(f: &str, a: &[Val]) -> Result<Val, String> {
    Ok(Val::Str(match f {
        "humanize" => humanize(one(f, a)?.num()?),
        "humanize1024" => humanize1024(one(f, a)?.num()?),
        "humanizePercentage" => format!("{}%", go_g4(one(f, a)?.num()? * 100.0)),
        "humanizeDuration" => humanize_duration(one(f, a)?.num()?),
        "toUpper" => one(f, a)?.text().to_uppercase(),
        "toLower" => one(f, a)?.text().to_lowercase(),
        "title" => title(&one(f, a)?.text()),
        "printf" => {
            let Some((fmt, args)) = a.split_first() else {
                return Err("printf needs a format".into());
            };
            printf(&fmt.text(), args)?
        }
        other => return Err(format!("unknown function {other}")),
    }))
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Go's `%.4g`.
fn go_g4(v: f64) -> String {
    go_g_prec(v, 4)
}

/// Go's `%.{p}g`: `p` significant digits, trailing zeros dropped,
/// exponent form when the exponent is below -4 or at least `p`.
fn go_g_prec(v: f64, p: usize) -> String {
    if !v.is_finite() {
        return format_go_g(v);
    }
    if v == 0.0 {
        return "0".into();
    }
    let e = format!("{:.*e}", p.saturating_sub(1), v);
    let (mant, exp) = e.split_once('e').unwrap_or((e.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let decimals = (p as i32 - 1 - exp).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_owned()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn humanize(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return go_g4(v);
    }
    if v.abs() >= 1.0 {
        let mut x = v;
        let mut prefix = "";
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if x.abs() < 1000.0 {
                break;
            }
            prefix = p;
            x /= 1000.0;
        }
        return format!("{}{prefix}", go_g4(x));
    }
    let mut x = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if x.abs() >= 1.0 {
            break;
        }
        prefix = p;
        x *= 1000.0;
    }
    format!("{}{prefix}", go_g4(x))
}

fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return go_g4(v);
    }
    let mut x = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if x.abs() < 1024.0 {
            break;
        }
        prefix = p;
        x /= 1024.0;
    }
    format!("{}{prefix}", go_g4(x))
}

fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return go_g4(v);
    }
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let a = v.abs();
        let secs = a as i64;
        let (days, hours, minutes, seconds) =
            (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", go_g4(a));
    }
    let mut x = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if x.abs() >= 1.0 {
            break;
        }
        prefix = p;
        x *= 1000.0;
    }
    format!("{}{prefix}s", go_g4(x))
}

/// Go's `fmt.Sprintf` for the verbs rule templates use: `%s %v %d %f %g
/// %e %q %%`, with width-free precision (`%.2f`).
fn printf(fmt: &str, args: &[Val]) -> Result<String, String> {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut prec: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut d = String::new();
            while let Some(x) = chars.peek().copied().filter(char::is_ascii_digit) {
                d.push(x);
                chars.next();
            }
            prec = Some(d.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        match verb {
            's' | 'v' => a.render(&mut out),
            'q' => {
                let _ = write!(out, "{:?}", a.text());
            }
            'd' => {
                let _ = write!(out, "{}", a.num()?.trunc() as i64);
            }
            'f' => {
                let _ = write!(out, "{:.*}", prec.unwrap_or(6), a.num()?);
            }
            'e' => {
                let s = format!("{:.*e}", prec.unwrap_or(6), a.num()?);
                let (m, e) = s.split_once('e').unwrap_or((s.as_str(), "0"));
                let e: i32 = e.parse().unwrap_or(0);
                let sign = if e < 0 { '-' } else { '+' };
                let _ = write!(out, "{m}e{sign}{:02}", e.abs());
            }
            'g' => match prec {
                Some(p) => out.push_str(&go_g_prec(a.num()?, p.max(1))),
                None => out.push_str(&format_go_g(a.num()?)),
            },
            other => return Err(format!("printf verb %{other} is not supported")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Data {
        Data {
            labels: BTreeMap::from([
                ("instance".to_owned(), "gpu-node-7:9400".to_owned()),
                ("gpu".to_owned(), "3".to_owned()),
            ]),
            value: 91.23456,
            ..Data::default()
        }
    }

    fn x(src: &str) -> String {
        Template::parse(src).unwrap().expand(&data()).unwrap()
    }

    #[test]
    fn prometheus_rule_templates() {
        assert_eq!(
            x("GPU {{ $labels.gpu }} on {{ $labels.instance }} is at {{ $value }}%"),
            "GPU 3 on gpu-node-7:9400 is at 91.23456%"
        );
        assert_eq!(x("{{ .Labels.gpu }}/{{ .Value }}"), "3/91.23456");
        assert_eq!(x("{{ $labels.missing }}"), "");
        assert_eq!(x("{{ printf \"%.2f\" $value }}"), "91.23");
        assert_eq!(x("{{ $value | printf \"%.1f\" }}"), "91.2");
        assert_eq!(x("{{ humanize 1234567 }}"), "1.235M");
        assert_eq!(x("{{ humanize 0.00012 }}"), "120u");
        assert_eq!(x("{{ humanize1024 1048576 }}"), "1Mi");
        assert_eq!(x("{{ humanizePercentage 0.1234 }}"), "12.34%");
        assert_eq!(x("{{ humanizeDuration 90061 }}"), "1d 1h 1m 1s");
        assert_eq!(x("{{ humanizeDuration 1.5 }}"), "1.5s");
        assert_eq!(x("{{ humanizeDuration 0.25 }}"), "250ms");
        assert_eq!(x("{{ $labels.instance | toUpper }}"), "GPU-NODE-7:9400");
        assert_eq!(x("{{ title \"gpu fell off\" }}"), "Gpu Fell Off");
        assert_eq!(x("a {{- \" b \" -}} c"), "a b c");
        assert_eq!(x("{{ $x := $labels.gpu }}[{{ $x }}]"), "[3]");
        assert_eq!(x("{{ $labels }}"), "map[gpu:3 instance:gpu-node-7:9400]");
        assert_eq!(x("{{ humanize 1e30 }}"), "1e+06Y");
        assert!(Template::parse("plain").unwrap().is_plain());
    }

    #[test]
    fn unsupported_constructs_are_refused_at_parse_time() {
        for bad in [
            "{{ if $value }}x{{ end }}",
            "{{ query \"up\" }}",
            "{{ range $labels }}{{ end }}",
            "{{ $value",
            "{{ \"open }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        // Undefined variables fail at expansion.
        assert!(Template::parse("{{ $nope }}")
            .unwrap()
            .expand(&data())
            .is_err());
    }
}
