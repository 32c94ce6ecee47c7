//! `/api/v1/parse_query`: a query's syntax tree as JSON, in the shape of
//! Prometheus v3.8's `translateAST` (web/api/v1/translate_ast.go), which
//! its web UI's "explain" view draws.
//!
//! Contracts: objects have their keys in byte order (Go marshals maps
//! sorted); a selector's matchers are its own in written order, then the
//! metric name's `__name__` matcher when the name is written outside the
//! braces (Prometheus's parser appends it); `matching` is null unless both
//! sides of a binary operator are instant vectors; durations and `@`
//! times are milliseconds. The parser folds a unary plus away (Prometheus
//! keeps it as a `unaryExpr`); Cairn's experimental `or` inside selector
//! braces has no Prometheus form and is left out.

use std::time::{Duration, SystemTime};

use promql_parser::label::{Labels, MatchOp, Matcher};
use promql_parser::parser::token::{T_LAND, T_LOR, T_LUNLESS};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{
    AtModifier, BinaryExpr, Expr, LabelModifier, Offset, VectorMatchCardinality, VectorSelector,
};
use serde_json::{json, Map, Value};

use crate::params::Params;
use crate::reply::{Fail, Out, R};

pub(crate) fn parse_query(p: &Params) -> R {
    let q = p.get("query").unwrap_or("");
    let e = promql_parser::parser::parse(q).map_err(Fail::BadData)?;
    Ok(Out::data(translate(&e).to_string()))
}

fn ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => ms(d),
        Some(Offset::Neg(d)) => -ms(d),
    }
}

fn system_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => ms(&d),
        Err(e) => -ms(&e.duration()),
    }
}

/// `timestamp` and `startOrEnd` of an `@` modifier.
fn at_fields(at: &Option<AtModifier>) -> (Value, Value) {
    match at {
        None => (Value::Null, Value::Null),
        Some(AtModifier::Start) => (Value::Null, json!("start")),
        Some(AtModifier::End) => (Value::Null, json!("end")),
        Some(AtModifier::At(t)) => (json!(system_ms(t)), Value::Null),
    }
}

fn names(l: &Labels) -> Value {
    Value::from(l.labels.clone())
}

fn matcher(m: &Matcher) -> Value {
    let op = match m.op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Re(_) => "=~",
        MatchOp::NotRe(_) => "!~",
    };
    json!({"name": m.name, "type": op, "value": m.value})
}

/// The fields a vector selector and a matrix selector share.
fn selector_fields(vs: &VectorSelector, o: &mut Map<String, Value>) {
    let mut ms: Vec<Value> = vs.matchers.matchers.iter().map(matcher).collect();
    if let Some(n) = &vs.name {
        ms.push(json!({"name": "__name__", "type": "=", "value": n}));
    }
    let (ts, se) = at_fields(&vs.at);
    o.insert("anchored".into(), json!(vs.anchored));
    o.insert("matchers".into(), Value::Array(ms));
    o.insert("name".into(), json!(vs.name.clone().unwrap_or_default()));
    o.insert("offset".into(), json!(offset_ms(&vs.offset)));
    o.insert("smoothed".into(), json!(vs.smoothed));
    o.insert("startOrEnd".into(), se);
    o.insert("timestamp".into(), ts);
}

fn binary(b: &BinaryExpr) -> Value {
    let vectors =
        b.lhs.value_type() == ValueType::Vector && b.rhs.value_type() == ValueType::Vector;
    let set_op = matches!(b.op.id(), T_LAND | T_LOR | T_LUNLESS);
    let matching = if vectors {
        let m = b.modifier.as_ref();
        let (card, include) = match m.map(|m| &m.card) {
            _ if set_op => ("many-to-many", Vec::new()),
            Some(VectorMatchCardinality::ManyToOne(l)) => ("many-to-one", l.labels.clone()),
            Some(VectorMatchCardinality::OneToMany(l)) => ("one-to-many", l.labels.clone()),
            Some(VectorMatchCardinality::ManyToMany) => ("many-to-many", Vec::new()),
            Some(VectorMatchCardinality::OneToOne) | None => ("one-to-one", Vec::new()),
        };
        let (on, labels) = match m.and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(l)) => (true, names(l)),
            Some(LabelModifier::Exclude(l)) => (false, names(l)),
            None => (false, json!([])),
        };
        json!({"card": card, "include": include, "labels": labels, "on": on})
    } else {
        Value::Null
    };
    json!({
        "bool": b.modifier.as_ref().is_some_and(|m| m.return_bool),
        "lhs": translate(&b.lhs),
        "matching": matching,
        "op": b.op.to_string(),
        "rhs": translate(&b.rhs),
        "type": "binaryExpr",
    })
}

