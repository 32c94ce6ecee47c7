#!/usr/bin/env bash
# Runs the head's `Pinned` series-pointer tests under Miri
# (crates/head/src/stripes/pinned_miri.rs; see docs/head.md, "Checked under
# Miri"): Stacked Borrows over several scheduler seeds, then Tree Borrows.
# Installs the nightly toolchain's miri and rust-src components when absent.
#
#   scripts/miri.sh                  # seeds 0..4 (Stacked Borrows) + seed 0 (Tree Borrows)
#   MIRI_SEEDS=0..32 scripts/miri.sh # more interleavings
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly miri --version >/dev/null 2>&1; then
  rustup +nightly component add miri rust-src
fi

seeds="${MIRI_SEEDS:-0..4}"
filter="stripes::pinned_miri"
# parking_lot's lock queue casts integers to pointers; permissive provenance
# accepts that (and silences the warning) without weakening the checks on
# the head's own pointers, which never take that path.
base="-Zmiri-permissive-provenance ${MIRIFLAGS:-}"

start=$(date +%s)
MIRIFLAGS="$base -Zmiri-many-seeds=$seeds" \
  cargo +nightly miri test -q -p cairn-head --lib "$filter"
MIRIFLAGS="$base -Zmiri-tree-borrows" \
  cargo +nightly miri test -q -p cairn-head --lib "$filter"
echo "miri: $filter passed (Stacked Borrows, seeds $seeds; Tree Borrows) in $(( $(date +%s) - start ))s"
