//! The PromQL evaluator on promql-parser, and the .test script runner.
