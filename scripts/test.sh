#!/usr/bin/env bash
# Runs Cairn's whole test suite on a fresh machine: installs the real peers
# (Prometheus, promtool, VictoriaMetrics), then runs every test of the
# workspace. PromQL conformance scripts are read from $CAIRN_PROMQL_TESTS,
# which defaults to ../shared/conformance/promql beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
if [ -z "${CAIRN_PROMQL_TESTS:-}" ] && [ -d ../shared/conformance/promql ]; then
  export CAIRN_PROMQL_TESTS="$(cd ../shared/conformance/promql && pwd)"
fi
echo "PromQL conformance scripts: ${CAIRN_PROMQL_TESTS:-<none; conformance test will say so and fail>}"
# The code's rules: formatting, and clippy with the workspace lints
# (no unwrap/expect/panic in library code, SAFETY comments on unsafe).
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
# The fuzz targets (a separate cargo workspace) must keep compiling.
cargo check --manifest-path fuzz/Cargo.toml --bins --locked
cargo nextest run --workspace --locked --no-fail-fast "$@"
