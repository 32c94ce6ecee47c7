#!/usr/bin/env bash
# Range queries over blocks held only in a bucket against the same blocks on
# local disk (issue 17): DAYS days of the simulated GPU cluster's 2 h blocks
# (written by `cairn-loadgen blocks`, ending now) are uploaded to a loopback
# Garage bucket by a Cairn that keeps them locally ("local"); a second
# Cairn on an empty data directory serves them from the bucket ("bucket").
# Both answer the dashboard queries of scripts/bench_query.py over the
# whole span:
#   - warm: the bucket Cairn after one pass of every query (its page cache
#     and index headers filled), medians of REPS runs in rounds, both
#     servers alternating (scripts/bench_query.py);
#   - cold: the bucket Cairn restarted with an empty cache directory before
#     every run, ROUNDS runs per query (scripts/bench_bucket_cold.py).
# Also prints the bucket Cairn's RSS at rest after start and after the
# queries.
#
# Usage: scripts/bench-bucket-query.sh   Environment: DAYS (1), NODES (100),
# STEP (300), REPS (5), ROUNDS (3), CACHE (256MB: --objstore.cache.size),
# GROUP (0; 1: blocks written with each metric's chunks together, as
# Cairn's compaction writes them, instead of in series order as head cuts
# and Prometheus write them), OUT (a temp dir), BUILD (1),
# CAIRN_GARAGE_ROOT (as scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/bench-common.sh
. scripts/lib/bench-common.sh
DAYS=${DAYS:-1}
NODES=${NODES:-100}
STEP=${STEP:-300}
REPS=${REPS:-5}
ROUNDS=${ROUNDS:-3}
CACHE=${CACHE:-256MB}
BUILD=${BUILD:-1}
GROUP=${GROUP:-0}
group_flag=()
[ "$GROUP" = 0 ] || group_flag=(--group-by-name)
OUT=${OUT:-$(mktemp -d /tmp/cairn-bench-bucket.XXXXXX)}
mkdir -p "$OUT"
[ "$BUILD" = 0 ] || cargo build --release -p cairn -p cairn-loadgen --bin cairn --bin cairn-loadgen >&2

now=$(date +%s)
./target/release/cairn-loadgen blocks --out "$OUT/local/data" --nodes "$NODES" --days "$DAYS" \
  --interval 30s --block-hours 2 --end "$now" "${group_flag[@]}" >"$OUT/blocks.txt"
tail -1 "$OUT/blocks.txt" >&2

start_garage "$OUT" 19471
pids=("$gpid")
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
garage_objstore_yml "$OUT/objstore.yml" bench

lp=19481
bp=19482
# Compaction off (2 h blocks at most), so both serve the same blocks.
./target/release/cairn serve --storage.tsdb.path "$OUT/local/data" --web.listen-address "127.0.0.1:$lp" \
  --storage.tsdb.downsample=false --storage.tsdb.max-block-duration=2h \
  --objstore.config-file "$OUT/objstore.yml" --storage.external-label "cairn=local" \
  >"$OUT/local.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$lp/-/ready"
blocks=$(grep -c '^[0-9A-Z]\{26\}' "$OUT/blocks.txt" || true)
t0=$(now_us)
for _ in $(seq 1 3000); do
  pending=$(curl -fsS "http://127.0.0.1:$lp/metrics" | awk '/^cairn_objstore_blocks_pending /{print $2}')
  uploads=$(curl -fsS "http://127.0.0.1:$lp/metrics" | awk '/^cairn_objstore_uploads_total /{print $2}')
  [ "${pending:-1}" = 0 ] && [ "${uploads:-0}" -ge 1 ] && break
  sleep 0.2
done
echo "uploaded ${uploads:-0} blocks (loadgen wrote $blocks) in $(( ($(now_us) - t0) / 1000 )) ms" >&2

bucket_cmd=(./target/release/cairn serve --storage.tsdb.path "$OUT/bucket/data"
  --web.listen-address "127.0.0.1:$bp" --storage.tsdb.downsample=false
  --objstore.config-file "$OUT/objstore.yml" --objstore.cache.dir "$OUT/bucket/cache"
  --objstore.cache.size "$CACHE" --storage.external-label "cairn=query")
mkdir -p "$OUT/bucket/data"

span=$(python3 -c "print(int($DAYS*86400))")
qstart="$(( now - span + 600 )).5"
qend="$(( now - 15 )).5"

echo "## cold: the bucket Cairn restarted with an empty cache before every run ($ROUNDS rounds)"
python3 scripts/bench_bucket_cold.py "$qstart" "$qend" "$STEP" "$ROUNDS" \
  "http://127.0.0.1:$lp" "http://127.0.0.1:$bp" "$OUT/bucket/cache" "$OUT/bucket.log" -- "${bucket_cmd[@]}"

"${bucket_cmd[@]}" >>"$OUT/bucket.log" 2>&1 &
bpid=$!
pids+=("$bpid")
wait_http "http://127.0.0.1:$bp/-/ready"
sleep 1
rest_kib=$(awk '/VmRSS/{print $2}' "/proc/$bpid/status")
# One pass fills the cache; the second is measured.
REPS=1 python3 scripts/bench_query.py "$qstart" "$qend" "$STEP" 1 \
  local="http://127.0.0.1:$lp" bucket="http://127.0.0.1:$bp" >/dev/null
echo
echo "## warm: medians of $REPS runs in rounds"
python3 scripts/bench_query.py "$qstart" "$qend" "$STEP" "$REPS" \
  local="http://127.0.0.1:$lp" bucket="http://127.0.0.1:$bp"
after_kib=$(awk '/VmRSS/{print $2}' "/proc/$bpid/status")
peak_kib=$(peak_rss_kib "$bpid")
echo
echo "bucket Cairn RSS: $((rest_kib / 1024)) MiB at rest after start, $((after_kib / 1024)) MiB after the queries (peak $((peak_kib / 1024)) MiB); cache --objstore.cache.size=$CACHE"
curl -fsS "http://127.0.0.1:$bp/metrics" | grep -E '^cairn_objstore_store_(blocks|blocks_open|index_header_bytes_total|range_requests_total|range_bytes_total|cache_bytes) '
echo "raw data in $OUT" >&2
