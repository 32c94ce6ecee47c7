//! `--log.format=logfmt`: one line per event in logfmt, as Prometheus logs
//! (`ts=2026-12-07T05:47:50.056Z level=info caller=cairn::serve
//! msg="storage ready" path=data/`). Keys are the event's fields; a value
//! with a space, `=`, `"`, a control character, or nothing at all is
//! quoted with Go-style escapes. Fields of enclosing spans are not written.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The logfmt event formatter.
pub struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        w.write_str("ts=")?;
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut w)?;
        let meta = event.metadata();
        let level = meta.level().as_str().to_ascii_lowercase();
        write!(w, " level={level} caller={}", meta.target())?;
        let mut f = Fields::default();
        event.record(&mut f);
        if let Some(m) = &f.msg {
            w.write_str(" msg=")?;
            quote(&mut w, m)?;
        }
        w.write_str(&f.rest)?;
        w.write_char('\n')
    }
}

#[derive(Default)]
struct Fields {
    msg: Option<String>,
    rest: String,
}

impl Fields {
    fn put(&mut self, name: &str, value: String) {
        if name == "message" {
            self.msg = Some(value);
            return;
        }
        let _ = write!(self.rest, " {name}=");
        let _ = quote(&mut self.rest, &value);
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field.name(), format!("{value:?}"));
    }
}

/// Writes `v` bare when it is a plain token, else double-quoted and escaped.
fn quote(w: &mut impl fmt::Write, v: &str) -> fmt::Result {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '=');
    if plain {
        return w.write_str(v);
    }
    w.write_char('"')?;
    for c in v.chars() {
        match c {
            '"' => w.write_str("\\\"")?,
            '\\' => w.write_str("\\\\")?,
            '\n' => w.write_str("\\n")?,
            '\r' => w.write_str("\\r")?,
            '\t' => w.write_str("\\t")?,
            c if c.is_control() => write!(w, "\\u{:04x}", c as u32)?,
            c => w.write_char(c)?,
        }
    }
    w.write_char('"')
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_are_logfmt_lines() {
        let buf = Buf::default();
        let w = buf.clone();
        let sub = tracing_subscriber::fmt()
            .event_format(super::Logfmt)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::with_default(sub, || {
            tracing::info!(path = "data/", n = 3, "storage ready");
            tracing::warn!(error = "bad \"x\" = y\nz", empty = "", "it failed");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let (ts, rest) = lines[0].split_once(' ').unwrap();
        assert!(ts.starts_with("ts=20") && ts.ends_with('Z'), "{ts}");
        assert_eq!(
            rest,
            "level=info caller=cairn::logfmt::tests msg=\"storage ready\" path=data/ n=3"
        );
        assert!(
            lines[1].ends_with(
                "level=warn caller=cairn::logfmt::tests msg=\"it failed\" error=\"bad \\\"x\\\" = y\\nz\" empty=\"\""
            ),
            "{}",
            lines[1]
        );
    }
}
