#!/usr/bin/env python3
"""Times PromQL range queries against several Prometheus-compatible HTTP APIs.

Usage: bench_query.py START END STEP REPS NAME=URL [NAME=URL ...]

A URL may end in ?key=value parameters sent with every query of that target
(max_source_resolution=raw). RANGE=1h30s replaces the queries' [5m] windows.

Prints one row per query with the median latency per target (ms) and, for
every target after the first, whether its result equals the first target's
(Prometheus's, by convention) within a relative tolerance of 1e-9.

ORDER=rounds (the default) takes the runs of one query in rounds, one run
per target per round, so each target's runs are spread over the same span
of time: a burst of load from elsewhere on a shared machine then lands on
every target alike, rather than on whichever target's runs it happened to
overlap (a fast target's few runs fit inside one burst). Each round starts
one target further on (round r runs target r first), so no target always
follows the same one: a target that keeps working after it answers
(Prometheus's and VictoriaMetrics's garbage collectors) would otherwise
slow whichever target always came next. ORDER=blocks runs
all of one target's repetitions before the next target's (the layout of
runs before 2026-12-04).
"""
import json
import math
import os
import statistics
import sys
import time
import urllib.parse
import urllib.request

QUERIES = [
    ("avg by (Hostname)", 'avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)'),
    ("rate summed by host", 'sum by (Hostname) (rate(DCGM_FI_PROF_PCIE_RX_BYTES[5m]))'),
    ("FB-used ratio by host", 'sum by (Hostname) (DCGM_FI_DEV_FB_USED) / sum by (Hostname) (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)'),
    ("node CPU busy by instance", '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))'),
    ("energy rate by namespace", 'sum by (namespace) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m]))'),
    ("topk max temp", 'topk(10, max_over_time(DCGM_FI_DEV_GPU_TEMP[10m]))'),
    ("histogram_quantile", 'histogram_quantile(0.9, sum by (le) (rate(kubelet_pod_start_duration_seconds_bucket[5m])))'),
]


def run(url, q, start, end, step):
    # A target URL may carry extra query parameters after "?"
    # (max_source_resolution=raw); they go into the form.
    base, _, extra = url.partition("?")
    form = {"query": q, "start": start, "end": end, "step": step}
    form.update(urllib.parse.parse_qsl(extra))
    data = urllib.parse.urlencode(form).encode()
    t0 = time.perf_counter()
    with urllib.request.urlopen(base + "/api/v1/query_range", data=data, timeout=600) as r:
        body = r.read()
    return (time.perf_counter() - t0) * 1000, json.loads(body)


def num(s):
    return float(s.replace("+Inf", "inf").replace("-Inf", "-inf"))


def same(a, b):
    if a.get("status") != "success" or b.get("status") != "success":
        return False
    ma = {json.dumps(s["metric"], sort_keys=True): s["values"] for s in a["data"]["result"]}
    mb = {json.dumps(s["metric"], sort_keys=True): s["values"] for s in b["data"]["result"]}
    if ma.keys() != mb.keys():
        return False
    for k, va in ma.items():
        vb = mb[k]
        if len(va) != len(vb):
            return False
        for (ta, xa), (tb, xb) in zip(va, vb):
            xa, xb = num(xa), num(xb)
            if ta != tb:
                return False
            if math.isnan(xa) and math.isnan(xb):
                continue
            if xa != xb and abs(xa - xb) > 1e-9 * max(abs(xa), abs(xb)):
                return False
    return True


def main():
    start, end, step, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    targets = [a.split("=", 1) for a in sys.argv[5:]]
    names = [n for n, _ in targets]
    others = names[1:]
    print("| query | " + " | ".join(f"{n} (ms)" for n in names) + " | "
          + " | ".join(f"{n} = {names[0]}" for n in others) + " |")
    print("|---|" + "---|" * (len(names) + len(others)))
    rounds = os.environ.get("ORDER", "rounds") != "blocks"
    # RANGE replaces the queries' [5m] windows (a dashboard's
    # $__rate_interval at a long step, e.g. 1h30s at step 1h).
    rng = os.environ.get("RANGE")
    for label, q in QUERIES:
        if rng:
            q = q.replace("[5m]", f"[{rng}]")
        times = [[] for _ in targets]
        results = [None] * len(targets)
        if rounds:
            n = len(targets)
            order = [(r + k) % n for r in range(reps) for k in range(n)]
        else:
            order = [i for i in range(len(targets)) for _ in range(reps)]
        for i in order:
            ms, results[i] = run(targets[i][1], q, start, end, step)
            times[i].append(ms)
        meds = [statistics.median(t) for t in times]
        eqs = " | ".join("yes" if same(results[0], r) else "NO" for r in results[1:])
        cells = " | ".join(f"{m:.1f}" for m in meds)
        print(f"| `{label}` | {cells} | {eqs} |", flush=True)


if __name__ == "__main__":
    main()
