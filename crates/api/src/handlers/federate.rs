//! `/federate`: the latest sample of every matching series within the
//! lookback, in the text exposition format. Native histograms have no
//! place in it: a series whose latest sample is one is left out.

use cairn_model::exposition::push_label_set;
use cairn_model::{is_stale_nan, Labels};
use cairn_storage::{SelectHints, ValueType};

use crate::json::format_float;
use crate::params::{match_sets, Params};
use crate::reply::{respond, Fail};
use crate::{Api, ApiResponse};

use super::now_ms;

impl Api {
    pub(crate) fn federate(&self, p: &Params) -> ApiResponse {
        let sets = match match_sets(p) {
            Ok(s) => s,
            Err(e) => return respond(Err(e)),
        };
        let now = now_ms();
        let mut series: std::collections::BTreeMap<Labels, (i64, f64)> = Default::default();
        let mut run = || -> Result<(), Fail> {
            let q = self
                .storage
                .querier(now - self.cfg.lookback_delta_ms, now)?;
            let hints = SelectHints {
                start: now - self.cfg.lookback_delta_ms,
                end: now,
                ..Default::default()
            };
            for ms in &sets {
                for s in q.select(&hints, ms)? {
                    let s = s?;
                    // The newest sample, of either kind: the text format
                    // has no native histograms, so a series whose newest
                    // sample is one is left out (not shown with an older
                    // float).
                    let mut it = s.iter();
                    let mut last = None;
                    loop {
                        match it.next() {
                            ValueType::Float => last = Some(it.at()),
                            ValueType::None => break,
                            _ => last = None,
                        }
                    }
                    if let Some((t, v)) = last {
                        if !is_stale_nan(v) {
                            series.insert(s.labels().clone(), (t, v));
                        }
                    }
                }
            }
            Ok(())
        };
        if let Err(e) = run() {
            return respond(Err(e));
        }
        let mut by_name: std::collections::BTreeMap<String, Vec<(Labels, i64, f64)>> =
            Default::default();
        for (l, (t, v)) in series {
            let n = l.metric_name().unwrap_or("").to_owned();
            by_name.entry(n).or_default().push((l, t, v));
        }
        let mut out = String::new();
        for (name, list) in by_name {
            out.push_str(&format!("# TYPE {name} untyped\n"));
            for (l, t, v) in list {
                out.push_str(&name);
                let rest = l.without(&["__name__"]);
                push_label_set(&mut out, rest.iter().map(|x| (x.name, x.value)));
                out.push(' ');
                out.push_str(&format_float(v));
                out.push(' ');
                out.push_str(&t.to_string());
                out.push('\n');
            }
        }
        ApiResponse {
            status: 200,
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            body: out.into_bytes(),
        }
    }
}
