//! Arbitrary queries and scripts must yield results or errors, never panics.

use cairn_model::{labels, Sample};
use cairn_promql::{Engine, EngineOptions};
use cairn_storage::MemStorage;
use proptest::prelude::*;

fn store() -> MemStorage {
    let st = MemStorage::new();
    for i in 0..5 {
        st.add(
            labels!("__name__" => "m", "i" => &i.to_string(), "le" => &(i * 2).to_string()),
            (0..40).map(|k| Sample::new(k * 30_000, (k * i) as f64 - 3.0)),
        );
    }
    st
}

const PARTS: &[&str] = &[
    "m",
    "m[5m]",
    "m[2m:30s]",
    "1",
    "-2.5",
    "rate(m[1m])",
    "sum by (i) (m)",
    "topk(2, m)",
    "histogram_quantile(0.5, m)",
    "m offset 1m",
    "m @ 100",
    "abs(m)",
    "count_values(\"v\", m)",
    "label_replace(m, \"x\", \"$1\", \"i\", \"(.*)\")",
    "absent(nope)",
    "scalar(m)",
    "vector(1)",
    "quantile(0.3, m)",
    "stddev(m)",
    "sort_desc(m)",
    "time()",
    "deriv(m[3m])",
    "predict_linear(m[3m], 60)",
    "changes(m[10m])",
    "limitk(1, m)",
    "clamp(m, 0, 3)",
];
const OPS: &[&str] = &[
    " + ",
    " / ",
    " > ",
    " == bool ",
    " and ",
    " or ",
    " unless ",
    " * on(i) ",
    " / ignoring(le) group_left ",
    " % ",
    " ^ ",
    " atan2 ",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn composed_queries_never_panic(a in 0..PARTS.len(), b in 0..PARTS.len(), o in 0..OPS.len(),
                                    t in 0i64..1_500_000, step in 1i64..200_000) {
        let st = store();
        let e = Engine::new(EngineOptions::default());
        let q = format!("{}{}{}", PARTS[a], OPS[o], PARTS[b]);
        let _ = e.instant_query(&st, &q, t);
        let _ = e.range_query(&st, &q, t, t + 20 * step, step);
        let _ = e.instant_query(&st, PARTS[a], t);
    }

    #[test]
    fn arbitrary_text_never_panics(q in ".{0,40}") {
        let st = store();
        let e = Engine::new(EngineOptions::default());
        let _ = e.instant_query(&st, &q, 60_000);
    }
}
