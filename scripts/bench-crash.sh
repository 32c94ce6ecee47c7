#!/usr/bin/env bash
# Crash during ingest (issue 14: "a kill -9 during ingest of a million
# series loses no acknowledged sample").
#
# Starts target/release/cairn serve on a fresh data dir and sends it a
# simulated GPU cluster with cairn-loadgen: NODES nodes (809 active series
# each: 1,250 nodes about 1 million), HOURS of data over CONNS connections.
# KILL_AFTER_S seconds after the load generator starts sending, the server
# is killed with kill -9. The load generator runs with
# --stop-on-failure-after STOP_AFTER_S: once a request has failed that
# long it stops and writes its acknowledgement report (--ack-out): per
# connection the requests answered 2xx, and T_ack, a time up to which
# every sample of the run was acknowledged (every series goes over one
# connection, which sends its requests one at a time in scrape order; see
# crates/loadgen/src/ack.rs). Then the server is started again on the same
# data, timed until /-/ready answers 200, and `cairn-loadgen verify-acked`
# checks through the query API that it holds exactly the samples the
# simulation generated up to T_ack, metric by metric, and, over the whole
# run, at least the samples acknowledged and at most those sent.
#
# Prints one line: acknowledged samples, T_ack, restart seconds, OK or
# FAIL (exit status 0 or 1). Files in $OUT: ack.json (the report),
# load.json / load.err (the load generator's output), verify.json (the
# check's summary: expected and found per metric), log and log.restart
# (the server's).
#
# Usage: scripts/bench-crash.sh
# Environment: NODES (1250), HOURS (0.5), CONNS (4), START_MS
# (1796567820000: the first scrape's timestamp), SLICE_MIB (256:
# cairn-loadgen --slice-mib), KILL_AFTER_S (seconds after the first slice
# starts going out; default about half the run at 1.2 M samples/s, sending
# and encoding on a 2-core machine: 49 s at 1,250 nodes and 0.5 h),
# STOP_AFTER_S (5: cairn-loadgen --stop-on-failure-after), PORT (19211),
# RESTART_TIMEOUT_S (600: longest wait for the restarted server),
# TIME_LIMIT_S (3600: the whole run; whatever is still running then is
# killed and the line says FAIL), OUT (a temp dir), BUILD (1; 0 uses the
# binaries in target/release as they are). Everything it started is
# killed when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/bench-common.sh
. scripts/lib/bench-common.sh
NODES=${NODES:-1250}
HOURS=${HOURS:-0.5}
CONNS=${CONNS:-4}
START_MS=${START_MS:-1796567820000}
SLICE_MIB=${SLICE_MIB:-256}
STOP_AFTER_S=${STOP_AFTER_S:-5}
PORT=${PORT:-19211}
RESTART_TIMEOUT_S=${RESTART_TIMEOUT_S:-600}
TIME_LIMIT_S=${TIME_LIMIT_S:-3600}
BUILD=${BUILD:-1}
OUT=${OUT:-$(mktemp -d /tmp/cairn-crash.XXXXXX)}
SAMPLES_PER_NODE_SCRAPE=789
scrapes=$(python3 -c "print(max(1, round($HOURS * 240)))")
samples=$((SAMPLES_PER_NODE_SCRAPE * NODES * scrapes))
KILL_AFTER_S=${KILL_AFTER_S:-$(python3 -c "print(max(1, round($samples / 2 / 1.2e6)))")}
deadline=$((SECONDS + TIME_LIMIT_S))

