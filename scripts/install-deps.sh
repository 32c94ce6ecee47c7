#!/usr/bin/env bash
# Installs what Cairn's tests and benchmarks talk to: Debian's Prometheus 2.42
# (prometheus and promtool), Alertmanager, VictoriaMetrics, OpenTelemetry's Python SDK
# with its OTLP/HTTP exporter (a real OTLP sender, in a virtual environment
# at $CAIRN_OTEL_VENV, default ~/.cache/cairn/otel-venv), kubernetes-validate
# (at $CAIRN_K8S_VENV, default ~/.cache/cairn/k8s-venv), the Prometheus
# Operator's CRD schemas for Node (deploy/kubernetes/check, installed at
# $CAIRN_K8S_NODE, default ~/.cache/cairn/k8s-node), the OpenTelemetry JS
# SDK (tests/otlp-js, at $CAIRN_OTLP_JS, default ~/.cache/cairn/otlp-js),
# Garage, an S3 server (crates.io, built at $CAIRN_GARAGE_ROOT, default
# ~/.cache/cairn/garage), plus cargo-nextest when absent.
# Safe to run again; does nothing that is already done.
set -euo pipefail

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v victoria-metrics >/dev/null 2>&1 || need+=(victoria-metrics)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's package may start a system Prometheus on :9090; tests use their own ports.
otel_venv=${CAIRN_OTEL_VENV:-$HOME/.cache/cairn/otel-venv}
if ! "$otel_venv/bin/python" -c 'import opentelemetry.exporter.otlp.proto.http.metric_exporter' >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  fi
  python3 -m venv "$otel_venv"
  "$otel_venv/bin/pip" install -q 'opentelemetry-sdk>=1.20,<2' 'opentelemetry-exporter-otlp-proto-http>=1.20,<2'
fi
# kubernetes-validate (the Kubernetes OpenAPI schemas, offline) checks the
# pack's manifests; PyYAML writes its PrometheusRule from deploy/rules/.
k8s_venv=${CAIRN_K8S_VENV:-$HOME/.cache/cairn/k8s-venv}
if ! "$k8s_venv/bin/kubernetes-validate" --version >/dev/null 2>&1; then
  python3 -m venv "$k8s_venv"
  "$k8s_venv/bin/pip" install -q 'kubernetes-validate==1.31.0' 'PyYAML>=6,<7'
fi
# The Operator's resources (ServiceMonitor, Prometheus, PrometheusRule) are
# validated against its CRD schemas, from npm (pinned by the lock file).
k8s_node=${CAIRN_K8S_NODE:-$HOME/.cache/cairn/k8s-node}
check_dir=$(cd "$(dirname "$0")/../deploy/kubernetes/check" && pwd)
if ! cmp -s "$check_dir/package-lock.json" "$k8s_node/package-lock.json" \
  || [ ! -d "$k8s_node/node_modules/@kubernetes-models/prometheus-operator" ]; then
  mkdir -p "$k8s_node"
  cp "$check_dir/package.json" "$check_dir/package-lock.json" "$k8s_node/"
  (cd "$k8s_node" && npm ci --no-audit --no-fund --silent)
fi
# The OpenTelemetry JS SDK, whose OTLP/HTTP exporter sends OTLP/JSON
# (tests/otlp-js, pinned by its lock file).
otlp_js=${CAIRN_OTLP_JS:-$HOME/.cache/cairn/otlp-js}
js_dir=$(cd "$(dirname "$0")/../tests/otlp-js" && pwd)
if ! cmp -s "$js_dir/package-lock.json" "$otlp_js/package-lock.json" \
  || [ ! -d "$otlp_js/node_modules/@opentelemetry/sdk-metrics" ]; then
  mkdir -p "$otlp_js"
  cp "$js_dir/package.json" "$js_dir/package-lock.json" "$otlp_js/"
  (cd "$otlp_js" && npm ci --no-audit --no-fund --silent)
fi
# Garage (crates.io), a real S3 server for the object-storage tests
# (crates/cmd/tests/objstore_s3.rs), built once per machine at
# $CAIRN_GARAGE_ROOT (default ~/.cache/cairn/garage): about ten minutes on
# two cores.
garage_root=${CAIRN_GARAGE_ROOT:-$HOME/.cache/cairn/garage}
if [ ! -x "$garage_root/bin/garage" ]; then
  echo "install-deps: building Garage 2.5.0 (an S3 server for the tests) into $garage_root"
  cargo install --locked --quiet garage --version 2.5.0 --root "$garage_root"
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi
