# Shell functions shared by the side-by-side benchmarks (sourced, not run):
# starting a target server on 127.0.0.1, waiting for it, reading its peak
# RSS, counting its series, and the crash-restart measurement.
# shellcheck shell=bash

# Microseconds since the epoch, without starting a process.
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo $((10#$t)); }

# VmHWM of process $1 in KiB.
peak_rss_kib() { awk '/VmHWM/{print $2}' "/proc/$1/status"; }

# Waits up to 20 s for URL $1 to answer 2xx.
wait_http() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "timed out waiting for $1" >&2
  return 1
}

# Starts target $1 (cairn, prometheus, victoriametrics) on data dir $2/data
# and 127.0.0.1:$3, its output going to file $4 (appended). Sets `pid` and
# `ready` (the URL that answers 200 once it serves).
start_target() {
  local t=$1 dir=$2 port=$3 log=$4
  case $t in
    cairn)
      ./target/release/cairn serve --storage.tsdb.path "$dir/data" --web.listen-address "127.0.0.1:$port" \
        --web.enable-admin-api >>"$log" 2>&1 &
      ready="http://127.0.0.1:$port/-/ready" ;;
    prometheus)
      printf 'global:\n  scrape_interval: 1h\n' >"$dir/prometheus.yml"
      prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
        --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver \
        --web.enable-admin-api >>"$log" 2>&1 &
      ready="http://127.0.0.1:$port/-/ready" ;;
    victoriametrics)
      victoria-metrics -storageDataPath="$dir/data" -httpListenAddr="127.0.0.1:$port" \
        -retentionPeriod=10y -search.latencyOffset=0s -search.disableCache \
        -search.maxUniqueTimeseries=100000000 -search.maxQueryDuration=2m >>"$log" 2>&1 &
      ready="http://127.0.0.1:$port/health" ;;
    *) echo "unknown target $t" >&2; return 2 ;;
  esac
  pid=$!
}

# Series with a sample in the lookback window before time $2 (ms) on the
# server at 127.0.0.1:$1, by `count({__name__=~".+"})`; "error" if the query
# fails.
series_count() {
  curl -fsS --max-time 600 "http://127.0.0.1:$1/api/v1/query" \
    --data-urlencode 'query=count({__name__=~".+"})' \
    --data-urlencode "time=$(python3 -c "print($2 / 1000)")" 2>/dev/null |
    python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(int(float(r[0]["value"][1])) if r else 0)' 2>/dev/null || echo error
}

# VictoriaMetrics 1.79 keeps its newest parts in memory for a few seconds
# (/internal/force_flush makes rows searchable, not durable), and a kill -9
# then loses them. Waits up to $3 s until the parts on disk under
# $2/data/data (their names start with their row count) hold every row the
# server at 127.0.0.1:$1 reports (vm_rows).
vm_wait_durable() {
  local port=$1 dir=$2 limit=$3 i rows=0 disk=0
  for ((i = 0; i < limit * 2; i++)); do
    rows=$(curl -fsS "http://127.0.0.1:$port/metrics" |
      awk '/^vm_rows\{type="storage\/(small|big)"\}/{s+=$2} END{print s+0}') || rows=0
    disk=$(find "$dir/data/data/small" "$dir/data/data/big" -mindepth 2 -maxdepth 2 -type d \
      -name '[0-9]*_*' -not -path '*/snapshots/*' -printf '%f\n' 2>/dev/null |
      awk -F_ '{s+=$1} END{print s+0}') || disk=0
    if [ "$rows" -gt 0 ] && [ "$disk" -ge "$rows" ]; then
      echo "victoriametrics: every row on disk after $((i / 2)).$((i % 2 * 5)) s" >&2
      return 0
    fi
    sleep 0.5
  done
  echo "victoriametrics: parts on disk hold $disk of $rows rows after ${limit} s" >&2
}

# Starts target $1 on data dir $2/data, port $3, log $4, and waits until
# `ready` answers 200 (at most $5 s). Sets `ready_s` (seconds, "-" if it
# never got ready) and `ready_peak_mib` (the new process's VmHWM then).
start_and_time_ready() {
  local t=$1 dir=$2 port=$3 log=$4 limit=$5 t0 now
  ready_s="-" ready_peak_mib="-"
  t0=$(now_us)
  start_target "$t" "$dir" "$port" "$log" || return 0
  while :; do
    now=$(now_us)
    if curl -fsS -o /dev/null --max-time 5 "$ready" 2>/dev/null; then
      now=$(now_us)
      ready_s=$(printf '%d.%02d' $(((now - t0) / 1000000)) $(((now - t0) % 1000000 / 10000)))
      ready_peak_mib=$(($(peak_rss_kib "$pid" || echo 0) / 1024))
      break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$t exited while starting; see $log" >&2
      break
    fi
    if [ $((now - t0)) -gt $((limit * 1000000)) ]; then
      echo "$t not ready ${limit}s after starting" >&2
      break
    fi
    sleep 0.1
  done
}

