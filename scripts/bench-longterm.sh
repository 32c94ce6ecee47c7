#!/usr/bin/env bash
# Long-term benchmark (issue: downsampled blocks): N days of the simulated
# GPU cluster written straight into raw blocks, downsampled with
# `cairn tsdb downsample`, then the dashboard queries of
# scripts/bench_query.py over 30 days at step 1h and 7 days at step 10m,
# side by side: Prometheus 2.42 on a copy of the raw blocks, Cairn reading
# raw data (`max_source_resolution=raw`) and Cairn with the default (auto).
#
#   scripts/bench-longterm.sh            # all steps, into $DIR
#
# Environment: DIR (/work/bench30: data/ for Cairn, prom/ for Prometheus,
# small/ for the 10-day memory comparison), NODES (100), DAYS (30),
# POD_SCRAPES (2880: a GPU's pod lives a day at 30 s), END (1764979200),
# REPS (5), PASSES (3), SKIP_GEN=1 to reuse $DIR/data (and its levels, when
# present). Prints Markdown
# tables; writes nothing into the repository. Needs ~30 GB of free disk
# for 100 nodes x 30 days (raw 16 GB, levels ~9 GB; Prometheus's copy is
# hard links).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${DIR:-/work/bench30}
NODES=${NODES:-100}
DAYS=${DAYS:-30}
POD_SCRAPES=${POD_SCRAPES:-2880}
END=${END:-1764979200}
REPS=${REPS:-5}
PASSES=${PASSES:-3}
BIN=target/release
cargo build -q --release -p cairn -p cairn-loadgen
mkdir -p "$DIR"

