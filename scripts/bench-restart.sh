#!/usr/bin/env bash
# Restart time of `cairn serve` with a full head (issue 14: "ready within
# 60 s with ten million active series and two hours of data in the head").
#
# fill_head (benches/src/bin/fill_head.rs) fills a data directory with the
# simulated GPU cluster (NODES nodes, HOURS hours up to now, 15 s scrapes,
# pod churn) by appending straight into the head with its WAL, then writes
# the head snapshot as `cairn serve` does on SIGTERM. Then, ROUNDS times:
# `cairn serve` is started on it and timed until /-/ready answers 200; the
# log must say the head came from the snapshot; the series with a sample in
# the last 5 minutes are counted and must equal the cluster's active
# series; SIGTERM stops it (timed: it writes the snapshot again).
#
#   NODES=12500 HOURS=2 FILL_ARGS="--no-spill --drop-wal" scripts/bench-restart.sh
#
# FILL_ARGS: see fill_head (--drop-wal keeps the WAL at two segments so that
# 10 M series x 2 h fit on a small disk; a start from the snapshot lists the
# WAL directory and reads nothing in it). REUSE=1 skips the fill and uses
# what OUT/data holds. CRASH=1 also times a start without the snapshot (as
# after kill -9: the chunk files are scanned and the WAL replayed), last.
# Results: OUT/restart.tsv, and the medians on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/bench-common.sh
source scripts/lib/bench-common.sh

NODES=${NODES:-1000}
HOURS=${HOURS:-2}
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-/tmp/cairn-bench-restart}
PORT=${PORT:-19401}
LIMIT=${LIMIT:-1800}
BUILD=${BUILD:-1}
FILL_ARGS=${FILL_ARGS:-}

if [ "$BUILD" != 0 ]; then
  cargo build --release --bin cairn
  cargo build --release -p cairn-benches --bin fill_head
fi
mkdir -p "$OUT"
if [ -z "${REUSE:-}" ]; then
  rm -rf "$OUT/data"
  # shellcheck disable=SC2086
  ./target/release/fill_head --dir "$OUT/data" --nodes "$NODES" --hours "$HOURS" $FILL_ARGS \
    >"$OUT/fill.json" 2>"$OUT/fill.err"
  cat "$OUT/fill.json"
fi

pid=""
trap '[ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true' EXIT

# The head's newest sample time (ms), from /api/v1/status/tsdb.
head_max_ms() {
  curl -fsS --max-time 60 "http://127.0.0.1:$PORT/api/v1/status/tsdb" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["headStats"]["maxTime"])'
}

# Series whose newest sample is at time $1 (ms), the newest scrape.
active_at() {
  curl -fsS --max-time 600 "http://127.0.0.1:$PORT/api/v1/query" \
    --data-urlencode 'query=count(last_over_time({__name__=~".+"}[1s]))' \
    --data-urlencode "time=$(python3 -c "print($1 / 1000)")" 2>/dev/null |
    python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(int(float(r[0]["value"][1])) if r else 0)' 2>/dev/null || echo error
}

printf 'round\tready_s\tready_peak_mib\tfrom_snapshot\tactive_series\tstop_s\n' >"$OUT/restart.tsv"
one_round() {
  local r=$1 log="$OUT/log.$1" t0 now at from_snapshot active
  rm -f "$log"
  start_and_time_ready cairn "$OUT" "$PORT" "$log" "$LIMIT"
  [ "$ready_s" != - ] || { echo "round $r: not ready" >&2; return 1; }
  from_snapshot=no
  ! grep -q "loaded from its snapshot" "$log" || from_snapshot=yes
  at=$(head_max_ms)
  active=$(active_at "$at")
  t0=$(now_us)
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  now=$(now_us)
  pid=""
  stop_s=$(printf '%d.%02d' $(((now - t0) / 1000000)) $(((now - t0) % 1000000 / 10000)))
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$ready_s" "$ready_peak_mib" "$from_snapshot" "$active" "$stop_s" |
    tee -a "$OUT/restart.tsv"
}
for r in $(seq 1 "$ROUNDS"); do
  one_round "$r"
done
if [ -n "${CRASH:-}" ]; then
  rm -f "$OUT/data/head_snapshot"
  one_round crash
fi
python3 - "$OUT/restart.tsv" <<'EOF'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if r["round"] != "crash"]
if rows:
    med = lambda k: statistics.median(float(r[k]) for r in rows)
    print(f"median of {len(rows)}: ready {med('ready_s'):.2f} s, peak {med('ready_peak_mib'):.0f} MiB, "
          f"stop {med('stop_s'):.2f} s; from the snapshot: {sum(r['from_snapshot'] == 'yes' for r in rows)}; "
          f"active series: {sorted(set(r['active_series'] for r in rows))}")
EOF
