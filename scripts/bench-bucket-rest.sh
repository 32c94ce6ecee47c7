#!/usr/bin/env bash
# Memory of a Cairn that serves many bucket blocks (issue 17's target: a
# query-mode Cairn with 1,000 blocks in the bucket under 512 MiB at rest).
# `cairn-loadgen blocks` writes BLOCKS two-hour blocks of NODES simulated
# nodes; a Cairn uploads them all to a loopback Garage bucket; a second
# Cairn on an empty data directory lists them. Prints its RSS at rest
# after the listing, then after a query over every block (which opens
# them all: index headers fetched, postings offset tables in memory), and
# that query's time.
#
# Usage: scripts/bench-bucket-rest.sh   Environment: BLOCKS (1000), NODES (1),
# OUT (a temp dir), BUILD (1), CAIRN_GARAGE_ROOT (as scripts/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/bench-common.sh
. scripts/lib/bench-common.sh
BLOCKS=${BLOCKS:-1000}
NODES=${NODES:-1}
BUILD=${BUILD:-1}
OUT=${OUT:-$(mktemp -d /tmp/cairn-bench-rest.XXXXXX)}
mkdir -p "$OUT"
[ "$BUILD" = 0 ] || cargo build --release -p cairn -p cairn-loadgen --bin cairn --bin cairn-loadgen >&2

now=$(date +%s)
days=$(python3 -c "print($BLOCKS / 12)")
./target/release/cairn-loadgen blocks --out "$OUT/local/data" --nodes "$NODES" --days "$days" \
  --interval 30s --block-hours 2 --end "$now" >"$OUT/blocks.txt"
tail -1 "$OUT/blocks.txt" >&2

start_garage "$OUT" 19491
pids=("$gpid")
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
garage_objstore_yml "$OUT/objstore.yml" rest

lp=19493
bp=19494
./target/release/cairn serve --storage.tsdb.path "$OUT/local/data" --web.listen-address "127.0.0.1:$lp" \
  --storage.tsdb.downsample=false --storage.tsdb.max-block-duration=2h --storage.tsdb.retention.time=0s \
  --objstore.config-file "$OUT/objstore.yml" --storage.external-label "cairn=local" --objstore.no-query \
  >"$OUT/local.log" 2>&1 &
lpid=$!
pids+=("$lpid")
wait_http "http://127.0.0.1:$lp/-/ready"
t0=$(now_us)
for _ in $(seq 1 6000); do
  pending=$(curl -fsS "http://127.0.0.1:$lp/metrics" | awk '/^cairn_objstore_blocks_pending /{print $2}')
  [ "${pending:-1}" = 0 ] && break
  sleep 0.5
done
echo "uploaded in $(( ($(now_us) - t0) / 1000 )) ms" >&2
kill "$lpid"; wait "$lpid" 2>/dev/null || true

mkdir -p "$OUT/bucket/data"
./target/release/cairn serve --storage.tsdb.path "$OUT/bucket/data" --web.listen-address "127.0.0.1:$bp" \
  --storage.tsdb.downsample=false --objstore.config-file "$OUT/objstore.yml" \
  --objstore.cache.dir "$OUT/bucket/cache" --storage.external-label "cairn=query" >"$OUT/bucket.log" 2>&1 &
bpid=$!
pids+=("$bpid")
wait_http "http://127.0.0.1:$bp/-/ready"
sleep 2
served=$(curl -fsS "http://127.0.0.1:$bp/metrics" | awk '/^cairn_objstore_store_blocks /{print $2}')
rest=$(awk '/VmRSS/{print $2}' "/proc/$bpid/status")
echo "blocks served: $served; RSS at rest: $((rest / 1024)) MiB"
span=$(python3 -c "print(int($days * 86400))")
t0=$(now_us)
curl -fsS -o "$OUT/q.json" "http://127.0.0.1:$bp/api/v1/query_range" \
  --data-urlencode 'query=max(DCGM_FI_DEV_GPU_TEMP)' -d "start=$((now - span + 600))" -d "end=$((now - 60))" -d step=3600
took=$(( ($(now_us) - t0) / 1000 ))
after=$(awk '/VmRSS/{print $2}' "/proc/$bpid/status")
points=$(python3 -c "import json; r=json.load(open('$OUT/q.json'))['data']['result']; print(len(r[0]['values']) if r else 0)")
echo "query over every block: $took ms, $points points; RSS after: $((after / 1024)) MiB (peak $(( $(peak_rss_kib "$bpid") / 1024 )) MiB)"
curl -fsS "http://127.0.0.1:$bp/metrics" | grep -E '^cairn_objstore_store_(blocks_open|index_header_bytes_total|range_requests_total|range_bytes_total|cache_bytes) '
echo "raw data in $OUT" >&2
