#!/usr/bin/env bash
# Chunk-encoding benchmark: the bytes per sample of compacted blocks in
# Cairn's dense, XOR and XOR2 encodings against VictoriaMetrics 1.79.5
# after its merge, on the same simulated GPU-cluster data sent in one run;
# the offline compaction's time and peak RSS per encoding; and range-query
# times over the dense blocks against the same data in XOR blocks.
#
# Per jitter setting (JITTERS, default "25 0": each target's scrapes up to
# that many ms late, see cairn-loadgen --jitter-ms):
#  1. cairn serve and VictoriaMetrics are fed HOURS (6) of NODES (100)
#     nodes at a 15 s scrape by one cairn-loadgen run (2 h slices), ending
#     on a multiple of 6 h so that three 2 h blocks make one compacted block.
#  2. Cairn is stopped and its data directory copied once per encoding;
#     `cairn tsdb compact --chunk-encoding E --downsample=false` cuts the
#     head (2 h XOR blocks, as the server cuts them) and compacts them.
#     Reported: bytes per sample of the compacted blocks (level > 1) and of
#     the whole directory's blocks, compaction seconds, samples per second
#     per core (the compactor is single-threaded) and peak RSS.
#  3. VictoriaMetrics: /internal/force_merge of the month, wait until it
#     holds one part and no merge runs, stop; reported: data + indexdb
#     bytes per sample, and its whole -storageDataPath (which adds its
#     persisted caches).
#  4. cairn serve on the dense and the XOR directory (downsampling off,
#     so both read the same raw blocks), scripts/bench_query.py in rounds
#     (REPS, STEP), over the whole span.
# Environment: NODES (100), HOURS (6), JITTERS ("25 0"), REPS (5), STEP
# (60), OUT (a temp dir), ENCODINGS ("dense xor xor2").
set -euo pipefail
cd "$(dirname "$0")/.."
NODES=${NODES:-100}
HOURS=${HOURS:-6}
JITTERS=${JITTERS:-"25 0"}
REPS=${REPS:-5}
STEP=${STEP:-60}
ENCODINGS=${ENCODINGS:-"dense xor xor2"}
OUT=${OUT:-$(mktemp -d /tmp/cairn-encbench.XXXXXX)}

bash scripts/install-deps.sh
cargo build --release -p cairn -p cairn-loadgen >&2
wait_http() {
  for _ in $(seq 1 150); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.2; done
  echo "timed out waiting for $1" >&2; return 1
}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
du_b() { du -sb "$@" | awk '{s+=$1} END{print s+0}'; }
# Bytes per sample of the blocks of $1 whose compaction level is at least $2.
blocks_bps() {
  python3 - "$1" "$2" <<'PY'
import json, os, sys
d, lvl = sys.argv[1], int(sys.argv[2])
def du(p): return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(p) for f in fs)
n = b = 0
for x in os.listdir(d):
    m = os.path.join(d, x, "meta.json")
    if os.path.exists(m):
        j = json.load(open(m))
        if j["compaction"]["level"] >= lvl and "thanos" not in j:
            n += j["stats"]["numSamples"]; b += du(os.path.join(d, x))
print(f"{b / n:.3f}" if n else "none")
PY
}

