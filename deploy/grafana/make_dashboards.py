#!/usr/bin/env python3
"""Writes the pack's Grafana dashboards (dashboards/*.json) from the panel
lists below, so every query lives in one readable place. Run it after
editing; the JSON files are committed and tested
(crates/cmd/tests/deploy_pack.rs runs every query against Cairn and
Prometheus). Grafana variables used in queries: $datasource, $namespace,
$Hostname, $instance, and Grafana's $__rate_interval."""

import json
import pathlib

HERE = pathlib.Path(__file__).resolve().parent


def ds():
    return {"type": "prometheus", "uid": "${datasource}"}


def panel(pid, title, exprs, unit="short", x=0, y=0, w=12, h=8, kind="timeseries", legend=None):
    targets = []
    for i, e in enumerate(exprs):
        expr, leg = (e, legend) if isinstance(e, str) else e
        t = {"datasource": ds(), "expr": expr, "refId": chr(ord("A") + i)}
        if leg:
            t["legendFormat"] = leg
        targets.append(t)
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": ds(),
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": targets,
    }


def query_var(name, query, label=None, multi=True):
    return {
        "name": name,
        "label": label or name,
        "type": "query",
        "datasource": ds(),
        "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": multi,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def ds_var():
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
    }


def dashboard(uid, title, panels, variables, tags):
    return {
        "uid": uid,
        "title": title,
        "tags": ["cairn"] + tags,
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [ds_var()] + variables},
        "annotations": {"list": []},
        "panels": panels,
    }


