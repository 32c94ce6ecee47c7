#!/usr/bin/env bash
# Side-by-side remote-write ingest benchmark: Cairn, Prometheus 2.42
# (--web.enable-remote-write-receiver) and VictoriaMetrics 1.79.5, all on
# 127.0.0.1, fed the same pre-encoded GPU-cluster load by cairn-loadgen in one run.
#
# Reports per target: samples/s, server CPU µs per sample (utime+stime of the
# server process while the requests are sent, read by cairn-loadgen before it
# verifies), peak RSS (VmHWM) when sending ends ("ingest") and at the end
# ("+verify", which adds the verification queries over all the data), disk
# bytes per sample, and whether every sample was found again through the
# query API.
#
# Disk bytes per sample: VictoriaMetrics's whole store, after a forced merge
# of the partitions written (/internal/force_merge) has finished. Cairn and Prometheus
# cut their first block only once the head spans 1.5 block ranges (3 h), so
# with SNAPSHOT=1 (the default) and no block on disk, the script asks each
# for a snapshot through the admin API (POST /api/v1/admin/tsdb/snapshot,
# both started with --web.enable-admin-api), which writes the head out as a
# compacted block, and reports the snapshot's blocks (index, chunks,
# meta.json, tombstones) divided by their numSamples, marked "(snap)". The
# snapshot is taken after CPU and peak RSS were read.
#
# Usage: scripts/bench-ingest.sh [TARGET...]   (targets: cairn prometheus victoriametrics)
# Environment: NODES (100), HOURS (2), CONNS (8), BATCH (2000), SLICE_MIB
# (256: cairn-loadgen --slice-mib, the requests encoded at a time; each
# slice is encoded before it is sent, and the rate and CPU figures cover
# the sending), SNAPSHOT (1),
# JITTER_MS (0: each target's scrapes late by up to this many ms, as real
# scrapes are; see cairn-loadgen --jitter-ms),
# START_MS (unset: the data ends now; set: the first scrape's timestamp, so
# that runs put the data at the same place in the 2 h chunk range, which
# sets how full the open head chunks are when RSS is read; docs/head.md),
# OUT (a temp dir), PORT_BASE (ports 19201, 19090, 18428 unless set).
#
# For scripts/bench-scale.sh, off by default: DISK=0 skips the disk figure
# (no snapshot, no forced merge; "-" in its column). RESTART=1 crashes and
# restarts each target after the ingest figures were read (before any
# snapshot): the series at the last sample's time (count({__name__=~".+"})),
# kill -9, the same server started again on the same data, seconds until it
# answers ready (at most RESTART_TIMEOUT_S, 600), its VmHWM then and the series
# counted again; then a graceful restart (SIGTERM timed until the process
# exits, started again, timed until ready, series counted: Cairn's head
# snapshot) (scripts/lib/bench-common.sh). RESULTS_TSV=file appends one
# tab-separated line per target (a header first when the file is empty).
# BUILD=0 uses the binaries in target/release as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib/bench-common.sh
. scripts/lib/bench-common.sh
NODES=${NODES:-100}
HOURS=${HOURS:-2}
CONNS=${CONNS:-8}
BATCH=${BATCH:-2000}
SLICE_MIB=${SLICE_MIB:-256}
SNAPSHOT=${SNAPSHOT:-1}
JITTER_MS=${JITTER_MS:-0}
DISK=${DISK:-1}
RESTART=${RESTART:-0}
RESTART_TIMEOUT_S=${RESTART_TIMEOUT_S:-600}
RESULTS_TSV=${RESULTS_TSV:-}
BUILD=${BUILD:-1}
OUT=${OUT:-$(mktemp -d /tmp/cairn-bench.XXXXXX)}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(cairn prometheus victoriametrics)

bash scripts/install-deps.sh
pkgs=(-p cairn-loadgen)
[[ " ${targets[*]} " == *" cairn "* ]] && pkgs+=(-p cairn)
[ "$BUILD" = 0 ] || cargo build --release "${pkgs[@]}" >&2
CLK=$(getconf CLK_TCK)
if [ -n "$RESULTS_TSV" ] && [ ! -s "$RESULTS_TSV" ]; then
  printf '%s\t' target nodes hours samples series_sent samples_per_s cpu_us_per_sample \
    ingest_peak_mib verify_peak_mib disk_b_per_sample verified_samples series_before \
    restart_s restart_peak_mib series_after stop_s graceful_restart_s graceful_peak_mib >"$RESULTS_TSV"
  printf 'series_graceful\n' >>"$RESULTS_TSV"
fi

