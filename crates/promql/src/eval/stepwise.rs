//! The step-wise adapter: a node's kernel called once per step over the
//! instant vectors its inputs hold at that step, the results gathered
//! back into columns (Prometheus's `rangeEval`).

use super::Evaluator;
use crate::columns::{vector_at, ColBuilder, StepVal, Value};
use crate::error::{eval_err, Result};
use crate::plan::Steps;
use crate::value::Annotations;

impl Evaluator<'_> {
    /// Runs `kernel(annotations, arguments at the step, step time)` at
    /// every step of `steps` over `inputs`; two samples with one label
    /// set at one step fail the query. (The sample limit is counted by
    /// the caller, see `limit`.)
    pub(super) fn stepwise(
        &mut self,
        steps: Steps,
        inputs: Vec<Value>,
        mut kernel: impl FnMut(&mut Annotations, Vec<StepVal>, i64) -> Result<StepVal>,
    ) -> Result<Value> {
        let mut cols = ColBuilder::default();
        let mut scalars: Option<Vec<f64>> = None;
        for i in 0..steps.n {
            if i % 64 == 0 {
                self.check_deadline()?;
            }
            let ts = steps.time(i);
            let args: Vec<StepVal> = inputs
                .iter()
                .map(|v| match v {
                    Value::Scalar(s) => StepVal::Scalar(s.get(i).copied().unwrap_or(f64::NAN)),
                    Value::String(s) => StepVal::String(s.clone()),
                    Value::Vector(c) => StepVal::Vector(vector_at(c, i, ts)),
                })
                .collect();
            match kernel(&mut self.annos, args, ts)? {
                StepVal::Vector(v) => {
                    for (pos, s) in v.into_iter().enumerate() {
                        cols.push(i, pos, s)?;
                    }
                }
                StepVal::Scalar(f) => {
                    let s = scalars.get_or_insert_with(|| vec![f64::NAN; steps.n]);
                    if let Some(x) = s.get_mut(i) {
                        *x = f;
                    }
                }
                StepVal::String(_) => return eval_err("a string is not a value of a step"),
            }
        }
        match scalars {
            Some(s) => Ok(Value::Scalar(s)),
            None => Ok(Value::Vector(cols.finish())),
        }
    }
}