def grid(specs):
    """Lays panels out two per row."""
    out = []
    for i, s in enumerate(specs):
        title, exprs, unit = s[:3]
        legend = s[3] if len(s) > 3 else None
        out.append(panel(i + 1, title, exprs, unit, x=(i % 2) * 12, y=(i // 2) * 8, legend=legend))
    return out


NS = 'namespace=~"$namespace"'
HOST = 'Hostname=~"$Hostname"'

cluster = dashboard(
    "cairn-gpu-cluster",
    "GPU cluster overview",
    grid(
        [
            ("GPU utilisation by namespace", [f"avg by (namespace) (DCGM_FI_DEV_GPU_UTIL{{{NS}}})"], "percent", "{{namespace}}"),
            ("GPUs busy by namespace", [f"sum by (namespace) (DCGM_FI_DEV_GPU_UTIL{{{NS}}} > bool 0)"], "short", "{{namespace}}"),
            ("GPU utilisation by host", [f"avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL{{{HOST}}})"], "percent", "{{Hostname}}"),
            ("Framebuffer used", [f"sum by (Hostname) (DCGM_FI_DEV_FB_USED{{{HOST}}}) / sum by (Hostname) (DCGM_FI_DEV_FB_USED{{{HOST}}} + DCGM_FI_DEV_FB_FREE{{{HOST}}})"], "percentunit", "{{Hostname}}"),
            ("Power by host", [f"sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE{{{HOST}}})"], "watt", "{{Hostname}}"),
            ("Hottest GPU by host", [f"max by (Hostname) (DCGM_FI_DEV_GPU_TEMP{{{HOST}}})"], "celsius", "{{Hostname}}"),
            ("Energy by namespace", [f"sum by (namespace) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{NS}}}[$__rate_interval])) / 1000"], "watt", "{{namespace}}"),
            ("Tensor core activity", [f"avg by (namespace) (DCGM_FI_PROF_PIPE_TENSOR_ACTIVE{{{NS}}})"], "percentunit", "{{namespace}}"),
            ("NVLink traffic by host", [f"sum by (Hostname) (rate(DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL{{{HOST}}}[$__rate_interval]))"], "Bps", "{{Hostname}}"),
            ("PCIe traffic by host", [
                (f"sum by (Hostname) (rate(DCGM_FI_PROF_PCIE_RX_BYTES{{{HOST}}}[$__rate_interval]))", "{{Hostname}} rx"),
                (f"sum by (Hostname) (rate(DCGM_FI_PROF_PCIE_TX_BYTES{{{HOST}}}[$__rate_interval]))", "{{Hostname}} tx"),
            ], "Bps"),
            ("XID errors", [f"count by (Hostname) (DCGM_FI_DEV_XID_ERRORS{{{HOST}}} > 0) or count by (Hostname) (DCGM_FI_DEV_XID_ERRORS{{{HOST}}}) * 0"], "short", "{{Hostname}}"),
            ("GPUs reporting by host", [f"count by (Hostname) (DCGM_FI_DEV_GPU_TEMP{{{HOST}}})"], "short", "{{Hostname}}"),
            ("GPU-hours by namespace, last day", [f"sum by (namespace) (sum_over_time((DCGM_FI_DEV_GPU_UTIL{{{NS}}} > bool 0)[1d:1m])) / 60"], "short", "{{namespace}}"),
            ("Busiest pods", [f"topk(10, avg by (namespace, pod) (DCGM_FI_DEV_GPU_UTIL{{{NS}}}))"], "percent", "{{namespace}}/{{pod}}"),
        ]
    ),
    [query_var("namespace", "label_values(DCGM_FI_DEV_GPU_UTIL, namespace)"), query_var("Hostname", "label_values(DCGM_FI_DEV_GPU_UTIL, Hostname)", "Host")],
    ["gpu", "dcgm"],
)

G = 'Hostname=~"$Hostname"'
I = 'instance=~"$instance"'
node = dashboard(
    "cairn-gpu-node",
    "GPU node",
    grid(
        [
            ("GPU utilisation", [f"DCGM_FI_DEV_GPU_UTIL{{{G}}}"], "percent", "GPU {{gpu}}"),
            ("GPU temperature", [f"DCGM_FI_DEV_GPU_TEMP{{{G}}}"], "celsius", "GPU {{gpu}}"),
            ("GPU power", [f"DCGM_FI_DEV_POWER_USAGE{{{G}}}"], "watt", "GPU {{gpu}}"),
            ("Framebuffer used", [f"DCGM_FI_DEV_FB_USED{{{G}}} * 1024 * 1024"], "bytes", "GPU {{gpu}}"),
            ("SM clock", [f"DCGM_FI_DEV_SM_CLOCK{{{G}}} * 1000000"], "hertz", "GPU {{gpu}}"),
            ("Memory copy utilisation", [f"DCGM_FI_DEV_MEM_COPY_UTIL{{{G}}}"], "percent", "GPU {{gpu}}"),
            ("PCIe replays", [f"rate(DCGM_FI_DEV_PCIE_REPLAY_COUNTER{{{G}}}[$__rate_interval])"], "ops", "GPU {{gpu}}"),
            ("Remapped rows", [f"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS{{{G}}} + DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS{{{G}}}"], "short", "GPU {{gpu}}"),
            ("CPU busy", [f"1 - avg by (instance) (rate(node_cpu_seconds_total{{{I}, mode=\"idle\"}}[$__rate_interval]))"], "percentunit", "{{instance}}"),
            ("Memory available", [f"node_memory_MemAvailable_bytes{{{I}}} / node_memory_MemTotal_bytes{{{I}}}"], "percentunit", "{{instance}}"),
            ("Network received", [f"sum by (instance) (rate(node_network_receive_bytes_total{{{I}}}[$__rate_interval]))"], "Bps", "{{instance}}"),
            ("Disk written", [f"sum by (instance) (rate(node_disk_written_bytes_total{{{I}}}[$__rate_interval]))"], "Bps", "{{instance}}"),
            ("Filesystem free", [f"node_filesystem_avail_bytes{{{I}, fstype!~\"tmpfs|overlay\"}} / node_filesystem_size_bytes{{{I}, fstype!~\"tmpfs|overlay\"}}"], "percentunit", "{{mountpoint}}"),
            ("Load", [f"node_load1{{{I}}}"], "short", "{{instance}}"),
        ]
    ),
    [
        query_var("Hostname", "label_values(DCGM_FI_DEV_GPU_UTIL, Hostname)", "Host", multi=False),
        query_var("instance", "label_values(node_cpu_seconds_total, instance)", "Node exporter", multi=False),
    ],
    ["gpu", "node"],
)

C = 'job="cairn"'
health = dashboard(
    "cairn-health",
    "Cairn",
    grid(
        [
            ("Samples ingested", [f"sum by (instance) (rate(cairn_remote_write_samples_appended_total{{{C}}}[$__rate_interval]))"], "short", "{{instance}}"),
            ("Samples refused by reason", [f"sum by (reason) (rate(cairn_remote_write_samples_rejected_total{{{C}}}[$__rate_interval]))"], "short", "{{reason}}"),
            ("Request latency p99 by handler", [f"histogram_quantile(0.99, sum by (handler, le) (rate(cairn_http_request_duration_seconds_bucket{{{C}}}[$__rate_interval])))"], "s", "{{handler}}"),
            ("Requests by handler and code", [f"sum by (handler, code) (rate(cairn_http_request_duration_seconds_count{{{C}}}[$__rate_interval]))"], "reqps", "{{handler}} {{code}}"),
            ("Head series", [f"cairn_head_series{{{C}}}"], "short", "{{instance}}"),
            ("Head chunks", [f"cairn_head_chunks{{{C}}}"], "short", "{{instance}}"),
            ("WAL fsync latency", [f"rate(cairn_wal_fsync_duration_seconds_sum{{{C}}}[$__rate_interval]) / clamp_min(rate(cairn_wal_fsync_duration_seconds_count{{{C}}}[$__rate_interval]), 1e-9)"], "s", "{{instance}}"),
            ("Head cuts and compactions", [
                (f"increase(cairn_tsdb_head_cuts_total{{{C}}}[1h])", "head cuts"),
                (f"increase(cairn_compactions_total{{{C}}}[1h])", "compactions"),
                (f"increase(cairn_compactions_failed_total{{{C}}}[1h])", "failed"),
            ], "short"),
            ("Disk by block level", [f"sum by (resolution) (cairn_tsdb_blocks_bytes{{{C}}})"], "bytes", "{{resolution}}"),
            ("Blocks", [f"cairn_blocks_loaded{{{C}}}"], "short", "{{instance}}"),
            ("Resident memory", [f"process_resident_memory_bytes{{{C}}}"], "bytes", "{{instance}}"),
            ("CPU", [f"rate(process_cpu_seconds_total{{{C}}}[$__rate_interval])"], "percentunit", "{{instance}}"),
            ("Out-of-order samples held", [f"cairn_tsdb_out_of_order_samples{{{C}}}"], "short", "{{instance}}"),
            ("Open file descriptors", [f"process_open_fds{{{C}}} / process_max_fds{{{C}}}"], "percentunit", "{{instance}}"),
        ]
    ),
    [],
    ["health"],
)

for name, d in [("gpu-cluster-overview", cluster), ("gpu-node", node), ("cairn-health", health)]:
    (HERE / "dashboards" / f"{name}.json").write_text(json.dumps(d, indent=2) + "\n")
print("wrote", ", ".join(["gpu-cluster-overview", "gpu-node", "cairn-health"]))
