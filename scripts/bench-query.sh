#!/usr/bin/env bash
# Side-by-side PromQL range-query benchmark: Prometheus 2.42, Cairn and
# VictoriaMetrics 1.79.5 on 127.0.0.1, loaded with the same simulated
# GPU-cluster data by cairn-loadgen, then queried with dashboard-style range
# queries (scripts/bench_query.py). Prints a Markdown table of medians and
# whether each other target's result equals Prometheus's (VictoriaMetrics's
# MetricsQL differs from PromQL by design, so "NO" is expected there).
#
# Environment: NODES (100), HOURS (2; the issue's full workload is 24),
# SLICE_HOURS (2), STEP (60), REPS (5), PASSES (1: how many times the query
# set runs over the loaded servers), OUT (temp dir), ORDER (rounds: each
# query's runs alternate between the servers; blocks: one server's runs, then
# the next's; see scripts/bench_query.py), BASELINE (path of another `cairn`
# binary, e.g. an older revision's, loaded and queried as a fourth server
# "cairn-baseline" for a before/after comparison in the same run).
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-100}
HOURS=${HOURS:-2}
SLICE_HOURS=${SLICE_HOURS:-2}
STEP=${STEP:-60}
REPS=${REPS:-5}
OUT=${OUT:-$(mktemp -d /tmp/cairn-qbench.XXXXXX)}

bash scripts/install-deps.sh
cargo build --release -p cairn -p cairn-loadgen >&2
wait_http() {
  for _ in $(seq 1 150); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  echo "timed out waiting for $1" >&2; return 1
}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

mkdir -p "$OUT/prom" "$OUT/cairn" "$OUT/vm" "$OUT/baseline"
printf 'global:\n  scrape_interval: 1h\n' >"$OUT/prom/prometheus.yml"
prometheus --config.file="$OUT/prom/prometheus.yml" --storage.tsdb.path="$OUT/prom/data" \
  --web.listen-address=127.0.0.1:19090 --web.enable-remote-write-receiver >"$OUT/prom/log" 2>&1 &
pids+=($!)
./target/release/cairn serve --storage.tsdb.path "$OUT/cairn/data" --web.listen-address 127.0.0.1:19201 >"$OUT/cairn/log" 2>&1 &
pids+=($!)
victoria-metrics -storageDataPath="$OUT/vm/data" -httpListenAddr=127.0.0.1:18428 -retentionPeriod=10y \
  -search.latencyOffset=0s -search.disableCache >"$OUT/vm/log" 2>&1 &
pids+=($!)
baseline_url=()
baseline_target=()
if [ -n "${BASELINE:-}" ]; then
  "$BASELINE" serve --storage.tsdb.path "$OUT/baseline/data" --web.listen-address 127.0.0.1:19202 >"$OUT/baseline/log" 2>&1 &
  pids+=($!)
  wait_http http://127.0.0.1:19202/-/ready
  baseline_url=(--url http://127.0.0.1:19202/api/v1/write)
  baseline_target=(cairn-baseline=http://127.0.0.1:19202)
fi
wait_http http://127.0.0.1:19090/-/ready
wait_http http://127.0.0.1:19201/-/ready
wait_http http://127.0.0.1:18428/health

now=$(date +%s)
span=$(python3 -c "print(int($HOURS*3600))")
start_ms=$(( (now - span) * 1000 ))
# Sent in slices of SLICE_HOURS: the generator holds one slice's encoded
# requests in memory (about 1 GiB per 2 h of 100 nodes), and the slices
# together are the same data as one run.
slices=$(python3 -c "import math; print(max(1, math.ceil($HOURS / $SLICE_HOURS)))")
# Each slice is encoded once and sent to the three receivers at once (how
# fast each takes it does not matter here; bench-ingest.sh measures that).
for i in $(seq 0 $((slices - 1))); do
  skip=$(python3 -c "print($i * $SLICE_HOURS)")
  hours=$(python3 -c "print(min($SLICE_HOURS, $HOURS - $i * $SLICE_HOURS))")
  ./target/release/cairn-loadgen --url http://127.0.0.1:19090/api/v1/write \
    --url http://127.0.0.1:19201/api/v1/write --url http://127.0.0.1:18428/api/v1/write "${baseline_url[@]}" \
    --nodes "$NODES" --hours "$hours" --skip-hours "$skip" --start-ms "$start_ms" --connections 4 --json \
    >"$OUT/load-$i.json"
  echo "slice $((i + 1)) of $slices sent: $(cat "$OUT/load-$i.json")" >&2
done
curl -fsS http://127.0.0.1:18428/internal/force_flush >/dev/null
# Half a second off the samples' whole-second grid: no step time or window
# edge falls on a sample, where Prometheus 2.x (closed windows) and 3.x /
# Cairn (left-open windows) would legitimately disagree.
qstart="$(( now - span + 600 )).5"
qend="$(( now - 15 )).5"
for pass in $(seq 1 "${PASSES:-1}"); do
  echo "pass $pass of ${PASSES:-1}" >&2
  python3 scripts/bench_query.py "$qstart" "$qend" "$STEP" "$REPS" \
    prometheus=http://127.0.0.1:19090 cairn=http://127.0.0.1:19201 victoriametrics=http://127.0.0.1:18428 \
    "${baseline_target[@]}"
done
# Where Cairn's rate() differs from Prometheus 2.42's, check that the
# difference is exactly the 2.x/3.x extrapolation change.
for m in DCGM_FI_PROF_PCIE_RX_BYTES DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION; do
  python3 scripts/check_rate_diffs.py http://127.0.0.1:19090 http://127.0.0.1:19201 "$qstart" "$qend" "$STEP" "$m"
done
echo "raw data in $OUT" >&2
