#!/usr/bin/env bash
# Runs Cairn's fuzz targets one after another, each for SECONDS (default 60),
# and prints how many inputs each executed. With no TARGET, runs them all.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Each target starts from its committed seeds (fuzz/seeds/<target>/, read
# only) plus what earlier runs found (fuzz/corpus/<target>/, git-ignored,
# where libFuzzer writes new inputs). A failing input is saved under
# fuzz/artifacts/<target>/ and the script exits 1 after the remaining
# targets ran. libFuzzer's output goes to $FUZZ_LOG_DIR/<target>.log
# (default fuzz/artifacts/logs/); its tail is printed when a target fails.
#
# Environment: FUZZ_TOOLCHAIN (default nightly), FUZZ_TIMEOUT (seconds one
# input may take before it counts as a hang, default 10), FUZZ_RSS_MB
# (memory limit, default 2048), FUZZ_ARGS (more libFuzzer flags),
# FUZZ_SANITIZER (cargo fuzz's -s: address by default; none runs the
# coverage-guided fuzzer without ASan, several times faster, still failing
# on every panic and assertion, for long runs over code without unsafe).
# Installs the toolchain and cargo-fuzz when they are missing. One process
# per target: the machine is shared, so no -jobs/-workers.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-60}
shift || true
if ! [[ $secs =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]  (SECONDS: a positive integer)" >&2
  exit 2
fi
tc=${FUZZ_TOOLCHAIN:-nightly}
logs=${FUZZ_LOG_DIR:-fuzz/artifacts/logs}

if ! rustup run "$tc" rustc --version >/dev/null 2>&1; then
  echo "toolchain $tc is missing; installing it"
  rustup toolchain install "$tc" --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing; installing it"
  cargo install cargo-fuzz --locked
fi

all=$(cd fuzz && cargo "+$tc" fuzz list)
if [ $# -gt 0 ]; then
  targets=("$@")
  for t in "${targets[@]}"; do
    if ! grep -qx -- "$t" <<<"$all"; then
      echo "unknown fuzz target '$t'; targets: $(echo $all)" >&2
      exit 2
    fi
  done
else
  mapfile -t targets <<<"$all"
fi

# Build first, so the timed runs below fuzz for their whole time (cargo fuzz
# builds one target or all of them; all share the dependencies' build).
if [ ${#targets[@]} -eq 1 ]; then
  (cd fuzz && cargo "+$tc" fuzz build -s "${FUZZ_SANITIZER:-address}" "${targets[0]}")
else
  (cd fuzz && cargo "+$tc" fuzz build -s "${FUZZ_SANITIZER:-address}")
fi

mkdir -p "$logs"
failed=()
summary=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  log="$logs/$t.log"
  echo "== $t: ${secs}s"
  rc=0
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  (cd fuzz && cargo "+$tc" fuzz run -s "${FUZZ_SANITIZER:-address}" "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$secs" -timeout="${FUZZ_TIMEOUT:-10}" \
    -rss_limit_mb="${FUZZ_RSS_MB:-2048}" -print_final_stats=1 ${FUZZ_ARGS:-}) \
    >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  line=$(printf '%-14s %12s execs %8s exec/s  corpus %6s  ' "$t" "${execs:-?}" "${rate:-?}" "$corpus")
  if [ "$rc" -ne 0 ]; then
    failed+=("$t")
    summary+=("${line}FAILED (exit $rc, log $log)")
    echo "-- $t failed (exit $rc); end of $log:"
    tail -n 40 "$log"
  else
    summary+=("${line}ok")
  fi
done

echo
echo "== fuzzing summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]} (inputs under fuzz/artifacts/<target>/; reproduce with:" \
    "cd fuzz && cargo +$tc fuzz run <target> artifacts/<target>/<file>)" >&2
  exit 1
fi
