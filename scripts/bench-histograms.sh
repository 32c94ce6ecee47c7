#!/usr/bin/env bash
# Remote-write ingest with native histograms in the mix, side by side
# (issue 15): the simulated GPU cluster (NODES nodes, SCRAPES scrapes 15 s
# apart) plus a per-GPU latency histogram, sent by benches' `nh_ingest`
# either as a classic histogram (12 buckets, _sum, _count: 15 float series
# per GPU) or as one native histogram (schema 3, integer counts).
#
# Runs, ROUNDS times each, every pairing on a fresh server:
#   cairn classic, cairn native, prometheus native (2.42 with
#   --enable-feature=native-histograms), prometheus classic,
#   victoriametrics classic (1.79 stores no native histograms).
# Reports per pairing the median of samples/s (a histogram counts as one
# sample) and server CPU µs per sample, and checks that every histogram
# sample is stored (sum of count_over_time over the run).
#
# Usage: scripts/bench-histograms.sh   Environment: NODES (100), SCRAPES
# (60), CONNS (4), ROUNDS (3), OUT (a temp dir), BUILD (1).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/bench-common.sh
. scripts/lib/bench-common.sh
NODES=${NODES:-100}
SCRAPES=${SCRAPES:-60}
CONNS=${CONNS:-4}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-1}
OUT=${OUT:-$(mktemp -d /tmp/cairn-bench-nh.XXXXXX)}
mkdir -p "$OUT"
bash scripts/install-deps.sh
[ "$BUILD" = 0 ] || cargo build --release -p cairn -p cairn-benches --bin cairn --bin nh_ingest >&2

port=19301
results="$OUT/results.txt"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  for pair in cairn:classic cairn:native prometheus:native prometheus:classic victoriametrics:classic; do
    t=${pair%%:*} mode=${pair##*:}
    dir="$OUT/$t-$mode-$round"; rm -rf "$dir"; mkdir -p "$dir"
    if [ "$t" = prometheus ]; then
      printf 'global:\n  scrape_interval: 1h\n' >"$dir/prometheus.yml"
      prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver \
        --enable-feature=native-histograms >>"$dir/log" 2>&1 &
      pid=$!; ready="http://127.0.0.1:$port/-/ready"
    else
      start_target "$t" "$dir" "$port" "$dir/log"
    fi
    trap 'kill $pid 2>/dev/null || true' EXIT
    wait_http "$ready"
    line=$(./target/release/nh_ingest --url "http://127.0.0.1:$port/api/v1/write" --pid "$pid" \
      --mode "$mode" --nodes "$NODES" --scrapes "$SCRAPES" --conns "$CONNS")
    hists=$(echo "$line" | awk '{print $3}')
    stored=-
    if [ "$mode" = native ]; then
      stored=$(curl -fsS "http://127.0.0.1:$port/api/v1/query" \
        --data-urlencode "query=sum(count_over_time(gpu_kernel_latency_seconds[1h]))" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else 0)')
    fi
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    trap - EXIT
    echo "$t $line stored_histograms=$stored (sent $hists)" | tee -a "$results"
  done
done
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    f = l.split()
    key = (f[0], f[1])
    rows.setdefault(key, []).append((float(f[5]), float(f[6]), int(f[2]), int(f[3])))
print(f"{'target':<16} {'mode':<8} {'floats':>9} {'hists':>7} {'samples/s':>11} {'cpu_us/smp':>10}")
for (t, m), v in rows.items():
    print(f"{t:<16} {m:<8} {v[0][2]:>9} {v[0][3]:>7} {statistics.median(x[0] for x in v):>11.0f} {statistics.median(x[1] for x in v):>10.3f}")
PY