# Crash and restart: counts the series of target $1 (pid in `pid`, data dir
# $2/data, port $3) at time $4 (ms), kills it with SIGKILL, starts it again
# on the same data (VictoriaMetrics: once its rows are on disk, see
# vm_wait_durable), times it until `ready` answers 200 (at most $5 s),
# reads the new process's VmHWM then and counts the series again. Call it
# in the script's own shell, not in $(...): it sets `pid` and `ready` to the
# new process's and `series_before`, `restart_s`, `restart_peak_mib` and
# `series_after` ("-" for what could not be measured).
crash_restart() {
  local t=$1 dir=$2 port=$3 at_ms=$4 limit=$5
  restart_s="-" restart_peak_mib="-" series_after="-"
  [ "$t" != victoriametrics ] || vm_wait_durable "$port" "$dir" 120
  series_before=$(series_count "$port" "$at_ms")
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  start_and_time_ready "$t" "$dir" "$port" "$dir/log.restart" "$limit"
  restart_s=$ready_s restart_peak_mib=$ready_peak_mib
  [ "$restart_s" = - ] || series_after=$(series_count "$port" "$at_ms")
}

# Graceful restart, after crash_restart: SIGTERM to target $1 (pid in
# `pid`), timed until it exits (at most $5 s; Cairn writes its head
# snapshot then), started again on data dir $2/data, port $3, timed until
# `ready` answers 200; its VmHWM then and the series at time $4 (ms).
# Sets `stop_s`, `graceful_s`, `graceful_peak_mib`, `series_graceful`
# ("-" for what could not be measured).
graceful_restart() {
  local t=$1 dir=$2 port=$3 at_ms=$4 limit=$5 t0 now
  stop_s="-" graceful_s="-" graceful_peak_mib="-" series_graceful="-"
  kill -0 "$pid" 2>/dev/null || return 0
  t0=$(now_us)
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    now=$(now_us)
    if [ $((now - t0)) -gt $((limit * 1000000)) ]; then
      echo "$t still running ${limit}s after SIGTERM; killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      return 0
    fi
    sleep 0.05
  done
  wait "$pid" 2>/dev/null || true
  now=$(now_us)
  stop_s=$(printf '%d.%02d' $(((now - t0) / 1000000)) $(((now - t0) % 1000000 / 10000)))
  start_and_time_ready "$t" "$dir" "$port" "$dir/log.graceful" "$limit"
  graceful_s=$ready_s graceful_peak_mib=$ready_peak_mib
  [ "$graceful_s" = - ] || series_graceful=$(series_count "$port" "$at_ms")
}

# Starts a single-node Garage (built by scripts/install-deps.sh) under
# $1/garage with its RPC on 127.0.0.1:$2 and its S3 API on $2+1, with one
# bucket `cairn` and one key. Sets `gpid`, `garage_s3` (host:port),
# `garage_key` and `garage_secret`.
start_garage() {
  local out=$1 gp=$2
  local garage=${CAIRN_GARAGE_ROOT:-$HOME/.cache/cairn/garage}/bin/garage
  mkdir -p "$out/garage"
  cat >"$out/garage/garage.toml" <<TOML
metadata_dir = "$out/garage/meta"
data_dir = "$out/garage/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$gp"
rpc_public_addr = "127.0.0.1:$gp"
rpc_secret = "$(printf 'c0ffee%.0s' 1 2 3 4 5 6 7 8 9 10)c0ff"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$((gp + 1))"
root_domain = ".s3.garage.localhost"
TOML
  "$garage" -c "$out/garage/garage.toml" server >"$out/garage/log" 2>&1 &
  gpid=$!
  local id=""
  for _ in $(seq 1 100); do
    id=$("$garage" -c "$out/garage/garage.toml" node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$id" ] && break
    sleep 0.2
  done
  g() { "$garage" -c "$out/garage/garage.toml" "$@" >/dev/null; }
  garage_key=GK0123456789ab0123456789ab
  garage_secret=$(printf '5ec7e7%.0s' 1 2 3 4 5 6 7 8 9 10)5ec7
  g layout assign -z dc1 -c 20G "$id"
  g layout apply --version 1
  g bucket create cairn
  g key import --yes -n cairn "$garage_key" "$garage_secret"
  g bucket allow --read --write --owner cairn --key "$garage_key"
  garage_s3="127.0.0.1:$((gp + 1))"
}

# Writes a Thanos object-store file for the bucket of start_garage to $1,
# every key under prefix $2.
garage_objstore_yml() {
  printf 'type: S3\nconfig:\n  bucket: cairn\n  endpoint: %s\n  region: garage\n  access_key: %s\n  secret_key: %s\n  insecure: true\nprefix: %s\n' \
    "$garage_s3" "$garage_key" "$garage_secret" "$2" >"$1"
}
