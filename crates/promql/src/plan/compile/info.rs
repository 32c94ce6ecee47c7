//! Compiling `info(v, selector)`: the base expression as any argument, and
//! one selection for the info series.
//!
//! The info series are selected with the selector's matchers (and
//! `__name__="target_info"` when none is on the name), and looked up at
//! the time the base's first selector reads (its `@` and offset applied),
//! as an instant selector there would be. Prometheus selects them over
//! that shifted range too, but then looks them up at the unshifted
//! evaluation time, so that with an offset of a lookback delta or more an
//! instant query never finds them and a range query finds labels from
//! another time than the base's values; Cairn reads both at the same time
//! (docs/conformance.md). Prometheus also narrows the select by the
//! identifying label values the base holds; that narrowing is applied at
//! evaluation instead (it needs the base's values), with the same result.

use cairn_model::{MatchType, Matcher, METRIC_NAME};
use promql_parser::parser::value::ValueType;
use promql_parser::parser::Expr;

use super::{unparen, Compiler, Ctx, RawWindow};
use crate::error::{eval_err, PromqlError, Result};
use crate::plan::matchers::matcher_sets;
use crate::plan::node::{Mode, NodeId, Reach, SelId, Steps};
use crate::plan::{Extended, InfoCall, Kind};

/// The info metric read when the selector names none.
const TARGET_INFO: &str = "target_info";

impl Compiler<'_> {
    pub(super) fn info(&mut self, args: &[&Expr], steps: Steps, cx: Ctx) -> Result<NodeId> {
        let Some(first) = args.first() else {
            return eval_err("missing argument 1");
        };
        let base = self.expr(first, steps, cx)?;
        let (matchers, explicit) = match args.get(1).map(|a| unparen(a)) {
            None => (Vec::new(), false),
            Some(Expr::VectorSelector(vs)) => match matcher_sets(vs)?.as_slice() {
                [one] => (one.clone(), true),
                _ => return eval_err("info(): the label selector cannot use \"or\""),
            },
            Some(_) => return eval_err("info(): the second argument must be a label selector"),
        };
        let (names, data): (Vec<Matcher>, Vec<Matcher>) = matchers
            .iter()
            .cloned()
            .partition(|m| m.name == METRIC_NAME);
        let default_name = Matcher::new(MatchType::Equal, METRIC_NAME, TARGET_INFO)
            .map_err(|e| PromqlError::Eval(e.to_string()))?;
        let info_names = if explicit {
            names.clone()
        } else {
            vec![default_name.clone()]
        };
        let mut select = matchers;
        if names.is_empty() {
            select.insert(0, default_name);
        }
        let reach = first_reach(self, first);
        let sel = self.info_selection(select, steps, reach)?;
        self.push(
            Kind::Info(Box::new(InfoCall {
                base,
                sel,
                reach,
                info_names,
                data,
                explicit,
            })),
            ValueType::Vector,
            steps,
            Mode::Columnar,
        )
    }

    /// The selection of the info series (never shared with a selector's):
    /// an instant selector's at `reach`, stale markers kept.
    fn info_selection(
        &mut self,
        matchers: Vec<Matcher>,
        steps: Steps,
        reach: Reach,
    ) -> Result<SelId> {
        let window = RawWindow {
            range: 0,
            back: self.opts.lookback_delta,
            ahead: 0,
            matrix: false,
            extended: Extended::None,
            func: Some("info".to_owned()),
        };
        self.raw_points_selection(vec![matchers], steps, reach, window)
    }
}

/// The `@` and offset of the first selector in `e` (depth first, children
/// in order), as Prometheus's `infoSelectHints` finds them.
fn first_reach(c: &Compiler<'_>, e: &Expr) -> Reach {
    fn walk(c: &Compiler<'_>, e: &Expr) -> Option<Reach> {
        match e {
            Expr::VectorSelector(vs) => Some(c.reach(&vs.at, &vs.offset)),
            Expr::MatrixSelector(ms) => Some(c.reach(&ms.vs.at, &ms.vs.offset)),
            Expr::Subquery(sq) => walk(c, &sq.expr),
            Expr::Paren(p) => walk(c, &p.expr),
            Expr::Unary(u) => walk(c, &u.expr),
            Expr::Binary(b) => walk(c, &b.lhs).or_else(|| walk(c, &b.rhs)),
            Expr::Aggregate(a) => {
                walk(c, &a.expr).or_else(|| a.param.as_ref().and_then(|p| walk(c, p)))
            }
            Expr::Call(call) => call.args.args.iter().find_map(|a| walk(c, a)),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => None,
        }
    }
    walk(c, e).unwrap_or(Reach {
        at: None,
        offset: 0,
    })
}