printf '%-7s %-16s %12s %12s %9s %13s %9s\n' jitter target compacted_B/s all_B/s secs Msmp/s/core peak_MiB
for J in $JITTERS; do
  dir="$OUT/j$J"; rm -rf "$dir"; mkdir -p "$dir"
  ./target/release/cairn serve --storage.tsdb.path "$dir/cairn" --web.listen-address 127.0.0.1:19211 \
    --storage.tsdb.retention.time=0 >"$dir/cairn.log" 2>&1 &
  cpid=$!; pids+=($cpid)
  victoria-metrics -storageDataPath="$dir/vm" -httpListenAddr=127.0.0.1:18438 -retentionPeriod=10y \
    -search.latencyOffset=0s -search.disableCache >"$dir/vm.log" 2>&1 &
  vpid=$!; pids+=($vpid)
  wait_http http://127.0.0.1:19211/-/ready
  wait_http http://127.0.0.1:18438/health
  six=$((6 * 3600))
  end=$(( $(date +%s) / six * six ))
  start_ms=$(( (end - HOURS * 3600) * 1000 ))
  for i in $(seq 0 2 $((HOURS - 1))); do
    h=$(( HOURS - i < 2 ? HOURS - i : 2 ))
    ./target/release/cairn-loadgen --url http://127.0.0.1:19211/api/v1/write --url http://127.0.0.1:18438/api/v1/write \
      --nodes "$NODES" --hours "$h" --skip-hours "$i" --start-ms "$start_ms" --jitter-ms "$J" \
      --connections 4 --json >"$dir/load-$i.json"
  done
  # cairn-loadgen's "samples" counts what each receiver got.
  samples=$(python3 -c "import json,glob; print(sum(json.load(open(f))['samples'] for f in glob.glob('$dir/load-*.json')))")
  kill "$cpid"; wait "$cpid" 2>/dev/null || true
  # VictoriaMetrics: merge, wait for quiet, stop.
  curl -fsS http://127.0.0.1:18438/internal/force_flush >/dev/null || true
  curl -fsS "http://127.0.0.1:18438/internal/force_merge?partition_prefix=$(date -u -d "@$end" +%Y_%m)" >/dev/null || true
  curl -fsS "http://127.0.0.1:18438/internal/force_merge?partition_prefix=$(date -u -d "@$((end - HOURS * 3600))" +%Y_%m)" >/dev/null || true
  # Done when every month holds one part (small and big together) and no
  # merge runs, or after 10 minutes.
  for _ in $(seq 1 600); do
    parts=$(find "$dir/vm/data/small" "$dir/vm/data/big" -mindepth 2 -maxdepth 2 -type d \
      ! -name tmp ! -name txn ! -path '*/snapshots/*' | wc -l)
    a=$(curl -fsS http://127.0.0.1:18438/metrics | awk '/^vm_active_merges/{s+=$2} END{print s+0}')
    [ "$parts" -le 1 ] && [ "$a" = 0 ] && break
    # Parts flushed after the first call need another.
    if [ "$a" = 0 ] && [ $((SECONDS % 10)) = 0 ]; then
      curl -fsS "http://127.0.0.1:18438/internal/force_merge?partition_prefix=$(date -u -d "@$end" +%Y_%m)" >/dev/null || true
    fi
    sleep 1
  done
  kill "$vpid"; wait "$vpid" 2>/dev/null || true
  vm_core=$(du_b "$dir/vm/data" "$dir/vm/indexdb")
  vm_all=$(du_b "$dir/vm")
  printf '%-7s %-16s %12s %12s %9s %13s %9s\n' "$J" victoriametrics \
    "$(python3 -c "print(f'{$vm_core/$samples:.3f}')")" "$(python3 -c "print(f'{$vm_all/$samples:.3f}')")" - - -
  for E in $ENCODINGS; do
    rm -rf "$dir/$E"; cp -a "$dir/cairn" "$dir/$E"
    /usr/bin/time -f "%e %M" -o "$dir/$E.time" ./target/release/cairn tsdb compact --chunk-encoding "$E" \
      --downsample=false "$dir/$E" >"$dir/$E.out" 2>&1
    read -r secs kib <"$dir/$E.time"
    printf '%-7s %-16s %12s %12s %9s %13s %9s\n' "$J" "cairn-$E" "$(blocks_bps "$dir/$E" 2)" "$(blocks_bps "$dir/$E" 1)" \
      "$secs" "$(python3 -c "print(f'{$samples/$secs/1e6:.2f}')")" "$((kib / 1024))"
  done
  # Range queries: dense blocks against the same data in XOR blocks.
  if [[ " $ENCODINGS " == *" dense "* && " $ENCODINGS " == *" xor "* ]]; then
    ./target/release/cairn serve --storage.tsdb.path "$dir/dense" --web.listen-address 127.0.0.1:19212 \
      --storage.tsdb.retention.time=0 --storage.tsdb.downsample=false >"$dir/q-dense.log" 2>&1 &
    d=$!; pids+=($d)
    ./target/release/cairn serve --storage.tsdb.path "$dir/xor" --web.listen-address 127.0.0.1:19213 \
      --storage.tsdb.retention.time=0 --storage.tsdb.downsample=false >"$dir/q-xor.log" 2>&1 &
    x=$!; pids+=($x)
    wait_http http://127.0.0.1:19212/-/ready
    wait_http http://127.0.0.1:19213/-/ready
    qstart="$(( end - HOURS * 3600 + 600 )).5"
    qend="$(( end - 15 )).5"
    echo "jitter $J: range queries, ${HOURS} h at step ${STEP} s (ms, medians of $REPS in rounds)"
    python3 scripts/bench_query.py "$qstart" "$qend" "$STEP" "$REPS" \
      cairn-xor=http://127.0.0.1:19213 cairn-dense=http://127.0.0.1:19212
    kill "$d" "$x"; wait "$d" "$x" 2>/dev/null || true
  fi
done
echo "raw results in $OUT" >&2