/// The tree of `e`.
pub(crate) fn translate(e: &Expr) -> Value {
    match e {
        Expr::Aggregate(a) => {
            let (grouping, without) = match &a.modifier {
                Some(LabelModifier::Include(l)) => (names(l), false),
                Some(LabelModifier::Exclude(l)) => (names(l), true),
                None => (json!([]), false),
            };
            json!({
                "expr": translate(&a.expr),
                "grouping": grouping,
                "op": a.op.to_string(),
                "param": a.param.as_ref().map_or(Value::Null, |p| translate(p)),
                "type": "aggregation",
                "without": without,
            })
        }
        Expr::Binary(b) => binary(b),
        Expr::Call(c) => {
            let types: Vec<String> = c.func.arg_types.iter().map(|t| t.to_string()).collect();
            json!({
                "args": c.args.args.iter().map(|a| translate(a)).collect::<Vec<_>>(),
                "func": {
                    "argTypes": types,
                    "name": c.func.name,
                    "returnType": c.func.return_type.to_string(),
                    "variadic": c.func.variadic,
                },
                "type": "call",
            })
        }
        Expr::MatrixSelector(m) => {
            let mut o = Map::new();
            selector_fields(&m.vs, &mut o);
            o.insert("range".into(), json!(ms(&m.range)));
            o.insert("type".into(), json!("matrixSelector"));
            Value::Object(o)
        }
        Expr::VectorSelector(vs) => {
            let mut o = Map::new();
            selector_fields(vs, &mut o);
            o.insert("type".into(), json!("vectorSelector"));
            Value::Object(o)
        }
        Expr::Subquery(s) => {
            let (ts, se) = at_fields(&s.at);
            json!({
                "expr": translate(&s.expr),
                "offset": offset_ms(&s.offset),
                "range": ms(&s.range),
                "startOrEnd": se,
                "step": s.step.as_ref().map_or(0, ms),
                "timestamp": ts,
                "type": "subquery",
            })
        }
        Expr::NumberLiteral(n) => {
            json!({"type": "numberLiteral", "val": cairn_model::format_go_f(n.val)})
        }
        Expr::StringLiteral(s) => json!({"type": "stringLiteral", "val": s.val}),
        Expr::Paren(p) => json!({"expr": translate(&p.expr), "type": "parenExpr"}),
        Expr::Unary(u) => json!({"expr": translate(&u.expr), "op": "-", "type": "unaryExpr"}),
        Expr::Extension(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(q: &str) -> String {
        translate(&promql_parser::parser::parse(q).unwrap()).to_string()
    }

    #[test]
    fn trees_have_prometheus_shapes() {
        // Keys sorted, the name matcher last, matching null between a
        // vector and a scalar.
        assert_eq!(
            tree(r#"foo{job="a"} offset 5m * 2"#),
            r#"{"bool":false,"lhs":{"anchored":false,"matchers":[{"name":"job","type":"=","value":"a"},{"name":"__name__","type":"=","value":"foo"}],"name":"foo","offset":300000,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"matching":null,"op":"*","rhs":{"type":"numberLiteral","val":"2"},"type":"binaryExpr"}"#
        );
        assert_eq!(
            tree("sum by (job) (rate(x[5m] @ 100))"),
            r#"{"expr":{"args":[{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"x"}],"name":"x","offset":0,"range":300000,"smoothed":false,"startOrEnd":null,"timestamp":100000,"type":"matrixSelector"}],"func":{"argTypes":["matrix"],"name":"rate","returnType":"vector","variadic":0},"type":"call"},"grouping":["job"],"op":"sum","param":null,"type":"aggregation","without":false}"#
        );
        assert_eq!(
            tree("a / on (x) group_left (y) b"),
            r#"{"bool":false,"lhs":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"a"}],"name":"a","offset":0,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"matching":{"card":"many-to-one","include":["y"],"labels":["x"],"on":true},"op":"/","rhs":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"b"}],"name":"b","offset":0,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"type":"binaryExpr"}"#
        );
        assert!(tree("a and b")
            .contains(r#""matching":{"card":"many-to-many","include":[],"labels":[],"on":false}"#));
        assert!(tree("a > bool b").contains(r#""bool":true"#));
        assert_eq!(
            tree("max_over_time((-x)[1h:] @ end())"),
            r#"{"args":[{"expr":{"expr":{"expr":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"x"}],"name":"x","offset":0,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"op":"-","type":"unaryExpr"},"type":"parenExpr"},"offset":0,"range":3600000,"startOrEnd":"end","step":0,"timestamp":null,"type":"subquery"}],"func":{"argTypes":["matrix"],"name":"max_over_time","returnType":"vector","variadic":0},"type":"call"}"#
        );
        assert_eq!(
            tree(r#"topk(3, {__name__="x"} offset -1m)"#),
            r#"{"expr":{"anchored":false,"matchers":[{"name":"__name__","type":"=","value":"x"}],"name":"","offset":-60000,"smoothed":false,"startOrEnd":null,"timestamp":null,"type":"vectorSelector"},"grouping":[],"op":"topk","param":{"type":"numberLiteral","val":"3"},"type":"aggregation","without":false}"#
        );
        assert_eq!(
            tree("-1e-7"),
            r#"{"type":"numberLiteral","val":"-0.0000001"}"#
        );
        assert_eq!(tree("Inf"), r#"{"type":"numberLiteral","val":"+Inf"}"#);
        assert!(tree("rate(x[5m] anchored)").contains(r#""anchored":true,"#));
        assert!(tree("x smoothed").contains(r#""smoothed":true,"#));
        assert!(tree("x").contains(r#""anchored":false,"#));
        assert_eq!(
            tree(r#""a\"b""#),
            r#"{"type":"stringLiteral","val":"a\"b"}"#
        );
    }
}
