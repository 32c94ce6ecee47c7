#!/usr/bin/env bash
# Scale benchmark (issue 14): scripts/bench-ingest.sh once per node count and
# target, with the load generator simulating NODES_LIST nodes (809 active
# series per node: 1,000 nodes about 0.8 million, 5,000 about 4 million,
# 12,500 about 10 million), each target also crashed and restarted
# (RESTART=1 there: kill -9 after the ingest figures, the same server started
# on the same data, timed until it answers ready, its series counted before
# and after).
#
# Per node count it prints a table (and appends to $OUT/scale.tsv): target,
# active series (counted by count({__name__=~".+"}) at the last sample's
# time), samples/s, server CPU µs per sample, peak RSS (VmHWM) when ingest
# ends and after the verifying queries, KiB of ingest peak RSS per active
# series, restart seconds, peak RSS of the restarted process once ready, and
# whether it holds the same series as before the kill.
#
# A target runs only where it fits: the estimate, ~KiB per active series for
# the server (cairn 1.4, victoriametrics 1.2, prometheus 4) plus the load
# generator, which encodes and sends the run in slices of at most SLICE_MIB
# of requests (peak RSS ~one slice + 32 bytes per distinct series + 6 MiB
# per CPU, one encoding thread each, + 64 MiB, whatever HOURS; 208 of a node's 809 series are replaced every hour by pod
# churn), must be below MemAvailable minus 2 GiB, read just before the
# target starts; otherwise a "skipped" line says why.
#
# Usage: scripts/bench-scale.sh
# Environment: NODES_LIST ("1000 5000 12500"), HOURS (0.5), CONNS (4),
# START_MS (1796567820000: the same point of the 2 h chunk range in every
# run, so open chunks are equally full when RSS is read), TARGETS ("cairn
# victoriametrics"; prometheus also works), SLICE_MIB (256: cairn-loadgen
# --slice-mib), OUT (a temp dir), PORT_BASE (as bench-ingest.sh), RESTART_TIMEOUT_S (600: longest wait for a restart),
# TIME_LIMIT_S (21600: the whole run; a target still running then is
# stopped, and no further one starts).
set -euo pipefail
cd "$(dirname "$0")/.."
NODES_LIST=${NODES_LIST:-"1000 5000 12500"}
HOURS=${HOURS:-0.5}
CONNS=${CONNS:-4}
START_MS=${START_MS:-1796567820000}
TARGETS=${TARGETS:-"cairn victoriametrics"}
OUT=${OUT:-$(mktemp -d /tmp/cairn-scale.XXXXXX)}
RESTART_TIMEOUT_S=${RESTART_TIMEOUT_S:-600}
TIME_LIMIT_S=${TIME_LIMIT_S:-21600}
SLICE_MIB=${SLICE_MIB:-256}
SERIES_PER_NODE=809
SAMPLES_PER_NODE_SCRAPE=789
# Series a node's pods add per hour (8 GPUs x 26 DCGM series, a new pod each
# hour at cairn-loadgen's default --pod-lifetime).
CHURN_SERIES_PER_NODE_HOUR=208
# The load generator's set of the distinct series seen (8-byte label hashes
# in a hash table: 12-18 bytes a series, up to 32 while the table doubles).
LOADGEN_BYTES_PER_SERIES=32
# Each encoding thread's round of nodes (cairn-loadgen --encode-threads,
# one per CPU by default).
LOADGEN_KIB_PER_THREAD=6144
HEADROOM_KIB=$((2 * 1024 * 1024))
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
TSV=$OUT/scale.tsv

child=""
cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    # timeout(1) passes the signal on to bench-ingest.sh and everything it started.
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/install-deps.sh
# Built once, niced; bench-ingest.sh then uses these binaries (BUILD=0).
nice -n 10 cargo build --release -p cairn -p cairn-loadgen >&2

kib_per_series() {
  case $1 in
    cairn) echo 1.4 ;; victoriametrics) echo 1.2 ;; prometheus) echo 4 ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
  esac
}
mem_available_kib() { awk '/^MemAvailable:/{print $2}' /proc/meminfo; }
gib() { python3 -c "print(f'{$1 / 1048576:.1f}')"; }

printf '%s\t' nodes target status active_series samples_per_s cpu_us_per_sample ingest_peak_mib \
  verify_peak_mib kib_per_active_series restart_s restart_peak_mib series_after_restart \
  stop_s graceful_restart_s graceful_peak_mib series_after_graceful >"$TSV"
printf 'verified_samples\n' >>"$TSV"