printf '%-16s %12s %10s %11s %12s %12s %10s\n' target samples/s cpu_us/smp ingest_MiB +verify_MiB disk_B/smp verified
for t in "${targets[@]}"; do
  dir="$OUT/$t"; rm -rf "$dir"; mkdir -p "$dir"
  case $t in
    cairn) port=19201 ;; prometheus) port=19090 ;; victoriametrics) port=18428 ;;
  esac
  [ -n "${PORT_BASE:-}" ] && port=$((PORT_BASE + ${#t}))
  # Another server on the port would take the load in our stead.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is already in use by another process; set PORT_BASE" >&2
    exit 2
  fi
  start_target "$t" "$dir" "$port" "$dir/log" || exit 2
  trap 'kill $pid 2>/dev/null || true' EXIT
  wait_http "$ready"
  verify=(--verify-url "http://127.0.0.1:$port")
  [ "$t" = victoriametrics ] && verify+=(--flush-url "http://127.0.0.1:$port/internal/force_flush")
  ./target/release/cairn-loadgen --url "http://127.0.0.1:$port/api/v1/write" --nodes "$NODES" --hours "$HOURS" \
    --jitter-ms "$JITTER_MS" ${START_MS:+--start-ms "$START_MS"} --connections "$CONNS" --batch "$BATCH" --slice-mib "$SLICE_MIB" --server-pid "$pid" --json "${verify[@]}" >"$dir/load.json" 2>"$dir/load.err" || true
  samples=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["samples"])' "$dir/load.json")
  rate=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["samples_per_second"]))' "$dir/load.json")
  verified=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verified_samples"])' "$dir/load.json")
  rss=$(peak_rss_kib $pid)
  ticks=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server_cpu_ticks"])' "$dir/load.json")
  cpu_us=$(python3 -c "print(round($ticks/$CLK*1e6/$samples, 2))")
  ingest_rss=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server_peak_rss_kib"] // 1024)' "$dir/load.json")
  series_before=- restart_s=- restart_peak_mib=- series_after=-
  stop_s=- graceful_s=- graceful_peak_mib=- series_graceful=-
  if [ "$RESTART" = 1 ]; then
    end_ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["end_ms"])' "$dir/load.json")
    crash_restart "$t" "$dir" "$port" "$end_ms" "$RESTART_TIMEOUT_S"
    graceful_restart "$t" "$dir" "$port" "$end_ms" "$RESTART_TIMEOUT_S"
  fi
  snap=""
  if [ "$DISK" = 1 ] && [ "$SNAPSHOT" = 1 ] && [ "$t" != victoriametrics ] && \
     ! ls "$dir"/data/*/meta.json >/dev/null 2>&1; then
    name=$(curl -fsS -X POST "http://127.0.0.1:$port/api/v1/admin/tsdb/snapshot" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["name"])') || name=""
    [ -n "$name" ] && snap="$dir/data/snapshots/$name"
  fi
  if [ "$DISK" = 1 ] && [ "$t" = victoriametrics ]; then
    # Its disk figure is after its background merge: force the merge of
    # the partitions written (per month) and wait until no merge runs.
    back=$(python3 -c "print(int($HOURS * 3600))")
    for m in $(date -u +%Y_%m) $(date -u -d "@$(( $(date +%s) - back ))" +%Y_%m); do
      curl -fsS "http://127.0.0.1:$port/internal/force_merge?partition_prefix=$m" >/dev/null || true
    done
    idle=0
    for _ in $(seq 1 600); do
      active=$(curl -fsS "http://127.0.0.1:$port/metrics" |
        awk '/^vm_active_merges/{s+=$2} END{print s+0}')
      if [ "$active" = 0 ]; then idle=$((idle + 1)); else idle=0; fi
      [ "$idle" -ge 5 ] && break
      sleep 1
    done
  fi
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  trap - EXIT
  disk=-
  if [ "$DISK" = 1 ]; then disk=$(python3 - "${snap:-$dir/data}" "$samples" "$t" "$snap" <<'PY'
import json, os, sys
d, samples, t, snap = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
def du(p):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(p) for f in fs)
if t == "victoriametrics":
    print(round(du(d) / samples, 3)); sys.exit()
blocks = [os.path.join(d, b) for b in os.listdir(d) if os.path.exists(os.path.join(d, b, "meta.json"))]
n = sum(json.load(open(os.path.join(b, "meta.json")))["stats"]["numSamples"] for b in blocks)
print(f"{sum(du(b) for b in blocks) / n:.3f}" + ("(snap)" if snap else "") if n else "no-blocks")
PY
); fi
  printf '%-16s %12s %10s %11s %12s %12s %10s\n' "$t" "$rate" "$cpu_us" "$ingest_rss" "$((rss / 1024))" "$disk" "$verified/$samples"
  if [ -n "$RESULTS_TSV" ]; then
    series=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["series"])' "$dir/load.json")
    printf '%s\t' "$t" "$NODES" "$HOURS" "$samples" "$series" "$rate" "$cpu_us" "$ingest_rss" \
      "$((rss / 1024))" "$disk" "$verified" "$series_before" "$restart_s" "$restart_peak_mib" \
      "$series_after" "$stop_s" "$graceful_s" "$graceful_peak_mib" >>"$RESULTS_TSV"
    printf '%s\n' "$series_graceful" >>"$RESULTS_TSV"
  fi
done
echo "raw results in $OUT" >&2
