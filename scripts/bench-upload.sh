#!/usr/bin/env bash
# What uploading blocks to object storage costs ingest (issue 17): a data
# directory with DAYS days of the simulated cluster's 2 h blocks (written by
# `cairn-loadgen blocks`, ending a day ago) is copied for each run; Cairn
# starts on the copy, once without a bucket and once with a fresh prefix of
# a loopback Garage bucket (so every block is uploaded from the start), and
# `nh_ingest` sends the same remote-write load at once. ROUNDS rounds, the
# two kinds alternating. Reports medians of samples/s and server CPU µs per
# sample, and the upload's bytes and seconds.
#
# Usage: scripts/bench-upload.sh   Environment: DAYS (2), NODES (100),
# SCRAPES (120), CONNS (4), ROUNDS (3), OUT (a temp dir), BUILD (1),
# CAIRN_GARAGE_ROOT (as scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/bench-common.sh
. scripts/lib/bench-common.sh
DAYS=${DAYS:-2}
NODES=${NODES:-100}
SCRAPES=${SCRAPES:-120}
CONNS=${CONNS:-4}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-1}
OUT=${OUT:-$(mktemp -d /tmp/cairn-bench-upload.XXXXXX)}
mkdir -p "$OUT"
[ "$BUILD" = 0 ] || cargo build --release -p cairn -p cairn-loadgen -p cairn-benches \
  --bin cairn --bin cairn-loadgen --bin nh_ingest >&2

# The history, once.
./target/release/cairn-loadgen blocks --out "$OUT/base" --nodes "$NODES" --days "$DAYS" \
  --interval 30s --block-hours 2 --end $(( $(date +%s) - 86400 )) >"$OUT/blocks.txt"
tail -1 "$OUT/blocks.txt" >&2

# A single-node Garage with one bucket and key.
start_garage "$OUT" 19461
trap 'kill $gpid 2>/dev/null || true' EXIT

port=19451
results="$OUT/results.txt"
: >"$results"
for round in $(seq 1 "$ROUNDS"); do
  for kind in local upload; do
    dir="$OUT/$kind-$round"; rm -rf "$dir"; mkdir -p "$dir"
    cp -r "$OUT/base" "$dir/data"
    extra=()
    if [ "$kind" = upload ]; then
      garage_objstore_yml "$dir/objstore.yml" "run-$round"
      extra=(--objstore.config-file "$dir/objstore.yml" --storage.external-label "run=$round")
    fi
    ./target/release/cairn serve --storage.tsdb.path "$dir/data" --web.listen-address "127.0.0.1:$port" \
      --storage.tsdb.downsample=false --storage.tsdb.max-block-duration=2h "${extra[@]}" >"$dir/log" 2>&1 &
    pid=$!
    wait_http "http://127.0.0.1:$port/-/ready"
    line=$(./target/release/nh_ingest --url "http://127.0.0.1:$port/api/v1/write" --pid "$pid" \
      --mode classic --protocol rw --nodes "$NODES" --scrapes "$SCRAPES" --conns "$CONNS")
    up=$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^cairn_objstore_uploaded_bytes_total /{print $2}')
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
    first=$(grep -m1 'block uploaded' "$dir/log" | sed -E 's/^ts=([^ ]+).*/\1/' || true)
    last=$(grep 'block uploaded' "$dir/log" | tail -1 | sed -E 's/^ts=([^ ]+).*/\1/' || true)
    echo "$kind $line uploaded_bytes=${up:-0} first=${first:-none} last=${last:-none}" | tee -a "$results"
    rm -rf "$dir/data"
  done
done
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for l in open(sys.argv[1]):
    f = l.split()
    rows.setdefault(f[0], []).append((float(f[5]), float(f[6])))
print(f"{'kind':<8} {'samples/s':>11} {'cpu_us/smp':>10}")
for k, v in rows.items():
    print(f"{k:<8} {statistics.median(x[0] for x in v):>11.0f} {statistics.median(x[1] for x in v):>10.3f}")
PY
