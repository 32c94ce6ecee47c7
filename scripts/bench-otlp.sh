#!/usr/bin/env bash
# OTLP ingest next to remote write on the same data (issue 15): the
# simulated GPU cluster's floats (NODES nodes, SCRAPES scrapes 15 s apart,
# plus the classic per-GPU latency histogram of benches' `nh_ingest`), sent
# to Cairn once as remote write 1.0 (snappy) and once as OTLP/HTTP protobuf
# (uncompressed; every sample a gauge data point, its labels the point's
# attributes), ROUNDS times each on a fresh server. Reports the medians of
# samples (data points) per second and server CPU µs per sample, and checks
# that both stored the same number of samples of one metric.
#
# Usage: scripts/bench-otlp.sh   Environment: NODES (100), SCRAPES (60),
# CONNS (4), ROUNDS (3), OUT (a temp dir), BUILD (1).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/bench-common.sh
. scripts/lib/bench-common.sh
NODES=${NODES:-100}
SCRAPES=${SCRAPES:-60}
CONNS=${CONNS:-4}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-1}
OUT=${OUT:-$(mktemp -d /tmp/cairn-bench-otlp.XXXXXX)}
mkdir -p "$OUT"
[ "$BUILD" = 0 ] || cargo build --release -p cairn -p cairn-benches --bin cairn --bin nh_ingest >&2

port=19351
results="$OUT/results.txt"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  for proto in rw otlp; do
    dir="$OUT/$proto-$round"; rm -rf "$dir"; mkdir -p "$dir"
    start_target cairn "$dir" "$port" "$dir/log"
    trap 'kill $pid 2>/dev/null || true' EXIT
    wait_http "$ready"
    path=/api/v1/write
    [ "$proto" = otlp ] && path=/api/v1/otlp/v1/metrics
    line=$(./target/release/nh_ingest --url "http://127.0.0.1:$port$path" --pid "$pid" \
      --mode classic --protocol "$proto" --nodes "$NODES" --scrapes "$SCRAPES" --conns "$CONNS")
    stored=$(curl -fsS "http://127.0.0.1:$port/api/v1/query" \
      --data-urlencode "query=sum(count_over_time(DCGM_FI_DEV_GPU_UTIL[1h]))" |
      python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    trap - EXIT
    echo "$proto $line gpu_util_samples=$stored" | tee -a "$results"
  done
done
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    f = l.split()
    rows.setdefault(f[0], []).append((float(f[5]), float(f[6]), int(f[2]), f[7]))
print(f"{'protocol':<10} {'samples':>9} {'samples/s':>11} {'cpu_us/smp':>10} {'stored':>24}")
for p, v in rows.items():
    print(f"{p:<10} {v[0][2]:>9} {statistics.median(x[0] for x in v):>11.0f} {statistics.median(x[1] for x in v):>10.3f} {v[0][3]:>24}")
PY