raw_blocks() { # DIR: raw block directories (no thanos resolution)
  for m in "$1"/*/meta.json; do
    grep -q '"resolution"' "$m" || dirname "$m"
  done
}

if [ "${SKIP_GEN:-0}" != 1 ]; then
  rm -rf "$DIR/data" "$DIR/prom" "$DIR/small"
  echo "== generating $NODES nodes x $DAYS days"
  "$BIN/cairn-loadgen" blocks --nodes "$NODES" --days "$DAYS" --interval 30s \
    --block-hours 24 --pod-lifetime-scrapes "$POD_SCRAPES" --end "$END" \
    --out "$DIR/data" | tail -n 1
  # Prometheus's copy and the 10-day copy: hard links of the raw blocks.
  mkdir -p "$DIR/prom/data" "$DIR/small"
  for b in $(raw_blocks "$DIR/data"); do cp -al "$b" "$DIR/prom/data/"; done
  for b in $(raw_blocks "$DIR/data" | sort | tail -n 10); do cp -al "$b" "$DIR/small/"; done
fi

rss_of() { sed -n 's/^\tMaximum resident set size (kbytes): //p' "$1"; }
downsample() { # DIR LABEL
  /usr/bin/time -v "$BIN/cairn" tsdb downsample "$1" >"$DIR/ds-$2.out" 2>"$DIR/ds-$2.time"
  local secs samples
  secs=$(tail -n 1 "$DIR/ds-$2.out" | sed -n 's/.* in \([0-9.]*\)s$/\1/p')
  samples=$(python3 - "$1" <<'EOF'
import json, os, sys
d = sys.argv[1]
n = 0
for b in os.listdir(d):
    m = os.path.join(d, b, "meta.json")
    if os.path.exists(m):
        j = json.load(open(m))
        if not j.get("thanos", {}).get("downsample", {}).get("resolution"):
            n += j["stats"].get("numSamples", 0)
print(n)
EOF
)
  echo "| $2 | $samples | $secs | $(python3 -c "print(f'{$samples/$secs/1e6:.1f}')") | $(( $(rss_of "$DIR/ds-$2.time") / 1024 )) |"
}

if ! grep -qs resolution "$DIR"/data/*/meta.json; then
  echo "== downsampling (cairn tsdb downsample: one process, raw -> 5m -> 1h, then each level's blocks merged)"
  echo "| data | raw samples | seconds | M raw samples/s | peak RSS (MiB) |"
  echo "|---|---:|---:|---:|---:|"
  rm -rf "$DIR/server10"
  mkdir -p "$DIR/server10"
  for b in $(raw_blocks "$DIR/small"); do cp -al "$b" "$DIR/server10/"; done
  downsample "$DIR/small" "10 days"
  downsample "$DIR/data" "$DAYS days"

  echo
  echo "== the server's background pass on the 10 days (first round after 60 s)"
  "$BIN/cairn" serve --storage.tsdb.path "$DIR/server10" --web.listen-address=127.0.0.1:19392 \
    --storage.tsdb.retention.time=0s --storage.tsdb.max-block-duration=24h >"$DIR/server10.log" 2>&1 &
  spid=$!
  t0=$(date +%s)
  # Every raw block gets a 5m and a 1h block (20 events), then levels merge.
  until [ "$(grep -c 'Downsampled' "$DIR/server10.log")" -ge 20 ]; do sleep 5; done
  t1=$(date +%s)
  sleep 90
  echo "downsampled in $((t1 - t0 - 60)) s after the first round began; server peak RSS $(( $(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$spid/status) / 1024 )) MiB"
  kill $spid; wait $spid 2>/dev/null || true
fi

echo
echo "== bytes per raw sample, by level"
python3 - "$DIR/data" <<'EOF'
import json, os, sys
d = sys.argv[1]
size = {}
raw = 0
for b in os.listdir(d):
    m = os.path.join(d, b, "meta.json")
    if not os.path.exists(m):
        continue
    j = json.load(open(m))
    r = j.get("thanos", {}).get("downsample", {}).get("resolution", 0)
    if r == 0:
        raw += j["stats"].get("numSamples", 0)
    total = 0
    for root, _, files in os.walk(os.path.join(d, b)):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    size[r] = size.get(r, 0) + total
print("| level | bytes | bytes per raw sample | x raw |")
print("|---|---:|---:|---:|")
for r, name in [(0, "raw"), (300000, "5m"), (3600000, "1h")]:
    s = size.get(r, 0)
    print(f"| {name} | {s} | {s / raw:.3f} | {s / size[0]:.3f} |")
EOF

echo
echo "== queries (medians of $REPS runs per pass, $PASSES passes)"
cport=19391; pport=19390
"$BIN/cairn" serve --storage.tsdb.path "$DIR/data" --web.listen-address=127.0.0.1:$cport \
  --storage.tsdb.retention.time=0s --storage.tsdb.max-block-duration=24h \
  --storage.tsdb.downsample=false >"$DIR/cairn.log" 2>&1 &
cpid=$!
printf 'global:\n  scrape_interval: 1h\n' >"$DIR/prom/prometheus.yml"
/usr/bin/prometheus --config.file="$DIR/prom/prometheus.yml" --storage.tsdb.path="$DIR/prom/data" \
  --web.listen-address=127.0.0.1:$pport --storage.tsdb.retention.time=10y \
  --storage.tsdb.max-block-duration=24h >"$DIR/prom.log" 2>&1 &
ppid=$!
trap 'kill $cpid $ppid 2>/dev/null || true' EXIT
for u in "127.0.0.1:$cport" "127.0.0.1:$pport"; do
  for _ in $(seq 300); do curl -sf "http://$u/-/ready" >/dev/null && break; sleep 1; done
done
end_s=$END
for spec in "30 3600 1h30s" "7 600 10m30s"; do
  set -- $spec
  days=$1; step=$2; rate=$3
  echo
  echo "### $days days at step ${step}s (rate windows [$rate], Grafana's \$__rate_interval)"
  for p in $(seq "$PASSES"); do
    RANGE="$rate" python3 scripts/bench_query.py $((end_s - days * 86400)) "$end_s" "$step" "$REPS" \
      "prometheus=http://127.0.0.1:$pport" \
      "cairn-raw=http://127.0.0.1:$cport?max_source_resolution=raw" \
      "cairn-auto=http://127.0.0.1:$cport" \
      "cairn-1h=http://127.0.0.1:$cport?max_source_resolution=1h"
  done
done
echo
echo "cairn peak RSS (MiB): $(( $(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' /proc/$cpid/status) / 1024 ))"
