#!/usr/bin/env bash
# Runs Cairn's whole test suite on a fresh machine: installs the real peers
# (Prometheus, promtool, VictoriaMetrics), then runs every test of the
# workspace. PromQL conformance scripts are read from $CAIRN_PROMQL_TESTS,
# which defaults to ../shared/conformance/promql beside the checkout.
# After the tests: the head's raw series pointer under Miri
# (scripts/miri.sh) and every fuzz target for CAIRN_FUZZ_SECONDS each
# (default 20; scripts/fuzz.sh). CAIRN_FUZZ_SECONDS=0 or CAIRN_SKIP_MIRI=1
# leaves those out for a quick local run; CI runs both.
set -euo pipefail
cd "$(dirname "$0")/.."

# What a bare machine needs first, said plainly instead of failing deep in
# a build: a Rust toolchain at the workspace's rust-version (from rustup;
# Debian's rustc is older) and a C compiler (ring and a few -sys crates).
need_rust=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if ! command -v cargo >/dev/null 2>&1 || ! command -v rustc >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo/rustc not found. Install Rust $need_rust or newer with rustup:" >&2
  echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\"" >&2
  exit 1
fi
have_rust=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$need_rust" "$have_rust" | sort -V | head -1)" != "$need_rust" ]; then
  echo "scripts/test.sh: rustc $have_rust is older than the workspace's rust-version $need_rust." >&2
  echo "  rustup update stable   (Debian's packaged Rust is too old; use rustup)" >&2
  exit 1
fi
if ! command -v cc >/dev/null 2>&1; then
  echo "scripts/test.sh: no C compiler (cc) found; install one, e.g. sudo apt-get install build-essential" >&2
  exit 1
fi

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
cargo nextest run --workspace --locked --no-fail-fast "$@"
# CI (CAIRN_CI_FREE_DISK=1, set by .ci/run) lets go of the test build
# before Miri and the fuzzers build their own targets, so that the three
# builds never need disk at once.
if [ "${CAIRN_CI_FREE_DISK:-0}" = 1 ]; then
  rm -rf target/debug
fi
if [ "${CAIRN_SKIP_MIRI:-0}" != 1 ]; then
  bash scripts/miri.sh
fi
# The fuzz targets (a separate cargo workspace, nightly, AddressSanitizer)
# are built and each run briefly from the committed seeds.
fuzz_secs=${CAIRN_FUZZ_SECONDS:-20}
if [ "$fuzz_secs" != 0 ]; then
  bash scripts/fuzz.sh "$fuzz_secs"
fi