pid="" lg=""
cleanup() {
  for p in $lg $pid; do
    if kill -0 "$p" 2>/dev/null; then
      { kill -9 "$p"; wait "$p"; } 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Seconds left before TIME_LIMIT_S; fails once it is reached.
left() {
  local l=$((deadline - SECONDS))
  if [ "$l" -le 0 ]; then
    echo "TIME_LIMIT_S ($TIME_LIMIT_S) reached" >&2
    return 1
  fi
  echo "$l"
}
secs_since() {
  local now
  now=$(now_us)
  printf '%d.%02d' $(((now - $1) / 1000000)) $(((now - $1) % 1000000 / 10000))
}
fail() {
  echo "bench-crash: nodes $NODES, $HOURS h, $CONNS connections: FAIL ($1; files in $OUT)"
  exit 1
}

[ "$BUILD" = 0 ] || cargo build --release -p cairn -p cairn-loadgen >&2
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "port $PORT is already in use by another process; set PORT" >&2
  exit 2
fi
mkdir -p "$OUT"
rm -rf "$OUT/data" "$OUT/ack.json"
echo "$NODES nodes (~$((809 * NODES)) active series), $HOURS h ($samples samples), kill -9 ${KILL_AFTER_S}s after sending starts; files in $OUT" >&2

start_target cairn "$OUT" "$PORT" "$OUT/log"
wait_http "$ready"
rc=0
./target/release/cairn-loadgen --url "http://127.0.0.1:$PORT/api/v1/write" --nodes "$NODES" \
  --hours "$HOURS" --connections "$CONNS" --start-ms "$START_MS" --slice-mib "$SLICE_MIB" \
  --stop-on-failure-after "$STOP_AFTER_S" --ack-out "$OUT/ack.json" --json \
  >"$OUT/load.json" 2>"$OUT/load.err" &
lg=$!

# The first slice is encoded before anything is sent.
until grep -q '^sending slice 1 ' "$OUT/load.err" 2>/dev/null; do
  kill -0 "$lg" 2>/dev/null || fail "the load generator exited before sending; see $OUT/load.err"
  left >/dev/null || fail "time limit reached before sending started"
  sleep 0.1
done
l=$(left) || fail "time limit reached"
python3 -c "import time; time.sleep(min($KILL_AFTER_S, $l))"
ended_before_kill=0
kill -0 "$lg" 2>/dev/null || ended_before_kill=1
{ kill -9 "$pid"; wait "$pid"; } 2>/dev/null || true
echo "killed the server ${KILL_AFTER_S}s after sending started" >&2

# The load generator stops STOP_AFTER_S after its requests start failing.
while kill -0 "$lg" 2>/dev/null; do
  left >/dev/null || fail "the load generator did not stop"
  sleep 0.2
done
wait "$lg" || rc=$?
lg=""
[ -s "$OUT/ack.json" ] || fail "no acknowledgement report (load generator exit $rc; see $OUT/load.err)"
if [ "$ended_before_kill" = 1 ] || [ "$rc" != 3 ]; then
  echo "warning: the run ended before the kill (load generator exit $rc): the check covers a finished run" >&2
fi

t0=$(now_us)
start_target cairn "$OUT" "$PORT" "$OUT/log.restart"
restart_s=""
limit=$RESTART_TIMEOUT_S
l=$(left) || fail "time limit reached before the restart"
[ "$l" -lt "$limit" ] && limit=$l
while :; do
  if curl -fsS -o /dev/null --max-time 5 "$ready" 2>/dev/null; then
    restart_s=$(secs_since "$t0")
    break
  fi
  kill -0 "$pid" 2>/dev/null || fail "the server exited during the restart; see $OUT/log.restart"
  [ $(($(now_us) - t0)) -le $((limit * 1000000)) ] || fail "not ready ${limit}s after the restart"
  sleep 0.1
done
echo "ready ${restart_s}s after the restart" >&2

vrc=0
l=$(left) || fail "time limit reached before the check"
timeout -k 10 "$l" ./target/release/cairn-loadgen verify-acked --ack "$OUT/ack.json" \
  --url "http://127.0.0.1:$PORT" >"$OUT/verify.json" 2>"$OUT/verify.err" || vrc=$?
[ -s "$OUT/verify.json" ] || fail "verify-acked printed nothing (exit $vrc; see $OUT/verify.err)"
python3 - "$OUT/ack.json" "$OUT/verify.json" "$NODES" "$HOURS" "$CONNS" "$KILL_AFTER_S" "$restart_s" "$vrc" <<'PY'
import json, sys
ack, ver = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
nodes, hours, conns, kill_s, restart_s, vrc = sys.argv[3:9]
ok = ver["ok"] and vrc == "0"
t_ms, step = ack["t_ack_ms"], ack["ack_step"]
first = ack["simulation"]["first_scrape"]
scrapes = ack["simulation"]["scrapes"]
t_ack = "none" if t_ms is None else f"{t_ms} (scrape {step - first + 1} of {scrapes})"
print(f"bench-crash: nodes {nodes}, {hours} h, {conns} connections, kill -9 after {kill_s}s of sending: "
      f"{ack['samples_acked']} samples acknowledged of {ack['samples_sent']} sent, "
      f"T_ack {t_ack}, {ver['found_through_t_ack']} of {ver['expected_through_t_ack']} samples up to T_ack found, "
      f"{ver['found_in_run']} in the run, restart {restart_s}s: {'OK' if ok else 'FAIL'}")
for p in ver["problems"][:10]:
    print("  " + p)
sys.exit(0 if ok else 1)
PY