fmt='%-16s %10s %11s %10s %10s %11s %10s %9s %11s %14s %7s %10s %10s %14s\n'
deadline=$((SECONDS + TIME_LIMIT_S))
for n in $NODES_LIST; do
  series=$((SERIES_PER_NODE * n))
  samples=$(python3 -c "print(round($SAMPLES_PER_NODE_SCRAPE * $n * max(1, round($HOURS * 240))))")
  distinct=$(python3 -c "print(round($n * ($SERIES_PER_NODE + $CHURN_SERIES_PER_NODE_HOUR * $HOURS)))")
  loadgen_kib=$((SLICE_MIB * 1024 + (distinct * LOADGEN_BYTES_PER_SERIES >> 10) + $(nproc) * LOADGEN_KIB_PER_THREAD + 65536))
  mkdir -p "$OUT/nodes-$n"
  lines=()
  for t in $TARGETS; do
    need_kib=$(python3 -c "print(round($series * $(kib_per_series "$t")) + $loadgen_kib)")
    avail=$(mem_available_kib)
    if [ "$need_kib" -gt $((avail - HEADROOM_KIB)) ]; then
      msg="skipped (needs ~$(gib "$need_kib") GiB, MemAvailable $(gib "$avail") GiB; load generator ~$(gib "$loadgen_kib") GiB of it)"
      echo "$n nodes, $t: $msg" >&2
      lines+=("$(printf '%-16s %s' "$t" "$msg")")
      printf '%s\t%s\tskipped\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n' "$n" "$t" >>"$TSV"
      continue
    fi
    left=$((deadline - SECONDS))
    if [ "$left" -lt 60 ]; then
      echo "$n nodes, $t: not started, TIME_LIMIT_S ($TIME_LIMIT_S) reached" >&2
      lines+=("$(printf '%-16s %s' "$t" "not run: time limit reached")")
      printf '%s\t%s\ttime-limit\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n' "$n" "$t" >>"$TSV"
      continue
    fi
    echo "$n nodes, $t: running (~$series active series, ~$samples samples; log in $OUT/nodes-$n/$t.err)" >&2
    rows=0
    [ -s "$RAW" ] && rows=$(($(wc -l <"$RAW") - 1))
    rc=0
    NODES=$n HOURS=$HOURS CONNS=$CONNS START_MS=$START_MS SLICE_MIB=$SLICE_MIB SNAPSHOT=0 DISK=0 RESTART=1 BUILD=0 \
      RESTART_TIMEOUT_S=$RESTART_TIMEOUT_S RESULTS_TSV=$RAW OUT=$OUT/nodes-$n \
      timeout -k 30 "$left" bash scripts/bench-ingest.sh "$t" \
      >"$OUT/nodes-$n/$t.out" 2>"$OUT/nodes-$n/$t.err" &
    child=$!
    wait "$child" || rc=$?
    child=""
    now_rows=0
    [ -s "$RAW" ] && now_rows=$(($(wc -l <"$RAW") - 1))
    if [ "$rc" -ne 0 ] || [ "$now_rows" -le "$rows" ]; then
      why="failed (exit $rc; see $OUT/nodes-$n/$t.err)"
      [ "$rc" = 124 ] && why="stopped at TIME_LIMIT_S"
      echo "$n nodes, $t: $why" >&2
      lines+=("$(printf '%-16s %s' "$t" "$why")")
      printf '%s\t%s\tfailed\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n' "$n" "$t" >>"$TSV"
      continue
    fi
    row=$(tail -n 1 "$RAW")
    IFS=$'\t' read -r _ _ _ sent _ rate cpu ingest verify _ verified before restart rpeak after \
      stop graceful gpeak gafter <<<"$row"
    active=$before kib="-"
    if [[ $before =~ ^[0-9]+$ ]] && [ "$before" -gt 0 ]; then
      kib=$(python3 -c "print(f'{$ingest * 1024 / $before:.2f}')")
    fi
    if [[ $before =~ ^[0-9]+$ ]] && [ "$after" = "$before" ]; then ok=OK; else ok="FAIL($after)"; fi
    if [[ $before =~ ^[0-9]+$ ]] && [ "$gafter" = "$before" ]; then gok=OK; else gok="FAIL($gafter)"; fi
    lines+=("$(printf "$fmt" "$t" "$active" "$rate" "$cpu" "$ingest" "$verify" "$kib" "$restart" "$rpeak" "$ok" \
      "$stop" "$graceful" "$gpeak" "$gok")")
    printf '%s\t' "$n" "$t" ran "$active" "$rate" "$cpu" "$ingest" "$verify" "$kib" "$restart" "$rpeak" "$ok" \
      "$stop" "$graceful" "$gpeak" "$gok" >>"$TSV"
    printf '%s\n' "${verified%.*}/$sent" >>"$TSV"
    if [ "${verified%.*}" != "$sent" ]; then
      lines+=("  (only $verified of $sent samples read back; see $OUT/nodes-$n/$t.err)")
    fi
  done
  echo
  echo "== $n nodes (~$series active series), $HOURS h from $START_MS, $CONNS connections"
  # shellcheck disable=SC2059
  printf "$fmt" target active_ser samples/s cpu_us/smp ingest_MiB +verify_MiB KiB/series restart_s restart_MiB series_after \
    stop_s graceful_s graceful_MiB series_graceful
  printf '%s\n' "${lines[@]}"
done
echo
echo "results in $TSV (raw: $RAW)" >&2
